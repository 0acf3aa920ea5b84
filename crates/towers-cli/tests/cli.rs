//! The `towers` binary end to end: the contract commands on a small fixture, and every
//! kind of bad input giving a clear error, a non-zero exit, no panic and no partial model.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

#[test]
fn train_evaluate_recommend_contract() {
    let f = Fixture::new("contract");
    let o = f.train("m", &["--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let t = json(&o);
    assert_eq!(t["epoch_s"].as_array().unwrap().len(), 4);
    assert!(t["train_s"].as_f64().unwrap() > 0.0 && t["examples_per_s"].as_f64().unwrap() > 0.0);

    let model = f.path("m");
    let test = f.path("test.tsv");
    for extra in [&[][..], &["--exclude-seen"][..]] {
        let mut args = vec!["evaluate", "--model", &model, "--test", &test, "--json"];
        args.extend_from_slice(extra);
        let o = towers(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let e = json(&o);
        for k in ["top_1", "top_5", "top_10", "top_20", "top_50", "top_100", "mrr", "mrr_20", "ndcg_10", "n", "eval_s"]
        {
            assert!(e.get(k).is_some(), "missing {k}");
        }
        assert_eq!(e["n"], 40);
        assert!(e["baseline"]["top_10"].is_number());
    }

    let o = towers(&["recommend", "--model", &model, "--user", "7", "-k", "5", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = json(&o);
    assert_eq!(r["cold_start"], false);
    assert_eq!(r["items"].as_array().unwrap().len(), 5);
    assert!(r["items"][0]["title"].as_str().unwrap().starts_with("Movie"));
    assert!(r["items"][0]["score"].is_number() && r["items"][0]["id"].is_string());

    // latin-1 catalogue decoded to UTF-8
    let o = towers(&["recommend", "--model", &model, "--user", "7", "-k", "30"]);
    assert!(stdout(&o).contains("Movie 7 Misérables"), "{}", stdout(&o));

    // an unknown user: popular items, flagged, and a message
    let o = towers(&["recommend", "--model", &model, "--user", "nobody", "-k", "3", "--json"]);
    assert!(o.status.success());
    assert_eq!(json(&o)["cold_start"], true);
    assert!(stderr(&o).contains("not in the training data"));
    assert!(Path::new(&model).join("history.svg").is_file());
}

#[test]
fn train_with_split_title_key_and_config_file() {
    let f = Fixture::new("split");
    let cfg =
        f.write("c.toml", "dim = 8\nepochs = 2\nbatch_size = 32\n[optimizer]\nkind = \"adam\"\nlearning_rate = 0.01\n");
    let o = f.train("m", &["--config", &cfg, "--split", "random:0.2", "--key", "title"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("popularity"), "{}", stdout(&o));
    let manifest = std::fs::read_to_string(f.dir.join("m/manifest.json")).unwrap();
    assert!(manifest.contains("\"kind\": \"adam\"") && manifest.contains("\"key\": \"title\""));
    let bad = f.write("bad.toml", "dim = 8\nbogus = 1\n");
    let o = f.train("b", &["--config", &bad]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("bad.toml") && stderr(&o).contains("bogus"));
}

/// Runs `train` on a malformed file: the error names the file (and `needle`), exit code 3,
/// no panic, no model directory.
fn rejects(f: &Fixture, name: &str, content: &str, needle: &str) {
    let bad = f.write(name, content);
    let out = f.path(&format!("out-{name}"));
    let o = towers(&["train", "--train", &bad, "--out", &out, "--epochs", "1"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{name}: {err}");
    assert!(err.contains(name) && err.contains(needle), "{name}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!Path::new(&out).exists(), "{name}: a model directory was left behind");
}

#[test]
fn malformed_inputs_are_clear_errors() {
    let f = Fixture::new("bad");
    rejects(&f, "missing_column.tsv", "1\t2\n", ":1: expected 4 fields");
    rejects(&f, "rating.tsv", "1\t2\t4\t5\n1\t3\tgood\t6\n", ":2: field 'rating': expected a number, found 'good'");
    rejects(&f, "empty.tsv", "", "empty file");
    rejects(&f, "truncated.tsv", "1\t2\t4\t5\n1\t3\t4", ":2: expected 4 fields");
    rejects(&f, "delimiter.tsv", "1,2,4,5\n", "(is the file ','-separated?");
    rejects(&f, "header_only.csv", "user_id,item_id,rating,timestamp\n", "only a header");

    let o = towers(&["train", "--train", &f.path("nope.tsv"), "--out", &f.path("o")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("nope.tsv"));
    let o = f.train("o", &["--lr", "-1"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!f.dir.join("o").exists());
}

#[test]
fn corrupt_and_future_models_are_refused() {
    let f = Fixture::new("corrupt");
    assert!(f.train("m", &[]).status.success());
    let model = f.path("m");
    let w = f.dir.join("m/weights.safetensors");
    let mut bytes = std::fs::read(&w).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 1;
    std::fs::write(&w, bytes).unwrap();
    let o = towers(&["recommend", "--model", &model, "--user", "1"]);
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("weights.safetensors is corrupt"), "{}", stderr(&o));

    assert!(f.train("m", &[]).status.success()); // replaces the model directory
    let mp = f.dir.join("m/manifest.json");
    let text = std::fs::read_to_string(&mp).unwrap().replace("\"format_version\": 2", "\"format_version\": 3");
    std::fs::write(&mp, text).unwrap();
    let o = towers(&["evaluate", "--model", &model, "--test", &f.path("test.tsv")]);
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("format version 3 is newer"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"));

    let o = towers(&["evaluate", "--model", &f.path("missing"), "--test", &f.path("test.tsv")]);
    assert_eq!(o.status.code(), Some(4));
}

#[test]
fn index_build_saves_an_approximate_index_that_recommend_uses() {
    let f = Fixture::new("index");
    assert!(f.train("m", &[]).status.success());
    let model = f.path("m");
    let o = towers(&["index", "build", "--model", &model, "--kind", "hnsw", "--nlist", "8", "--nprobe", "8", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = json(&o);
    assert_eq!((r["kind"].as_str(), r["requested_kind"].as_str()), (Some("ivf"), Some("hnsw")));
    assert_eq!((r["nlist"].as_u64(), r["nprobe"].as_u64()), (Some(8), Some(8)));
    assert_eq!(r["recall_10"].as_f64(), Some(1.0)); // every list probed
    let manifest = std::fs::read_to_string(f.dir.join("m/manifest.json")).unwrap();
    assert!(manifest.contains("index.ivf.safetensors") && manifest.contains("\"recall_10\""));
    let rec = |extra: &[&str]| {
        let mut args = vec!["recommend", "--model", &model, "--user", "7", "-k", "5", "--json"];
        args.extend_from_slice(extra);
        let o = towers(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        json(&o)["items"].clone()
    };
    assert_eq!(rec(&[]), rec(&["--exact"]));
    let o = towers(&["index", "build", "--model", &model]);
    assert!(o.status.success() && stdout(&o).contains("recall@10"), "{}", stderr(&o));
    let o = towers(&["index", "build", "--model", &model, "--kind", "exact"]);
    assert!(o.status.success() && stdout(&o).contains("removed"), "{}", stdout(&o));
    assert!(!f.dir.join("m/index.ivf.safetensors").exists());
    let o = towers(&["index", "build", "--model", &f.path("missing")]);
    assert_eq!(o.status.code(), Some(4));
}

#[test]
fn quickstart_explains_where_to_get_the_data() {
    let o = Command::new(env!("CARGO_BIN_EXE_towers"))
        .args(["quickstart", "--data", "/nonexistent/ml-100k"])
        .env("TOWERS_DATA", "/nonexistent")
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("ml-100k.zip"), "{}", stderr(&o));
}

#[test]
fn quickstart_offline_says_so_and_caches_nothing() {
    let cache = std::env::temp_dir().join(format!("towers-qs-offline-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let o = Command::new(env!("CARGO_BIN_EXE_towers"))
        .arg("quickstart")
        .env_remove("TOWERS_DATA")
        .env("TOWERS_CACHE_DIR", &cache)
        // nothing listens on the discard port
        .env("TOWERS_MOVIELENS_URL", "http://127.0.0.1:9/ml-100k.zip")
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("could not download MovieLens 100K") && stderr(&o).contains("Offline?"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("panicked"));
    let files = std::fs::read_dir(&cache).map(|d| d.count()).unwrap_or(0);
    assert_eq!(files, 0, "nothing cached");
    let _ = std::fs::remove_dir_all(&cache);
}

#[test]
fn sequential_train_evaluate_recommend() {
    let f = Fixture::new("seq");
    // sessions stepping through 20 items; the test file's last item is the target
    let (mut train, mut test) = (String::new(), String::new());
    for s in 0..200 {
        let start = s * 7 % 20;
        let items: Vec<String> = (0..5).map(|j| ((start + j) % 20 + 1).to_string()).collect();
        train.push_str(&format!("{}\n", items.join(" ")));
        if s % 10 == 0 {
            test.push_str(&format!("{}\n", items.join(",")));
        }
    }
    let (tr, te) = (f.write("train_sessions.txt", &train), f.write("test_sessions.txt", &test));
    let out = f.path("s");
    let args = ["train", "--task", "sequential", "--train-format", "sessions", "--train", &tr, "--test", &te];
    let o =
        towers(&[&args[..], &["--dim", "8", "--batch-size", "64", "--epochs", "5", "--out", &out, "--json"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(json(&o)["test"]["top_5"].as_f64().unwrap() > 0.5);

    let o = towers(&["evaluate", "--model", &out, "--test", &te, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = json(&o);
    // (every item is equally popular here, so popularity ties everywhere: its top-k is 1 by TFRS's tie rule)
    assert!(e["top_5"].as_f64().unwrap() > 0.5 && e["baseline"]["top_5"].is_number(), "{e}");
    assert_eq!(e["n"], 20);

    let o = towers(&["recommend", "--model", &out, "--history", "3,4,5", "-k", "3", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = json(&o);
    assert_eq!(r["cold_start"], false);
    assert_eq!(r["items"][0]["id"], "6", "{r}");
    let o = towers(&["recommend", "--model", &out, "--history", "zzz", "--json"]);
    assert_eq!(json(&o)["cold_start"], true);
    assert!(stderr(&o).contains("no item of the history is known"));
    let o = towers(&["recommend", "--model", &out, "--user", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("sequential model"), "{}", stderr(&o));

    // the examples layout, and bad sequence files
    let ex = f.write("ex.tsv", "1\t3 4 0\t5\n2\t7 8 0\t9\n3\t1 2 3\t4\n");
    let o = towers(&[
        "train",
        "--task",
        "sequential",
        "--train-format",
        "examples",
        "--train",
        &ex,
        "--dim",
        "4",
        "--epochs",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bad = f.write("bad_sessions.txt", "1 2 3\n\n4 5\n");
    let o = towers(&[
        "train",
        "--task",
        "sequential",
        "--train-format",
        "sessions",
        "--train",
        &bad,
        "--out",
        &f.path("b"),
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("bad_sessions.txt:2") && stderr(&o).contains("empty session"), "{}", stderr(&o));
    assert!(!f.dir.join("b").exists());
}

#[test]
fn gru4rec_sessions_train_and_bad_headers_are_errors() {
    let f = Fixture::new("gru4rec");
    let mut t = String::from("SessionId\tItemId\tTime\n");
    for s in 0..60 {
        for j in (0..4).rev() {
            // times out of order within a session: put in order when read
            t.push_str(&format!("{s}\t{}\t{}\n", (s + j) % 12 + 1, 1000 * s + j));
        }
    }
    let tr = f.write("events.tsv", &t);
    let o = towers(&[
        "train",
        "--task",
        "sequential",
        "--train-format",
        "gru4rec",
        "--train",
        &tr,
        "--test",
        &tr,
        "--dim",
        "8",
        "--epochs",
        "3",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(json(&o)["test"]["n"].as_u64() == Some(60));
    let bad = f.write("nohead.tsv", "1\t2\t3\n");
    let o = towers(&["train", "--task", "sequential", "--train-format", "gru4rec", "--train", &bad]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("nohead.tsv:1") && stderr(&o).contains("SessionId"), "{}", stderr(&o));
}

#[test]
fn ratings_ranking_features_and_rank_from_the_cli() {
    let f = Fixture::new("beyond-ids");
    let (test, model) = (f.path("test.tsv"), |n: &str| f.path(n));
    let evaluate = |m: &str| {
        let o = towers(&["evaluate", "--model", &model(m), "--test", &test, "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        json(&o)
    };
    let o = f.train("r", &["--task", "rating"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = evaluate("r");
    assert!(e["rmse"].as_f64().unwrap() > 0.0 && e["top_100"].is_number() && e["rmse_mean_baseline"].is_number());

    let o = f.train("k", &["--task", "ranking", "--layers", "16,8"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = evaluate("k");
    assert!(e["rmse"].is_number() && e["ndcg_10_rated"].is_number() && e.get("top_100").is_none(), "{e}");
    let o = towers(&["rank", "--model", &model("k"), "--user", "7", "--items", "1,2,3", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&o)["items"].as_array().unwrap().len(), 3);
    assert!(f.train("m", &[]).status.success());
    let o = towers(&["rank", "--model", &model("k"), "--retriever", &model("m"), "--user", "7", "-k", "4", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&o)["items"].as_array().unwrap().len(), 4);
    let o = towers(&["rank", "--model", &model("k"), "--user", "7", "--items", "1,nope"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));

    // features from a TOML file with attribute tables beside it
    let users: String = (1..=40).map(|u| format!("{u},{},{}\n", 18 + u, if u % 2 == 0 { "F" } else { "M" })).collect();
    f.write("users.csv", &format!("user,age,gender\n{users}"));
    let items: String = (1..=30).map(|i| format!("{i}\tg{}|h{}\n", i % 4, i % 3)).collect();
    f.write("items.tsv", &format!("item\tgenres\n{items}"));
    let cfg = f.write(
        "features.toml",
        "layers = [8]\n[query]\nid_dim = 8\ntable = \"users.csv\"\ntime = { buckets = 8, dim = 4 }\n\
         [[query.features]]\ncolumn = \"age\"\nencoder = \"bucketize\"\nboundaries = [25, 40]\n\
         [[query.features]]\ncolumn = \"gender\"\nencoder = \"category\"\ndim = 2\n\
         [candidate]\nid_dim = 8\ntable = \"items.tsv\"\nid_dropout = 0.1\n\
         [[candidate.features]]\ncolumn = \"genres\"\nencoder = \"multi_hot\"\n",
    );
    let o = f.train("f", &["--features", &cfg]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(evaluate("f")["top_100"].is_number());
    let o = towers(&["recommend", "--model", &model("f"), "--user", "7", "-k", "3", "--json"]);
    assert_eq!(json(&o)["items"].as_array().unwrap().len(), 3);

    // bad feature configurations: exit 2, naming the file and the problem
    let bad = f
        .write("bad.toml", "[query]\ntable = \"users.csv\"\n[[query.features]]\ncolumn = \"age\"\nencoder = \"zip\"\n");
    let o = f.train("x", &["--features", &bad]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bad.toml") && stderr(&o).contains("unknown variant"), "{}", stderr(&o));
    let bad = f.write("bad2.toml", "layers = [4]\n[query]\ntable = \"users.csv\"\n[[query.features]]\ncolumn = \"height\"\nencoder = \"category\"\n");
    let o = f.train("x", &["--features", &bad]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no column 'height'"), "{}", stderr(&o));
    let o = f.train("x", &["--features", "movielens", "--movielens-dir", &f.path("nowhere")]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!Path::new(&f.path("x")).exists());
}

/// `towers train --task sequential` (small model, 2 epochs) with extra arguments.
fn train_sequential(format: &str, train: &str, extra: &[&str]) -> std::process::Output {
    let args = ["train", "--task", "sequential", "--train-format", format, "--train", train];
    towers(&[&args[..], &["--dim", "8", "--batch-size", "64", "--epochs", "2"], extra].concat())
}

#[test]
fn sequential_user_histories_from_an_interaction_table() {
    let f = Fixture::new("histories");
    let (tr, out) = (f.path("train.tsv"), f.path("h"));
    // leave-last-out over the users' time-ordered histories, with a projection and sampled negatives
    let extra = ["--split", "last", "--projection", "true", "--sampled-negatives", "16", "--out", &out, "--json"];
    let o = train_sequential("interactions", &tr, &extra);
    assert!(o.status.success(), "{}", stderr(&o));
    let t = &json(&o)["test"];
    assert_eq!(t["n"], 40, "{t}");
    for k in ["mrr_1", "mrr_5", "mrr_10", "mrr_20", "mrr_50", "mrr_100"] {
        assert!(t[k].is_number() && t["repeat_last"][k].is_number(), "missing {k}: {t}");
    }
    let manifest = std::fs::read_to_string(f.dir.join("h/manifest.json")).unwrap();
    assert!(manifest.contains("\"projection\": true") && manifest.contains("\"sampled_negatives\": 16"), "{manifest}");
    // the saved model (projection included) evaluates the histories of a table as its test format
    let o = towers(&["evaluate", "--model", &out, "--test", &tr]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("repeat last item") && text.contains("MRR@k") && text.contains("popularity"), "{text}");
    let o = towers(&["recommend", "--model", &out, "--history", "3,6,9", "-k", "4", "--json"]);
    assert_eq!(json(&o)["items"].as_array().unwrap().len(), 4, "{}", stderr(&o));

    // a table without timestamps has no histories; other splits are refused
    let no_time = f.write("no_time.csv", "user,item\n1,2\n1,3\n");
    let o = train_sequential("interactions", &no_time, &[]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("no_time.csv") && stderr(&o).contains("timestamp"), "{}", stderr(&o));
    let o = train_sequential("interactions", &tr, &["--split", "random:0.2"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--split last"), "{}", stderr(&o));
    let o = towers(&["train", "--train-format", "sessions", "--train", &tr]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--task sequential"), "{}", stderr(&o));
}

#[test]
fn sequential_from_retailrocket_events() {
    let f = Fixture::new("rrevents");
    let (day, min) = (86_400_000u64, 60_000u64);
    let t0 = 1_433_000_000_000u64;
    let mut csv = String::from("timestamp,visitorid,event,itemid,transactionid\n");
    // 40 training sessions of 4 views in the first 10 days (and carts, which are ignored) ...
    for v in 0..40u64 {
        let start = t0 + (v % 10) * day + v * 10 * min;
        for j in 0..4 {
            csv.push_str(&format!("{},{v},view,{},\n", start + j * min, (v + j) % 6 + 1));
        }
        csv.push_str(&format!("{},{v},addtocart,{},\n", start + 5 * min, v % 6 + 1));
    }
    // ... and 10 test sessions of 3 views on day 20 (the last 7 days)
    for v in 100..110u64 {
        let start = t0 + 20 * day + (v - 100) * 10 * min;
        for j in 0..3 {
            csv.push_str(&format!("{},{v},view,{},\n", start + j * min, (v + j) % 6 + 1));
        }
    }
    let ev = f.write("events.csv", &csv);
    let out = f.path("rr");
    let o = train_sequential("retailrocket-events", &ev, &["--out", &out, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j = json(&o);
    // every position of the 40 training sessions; the derived test sessions evaluated at the end
    assert_eq!((j["n_train"].as_u64(), j["test"]["n"].as_u64()), (Some(120), Some(10)), "{j}");
    let o = towers(&["evaluate", "--model", &out, "--test", &ev, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&o)["n"], 10);
    assert!(json(&o)["repeat_last"]["top_1"].is_number());

    let bad = f.write(
        "bad_events.csv",
        "timestamp,visitorid,event,itemid,transactionid\n1433000000000,1,view,5,\nsoon,1,view,6,\n",
    );
    let o = train_sequential("retailrocket-events", &bad, &[]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("bad_events.csv:3") && stderr(&o).contains("timestamp"), "{}", stderr(&o));
}

#[test]
fn the_books_references_are_the_generated_ones() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/src/reference");
    for (args, file) in [(&["reference"][..], "cli.md"), (&["reference", "--openapi"][..], "openapi.json")] {
        let o = towers(args);
        assert!(o.status.success(), "{}", stderr(&o));
        let want = std::fs::read_to_string(root.join(file)).unwrap();
        assert!(
            stdout(&o) == want,
            "docs/src/reference/{file} is not current: `cargo run -p towers-cli -- {} > docs/src/reference/{file}`",
            args.join(" ")
        );
    }
}
