//! Logged-in callers and failed logins, in memory, with time passed in.
//!
//! A session is what a PIN login buys: a random token the documents carry (`s=`) instead of the
//! PIN, bound to one mailbox, forgotten after [`IDLE`] without a request. Failed logins are
//! counted per mailbox: [`MAX_FAILURES`] in a row lock it for [`LOCKOUT`], whoever tries. Both
//! tables are bounded; when full, the oldest entries go first.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use parley_store::Folder;

/// A session unused this long is gone (the caller logs in again).
pub(crate) const IDLE: Duration = Duration::from_secs(30 * 60);
/// Failed logins in a row that lock a mailbox.
pub(crate) const MAX_FAILURES: u32 = 5;
/// How long a locked mailbox refuses every PIN.
pub(crate) const LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// Most sessions held at once (each is a caller on the phone).
const MAX_SESSIONS: usize = 10_000;
/// Most mailboxes with failures remembered at once.
const MAX_FAILURE_ROWS: usize = 100_000;

/// What one logged-in caller is doing.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub(crate) mailbox: String,
    /// The folder being listened to and its messages when it was opened (ids), so moving a
    /// message to another folder does not reorder what is left to hear.
    pub(crate) folder: Folder,
    pub(crate) playlist: Vec<u64>,
    /// The message playing: id, offset (ms) its audio started from, and when the document
    /// that plays it was served (to estimate where the caller is for 7 and 9).
    pub(crate) playing: Option<(u64, u32, Instant)>,
    /// A new PIN typed once, waiting for its confirmation (hashed: never kept in clear).
    pub(crate) pending_pin: Option<String>,
    last_used: Instant,
}

#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    locked_until: Option<Instant>,
    last: Instant,
}

/// Why a login may not even be tried.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Locked;

/// Sessions and failure counts.
#[derive(Default)]
pub(crate) struct Sessions {
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<String, Failures>>,
}

impl Sessions {
    /// `Err(Locked)` while `mailbox` is locked out.
    pub(crate) fn check_lock(&self, mailbox: &str, now: Instant) -> Result<(), Locked> {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        match f.get(mailbox).and_then(|x| x.locked_until) {
            Some(until) if now < until => Err(Locked),
            Some(_) => {
                // The lock ran out: a fresh start.
                f.remove(mailbox);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Counts a wrong PIN; `Err(Locked)` when this one locks the mailbox.
    pub(crate) fn fail(&self, mailbox: &str, now: Instant) -> Result<(), Locked> {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if f.len() >= MAX_FAILURE_ROWS && !f.contains_key(mailbox) {
            evict_oldest(&mut f, |x| x.last);
        }
        let e = f.entry(mailbox.to_owned()).or_insert(Failures {
            count: 0,
            locked_until: None,
            last: now,
        });
        e.count += 1;
        e.last = now;
        if e.count >= MAX_FAILURES {
            e.locked_until = Some(now + LOCKOUT);
            return Err(Locked);
        }
        Ok(())
    }

    /// A good PIN: forgets the failures and opens a session; returns its token.
    pub(crate) fn login(&self, mailbox: &str, now: Instant) -> String {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(mailbox);
        let token = new_token();
        let mut s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        s.retain(|_, v| now.saturating_duration_since(v.last_used) < IDLE);
        if s.len() >= MAX_SESSIONS {
            evict_oldest(&mut s, |v| v.last_used);
        }
        s.insert(
            token.clone(),
            Session {
                mailbox: mailbox.to_owned(),
                folder: Folder::New,
                playlist: Vec::new(),
                playing: None,
                pending_pin: None,
                last_used: now,
            },
        );
        token
    }

    /// The session of `token` (refreshed), if it is live.
    pub(crate) fn get(&self, token: &str, now: Instant) -> Option<Session> {
        let mut s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let live = s
            .get(token)
            .is_some_and(|v| now.saturating_duration_since(v.last_used) < IDLE);
        if !live {
            s.remove(token);
            return None;
        }
        let v = s.get_mut(token)?;
        v.last_used = now;
        Some(v.clone())
    }

    /// Changes a live session.
    pub(crate) fn update(&self, token: &str, f: impl FnOnce(&mut Session)) {
        let mut s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = s.get_mut(token) {
            f(v);
        }
    }

    /// Logs off.
    pub(crate) fn end(&self, token: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(token);
    }
}

fn evict_oldest<V>(m: &mut HashMap<String, V>, age: impl Fn(&V) -> Instant) {
    if let Some(k) = m.iter().min_by_key(|(_, v)| age(v)).map(|(k, _)| k.clone()) {
        m.remove(&k);
    }
}

/// 128 random bits, hex: unguessable, and safe in a URL.
fn new_token() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_lock_for_fifteen_minutes_then_a_fresh_start() {
        let s = Sessions::default();
        let t0 = Instant::now();
        for i in 0..4 {
            assert_eq!(s.check_lock("201", t0), Ok(()));
            assert_eq!(s.fail("201", t0 + Duration::from_secs(i)), Ok(()));
        }
        assert_eq!(s.fail("201", t0 + Duration::from_secs(5)), Err(Locked));
        // Locked for everyone, even with the right PIN, and other mailboxes are untouched.
        assert_eq!(
            s.check_lock("201", t0 + Duration::from_secs(6)),
            Err(Locked)
        );
        assert_eq!(s.check_lock("202", t0 + Duration::from_secs(6)), Ok(()));
        let later = t0 + Duration::from_secs(5) + LOCKOUT;
        assert_eq!(
            s.check_lock("201", later - Duration::from_secs(1)),
            Err(Locked)
        );
        assert_eq!(s.check_lock("201", later), Ok(()));
        // The count restarted: one failure does not lock again.
        assert_eq!(s.fail("201", later), Ok(()));
    }

    #[test]
    fn a_good_login_clears_failures_and_sessions_expire_when_idle() {
        let s = Sessions::default();
        let t0 = Instant::now();
        for _ in 0..4 {
            s.fail("201", t0).unwrap();
        }
        let token = s.login("201", t0);
        assert_eq!(token.len(), 32);
        // Four more failures do not lock: the count started again at the good login.
        for _ in 0..4 {
            s.fail("201", t0).unwrap();
        }
        assert_eq!(s.get(&token, t0 + IDLE / 2).unwrap().mailbox, "201");
        // Use refreshed it.
        assert!(s.get(&token, t0 + IDLE).is_some());
        assert!(
            s.get(&token, t0 + IDLE * 2 + Duration::from_secs(1))
                .is_none()
        );
        assert!(s.get("0123", t0).is_none());
        let t2 = s.login("201", t0);
        s.end(&t2);
        assert!(s.get(&t2, t0).is_none());
    }
}
