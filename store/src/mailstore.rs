//! Voicemail messages: metadata in redb (table `messages` of `parley.redb`), audio as WAV files
//! under `DATA/voicemail/<mailbox>/<id>.wav`.
//!
//! # Crash safety
//!
//! [`Mailstore::deposit`] returns only when the message is durable: the WAV is written to a
//! temporary file, fsync'd, renamed into place and the folder fsync'd, and only then is the
//! metadata row committed (redb fsyncs on commit). So after a crash (kill -9, power loss) every
//! deposit that returned is there and playable. What a crash can leave behind is a file without
//! a row (a deposit that never returned) or a temporary file: [`Mailstore::open`] removes both.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::{Error, is_valid_user};

/// Messages, key: (mailbox, id).
const MESSAGES: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("messages");
/// Counters, key: name; `"next_message_id"`.
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("mailstore_counters");
/// The active greeting of each mailbox that chose one (absent: the system greeting).
const ACTIVE_GREETING: TableDefinition<&str, u8> = TableDefinition::new("active_greeting");

/// Largest greeting or recorded name: two minutes of 8 kHz 16-bit PCM plus slack.
pub const MAX_GREETING_BYTES: usize = 2 * 1024 * 1024;

/// A mailbox owner's recordings other than messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Greeting {
    /// Played when no other is active.
    Standard,
    /// "I am out of the office today."
    OutOfOffice,
    /// "I am away until ..."
    ExtendedAbsence,
    /// The owner's recorded name (the system greeting and dial by name use it).
    Name,
}

impl Greeting {
    /// Every kind, in menu order.
    pub const ALL: [Greeting; 4] = [
        Greeting::Standard,
        Greeting::OutOfOffice,
        Greeting::ExtendedAbsence,
        Greeting::Name,
    ];

    /// The kind's name: its file name and its name in the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            Greeting::Standard => "standard",
            Greeting::OutOfOffice => "out-of-office",
            Greeting::ExtendedAbsence => "extended-absence",
            Greeting::Name => "name",
        }
    }

    fn code(self) -> u8 {
        match self {
            Greeting::Standard => 1,
            Greeting::OutOfOffice => 2,
            Greeting::ExtendedAbsence => 3,
            Greeting::Name => 4,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        Greeting::ALL.into_iter().find(|g| g.code() == c)
    }
}

/// Largest message accepted: ten minutes of 8 kHz 16-bit PCM plus slack.
pub const MAX_MESSAGE_BYTES: usize = 10 * 1024 * 1024;
/// Most messages one mailbox holds, all folders together.
pub const MAX_MESSAGES_PER_MAILBOX: usize = 500;
/// Longest caller identity kept with a message.
pub const MAX_FROM: usize = 256;

/// Where a message is, as the mailbox owner sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Folder {
    /// Not heard yet.
    New,
    /// Heard and kept.
    Saved,
    /// Deleted, not yet purged (can be restored).
    Deleted,
}

impl Folder {
    fn code(self) -> u8 {
        match self {
            Folder::New => 0,
            Folder::Saved => 1,
            Folder::Deleted => 2,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Folder::New),
            1 => Some(Folder::Saved),
            2 => Some(Folder::Deleted),
            _ => None,
        }
    }

    /// The folder's name in the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            Folder::New => "new",
            Folder::Saved => "saved",
            Folder::Deleted => "deleted",
        }
    }
}

/// One message's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub mailbox: String,
    pub id: u64,
    pub folder: Folder,
    /// Who left it (a SIP URI or number), as given at deposit.
    pub from: String,
    pub received_unix: u64,
    pub duration_ms: u32,
    /// Size of the WAV file.
    pub bytes: u64,
}

/// Messages per folder of one mailbox.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub new: usize,
    pub saved: usize,
    pub deleted: usize,
}

/// Why a mailstore operation was refused (beyond storage failures).
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The mailbox name is not a valid user name.
    #[error("bad mailbox name")]
    BadMailbox,
    /// The audio is not a WAV file or is too large.
    #[error("bad message audio: {0}")]
    BadAudio(&'static str),
    /// The mailbox holds [`MAX_MESSAGES_PER_MAILBOX`] messages.
    #[error("mailbox full")]
    Full,
    /// That greeting cannot be made active.
    #[error("greeting: {0}")]
    BadGreeting(&'static str),
    /// No such message.
    #[error("no such message")]
    NotFound,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] Error),
}

