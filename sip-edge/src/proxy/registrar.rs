//! REGISTER (RFC 3261 §10.3): add, refresh and remove bindings, `*`, Expires/Min-Expires,
//! q-values, several contacts, Path (RFC 3327), and the flow the REGISTER came in on.

use std::sync::Arc;
use std::time::Duration;

use tracing::info;

use super::location::Binding;
use super::{Account, Proxy, StoreChange};
use crate::Instant;
use crate::io::Received;
use crate::message::{NameAddr, SipMessage, Uri};

/// Why a REGISTER is refused after authentication.
enum Refusal {
    /// 400 with this reason.
    Bad(&'static str),
    /// 423 with our minimum.
    TooBrief,
    /// 500: a REGISTER older than the one that set a binding (§10.3 step 7).
    OutOfOrder,
    /// 503: the table is full.
    Full,
}

impl Proxy {
    pub(super) fn handle_register(&mut self, r: Received, msg: SipMessage, call_id: String) {
        let account = match self.authenticate(&r, &msg, 401) {
            Some(a) => a,
            None => return,
        };
        let aor_user = msg
            .to()
            .and_then(|t| Uri::parse(&t.uri).ok())
            .and_then(|u| u.user_name().map(str::to_owned));
        let aor = match aor_user.as_deref().and_then(|u| self.account(u)) {
            Some(a) => a.clone(),
            None => return self.reply(&r, &msg, 404, "Not Found"),
        };
        if aor.user != account.user {
            info!(call_id = %call_id, user = %account.user, aor = %aor.user, "REGISTER for another user's AOR");
            return self.reply(&r, &msg, 403, "Forbidden");
        }
        match self.update_bindings(&r, &msg, &aor) {
            Ok(()) => {}
            Err(Refusal::Bad(why)) => return self.reply(&r, &msg, 400, why),
            Err(Refusal::TooBrief) => {
                let min = ("Min-Expires", self.cfg.expiry.min.as_secs().to_string());
                return self.reply_with(&r, &msg, 423, "Interval Too Brief", &[min]);
            }
            Err(Refusal::OutOfOrder) => {
                return self.reply(&r, &msg, 500, "Out Of Order REGISTER");
            }
            Err(Refusal::Full) => {
                self.stats.overload += 1;
                let retry = ("Retry-After", "30".to_owned());
                return self.reply_with(&r, &msg, 503, "Service Unavailable", &[retry]);
            }
        }
        let now = r.now;
        let mut headers: Vec<(&str, String)> = self
            .location
            .lookup(&aor.user, now)
            .iter()
            .map(|b| {
                (
                    "Contact",
                    format!("<{}>;expires={}", b.contact, b.remaining(now)),
                )
            })
            .collect();
        let supports_path = msg
            .list("Supported")
            .is_ok_and(|l| l.iter().any(|o| o.eq_ignore_ascii_case("path")));
        if supports_path {
            for p in msg.headers("Path") {
                headers.push(("Path", p.into_owned()));
            }
        }
        self.reply_with(&r, &msg, 200, "OK", &headers);
    }

