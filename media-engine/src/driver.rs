//! The tokio driver: port allocation and one task per session that moves datagrams, commands
//! and timer expiries into the [`RtpSession`] core and its outputs onto the socket.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;
use tokio::sync::{Notify, mpsc, oneshot};
use tracing::Instrument;

use crate::sdp::Negotiated;
use crate::session::{
    MediaEvent, Output, RtpSession, SessionConfig, SessionStats, TRANSMIT_BUFFER_LEN,
};

/// The one place that reads the clock; the session core only sees the `Instant`s passed in.
mod clock {
    use std::time::Instant;

    #[allow(clippy::disallowed_methods)] // the driver is where time enters the system
    pub(crate) fn now() -> Instant {
        Instant::now()
    }
}

/// Largest datagram we read; RTP over UDP stays far below this on Ethernet MTUs.
const MAX_DATAGRAM: usize = 2048;

/// Where RTP ports come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Local address to bind (and to put in SDP unless it is unspecified).
    pub bind_ip: IpAddr,
    /// Lowest port; `0` (with `port_max` 0) lets the OS pick any free port (tests).
    pub port_min: u16,
    /// Highest port; the RTP port is even and `port + 1` (RTCP) must fit in the range too.
    pub port_max: u16,
}

impl Default for EngineConfig {
    /// The embedded default: all interfaces, ports 20000-29999.
    fn default() -> Self {
        EngineConfig {
            bind_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port_min: 20000,
            port_max: 29999,
        }
    }
}

/// Allocates RTP sockets; cheap to clone and share between calls.
#[derive(Debug, Clone)]
pub struct MediaEngine {
    inner: Arc<EngineInner>,
}

#[derive(Debug)]
struct EngineInner {
    config: EngineConfig,
    /// Even ports of the range not held by a call of ours, least recently freed first: a
    /// just-freed port goes to the back, so late packets of an old call do not land in a new
    /// one, and allocating is a pop, not a probe of every port.
    free: Mutex<VecDeque<u16>>,
}

impl MediaEngine {
    /// An engine allocating from `cfg`'s range.
    pub fn new(cfg: EngineConfig) -> Self {
        let start = rand::random::<u32>() >> 1;
        let free = even_ports(cfg.port_min, cfg.port_max, start).collect();
        MediaEngine {
            inner: Arc::new(EngineInner {
                config: cfg,
                free: Mutex::new(free),
            }),
        }
    }

    /// Binds a UDP socket on a free even port of the range. `AddrInUse` if all are taken.
    pub async fn allocate(&self) -> io::Result<RtpSocket> {
        let cfg = &self.inner.config;
        if cfg.port_min == 0 && cfg.port_max == 0 {
            return RtpSocket::bind(SocketAddr::new(cfg.bind_ip, 0), None).await;
        }
        if even_ports(cfg.port_min, cfg.port_max, 0).len() == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "rtp port range holds no even port pair",
            ));
        }
        // Ports another process holds are skipped (and tried again later, at the back).
        let tries = self.free_len();
        for _ in 0..tries {
            let Some(port) = self.take_port() else { break };
            let lease = PortLease {
                engine: self.inner.clone(),
                port,
            };
            match RtpSocket::bind(SocketAddr::new(cfg.bind_ip, port), Some(lease)).await {
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
                other => return other,
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "no free rtp port in range",
        ))
    }

    fn free_len(&self) -> usize {
        self.inner.free.lock().map_or(0, |f| f.len())
    }

    fn take_port(&self) -> Option<u16> {
        self.inner.free.lock().ok()?.pop_front()
    }
}

/// A port taken from the engine's pool; it goes back when the socket (and so the session that
/// owns it) is dropped.
#[derive(Debug)]
struct PortLease {
    engine: Arc<EngineInner>,
    port: u16,
}

impl Drop for PortLease {
    fn drop(&mut self) {
        if let Ok(mut free) = self.engine.free.lock() {
            free.push_back(self.port);
        }
    }
}

/// Even ports `p` with `min <= p` and `p + 1 <= max`, starting at the `start`-th one (mod count)
/// and wrapping around.
fn even_ports(min: u16, max: u16, start: u32) -> impl ExactSizeIterator<Item = u16> {
    let first = u32::from(min.max(2)).next_multiple_of(2);
    let count = if u32::from(max) > first {
        (u32::from(max) - first).div_ceil(2)
    } else {
        0
    };
    // `count` and the offsets stay below 2^15, so the arithmetic and the casts cannot overflow.
    let offset = if count == 0 { 0 } else { start % count };
    (0..count).map(move |i| (first + 2 * ((offset + i) % count)) as u16)
}

