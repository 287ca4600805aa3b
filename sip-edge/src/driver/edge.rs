//! `spawn_edge`: the proxy core on UDP (+ TCP), with its state behind the storage trait.
//!
//! At start the users, bindings and subscriptions are read from the store and handed to the
//! core. Changes the core reports are written by one writer task that commits whatever has
//! queued up in a single transaction (group commit), so a burst of REGISTERs costs one fsync,
//! and the core never waits for the disk.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parley_store::{BindingRecord, Store, StoreOp, SubscriptionRecord, UserRecord};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::{Core, Io, Polled, run};
use crate::Instant;
use crate::io::{Received, Transport};
use crate::proxy::{
    self, Account, Binding, DialPlan, Expiry, Limits, Network, Proxy, ProxyConfig, StoreChange,
    Subscription, Voicemail,
};
use crate::transaction::Timers;

/// Edge settings.
#[derive(Clone)]
pub struct EdgeConfig {
    /// UDP address to bind (port 0 picks one).
    pub udp: SocketAddr,
    /// TCP address to listen on, if any.
    pub tcp: Option<SocketAddr>,
    /// IP written in Via/Record-Route when bound to a wildcard (default: the interface
    /// holding the default route).
    pub advertised_ip: Option<IpAddr>,
    /// The SIP domain and digest realm (empty: the advertised IP).
    pub domain: String,
    /// Where VXML calls go (the media server's UA).
    pub media_server: SocketAddr,
    /// Number -> route.
    pub dial_plan: DialPlan,
    /// Sources that need no digest (trunks, gateways).
    pub trusted: Vec<Network>,
    /// Voicemail for unanswered calls to users.
    pub voicemail: Option<Voicemail>,
    /// Registration intervals.
    pub expiry: Expiry,
    /// Table bounds.
    pub limits: Limits,
    /// Digest algorithms offered, most preferred first (empty: MD5 only).
    pub digest_algorithms: Vec<crate::auth::Algorithm>,
    /// Key for nonces and Record-Route signatures. Keep it across restarts (and share it
    /// between edges of one domain) so calls set up before a restart can still hang up;
    /// `None`: a random one for this process.
    pub secret: Option<[u8; 32]>,
    /// Users, bindings and subscriptions.
    pub store: Arc<dyn Store>,
}

impl std::fmt::Debug for EdgeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeConfig")
            .field("udp", &self.udp)
            .field("tcp", &self.tcp)
            .field("domain", &self.domain)
            .field("media_server", &self.media_server)
            .finish_non_exhaustive()
    }
}

impl EdgeConfig {
    /// A configuration with defaults around the addresses and a store.
    pub fn new(udp: SocketAddr, media_server: SocketAddr, store: Arc<dyn Store>) -> EdgeConfig {
        EdgeConfig {
            udp,
            tcp: None,
            advertised_ip: None,
            domain: String::new(),
            media_server,
            dial_plan: DialPlan::new(),
            trusted: Vec::new(),
            voicemail: None,
            expiry: Expiry::default(),
            limits: Limits::default(),
            digest_algorithms: Vec::new(),
            secret: None,
            store,
        }
    }
}

/// Commands to a running edge.
#[derive(Debug)]
pub enum EdgeCommand {
    /// New counts for a mailbox.
    MessageSummary {
        /// The mailbox (user or alias).
        mailbox: String,
        /// New messages.
        new: u32,
        /// Old messages.
        old: u32,
    },
    /// Re-read the users from the store.
    ReloadUsers,
}

/// A running edge.
pub struct EdgeHandle {
    /// The UDP address actually bound.
    pub udp_addr: SocketAddr,
    /// The TCP address actually bound.
    pub tcp_addr: Option<SocketAddr>,
    /// The domain (and realm) in use.
    pub domain: String,
    commands: mpsc::UnboundedSender<EdgeCommand>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl EdgeHandle {
    /// Sends a command; false when the edge has stopped.
    pub fn command(&self, c: EdgeCommand) -> bool {
        self.commands.send(c).is_ok()
    }

    /// Stops the edge, waits for its task and for pending writes to commit.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(());
        let _ = self.task.await;
        let _ = self.writer.await;
    }
}

/// The core plus what it needs to turn commands into inputs.
pub(crate) struct EdgeCore {
    proxy: Proxy,
    store: Arc<dyn Store>,
}

impl Core for EdgeCore {
    type Command = EdgeCommand;
    type Event = StoreChange;

    fn receive(&mut self, r: Received) {
        self.proxy.handle_input(proxy::Input::Receive(r));
    }

