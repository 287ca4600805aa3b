//! The media threads: one blocking mio (epoll) loop per core, each over many sessions, with
//! one timer wheel per thread (`notes/rtp-io.md` measured a per-stream tokio timer at ~10% of a
//! core per 2,000 streams before any I/O, a per-thread wheel at 1-2%). tokio stays for
//! signalling and HTTP: [`MediaHandle`]s talk to a session's thread over a channel plus a
//! waker, and events come back on a bounded tokio channel.
//!
//! # Placement
//!
//! [`EngineConfig::threads`] media threads (default: one per core), named `parley-media-N`,
//! pinned to cores 0..N when [`EngineConfig::pin_threads`] is set. A new session goes to the
//! thread with the fewest sessions, and within it to the least busy 1 ms phase of the 20 ms
//! packet interval. The interpreter threads and tokio's workers are not pinned, so the kernel
//! moves them off a core a media thread keeps busy; media threads never run interpreter work.

mod ports;
#[cfg(feature = "test-util")]
pub mod probe;
mod thread;
mod wheel;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::{mpsc, oneshot};

use crate::sdp::Negotiated;
use crate::session::{MediaEvent, SessionConfig, SessionStats};
use ports::{PortLease, PortPool};
use thread::{Command, Msg, SessionState, Start, ThreadShared};

/// The one place that reads the clock; the session core only sees the `Instant`s passed in.
mod clock {
    use std::time::Instant;

    #[allow(clippy::disallowed_methods)] // the driver is where time enters the system
    pub(crate) fn now() -> Instant {
        Instant::now()
    }

    /// Wall-clock time, for the NTP timestamps of RTCP sender reports.
    #[allow(clippy::disallowed_methods)]
    pub(crate) fn wall() -> std::time::SystemTime {
        std::time::SystemTime::now()
    }
}

/// Where RTP ports come from, and how many media threads move them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Local address to bind (and to put in SDP unless it is unspecified).
    pub bind_ip: IpAddr,
    /// Lowest port; `0` (with `port_max` 0) lets the OS pick any free port (tests).
    pub port_min: u16,
    /// Highest port; the RTP port is even and `port + 1` (RTCP) must fit in the range too.
    pub port_max: u16,
    /// Media threads; `0` means one per core.
    pub threads: usize,
    /// Pin media thread `i` to core `i` (mod the core count).
    pub pin_threads: bool,
}

impl Default for EngineConfig {
    /// The embedded default: all interfaces, ports 20000-29999, one pinned thread per core.
    fn default() -> Self {
        EngineConfig {
            bind_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port_min: 20000,
            port_max: 29999,
            threads: 0,
            pin_threads: true,
        }
    }
}

impl EngineConfig {
    /// The OS picks ports, on `bind_ip`; two unpinned threads (tests).
    pub fn any_port(bind_ip: IpAddr) -> Self {
        EngineConfig {
            bind_ip,
            port_min: 0,
            port_max: 0,
            threads: 2,
            pin_threads: false,
        }
    }
}

/// What the media threads did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngineStats {
    /// Sessions running now.
    pub sessions: usize,
    /// Session deadlines handled (about one per session per 20 ms).
    pub timers_fired: u64,
    /// Of those, the ones handled 5 ms or more after their deadline: late frames.
    pub late: u64,
    /// The worst lateness seen, in µs.
    pub max_late_us: u64,
}

/// Allocates RTP sockets and runs their sessions on the media threads; cheap to clone and share
/// between calls. The threads stop once the engine and every socket and session are gone.
#[derive(Debug, Clone)]
pub struct MediaEngine {
    inner: Arc<EngineInner>,
}

#[derive(Debug)]
struct EngineInner {
    config: EngineConfig,
    ports: Arc<PortPool>,
    threads: Vec<Arc<ThreadShared>>,
    next_id: AtomicU64,
    /// Conference rooms by name, alive while a member's handle is.
    rooms: Mutex<HashMap<String, Weak<RoomTicket>>>,
}

/// A conference room's place: its id and the media thread that mixes it. Every member's
/// handle holds it; when the last goes, the name is free for a new room.
#[derive(Debug)]
struct RoomTicket {
    id: u64,
    thread: Arc<ThreadShared>,
    members: AtomicUsize,
}

impl Drop for EngineInner {
    fn drop(&mut self) {
        for thread in &self.threads {
            thread.send(Msg::Shutdown);
        }
    }
}

