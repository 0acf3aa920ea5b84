//! Pieces shared by the subcommands: reading tables, exit codes, printing metrics.

use clap::Args as ClapArgs;
use std::path::{Path, PathBuf};
use towers::data::{Interactions, TableFormat};
use towers::eval::Ranked;
use towers::metrics::RatingMetrics;
use towers::{Error, ErrorKind, Evaluation};

/// Exit status for an error: 1 I/O, 2 bad usage (an option, a configuration, a request the
/// model cannot serve), 3 bad input data, 4 a missing, corrupt or incompatible model directory,
/// 5 an internal error, 75 a model directory held or changed by another writer (try again), 130
/// interrupted.
pub fn exit_code(e: &Error) -> u8 {
    match e.kind() {
        ErrorKind::Io => 1,
        ErrorKind::Usage => 2,
        ErrorKind::Input => 3,
        ErrorKind::Artifact => 4,
        ErrorKind::Internal => 5,
        ErrorKind::Busy => 75,
        ErrorKind::Interrupted => 130,
    }
}

/// How to read interaction tables.
#[derive(ClapArgs, Debug, Clone, Default)]
pub struct TableArgs {
    /// Column names of the interaction files, in order (e.g. user_id,movie_id,rating,timestamp).
    /// Default: the header's names, or MovieLens' user,item,rating,timestamp for headerless files.
    #[arg(long, value_delimiter = ',')]
    pub columns: Option<Vec<String>>,
    /// Field delimiter: tab, comma, or a single character (default: guessed).
    #[arg(long)]
    pub delimiter: Option<String>,
    /// The files have a header row (default: detected).
    #[arg(long, conflicts_with = "no_header")]
    pub header: bool,
    /// The files have no header row.
    #[arg(long)]
    pub no_header: bool,
    /// The longest line a text table may have, in bytes (a longer one is an error).
    #[arg(long, default_value_t = towers::data::MAX_LINE_BYTES, value_parser = clap::value_parser!(usize))]
    pub max_line_bytes: usize,
}

impl TableArgs {
    /// The library's table format.
    pub fn format(&self) -> towers::Result<TableFormat> {
        let delimiter = match self.delimiter.as_deref() {
            None => None,
            Some("tab" | "\\t" | "\t") => Some(b'\t'),
            Some("comma") => Some(b','),
            Some(s) if s.len() == 1 => Some(s.as_bytes()[0]),
            Some(s) => return Err(Error::Config(format!("--delimiter '{s}': expected tab, comma or one character"))),
        };
        let header = match (self.header, self.no_header) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        };
        if self.max_line_bytes < 64 {
            return Err(Error::Config(format!("--max-line-bytes must be at least 64, got {}", self.max_line_bytes)));
        }
        Ok(TableFormat {
            delimiter,
            header,
            columns: self.columns.clone(),
            max_line_bytes: Some(self.max_line_bytes),
            ..Default::default()
        })
    }

    /// Reads an interaction table.
    pub fn read(&self, path: &Path) -> towers::Result<Interactions> {
        Interactions::read(path, &self.format()?)
    }
}

/// Takes the write lock of a model directory: at once, or waiting for its holder with `wait`.
pub fn lock_model_dir(dir: &Path, wait: bool) -> towers::Result<towers::artifact::DirLock> {
    match wait {
        true => towers::artifact::DirLock::wait(dir),
        false => towers::artifact::DirLock::acquire(dir),
    }
}

/// Where MovieLens 100K is: `--data`, else `$TOWERS_DATA`, else the shared data folder beside
/// the checkout; a folder holding `ml-100k/` is accepted too.
pub fn movielens_dir(data: Option<PathBuf>) -> Option<PathBuf> {
    use towers::data::movielens::MovieLens;
    let places = data
        .into_iter()
        .chain(std::env::var_os("TOWERS_DATA").map(PathBuf::from))
        .chain([PathBuf::from("../shared/data")]);
    places.flat_map(|d| [d.join("ml-100k"), d]).find(|d| MovieLens::is_present(d))
}

