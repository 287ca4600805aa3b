//! `spawn_ua`: the UA core the media server answers and places calls with.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{Core, Io, Polled, now, run};
use crate::Instant;
use crate::io::Received;
use crate::transaction::Timers;
use crate::ua::{self, Command, DialError, Ua, UaCoreConfig, UaEvent, check_dial, check_uri};

/// UA settings.
#[derive(Debug, Clone)]
pub struct UaConfig {
    /// UDP address to bind (port 0 picks one).
    pub udp: SocketAddr,
    /// TCP address to listen on, if any.
    pub tcp: Option<SocketAddr>,
}

type Stopper = Arc<Mutex<Option<(oneshot::Sender<()>, JoinHandle<()>)>>>;

/// Controls a running UA; cheap to clone, usable from any task.
#[derive(Clone)]
pub struct UaHandle {
    local: SocketAddr,
    commands: mpsc::UnboundedSender<(Instant, Command)>,
    stopper: Stopper,
}

impl UaHandle {
    /// The UDP address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    fn command(&self, c: Command) {
        // A stopped UA ignores commands; the call is gone with it.
        let _ = self.commands.send((now(), c));
    }

    /// Answers with 200 OK carrying `sdp`.
    pub fn answer(&self, call_id: &str, sdp: String) {
        self.command(Command::Answer {
            call_id: call_id.to_owned(),
            sdp,
        });
    }

    /// Rejects with a final error (e.g. 488, 500); other codes become 500.
    pub fn reject(&self, call_id: &str, status: u16) {
        self.command(Command::Reject {
            call_id: call_id.to_owned(),
            status,
        });
    }

    /// Answers a re-INVITE's new offer ([`crate::UaEvent::Reoffer`]).
    pub fn answer_reoffer(&self, call_id: &str, sdp: String) {
        self.command(Command::AnswerReoffer {
            call_id: call_id.to_owned(),
            sdp,
        });
    }

    /// Refuses a re-INVITE's new offer (e.g. 488); the call goes on as it was.
    pub fn reject_reoffer(&self, call_id: &str, status: u16) {
        self.command(Command::RejectReoffer {
            call_id: call_id.to_owned(),
            status,
        });
    }

    /// Hangs up: BYE, or 480 if not answered yet; an outbound call not answered yet is
    /// cancelled (`Failed` then `Ended` follow).
    pub fn hangup(&self, call_id: &str) {
        self.command(Command::Hangup {
            call_id: call_id.to_owned(),
        });
    }

    /// A fresh Call-ID for [`UaHandle::dial`]: 128 bits from the OS-seeded CSPRNG, so
    /// unique and unguessable.
    pub fn new_call_id() -> String {
        format!("{:032x}", rand::random::<u128>())
    }

    /// Places a call: INVITE to `target` (Request-URI) from `from`, sent to `proxy`, with
    /// `sdp` as offer and `headers` added (Diversion, User-to-User, ...). `call_id` comes from
    /// [`UaHandle::new_call_id`], so the caller can file it before any event about it can
    /// arrive. Events: `Progress`*, then `Answered`, or `Failed` and `Ended`.
    pub fn dial(
        &self,
        call_id: &str,
        target: &str,
        from: &str,
        proxy: SocketAddr,
        sdp: String,
        headers: Vec<(String, String)>,
    ) -> Result<(), DialError> {
        check_dial(call_id, target, from, &headers)?;
        self.command(Command::Dial {
            call_id: call_id.to_owned(),
            target: target.to_owned(),
            from: from.to_owned(),
            proxy,
            sdp,
            headers,
        });
        Ok(())
    }

    /// Blind transfer of an established call to `target` (REFER). Events: `ReferAccepted` or
    /// `ReferFailed`, then `ReferProgress` until `done`.
    pub fn refer(&self, call_id: &str, target: &str) -> Result<(), DialError> {
        if !check_uri(target) {
            return Err(DialError::BadTarget(target.to_owned()));
        }
        self.command(Command::Refer {
            call_id: call_id.to_owned(),
            target: target.to_owned(),
        });
        Ok(())
    }

    /// Stops the UA (all clones) and waits for its task.
    pub async fn shutdown(self) {
        let taken = self.stopper.lock().ok().and_then(|mut s| s.take());
        if let Some((tx, task)) = taken {
            let _ = tx.send(());
            let _ = task.await;
        }
    }
}

impl Core for Ua {
    type Command = (Instant, Command);
    type Event = UaEvent;

    fn receive(&mut self, r: Received) {
        self.handle_input(ua::Input::Receive(r));
    }

    fn command(&mut self, _now: Instant, (at, c): Self::Command) {
        self.handle_input(ua::Input::Command(at, c));
    }

    fn timeout(&mut self, now: Instant) {
        self.handle_input(ua::Input::Timeout(now));
    }

    fn poll(&mut self) -> Polled<Self::Event> {
        match self.poll_output() {
            ua::Output::Transmit(t) => Polled::Transmit(t),
            ua::Output::Event(e) => Polled::Event(e),
            ua::Output::Timeout(t) => Polled::Timeout(t),
            ua::Output::Idle => Polled::Idle,
        }
    }
}

/// Binds the sockets and starts the UA task; events arrive on the returned receiver.
pub async fn spawn_ua(
    cfg: UaConfig,
) -> std::io::Result<(UaHandle, mpsc::UnboundedReceiver<UaEvent>)> {
    let udp = UdpSocket::bind(cfg.udp).await?;
    let local = udp.local_addr()?;
    let tcp = match cfg.tcp {
        Some(a) => Some(TcpListener::bind(a).await?),
        None => None,
    };
    let core = Ua::new(UaCoreConfig {
        local,
        advertised_ip: super::outbound_ip(local),
        timers: Timers::default(),
        seed: rand::random(),
    });
    let (commands_tx, commands) = mpsc::unbounded_channel();
    let (events_tx, events) = mpsc::unbounded_channel();
    let (shutdown, shutdown_rx) = oneshot::channel();
    let io = Io::<Ua> {
        udp,
        tcp,
        commands,
        events: Some(events_tx),
        shutdown: shutdown_rx,
    };
    let task = tokio::spawn(run(core, io));
    tracing::info!(%local, "sip ua listening");
    let handle = UaHandle {
        local,
        commands: commands_tx,
        stopper: Arc::new(Mutex::new(Some((shutdown, task)))),
    };
    Ok((handle, events))
}
