//! Durable state in redb: one database file, `parley.redb`, in the data folder.
//!
//! Writes commit with redb's default durability (fsync before `commit` returns), so a count
//! acknowledged over HTTP survives a killed process. Mailboxes and users join this store in
//! later issues; the storage trait for clustered backends comes with them.

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::Result;

/// How many times callers chose each option of the demo (key: the digit).
const DEMO_CHOICES: TableDefinition<&str, u64> = TableDefinition::new("demo_choices");

/// Switches of the auto-attendant (key `special_mode`).
const ATTENDANT: TableDefinition<&str, bool> = TableDefinition::new("attendant");
const SPECIAL_MODE: &str = "special_mode";

/// The redb-backed store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
}

impl Store {
    /// Opens (or creates) `DIR/parley.redb`, creating the folder if needed.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let db = Database::create(dir.join("parley.redb"))?;
        Self::from_database(Arc::new(db))
    }

    /// Uses a database another part of the process already opened.
    pub fn from_database(db: Arc<Database>) -> Result<Self> {
        // Create tables up front so readers never see "table does not exist".
        let tx = db.begin_write()?;
        tx.open_table(DEMO_CHOICES)?;
        tx.open_table(ATTENDANT)?;
        tx.commit()?;
        Ok(Self { db })
    }

    /// The open database (the mailstore keeps its tables in it too).
    pub fn database(&self) -> Arc<Database> {
        self.db.clone()
    }

    /// Durably adds one to the count of `choice`; returns the new count.
    pub fn record_demo_choice(&self, choice: &str) -> Result<u64> {
        let tx = self.db.begin_write()?;
        let n = {
            let mut table = tx.open_table(DEMO_CHOICES)?;
            let n = table.get(choice)?.map(|v| v.value()).unwrap_or(0) + 1;
            table.insert(choice, n)?;
            n
        };
        tx.commit()?;
        Ok(n)
    }

    /// Every choice with its count, in key order.
    pub fn demo_choices(&self) -> Result<Vec<(String, u64)>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(DEMO_CHOICES)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (k, v) = entry?;
            out.push((k.value().to_string(), v.value()));
        }
        Ok(out)
    }
}

impl Store {
    /// Whether the auto-attendant's special mode (closed for weather...) is on.
    pub fn special_mode(&self) -> Result<bool> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(ATTENDANT)?;
        Ok(table.get(SPECIAL_MODE)?.is_some_and(|v| v.value()))
    }

    /// Durably turns special mode on or off.
    pub fn set_special_mode(&self, on: bool) -> Result<()> {
        let tx = self.db.begin_write()?;
        tx.open_table(ATTENDANT)?.insert(SPECIAL_MODE, on)?;
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp_dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("parley-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn counts_survive_reopen() {
        let dir = tmp_dir("reopen");
        {
            let s = Store::open(&dir).unwrap();
            assert_eq!(s.record_demo_choice("1").unwrap(), 1);
            assert_eq!(s.record_demo_choice("1").unwrap(), 2);
            assert_eq!(s.record_demo_choice("2").unwrap(), 1);
        }
        let s = Store::open(&dir).unwrap();
        assert_eq!(
            s.demo_choices().unwrap(),
            vec![("1".to_string(), 2), ("2".to_string(), 1)]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn special_mode_survives_reopen() {
        let dir = tmp_dir("special");
        {
            let s = Store::open(&dir).unwrap();
            assert!(!s.special_mode().unwrap(), "off by default");
            s.set_special_mode(true).unwrap();
        }
        let s = Store::open(&dir).unwrap();
        assert!(s.special_mode().unwrap());
        s.set_special_mode(false).unwrap();
        assert!(!s.special_mode().unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