fn row(name: &str, v: [f64; 6], last: f64) -> String {
    format!(
        "{name:<18} {:>7.4} {:>7.4} {:>7.4} {:>7.4} {:>7.4} {:>7.4} {:>7.4}",
        v[0], v[1], v[2], v[3], v[4], v[5], last
    )
}

/// The header row of a metric table: the metric, k = 1…100, and the summary column.
fn header(metric: &str, summary: &str) -> towers::Result<()> {
    crate::outln!("{metric:<18} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {summary:>7}", "1", "5", "10", "20", "50", "100")
}

/// A human-readable table of an evaluation: recall@k (= top-k accuracy) then MRR@k, the model
/// beside popularity (and, for sequential models, "repeat the last item"), then the rating
/// metrics beside theirs.
pub fn print_evaluation(e: &Evaluation) -> towers::Result<()> {
    if let Some(r) = &e.ranked {
        print_ranked(r)?;
    }
    if let Some(r) = &e.rating {
        print_ratings(r)?;
    }
    Ok(())
}

fn print_ranked(e: &Ranked) -> towers::Result<()> {
    crate::outln!(
        "{} test pairs{}, ranked against all candidates ({:.3} s)",
        e.model.n,
        if e.exclude_seen { ", training items excluded" } else { "" },
        e.eval_s
    )?;
    let mut rows = vec![("model", &e.model), ("popularity", &e.baseline)];
    if let Some(r) = &e.repeat_last {
        rows.push(("repeat last item", r));
    }
    header("recall@k", "NDCG@10")?;
    for (name, m) in &rows {
        crate::outln!("{}", row(name, m.recalls(), m.ndcg_10))?;
    }
    header("MRR@k", "MRR")?;
    for (name, m) in &rows {
        crate::outln!("{}", row(name, m.mrrs(), m.mrr))?;
    }
    if e.unknown_users + e.unknown_items > 0 {
        crate::outln!(
            "({} pairs with a user unknown to the model, {} with an unknown item: always a miss)",
            e.unknown_users,
            e.unknown_items
        )?;
    }
    Ok(())
}

fn print_ratings(r: &RatingMetrics) -> towers::Result<()> {
    crate::outln!("{} rated test pairs", r.n_rated)?;
    crate::outln!("{:<12} {:>7} {:>14}", "", "RMSE", "NDCG@10 rated")?;
    crate::outln!("{:<12} {:>7.4} {:>14.4}", "model", r.rmse, r.ndcg_10_rated)?;
    crate::outln!("{:<12} {:>7.4} {:>14}", "mean rating", r.rmse_mean_baseline, "")?;
    crate::outln!("{:<12} {:>7} {:>14.4}", "popularity", "", r.ndcg_10_rated_popularity)
}

/// A human-readable table of a pipeline's evaluation: its answers beside the retriever's own
/// order, then diversity and coverage.
pub fn print_pipeline_evaluation(e: &towers::PipelineEvaluation) -> towers::Result<()> {
    crate::outln!(
        "{} test pairs{}, pipeline answers (retrieve {} → rank → post-rank{}; {:.3} s)",
        e.model.n,
        if e.exclude_seen { ", training items excluded" } else { "" },
        e.retrieve,
        if e.diversity > 0.0 { format!(", diversity {}", e.diversity) } else { String::new() },
        e.eval_s
    )?;
    header("recall@k", "NDCG@10")?;
    crate::outln!("{}", row("pipeline", e.model.recalls(), e.model.ndcg_10))?;
    crate::outln!("{}", row("retriever alone", e.retriever.recalls(), e.retriever.ndcg_10))?;
    crate::outln!(
        "ILD@10 {:.4} (retriever alone {:.4}); catalogue coverage of the top 10: {:.4}",
        e.ild_10,
        e.retriever_ild_10,
        e.coverage_10
    )
}