/// The voicemail store; cheap to clone.
#[derive(Clone)]
pub struct Mailstore {
    db: Arc<Database>,
    root: PathBuf,
}

impl std::fmt::Debug for Mailstore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailstore")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

fn io(e: std::io::Error) -> MailError {
    MailError::Store(Error::Io(e))
}

fn db_err(e: impl Into<redb::Error>) -> MailError {
    MailError::Store(Error::db(e))
}

impl Mailstore {
    /// The mailstore in `db` (shared with the other tables of `parley.redb`) with audio under
    /// `root`; cleans up what a crash left (files of deposits that never completed).
    pub fn open(db: Arc<Database>, root: &Path) -> std::result::Result<Self, MailError> {
        std::fs::create_dir_all(root).map_err(io)?;
        let store = Mailstore {
            db,
            root: root.to_path_buf(),
        };
        let tx = store.db.begin_write().map_err(db_err)?;
        tx.open_table(MESSAGES).map_err(db_err)?;
        tx.open_table(COUNTERS).map_err(db_err)?;
        tx.open_table(ACTIVE_GREETING).map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        store.recover()?;
        Ok(store)
    }

    fn mailbox_dir(&self, mailbox: &str) -> PathBuf {
        self.root.join(mailbox)
    }

    /// The WAV file of a message (it exists once the message is listed).
    pub fn audio_path(&self, mailbox: &str, id: u64) -> PathBuf {
        self.mailbox_dir(mailbox).join(format!("{id}.wav"))
    }

