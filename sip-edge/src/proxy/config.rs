//! The proxy's vocabulary: settings, users as it knows them, inputs, outputs, counters.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::{Binding, DialPlan, Expiry, Subscription};
use crate::Instant;
use crate::io::{Received, Transmit};
use crate::transaction::Timers;

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
    /// MD5 only. Credentials of either algorithm verify; the offer is what is configurable,
    /// because clients older than RFC 8760 fail on a challenge they do not know (baresip 1.0
    /// gives up when any of several challenges is SHA-256; sipp answers only the first).
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
    Subscription(Box<Subscription>),
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
