//! One media thread: a blocking mio (epoll) loop over many sessions' sockets, whose wait
//! timeout comes from the thread's timer wheel. Commands arrive over a channel plus a waker.
//!
//! Per wakeup the thread: reads every ready socket until it would block, feeding each datagram
//! to its session core; applies queued commands; fires the sessions whose tick is due. After
//! each of those it drains the session's outputs (sends, events, the next deadline).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events as PollEvents, Interest, Poll, Token, Waker};
use tokio::sync::{mpsc as tokio_mpsc, oneshot};

use super::clock;
use super::ports::PortLease;
use super::wheel::{Tick, Wheel};
use crate::CodecKind;
use crate::mixer::{Frame, MixOutput, ParticipantCodec, ParticipantId, Room, RoomConfig};
use crate::record::RecordConfig;
use crate::session::{
    MediaEvent, Output, PTIME, RtpSession, SessionConfig, SessionStats, TRANSMIT_BUFFER_LEN,
};

/// Largest datagram we read; RTP over UDP stays far below this on Ethernet MTUs.
const MAX_DATAGRAM: usize = 2048;
const WAKER: Token = Token(usize::MAX);
/// Sessions are spread over this many 1 ms phases of the 20 ms packet interval, so one tick
/// is not a burst of every stream's packet.
const PHASES: usize = PTIME.as_millis() as usize;
/// Sockets read between two looks at the timer wheel.
const TIMER_CHECK_EVERY: usize = 32;
/// Readiness events taken per `epoll_wait`.
const POLL_EVENTS: usize = 1024;
/// The longest wait without any timer: the thread still wakes for commands at once.
const IDLE_WAIT: Duration = Duration::from_secs(3600);
/// An armed tick no session can have: the slot has nothing on the wheel.
const UNARMED: Tick = Tick::MAX;
/// Wheel keys from here up are rooms (`key - ROOM_KEYS` is the room's index); below, sessions.
const ROOM_KEYS: usize = usize::MAX / 2;

/// What a [`super::MediaHandle`] asks of its session.
pub(crate) enum Command {
    Play(u64, Arc<[i16]>),
    PlayEncoded(u64, Arc<crate::encoded::EncodedPrompt>),
    StopPlayout,
    SendDtmf(char),
    Update(Box<SessionConfig>),
    StartRecording(RecordConfig),
    StopRecording,
    Stats(oneshot::Sender<SessionStats>),
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Play(id, samples) => write!(f, "Play({id}, {} samples)", samples.len()),
            Command::PlayEncoded(id, prompt) => write!(f, "PlayEncoded({id}, {prompt:?})"),
            Command::StopPlayout => f.write_str("StopPlayout"),
            Command::SendDtmf(digit) => write!(f, "SendDtmf({digit})"),
            Command::Update(c) => write!(f, "Update({c:?})"),
            Command::StartRecording(c) => write!(f, "StartRecording({c:?})"),
            Command::StopRecording => f.write_str("StopRecording"),
            Command::Stats(_) => f.write_str("Stats"),
        }
    }
}

/// A session to take over.
pub(crate) struct Start {
    pub(crate) id: u64,
    pub(crate) socket: std::net::UdpSocket,
    pub(crate) rtcp: Option<std::net::UdpSocket>,
    pub(crate) local: SocketAddr,
    pub(crate) lease: Option<PortLease>,
    pub(crate) config: SessionConfig,
    pub(crate) events: tokio_mpsc::Sender<MediaEvent>,
    pub(crate) state: Arc<SessionState>,
    pub(crate) span: tracing::Span,
}

pub(crate) enum Msg {
    Start(Box<Start>),
    Command(u64, Command),
    /// Forward each session's accepted packets out of the other (see `RtpSession::relay`).
    Bridge(u64, u64),
    Unbridge(u64),
    /// Puts a session into conference room `room` (created on first use).
    Join {
        room: u64,
        session: u64,
    },
    Close(u64),
    Shutdown,
}

/// What a handle and the media thread share about one session.
#[derive(Debug, Default)]
pub(crate) struct SessionState {
    /// Commands queued and not yet applied (the per-session bound).
    pub(crate) pending: AtomicUsize,
    /// Set before `Closed` is reported; commands fail from then on.
    pub(crate) closed: AtomicBool,
}