    /// Stores a message and returns once it is durable (file and row fsync'd).
    pub fn deposit(
        &self,
        mailbox: &str,
        from: &str,
        wav: &[u8],
        received_unix: u64,
    ) -> std::result::Result<Message, MailError> {
        if !is_valid_user(mailbox) {
            return Err(MailError::BadMailbox);
        }
        if wav.len() > MAX_MESSAGE_BYTES {
            return Err(MailError::BadAudio("too large"));
        }
        let duration_ms = wav_duration_ms(wav).ok_or(MailError::BadAudio("not a PCM WAV"))?;
        if self.counts(mailbox)?.total() >= MAX_MESSAGES_PER_MAILBOX {
            return Err(MailError::Full);
        }
        let id = self.next_id()?;
        let dir = self.mailbox_dir(mailbox);
        std::fs::create_dir_all(&dir).map_err(io)?;
        let tmp = dir.join(format!("{id}.wav.tmp"));
        let path = self.audio_path(mailbox, id);
        {
            let mut f = File::create(&tmp).map_err(io)?;
            f.write_all(wav).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &path).map_err(io)?;
        File::open(&dir).and_then(|d| d.sync_all()).map_err(io)?;
        let message = Message {
            mailbox: mailbox.to_owned(),
            id,
            folder: Folder::New,
            from: from.chars().take(MAX_FROM).collect(),
            received_unix,
            duration_ms,
            bytes: wav.len() as u64,
        };
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = tx.open_table(MESSAGES).map_err(db_err)?;
            t.insert((mailbox, id), encode(&message).as_slice())
                .map_err(db_err)?;
        }
        tx.commit().map_err(db_err)?;
        Ok(message)
    }

    fn next_id(&self) -> std::result::Result<u64, MailError> {
        let tx = self.db.begin_write().map_err(db_err)?;
        let id = {
            let mut t = tx.open_table(COUNTERS).map_err(db_err)?;
            let id = t
                .get("next_message_id")
                .map_err(db_err)?
                .map_or(1, |v| v.value());
            t.insert("next_message_id", id + 1).map_err(db_err)?;
            id
        };
        tx.commit().map_err(db_err)?;
        Ok(id)
    }

    /// Every message of a mailbox, oldest first.
    pub fn list(&self, mailbox: &str) -> std::result::Result<Vec<Message>, MailError> {
        if !is_valid_user(mailbox) {
            return Err(MailError::BadMailbox);
        }
        let tx = self.db.begin_read().map_err(db_err)?;
        let t = tx.open_table(MESSAGES).map_err(db_err)?;
        let mut out = Vec::new();
        for row in t
            .range((mailbox, 0)..=(mailbox, u64::MAX))
            .map_err(db_err)?
        {
            let (k, v) = row.map_err(db_err)?;
            let (_, id) = k.value();
            out.push(decode(mailbox, id, v.value())?);
        }
        Ok(out)
    }

    /// One message.
    pub fn message(&self, mailbox: &str, id: u64) -> std::result::Result<Message, MailError> {
        if !is_valid_user(mailbox) {
            return Err(MailError::BadMailbox);
        }
        let tx = self.db.begin_read().map_err(db_err)?;
        let t = tx.open_table(MESSAGES).map_err(db_err)?;
        let v = t
            .get((mailbox, id))
            .map_err(db_err)?
            .ok_or(MailError::NotFound)?;
        decode(mailbox, id, v.value())
    }

    /// Messages per folder.
    pub fn counts(&self, mailbox: &str) -> std::result::Result<Counts, MailError> {
        let mut c = Counts::default();
        for m in self.list(mailbox)? {
            match m.folder {
                Folder::New => c.new += 1,
                Folder::Saved => c.saved += 1,
                Folder::Deleted => c.deleted += 1,
            }
        }
        Ok(c)
    }

    /// Moves a message to `folder` (save, delete, restore).
    pub fn set_folder(
        &self,
        mailbox: &str,
        id: u64,
        folder: Folder,
    ) -> std::result::Result<Message, MailError> {
        let mut m = self.message(mailbox, id)?;
        m.folder = folder;
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = tx.open_table(MESSAGES).map_err(db_err)?;
            t.insert((mailbox, id), encode(&m).as_slice())
                .map_err(db_err)?;
        }
        tx.commit().map_err(db_err)?;
        Ok(m)
    }

    /// Removes a message for good: the row first (so a crash leaves at most an orphan file,
    /// which the next open removes), then its file.
    pub fn purge(&self, mailbox: &str, id: u64) -> std::result::Result<(), MailError> {
        self.message(mailbox, id)?;
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = tx.open_table(MESSAGES).map_err(db_err)?;
            t.remove((mailbox, id)).map_err(db_err)?;
        }
        tx.commit().map_err(db_err)?;
        match std::fs::remove_file(self.audio_path(mailbox, id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(e)),
            _ => Ok(()),
        }
    }

    /// Where a greeting's WAV lives (whether or not it was recorded).
    pub fn greeting_path(&self, mailbox: &str, g: Greeting) -> PathBuf {
        self.mailbox_dir(mailbox)
            .join(format!("greeting-{}.wav", g.as_str()))
    }

    /// Whether the owner recorded this greeting.
    pub fn has_greeting(&self, mailbox: &str, g: Greeting) -> bool {
        is_valid_user(mailbox) && self.greeting_path(mailbox, g).is_file()
    }

    /// Stores (replaces) a greeting, durably: temporary file, fsync, rename, folder fsync.
    pub fn put_greeting(
        &self,
        mailbox: &str,
        g: Greeting,
        wav: &[u8],
    ) -> std::result::Result<u32, MailError> {
        if !is_valid_user(mailbox) {
            return Err(MailError::BadMailbox);
        }
        if wav.len() > MAX_GREETING_BYTES {
            return Err(MailError::BadAudio("too large"));
        }
        let duration_ms = wav_duration_ms(wav).ok_or(MailError::BadAudio("not a PCM WAV"))?;
        let dir = self.mailbox_dir(mailbox);
        std::fs::create_dir_all(&dir).map_err(io)?;
        let path = self.greeting_path(mailbox, g);
        let tmp = path.with_extension("wav.tmp");
        {
            let mut f = File::create(&tmp).map_err(io)?;
            f.write_all(wav).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &path).map_err(io)?;
        File::open(&dir).and_then(|d| d.sync_all()).map_err(io)?;
        Ok(duration_ms)
    }

    /// The greeting callers hear; `None`: the system greeting (the recorded name or the
    /// extension, then "is not available").
    pub fn active_greeting(
        &self,
        mailbox: &str,
    ) -> std::result::Result<Option<Greeting>, MailError> {
        if !is_valid_user(mailbox) {
            return Err(MailError::BadMailbox);
        }
        let tx = self.db.begin_read().map_err(db_err)?;
        let t = tx.open_table(ACTIVE_GREETING).map_err(db_err)?;
        Ok(t.get(mailbox)
            .map_err(db_err)?
            .and_then(|v| Greeting::from_code(v.value())))
    }

    /// Chooses the active greeting (`None`: the system greeting). The name is not a greeting.
    pub fn set_active_greeting(
        &self,
        mailbox: &str,
        g: Option<Greeting>,
    ) -> std::result::Result<(), MailError> {
        if !is_valid_user(mailbox) {
            return Err(MailError::BadMailbox);
        }
        match g {
            Some(Greeting::Name) => {
                return Err(MailError::BadGreeting("the name is not a greeting"));
            }
            Some(g) if !self.has_greeting(mailbox, g) => {
                return Err(MailError::BadGreeting("not recorded"));
            }
            _ => {}
        }
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = tx.open_table(ACTIVE_GREETING).map_err(db_err)?;
            match g {
                Some(g) => t.insert(mailbox, g.code()).map_err(db_err)?,
                None => t.remove(mailbox).map_err(db_err)?,
            };
        }
        tx.commit().map_err(db_err)?;
        Ok(())
    }

    /// Removes temporary files and files without a row; drops rows whose file is gone.
    fn recover(&self) -> std::result::Result<(), MailError> {
        let Ok(dirs) = std::fs::read_dir(&self.root) else {
            return Ok(());
        };
        for dir in dirs.flatten() {
            let Some(mailbox) = dir.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if !is_valid_user(&mailbox) || !dir.path().is_dir() {
                continue;
            }
            let known: std::collections::HashSet<u64> =
                self.list(&mailbox)?.iter().map(|m| m.id).collect();
            let mut present = std::collections::HashSet::new();
            for file in std::fs::read_dir(dir.path()).map_err(io)?.flatten() {
                let name = file.file_name();
                let name = name.to_string_lossy();
                let id = name
                    .strip_suffix(".wav")
                    .and_then(|n| n.parse::<u64>().ok());
                match id {
                    Some(id) if known.contains(&id) => {
                        present.insert(id);
                    }
                    // A temporary file, or a deposit that never returned.
                    _ if name.ends_with(".wav.tmp") || id.is_some() => {
                        let _ = std::fs::remove_file(file.path());
                    }
                    _ => {}
                }
            }
            let lost: Vec<u64> = known.difference(&present).copied().collect();
            if !lost.is_empty() {
                let tx = self.db.begin_write().map_err(db_err)?;
                {
                    let mut t = tx.open_table(MESSAGES).map_err(db_err)?;
                    for id in lost {
                        t.remove((mailbox.as_str(), id)).map_err(db_err)?;
                    }
                }
                tx.commit().map_err(db_err)?;
            }
        }
        Ok(())
    }
}

