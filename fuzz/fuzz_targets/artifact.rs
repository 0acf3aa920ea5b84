//! A model file's tensors (safetensors) as the loader reads them: shapes, dtypes, metadata.
#![no_main]
use libfuzzer_sys::fuzz_target;
use towers::tensors::TensorReader;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = TensorReader::parse(std::path::Path::new("x.safetensors"), data) {
        let _ = r.f32_any("embeddings");
        let _ = r.u32("seen.offsets", None);
        let _ = r.u8("codes");
        let _ = r.meta::<Vec<f32>>("scale");
    }
});
