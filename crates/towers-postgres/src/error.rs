//! The one error type of the crate, a variant per kind of failure.

/// What can go wrong talking to PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad option: a connection URL that does not parse, an invalid table name, a setting
    /// out of range.
    #[error("invalid {what}: {msg}")]
    Config {
        /// The option.
        what: &'static str,
        /// What is wrong with it.
        msg: String,
    },
    /// Inconsistent input to an export (lengths that do not match, an empty catalogue).
    #[error("{0}")]
    Data(String),
    /// No server could be reached or it is shutting down, starting up or overloaded; the
    /// same call may succeed later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database holds no usable catalogue: never exported, or of another dimension.
    #[error("{0}")]
    Schema(String),
    /// Any other error the server reported.
    #[error("database error: {0}")]
    Database(String),
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// True when retrying later (or on another server) may succeed.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Unavailable(_))
    }

    pub(crate) fn config(what: &'static str, msg: impl Into<String>) -> Self {
        Error::Config { what, msg: msg.into() }
    }
}

/// SQLSTATE classes and codes that mean "this server cannot answer now": connection exceptions
/// (08), insufficient resources (53), operator intervention (57: shutdown, starting up, a query
/// cancelled by a timeout or a conflict with recovery on a replica), serialization failures and
/// deadlocks (40), and a replica that cannot take writes (25006 is not retried: it is a bug).
fn transient(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("53") || code.starts_with("57") || code.starts_with("40")
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        let Some(db) = e.as_db_error() else {
            // no answer from a server: refused, reset, closed, timed out
            return Error::Unavailable(e.to_string());
        };
        let code = db.code().code();
        let msg = match db.detail() {
            Some(detail) => format!("{}: {detail}", db.message()),
            None => db.message().to_string(),
        };
        if transient(code) {
            Error::Unavailable(msg)
        } else if code == "42P01" {
            Error::Schema(format!("{msg} (export a model first: towers export --model DIR --postgres URL)"))
        } else if code == "22000" && msg.contains("dimensions") {
            Error::Schema(format!("{msg} (the exported catalogue and the model differ in dimension)"))
        } else {
            Error::Database(format!("{msg} (SQLSTATE {code})"))
        }
    }
}

impl From<deadpool_postgres::PoolError> for Error {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            deadpool_postgres::PoolError::PostCreateHook(deadpool_postgres::HookError::Backend(e)) => e.into(),
            other => Error::Unavailable(other.to_string()),
        }
    }
}
