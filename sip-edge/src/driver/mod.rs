//! Tokio drivers: move bytes between sockets and a sans-IO core, nothing else.
//!
//! One task per core instance waits on the UDP socket, framed TCP messages, the command
//! channel and `sleep_until(next deadline)`, feeds the core, then drains its outputs:
//! transmits go out (UDP `send_to`, or the TCP connection to that peer, opened on demand),
//! events go to the application channel, and the returned deadline re-arms the timer.
//!
//! TCP is bounded: at most `tcp::MAX_CONNECTIONS` open connections, `MAX_CONNECTIONS_PER_IP`
//! accepted ones per source IP and `ACCEPTS_PER_SECOND` new ones per IP (excess accepts are
//! closed at once), a bounded write queue per connection (a peer that stops reading is
//! dropped), one bounded incomplete message per connection, and an idle timeout.

mod edge;
mod tcp;
mod ua;

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

pub use edge::{EdgeCommand, EdgeConfig, EdgeHandle, spawn_edge};
pub use ua::{UaConfig, UaHandle, spawn_ua};

use crate::Instant;
use crate::io::{Received, Transmit, Transport};
use crate::limits::{RateLimit, RateLimiter};

/// The driver's only clock read: cores get time as an input.
#[allow(clippy::disallowed_methods)] // the one place allowed to read the clock
fn now() -> Instant {
    Instant::now()
}

/// For a wildcard bind, the IP of the interface holding the default route, found by
/// `connect`ing a UDP socket (no packet is sent). `None` keeps the core's loopback default.
fn outbound_ip(bound: SocketAddr) -> Option<std::net::IpAddr> {
    if !bound.ip().is_unspecified() {
        return None;
    }
    let probe = std::net::UdpSocket::bind((bound.ip(), 0)).ok()?;
    // TEST-NET-1 (RFC 5737): routable in the table, never answered.
    probe.connect(("192.0.2.1", 9)).ok()?;
    let ip = probe.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

/// What a core produces, in the driver's terms.
pub(crate) enum Polled<E> {
    Transmit(Transmit),
    Event(E),
    Timeout(Instant),
    Idle,
}

/// The shape shared by [`crate::proxy::Proxy`] and [`crate::ua::Ua`].
pub(crate) trait Core: Send + 'static {
    type Command: Send + 'static;
    type Event: Send + 'static;
    fn receive(&mut self, r: Received);
    fn command(&mut self, now: Instant, c: Self::Command);
    fn timeout(&mut self, now: Instant);
    fn poll(&mut self) -> Polled<Self::Event>;
}

static CONN_IDS: AtomicU64 = AtomicU64::new(1);

/// New TCP connections accepted per second from one IP (sustained), and in a burst.
const ACCEPTS_PER_SECOND: f64 = 20.0;
const ACCEPT_BURST: f64 = 64.0;

/// Channels and sockets of one running core.
pub(crate) struct Io<C: Core> {
    pub(crate) udp: UdpSocket,
    pub(crate) tcp: Option<TcpListener>,
    pub(crate) commands: mpsc::UnboundedReceiver<C::Command>,
    pub(crate) events: Option<mpsc::UnboundedSender<C::Event>>,
    pub(crate) shutdown: oneshot::Receiver<()>,
}