/// Voicemail storage as the apps role sees it: message metadata, folders, greetings and the
/// active greeting, with recordings as WAV files under the data directory (the paths below).
/// [`Mailstore`] (redb + local files) is the embedded backend; a clustered one implements this.
pub trait MailStore: Send + Sync + 'static {
    /// Stores a message; returns once it is durable.
    fn deposit(
        &self,
        mailbox: &str,
        from: &str,
        wav: &[u8],
        received_unix: u64,
    ) -> std::result::Result<Message, MailError>;
    /// Every message of a mailbox, oldest first.
    fn list(&self, mailbox: &str) -> std::result::Result<Vec<Message>, MailError>;
    /// One message.
    fn message(&self, mailbox: &str, id: u64) -> std::result::Result<Message, MailError>;
    /// Messages per folder.
    fn counts(&self, mailbox: &str) -> std::result::Result<Counts, MailError>;
    /// Moves a message to `folder`.
    fn set_folder(
        &self,
        mailbox: &str,
        id: u64,
        folder: Folder,
    ) -> std::result::Result<Message, MailError>;
    /// Removes a message for good.
    fn purge(&self, mailbox: &str, id: u64) -> std::result::Result<(), MailError>;
    /// The WAV of a message.
    fn audio_path(&self, mailbox: &str, id: u64) -> PathBuf;
    /// The WAV of a greeting (recorded or not).
    fn greeting_path(&self, mailbox: &str, g: Greeting) -> PathBuf;
    /// Whether the owner recorded this greeting.
    fn has_greeting(&self, mailbox: &str, g: Greeting) -> bool;
    /// Stores (replaces) a greeting durably; its length in ms.
    fn put_greeting(
        &self,
        mailbox: &str,
        g: Greeting,
        wav: &[u8],
    ) -> std::result::Result<u32, MailError>;
    /// The greeting callers hear (`None`: the system greeting).
    fn active_greeting(&self, mailbox: &str) -> std::result::Result<Option<Greeting>, MailError>;
    /// Chooses the active greeting.
    fn set_active_greeting(
        &self,
        mailbox: &str,
        g: Option<Greeting>,
    ) -> std::result::Result<(), MailError>;
}

