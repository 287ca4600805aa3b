//! Sans-IO PBX proxy core (RFC 3261 §16): registrar, digest authentication, location service,
//! forking to phones with voicemail on no answer/busy, the dial plan, and the message-summary
//! notifier for message-waiting lamps.
//!
//! What is relayed where (the edge is never an open relay):
//! - Initial requests are accepted only for our domain or addresses, and go only to our users'
//!   phones, the media server or configured trunks. A pre-loaded Route set that leaves us is
//!   refused (403). Senders authenticate (digest) unless their address is trusted.
//! - In-dialog requests are relayed only when they carry a Route we record-routed for that very
//!   Call-ID (our Record-Route is signed with a keyed hash of it).
//! - Errors we generate ourselves (400, 403, 404, 407, 482, 483, 503) are sent statelessly: one
//!   answer per request received, never retransmitted, so a spoofed source gains nothing.
//!
//! Run loop: `handle_input(..)`, then drain `poll_output()` until `Output::Timeout(deadline)`
//! or `Output::Idle`. Store changes come out as [`Output::Store`] for the driver to persist.

mod authn;
mod dial_plan;
mod invite;
mod location;
mod mwi;
mod registrar;
mod relay;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tracing::{debug, info};

pub use dial_plan::{DialPlan, Pattern, PatternError, Route};
pub use location::{Binding, Expiry};
pub use mwi::Subscription;

use crate::Instant;
use crate::builder::response;
use crate::io::{Received, Transmit, Transport};
use crate::message::{SipMessage, Uri, parse, parse_head};
use crate::routing::reply_to;
use crate::transaction::Timers;

use self::authn::Authenticator;
use self::invite::Invites;
use self::location::Location;
use self::mwi::Notifier;
use crate::timers::TimerQueue;

/// A user as the proxy knows it: names it answers to and digest secrets (never passwords).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Canonical user (the extension), e.g. `201`.
    pub user: String,
    /// Other names that reach the same user (e.g. `alice`, `2001`).
    pub aliases: Vec<String>,
    /// Realm the HA1s were computed for.
    pub realm: String,
    /// HA1 = MD5(user:realm:password), lowercase hex.
    pub ha1_md5: Option<String>,
    /// HA1 = SHA-256(user:realm:password), lowercase hex.
    pub ha1_sha256: Option<String>,
}

/// An IP network (`addr/prefix`) whose requests need no authentication (trunks, gateways).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    /// Network address.
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix: u8,
}

impl Network {
    /// Parses `192.0.2.0/24`, `10.1.2.3` (a single host) or `::1`.
    pub fn parse(s: &str) -> Option<Network> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.trim().parse::<u8>().ok().filter(|&p| p <= max)?,
            None => max,
        };
        Some(Network { addr, prefix })
    }

    /// True when `ip` is inside.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(i) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(i) & mask
            }
            _ => false,
        }
    }
}

/// Voicemail for unanswered calls to users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voicemail {
    /// The deposit application's URL; `mailbox=USER` is added to its query.
    pub deposit_url: String,
    /// Ring this long before going to voicemail.
    pub no_answer: Duration,
}

/// Table bounds; past them new work gets 503 with Retry-After.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Concurrent INVITE transactions.
    pub invites: usize,
    /// Registered contacts in total.
    pub bindings: usize,
    /// Contacts per user.
    pub bindings_per_user: usize,
    /// Message-summary subscriptions in total.
    pub subscriptions: usize,
    /// Subscriptions per mailbox.
    pub subscriptions_per_mailbox: usize,
    /// Failed authentications from one user/address before a lockout.
    pub auth_failures: u32,
    /// How long a lockout lasts.
    pub lockout: Duration,
    /// Timer C: how long a ringing branch may go without a provisional response.
    pub timer_c: Duration,
    /// Requests per second one untrusted source IP may send (with a burst of twice that);
    /// past it requests are dropped unanswered. `None`: no limit.
    pub per_source: Option<f64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            invites: 20_000,
            bindings: 100_000,
            bindings_per_user: 10,
            subscriptions: 50_000,
            subscriptions_per_mailbox: 16,
            auth_failures: 5,
            lockout: Duration::from_secs(300),
            timer_c: Duration::from_secs(180),
            per_source: Some(50.0),
        }
    }
}