    /// Applies the REGISTER's contacts to the AOR's binding set, all or nothing.
    fn update_bindings(
        &mut self,
        r: &Received,
        msg: &SipMessage,
        aor: &Arc<Account>,
    ) -> Result<(), Refusal> {
        let now = r.now;
        let exp = self.cfg.expiry;
        let call_id = msg.call_id().unwrap_or_default().into_owned();
        let cseq = msg.cseq().map_or(0, |(n, _)| n);
        let header_expires = match msg.header("Expires") {
            Some(v) => Some(
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| Refusal::Bad("Bad Expires"))?,
            ),
            None => None,
        };
        let raw_contacts = msg.headers("Contact");
        let mut current: Vec<Binding> = self
            .location
            .all(&aor.user)
            .iter()
            .filter(|b| b.expires_at > now)
            .cloned()
            .collect();
        if raw_contacts.is_empty() {
            return Ok(()); // a query: answer with the current bindings
        }
        if raw_contacts.iter().any(|c| c.trim() == "*") {
            // `*` only alone and only with Expires: 0 (§10.3 step 6).
            if raw_contacts.len() != 1 || header_expires != Some(0) {
                return Err(Refusal::Bad(
                    "Contact * Needs Expires 0 And No Other Contact",
                ));
            }
            if current
                .iter()
                .any(|b| b.call_id == call_id && b.cseq >= cseq)
            {
                return Err(Refusal::OutOfOrder);
            }
            return self.store_bindings(&aor.user, Vec::new());
        }
        let contacts = msg.contacts().map_err(|_| Refusal::Bad("Bad Contact"))?;
        if contacts.len() > 32 {
            return Err(Refusal::Bad("Too Many Contacts"));
        }
        let path: Vec<String> = msg.headers("Path").iter().map(|p| p.to_string()).collect();
        let user_agent = msg.header("User-Agent").map(|u| truncate(&u, 128));
        for c in &contacts {
            let expires = contact_expires(c, header_expires, exp.default)?;
            if expires != 0 && expires < exp.min.as_secs() {
                return Err(Refusal::TooBrief);
            }
            let expires = expires.min(exp.max.as_secs());
            let q = contact_q(c)?;
            if Uri::parse(&c.uri).is_err() {
                return Err(Refusal::Bad("Bad Contact URI"));
            }
            let existing = current
                .iter()
                .position(|b| same_contact(&b.contact, &c.uri));
            if let Some(i) = existing
                && current[i].call_id == call_id
                && current[i].cseq >= cseq
            {
                return Err(Refusal::OutOfOrder);
            }
            if let Some(i) = existing {
                current.remove(i);
            }
            if expires == 0 {
                continue;
            }
            current.push(Binding {
                aor: aor.user.clone(),
                contact: c.uri.clone(),
                expires_at: now + Duration::from_secs(expires),
                q,
                call_id: call_id.clone(),
                cseq,
                path: path.clone(),
                transport: r.transport,
                source: r.source,
                instance: c.param("+sip.instance").flatten().map(|s| truncate(s, 128)),
                user_agent: user_agent.clone(),
            });
        }
        self.store_bindings(&aor.user, current)
    }

    fn store_bindings(&mut self, aor: &str, bindings: Vec<Binding>) -> Result<(), Refusal> {
        self.location
            .replace(aor, bindings)
            .map_err(|_| Refusal::Full)?;
        let stored = self.location.all(aor).to_vec();
        self.persist(StoreChange::Bindings {
            aor: aor.to_owned(),
            bindings: stored,
        });
        Ok(())
    }

    /// Loads saved bindings (at start); lapsed ones are dropped.
    pub(super) fn restore_bindings(&mut self, now: Instant, bindings: Vec<Binding>) {
        let mut by_aor: std::collections::BTreeMap<String, Vec<Binding>> = Default::default();
        for b in bindings.into_iter().filter(|b| b.expires_at > now) {
            by_aor.entry(b.aor.clone()).or_default().push(b);
        }
        for (aor, bs) in by_aor {
            let _ = self.location.replace(&aor, bs);
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Contact URIs compare equal for our purposes when equal ignoring case of scheme and host
/// (the phone re-sends the very string it registered).
fn same_contact(a: &str, b: &str) -> bool {
    a == b || a.eq_ignore_ascii_case(b)
}

fn contact_expires(c: &NameAddr, header: Option<u64>, default: Duration) -> Result<u64, Refusal> {
    match c.param("expires") {
        Some(Some(v)) => v
            .trim()
            .parse::<u64>()
            .map_err(|_| Refusal::Bad("Bad Contact expires")),
        Some(None) => Err(Refusal::Bad("Bad Contact expires")),
        None => Ok(header.unwrap_or(default.as_secs())),
    }
}

/// `q` as thousandths: `1`, `0.5`, `0.125` (RFC 3261 §20.10 qvalue).
fn contact_q(c: &NameAddr) -> Result<u16, Refusal> {
    let Some(v) = c.param("q") else {
        return Ok(1000);
    };
    let v = v.ok_or(Refusal::Bad("Bad q"))?.trim();
    let bad = || Refusal::Bad("Bad q");
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let thousandths = format!("{frac:0<3}").parse::<u16>().map_err(|_| bad())?;
    match int {
        "0" => Ok(thousandths),
        "1" if thousandths == 0 => Ok(1000),
        _ => Err(bad()),
    }
}