// Inherent methods win name resolution: each line calls the method of the same name above.
impl MailStore for Mailstore {
    fn deposit(
        &self,
        mailbox: &str,
        from: &str,
        wav: &[u8],
        received_unix: u64,
    ) -> std::result::Result<Message, MailError> {
        Mailstore::deposit(self, mailbox, from, wav, received_unix)
    }
    fn list(&self, mailbox: &str) -> std::result::Result<Vec<Message>, MailError> {
        Mailstore::list(self, mailbox)
    }
    fn message(&self, mailbox: &str, id: u64) -> std::result::Result<Message, MailError> {
        Mailstore::message(self, mailbox, id)
    }
    fn counts(&self, mailbox: &str) -> std::result::Result<Counts, MailError> {
        Mailstore::counts(self, mailbox)
    }
    fn set_folder(
        &self,
        mailbox: &str,
        id: u64,
        folder: Folder,
    ) -> std::result::Result<Message, MailError> {
        Mailstore::set_folder(self, mailbox, id, folder)
    }
    fn purge(&self, mailbox: &str, id: u64) -> std::result::Result<(), MailError> {
        Mailstore::purge(self, mailbox, id)
    }
    fn audio_path(&self, mailbox: &str, id: u64) -> PathBuf {
        Mailstore::audio_path(self, mailbox, id)
    }
    fn greeting_path(&self, mailbox: &str, g: Greeting) -> PathBuf {
        Mailstore::greeting_path(self, mailbox, g)
    }
    fn has_greeting(&self, mailbox: &str, g: Greeting) -> bool {
        Mailstore::has_greeting(self, mailbox, g)
    }
    fn put_greeting(
        &self,
        mailbox: &str,
        g: Greeting,
        wav: &[u8],
    ) -> std::result::Result<u32, MailError> {
        Mailstore::put_greeting(self, mailbox, g, wav)
    }
    fn active_greeting(&self, mailbox: &str) -> std::result::Result<Option<Greeting>, MailError> {
        Mailstore::active_greeting(self, mailbox)
    }
    fn set_active_greeting(
        &self,
        mailbox: &str,
        g: Option<Greeting>,
    ) -> std::result::Result<(), MailError> {
        Mailstore::set_active_greeting(self, mailbox, g)
    }
}

impl Counts {
    /// All folders together.
    pub fn total(&self) -> usize {
        self.new + self.saved + self.deleted
    }
}

/// The duration of a PCM WAV; `None` if it is not one we can play.
pub fn wav_duration_ms(wav: &[u8]) -> Option<u32> {
    crate::wav::Pcm::parse(wav).map(|p| p.duration_ms())
}

const VERSION: u8 = 1;

fn encode(m: &Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + m.from.len());
    out.push(VERSION);
    out.push(m.folder.code());
    out.extend_from_slice(&m.received_unix.to_le_bytes());
    out.extend_from_slice(&m.duration_ms.to_le_bytes());
    out.extend_from_slice(&m.bytes.to_le_bytes());
    let from = m.from.as_bytes();
    let len = from.len().min(u16::MAX as usize);
    out.extend_from_slice(&(len as u16).to_le_bytes());
    out.extend_from_slice(&from[..len]);
    out
}