/// The thread's end that other threads hold.
#[derive(Debug)]
pub(crate) struct ThreadShared {
    tx: mpsc::Sender<Msg>,
    waker: Waker,
    /// A wake is on its way: senders skip the eventfd write (one syscall per burst).
    wake_pending: AtomicBool,
    /// Sessions on this thread; new ones go to the least loaded thread.
    pub(crate) sessions: AtomicUsize,
    /// Timer expiries handled, and those handled [`LATE`] or more after their deadline.
    pub(crate) fired: AtomicU64,
    pub(crate) late: AtomicU64,
    /// The largest lateness seen, in µs.
    pub(crate) max_late_us: AtomicU64,
}

/// A frame sent this long after its deadline counts as late (a quarter of the packet interval:
/// a receiver's jitter buffer absorbs less than that without notice).
pub(crate) const LATE: Duration = Duration::from_millis(5);

impl ThreadShared {
    /// Queues `msg` and wakes the thread; `false` if the thread has gone.
    pub(crate) fn send(&self, msg: Msg) -> bool {
        if self.tx.send(msg).is_err() {
            return false;
        }
        if !self.wake_pending.swap(true, Ordering::AcqRel)
            && let Err(error) = self.waker.wake()
        {
            tracing::error!(%error, "cannot wake media thread");
        }
        true
    }
}

/// A thread end nobody serves (`probe`): what is sent stays in the returned receiver.
#[cfg(feature = "test-util")]
pub(crate) fn detached() -> io::Result<(Arc<ThreadShared>, mpsc::Receiver<Msg>, Poll)> {
    let poll = Poll::new()?;
    let waker = Waker::new(poll.registry(), WAKER)?;
    let (tx, rx) = mpsc::channel();
    let shared = Arc::new(ThreadShared {
        tx,
        waker,
        wake_pending: AtomicBool::new(false),
        sessions: AtomicUsize::new(0),
        fired: AtomicU64::new(0),
        late: AtomicU64::new(0),
        max_late_us: AtomicU64::new(0),
    });
    Ok((shared, rx, poll))
}

/// Starts media thread `index`, pinned to `core` when given.
pub(crate) fn spawn(
    index: usize,
    core: Option<core_affinity::CoreId>,
) -> io::Result<Arc<ThreadShared>> {
    let poll = Poll::new()?;
    let waker = Waker::new(poll.registry(), WAKER)?;
    let (tx, rx) = mpsc::channel();
    let shared = Arc::new(ThreadShared {
        tx,
        waker,
        wake_pending: AtomicBool::new(false),
        sessions: AtomicUsize::new(0),
        fired: AtomicU64::new(0),
        late: AtomicU64::new(0),
        max_late_us: AtomicU64::new(0),
    });
    let thread_shared = shared.clone();
    std::thread::Builder::new()
        .name(format!("parley-media-{index}"))
        .spawn(move || {
            if let Some(core) = core
                && !core_affinity::set_for_current(core)
            {
                tracing::warn!(index, core = core.id, "cannot pin media thread");
            }
            // The highest normal (not real-time) priority: on a core shared with interpreter
            // work the media thread wins the wakeups, so a due packet waits for no one's slice.
            // Needs CAP_SYS_NICE (or root); without it the thread keeps the default.
            if let Err(error) =
                thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Max)
            {
                tracing::debug!(index, ?error, "media thread keeps the default priority");
            }
            MediaThread::new(poll, rx, thread_shared).run();
        })?;
    Ok(shared)
}

