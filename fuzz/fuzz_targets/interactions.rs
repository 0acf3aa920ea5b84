//! Interaction tables (TSV, CSV, whatever the delimiter): a table or an error, never a panic.
#![no_main]
mod common;
use libfuzzer_sys::fuzz_target;
use towers::data::{Catalog, Interactions, TableFormat};

fuzz_target!(|data: &[u8]| {
    for name in ["t.tsv", "t.csv"] {
        let p = common::file(name, data);
        let _ = Interactions::read(&p, &TableFormat::default());
        let _ = Catalog::read(&p);
    }
});