/// A bound RTP socket, not yet carrying a session.
#[derive(Debug)]
pub struct RtpSocket {
    socket: UdpSocket,
    local: SocketAddr,
    /// Gives the port back to the engine when the socket goes.
    _lease: Option<PortLease>,
}

impl RtpSocket {
    async fn bind(addr: SocketAddr, lease: Option<PortLease>) -> io::Result<Self> {
        let socket = UdpSocket::bind(addr).await?;
        let local = socket.local_addr()?;
        Ok(RtpSocket {
            socket,
            local,
            _lease: lease,
        })
    }

    /// The bound address (an unspecified IP if the engine binds all interfaces).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

/// Capacity of a session's command queue ([`MediaHandle`] → task).
pub const COMMAND_QUEUE: usize = 64;

/// Capacity of a session's event queue (task → owner). When it is full, events are dropped and
/// counted in [`SessionStats::events_dropped`]; one slot is kept for the final
/// [`MediaEvent::Closed`], which is therefore never lost.
pub const EVENT_QUEUE: usize = 64;

enum Command {
    Play(u64, Arc<[i16]>),
    StopPlayout,
    SendDtmf(char),
    Update(Box<SessionConfig>),
    Stats(oneshot::Sender<SessionStats>),
}

/// Why a [`MediaHandle`] command was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The session's bounded command queue is full (the task is far behind).
    #[error("media command queue full")]
    Full,
    /// The session has ended (and reported `Closed`).
    #[error("media session ended")]
    Closed,
}

impl<T> From<mpsc::error::TrySendError<T>> for CommandError {
    fn from(error: mpsc::error::TrySendError<T>) -> Self {
        match error {
            mpsc::error::TrySendError::Full(_) => CommandError::Full,
            mpsc::error::TrySendError::Closed(_) => CommandError::Closed,
        }
    }
}

/// Controls a running session; cheap to clone. Dropping every handle also ends the session.
#[derive(Debug, Clone)]
pub struct MediaHandle {
    commands: mpsc::Sender<Command>,
    /// `close` does not go through the bounded queue, so it always works.
    close: Arc<Notify>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Play(id, samples) => write!(f, "Play({id}, {} samples)", samples.len()),
            Command::StopPlayout => f.write_str("StopPlayout"),
            Command::SendDtmf(digit) => write!(f, "SendDtmf({digit})"),
            Command::Update(c) => write!(f, "Update({c:?})"),
            Command::Stats(_) => f.write_str("Stats"),
        }
    }
}

impl MediaHandle {
    /// Queues 8 kHz mono PCM; `MediaEvent::PlayoutDone(id)` follows its last packet. An error
    /// means no `PlayoutDone` will come for `id`.
    pub fn play(&self, id: u64, samples: Arc<[i16]>) -> Result<(), CommandError> {
        Ok(self.commands.try_send(Command::Play(id, samples))?)
    }

    /// Flushes queued playout (bargein); `PlayoutStopped(id)` for each flushed item.
    pub fn stop_playout(&self) -> Result<(), CommandError> {
        Ok(self.commands.try_send(Command::StopPlayout)?)
    }

    /// Applies a renegotiated session (a re-INVITE: hold, resume, a new address or codec).
    pub fn update(&self, config: SessionConfig) -> Result<(), CommandError> {
        Ok(self.commands.try_send(Command::Update(Box::new(config)))?)
    }

    /// Sends an RFC 4733 key press (100 ms) in place of audio; playout pauses meanwhile.
    /// Ignored (logged) without a negotiated telephone-event payload or for non-DTMF characters.
    pub fn send_dtmf(&self, digit: char) -> Result<(), CommandError> {
        Ok(self.commands.try_send(Command::SendDtmf(digit))?)
    }

    /// Ends the session: the task stops, the socket is freed, `Closed` is the last event.
    /// Works even when the command queue is full; idempotent.
    pub fn close(&self) {
        self.close.notify_one();
    }

    /// The session's counters, or `None` if it has ended. Waits for room in the command queue.
    pub async fn stats(&self) -> Option<SessionStats> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::Stats(tx)).await.ok()?;
        rx.await.ok()
    }
}