/// The session's end of its bounded event queue.
struct Events {
    tx: tokio_mpsc::Sender<MediaEvent>,
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

struct Slot {
    id: u64,
    core: RtpSession,
    socket: UdpSocket,
    rtcp: Option<UdpSocket>,
    local: SocketAddr,
    events: Events,
    state: Arc<SessionState>,
    /// The tick this slot is armed for on the wheel (`UNARMED` if none).
    armed: Tick,
    phase: usize,
    /// The bridged leg's slot on this thread.
    peer: Option<usize>,
    /// The conference room (index) this session is in, and its place there.
    room: Option<(usize, ParticipantId)>,
    span: tracing::Span,
    _lease: Option<PortLease>,
}

/// A conference room on this thread: mixed once per 20 ms on its own wheel entry.
struct RoomSlot {
    id: u64,
    room: Room,
    /// (session slot, participant) of each member.
    members: Vec<(usize, ParticipantId)>,
    out: MixOutput,
    armed: Tick,
}

/// Each session has two poll tokens: its RTP socket's and its RTCP socket's.
fn rtp_token(index: usize) -> Token {
    Token(index.saturating_mul(2))
}

fn rtcp_token(index: usize) -> Token {
    Token(index.saturating_mul(2).saturating_add(1))
}

struct MediaThread {
    poll: Poll,
    rx: mpsc::Receiver<Msg>,
    shared: Arc<ThreadShared>,
    wheel: Wheel,
    slots: Vec<Option<Slot>>,
    free_slots: Vec<usize>,
    by_id: HashMap<u64, usize>,
    rooms: Vec<Option<RoomSlot>>,
    room_by_id: HashMap<u64, usize>,
    phase_load: [usize; PHASES],
    recv_buf: Vec<u8>,
    send_buf: Vec<u8>,
    due: Vec<(usize, Tick)>,
}

enum Flow {
    Continue,
    Stop,
}

impl MediaThread {
    fn new(poll: Poll, rx: mpsc::Receiver<Msg>, shared: Arc<ThreadShared>) -> Self {
        MediaThread {
            poll,
            rx,
            shared,
            wheel: Wheel::new(clock::now()),
            slots: Vec::new(),
            free_slots: Vec::new(),
            by_id: HashMap::new(),
            rooms: Vec::new(),
            room_by_id: HashMap::new(),
            phase_load: [0; PHASES],
            recv_buf: vec![0; MAX_DATAGRAM],
            send_buf: vec![0; TRANSMIT_BUFFER_LEN],
            due: Vec::new(),
        }
    }

    fn run(mut self) {
        let mut events = PollEvents::with_capacity(POLL_EVENTS);
        loop {
            let timeout = match self.wheel.next_tick() {
                Some(tick) => self
                    .wheel
                    .instant(tick)
                    .saturating_duration_since(clock::now()),
                None => IDLE_WAIT,
            };
            if let Err(error) = self.poll.poll(&mut events, Some(timeout)) {
                if error.kind() != io::ErrorKind::Interrupted {
                    tracing::error!(%error, "media thread poll failed");
                    std::thread::sleep(Duration::from_millis(1));
                }
                continue;
            }
            let mut now = clock::now();
            let mut woken = false;
            for (n, event) in events.iter().enumerate() {
                match event.token() {
                    WAKER => woken = true,
                    Token(t) if t % 2 == 1 => self.receive_rtcp(t / 2, now),
                    Token(t) => self.receive(t / 2, now),
                }
                // A burst of arrivals must not hold up due packets: fire the timers between
                // batches of sockets.
                if n % TIMER_CHECK_EVERY == TIMER_CHECK_EVERY - 1 {
                    now = clock::now();
                    self.expire(now);
                }
            }
            if woken && let Flow::Stop = self.apply_messages(now) {
                self.close_all(now);
                return;
            }
            self.expire(now);
        }
    }

    fn apply_messages(&mut self, now: Instant) -> Flow {
        // Cleared before draining: a message sent after this point wakes us again.
        self.shared.wake_pending.store(false, Ordering::Release);
        loop {
            match self.rx.try_recv() {
                Ok(Msg::Start(start)) => self.start(now, *start),
                Ok(Msg::Command(id, command)) => self.command(now, id, command),
                Ok(Msg::Bridge(a, b)) => self.bridge(a, b),
                Ok(Msg::Join { room, session }) => self.join(now, room, session),
                Ok(Msg::Unbridge(id)) => {
                    if let Some(&slot) = self.by_id.get(&id) {
                        self.unbridge(slot);
                    }
                }
                Ok(Msg::Close(id)) => {
                    if let Some(&slot) = self.by_id.get(&id) {
                        self.close(now, slot);
                    }
                }
                Ok(Msg::Shutdown) | Err(mpsc::TryRecvError::Disconnected) => return Flow::Stop,
                Err(mpsc::TryRecvError::Empty) => return Flow::Continue,
            }
        }
    }