impl MediaEngine {
    /// An engine allocating from `cfg`'s range, with its media threads started.
    pub fn new(cfg: EngineConfig) -> io::Result<Self> {
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        let count = match cfg.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let threads = (0..count)
            .map(|i| {
                let core = (cfg.pin_threads && !cores.is_empty())
                    .then(|| cores.get(i % cores.len()).copied())
                    .flatten();
                thread::spawn(i, core)
            })
            .collect::<io::Result<Vec<_>>>()?;
        tracing::debug!(
            threads = count,
            pinned = cfg.pin_threads,
            "media threads started"
        );
        Ok(MediaEngine {
            inner: Arc::new(EngineInner {
                ports: Arc::new(PortPool::new(cfg.port_min, cfg.port_max)),
                config: cfg,
                threads,
                next_id: AtomicU64::new(1),
                rooms: Mutex::default(),
            }),
        })
    }

    /// Counters over every media thread (benchmarks and metrics).
    pub fn stats(&self) -> EngineStats {
        let mut stats = EngineStats::default();
        for t in &self.inner.threads {
            stats.sessions += t.sessions.load(Ordering::Relaxed);
            stats.timers_fired += t.fired.load(Ordering::Relaxed);
            stats.late += t.late.load(Ordering::Relaxed);
            stats.max_late_us = stats.max_late_us.max(t.max_late_us.load(Ordering::Relaxed));
        }
        stats
    }

    /// Starts a session in conference room `room` (opened on first use, closed when its last
    /// member leaves): it hears everyone else, mixed N-1, and joins with a tone.
    /// `CommandError::Full` when the room holds [`MAX_ROOM_MEMBERS`] already.
    pub fn start_conference_session(
        &self,
        room: &str,
        socket: RtpSocket,
        config: SessionConfig,
    ) -> Result<(MediaHandle, mpsc::Receiver<MediaEvent>), CommandError> {
        let ticket = {
            let mut rooms = self.inner.rooms.lock().map_err(|_| CommandError::Closed)?;
            rooms.retain(|_, t| t.strong_count() > 0);
            match rooms.get(room).and_then(Weak::upgrade) {
                Some(ticket) => ticket,
                None => {
                    let thread = self
                        .inner
                        .threads
                        .iter()
                        .min_by_key(|t| t.sessions.load(Ordering::Acquire))
                        .cloned()
                        .ok_or(CommandError::Closed)?;
                    let ticket = Arc::new(RoomTicket {
                        id: self.inner.next_id.fetch_add(1, Ordering::Relaxed),
                        thread,
                        members: AtomicUsize::new(0),
                    });
                    rooms.insert(room.to_owned(), Arc::downgrade(&ticket));
                    ticket
                }
            }
        };
        if ticket.members.fetch_add(1, Ordering::AcqRel) >= MAX_ROOM_MEMBERS {
            ticket.members.fetch_sub(1, Ordering::AcqRel);
            return Err(CommandError::Full);
        }
        let (handle, events) = start_on(socket, config, Some(ticket.thread.clone()));
        let joined = ticket.thread.send(Msg::Join {
            room: ticket.id,
            session: handle.link.id,
        });
        // The handle gives the place back when it goes.
        let mut link = handle.link;
        if let Some(link) = Arc::get_mut(&mut link) {
            link.room = Some(ticket);
        }
        if !joined {
            return Err(CommandError::Closed);
        }
        Ok((MediaHandle { link }, events))
    }

    /// How many media threads run sessions.
    pub fn threads(&self) -> usize {
        self.inner.threads.len()
    }

