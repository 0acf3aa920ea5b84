//! Pieces shared by the subcommands: reading tables, exit codes, printing metrics.

use clap::Args as ClapArgs;
use std::path::{Path, PathBuf};
use towers::data::{Interactions, RetailRocketPrep, Sessions, TableFormat};
use towers::eval::RatingMetrics;
use towers::train::SequenceFormat;
use towers::{Artifact, Error, Evaluation};

/// Exit status for an error: 2 bad usage or configuration, 3 bad input data, 4 bad or
/// incompatible model directory, 1 anything else (I/O).
pub fn exit_code(e: &Error) -> u8 {
    match e {
        Error::Config(_) => 2,
        Error::Parse { .. } | Error::Invalid(_) | Error::NotFound(_) => 3,
        Error::Artifact { .. } => 4,
        Error::Io { .. } => 1,
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
        let header = if self.header {
            Some(true)
        } else if self.no_header {
            Some(false)
        } else {
            None
        };
        Ok(TableFormat { delimiter, header, columns: self.columns.clone(), ..Default::default() })
    }

    /// Reads an interaction table.
    pub fn read(&self, path: &Path) -> towers::Result<Interactions> {
        Interactions::read(path, &self.format()?)
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

/// A human-readable table of an evaluation: recall@k (= top-k accuracy) then MRR@k, the model
/// beside popularity (and, for sequential models, "repeat the last item").
pub fn print_evaluation(e: &Evaluation) {
    println!(
        "{} test pairs{}, ranked against all candidates ({:.3} s)",
        e.model.n,
        if e.exclude_seen { ", training items excluded" } else { "" },
        e.eval_s
    );
    let mut rows = vec![("model", &e.model), ("popularity", &e.baseline)];
    if let Some(r) = &e.repeat_last {
        rows.push(("repeat last item", r));
    }
    println!(
        "{:<18} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}",
        "recall@k", "1", "5", "10", "20", "50", "100", "NDCG@10"
    );
    for (name, m) in &rows {
        println!("{}", row(name, m.recalls(), m.ndcg_10));
    }
    println!("{:<18} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}", "MRR@k", "1", "5", "10", "20", "50", "100", "MRR");
    for (name, m) in &rows {
        println!("{}", row(name, m.mrrs(), m.mrr));
    }
    if e.unknown_users + e.unknown_items > 0 {
        println!(
            "({} pairs with a user unknown to the model, {} with an unknown item: always a miss)",
            e.unknown_users, e.unknown_items
        );
    }
    if let Some(r) = &e.rating {
        print_ratings(r);
    }
}

/// A human-readable table of rating metrics beside their baselines.
pub fn print_ratings(r: &RatingMetrics) {
    println!("{} rated test pairs", r.n_rated);
    println!("{:<12} {:>7} {:>14}", "", "RMSE", "NDCG@10 rated");
    println!("{:<12} {:>7.4} {:>14.4}", "model", r.rmse, r.ndcg_10_rated);
    println!("{:<12} {:>7.4} {:>14}", "mean rating", r.rmse_mean_baseline, "");
    println!("{:<12} {:>7} {:>14.4}", "popularity", "", r.ndcg_10_rated_popularity);
}

/// What evaluating a user → item model gives: ranking metrics over all candidates (retrieval
/// and rating models), or rating metrics alone (ranking models).
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
pub enum Report {
    /// Ranked against every candidate.
    TopK(Box<Evaluation>),
    /// Ratings predicted for the test pairs.
    Ratings(RatingMetrics),
}

impl Report {
    /// Evaluates a user → item model on a test table.
    pub fn of(model: &Artifact, test: &Interactions, exclude_seen: bool) -> towers::Result<Report> {
        Ok(match &model.model {
            towers::model::Model::Ranking(_) => Report::Ratings(model.evaluate_ratings(test)?),
            _ => Report::TopK(Box::new(model.evaluate(test, exclude_seen)?)),
        })
    }

    /// Prints the report's table.
    pub fn print(&self) {
        match self {
            Report::TopK(e) => print_evaluation(e),
            Report::Ratings(r) => print_ratings(r),
        }
    }
}

/// Layout of sequence files.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqFormat {
    /// One session per line (items separated by spaces or commas).
    Sessions,
    /// `query<TAB>context ids (0 = padding)<TAB>target` per line.
    Examples,
    /// GRU4Rec's `SessionId<TAB>ItemId<TAB>Time` table with a header.
    Gru4rec,
    /// An interaction table with timestamps: one history per user, in time order.
    Interactions,
    /// RetailRocket's raw events.csv (GRU4Rec's preprocessing; its test sessions).
    RetailrocketEvents,
}

impl From<SeqFormat> for SequenceFormat {
    fn from(f: SeqFormat) -> Self {
        match f {
            SeqFormat::Sessions => SequenceFormat::Sessions,
            SeqFormat::Examples => SequenceFormat::Examples,
            SeqFormat::Gru4rec => SequenceFormat::Gru4rec,
            SeqFormat::Interactions => SequenceFormat::Interactions,
            SeqFormat::RetailrocketEvents => SequenceFormat::RetailrocketEvents,
        }
    }
}

/// Per-user histories of an interaction table, which needs a timestamp column.
pub fn read_histories(path: &Path, table: &TableArgs) -> towers::Result<Sessions> {
    let t = table.read(path)?;
    if t.timestamps.is_none() {
        return Err(Error::parse(
            path,
            None,
            "user histories need a timestamp column (name it in the header or with --columns user,item,rating,timestamp)",
        ));
    }
    Sessions::from_interactions(&t)
}

/// Reads a sequence file in the given layout as test sequences (the last item of each is the
/// target); an events file gives the test sessions of its preprocessing.
pub fn read_sequences(path: &Path, format: SequenceFormat, table: &TableArgs) -> towers::Result<Sessions> {
    match format {
        SequenceFormat::Sessions => Sessions::read_lines(path),
        SequenceFormat::Examples => Sessions::read_examples(path),
        SequenceFormat::Gru4rec => Sessions::read_gru4rec(path),
        SequenceFormat::Interactions => read_histories(path, table),
        SequenceFormat::RetailrocketEvents => Ok(RetailRocketPrep::default().apply(path)?.1),
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
    println!("{}", serde_json::to_string(v).map_err(|e| Error::Invalid(e.to_string()))?);
    Ok(())
}