    fn start(&mut self, _batch_now: Instant, start: Start) {
        // A burst of starts takes a while: each session's first tick counts from its own start.
        let now = clock::now();
        let Start {
            id,
            socket,
            rtcp,
            local,
            lease,
            config,
            events,
            state,
            span,
        } = start;
        let mut events = Events {
            tx: events,
            dropped: 0,
        };
        let _entered = span.enter();
        let index = self.free_slots.pop().unwrap_or(self.slots.len());
        let mut socket = UdpSocket::from_std(socket);
        let mut rtcp = rtcp.map(UdpSocket::from_std);
        let registry = self.poll.registry();
        let registered = registry
            .register(&mut socket, rtp_token(index), Interest::READABLE)
            .and_then(|()| match rtcp.as_mut() {
                Some(rtcp) => registry.register(rtcp, rtcp_token(index), Interest::READABLE),
                None => Ok(()),
            });
        if let Err(error) = registered {
            let _ = registry.deregister(&mut socket);
            tracing::error!(%error, "cannot register rtp socket");
            self.free_slots.push(index);
            state.closed.store(true, Ordering::Release);
            events.emit(MediaEvent::Closed);
            return;
        }
        // The least busy 1 ms phase of the packet interval.
        let phase = (0..PHASES)
            .min_by_key(|&p| self.phase_load.get(p).copied().unwrap_or(usize::MAX))
            .unwrap_or(0);
        let first = self.wheel.tick_at(now) + 1;
        let offset = (phase as u64 + PHASES as u64 - first % PHASES as u64) % PHASES as u64;
        let begin = self.wheel.instant(first + offset);
        let core = match RtpSession::new(begin, config) {
            Ok(mut core) => {
                core.set_wall_clock(now, clock::wall());
                core
            }
            Err(error) => {
                tracing::error!(%error, "cannot start media session");
                let _ = self.poll.registry().deregister(&mut socket);
                if let Some(rtcp) = rtcp.as_mut() {
                    let _ = self.poll.registry().deregister(rtcp);
                }
                self.free_slots.push(index);
                state.closed.store(true, Ordering::Release);
                events.emit(MediaEvent::Closed);
                return;
            }
        };
        tracing::debug!(%local, remote = %config.remote, codec = ?config.codec, phase, "media session started");
        if let Some(load) = self.phase_load.get_mut(phase) {
            *load += 1;
        }
        let slot = Slot {
            id,
            core,
            socket,
            rtcp,
            local,
            events,
            state,
            armed: UNARMED,
            phase,
            peer: None,
            room: None,
            span: span.clone(),
            _lease: lease,
        };
        if index == self.slots.len() {
            self.slots.push(Some(slot));
        } else if let Some(place) = self.slots.get_mut(index) {
            *place = Some(slot);
        }
        self.by_id.insert(id, index);
        drop(_entered);
        self.drain(index);
    }

    fn command(&mut self, now: Instant, id: u64, command: Command) {
        let Some(&index) = self.by_id.get(&id) else {
            return; // ended meanwhile; a Stats reply sender drops, which reads as "ended"
        };
        let Some(slot) = self.slots.get_mut(index).and_then(Option::as_mut) else {
            return;
        };
        let _entered = slot.span.enter();
        if !matches!(command, Command::Stats(_)) {
            slot.state.pending.fetch_sub(1, Ordering::AcqRel);
        }
        match command {
            Command::Play(item, samples) => slot.core.play(item, samples),
            Command::PlayEncoded(item, prompt) => slot.core.play_encoded(item, prompt),
            Command::StopPlayout => slot.core.stop_playout(),
            Command::Update(config) => {
                if let Err(error) = slot.core.reconfigure(now, *config) {
                    tracing::warn!(%error, "renegotiated session not applied");
                }
            }
            Command::StartRecording(config) => slot.core.start_recording(config),
            Command::StopRecording => slot.core.stop_recording(),
            Command::SendDtmf(digit) => {
                if !slot.core.send_dtmf(digit) {
                    tracing::warn!(%digit, "cannot send dtmf on this session");
                }
            }
            Command::Stats(reply) => {
                let mut stats = slot.core.stats();
                stats.events_dropped = slot.events.dropped;
                let _ = reply.send(stats);
            }
        }
        drop(_entered);
        self.drain(index);
    }

