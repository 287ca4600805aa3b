//! Message waiting (RFC 6665 + RFC 3842): the edge is the notifier of the `message-summary`
//! event. Phones SUBSCRIBE to their mailbox; every count posted for it (and every refresh)
//! sends a NOTIFY; subscriptions lapse, are refreshed or terminated, and are persisted so a
//! restart keeps them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use tracing::{debug, info};

use super::{Proxy, StoreChange, TimerKey};
use crate::Instant;
use crate::builder::RequestBuilder;
use crate::io::{Received, Transport};
use crate::message::{NameAddr, SipMessage, Uri, parse};
use crate::routing::{uri_destination, uri_transport};
use crate::transaction::{self, Event, Output as TxOutput, client::Client};

/// One message-summary subscription (a dialog in which we are the notifier).
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    /// The mailbox (user) watched.
    pub mailbox: String,
    /// Dialog Call-ID.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// The subscriber's tag.
    pub remote_tag: String,
    /// The subscriber's URI (From of the SUBSCRIBE).
    pub remote_uri: String,
    /// Our URI (To of the SUBSCRIBE).
    pub local_uri: String,
    /// Where NOTIFYs go (the subscriber's Contact).
    pub remote_target: String,
    /// Record-Route of the SUBSCRIBE, in order.
    pub route_set: Vec<String>,
    /// When it lapses.
    pub expires_at: Instant,
    /// CSeq of our next NOTIFY.
    pub next_cseq: u32,
    /// The flow the SUBSCRIBE came in on.
    pub transport: Transport,
    /// Its source.
    pub source: SocketAddr,
    /// `Event: message-summary;id=…`, if given.
    pub event_id: Option<String>,
}

struct NotifyTxn {
    sub: u64,
    client: Client,
    dest: SocketAddr,
    transport: Transport,
    branch: String,
}

/// Subscriptions, counts and NOTIFY transactions.
pub(super) struct Notifier {
    next_id: u64,
    subs: HashMap<u64, Subscription>,
    by_dialog: HashMap<(String, String), u64>,
    by_mailbox: HashMap<String, Vec<u64>>,
    counts: HashMap<String, (u32, u32)>,
    txns: HashMap<u64, NotifyTxn>,
    by_branch: HashMap<String, u64>,
    max: usize,
    max_per_mailbox: usize,
}

/// Subscription intervals (RFC 3842 §5: default one hour).
const DEFAULT_EXPIRES: u64 = 3600;
const MIN_EXPIRES: u64 = 60;
const MAX_EXPIRES: u64 = 7200;
/// Mailboxes whose counts we remember (bounded; posted counts only).
const MAX_COUNTS: usize = 100_000;

impl Notifier {
    pub(super) fn new(max: usize, max_per_mailbox: usize) -> Notifier {
        Notifier {
            next_id: 1,
            subs: HashMap::new(),
            by_dialog: HashMap::new(),
            by_mailbox: HashMap::new(),
            counts: HashMap::new(),
            txns: HashMap::new(),
            by_branch: HashMap::new(),
            max,
            max_per_mailbox,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.subs.len()
    }

    fn find(&self, call_id: &str, local_tag: &str) -> Option<u64> {
        self.by_dialog
            .get(&(call_id.to_owned(), local_tag.to_owned()))
            .copied()
    }

    fn insert(&mut self, sub: Subscription) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.by_dialog
            .insert((sub.call_id.clone(), sub.local_tag.clone()), id);
        self.by_mailbox
            .entry(sub.mailbox.clone())
            .or_default()
            .push(id);
        self.subs.insert(id, sub);
        id
    }

    fn remove(&mut self, id: u64) -> Option<Subscription> {
        let sub = self.subs.remove(&id)?;
        self.by_dialog
            .remove(&(sub.call_id.clone(), sub.local_tag.clone()));
        if let Some(v) = self.by_mailbox.get_mut(&sub.mailbox) {
            v.retain(|&i| i != id);
            if v.is_empty() {
                self.by_mailbox.remove(&sub.mailbox);
            }
        }
        Some(sub)
    }
}

/// The `message-summary` body (RFC 3842 §5.2).
fn summary_body(account: &str, new: u32, old: u32) -> String {
    let waiting = if new > 0 { "yes" } else { "no" };
    format!(
        "Messages-Waiting: {waiting}\r\nMessage-Account: {account}\r\nVoice-Message: {new}/{old}\r\n"
    )
}

