//! A [`MediaHandle`] with no media thread behind it, for testing what drives media: the commands
//! it is given are kept for the test to read (`test-util` feature).

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, mpsc};

use super::thread::{self, Command, Msg, SessionState};
use super::{EngineConfig, EngineInner, Link, MediaHandle, PortPool};

/// What a probed handle was asked to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Probed {
    /// `play(id, samples)`.
    Play {
        /// The item id.
        id: u64,
        /// Its length in samples.
        samples: usize,
    },
    /// `play_encoded(id, prompt)`.
    PlayEncoded {
        /// The item id.
        id: u64,
    },
    /// `stop_playout()`.
    StopPlayout,
    /// `send_dtmf(digit)`.
    SendDtmf(char),
    /// `update(config)`.
    Update,
    /// `start_recording(config)`.
    StartRecording,
    /// `stop_recording()`.
    StopRecording,
    /// `bridge(other)` / `unbridge()`.
    Bridge,
    /// `unbridge()`.
    Unbridge,
    /// `close()` (or the last handle dropped).
    Close,
}

/// The test's end of a probed handle.
pub struct Probe {
    rx: Mutex<mpsc::Receiver<Msg>>,
    _poll: mio::Poll,
}

impl Probe {
    /// The commands given since the last call.
    pub fn commands(&self) -> Vec<Probed> {
        let Ok(rx) = self.rx.lock() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        while let Ok(msg) = rx.try_recv() {
            out.extend(match msg {
                Msg::Command(_, command) => Some(match command {
                    Command::Play(id, samples) => Probed::Play {
                        id,
                        samples: samples.len(),
                    },
                    Command::PlayEncoded(id, _) => Probed::PlayEncoded { id },
                    Command::StopPlayout => Probed::StopPlayout,
                    Command::SendDtmf(d) => Probed::SendDtmf(d),
                    Command::Update(_) => Probed::Update,
                    Command::StartRecording(_) => Probed::StartRecording,
                    Command::StopRecording => Probed::StopRecording,
                    // A stats request gets no answer: it reads as an ended session.
                    Command::Stats(_) => continue,
                }),
                Msg::Bridge(..) => Some(Probed::Bridge),
                Msg::Unbridge(_) => Some(Probed::Unbridge),
                Msg::Close(_) => Some(Probed::Close),
                Msg::Start(_) | Msg::Join { .. } | Msg::Shutdown => None,
            });
        }
        out
    }
}

/// A handle whose commands go to the returned [`Probe`] instead of a media thread. Its events
/// come from wherever the test sends them (the owner reads its own channel).
pub fn probe() -> std::io::Result<(MediaHandle, Probe)> {
    let (shared, rx, poll) = thread::detached()?;
    let engine = Arc::new(EngineInner {
        config: EngineConfig::any_port(std::net::Ipv4Addr::LOCALHOST.into()),
        ports: Arc::new(PortPool::new(0, 0)),
        threads: Vec::new(),
        next_id: AtomicU64::new(1),
        rooms: Mutex::default(),
    });
    let state = Arc::new(SessionState::default());
    let link = Link {
        id: 1,
        thread: Some(shared),
        state,
        _engine: engine,
        room: None,
    };
    Ok((
        MediaHandle {
            link: Arc::new(link),
        },
        Probe {
            rx: Mutex::new(rx),
            _poll: poll,
        },
    ))
}
