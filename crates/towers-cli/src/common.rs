//! Pieces shared by the subcommands: reading tables, exit codes, printing metrics.

use clap::Args as ClapArgs;
use std::path::{Path, PathBuf};
use towers::data::{Interactions, TableFormat};
use towers::{Error, ErrorKind};

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

/// A library message in the CLI's words: each option the library names as `` `name` `` (its
/// own, Python's spelling) becomes the flag of that name (`--name-with-dashes`) where some
/// subcommand of `C` has one; other quoted names lose their quotes. A message about the keys of
/// a file (a TOML or JSON reader's "unknown field `x`, expected one of …") is left as it is: those
/// names are the file's.
pub fn cli_spelling<C: clap::CommandFactory>(message: &str) -> String {
    if ["unknown field", "expected one of", "unknown variant", "invalid type", "missing field"]
        .iter()
        .any(|m| message.contains(m))
    {
        return message.to_string();
    }
    fn flags(c: &clap::Command, out: &mut std::collections::HashMap<String, String>) {
        for a in c.get_arguments() {
            if let Some(long) = a.get_long() {
                out.entry(a.get_id().to_string()).or_insert_with(|| format!("--{long}"));
            }
        }
        c.get_subcommands().for_each(|s| flags(s, out));
    }
    let mut names = std::collections::HashMap::new();
    flags(&C::command(), &mut names);
    let mut out = String::with_capacity(message.len());
    let mut parts = message.split('`');
    out.push_str(parts.next().unwrap_or_default());
    let rest: Vec<&str> = parts.collect();
    // quoted names come in pairs of backticks; an odd one out is kept as it is
    let pairs = rest.len() / 2 * 2;
    for (i, part) in rest.iter().enumerate() {
        match (i % 2, i < pairs) {
            (0, true) => out.push_str(names.get(*part).map_or(part, String::as_str)),
            (0, false) => {
                out.push('`');
                out.push_str(part);
            }
            _ => out.push_str(part),
        }
    }
    out
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

/// Prints a report (an evaluation's tables).
pub fn print_report(r: &impl std::fmt::Display) -> towers::Result<()> {
    crate::outln!("{}", r.to_string().trim_end())
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
    /// The changes to a pipeline's post-ranking rules (the library refuses them for a single
    /// model).
    pub fn overrides(&self) -> towers::Result<towers::recommend::PostOverrides> {
        let caps = self.cap.iter().map(|c| c.parse()).collect::<towers::Result<Vec<_>>>()?;
        Ok(towers::recommend::PostOverrides {
            diversity: self.diversity,
            caps: (!caps.is_empty()).then_some(caps),
            boost: (!self.boost.is_empty()).then(|| self.boost.clone()),
            dedupe: self.dedupe.clone(),
        })
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