fn decode(mailbox: &str, id: u64, v: &[u8]) -> std::result::Result<Message, MailError> {
    let corrupt = |reason: &str| {
        MailError::Store(Error::Corrupt {
            what: "message",
            reason: reason.to_owned(),
        })
    };
    let take = |range: std::ops::Range<usize>| v.get(range).ok_or_else(|| corrupt("short"));
    if *take(0..1)?.first().unwrap_or(&0) != VERSION {
        return Err(corrupt("version"));
    }
    let folder = Folder::from_code(take(1..2)?[0]).ok_or_else(|| corrupt("folder"))?;
    let u64_at = |at: usize| -> std::result::Result<u64, MailError> {
        Ok(u64::from_le_bytes(
            take(at..at + 8)?.try_into().map_err(|_| corrupt("u64"))?,
        ))
    };
    let received_unix = u64_at(2)?;
    let duration_ms = u32::from_le_bytes(take(10..14)?.try_into().map_err(|_| corrupt("u32"))?);
    let bytes = u64_at(14)?;
    let len = u16::from_le_bytes(take(22..24)?.try_into().map_err(|_| corrupt("u16"))?) as usize;
    let from = String::from_utf8(take(24..24 + len)?.to_vec()).map_err(|_| corrupt("utf-8"))?;
    Ok(Message {
        mailbox: mailbox.to_owned(),
        id,
        folder,
        from,
        received_unix,
        duration_ms,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WAV of `ms` of 8 kHz 16-bit mono PCM whose samples are `tag`.
    pub(crate) fn wav(ms: u32, tag: i16) -> Vec<u8> {
        let n = ms as usize * 8;
        let mut out = Vec::new();
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&(36 + 2 * n as u32).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&8000u32.to_le_bytes());
        out.extend_from_slice(&16000u32.to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&16u16.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&(2 * n as u32).to_le_bytes());
        for _ in 0..n {
            out.extend_from_slice(&tag.to_le_bytes());
        }
        out
    }

    fn store() -> (tempdir::Dir, Mailstore) {
        let dir = tempdir::Dir::new();
        let db = Arc::new(Database::create(dir.path().join("parley.redb")).unwrap());
        let ms = Mailstore::open(db, &dir.path().join("voicemail")).unwrap();
        (dir, ms)
    }

    /// A folder under the system temp dir, removed on drop.
    mod tempdir {
        pub(crate) struct Dir(std::path::PathBuf);
        impl Dir {
            pub(crate) fn new() -> Self {
                let p = std::env::temp_dir().join(format!(
                    "parley-mailstore-{}-{}",
                    std::process::id(),
                    rand::random::<u64>()
                ));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
            pub(crate) fn path(&self) -> &std::path::Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn greetings_are_stored_and_chosen() {
        let (_dir, ms) = store();
        assert_eq!(ms.active_greeting("201").unwrap(), None);
        assert!(matches!(
            ms.set_active_greeting("201", Some(Greeting::OutOfOffice)),
            Err(MailError::BadGreeting(_))
        ));
        assert_eq!(
            ms.put_greeting("201", Greeting::OutOfOffice, &wav(1200, 3))
                .unwrap(),
            1200
        );
        assert!(ms.has_greeting("201", Greeting::OutOfOffice));
        assert!(!ms.has_greeting("201", Greeting::Standard));
        ms.set_active_greeting("201", Some(Greeting::OutOfOffice))
            .unwrap();
        assert_eq!(
            ms.active_greeting("201").unwrap(),
            Some(Greeting::OutOfOffice)
        );
        // A re-recording replaces the file; the name can be recorded but never be active.
        ms.put_greeting("201", Greeting::OutOfOffice, &wav(800, 4))
            .unwrap();
        assert_eq!(
            std::fs::read(ms.greeting_path("201", Greeting::OutOfOffice)).unwrap(),
            wav(800, 4)
        );
        ms.put_greeting("201", Greeting::Name, &wav(600, 5))
            .unwrap();
        assert!(ms.set_active_greeting("201", Some(Greeting::Name)).is_err());
        ms.set_active_greeting("201", None).unwrap();
        assert_eq!(ms.active_greeting("201").unwrap(), None);
        // Bad input changes nothing.
        assert!(
            ms.put_greeting("../x", Greeting::Standard, &wav(500, 1))
                .is_err()
        );
        assert!(
            ms.put_greeting("201", Greeting::Standard, b"not a wav")
                .is_err()
        );
        assert!(!ms.has_greeting("201", Greeting::Standard));
        // Greeting files survive recovery (they are not orphaned messages).
        let db = ms.db.clone();
        let ms = Mailstore::open(db, &ms.root).unwrap();
        assert!(ms.has_greeting("201", Greeting::OutOfOffice));
        assert!(ms.has_greeting("201", Greeting::Name));
    }

    #[test]
    fn deposit_list_move_and_purge() {
        let (_dir, ms) = store();
        let a = ms.deposit("201", "sip:202@x", &wav(1500, 7), 100).unwrap();
        let b = ms.deposit("201", "sip:203@x", &wav(500, 8), 200).unwrap();
        assert_eq!((a.duration_ms, a.folder), (1500, Folder::New));
        assert!(b.id > a.id);
        assert_eq!(
            std::fs::read(ms.audio_path("201", a.id)).unwrap(),
            wav(1500, 7)
        );
        assert_eq!(
            ms.counts("201").unwrap(),
            Counts {
                new: 2,
                saved: 0,
                deleted: 0
            }
        );
        ms.set_folder("201", a.id, Folder::Saved).unwrap();
        ms.set_folder("201", b.id, Folder::Deleted).unwrap();
        assert_eq!(
            ms.counts("201").unwrap(),
            Counts {
                new: 0,
                saved: 1,
                deleted: 1
            }
        );
        ms.purge("201", b.id).unwrap();
        assert!(!ms.audio_path("201", b.id).exists());
        assert_eq!(ms.list("201").unwrap().len(), 1);
        assert!(matches!(ms.purge("201", b.id), Err(MailError::NotFound)));
        assert_eq!(ms.list("202").unwrap(), vec![]);
    }

    #[test]
    fn bad_requests_change_nothing() {
        let (dir, ms) = store();
        assert!(matches!(
            ms.deposit("../x", "", &wav(100, 1), 1),
            Err(MailError::BadMailbox)
        ));
        assert!(matches!(
            ms.deposit("a/b", "", &wav(100, 1), 1),
            Err(MailError::BadMailbox)
        ));
        assert!(matches!(
            ms.deposit("201", "", b"not a wav", 1),
            Err(MailError::BadAudio(_))
        ));
        let huge = vec![0u8; MAX_MESSAGE_BYTES + 1];
        assert!(matches!(
            ms.deposit("201", "", &huge, 1),
            Err(MailError::BadAudio(_))
        ));
        assert!(matches!(ms.list("../etc"), Err(MailError::BadMailbox)));
        assert_eq!(ms.counts("201").unwrap().total(), 0);
        assert!(!dir.path().join("voicemail/201").exists());
    }

    #[test]
    fn a_full_mailbox_refuses_more() {
        let (_dir, ms) = store();
        for i in 0..MAX_MESSAGES_PER_MAILBOX {
            ms.deposit("201", "", &wav(10, i as i16), 1).unwrap();
        }
        assert!(matches!(
            ms.deposit("201", "", &wav(10, 0), 1),
            Err(MailError::Full)
        ));
        ms.deposit("202", "", &wav(10, 0), 1).unwrap();
    }

    #[test]
    fn reopening_removes_what_a_crash_left_and_keeps_the_rest() {
        let dir = tempdir::Dir::new();
        let db = Arc::new(Database::create(dir.path().join("parley.redb")).unwrap());
        let root = dir.path().join("voicemail");
        let ms = Mailstore::open(db.clone(), &root).unwrap();
        let kept = ms.deposit("201", "", &wav(100, 1), 1).unwrap();
        // A deposit that died after its file and before its row, and one mid-write.
        std::fs::write(root.join("201/999.wav"), wav(100, 2)).unwrap();
        std::fs::write(root.join("201/1000.wav.tmp"), b"partial").unwrap();
        drop(ms);
        let ms = Mailstore::open(db, &root).unwrap();
        assert!(!root.join("201/999.wav").exists());
        assert!(!root.join("201/1000.wav.tmp").exists());
        assert_eq!(ms.list("201").unwrap(), vec![kept]);
    }

    #[test]
    fn hostile_records_and_headers_do_not_panic() {
        for v in [
            &[][..],
            &[1],
            &[1, 9],
            &[2, 0, 0],
            &[
                1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255,
            ],
        ] {
            assert!(decode("201", 1, v).is_err());
        }
        for w in [
            &b"RIFF\0\0\0\0WAVE"[..],
            b"RIFF\0\0\0\0WAVEdata\xff\xff\xff\xff",
            b"RIFF",
        ] {
            assert_eq!(wav_duration_ms(w), None);
        }
        let m = Message {
            mailbox: "201".into(),
            id: 3,
            folder: Folder::Deleted,
            from: "é".repeat(10),
            received_unix: 5,
            duration_ms: 6,
            bytes: 7,
        };
        assert_eq!(decode("201", 3, &encode(&m)).unwrap(), m);
    }
}