    fn command(&mut self, now: Instant, c: Self::Command) {
        match c {
            EdgeCommand::MessageSummary { mailbox, new, old } => {
                self.proxy.handle_input(proxy::Input::MessageSummary {
                    now,
                    mailbox,
                    new,
                    old,
                })
            }
            EdgeCommand::ReloadUsers => match load_accounts(self.store.as_ref()) {
                Ok(a) => {
                    info!(users = a.len(), "users reloaded");
                    self.proxy.handle_input(proxy::Input::Accounts(a));
                }
                Err(e) => warn!(error = %e, "cannot reload users"),
            },
        }
    }

    fn timeout(&mut self, now: Instant) {
        self.proxy.handle_input(proxy::Input::Timeout(now));
    }

    fn poll(&mut self) -> Polled<Self::Event> {
        match self.proxy.poll_output() {
            proxy::Output::Transmit(t) => Polled::Transmit(t),
            proxy::Output::Store(c) => Polled::Event(c),
            proxy::Output::Timeout(t) => Polled::Timeout(t),
            proxy::Output::Idle => Polled::Idle,
        }
    }
}

/// Binds the sockets, loads the state and starts the proxy and writer tasks.
pub async fn spawn_edge(cfg: EdgeConfig) -> std::io::Result<EdgeHandle> {
    let udp = UdpSocket::bind(cfg.udp).await?;
    let udp_addr = udp.local_addr()?;
    let tcp = match cfg.tcp {
        Some(a) => Some(TcpListener::bind(a).await?),
        None => None,
    };
    let tcp_addr = tcp.as_ref().map(TcpListener::local_addr).transpose()?;
    let store = cfg.store.clone();
    let io_err = |e: parley_store::Error| std::io::Error::other(e.to_string());
    let accounts = load_accounts(store.as_ref()).map_err(io_err)?;
    let bindings = store.bindings().map_err(io_err)?;
    let subscriptions = store.subscriptions().map_err(io_err)?;
    let now = super::now();
    let unix = unix_now();
    let secret = cfg.secret.unwrap_or_else(|| {
        let mut s = [0u8; 32];
        rand::Rng::fill(&mut rand::rng(), &mut s[..]);
        s
    });
    let mut proxy = Proxy::new(ProxyConfig {
        udp: udp_addr,
        advertised_ip: cfg.advertised_ip.or_else(|| super::outbound_ip(udp_addr)),
        tcp: tcp_addr,
        local_ips: local_ips(udp_addr),
        domain: cfg.domain.clone(),
        media_server: cfg.media_server,
        dial_plan: cfg.dial_plan,
        accounts,
        trusted: cfg.trusted,
        voicemail: cfg.voicemail,
        expiry: cfg.expiry,
        limits: cfg.limits,
        secret,
        digest_algorithms: cfg.digest_algorithms,
        unix_start: unix,
        timers: Timers::default(),
        seed: rand::random(),
    });
    let restored_bindings = bindings.len();
    let restored_subs = subscriptions.len();
    proxy.handle_input(proxy::Input::Restore {
        now,
        bindings: bindings
            .into_iter()
            .filter_map(|b| binding_from_record(b, now, unix))
            .collect(),
        subscriptions: subscriptions
            .into_iter()
            .filter_map(|s| subscription_from_record(s, now, unix))
            .collect(),
    });
    let domain = proxy.domain().to_owned();
    let (commands_tx, commands) = mpsc::unbounded_channel();
    let (events_tx, events) = mpsc::unbounded_channel();
    let (shutdown, shutdown_rx) = oneshot::channel();
    let io = Io::<EdgeCore> {
        udp,
        tcp,
        commands,
        events: Some(events_tx),
        shutdown: shutdown_rx,
    };
    let writer = tokio::spawn(write_changes(store.clone(), events));
    let task = tokio::spawn(run(EdgeCore { proxy, store }, io));
    info!(%udp_addr, ?tcp_addr, %domain, restored_bindings, restored_subs, "sip edge listening");
    Ok(EdgeHandle {
        udp_addr,
        tcp_addr,
        domain,
        commands: commands_tx,
        shutdown,
        task,
        writer,
    })
}

/// Every address of this host a wildcard bind listens on (so "our address" never means
/// "any address"). Loopback always counts.
fn local_ips(bound: SocketAddr) -> Vec<IpAddr> {
    let mut ips = vec![
        IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
    ];
    if bound.ip().is_unspecified() {
        if let Ok(ifs) = if_addrs::get_if_addrs() {
            ips.extend(ifs.into_iter().map(|i| i.ip()));
        }
        ips.extend(super::outbound_ip(bound));
    } else {
        ips.push(bound.ip());
    }
    ips.sort();
    ips.dedup();
    ips
}