    /// Binds a UDP socket on a free even port of the range. `AddrInUse` if all are taken.
    pub async fn allocate(&self) -> io::Result<RtpSocket> {
        let cfg = &self.inner.config;
        if cfg.port_min == 0 && cfg.port_max == 0 {
            return self.bind(SocketAddr::new(cfg.bind_ip, 0), None);
        }
        if ports::even_ports(cfg.port_min, cfg.port_max, 0).len() == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "rtp port range holds no even port pair",
            ));
        }
        // Ports another process holds are skipped (and tried again later, at the back).
        for _ in 0..self.inner.ports.len() {
            let Some(lease) = self.inner.ports.take() else {
                break;
            };
            match self.bind(SocketAddr::new(cfg.bind_ip, lease.port), Some(lease)) {
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
                other => return other,
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "no free rtp port in range",
        ))
    }

    /// Binds the RTP socket and, on the next port, the RTCP one (RFC 3550 §11; kept even when
    /// rtcp-mux is offered, as the answer may refuse it). From the pool both must be free;
    /// with OS-chosen ports the RTCP socket is best effort.
    fn bind(&self, addr: SocketAddr, lease: Option<PortLease>) -> io::Result<RtpSocket> {
        let socket = std::net::UdpSocket::bind(addr)?;
        socket.set_nonblocking(true)?;
        let local = socket.local_addr()?;
        let rtcp_addr = SocketAddr::new(local.ip(), local.port().wrapping_add(1));
        let rtcp = match std::net::UdpSocket::bind(rtcp_addr) {
            Ok(rtcp) => {
                rtcp.set_nonblocking(true)?;
                Some(rtcp)
            }
            Err(e) if lease.is_some() => return Err(e),
            Err(_) => None,
        };
        Ok(RtpSocket {
            socket,
            rtcp,
            local,
            engine: self.inner.clone(),
            lease,
        })
    }
}

/// A bound RTP socket, not yet carrying a session.
#[derive(Debug)]
pub struct RtpSocket {
    socket: std::net::UdpSocket,
    /// RTP port + 1, for RTCP when it is not multiplexed.
    rtcp: Option<std::net::UdpSocket>,
    local: SocketAddr,
    engine: Arc<EngineInner>,
    /// Gives the port back to the pool when the session (or this socket) goes.
    lease: Option<PortLease>,
}

impl RtpSocket {
    /// The bound address (an unspecified IP if the engine binds all interfaces).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

/// Most members of one conference room.
pub const MAX_ROOM_MEMBERS: usize = 256;

/// Most commands a session holds queued; more fail with [`CommandError::Full`].
pub const COMMAND_QUEUE: usize = 64;

/// Capacity of a session's event queue (media thread → owner). When it is full, events are
/// dropped and counted in [`SessionStats::events_dropped`]; one slot is kept for the final
/// [`MediaEvent::Closed`], which is therefore never lost.
pub const EVENT_QUEUE: usize = 64;

/// Why a [`MediaHandle`] command was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The session already holds [`COMMAND_QUEUE`] unapplied commands (its thread is far behind).
    #[error("media command queue full")]
    Full,
    /// The session has ended (and reported `Closed`).
    #[error("media session ended")]
    Closed,
    /// Bridged sessions must run on one media thread: start the second leg with
    /// [`start_session_beside`].
    #[error("sessions on different media threads cannot be bridged")]
    NotBeside,
}

/// Controls a running session; cheap to clone. Dropping every handle also ends the session.
#[derive(Debug, Clone)]
pub struct MediaHandle {
    link: Arc<Link>,
}

