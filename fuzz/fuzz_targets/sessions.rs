//! Session files (one session per line, example files, GRU4Rec's TSV) and attribute tables.
#![no_main]
mod common;
use libfuzzer_sys::fuzz_target;
use towers::data::Sessions;
use towers::data::features::AttributeTable;

fuzz_target!(|data: &[u8]| {
    let p = common::file("s.csv", data);
    if let Ok(s) = Sessions::read_lines(&p) {
        let _ = s.split_targets();
    }
    let _ = Sessions::read_examples(&p);
    let _ = Sessions::read_gru4rec(&p);
    let _ = AttributeTable::read(&p);
});
