//! Durable PBX state for Parley: users, SIP registrations (bindings) and subscriptions, behind
//! the [`Store`] trait.
//!
//! - [`RedbStore`] is the embedded default: tables in `DATA/parley.redb`, the same file the
//!   apps crate keeps its own tables in (share one open [`redb::Database`] with
//!   [`RedbStore::from_database`] / [`RedbStore::database`]: redb locks the file per process).
//! - [`MemoryStore`] keeps everything in memory, for tests of other crates.
//!
//! A clustered backend implements the same trait later: reads return plain records, and every
//! change goes through [`Store::apply`] as a batch of [`StoreOp`]s that commits as one
//! transaction (group commit), which is also the unit a replicated log would carry.
//!
//! Secrets ([`ha1_md5`], [`ha1_sha256`], [`hash_pin`], [`verify_pin`]) and the CSV user import
//! ([`import_users`]) live here too, so every front end (CLI, HTTP admin) shares one set of
//! rules.

mod codec;
mod import;
pub mod mailstore;
mod memory;
mod redb_store;
mod secrets;
pub mod wav;

use std::net::SocketAddr;

pub use import::{
    ImportReport, MAX_ALIASES, MAX_CSV_BYTES, MAX_EMAIL, MAX_NAME, MAX_ROWS, MAX_SIP_PASSWORD,
    RowOutcome, RowReport, format_user_list, import_users,
};
pub use mailstore::{Counts, Folder, Greeting, MailError, MailStore, Mailstore, Message};
pub use memory::MemoryStore;
pub use redb_store::RedbStore;
pub use secrets::{ha1_md5, ha1_sha256, hash_pin, is_valid_pin, verify_pin};

/// A user of the PBX: an extension with its name, aliases and secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    /// The extension, e.g. `"201"`: `[0-9A-Za-z._-]{1,32}` (see [`is_valid_user`]).
    pub user: String,
    pub first_name: String,
    pub last_name: String,
    /// Other names that reach this user (same syntax as `user`; unique across all users).
    pub aliases: Vec<String>,
    pub email: Option<String>,
    /// Slow hash of the voicemail PIN: an argon2 PHC string ([`hash_pin`]).
    pub pin_hash: Option<String>,
    /// The realm the HA1s were made for.
    pub realm: String,
    /// `MD5(user:realm:password)`, lowercase hex ([`ha1_md5`]).
    pub ha1_md5: Option<String>,
    /// `SHA-256(user:realm:password)`, lowercase hex ([`ha1_sha256`]).
    pub ha1_sha256: Option<String>,
}

/// One registered contact of an address of record (RFC 3261 §10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindingRecord {
    /// The address of record: the user.
    pub aor: String,
    /// The Contact URI.
    pub contact: String,
    pub expires_unix: u64,
    /// Contact `q` times 1000: `0..=1000`.
    pub q: u16,
    pub call_id: String,
    pub cseq: u32,
    /// Path header values (RFC 3327), in order.
    pub path: Vec<String>,
    /// `"udp"` or `"tcp"`.
    pub transport: String,
    /// Where the REGISTER came from.
    pub source: SocketAddr,
    /// `+sip.instance` (RFC 5626), if given.
    pub instance: Option<String>,
    pub user_agent: Option<String>,
}

/// One subscription dialog (e.g. message-summary for a mailbox, RFC 3842), as the notifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionRecord {
    pub mailbox: String,
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
    /// The From URI of the subscriber.
    pub remote_uri: String,
    pub local_uri: String,
    /// The subscriber's Contact.
    pub remote_target: String,
    pub route_set: Vec<String>,
    pub expires_unix: u64,
    pub next_cseq: u32,
    pub transport: String,
    pub source: SocketAddr,
    /// The Event header `id` parameter, if any.
    pub event_id: Option<String>,
}

/// One change; [`Store::apply`] commits a batch of them together.
// Ops are built a few at a time and consumed at once: boxing the big variant buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreOp {
    /// Insert or replace each user (keyed by `user`).
    PutUsers(Vec<UserRecord>),
    /// Replace every binding of `aor` (an empty list removes the AOR).
    ReplaceBindings {
        aor: String,
        bindings: Vec<BindingRecord>,
    },
    /// Insert or replace the subscription keyed by (`call_id`, `local_tag`).
    PutSubscription(SubscriptionRecord),
    /// Remove a subscription; removing one that is absent is not an error.
    RemoveSubscription { call_id: String, local_tag: String },
}

/// Storage of users, bindings and subscriptions.
pub trait Store: Send + Sync + 'static {
    /// The user named `user` (not an alias), if any.
    fn user(&self, user: &str) -> Result<Option<UserRecord>>;
    /// Every user, sorted by `user`.
    fn users(&self) -> Result<Vec<UserRecord>>;
    /// Every binding of every AOR (AORs in order).
    fn bindings(&self) -> Result<Vec<BindingRecord>>;
    /// Every subscription, ordered by (`call_id`, `local_tag`).
    fn subscriptions(&self) -> Result<Vec<SubscriptionRecord>>;
    /// Applies every op in one transaction: all or nothing.
    fn apply(&self, ops: &[StoreOp]) -> Result<()>;
}

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Another process has `parley.redb` open.
    #[error(
        "the database is in use by a running parley (another process has parley.redb open); \
         stop it or use its admin interface"
    )]
    Locked,
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] redb::Error),
    /// Creating the data folder failed.
    #[error("data folder: {0}")]
    Io(#[from] std::io::Error),
    /// A stored value did not decode.
    #[error("corrupt {what} record: {reason}")]
    Corrupt { what: &'static str, reason: String },
}

impl Error {
    /// Maps any redb error, turning "already open" into [`Error::Locked`].
    pub(crate) fn db(e: impl Into<redb::Error>) -> Self {
        match e.into() {
            redb::Error::DatabaseAlreadyOpen => Error::Locked,
            e => Error::Db(e),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Whether `s` is a valid user or alias: 1 to 32 of `[0-9A-Za-z._-]`.
pub fn is_valid_user(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests;
