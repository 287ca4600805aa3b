//! SIP edge for Parley: a zero-copy SIP message framer, RFC 3261 transactions, a stateful
//! proxy with a dial plan, the UA layer the media server answers and places calls with, and
//! thin tokio drivers over UDP and TCP.
//!
//! # Layers
//! - [`message`]: [`parse`] frames a datagram into start line, header spans and body;
//!   typed accessors parse on demand; [`SipMessage::validate`] says which error response
//!   (400/416/505) a request deserves. [`StreamFramer`] frames TCP incrementally.
//! - [`edit`] / [`builder`]: re-emit a message with edits (unknown headers byte-exact) and
//!   build responses and requests.
//! - [`transaction`]: the four RFC 3261 §17 machines.
//! - [`proxy`] (registrar, digest auth, location, forking, voicemail, message waiting) and
//!   [`ua`]: sans-IO cores; [`auth`]: digest pieces.
//! - [`limits`]: per-source token buckets; `timers` (crate-internal): a keyed deadline heap.
//! - [`spawn_edge`] / [`spawn_ua`]: tokio drivers; the only code that reads the clock.
//!
//! # Run loop
//! Every core is sans-IO and has the same shape: feed one input (a received message, a
//! command, or `Timeout(now)` when the last deadline passed), then drain `poll_output` until it
//! returns a deadline or `Idle`. Time is always passed in.
//!
//! ```
//! use std::time::Instant;
//! use bytes::Bytes;
//! use sip_edge::io::{Received, Transport};
//! use sip_edge::proxy::{Input, Output, Proxy, ProxyConfig};
//! use sip_edge::{DialPlan, parse};
//!
//! let mut proxy = Proxy::new(ProxyConfig::new(
//!     "127.0.0.1:5060".parse().unwrap(),
//!     "127.0.0.1:5070".parse().unwrap(),
//! ));
//! let options = "OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\n\
//!     Via: SIP/2.0/UDP 127.0.0.1:4000;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\n\
//!     To: <sip:127.0.0.1>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
//! // 1. one input ...
//! proxy.handle_input(Input::Receive(Received {
//!     now: Instant::now(),
//!     transport: Transport::Udp,
//!     source: "127.0.0.1:4000".parse().unwrap(),
//!     data: Bytes::from_static(options.as_bytes()),
//! }));
//! // 2. ... then drain until the next deadline (or Idle); 3. sleep until it and repeat.
//! let mut sent = Vec::new();
//! loop {
//!     match proxy.poll_output() {
//!         Output::Transmit(t) => sent.push(t),
//!         Output::Store(_change) => {} // for the driver to persist
//!         Output::Timeout(_deadline) => break,
//!         Output::Idle => break,
//!     }
//! }
//! assert_eq!(parse(sent[0].data.clone()).unwrap().status(), Some(200));
//! ```
#![warn(missing_docs)]
// Unit tests start their virtual clocks from a real instant; production code may not read it.
#![cfg_attr(test, allow(clippy::disallowed_methods))]
#![forbid(unsafe_code)]

pub mod auth;
pub mod builder;
mod driver;
pub mod edit;
pub mod io;
pub mod limits;
pub mod message;
pub mod proxy;
mod routing;
pub(crate) mod timers;
pub mod transaction;
pub mod ua;

/// Time as the cores see it; only the drivers read the clock.
pub(crate) use std::time::Instant;

pub use driver::{EdgeCommand, EdgeConfig, EdgeHandle, UaConfig, UaHandle, spawn_edge, spawn_ua};
pub use message::{
    Frame, Method, ParseError, SipMessage, StatusCode, StreamFramer, frame_stream, parse,
};
pub use proxy::{Account, DialPlan, Network, Pattern, Route, Voicemail};
pub use ua::{DialError, EndReason, IncomingCall, UaEvent};