/// Proxy settings.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Our UDP address (bound).
    pub udp: SocketAddr,
    /// IP to put in Via and Record-Route when `udp` is unspecified (0.0.0.0); 127.0.0.1 if `None`.
    pub advertised_ip: Option<IpAddr>,
    /// Our TCP address, if listening.
    pub tcp: Option<SocketAddr>,
    /// Every IP of this host (when bound to a wildcard): a URI naming one of them names us.
    pub local_ips: Vec<IpAddr>,
    /// The SIP domain (also the digest realm). Empty: the advertised IP.
    pub domain: String,
    /// Where VXML calls go.
    pub media_server: SocketAddr,
    /// Number -> route.
    pub dial_plan: DialPlan,
    /// Users and their digest secrets.
    pub accounts: Vec<Account>,
    /// Sources that need no authentication (trunks; the media server is always trusted).
    pub trusted: Vec<Network>,
    /// Where unanswered calls to users go.
    pub voicemail: Option<Voicemail>,
    /// Registration intervals.
    pub expiry: Expiry,
    /// Table bounds.
    pub limits: Limits,
    /// Key for nonces and Record-Route signatures (random per process unless configured, so
    /// a restart invalidates nonces: phones just get a fresh challenge).
    pub secret: [u8; 32],
    /// Digest algorithms offered, most preferred first (one challenge header each). Empty:
    /// MD5 then SHA-256 — many phones (and sipp) answer only the first challenge and know
    /// only MD5; put SHA-256 first when every phone supports RFC 8760.
    pub digest_algorithms: Vec<crate::auth::Algorithm>,
    /// Wall-clock seconds at the instant the core was created (nonces carry time).
    pub unix_start: u64,
    /// T1/T2/T4.
    pub timers: Timers,
    /// Seed for branch ids and tags (tests pass a fixed one).
    pub seed: u64,
}

impl ProxyConfig {
    /// A configuration with defaults around the addresses (tests and examples).
    pub fn new(udp: SocketAddr, media_server: SocketAddr) -> ProxyConfig {
        ProxyConfig {
            udp,
            advertised_ip: None,
            tcp: None,
            local_ips: Vec::new(),
            domain: String::new(),
            media_server,
            dial_plan: DialPlan::new(),
            accounts: Vec::new(),
            trusted: Vec::new(),
            voicemail: None,
            expiry: Expiry::default(),
            limits: Limits::default(),
            secret: [7; 32],
            digest_algorithms: Vec::new(),
            unix_start: 0,
            timers: Timers::default(),
            seed: 1,
        }
    }
}

/// Inputs to the proxy.
#[derive(Debug, Clone)]
pub enum Input {
    /// A message arrived.
    Receive(Received),
    /// A deadline passed.
    Timeout(Instant),
    /// New message counts for a mailbox: NOTIFY its subscribers.
    MessageSummary {
        /// Current time.
        now: Instant,
        /// The mailbox (user).
        mailbox: String,
        /// New (unheard) messages.
        new: u32,
        /// Old (saved) messages.
        old: u32,
    },
    /// The user directory changed (e.g. after an import).
    Accounts(Vec<Account>),
    /// Bindings and subscriptions read back from storage at start.
    Restore {
        /// Current time.
        now: Instant,
        /// Saved bindings (lapsed ones are ignored).
        bindings: Vec<Binding>,
        /// Saved subscriptions (lapsed ones are ignored).
        subscriptions: Vec<Subscription>,
    },
}

/// A change the driver must persist (group-committed; the core never waits for it).
#[derive(Debug, Clone, PartialEq)]
pub enum StoreChange {
    /// The complete binding set of one AOR (empty: none left).
    Bindings {
        /// The address-of-record.
        aor: String,
        /// Its bindings now.
        bindings: Vec<Binding>,
    },
    /// A subscription was created or refreshed.
    Subscription(Subscription),
    /// A subscription ended.
    SubscriptionGone {
        /// Its Call-ID.
        call_id: String,
        /// Our tag.
        local_tag: String,
    },
}

