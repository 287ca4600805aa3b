//! The `[media]` section of `parley.toml` (documented key by key in `parley.example.toml`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// How the media server runs.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// The media server's own SIP address (the edge sends VXML calls here).
    pub sip: SocketAddr,
    /// Address RTP sockets bind to.
    pub rtp_ip: IpAddr,
    /// Address written into SDP answers. Default: the local address that routes to the
    /// caller's media address (right for one host or a LAN without NAT).
    pub rtp_public_ip: Option<IpAddr>,
    /// Lowest RTP port (even; RTCP takes the next one).
    pub rtp_port_min: u16,
    /// Highest RTP port.
    pub rtp_port_max: u16,
    /// Interpreter threads (each runs many calls); 0 = one per core.
    pub interpreter_threads: usize,
    /// Hang up a call that sent no RTP for this long (the caller vanished); 0 = never.
    pub rtp_timeout_secs: u64,
    /// Media threads (each a blocking epoll loop over many calls' RTP); 0 = one per core.
    pub media_threads: usize,
    /// Pin media thread i to core i.
    pub pin_media_threads: bool,
    /// Memory for decoded and pre-encoded prompts shared by all calls, in MiB (least recently
    /// used out first).
    pub prompt_cache_mb: usize,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            sip: "127.0.0.1:5070".parse().expect("literal"),
            rtp_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            rtp_public_ip: None,
            rtp_port_min: 20000,
            rtp_port_max: 29999,
            interpreter_threads: 0,
            rtp_timeout_secs: 30,
            media_threads: 0,
            pin_media_threads: true,
            prompt_cache_mb: 64,
        }
    }
}
