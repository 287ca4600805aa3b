//! The embedded default: tables in `DATA/parley.redb`.

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::codec;
use crate::{BindingRecord, Error, Result, Store, StoreOp, SubscriptionRecord, UserRecord};

/// Users, key: the user.
const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// Bindings, key: the AOR; value: every binding of it.
const BINDINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("bindings");
/// Subscriptions, key: (Call-ID, local tag).
const SUBSCRIPTIONS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("subscriptions");

/// The redb-backed [`Store`]; cheap to clone (the database is shared).
///
/// Writes commit with redb's default durability (fsync before [`Store::apply`] returns).
#[derive(Clone)]
pub struct RedbStore {
    db: Arc<Database>,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore").finish_non_exhaustive()
    }
}

impl RedbStore {
    /// Opens (or creates) `DIR/parley.redb`, creating the folder if needed, and creates the
    /// store's tables. Fails with [`Error::Locked`] if another process has the file open.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let db = Database::create(dir.join("parley.redb")).map_err(Error::db)?;
        Self::from_database(Arc::new(db))
    }

    /// Uses a database another component of this process already opened (redb locks the
    /// file per process); creates the store's tables in it.
    pub fn from_database(db: Arc<Database>) -> Result<Self> {
        // Create tables up front so readers never see "table does not exist".
        let tx = db.begin_write().map_err(Error::db)?;
        tx.open_table(USERS).map_err(Error::db)?;
        tx.open_table(BINDINGS).map_err(Error::db)?;
        tx.open_table(SUBSCRIPTIONS).map_err(Error::db)?;
        tx.commit().map_err(Error::db)?;
        Ok(Self { db })
    }

    /// The open database, to share with other components of this process.
    pub fn database(&self) -> Arc<Database> {
        self.db.clone()
    }
}

impl Store for RedbStore {
    fn user(&self, user: &str) -> Result<Option<UserRecord>> {
        let tx = self.db.begin_read().map_err(Error::db)?;
        let table = tx.open_table(USERS).map_err(Error::db)?;
        match table.get(user).map_err(Error::db)? {
            Some(v) => Ok(Some(codec::decode_user(v.value())?)),
            None => Ok(None),
        }
    }

    fn users(&self) -> Result<Vec<UserRecord>> {
        let tx = self.db.begin_read().map_err(Error::db)?;
        let table = tx.open_table(USERS).map_err(Error::db)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(Error::db)? {
            let (_, v) = entry.map_err(Error::db)?;
            out.push(codec::decode_user(v.value())?);
        }
        Ok(out)
    }

    fn bindings(&self) -> Result<Vec<BindingRecord>> {
        let tx = self.db.begin_read().map_err(Error::db)?;
        let table = tx.open_table(BINDINGS).map_err(Error::db)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(Error::db)? {
            let (_, v) = entry.map_err(Error::db)?;
            out.extend(codec::decode_bindings(v.value())?);
        }
        Ok(out)
    }

    fn subscriptions(&self) -> Result<Vec<SubscriptionRecord>> {
        let tx = self.db.begin_read().map_err(Error::db)?;
        let table = tx.open_table(SUBSCRIPTIONS).map_err(Error::db)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(Error::db)? {
            let (_, v) = entry.map_err(Error::db)?;
            out.push(codec::decode_subscription(v.value())?);
        }
        Ok(out)
    }

    fn apply(&self, ops: &[StoreOp]) -> Result<()> {
        let tx = self.db.begin_write().map_err(Error::db)?;
        {
            let mut users = tx.open_table(USERS).map_err(Error::db)?;
            let mut bindings = tx.open_table(BINDINGS).map_err(Error::db)?;
            let mut subs = tx.open_table(SUBSCRIPTIONS).map_err(Error::db)?;
            for op in ops {
                match op {
                    StoreOp::PutUsers(list) => {
                        for u in list {
                            let v = codec::encode_user(u);
                            users
                                .insert(u.user.as_str(), v.as_slice())
                                .map_err(Error::db)?;
                        }
                    }
                    StoreOp::ReplaceBindings { aor, bindings: b } => {
                        if b.is_empty() {
                            bindings.remove(aor.as_str()).map_err(Error::db)?;
                        } else {
                            let v = codec::encode_bindings(b);
                            bindings
                                .insert(aor.as_str(), v.as_slice())
                                .map_err(Error::db)?;
                        }
                    }
                    StoreOp::PutSubscription(s) => {
                        let v = codec::encode_subscription(s);
                        subs.insert((s.call_id.as_str(), s.local_tag.as_str()), v.as_slice())
                            .map_err(Error::db)?;
                    }
                    StoreOp::RemoveSubscription { call_id, local_tag } => {
                        subs.remove((call_id.as_str(), local_tag.as_str()))
                            .map_err(Error::db)?;
                    }
                }
            }
        }
        // Dropping `tx` without commit (on any error above) aborts every op.
        tx.commit().map_err(Error::db)?;
        Ok(())
    }
}

#[cfg(test)]
impl RedbStore {
    /// Writes raw bytes as the value of user `key` (to test corrupt values).
    pub(crate) fn put_raw_user(&self, key: &str, bytes: &[u8]) -> Result<()> {
        let tx = self.db.begin_write().map_err(Error::db)?;
        tx.open_table(USERS)
            .map_err(Error::db)?
            .insert(key, bytes)
            .map_err(Error::db)?;
        tx.commit().map_err(Error::db)?;
        Ok(())
    }
}