/// The handles' shared end; the last handle dropped closes the session.
#[derive(Debug)]
struct Link {
    id: u64,
    /// `None` only if the engine had no thread to take the session (it is closed at once).
    thread: Option<Arc<ThreadShared>>,
    state: Arc<SessionState>,
    /// Keeps the media threads running while a handle lives.
    _engine: Arc<EngineInner>,
    /// The conference room this session is in, if any.
    room: Option<Arc<RoomTicket>>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.close();
        if let Some(room) = &self.room {
            room.members.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Link {
    fn send(&self, msg: Msg) -> bool {
        self.thread.as_ref().is_some_and(|t| t.send(msg))
    }

    fn close(&self) {
        if !self.state.closed.load(Ordering::Acquire) {
            self.send(Msg::Close(self.id));
        }
    }

    /// Queues a counted command: at most [`COMMAND_QUEUE`] wait per session.
    fn command(&self, command: Command) -> Result<(), CommandError> {
        if self.state.closed.load(Ordering::Acquire) {
            return Err(CommandError::Closed);
        }
        if self.state.pending.fetch_add(1, Ordering::AcqRel) >= COMMAND_QUEUE {
            self.state.pending.fetch_sub(1, Ordering::AcqRel);
            return Err(CommandError::Full);
        }
        if self.send(Msg::Command(self.id, command)) {
            Ok(())
        } else {
            self.state.pending.fetch_sub(1, Ordering::AcqRel);
            Err(CommandError::Closed)
        }
    }
}

impl MediaHandle {
    /// Queues 8 kHz mono PCM; `MediaEvent::PlayoutDone(id)` follows its last packet. An error
    /// means no `PlayoutDone` will come for `id`.
    pub fn play(&self, id: u64, samples: Arc<[i16]>) -> Result<(), CommandError> {
        self.link.command(Command::Play(id, samples))
    }

    /// Queues a prompt encoded ahead of time for this session's codec (a copy per packet);
    /// `MediaEvent::PlayoutDone(id)` follows its last packet.
    pub fn play_encoded(
        &self,
        id: u64,
        prompt: Arc<crate::encoded::EncodedPrompt>,
    ) -> Result<(), CommandError> {
        self.link.command(Command::PlayEncoded(id, prompt))
    }

    /// Flushes queued playout (bargein); `PlayoutStopped(id)` for each flushed item.
    pub fn stop_playout(&self) -> Result<(), CommandError> {
        self.link.command(Command::StopPlayout)
    }

    /// Applies a renegotiated session (a re-INVITE: hold, resume, a new address or codec).
    pub fn update(&self, config: SessionConfig) -> Result<(), CommandError> {
        self.link.command(Command::Update(Box::new(config)))
    }

    /// Sends an RFC 4733 key press (100 ms) in place of audio; playout pauses meanwhile.
    /// Ignored (logged) without a negotiated telephone-event payload or for non-DTMF characters.
    pub fn send_dtmf(&self, digit: char) -> Result<(), CommandError> {
        self.link.command(Command::SendDtmf(digit))
    }

    /// Starts recording the caller (audio through the jitter buffer, 8 kHz);
    /// `MediaEvent::Recorded` follows when it ends on its own or is stopped.
    pub fn start_recording(&self, config: crate::record::RecordConfig) -> Result<(), CommandError> {
        self.link.command(Command::StartRecording(config))
    }

    /// Stops the recording in progress; `MediaEvent::Recorded` reports what was recorded.
    pub fn stop_recording(&self) -> Result<(), CommandError> {
        self.link.command(Command::StopRecording)
    }

    /// Ends the session: its socket is freed and `Closed` is the last event. Not subject to
    /// the command bound, so it always works; idempotent.
    pub fn close(&self) {
        self.link.close();
    }

    /// Bridges this session with `other` (a transfer with `bridge="true"`): each forwards the
    /// other's accepted packets (audio and RFC 4733 events) as its own stream, and neither
    /// plays its own audio until [`unbridge`](Self::unbridge) or either ends. Both must run
    /// on one media thread ([`start_session_beside`]).
    pub fn bridge(&self, other: &MediaHandle) -> Result<(), CommandError> {
        let same = match (&self.link.thread, &other.link.thread) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        if !same {
            return Err(CommandError::NotBeside);
        }
        if self.link.state.closed.load(Ordering::Acquire)
            || other.link.state.closed.load(Ordering::Acquire)
            || !self.link.send(Msg::Bridge(self.link.id, other.link.id))
        {
            return Err(CommandError::Closed);
        }
        Ok(())
    }

    /// Ends this session's bridge; both legs go back to their own playout.
    pub fn unbridge(&self) -> Result<(), CommandError> {
        if self.link.state.closed.load(Ordering::Acquire)
            || !self.link.send(Msg::Unbridge(self.link.id))
        {
            return Err(CommandError::Closed);
        }
        Ok(())
    }

    /// The session's counters, or `None` if it has ended.
    pub async fn stats(&self) -> Option<SessionStats> {
        if self.link.state.closed.load(Ordering::Acquire) {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        if !self
            .link
            .send(Msg::Command(self.link.id, Command::Stats(tx)))
        {
            return None;
        }
        rx.await.ok()
    }
}

/// Starts the session for `negotiated` on `socket`, with [`SessionConfig::from_negotiated`]
/// (30 s inactivity timeout), on the least loaded media thread.
///
/// The session logs inside the caller's current tracing span (set one with `call_id` first).
/// Events arrive on the returned bounded receiver; `MediaEvent::Closed` is always the last one.
pub fn start_session(
    socket: RtpSocket,
    negotiated: &Negotiated,
) -> (MediaHandle, mpsc::Receiver<MediaEvent>) {
    start_session_with(socket, SessionConfig::from_negotiated(negotiated))
}

/// [`start_session`] with an explicit configuration (e.g. another inactivity timeout).
pub fn start_session_with(
    socket: RtpSocket,
    config: SessionConfig,
) -> (MediaHandle, mpsc::Receiver<MediaEvent>) {
    start_on(socket, config, None)
}

/// Starts a session on the media thread of `beside`, so the two can be bridged.
pub fn start_session_beside(
    socket: RtpSocket,
    config: SessionConfig,
    beside: &MediaHandle,
) -> (MediaHandle, mpsc::Receiver<MediaEvent>) {
    start_on(socket, config, beside.link.thread.clone())
}

fn start_on(
    socket: RtpSocket,
    config: SessionConfig,
    thread: Option<Arc<ThreadShared>>,
) -> (MediaHandle, mpsc::Receiver<MediaEvent>) {
    let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
    let RtpSocket {
        socket,
        rtcp,
        local,
        engine,
        lease,
    } = socket;
    let id = engine.next_id.fetch_add(1, Ordering::Relaxed);
    let state = Arc::new(SessionState::default());
    let thread = thread.or_else(|| {
        engine
            .threads
            .iter()
            .min_by_key(|t| t.sessions.load(Ordering::Acquire))
            .cloned()
    });
    let started = thread.as_ref().is_some_and(|thread| {
        thread.sessions.fetch_add(1, Ordering::AcqRel);
        let sent = thread.send(Msg::Start(Box::new(Start {
            id,
            socket,
            rtcp,
            local,
            lease,
            config,
            events: events_tx.clone(),
            state: state.clone(),
            span: tracing::Span::current(),
        })));
        if !sent {
            thread.sessions.fetch_sub(1, Ordering::AcqRel);
        }
        sent
    });
    if !started {
        state.closed.store(true, Ordering::Release);
        let _ = events_tx.try_send(MediaEvent::Closed);
    }
    let link = Link {
        id,
        thread,
        state,
        _engine: engine,
        room: None,
    };
    (
        MediaHandle {
            link: Arc::new(link),
        },
        events_rx,
    )
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

    fn loopback() -> IpAddr {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    }

    #[tokio::test]
    async fn allocate_with_os_port_and_empty_range() {
        let engine = MediaEngine::new(EngineConfig::any_port(loopback())).unwrap();
        let socket = engine.allocate().await.unwrap();
        assert_eq!(socket.local_addr().ip(), loopback());
        assert_ne!(socket.local_addr().port(), 0);

        let empty = MediaEngine::new(EngineConfig {
            port_min: 3000,
            port_max: 3000,
            ..EngineConfig::any_port(loopback())
        })
        .unwrap();
        let err = empty.allocate().await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn ports_come_from_a_pool_and_go_back_last() {
        // Three even ports in a range nothing else on this host uses in tests.
        let (min, max) = (47_310, 47_315);
        // Another process (here: a plain socket) holds one of them: it is skipped.
        let squatter = std::net::UdpSocket::bind((loopback(), 47_312)).unwrap();
        let engine = MediaEngine::new(EngineConfig {
            port_min: min,
            port_max: max,
            ..EngineConfig::any_port(loopback())
        })
        .unwrap();
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

    #[test]
    fn commands_beyond_the_bound_are_refused_until_applied() {
        let state = Arc::new(SessionState::default());
        // A link to no thread: nothing is ever applied, so the bound shows.
        let link = Link {
            id: 1,
            thread: None,
            state: state.clone(),
            _engine: Arc::new(EngineInner {
                config: EngineConfig::any_port(loopback()),
                ports: Arc::new(PortPool::new(0, 0)),
                threads: Vec::new(),
                next_id: AtomicU64::new(1),
                rooms: Mutex::default(),
            }),
            room: None,
        };
        // Sends to a missing thread fail: the session reads as ended, nothing stays counted.
        assert_eq!(
            link.command(Command::StopPlayout),
            Err(CommandError::Closed)
        );
        assert_eq!(state.pending.load(Ordering::Acquire), 0);
        state.pending.store(COMMAND_QUEUE, Ordering::Release);
        assert_eq!(link.command(Command::StopPlayout), Err(CommandError::Full));
        assert_eq!(state.pending.load(Ordering::Acquire), COMMAND_QUEUE);
        state.closed.store(true, Ordering::Release);
        assert_eq!(
            link.command(Command::StopPlayout),
            Err(CommandError::Closed)
        );
    }
}