/// Starts the session for `negotiated` on `socket` as a task on the current tokio runtime,
/// with [`SessionConfig::from_negotiated`] (30 s inactivity timeout).
///
/// The task runs inside the caller's current tracing span (set one with `call_id` first).
/// Events arrive on the returned bounded receiver; `MediaEvent::Closed` is always the last one.
///
/// # Panics
/// Outside a tokio runtime (like `tokio::spawn`).
pub fn start_session(
    socket: RtpSocket,
    negotiated: &Negotiated,
) -> (MediaHandle, mpsc::Receiver<MediaEvent>) {
    start_session_with(socket, SessionConfig::from_negotiated(negotiated))
}

/// [`start_session`] with an explicit configuration (e.g. another inactivity timeout).
///
/// # Panics
/// Outside a tokio runtime (like `tokio::spawn`).
pub fn start_session_with(
    socket: RtpSocket,
    config: SessionConfig,
) -> (MediaHandle, mpsc::Receiver<MediaEvent>) {
    let (commands_tx, commands_rx) = mpsc::channel(COMMAND_QUEUE);
    let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
    let close = Arc::new(Notify::new());
    let task = run(socket, config, commands_rx, close.clone(), events_tx);
    tokio::spawn(task.instrument(tracing::Span::current()));
    (
        MediaHandle {
            commands: commands_tx,
            close,
        },
        events_rx,
    )
}

/// The owner's end of the bounded event queue.
struct Events {
    tx: mpsc::Sender<MediaEvent>,
    dropped: u64,
}

impl Events {
    /// Forwards an event without waiting: dropped and counted when the queue is full (one slot
    /// stays free for `Closed`) or nobody listens any more.
    fn emit(&mut self, event: MediaEvent) {
        if event != MediaEvent::Closed && self.tx.capacity() <= 1 {
            if self.dropped == 0 && !self.tx.is_closed() {
                tracing::warn!(?event, "media event queue full; dropping events");
            }
            self.dropped += 1;
            return;
        }
        if self.tx.try_send(event).is_err() {
            self.dropped += 1;
        }
    }
}

/// The run loop: 1. drain the core (send transmits, forward events), 2. wait for the first of
/// timer / close / command / datagram, 3. feed it to the core, repeat.
async fn run(
    rtp: RtpSocket,
    config: SessionConfig,
    mut commands: mpsc::Receiver<Command>,
    close: Arc<Notify>,
    events: mpsc::Sender<MediaEvent>,
) {
    let mut events = Events {
        tx: events,
        dropped: 0,
    };
    let mut session = match RtpSession::new(clock::now(), config) {
        Ok(session) => session,
        Err(error) => {
            tracing::error!(%error, "cannot start media session");
            events.emit(MediaEvent::Closed);
            return;
        }
    };
    let remote = config.remote;
    tracing::debug!(local = %rtp.local, %remote, codec = ?config.codec, "media session started");
    let mut recv_buf = vec![0u8; MAX_DATAGRAM];
    let mut send_buf = vec![0u8; TRANSMIT_BUFFER_LEN];
    loop {
        let deadline = drain(&mut session, &rtp.socket, &mut send_buf, &mut events).await;
        tokio::select! {
            // Timer first so a flood of datagrams or commands cannot starve outgoing audio.
            biased;
            () = tokio::time::sleep_until(deadline.into()) => {
                session.handle_timeout(clock::now());
            }
            () = close.notified() => break,
            command = commands.recv() => match command {
                Some(Command::Play(id, samples)) => session.play(id, samples),
                Some(Command::StopPlayout) => session.stop_playout(),
                Some(Command::Update(config)) => {
                    if let Err(error) = session.reconfigure(clock::now(), *config) {
                        tracing::warn!(%error, "renegotiated session not applied");
                    }
                }
                Some(Command::SendDtmf(digit)) => {
                    if !session.send_dtmf(digit) {
                        tracing::warn!(%digit, "cannot send dtmf on this session");
                    }
                }
                Some(Command::Stats(reply)) => {
                    let mut stats = session.stats();
                    stats.events_dropped = events.dropped;
                    let _ = reply.send(stats);
                }
                // Every handle dropped.
                None => break,
            },
            received = rtp.socket.recv_from(&mut recv_buf) => match received {
                // The session decides whom to listen to (symmetric RTP latching).
                Ok((len, from)) => {
                    let datagram = recv_buf.get(..len).unwrap_or_default();
                    session.handle_receive(clock::now(), from, datagram);
                }
                // ICMP errors surface here on some platforms; they do not end the call.
                Err(error) => tracing::debug!(%error, "rtp receive error"),
            },
        }
    }
    // Report what the close flushed, then Closed; no more packets go out.
    session.stop_playout();
    loop {
        match session.poll_output(&mut send_buf) {
            Output::Event(event) => events.emit(event),
            Output::Transmit { .. } | Output::TransmitRtcp { .. } => {}
            Output::Timeout(_) => break,
        }
    }
    let stats = session.stats();
    tracing::debug!(
        sent = stats.sent,
        received = stats.received,
        malformed = stats.malformed,
        foreign = stats.foreign,
        latched = ?session.latched(),
        events_dropped = events.dropped,
        "media session closed"
    );
    events.emit(MediaEvent::Closed);
}

