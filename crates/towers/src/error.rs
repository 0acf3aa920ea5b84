//! The one error type of the library.

use std::path::PathBuf;

/// Everything that can go wrong in towers. Each variant carries enough context (file, line,
/// field) for a user to find and fix the problem.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// An input file is malformed.
    #[error("{}{}: {msg}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number, where there is one.
        line: Option<u64>,
        /// What was expected and what was found (naming the field).
        msg: String,
    },
    /// A configuration value is out of range or inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A saved model is missing, corrupt or of an incompatible format.
    #[error("model {}: {msg}", path.display())]
    Artifact {
        /// The model directory or file.
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
    },
    /// A user, item or other named thing that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A request that cannot be served as asked (e.g. an empty training set).
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// A parse error at a line of a file.
    pub fn parse(path: impl Into<PathBuf>, line: Option<u64>, msg: impl Into<String>) -> Self {
        Error::Parse { path: path.into(), line, msg: msg.into() }
    }

    /// An error about a saved model.
    pub fn artifact(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Artifact { path: path.into(), msg: msg.into() }
    }
}

/// The library's result type.
pub type Result<T> = std::result::Result<T, Error>;