impl Proxy {
    /// True for an in-dialog SUBSCRIBE sent to us directly (one of our subscriptions, or a
    /// lost one that deserves a 481).
    pub(super) fn is_our_subscription_request(&self, msg: &SipMessage) -> bool {
        msg.method() == Some("SUBSCRIBE")
            && msg.header("Route").is_none()
            && msg.uri().is_some_and(|u| self.is_us(&u))
    }

    pub(super) fn handle_subscribe(&mut self, r: Received, msg: SipMessage, call_id: String) {
        let event = msg.header("Event").unwrap_or_default().into_owned();
        let mut parts = event.split(';');
        let package = parts.next().unwrap_or("").trim();
        if !package.eq_ignore_ascii_case("message-summary") {
            let allow = ("Allow-Events", "message-summary".to_owned());
            return self.reply_with(&r, &msg, 489, "Bad Event", &[allow]);
        }
        let event_id = parts
            .filter_map(|p| p.trim().strip_prefix("id="))
            .next()
            .map(|s| s.chars().take(64).collect::<String>());
        let expires = match msg.header("Expires") {
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) => n,
                Err(_) => return self.reply(&r, &msg, 400, "Bad Expires"),
            },
            None => DEFAULT_EXPIRES,
        };
        if expires != 0 && expires < MIN_EXPIRES {
            let min = ("Min-Expires", MIN_EXPIRES.to_string());
            return self.reply_with(&r, &msg, 423, "Interval Too Brief", &[min]);
        }
        let expires = expires.min(MAX_EXPIRES);
        let to_tag = msg.to().and_then(|t| t.tag().map(str::to_owned));
        let id = match to_tag {
            Some(tag) => match self.notifier.find(&call_id, &tag) {
                Some(id) => id,
                None => return self.reply(&r, &msg, 481, "Subscription Does Not Exist"),
            },
            None => {
                let local_tag = self.stateless_tag(&msg);
                match self.notifier.find(&call_id, &local_tag) {
                    // A retransmitted initial SUBSCRIBE: same dialog.
                    Some(id) => id,
                    None => match self.new_subscription(&r, &msg, &call_id, local_tag, event_id) {
                        Some(id) => id,
                        None => return,
                    },
                }
            }
        };
        let Some(sub) = self.notifier.subs.get_mut(&id) else {
            return;
        };
        sub.expires_at = r.now + Duration::from_secs(expires);
        let tag = sub.local_tag.clone();
        let contact = format!("<sip:{}>", self.advertised_for(r.transport));
        let data = crate::builder::response(&msg, 200, "OK")
            .to_tag(&tag)
            .header("Contact", contact)
            .header("Expires", expires.to_string())
            .build();
        let dest = crate::routing::reply_to(r.transport, r.source, &msg);
        self.send(r.transport, dest, data);
        info!(call_id = %call_id, expires, "message-summary subscription");
        if expires == 0 {
            self.notify(id, r.now, Some("timeout"));
            self.end_subscription(id);
        } else {
            self.schedule(
                TimerKey::Subscription(id),
                r.now + Duration::from_secs(expires),
            );
            self.notify(id, r.now, None);
        }
    }

    fn new_subscription(
        &mut self,
        r: &Received,
        msg: &SipMessage,
        call_id: &str,
        local_tag: String,
        event_id: Option<String>,
    ) -> Option<u64> {
        let mailbox = msg
            .uri()
            .and_then(|u| u.user_name().map(crate::message::unescape));
        let Some(account) = mailbox.as_deref().and_then(|m| self.account(m)).cloned() else {
            self.reply(r, msg, 404, "Not Found");
            return None;
        };
        if !self.is_trusted(r.source) {
            let user = self.authenticate(r, msg, 407)?;
            if user.user != account.user {
                info!(call_id = %call_id, user = %user.user, mailbox = %account.user, "subscription to another user's mailbox");
                self.reply(r, msg, 403, "Forbidden");
                return None;
            }
        }
        if let Some(accept) = msg.header("Accept")
            && !accept
                .to_ascii_lowercase()
                .contains("application/simple-message-summary")
        {
            self.reply(r, msg, 406, "Not Acceptable");
            return None;
        }
        let per_mailbox = self
            .notifier
            .by_mailbox
            .get(&account.user)
            .map_or(0, Vec::len);
        if self.notifier.len() >= self.notifier.max {
            self.stats.overload += 1;
            let retry = ("Retry-After", "60".to_owned());
            self.reply_with(r, msg, 503, "Service Unavailable", &[retry]);
            return None;
        }
        if per_mailbox >= self.notifier.max_per_mailbox {
            // The oldest subscription of a mailbox gives way (a phone that rebooted).
            if let Some(&oldest) = self
                .notifier
                .by_mailbox
                .get(&account.user)
                .and_then(|v| v.first())
            {
                self.end_subscription(oldest);
            }
        }
        let (Some(from), Some(to), Some(contact)) = (msg.from(), msg.to(), msg.contact()) else {
            self.reply(r, msg, 400, "Missing Contact");
            return None;
        };
        let route_set = msg
            .record_routes()
            .unwrap_or_default()
            .iter()
            .map(NameAddr::to_string)
            .collect();
        let sub = Subscription {
            mailbox: account.user.clone(),
            call_id: call_id.to_owned(),
            local_tag,
            remote_tag: from.tag().unwrap_or("").to_owned(),
            remote_uri: from.uri.clone(),
            local_uri: to.uri.clone(),
            remote_target: contact.uri.clone(),
            route_set,
            expires_at: r.now,
            next_cseq: 1,
            transport: r.transport,
            source: r.source,
            event_id,
        };
        Some(self.notifier.insert(sub))
    }

    fn end_subscription(&mut self, id: u64) {
        self.timers.cancel(&TimerKey::Subscription(id));
        if let Some(sub) = self.notifier.remove(id) {
            self.persist(StoreChange::SubscriptionGone {
                call_id: sub.call_id,
                local_tag: sub.local_tag,
            });
        }
    }

    /// New counts for a mailbox: remember them, NOTIFY every subscriber.
    pub(super) fn message_summary(&mut self, now: Instant, mailbox: &str, new: u32, old: u32) {
        let key = self
            .account(mailbox)
            .map_or_else(|| mailbox.to_owned(), |a| a.user.clone());
        if self.notifier.counts.len() < MAX_COUNTS || self.notifier.counts.contains_key(&key) {
            self.notifier.counts.insert(key.clone(), (new, old));
        }
        let ids = self
            .notifier
            .by_mailbox
            .get(&key)
            .cloned()
            .unwrap_or_default();
        debug!(mailbox = %key, new, old, subscribers = ids.len(), "message summary");
        for id in ids {
            self.notify(id, now, None);
        }
    }

    /// Sends a NOTIFY in subscription `id`: active, or terminated with `reason`.
    fn notify(&mut self, id: u64, now: Instant, terminated: Option<&str>) {
        let Some(sub) = self.notifier.subs.get_mut(&id) else {
            return;
        };
        let (new, old) = self
            .notifier
            .counts
            .get(&sub.mailbox)
            .copied()
            .unwrap_or((0, 0));
        let cseq = sub.next_cseq;
        sub.next_cseq += 1;
        let sub = sub.clone();
        let state = match terminated {
            Some(reason) => format!("terminated;reason={reason}"),
            None => format!(
                "active;expires={}",
                sub.expires_at.saturating_duration_since(now).as_secs()
            ),
        };
        // Through the dialog's route set, else straight to the subscriber's flow (NAT).
        let first_route = sub
            .route_set
            .first()
            .and_then(|r| NameAddr::parse(r).ok())
            .and_then(|n| Uri::parse(&n.uri).ok());
        let (transport, dest) = match &first_route {
            Some(u) => match uri_destination(u) {
                Some(d) => (uri_transport(u), d),
                None => return,
            },
            None => (sub.transport, sub.source),
        };
        let branch = format!("z9hG4bKmw{:016x}", rand::Rng::random::<u64>(&mut self.rng));
        let event = match &sub.event_id {
            Some(i) => format!("message-summary;id={i}"),
            None => "message-summary".to_owned(),
        };
        let account = format!("sip:{}@{}", sub.mailbox, self.domain);
        let mut b = RequestBuilder::new("NOTIFY", &sub.remote_target)
            .header("Via", self.our_via(&branch, transport))
            .header("Max-Forwards", "70");
        for r in &sub.route_set {
            b = b.header("Route", r.clone());
        }
        let data = b
            .header("From", format!("<{}>;tag={}", sub.local_uri, sub.local_tag))
            .header("To", format!("<{}>;tag={}", sub.remote_uri, sub.remote_tag))
            .header("Call-ID", sub.call_id.clone())
            .header("CSeq", format!("{cseq} NOTIFY"))
            .header(
                "Contact",
                format!("<sip:{}>", self.advertised_for(transport)),
            )
            .header("Event", event)
            .header("Subscription-State", state)
            .body(
                "application/simple-message-summary",
                summary_body(&account, new, old).into(),
            )
            .build();
        let Ok(msg) = parse(data) else { return };
        let client = Client::new(now, msg, transport.is_reliable(), self.cfg.timers);
        let txn_id = self.notifier.next_id;
        self.notifier.next_id += 1;
        self.notifier.by_branch.insert(branch.clone(), txn_id);
        self.notifier.txns.insert(
            txn_id,
            NotifyTxn {
                sub: id,
                client,
                dest,
                transport,
                branch,
            },
        );
        if terminated.is_none() {
            self.persist(StoreChange::Subscription(sub));
        }
        self.pump_notify(txn_id, now);
    }

    /// A response to one of our NOTIFYs.
    pub(super) fn notify_response(&mut self, now: Instant, branch: &str, msg: &SipMessage) -> bool {
        let Some(&txn_id) = self.notifier.by_branch.get(branch) else {
            return false;
        };
        if let Some(t) = self.notifier.txns.get_mut(&txn_id) {
            t.client
                .handle_input(transaction::Input::Received(now, msg.clone()));
        }
        self.pump_notify(txn_id, now);
        true
    }

    pub(super) fn notify_timeout(&mut self, txn_id: u64, now: Instant) {
        if let Some(t) = self.notifier.txns.get_mut(&txn_id) {
            t.client.handle_input(transaction::Input::Timeout(now));
        }
        self.pump_notify(txn_id, now);
    }

    fn pump_notify(&mut self, txn_id: u64, _now: Instant) {
        let Some(mut t) = self.notifier.txns.remove(&txn_id) else {
            return;
        };
        let mut ended = false;
        let mut gone = false;
        let mut deadline = None;
        loop {
            match t.client.poll_output() {
                TxOutput::Transmit(b) => self.send(t.transport, t.dest, b),
                TxOutput::Event(Event::Response(resp)) => {
                    let status = resp.status().unwrap_or(500);
                    // RFC 6665 §4.2.2: these end the subscription.
                    if status >= 300 && status != 401 && status != 407 {
                        info!(status, "NOTIFY refused: subscription ended");
                        gone = true;
                    }
                }
                TxOutput::Event(Event::TimedOut | Event::TransportError) => gone = true,
                TxOutput::Event(Event::Terminated) => ended = true,
                TxOutput::Timeout(d) => {
                    deadline = Some(d);
                    break;
                }
                TxOutput::Idle => break,
            }
        }
        if gone {
            self.end_subscription(t.sub);
        }
        if ended {
            self.notifier.by_branch.remove(&t.branch);
            self.timers.cancel(&TimerKey::Notify(txn_id));
            return;
        }
        self.set_timer(TimerKey::Notify(txn_id), deadline);
        self.notifier.txns.insert(txn_id, t);
    }

    /// A subscription lapsed: final NOTIFY, then forget it.
    pub(super) fn subscription_timeout(&mut self, id: u64, now: Instant) {
        if self.notifier.subs.contains_key(&id) {
            info!("message-summary subscription lapsed");
            self.notify(id, now, Some("timeout"));
            self.end_subscription(id);
        }
    }

    /// Loads saved bindings and subscriptions (at start).
    pub(super) fn restore(
        &mut self,
        now: Instant,
        bindings: Vec<super::Binding>,
        subscriptions: Vec<Subscription>,
    ) {
        self.restore_bindings(now, bindings);
        for s in subscriptions {
            if s.expires_at <= now || self.notifier.len() >= self.notifier.max {
                continue;
            }
            let at = s.expires_at;
            if self.notifier.find(&s.call_id, &s.local_tag).is_some() {
                continue;
            }
            let id = self.notifier.insert(s);
            self.schedule(TimerKey::Subscription(id), at);
        }
    }
}