/// Post-ranking options of a pipeline, overriding its own rules for this query.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct PostArgs {
    /// Pipelines: diversity, the MMR λ in [0, 1] (0: the ranker's order).
    #[arg(long)]
    pub diversity: Option<f32>,
    /// Pipelines: at most MAX items per value of an item attribute, ATTRIBUTE:MAX (repeatable), e.g. genres:3.
    #[arg(long)]
    pub cap: Vec<String>,
    /// Pipelines: item ids to lift (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub boost: Vec<String>,
    /// Pipelines: one item per value of this attribute (e.g. title).
    #[arg(long)]
    pub dedupe: Option<String>,
    /// Pipelines: candidates to retrieve for the ranker.
    #[arg(long)]
    pub retrieve: Option<usize>,
}

impl PostArgs {
    /// Whether any option was given.
    pub fn any(&self) -> bool {
        self.diversity.is_some()
            || !self.cap.is_empty()
            || !self.boost.is_empty()
            || self.dedupe.is_some()
            || self.retrieve.is_some()
    }

    /// The pipeline's rules with the options given applied; `None` when none was given.
    pub fn apply(
        &self,
        base: &towers::recommend::PostRanking,
    ) -> towers::Result<Option<towers::recommend::PostRanking>> {
        let caps = self.cap.iter().map(|c| c.parse()).collect::<towers::Result<Vec<_>>>()?;
        towers::recommend::PostOverrides {
            diversity: self.diversity,
            caps: (!caps.is_empty()).then_some(caps),
            boost: (!self.boost.is_empty()).then(|| self.boost.clone()),
            dedupe: self.dedupe.clone(),
            exclude: Vec::new(),
        }
        .apply(base)
    }

    /// An error when an option was given for a model that is not a pipeline.
    pub fn refuse(&self) -> towers::Result<()> {
        if self.any() {
            return Err(towers::Error::Config(
                "--diversity, --cap, --boost, --dedupe and --retrieve are for pipelines (towers train --task pipeline)"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// The peak resident memory of this process so far, in MB.
pub fn max_rss_mb() -> f64 {
    // SAFETY: getrusage writes into the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    match unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } {
        0 => usage.ru_maxrss as f64 / 1024.0, // kilobytes on Linux
        _ => f64::NAN,
    }
}

/// Checks a `-k` option.
pub fn check_k(k: usize) -> towers::Result<usize> {
    match k {
        1..=100_000 => Ok(k),
        _ => Err(Error::Config(format!("-k must be in 1..=100000, got {k}"))),
    }
}

/// Prints a value as one line of JSON.
pub fn print_json<T: serde::Serialize>(v: &T) -> towers::Result<()> {
    crate::outln!("{}", serde_json::to_string(v).map_err(Error::internal)?)
}

/// Writes a line to stdout: a failed write (a full disk) is an error, not a panic. A closed
/// pipe ends the process quietly (SIGPIPE, see `main`).
pub fn write_stdout(line: std::fmt::Arguments<'_>) -> towers::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_fmt(line)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("stdout", e))
}

/// `println!` that returns an error instead of panicking when stdout cannot be written.
#[macro_export]
macro_rules! outln {
    ($($t:tt)*) => {
        $crate::common::write_stdout(format_args!($($t)*))
    };
}

/// What identifies a model: the first 16 hex digits of the sha256 of its manifest (kind,
/// settings, sizes, training figures, index), so that every training run, and every index built
/// on it, gets its own. `/v1/model` shows it; `export` records it beside the catalogue.
pub fn model_version(artifact: &towers::Artifact) -> String {
    use sha2::Digest;
    let manifest = serde_json::to_vec(&artifact.manifest()).unwrap_or_default();
    let digest = sha2::Sha256::digest(&manifest);
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}
