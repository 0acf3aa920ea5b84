//! `towers bench scale`: training and evaluation at the scale users have (millions of users and
//! items), on a synthetic set with `../shared/peer/synth.py`'s structure, beside TFRS's
//! `tfrs_scale.py` on the same file when the peer is set up. towers runs as a child process, so
//! that its peak memory is its own.

use super::peer::PeerArgs;
use crate::common::print_json;
use clap::Args as ClapArgs;
use serde_json::{Value, json};
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use towers::Error;
use towers::data::synthetic::Synthetic;

/// Options of `towers bench scale`.
#[derive(ClapArgs, Debug)]
pub struct ScaleArgs {
    /// Users of the synthetic set.
    #[arg(long, default_value_t = 1_000_000)]
    pub users: usize,
    /// Items of the synthetic set.
    #[arg(long, default_value_t = 200_000)]
    pub items: usize,
    /// Training rows.
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: usize,
    /// Rows after the training rows, evaluated against every item (0: no evaluation).
    #[arg(long, default_value_t = 0)]
    pub test_rows: usize,
    /// Seed of the synthetic set.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Train on this interaction file instead of a synthetic one (and test on --test, if given).
    #[arg(long)]
    pub train: Option<PathBuf>,
    /// Test file for --train.
    #[arg(long, requires = "train")]
    pub test: Option<PathBuf>,
    /// Training settings: `towers train`'s recipe (tfrs: TFRS's, which the peer runs too).
    #[arg(long, default_value = "tfrs")]
    pub recipe: String,
    /// Batch size.
    #[arg(long, default_value_t = 4096)]
    pub batch_size: usize,
    /// Epochs (the last one's time is reported).
    #[arg(long, default_value_t = 2)]
    pub epochs: usize,
    /// Where the files go (default: a temporary folder, removed afterwards).
    #[arg(long)]
    pub work: Option<PathBuf>,
    #[command(flatten)]
    pub peer: PeerArgs,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Runs the `towers` binary beside this one with `args` and returns the JSON object it prints
/// last.
fn towers(args: &[&str]) -> towers::Result<Value> {
    let exe = std::env::current_exe().map_err(|e| Error::io("towers", e))?.with_file_name("towers");
    let out = Command::new(&exe).args(args).arg("--json").output().map_err(|e| Error::io(&exe, e))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().rev().find_map(|l| serde_json::from_str(l).ok()).ok_or_else(|| {
        Error::Internal(format!("towers {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    })
}

/// Splits `all` into its first `rows` lines (`train`) and the rest (`test`).
fn split(all: &Path, rows: usize, train: &Path, test: &Path) -> towers::Result<()> {
    fn io(p: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |e| Error::io(p, e)
    }
    let reader = std::io::BufReader::new(std::fs::File::open(all).map_err(io(all))?);
    let mut a = BufWriter::new(std::fs::File::create(train).map_err(io(train))?);
    let mut b = BufWriter::new(std::fs::File::create(test).map_err(io(test))?);
    for (i, line) in reader.lines().enumerate() {
        let out = if i < rows { &mut a } else { &mut b };
        writeln!(out, "{}", line.map_err(io(all))?).map_err(io(train))?;
    }
    a.flush().map_err(io(train))?;
    b.flush().map_err(io(test))
}

pub fn run(a: ScaleArgs) -> towers::Result<()> {
    let temp = std::env::temp_dir().join(format!("towers-bench-scale-{}", std::process::id()));
    let work = a.work.clone().unwrap_or_else(|| temp.clone());
    std::fs::create_dir_all(&work).map_err(|e| Error::io(&work, e))?;
    let say = |s: String| -> towers::Result<()> {
        if !a.json {
            crate::outln!("{s}")?;
        }
        Ok(())
    };
    let mut report = json!({ "recipe": a.recipe, "batch_size": a.batch_size, "epochs": a.epochs });
    let (train, test) = match &a.train {
        Some(t) => (t.clone(), a.test.clone()),
        None => {
            let all = work.join("synthetic.tsv");
            let s = Synthetic {
                users: a.users,
                items: a.items,
                rows: a.rows + a.test_rows,
                seed: a.seed,
                ..Default::default()
            };
            let start = Instant::now();
            s.write(&all)?;
            say(format!(
                "synthetic: {} users, {} items, {} + {} rows in {:.1} s",
                a.users,
                a.items,
                a.rows,
                a.test_rows,
                start.elapsed().as_secs_f64()
            ))?;
            report["synthetic"] =
                json!({ "users": a.users, "items": a.items, "rows": a.rows, "test_rows": a.test_rows, "seed": a.seed });
            match a.test_rows {
                0 => (all, None),
                _ => {
                    let (tr, te) = (work.join("train.tsv"), work.join("test.tsv"));
                    split(&all, a.rows, &tr, &te)?;
                    std::fs::remove_file(&all).map_err(|e| Error::io(&all, e))?;
                    (tr, Some(te))
                }
            }
        }
    };
    let model = work.join("model");
    let (b, e) = (a.batch_size.to_string(), a.epochs.to_string());
    let t = towers(&[
        "train",
        "--train",
        &train.to_string_lossy(),
        "--recipe",
        &a.recipe,
        "--batch-size",
        &b,
        "--epochs",
        &e,
        "--out",
        &model.to_string_lossy(),
        "-q",
    ])?;
    let epoch_s = t["epoch_s"].as_array().and_then(|v| v.last()).and_then(Value::as_f64).unwrap_or(f64::NAN);
    let rows = t["n_train"].as_f64().unwrap_or(f64::NAN);
    say(format!(
        "towers: {epoch_s:.2} s/epoch ({:.0} rows/s), peak memory {:.0} MB",
        rows / epoch_s,
        t["max_rss_mb"].as_f64().unwrap_or(f64::NAN)
    ))?;
    report["epoch_s"] = json!(epoch_s);
    report["rows_per_s"] = json!(rows / epoch_s);
    report["max_rss_mb"] = t["max_rss_mb"].clone();
    if let Some(test) = &test {
        let ev = towers(&["evaluate", "--model", &model.to_string_lossy(), "--test", &test.to_string_lossy()])?;
        say(format!(
            "evaluate {} pairs against every item: {:.2} s; top-10 {:.4} (popularity {:.4})",
            ev["n"],
            ev["eval_s"].as_f64().unwrap_or(f64::NAN),
            ev["top_10"].as_f64().unwrap_or(f64::NAN),
            ev["baseline"]["top_10"].as_f64().unwrap_or(f64::NAN)
        ))?;
        for k in ["eval_s", "top_10", "top_100", "n"] {
            report[k] = ev[k].clone();
        }
        report["baseline_top_10"] = ev["baseline"]["top_10"].clone();
    }
    let args = ["--train", &train.to_string_lossy(), "--epochs", &e, "--batch", &b].map(String::from);
    match a.peer.run("tfrs_scale.py", &args) {
        Some(p) => {
            let theirs = p["epoch_s"].as_array().and_then(|v| v.last()).and_then(Value::as_f64).unwrap_or(f64::NAN);
            say(format!(
                "TFRS: {theirs:.2} s/epoch, peak memory {} MB; towers is {:.1}x faster per epoch",
                p["max_rss_mb"],
                theirs / epoch_s
            ))?;
            report["tfrs_epoch_s"] = json!(theirs);
            report["tfrs_max_rss_mb"] = p["max_rss_mb"].clone();
            report["speedup_epoch"] = json!(theirs / epoch_s);
        }
        None => say("TFRS peer: not set up or failed (../shared/peer/setup.sh)".into())?,
    }
    if a.work.is_none() {
        let _ = std::fs::remove_dir_all(&temp);
    }
    if a.json {
        print_json(&report)?;
    }
    Ok(())
}