/// Outputs of the proxy.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send this.
    Transmit(Transmit),
    /// Persist this.
    Store(StoreChange),
    /// Call again with `Input::Timeout` at this instant.
    Timeout(Instant),
    /// Nothing pending.
    Idle,
}

/// Counters for monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Messages that failed framing or validation.
    pub malformed: u64,
    /// Requests forwarded.
    pub forwarded_requests: u64,
    /// Responses forwarded.
    pub forwarded_responses: u64,
    /// Requests refused for relaying outside our targets (403).
    pub relay_denied: u64,
    /// Digest failures.
    pub auth_failures: u64,
    /// Requests refused for capacity (503).
    pub overload: u64,
    /// Requests dropped by the per-source rate limit.
    pub rate_limited: u64,
}

/// What the timer heap tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum TimerKey {
    Invite(u64),
    Subscription(u64),
    Notify(u64),
    Sweep,
}

/// The proxy core.
pub struct Proxy {
    cfg: ProxyConfig,
    advertised: SocketAddr,
    domain: String,
    rng: StdRng,
    epoch: Option<Instant>,
    users: HashMap<String, Arc<Account>>,
    location: Location,
    auth: Authenticator,
    invites: Invites,
    notifier: Notifier,
    timers: TimerQueue<TimerKey>,
    limiter: Option<crate::limits::RateLimiter>,
    queue: VecDeque<Output>,
    stats: ProxyStats,
}

/// How often lapsed bindings are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

impl Proxy {
    /// A proxy with no state.
    pub fn new(cfg: ProxyConfig) -> Proxy {
        let mut advertised = cfg.udp;
        if advertised.ip().is_unspecified() {
            advertised.set_ip(
                cfg.advertised_ip
                    .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
            );
        }
        let domain = if cfg.domain.is_empty() {
            advertised.ip().to_string()
        } else {
            cfg.domain.to_ascii_lowercase()
        };
        let mut p = Proxy {
            rng: StdRng::seed_from_u64(cfg.seed),
            advertised,
            location: Location::new(cfg.limits.bindings, cfg.limits.bindings_per_user),
            auth: Authenticator::new(&cfg, &domain),
            invites: Invites::default(),
            notifier: Notifier::new(
                cfg.limits.subscriptions,
                cfg.limits.subscriptions_per_mailbox,
            ),
            timers: TimerQueue::default(),
            limiter: cfg.limits.per_source.map(|rate| {
                crate::limits::RateLimiter::new(crate::limits::RateLimit {
                    per_second: rate,
                    burst: rate * 2.0,
                    ..Default::default()
                })
            }),
            domain,
            epoch: None,
            users: HashMap::new(),
            queue: VecDeque::new(),
            stats: ProxyStats::default(),
            cfg,
        };
        let accounts = p.cfg.accounts.clone();
        p.set_accounts(accounts);
        p
    }

    /// Counters.
    pub fn stats(&self) -> ProxyStats {
        self.stats
    }

    /// The SIP domain (and digest realm) in use.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Registered contacts now held.
    pub fn binding_count(&self) -> usize {
        self.location.len()
    }

    /// Message-summary subscriptions now held.
    pub fn subscription_count(&self) -> usize {
        self.notifier.len()
    }

    /// Feeds one input.
    pub fn handle_input(&mut self, input: Input) {
        match input {
            Input::Receive(r) => {
                self.tick(r.now);
                self.handle_receive(r)
            }
            Input::Timeout(now) => {
                self.tick(now);
                let due: Vec<TimerKey> = self.timers.pop_due(now).collect();
                for key in due {
                    match key {
                        TimerKey::Invite(id) => self.invite_timeout(id, now),
                        TimerKey::Subscription(id) => self.subscription_timeout(id, now),
                        TimerKey::Notify(id) => self.notify_timeout(id, now),
                        TimerKey::Sweep => self.sweep(now),
                    }
                }
            }
            Input::MessageSummary {
                now,
                mailbox,
                new,
                old,
            } => {
                self.tick(now);
                self.message_summary(now, &mailbox, new, old);
            }
            Input::Accounts(accounts) => self.set_accounts(accounts),
            Input::Restore {
                now,
                bindings,
                subscriptions,
            } => {
                self.tick(now);
                self.restore(now, bindings, subscriptions);
            }
        }
    }

