//! The one error type of the library, with a variant for each kind of failure: bad input
//! (a file, the data, an option, a request), a bad model directory, and internal failures.

use std::path::PathBuf;

/// Everything that can go wrong in towers. Each variant carries enough context (file, line,
/// field) for a user to find and fix the problem; [`Error::kind`] says which kind it is.
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
    /// Input data that parse but cannot be used (an empty training set, a missing column…).
    #[error("{0}")]
    Data(String),
    /// A configuration value or option is out of range or inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A request this model cannot serve (e.g. a user for a model of item histories).
    #[error("{0}")]
    Unsupported(String),
    /// A user, item or other named thing that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A saved model is missing, corrupt or of an incompatible format.
    #[error("model {}: {msg}", path.display())]
    Artifact {
        /// The model directory or file.
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
    },
    /// Another writer holds the model directory, or changed it since it was read.
    #[error("{}: {msg}", path.display())]
    Busy {
        /// The model directory.
        path: PathBuf,
        /// Who holds it, or what changed.
        msg: String,
    },
    /// Training was stopped by its observer (e.g. Ctrl-C).
    #[error("interrupted")]
    Interrupted,
    /// A service this call depends on (e.g. the database holding the candidates) cannot be
    /// reached now; the same call may succeed later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A failure that is not the input's fault: a bug, or serialisation that cannot fail.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The kinds of [`Error`], for exit codes and exception classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Reading or writing a file failed, or a service could not be reached.
    Io,
    /// A bad option, configuration or request.
    Usage,
    /// Bad input data (a malformed file, unusable data, an unknown id).
    Input,
    /// A missing, corrupt or incompatible model directory.
    Artifact,
    /// A model directory held or changed by another writer: try again.
    Busy,
    /// Stopped by the caller.
    Interrupted,
    /// A bug.
    Internal,
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

    /// An internal failure, from anything that displays.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Error::Internal(e.to_string())
    }

    /// Which kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Io { .. } | Error::Unavailable(_) => ErrorKind::Io,
            Error::Config(_) | Error::Unsupported(_) => ErrorKind::Usage,
            Error::Parse { .. } | Error::Data(_) | Error::NotFound(_) => ErrorKind::Input,
            Error::Artifact { .. } => ErrorKind::Artifact,
            Error::Busy { .. } => ErrorKind::Busy,
            Error::Interrupted => ErrorKind::Interrupted,
            Error::Internal(_) => ErrorKind::Internal,
        }
    }
}

/// The library's result type.
pub type Result<T> = std::result::Result<T, Error>;
