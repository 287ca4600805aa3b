//! An in-memory [`Store`], for tests of other crates.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::{BindingRecord, Result, Store, StoreOp, SubscriptionRecord, UserRecord};

#[derive(Clone, Default)]
struct Tables {
    users: BTreeMap<String, UserRecord>,
    bindings: BTreeMap<String, Vec<BindingRecord>>,
    subscriptions: BTreeMap<(String, String), SubscriptionRecord>,
}

/// Everything in memory behind one mutex; `apply` is atomic like a transaction.
#[derive(Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        // A panic while holding the lock cannot leave a half-applied batch (see `apply`).
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Store for MemoryStore {
    fn user(&self, user: &str) -> Result<Option<UserRecord>> {
        Ok(self.lock().users.get(user).cloned())
    }

    fn users(&self) -> Result<Vec<UserRecord>> {
        Ok(self.lock().users.values().cloned().collect())
    }

    fn bindings(&self) -> Result<Vec<BindingRecord>> {
        Ok(self.lock().bindings.values().flatten().cloned().collect())
    }

    fn subscriptions(&self) -> Result<Vec<SubscriptionRecord>> {
        Ok(self.lock().subscriptions.values().cloned().collect())
    }

    fn apply(&self, ops: &[StoreOp]) -> Result<()> {
        let mut guard = self.lock();
        // Apply to a copy and swap it in: all or nothing.
        let mut t = guard.clone();
        for op in ops {
            match op {
                StoreOp::PutUsers(list) => {
                    for u in list {
                        t.users.insert(u.user.clone(), u.clone());
                    }
                }
                StoreOp::ReplaceBindings { aor, bindings } => {
                    if bindings.is_empty() {
                        t.bindings.remove(aor);
                    } else {
                        t.bindings.insert(aor.clone(), bindings.clone());
                    }
                }
                StoreOp::PutSubscription(s) => {
                    t.subscriptions
                        .insert((s.call_id.clone(), s.local_tag.clone()), s.clone());
                }
                StoreOp::RemoveSubscription { call_id, local_tag } => {
                    t.subscriptions
                        .remove(&(call_id.clone(), local_tag.clone()));
                }
            }
        }
        *guard = t;
        Ok(())
    }
}