    /// Next output; drain until `Timeout`/`Idle`.
    pub fn poll_output(&mut self) -> Output {
        if let Some(o) = self.queue.pop_front() {
            return o;
        }
        self.timers
            .next_deadline()
            .map_or(Output::Idle, Output::Timeout)
    }

    /// Starts the clock-based housekeeping on the first input.
    fn tick(&mut self, now: Instant) {
        if self.epoch.is_none() {
            self.epoch = Some(now);
            self.schedule(TimerKey::Sweep, now + SWEEP_EVERY);
        }
    }

    /// Wall-clock seconds at `now` (for nonces).
    fn unix_now(&self, now: Instant) -> u64 {
        let since = self
            .epoch
            .map_or(0, |e| now.saturating_duration_since(e).as_secs());
        self.cfg.unix_start + since
    }

    fn set_accounts(&mut self, accounts: Vec<Account>) {
        self.users.clear();
        for a in accounts {
            let a = Arc::new(a);
            for alias in &a.aliases {
                self.users
                    .entry(alias.to_ascii_lowercase())
                    .or_insert_with(|| a.clone());
            }
            // The canonical name wins over another user's alias.
            self.users.insert(a.user.to_ascii_lowercase(), a);
        }
    }

    /// The account a user name or alias belongs to.
    fn account(&self, name: &str) -> Option<&Arc<Account>> {
        self.users.get(&name.to_ascii_lowercase())
    }

    fn sweep(&mut self, now: Instant) {
        for aor in self.location.sweep(now) {
            let bindings = self.location.all(&aor).to_vec();
            self.persist(StoreChange::Bindings { aor, bindings });
        }
        self.schedule(TimerKey::Sweep, now + SWEEP_EVERY);
    }

    /// Sets (or moves) a deadline. The queue's bound is far above every table's, so a
    /// refusal means a bug elsewhere; it is logged rather than lost silently.
    fn schedule(&mut self, key: TimerKey, at: Instant) {
        if self.timers.schedule(key, at).is_err() {
            tracing::error!(?key, "timer queue full");
        }
    }

    fn set_timer(&mut self, key: TimerKey, at: Option<Instant>) {
        match at {
            Some(t) => self.schedule(key, t),
            None => {
                self.timers.cancel(&key);
            }
        }
    }

    fn persist(&mut self, change: StoreChange) {
        self.queue.push_back(Output::Store(change));
    }

    fn send(&mut self, transport: Transport, destination: SocketAddr, data: Bytes) {
        self.queue.push_back(Output::Transmit(Transmit {
            transport,
            destination,
            data,
        }));
    }

    /// A stateless response to `req` with a To-tag derived from the request, so that its
    /// retransmissions get the same answer and the ACK matches.
    fn reply(&mut self, r: &Received, req: &SipMessage, status: u16, reason: &str) {
        self.reply_with(r, req, status, reason, &[]);
    }

    fn reply_with(
        &mut self,
        r: &Received,
        req: &SipMessage,
        status: u16,
        reason: &str,
        headers: &[(&str, String)],
    ) {
        let mut b = response(req, status, reason);
        if status > 100 {
            b = b.to_tag(&self.stateless_tag(req));
        }
        for (n, v) in headers {
            b = b.header(n, v.clone());
        }
        let data = b.build();
        let dest = reply_to(r.transport, r.source, req);
        if crate::routing::is_unroutable(dest) {
            return;
        }
        self.send(r.transport, dest, data);
    }

    fn stateless_tag(&self, req: &SipMessage) -> String {
        let branch = req.top_via().and_then(|v| v.branch().map(str::to_owned));
        let call_id = req.call_id().unwrap_or_default();
        format!(
            "sl{:012x}",
            fnv1a(branch.unwrap_or_default().as_bytes())
                ^ fnv1a(call_id.as_bytes()) & 0xffff_ffff_ffff
        )
    }

    fn random_tag(&mut self) -> String {
        format!("px{:012x}", self.rng.random::<u64>() & 0xffff_ffff_ffff)
    }