/// The run loop (see the module docs).
pub(crate) async fn run<C: Core>(mut core: C, mut io: Io<C>) {
    let (tcp_in_tx, mut tcp_in) = mpsc::channel::<(SocketAddr, Bytes)>(256);
    let (closed_tx, mut closed) = mpsc::unbounded_channel::<(SocketAddr, u64)>();
    let mut conns: HashMap<SocketAddr, (u64, mpsc::Sender<Bytes>)> = HashMap::new();
    // Open connections: id -> the peer IP when accepted (None when we connected).
    let mut open: HashMap<u64, Option<IpAddr>> = HashMap::new();
    let mut per_ip: HashMap<IpAddr, usize> = HashMap::new();
    let mut accept_rate = RateLimiter::new(RateLimit {
        per_second: ACCEPTS_PER_SECOND,
        burst: ACCEPT_BURST,
        max_sources: 65_536,
    });
    let mut buf = vec![0u8; 65_535];
    let mut deadline: Option<Instant> = None;
    let mut commands_open = true;
    loop {
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        let accept = async {
            match &io.tcp {
                Some(l) => l.accept().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = &mut io.shutdown => break,
            r = io.udp.recv_from(&mut buf) => match r {
                Ok((n, source)) => core.receive(Received {
                    now: now(),
                    transport: Transport::Udp,
                    source,
                    data: Bytes::copy_from_slice(&buf[..n]),
                }),
                // ICMP errors from earlier sends surface here on some platforms; not fatal.
                Err(e) => debug!(error = %e, "udp receive error"),
            },
            a = accept => match a {
                Ok((stream, peer)) => {
                    let ip = peer.ip();
                    let from_ip = per_ip.get(&ip).copied().unwrap_or(0);
                    if open.len() >= tcp::MAX_CONNECTIONS
                        || from_ip >= tcp::MAX_CONNECTIONS_PER_IP
                        || !accept_rate.allow(ip, now())
                    {
                        debug!(%peer, open = open.len(), from_ip, "refusing tcp connection");
                        drop(stream);
                    } else {
                        let id = CONN_IDS.fetch_add(1, Ordering::Relaxed);
                        let (tx, rx) = mpsc::channel(tcp::OUTGOING_QUEUE);
                        conns.insert(peer, (id, tx));
                        open.insert(id, Some(ip));
                        *per_ip.entry(ip).or_default() += 1;
                        tokio::spawn(tcp::connection(tcp::Conn::Accepted(stream), peer, id, rx, tcp_in_tx.clone(), closed_tx.clone()));
                    }
                }
                Err(e) => warn!(error = %e, "tcp accept failed"),
            },
            Some((source, data)) = tcp_in.recv() => core.receive(Received {
                now: now(),
                transport: Transport::Tcp,
                source,
                data,
            }),
            Some((peer, id)) = closed.recv() => {
                if conns.get(&peer).is_some_and(|(cid, _)| *cid == id) {
                    conns.remove(&peer);
                }
                if let Some(Some(ip)) = open.remove(&id)
                    && let Some(n) = per_ip.get_mut(&ip)
                {
                    *n -= 1;
                    if *n == 0 {
                        per_ip.remove(&ip);
                    }
                }
            }
            c = io.commands.recv(), if commands_open => match c {
                Some(c) => core.command(now(), c),
                None => commands_open = false,
            },
            _ = sleep => core.timeout(now()),
        }
        loop {
            match core.poll() {
                Polled::Transmit(t) => match t.transport {
                    Transport::Udp => {
                        if let Err(e) = io.udp.send_to(&t.data, t.destination).await {
                            debug!(error = %e, destination = %t.destination, "udp send failed");
                        }
                    }
                    Transport::Tcp => {
                        let sender = match conns.entry(t.destination) {
                            Entry::Occupied(o) => o.into_mut(),
                            Entry::Vacant(_) if open.len() >= tcp::MAX_CONNECTIONS => {
                                warn!(destination = %t.destination, "tcp connection limit reached, dropping message");
                                continue;
                            }
                            Entry::Vacant(v) => {
                                let id = CONN_IDS.fetch_add(1, Ordering::Relaxed);
                                let (tx, rx) = mpsc::channel(tcp::OUTGOING_QUEUE);
                                open.insert(id, None);
                                tokio::spawn(tcp::connection(
                                    tcp::Conn::Connect,
                                    t.destination,
                                    id,
                                    rx,
                                    tcp_in_tx.clone(),
                                    closed_tx.clone(),
                                ));
                                v.insert((id, tx))
                            }
                        };
                        if sender.1.try_send(t.data).is_err() {
                            // Full: the peer does not read; closed: it is going away. Either
                            // way drop it (the task ends when its queue's sender is gone).
                            debug!(destination = %t.destination, "tcp send queue full or closed, dropping connection");
                            conns.remove(&t.destination);
                        }
                    }
                },
                Polled::Event(e) => {
                    if let Some(events) = &io.events {
                        let _ = events.send(e);
                    }
                }
                Polled::Timeout(t) => {
                    deadline = Some(t);
                    break;
                }
                Polled::Idle => {
                    deadline = None;
                    break;
                }
            }
        }
    }
    debug!("driver stopped");
}
