//! Stateless nonces and the per-nonce count table that stops replays.

use std::collections::{HashMap, VecDeque};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::hex;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the HMAC kept in a nonce.
const MAC_LEN: usize = 16;
/// Hex length of a nonce: 8-byte timestamp, 8-byte salt and the truncated MAC.
const NONCE_LEN: usize = 2 * (16 + MAC_LEN);
/// How far in the future (seconds) a nonce's timestamp may be (clock skew between nodes that
/// share the secret).
const MAX_SKEW: u64 = 30;

/// Issues and checks stateless nonces: `hex(timestamp || salt) || hex(HMAC-SHA256(secret,
/// timestamp || salt || realm)[..16])`, 64 hex characters. The salt (a counter) makes two
/// nonces issued in the same second differ, so each phone's `nc` starts its own count. Any node holding the same secret can check
/// a nonce another issued; a restart with the same secret keeps outstanding nonces valid.
#[derive(Clone)]
pub struct NonceIssuer {
    secret: [u8; 32],
    realm: String,
}

impl std::fmt::Debug for NonceIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceIssuer")
            .field("realm", &self.realm)
            .finish_non_exhaustive()
    }
}

/// What [`NonceIssuer::check`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonceState {
    /// Ours and young enough.
    Valid,
    /// Ours but older than `max_age`: challenge again with `stale=true`.
    Stale,
    /// Not ours (tampered, another realm or secret, malformed, or from the future).
    Invalid,
}

impl NonceIssuer {
    /// An issuer for `realm` with a 32-byte secret (random per deployment; shared by the
    /// nodes of a cluster).
    pub fn new(secret: [u8; 32], realm: &str) -> Self {
        Self {
            secret,
            realm: realm.to_string(),
        }
    }

    fn mac(&self, ts: u64, salt: u64) -> [u8; MAC_LEN] {
        let mut m = HmacSha256::new_from_slice(&self.secret).expect("HMAC takes any key length");
        m.update(&ts.to_be_bytes());
        m.update(&salt.to_be_bytes());
        m.update(self.realm.as_bytes());
        let full = m.finalize().into_bytes();
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&full[..MAC_LEN]);
        out
    }

    /// A nonce stamped `now_unix` (seconds); `salt` must differ between nonces of one second
    /// (a counter does).
    pub fn issue(&self, now_unix: u64, salt: u64) -> String {
        let mut s = hex(&now_unix.to_be_bytes());
        s.push_str(&hex(&salt.to_be_bytes()));
        s.push_str(&hex(&self.mac(now_unix, salt)));
        s
    }

    /// Checks a nonce at `now_unix`; nonces older than `max_age` seconds are stale.
    pub fn check(&self, nonce: &str, now_unix: u64, max_age: u64) -> NonceState {
        let b = nonce.as_bytes();
        if b.len() != NONCE_LEN {
            return NonceState::Invalid;
        }
        let Some(raw) = unhex::<{ NONCE_LEN / 2 }>(b) else {
            return NonceState::Invalid;
        };
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&raw[..8]);
        let ts = u64::from_be_bytes(ts);
        let mut salt = [0u8; 8];
        salt.copy_from_slice(&raw[8..16]);
        let salt = u64::from_be_bytes(salt);
        if !bool::from(self.mac(ts, salt).ct_eq(&raw[16..]))
            || ts > now_unix.saturating_add(MAX_SKEW)
        {
            return NonceState::Invalid;
        }
        if now_unix.saturating_sub(ts) > max_age {
            NonceState::Stale
        } else {
            NonceState::Valid
        }
    }
}

fn unhex<const N: usize>(s: &[u8]) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None, // we issue lowercase only
    };
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        *o = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// The highest nonce count seen per nonce, to reject replays (RFC 7616 §3.4: nc must grow).
///
/// Bounded: past `capacity` nonces the oldest-inserted is forgotten. A forgotten nonce whose
/// age is still under the issuer's `max_age` would accept its old counts again, so size the
/// table above the number of nonces answered within `max_age` (the default, 65,536, covers
/// about 200 authentications a second with a 300 s max age). Record a count only after the
/// response verified, so forged requests cannot burn a client's nonce.
#[derive(Debug)]
pub struct NonceCounts {
    capacity: usize,
    seen: HashMap<String, u32>,
    order: VecDeque<String>,
}

impl Default for NonceCounts {
    fn default() -> Self {
        Self::new(65_536)
    }
}

impl NonceCounts {
    /// A table remembering at most `capacity` nonces (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            seen: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Records `nc` for `nonce` if it is greater than every count seen for it (true);
    /// false for a replay (not greater).
    pub fn check_and_record(&mut self, nonce: &str, nc: u32) -> bool {
        if let Some(high) = self.seen.get_mut(nonce) {
            if nc <= *high {
                return false;
            }
            *high = nc;
            return true;
        }
        if nc == 0 {
            return false; // counts start at 1
        }
        while self.seen.len() >= self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.seen.remove(&old);
                }
                None => break,
            }
        }
        self.seen.insert(nonce.to_string(), nc);
        self.order.push_back(nonce.to_string());
        true
    }

    /// How many nonces are remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no nonce is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}
