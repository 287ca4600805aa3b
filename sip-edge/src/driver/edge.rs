//! `spawn_edge`: the proxy core on UDP (+ TCP).

use std::net::SocketAddr;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{Core, Io, Polled, run};
use crate::Instant;
use crate::io::Received;
use crate::proxy::{self, DialPlan, Proxy, ProxyConfig};
use crate::transaction::Timers;

/// Edge settings.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// UDP address to bind (port 0 picks one).
    pub udp: SocketAddr,
    /// TCP address to listen on, if any.
    pub tcp: Option<SocketAddr>,
    /// Where VXML calls go (the media server's UA).
    pub media_server: SocketAddr,
    /// Number -> route.
    pub dial_plan: DialPlan,
}

/// A running edge.
pub struct EdgeHandle {
    /// The UDP address actually bound.
    pub udp_addr: SocketAddr,
    /// The TCP address actually bound.
    pub tcp_addr: Option<SocketAddr>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl EdgeHandle {
    /// Stops the edge and waits for its task.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(());
        let _ = self.task.await;
    }
}

impl Core for Proxy {
    type Command = std::convert::Infallible;
    type Event = std::convert::Infallible;

    fn receive(&mut self, r: Received) {
        self.handle_input(proxy::Input::Receive(r));
    }

    fn command(&mut self, _now: Instant, c: Self::Command) {
        match c {}
    }

    fn timeout(&mut self, now: Instant) {
        self.handle_input(proxy::Input::Timeout(now));
    }

    fn poll(&mut self) -> Polled<Self::Event> {
        match self.poll_output() {
            proxy::Output::Transmit(t) => Polled::Transmit(t),
            proxy::Output::Timeout(t) => Polled::Timeout(t),
            proxy::Output::Idle => Polled::Idle,
        }
    }
}

/// Binds the sockets and starts the proxy task.
pub async fn spawn_edge(cfg: EdgeConfig) -> std::io::Result<EdgeHandle> {
    let udp = UdpSocket::bind(cfg.udp).await?;
    let udp_addr = udp.local_addr()?;
    let tcp = match cfg.tcp {
        Some(a) => Some(TcpListener::bind(a).await?),
        None => None,
    };
    let tcp_addr = tcp.as_ref().map(TcpListener::local_addr).transpose()?;
    let core = Proxy::new(ProxyConfig {
        udp: udp_addr,
        advertised_ip: super::outbound_ip(udp_addr),
        tcp: tcp_addr,
        media_server: cfg.media_server,
        dial_plan: cfg.dial_plan,
        timers: Timers::default(),
        seed: rand::random(),
    });
    let (_commands_tx, commands) = mpsc::unbounded_channel();
    let (shutdown, shutdown_rx) = oneshot::channel();
    let io = Io::<Proxy> {
        udp,
        tcp,
        commands,
        events: None,
        shutdown: shutdown_rx,
    };
    let task = tokio::spawn(run(core, io));
    tracing::info!(%udp_addr, ?tcp_addr, "sip edge listening");
    Ok(EdgeHandle {
        udp_addr,
        tcp_addr,
        shutdown,
        task,
    })
}
