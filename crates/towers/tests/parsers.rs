//! Property tests of every parser of outside input: any bytes give a value or an error, never a
//! panic; a well-formed table reads back exactly what was written. (The `fuzz/` targets run the
//! same entry points for millions of inputs; see its README.)

use proptest::prelude::*;
use std::path::PathBuf;
use towers::data::features::AttributeTable;
use towers::data::{Catalog, Interactions, Sessions, TableFormat, npy};
use towers::model::FeatureConfig;

/// A file in a per-process temporary directory, holding `bytes`.
fn file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("towers-parsers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Bytes that look like tables often enough to reach the parsers' deeper paths.
fn table_bytes() -> impl Strategy<Value = Vec<u8>> {
    let cell = prop_oneof![
        "[0-9]{1,4}",
        "-?[0-9]{1,3}\\.[0-9]{0,3}",
        "(user|item|rating|timestamp|weight|session_id|item_id|time)",
        "(nan|inf|-inf|1e39|\"a,b\"|\"|)",
        ".{0,6}",
    ];
    let line = (proptest::collection::vec(cell, 0..6), prop_oneof![Just("\t"), Just(","), Just("|"), Just(" ")])
        .prop_map(|(cells, sep)| cells.join(sep));
    prop_oneof![
        proptest::collection::vec(line, 0..12).prop_map(|l| l.join("\n").into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..200),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn interaction_tables_never_panic(bytes in table_bytes(), ext in prop_oneof![Just("tsv"), Just("csv"), Just("txt")]) {
        let p = file(&format!("t.{ext}"), &bytes);
        if let Ok(t) = Interactions::read(&p, &TableFormat::default()) {
            prop_assert!(!t.is_empty());
            for i in 0..t.len() {
                prop_assert!(!t.query(i).is_empty() && !t.candidate(i).is_empty());
            }
            if let Some(r) = &t.ratings {
                prop_assert!(r.iter().all(|x| x.is_finite()));
            }
        }
    }

    #[test]
    fn a_written_table_reads_back(rows in proptest::collection::vec(("[a-z0-9_]{1,8}", "[a-z0-9.]{1,8}", -1e6f32..1e6, 0i64..2_000_000_000), 1..40)) {
        let mut text = String::from("user_id\titem_id\trating\ttimestamp\n");
        for (u, i, r, t) in &rows {
            text.push_str(&format!("{u}\t{i}\t{r}\t{t}\n"));
        }
        let t = Interactions::read(file("rt.tsv", text.as_bytes()), &TableFormat::default()).unwrap();
        prop_assert_eq!(t.len(), rows.len());
        for (k, (u, i, r, ts)) in rows.iter().enumerate() {
            prop_assert_eq!(t.query(k), u.as_str());
            prop_assert_eq!(t.candidate(k), i.as_str());
            prop_assert_eq!(t.ratings.as_ref().unwrap()[k], *r);
            prop_assert_eq!(t.timestamps.as_ref().unwrap()[k], *ts);
        }
    }

    #[test]
    fn sessions_catalogues_and_attributes_never_panic(bytes in table_bytes()) {
        let p = file("s.csv", &bytes);
        let _ = Sessions::read_lines(&p);
        let _ = Sessions::read_examples(&p);
        let _ = Sessions::read_gru4rec(&p);
        let _ = Catalog::read(&p);
        let _ = AttributeTable::read(&p);
        if let Ok(s) = Sessions::read_lines(&p) {
            let _ = s.split_targets();
            let _ = s.hold_out_last();
        }
    }

    #[test]
    fn npy_never_panics(head in proptest::collection::vec(any::<u8>(), 0..16), dict in ".{0,80}", body in proptest::collection::vec(any::<u8>(), 0..64)) {
        // half of the cases start with a valid magic and version, to reach the header parser
        let mut bytes = if head.first().is_some_and(|b| b % 2 == 0) { b"\x93NUMPY\x01\x00".to_vec() } else { head };
        bytes.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        bytes.extend_from_slice(dict.as_bytes());
        bytes.extend_from_slice(&body);
        if let Ok((data, rows, cols)) = npy::read_f32_matrix(file("m.npy", &bytes)) {
            prop_assert_eq!(data.len(), rows * cols);
        }
    }

    #[test]
    fn feature_configurations_never_panic(text in "(\\[(query|candidate)\\]\n|[a-z_]{1,10} = (\"[a-z./]{0,8}\"|[0-9]{1,3}|\\[[0-9, ]{0,8}\\]|true)\n|.{0,10}\n){0,8}") {
        let _ = FeatureConfig::load(file("f.toml", text.as_bytes()));
    }
}