    /// Our address as seen over `transport` (the TCP listener may use another port).
    fn advertised_for(&self, transport: Transport) -> SocketAddr {
        match (transport, self.cfg.tcp) {
            (Transport::Tcp, Some(t)) => SocketAddr::new(self.advertised.ip(), t.port()),
            _ => self.advertised,
        }
    }

    /// True when `ip` is one of this host's addresses.
    fn is_our_ip(&self, ip: IpAddr) -> bool {
        ip == self.advertised.ip()
            || (!self.cfg.udp.ip().is_unspecified() && ip == self.cfg.udp.ip())
            || (self.cfg.udp.ip().is_unspecified() && self.cfg.local_ips.contains(&ip))
    }

    /// True when `uri` names us: our domain, or one of our addresses on a port we listen on.
    /// A wildcard bind means "every address of this host", never "every address".
    fn is_us(&self, uri: &Uri) -> bool {
        let host = uri.host.trim_matches(['[', ']']);
        let port = uri
            .port
            .unwrap_or(if uri.scheme == "sips" { 5061 } else { 5060 });
        let ports_ok =
            port == self.cfg.udp.port() || self.cfg.tcp.is_some_and(|t| t.port() == port);
        if host.eq_ignore_ascii_case(&self.domain) {
            return uri.port.is_none() || ports_ok;
        }
        let ip = if host.eq_ignore_ascii_case("localhost") {
            Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
        } else {
            host.parse::<IpAddr>().ok()
        };
        // Without a port, phones configured with our address (and another port) mean us.
        ip.is_some_and(|ip| self.is_our_ip(ip)) && (uri.port.is_none() || ports_ok)
    }

    /// True for requests that need no digest: trusted networks, trunks and the media server.
    fn is_trusted(&self, source: SocketAddr) -> bool {
        // The media server by its exact SIP address (its transfers and outbound calls), not
        // by IP: on one host that IP is every local process.
        source == self.cfg.media_server || self.cfg.trusted.iter().any(|n| n.contains(source.ip()))
    }

    fn handle_receive(&mut self, r: Received) {
        // Flood control before any work: requests only (a response is never answered, and
        // dropping one would hurt calls in progress), never from trusted sources.
        if !r.data.starts_with(b"SIP/")
            && !self.is_trusted(r.source)
            && let Some(l) = &mut self.limiter
            && !l.allow(r.source.ip(), r.now)
        {
            self.stats.rate_limited += 1;
            return;
        }
        let msg = match parse(r.data.clone()) {
            Ok(m) => m,
            Err(e) => {
                self.stats.malformed += 1;
                // Framing failed; answer 400 if the headers are there to build one.
                match parse_head(r.data.clone()) {
                    Ok(head) if head.can_answer() && head.method() != Some("ACK") => {
                        debug!(source = %r.source, error = %e, "malformed request, answering 400");
                        self.reply(&r, &head, 400, "Bad Request");
                    }
                    _ => debug!(source = %r.source, error = %e, "dropping unparsable message"),
                }
                return;
            }
        };
        let call_id = msg.call_id().map(|c| c.into_owned()).unwrap_or_default();
        if let Err(rej) = msg.validate() {
            self.stats.malformed += 1;
            if msg.can_answer() && msg.method() != Some("ACK") {
                info!(call_id = %call_id, status = rej.status, "rejecting request");
                self.reply(&r, &msg, rej.status, rej.reason);
            } else {
                debug!(call_id = %call_id, "dropping invalid message");
            }
            return;
        }
        if msg.is_request() {
            self.handle_request(r, msg, call_id);
        } else {
            self.handle_response(r.now, msg, call_id);
        }
    }

