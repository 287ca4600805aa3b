//! Errors of the apps role (start-up and storage; HTTP outcomes are responses, not errors).

/// An apps error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Socket or file error.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// A configuration section is invalid (the message names the key).
    #[error("config: {0}")]
    Config(String),
    /// The redb store failed.
    #[error("store: {0}")]
    Store(String),
}

/// Result with the apps [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

macro_rules! store_error {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self { Error::Store(e.to_string()) }
        }
    )*};
}
store_error!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
