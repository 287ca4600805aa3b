//! The location service: address-of-record -> contact bindings (RFC 3261 §10), with the flow
//! each REGISTER came in on, so calls reach phones behind NAT on the address they register from.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::Instant;
use crate::io::Transport;

/// One contact of an address-of-record.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// The address-of-record (the user's canonical name, e.g. `201`).
    pub aor: String,
    /// The Contact URI as the phone sent it.
    pub contact: String,
    /// When it lapses.
    pub expires_at: Instant,
    /// Preference, 0..=1000 (q=1.0 is 1000).
    pub q: u16,
    /// Call-ID and CSeq of the REGISTER that set it (§10.3 step 7 ordering).
    pub call_id: String,
    /// CSeq number of that REGISTER.
    pub cseq: u32,
    /// Path headers to route through (RFC 3327), in order.
    pub path: Vec<String>,
    /// The transport and source address the REGISTER arrived from (the NAT flow).
    pub transport: Transport,
    /// Source of the REGISTER.
    pub source: SocketAddr,
    /// `+sip.instance`, if the phone sent one.
    pub instance: Option<String>,
    /// User-Agent, for `parley` logs and listings.
    pub user_agent: Option<String>,
}

impl Binding {
    /// Seconds left at `now` (0 when lapsed).
    pub fn remaining(&self, now: Instant) -> u64 {
        self.expires_at
            .saturating_duration_since(now)
            .as_secs_f64()
            .round() as u64
    }
}

/// Bindings of every AOR, bounded in total and per AOR.
#[derive(Debug)]
pub(crate) struct Location {
    by_aor: HashMap<String, Vec<Binding>>,
    /// Contact URI -> AOR, for [`Location::flow_for_contact`].
    by_contact: HashMap<String, String>,
    total: usize,
    max_total: usize,
    max_per_aor: usize,
}

/// Why a binding could not be stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Full {
    /// The whole table is at its bound.
    Table,
}

impl Location {
    /// An empty service with bounds.
    pub(crate) fn new(max_total: usize, max_per_aor: usize) -> Location {
        Location {
            by_aor: HashMap::new(),
            by_contact: HashMap::new(),
            total: 0,
            max_total,
            max_per_aor: max_per_aor.max(1),
        }
    }

    /// Live bindings of `aor`, best q first (ties: most recently registered first).
    pub(crate) fn lookup(&self, aor: &str, now: Instant) -> Vec<&Binding> {
        let mut v: Vec<&Binding> = self
            .by_aor
            .get(aor)
            .map(|b| b.iter().filter(|b| b.expires_at > now).collect())
            .unwrap_or_default();
        v.sort_by(|a, b| b.q.cmp(&a.q).then(b.expires_at.cmp(&a.expires_at)));
        v
    }

    /// Replaces the whole binding set of `aor` (the registrar computed it).
    pub(crate) fn replace(&mut self, aor: &str, mut bindings: Vec<Binding>) -> Result<(), Full> {
        // Over the per-AOR bound the longest-lived survive: a phone that rebooted re-registers
        // with a new contact and should not be refused because of its old one.
        if bindings.len() > self.max_per_aor {
            bindings.sort_by_key(|b| std::cmp::Reverse(b.expires_at));
            bindings.truncate(self.max_per_aor);
        }
        let old = self.by_aor.get(aor).map_or(0, Vec::len);
        let new_total = self.total - old + bindings.len();
        if new_total > self.max_total && bindings.len() > old {
            return Err(Full::Table);
        }
        self.total = new_total;
        if let Some(old) = self.by_aor.get(aor) {
            for b in old {
                self.by_contact.remove(&b.contact);
            }
        }
        for b in &bindings {
            self.by_contact.insert(b.contact.clone(), aor.to_owned());
        }
        if bindings.is_empty() {
            self.by_aor.remove(aor);
        } else {
            self.by_aor.insert(aor.to_owned(), bindings);
        }
        Ok(())
    }

    /// All bindings of `aor`, lapsed ones included.
    pub(crate) fn all(&self, aor: &str) -> &[Binding] {
        self.by_aor.get(aor).map_or(&[], Vec::as_slice)
    }

    /// Removes lapsed bindings; returns the AORs that changed.
    pub(crate) fn sweep(&mut self, now: Instant) -> Vec<String> {
        let mut changed = Vec::new();
        let by_contact = &mut self.by_contact;
        self.by_aor.retain(|aor, bs| {
            let before = bs.len();
            bs.retain(|b| {
                let live = b.expires_at > now;
                if !live {
                    by_contact.remove(&b.contact);
                }
                live
            });
            if bs.len() != before {
                changed.push(aor.clone());
            }
            !bs.is_empty()
        });
        self.total = self.by_aor.values().map(Vec::len).sum();
        changed
    }

    /// The flow a contact registered from, for requests sent to that contact (in-dialog
    /// requests to a phone behind NAT).
    pub(crate) fn flow_for_contact(
        &self,
        contact: &str,
        now: Instant,
    ) -> Option<(Transport, SocketAddr)> {
        let aor = self.by_contact.get(contact)?;
        self.all(aor)
            .iter()
            .find(|b| b.expires_at > now && b.contact == contact)
            .map(|b| (b.transport, b.source))
    }

    /// Number of bindings held.
    pub(crate) fn len(&self) -> usize {
        self.total
    }
}

/// Registration interval bounds (RFC 3261 §10.2.1.1, §10.3 step 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry {
    /// Without Expires: this.
    pub default: Duration,
    /// Shorter (and non-zero) gets 423 Interval Too Brief.
    pub min: Duration,
    /// Longer is shortened to this.
    pub max: Duration,
}

impl Default for Expiry {
    fn default() -> Self {
        Expiry {
            default: Duration::from_secs(3600),
            min: Duration::from_secs(60),
            max: Duration::from_secs(7200),
        }
    }
}
