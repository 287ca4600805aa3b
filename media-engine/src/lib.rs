//! Parley's RTP media engine: SDP offer/answer, G.711 and Opus, RFC 4733 DTMF, prompt decoding
//! and resampling, and a paced RTP session.
//!
//! # Shape
//!
//! The protocol logic is a sans-IO core, [`session::RtpSession`]: it never reads the clock or
//! touches a socket. A thin tokio driver ([`start_session`]) owns the UDP socket and runs this
//! loop for one call:
//!
//! 1. drain the core with `poll_output(&mut buf)` until it returns `Output::Timeout(deadline)`:
//!    `Transmit { to, len }` means "send `buf[..len]` to `to`" from the RTP socket,
//!    `TransmitRtcp { to, len }` the same from the RTCP socket (RTP port + 1; only without
//!    rtcp-mux, see [`rtcp`] and [`session`]), `Event` goes to the owner's bounded channel;
//! 2. wait for the first of: the deadline, a command from a [`MediaHandle`], a datagram;
//! 3. feed it in (`handle_timeout(now)`, `play`/`stop_playout`,
//!    `handle_receive(now, from, &datagram)`, `handle_receive_rtcp` for the RTCP socket) and go
//!    back to 1.
//!
//! Nothing on the packet path allocates: datagrams are parsed in place by [`rtp_packet`] and
//! written into the driver's buffer. The session latches onto the caller's real RTP source
//! (symmetric RTP, for NAT) and reports [`MediaEvent::Inactive`] when the caller falls silent;
//! see [`session`].
//!
//! ```
//! use std::time::{Duration, Instant};
//! use media_engine::CodecKind;
//! use media_engine::session::{Output, RtpSession, SessionConfig, TRANSMIT_BUFFER_LEN};
//!
//! # #[allow(clippy::disallowed_methods)]
//! let start = Instant::now(); // in the driver this is the one clock read
//! let config = SessionConfig::new(CodecKind::Pcmu, 0, "192.0.2.1:4000".parse().unwrap());
//! let mut session = RtpSession::new(start, config).unwrap();
//! let mut buf = [0u8; TRANSMIT_BUFFER_LEN];
//! let mut sent = 0;
//! let mut now = start;
//! while now < start + Duration::from_secs(1) {
//!     session.handle_timeout(now);
//!     loop {
//!         match session.poll_output(&mut buf) {
//!             Output::Transmit { to, len } => sent += 1, // socket.send_to(&buf[..len], to)
//!             Output::TransmitRtcp { to, len } => {}     // rtcp_socket.send_to(&buf[..len], to)
//!             Output::Event(_event) => {}                 // events.try_send(..)
//!             Output::Timeout(deadline) => { now = deadline; break } // sleep_until(deadline)
//!         }
//!     }
//! }
//! assert_eq!(sent, 50); // one packet per 20 ms
//! ```
//!
//! # Where this is going
//!
//! One tokio task per session is the first step. Measurements on this hardware
//! (`notes/rtp-io.md`) show a per-stream tokio timer costing ~10% of a core per 2,000 streams
//! before any I/O, against 1-2% for a per-thread timer wheel. The target shape is one media
//! thread per core, each owning its sockets in a blocking epoll loop whose `epoll_wait` timeout
//! comes from that thread's timer wheel (streams spread over 1-5 ms slots), with tokio kept for
//! signalling and control and talking to media threads over channels plus an eventfd. Because
//! the session core is sans-IO, that driver can replace this one without touching it.
//!
//! # Time
//!
//! Only the driver's clock function calls `Instant::now()`; `clippy.toml` forbids it elsewhere.
//! Tests drive the core with a virtual clock.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod codec;
mod driver;
pub mod dtmf;
pub mod encoded;
pub mod jitter;
pub mod mixer;
pub mod prompt;
pub mod record;
mod resample;
pub mod rtcp;
pub mod rtp_packet;
pub mod sdp;
pub mod session;

pub use codec::CodecKind;
/// Test support: a [`MediaHandle`] whose commands a test reads (`test-util` feature).
#[cfg(feature = "test-util")]
pub use driver::probe;
pub use driver::{
    COMMAND_QUEUE, CommandError, EVENT_QUEUE, EngineConfig, EngineStats, MAX_ROOM_MEMBERS,
    MediaEngine, MediaHandle, RtpSocket, local_ip_toward, start_session, start_session_beside,
    start_session_with,
};
pub use prompt::{Pcm, Resampler, decode_wav, resample};
pub use session::{MediaEvent, SessionConfig, SessionStats};

/// Errors of the media engine; each module has its own error, wrapped here.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// SDP parsing or negotiation failed.
    #[error(transparent)]
    Sdp(#[from] sdp::SdpError),
    /// A prompt file could not be decoded.
    #[error(transparent)]
    Prompt(#[from] prompt::PromptError),
    /// A codec failed.
    #[error(transparent)]
    Codec(#[from] codec::CodecError),
    /// A telephone-event payload was malformed.
    #[error(transparent)]
    Dtmf(#[from] dtmf::DtmfError),
    /// Socket I/O failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// `Result` with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