    /// Reads the socket until it would block (mio is edge-triggered), feeding the core; a
    /// bridged session's accepted packets go straight out of its peer's socket.
    fn receive(&mut self, index: usize, now: Instant) {
        let peer = match self.slots.get(index) {
            Some(Some(slot)) => slot.peer,
            _ => return,
        };
        let (slot, mut peer) = match peer {
            Some(p) => match self.slots.get_disjoint_mut([index, p]) {
                Ok([Some(slot), Some(peer)]) => (slot, Some(peer)),
                _ => return,
            },
            None => match self.slots.get_mut(index) {
                Some(Some(slot)) => (slot, None),
                _ => return,
            },
        };
        let _entered = slot.span.enter();
        loop {
            match slot.socket.recv_from(&mut self.recv_buf) {
                // The session decides whom to listen to (symmetric RTP latching).
                Ok((len, from)) => {
                    let datagram = self.recv_buf.get(..len).unwrap_or_default();
                    slot.core.handle_receive(now, from, datagram);
                    if let Some(peer) = peer.as_deref_mut()
                        && let Some(media) = slot.core.take_received()
                        && let Some(payload) = datagram.get(media.payload_range())
                        && let Some((to, len)) =
                            peer.core.relay(&media, payload, &mut self.send_buf)
                    {
                        let out = self.send_buf.get(..len).unwrap_or_default();
                        if let Err(error) = peer.socket.send_to(out, to) {
                            tracing::trace!(%error, %to, "relayed rtp not sent");
                        }
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                // ICMP errors surface here; each is reported once and does not end the call.
                Err(error) => tracing::debug!(%error, "rtp receive error"),
            }
        }
        drop(_entered);
        self.drain(index);
    }

    /// Reads the RTCP socket until it would block.
    fn receive_rtcp(&mut self, index: usize, now: Instant) {
        let Some(Some(slot)) = self.slots.get_mut(index) else {
            return;
        };
        let Some(rtcp) = slot.rtcp.as_ref() else {
            return;
        };
        loop {
            match rtcp.recv_from(&mut self.recv_buf) {
                Ok((len, from)) => {
                    let datagram = self.recv_buf.get(..len).unwrap_or_default();
                    slot.core.handle_receive_rtcp(now, from, datagram);
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) => tracing::debug!(%error, "rtcp receive error"),
            }
        }
        self.drain(index);
    }

    fn bridge(&mut self, a: u64, b: u64) {
        let (Some(&ia), Some(&ib)) = (self.by_id.get(&a), self.by_id.get(&b)) else {
            tracing::debug!(a, b, "bridge of an ended session ignored");
            return;
        };
        if ia == ib {
            return;
        }
        self.unbridge(ia);
        self.unbridge(ib);
        for (this, other) in [(ia, ib), (ib, ia)] {
            if let Some(Some(slot)) = self.slots.get_mut(this) {
                slot.peer = Some(other);
                slot.core.set_relay(true);
            }
        }
        tracing::debug!(a, b, "sessions bridged");
    }

    /// Ends `index`'s bridge, if any; both legs go back to their own playout.
    fn unbridge(&mut self, index: usize) {
        let peer = match self.slots.get_mut(index) {
            Some(Some(slot)) => slot.peer.take(),
            _ => None,
        };
        let Some(peer) = peer else { return };
        for i in [index, peer] {
            if let Some(Some(slot)) = self.slots.get_mut(i) {
                slot.peer = None;
                slot.core.set_relay(false);
            }
        }
    }

    fn expire(&mut self, now: Instant) {
        let mut due = std::mem::take(&mut self.due);
        due.clear();
        self.wheel.expire(self.wheel.tick_now(now), &mut due);
        let (mut fired, mut late, mut max_late) = (0, 0, Duration::ZERO);
        for &(index, tick) in &due {
            if index >= ROOM_KEYS {
                self.mix_room(now, index - ROOM_KEYS, tick);
                continue;
            }
            let Some(slot) = self.slots.get_mut(index).and_then(Option::as_mut) else {
                continue;
            };
            if slot.armed != tick {
                continue; // a stale entry: the session re-armed since
            }
            slot.armed = UNARMED;
            let lateness = now.saturating_duration_since(self.wheel.instant(tick));
            fired += 1;
            late += u64::from(lateness >= LATE);
            max_late = max_late.max(lateness);
            slot.core.handle_timeout(now);
            self.drain(index);
        }
        self.due = due;
        if fired > 0 {
            let shared = &self.shared;
            shared.fired.fetch_add(fired, Ordering::Relaxed);
            shared.late.fetch_add(late, Ordering::Relaxed);
            let us = u64::try_from(max_late.as_micros()).unwrap_or(u64::MAX);
            shared.max_late_us.fetch_max(us, Ordering::Relaxed);
        }
    }

    fn join(&mut self, now: Instant, room_id: u64, session: u64) {
        let Some(&index) = self.by_id.get(&session) else {
            return;
        };
        self.leave_room(index);
        let Some(Some(slot)) = self.slots.get(index) else {
            return;
        };
        let codec = match slot.core.codec() {
            CodecKind::Pcmu => ParticipantCodec::Pcmu,
            CodecKind::Pcma => ParticipantCodec::Pcma,
            // Wideband: what Opus phones are for, at a third of the 48 kHz mixing cost.
            CodecKind::Opus => ParticipantCodec::Opus { rate: 16_000 },
        };
        let ri = match self.room_by_id.get(&room_id) {
            Some(&ri) => ri,
            None => {
                let room = match Room::new(RoomConfig::default()) {
                    Ok(room) => room,
                    Err(error) => {
                        tracing::error!(%error, "cannot create conference room");
                        return;
                    }
                };
                let ri = self
                    .rooms
                    .iter()
                    .position(Option::is_none)
                    .unwrap_or(self.rooms.len());
                let first = self.wheel.tick_at(now) + 1;
                let armed = self.wheel.schedule(ROOM_KEYS + ri, first);
                let slot = RoomSlot {
                    id: room_id,
                    room,
                    members: Vec::new(),
                    out: MixOutput::new(),
                    armed,
                };
                if ri == self.rooms.len() {
                    self.rooms.push(Some(slot));
                } else if let Some(place) = self.rooms.get_mut(ri) {
                    *place = Some(slot);
                }
                self.room_by_id.insert(room_id, ri);
                tracing::debug!(room = room_id, "conference room opened");
                ri
            }
        };
        let Some(Some(room)) = self.rooms.get_mut(ri) else {
            return;
        };
        match room.room.join(codec) {
            Ok(pid) => {
                room.members.push((index, pid));
                if let Some(Some(slot)) = self.slots.get_mut(index) {
                    slot.room = Some((ri, pid));
                    slot.core.set_conference(true);
                    let _entered = slot.span.enter();
                    tracing::info!(
                        room = room_id,
                        members = room.members.len(),
                        "joined conference"
                    );
                }
            }
            Err(error) => {
                tracing::warn!(%error, room = room_id, "conference join refused");
                let empty = room.members.is_empty();
                if empty {
                    self.drop_room(ri);
                }
                self.close(now, index);
            }
        }
    }

    /// Takes `index` out of its room; the room closes when its last member leaves.
    fn leave_room(&mut self, index: usize) {
        let Some(Some(slot)) = self.slots.get_mut(index) else {
            return;
        };
        let Some((ri, pid)) = slot.room.take() else {
            return;
        };
        slot.core.set_conference(false);
        let Some(Some(room)) = self.rooms.get_mut(ri) else {
            return;
        };
        let _ = room.room.leave(pid);
        room.members.retain(|&(member, _)| member != index);
        if room.members.is_empty() {
            self.drop_room(ri);
        }
    }

    fn drop_room(&mut self, ri: usize) {
        if let Some(room) = self.rooms.get_mut(ri).and_then(Option::take) {
            self.room_by_id.remove(&room.id);
            tracing::debug!(room = room.id, stats = ?room.room.stats(), "conference room closed");
        }
    }

    /// One conference tick: every member's received frame in, the mix out to each.
    fn mix_room(&mut self, now: Instant, ri: usize, tick: Tick) {
        let Some(Some(room)) = self.rooms.get_mut(ri) else {
            return; // closed; a stale wheel entry
        };
        if room.armed != tick {
            return;
        }
        for &(si, pid) in &room.members {
            if let Some(Some(slot)) = self.slots.get_mut(si) {
                let frame = slot.core.pop_for_mix(now);
                // A frame the codec rejects counts as silence inside the room.
                let _ = room.room.push_frame(pid, frame);
            }
        }
        room.room.mix(&mut room.out);
        for &(si, pid) in &room.members {
            let Some(Some(slot)) = self.slots.get_mut(si) else {
                continue;
            };
            let mixed = match room.out.frame(pid) {
                Some(Frame::Audio(payload)) => Some(payload),
                _ => None,
            };
            if let Some((to, len)) = slot.core.send_mixed(mixed, &mut self.send_buf) {
                let datagram = self.send_buf.get(..len).unwrap_or_default();
                if let Err(error) = slot.socket.send_to(datagram, to) {
                    tracing::trace!(%error, %to, "mixed rtp not sent");
                }
            }
        }
        room.armed = self
            .wheel
            .schedule(ROOM_KEYS + ri, tick + PTIME.as_millis() as u64);
    }

    /// Sends what the core has, forwards its events and arms its next deadline.
    fn drain(&mut self, index: usize) {
        let Some(slot) = self.slots.get_mut(index).and_then(Option::as_mut) else {
            return;
        };
        loop {
            match slot.core.poll_output(&mut self.send_buf) {
                Output::Transmit { to, len } => {
                    let datagram = self.send_buf.get(..len).unwrap_or_default();
                    if let Err(error) = slot.socket.send_to(datagram, to) {
                        // A full socket buffer drops the packet, as the network would.
                        tracing::trace!(%error, %to, "rtp send failed");
                    }
                }
                Output::TransmitRtcp { to, len } => {
                    let datagram = self.send_buf.get(..len).unwrap_or_default();
                    if let Some(rtcp) = &slot.rtcp
                        && let Err(error) = rtcp.send_to(datagram, to)
                    {
                        tracing::trace!(%error, %to, "rtcp send failed");
                    }
                }
                Output::Event(event) => slot.events.emit(event),
                Output::Timeout(deadline) => {
                    let tick = self.wheel.tick_at(deadline).max(self.wheel.earliest());
                    if tick != slot.armed {
                        slot.armed = self.wheel.schedule(index, tick);
                    }
                    return;
                }
            }
        }
    }

    /// Ends a session: what the close flushed is reported, then `Closed`; the port is freed.
    fn close(&mut self, now: Instant, index: usize) {
        self.unbridge(index);
        self.leave_room(index);
        let Some(mut slot) = self.slots.get_mut(index).and_then(Option::take) else {
            return;
        };
        self.by_id.remove(&slot.id);
        self.free_slots.push(index);
        if let Some(load) = self.phase_load.get_mut(slot.phase) {
            *load = load.saturating_sub(1);
        }
        self.shared.sessions.fetch_sub(1, Ordering::AcqRel);
        let _entered = slot.span.enter();
        let _ = self.poll.registry().deregister(&mut slot.socket);
        if let Some(rtcp) = slot.rtcp.as_mut() {
            let _ = self.poll.registry().deregister(rtcp);
        }
        slot.core.stop_playout();
        slot.core.stop_recording();
        // RTCP BYE (RFC 3550 §6.6); no more RTP.
        slot.core.bye(now);
        loop {
            match slot.core.poll_output(&mut self.send_buf) {
                Output::Event(event) => slot.events.emit(event),
                Output::Transmit { to, len } => {
                    // Only muxed RTCP (the BYE) is still built once the session is closing.
                    let datagram = self.send_buf.get(..len).unwrap_or_default();
                    if crate::rtp_packet::is_rtcp(datagram) {
                        let _ = slot.socket.send_to(datagram, to);
                    }
                }
                Output::TransmitRtcp { to, len } => {
                    if let Some(rtcp) = &slot.rtcp {
                        let _ = rtcp.send_to(self.send_buf.get(..len).unwrap_or_default(), to);
                    }
                }
                Output::Timeout(_) => break,
            }
        }
        let stats = slot.core.stats();
        tracing::debug!(
            local = %slot.local,
            sent = stats.sent,
            received = stats.received,
            malformed = stats.malformed,
            foreign = stats.foreign,
            latched = ?slot.core.latched(),
            events_dropped = slot.events.dropped,
            "media session closed"
        );
        // The port is free before `Closed` says so.
        drop(_entered);
        let Slot {
            mut events,
            state,
            socket,
            rtcp,
            _lease,
            ..
        } = slot;
        drop((socket, rtcp, _lease));
        state.closed.store(true, Ordering::Release);
        events.emit(MediaEvent::Closed);
    }

    fn close_all(&mut self, now: Instant) {
        let ids: Vec<usize> = self.by_id.values().copied().collect();
        for index in ids {
            self.close(now, index);
        }
    }
}