    fn handle_request(&mut self, r: Received, msg: SipMessage, call_id: String) {
        let method = msg.method().unwrap_or("").to_owned();
        match method.as_str() {
            "ACK" => return self.handle_ack(r, msg, call_id),
            "CANCEL" => return self.handle_cancel(r, msg, call_id),
            _ => {}
        }
        if self.invites.is_retransmission(&msg) {
            return self.handle_invite(r, msg, call_id);
        }
        let in_dialog = msg.to().is_some_and(|t| t.tag().is_some());
        if in_dialog {
            if self.is_our_subscription_request(&msg) {
                return self.handle_subscribe(r, msg, call_id);
            }
            return if method == "INVITE" {
                self.handle_invite(r, msg, call_id)
            } else {
                self.forward_in_dialog(&r, &msg, &call_id)
            };
        }
        if self.is_loop(&msg) {
            info!(call_id = %call_id, "loop detected");
            return self.reply(&r, &msg, 482, "Loop Detected");
        }
        // Max-Forwards 0 ends here, except an OPTIONS to us, which we answer (§16.3 step 3).
        let options_to_us = method == "OPTIONS" && msg.uri().is_some_and(|u| self.is_us(&u));
        if msg.max_forwards() == Some(0) && !options_to_us {
            return self.reply(&r, &msg, 483, "Too Many Hops");
        }
        // Initial requests: our own Route entries (an outbound-proxy setting) are fine; one
        // that leads anywhere else would make us a relay.
        match self.routes_beyond_us(&msg) {
            Ok(0) => {}
            Ok(_) | Err(()) => {
                self.stats.relay_denied += 1;
                info!(call_id = %call_id, source = %r.source, "pre-loaded Route leaves us: relay denied");
                return self.reply(&r, &msg, 403, "Relaying Denied");
            }
        }
        let Some(uri) = msg.uri() else {
            return self.reply(&r, &msg, 416, "Unsupported URI Scheme");
        };
        if !self.is_us(&uri) {
            self.stats.relay_denied += 1;
            info!(call_id = %call_id, source = %r.source, host = %uri.host, "request for another domain: relay denied");
            return self.reply(&r, &msg, 403, "Relaying Denied");
        }
        match method.as_str() {
            "REGISTER" => self.handle_register(r, msg, call_id),
            "SUBSCRIBE" => self.handle_subscribe(r, msg, call_id),
            "INVITE" => self.handle_invite(r, msg, call_id),
            "OPTIONS" => {
                let allow = ("Allow", ALLOW.to_owned());
                self.reply_with(&r, &msg, 200, "OK", &[allow]);
            }
            _ => {
                let allow = ("Allow", ALLOW.to_owned());
                self.reply_with(&r, &msg, 405, "Method Not Allowed", &[allow]);
            }
        }
    }

    /// How many Route entries remain after ours on top; `Err` when one does not parse.
    fn routes_beyond_us(&self, msg: &SipMessage) -> Result<usize, ()> {
        let routes = msg.routes().map_err(|_| ())?;
        let mut rest = routes
            .iter()
            .skip_while(|r| Uri::parse(&r.uri).is_ok_and(|u| self.is_us(&u) && u.user.is_none()));
        Ok(rest.by_ref().count())
    }

    /// §16.3 step 4: a request that carries our Via with the loop hash of this very request
    /// came back to us unchanged.
    fn is_loop(&self, msg: &SipMessage) -> bool {
        let Ok(vias) = msg.vias() else { return false };
        let hash = loop_hash(msg);
        vias.iter().any(|v| {
            v.branch()
                .and_then(|b| b.rsplit_once('.'))
                .is_some_and(|(_, h)| h == hash)
                && v.host == self.advertised.ip().to_string()
        })
    }
}

/// Methods we handle.
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, SUBSCRIBE, NOTIFY, REFER, INFO, UPDATE, PRACK, MESSAGE";

/// The loop-detection hash of a request (§16.6 step 8): what identifies it before we change
/// it. Carried after a `.` in our branch.
fn loop_hash(msg: &SipMessage) -> String {
    let mut h = fnv1a(msg.request_uri().unwrap_or("").as_bytes());
    h ^= fnv1a(msg.call_id().unwrap_or_default().as_bytes()).rotate_left(7);
    h ^= fnv1a(
        msg.from()
            .and_then(|f| f.tag().map(str::to_owned))
            .unwrap_or_default()
            .as_bytes(),
    )
    .rotate_left(19);
    h ^= u64::from(msg.cseq().map_or(0, |(n, _)| n)).rotate_left(31);
    format!("{:08x}", h & 0xffff_ffff)
}

/// FNV-1a, for deterministic stateless branches and tags.
fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &c| {
        (h ^ u64::from(c)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests;