fn load_accounts(store: &dyn Store) -> parley_store::Result<Vec<Account>> {
    Ok(store
        .users()?
        .into_iter()
        .map(account_from_record)
        .collect())
}

fn account_from_record(u: UserRecord) -> Account {
    Account {
        user: u.user,
        aliases: u.aliases,
        realm: u.realm,
        ha1_md5: u.ha1_md5,
        ha1_sha256: u.ha1_sha256,
    }
}

#[allow(clippy::disallowed_methods)] // the driver owns the clocks
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn to_unix(at: Instant, now: Instant, unix: u64) -> u64 {
    unix + at.saturating_duration_since(now).as_secs()
}

fn to_instant(at_unix: u64, now: Instant, unix: u64) -> Option<Instant> {
    (at_unix > unix).then(|| now + Duration::from_secs(at_unix - unix))
}

fn transport_name(t: Transport) -> String {
    if t.is_reliable() { "tcp" } else { "udp" }.to_owned()
}

fn transport_from(s: &str) -> Transport {
    if s.eq_ignore_ascii_case("tcp") {
        Transport::Tcp
    } else {
        Transport::Udp
    }
}

fn binding_from_record(b: BindingRecord, now: Instant, unix: u64) -> Option<Binding> {
    Some(Binding {
        expires_at: to_instant(b.expires_unix, now, unix)?,
        aor: b.aor,
        contact: b.contact,
        q: b.q.min(1000),
        call_id: b.call_id,
        cseq: b.cseq,
        path: b.path,
        transport: transport_from(&b.transport),
        source: b.source,
        instance: b.instance,
        user_agent: b.user_agent,
    })
}

fn binding_to_record(b: Binding, now: Instant, unix: u64) -> BindingRecord {
    BindingRecord {
        expires_unix: to_unix(b.expires_at, now, unix),
        aor: b.aor,
        contact: b.contact,
        q: b.q,
        call_id: b.call_id,
        cseq: b.cseq,
        path: b.path,
        transport: transport_name(b.transport),
        source: b.source,
        instance: b.instance,
        user_agent: b.user_agent,
    }
}

fn subscription_from_record(
    s: SubscriptionRecord,
    now: Instant,
    unix: u64,
) -> Option<Subscription> {
    Some(Subscription {
        expires_at: to_instant(s.expires_unix, now, unix)?,
        mailbox: s.mailbox,
        call_id: s.call_id,
        local_tag: s.local_tag,
        remote_tag: s.remote_tag,
        remote_uri: s.remote_uri,
        local_uri: s.local_uri,
        remote_target: s.remote_target,
        route_set: s.route_set,
        next_cseq: s.next_cseq,
        transport: transport_from(&s.transport),
        source: s.source,
        event_id: s.event_id,
    })
}

fn subscription_to_record(s: Subscription, now: Instant, unix: u64) -> SubscriptionRecord {
    SubscriptionRecord {
        expires_unix: to_unix(s.expires_at, now, unix),
        mailbox: s.mailbox,
        call_id: s.call_id,
        local_tag: s.local_tag,
        remote_tag: s.remote_tag,
        remote_uri: s.remote_uri,
        local_uri: s.local_uri,
        remote_target: s.remote_target,
        route_set: s.route_set,
        next_cseq: s.next_cseq,
        transport: transport_name(s.transport),
        source: s.source,
        event_id: s.event_id,
    }
}

/// Most changes one commit takes (bounds a transaction's size under a flood).
const MAX_BATCH: usize = 4096;

/// The writer: waits for a change, takes every change queued behind it, converts them with
/// one clock reading, and commits them in one transaction off the async threads.
async fn write_changes(store: Arc<dyn Store>, mut changes: mpsc::UnboundedReceiver<StoreChange>) {
    let mut batch = Vec::new();
    while changes.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let now = super::now();
        let unix = unix_now();
        let ops: Vec<StoreOp> = batch
            .drain(..)
            .map(|c| match c {
                StoreChange::Bindings { aor, bindings } => StoreOp::ReplaceBindings {
                    aor,
                    bindings: bindings
                        .into_iter()
                        .map(|b| binding_to_record(b, now, unix))
                        .collect(),
                },
                StoreChange::Subscription(s) => {
                    StoreOp::PutSubscription(subscription_to_record(*s, now, unix))
                }
                StoreChange::SubscriptionGone { call_id, local_tag } => {
                    StoreOp::RemoveSubscription { call_id, local_tag }
                }
            })
            .collect();
        let store = store.clone();
        let n = ops.len();
        match tokio::task::spawn_blocking(move || store.apply(&ops)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %e, changes = n, "cannot persist edge state"),
            Err(e) => warn!(error = %e, "edge state writer failed"),
        }
    }
}