/// Drains the core's outputs, returning the next deadline.
async fn drain(
    session: &mut RtpSession,
    socket: &UdpSocket,
    buf: &mut [u8],
    events: &mut Events,
) -> std::time::Instant {
    loop {
        match session.poll_output(buf) {
            Output::Transmit { to, len } => {
                let datagram = buf.get(..len).unwrap_or_default();
                if let Err(error) = socket.send_to(datagram, to).await {
                    tracing::debug!(%error, %to, "rtp send failed");
                }
            }
            // No RTCP socket here (muxed RTCP goes out as `Transmit` above).
            Output::TransmitRtcp { .. } => {}
            Output::Event(event) => events.emit(event),
            Output::Timeout(deadline) => return deadline,
        }
    }
}

/// The local address the kernel would use to reach `remote`: what an SDP answer should carry
/// when sockets are bound to a wildcard address. Connecting a UDP socket only looks up a route;
/// no packet is sent.
pub fn local_ip_toward(remote: IpAddr) -> Option<IpAddr> {
    let unspecified: IpAddr = match remote {
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
    };
    let probe = std::net::UdpSocket::bind((unspecified, 0)).ok()?;
    probe.connect((remote, 9)).ok()?;
    let ip = probe.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_ports_cover_the_range_once_and_wrap() {
        let ports: Vec<u16> = even_ports(20000, 20009, 3).collect();
        assert_eq!(ports, vec![20006, 20008, 20000, 20002, 20004]);
        // An odd minimum rounds up; the last even port needs its RTCP partner in range.
        assert_eq!(
            even_ports(20001, 20006, 0).collect::<Vec<_>>(),
            vec![20002, 20004]
        );
        assert_eq!(even_ports(20000, 20000, 0).len(), 0);
        assert_eq!(even_ports(65534, 65535, 7).collect::<Vec<_>>(), vec![65534]);
        assert_eq!(even_ports(0, 5, 0).collect::<Vec<_>>(), vec![2, 4]);
    }

    #[tokio::test]
    async fn allocate_with_os_port_and_empty_range() {
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let engine = MediaEngine::new(EngineConfig {
            bind_ip: loopback,
            port_min: 0,
            port_max: 0,
        });
        let socket = engine.allocate().await.unwrap();
        assert_eq!(socket.local_addr().ip(), loopback);
        assert_ne!(socket.local_addr().port(), 0);

        let empty = MediaEngine::new(EngineConfig {
            bind_ip: loopback,
            port_min: 3000,
            port_max: 3000,
        });
        let err = empty.allocate().await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn ports_come_from_a_pool_and_go_back_last() {
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        // Three even ports in a range nothing else on this host uses in tests.
        let (min, max) = (47_310, 47_315);
        // Another process (here: a plain socket) holds one of them: it is skipped.
        let squatter = std::net::UdpSocket::bind((loopback, 47_312)).unwrap();
        let engine = MediaEngine::new(EngineConfig {
            bind_ip: loopback,
            port_min: min,
            port_max: max,
        });
        let a = engine.allocate().await.unwrap();
        let b = engine.allocate().await.unwrap();
        let mut held: Vec<u16> = vec![a.local_addr().port(), b.local_addr().port()];
        held.sort();
        assert_eq!(held, vec![47_310, 47_314]);
        assert_eq!(
            engine.allocate().await.unwrap_err().kind(),
            io::ErrorKind::AddrInUse,
            "all taken"
        );
        // A freed port comes back, behind the ones freed before it.
        let freed = a.local_addr().port();
        drop(a);
        drop(squatter);
        let c = engine.allocate().await.unwrap();
        assert_eq!(
            c.local_addr().port(),
            47_312,
            "the port the squatter left, first"
        );
        let d = engine.allocate().await.unwrap();
        assert_eq!(d.local_addr().port(), freed);
    }
}
