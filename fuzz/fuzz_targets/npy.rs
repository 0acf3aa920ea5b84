//! `.npy` matrices (pretrained embeddings).
#![no_main]
mod common;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = towers::data::npy::read_f32_matrix(common::file("m.npy", data));
});
