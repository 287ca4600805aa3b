//! Parley's media engine as a plain RTP relay, for the side-by-side benchmark with rtpengine
//! (`bench/rtp/compare.sh`). Sets up CALLS bridged session pairs on 127.0.0.1 and prints one
//! line per call in the map format of `../shared/bench/rtp/ng.py`:
//! `a_port relay_port_for_A b_port relay_port_for_B`. Then relays until stdin closes.
//!
//! `cargo run --release -p media-engine --example rtp_relay -- CALLS [THREADS] [A_BASE] [B_BASE]`

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use media_engine::{
    CodecKind, EngineConfig, MediaEngine, SessionConfig, start_session_beside, start_session_with,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: usize| -> Result<usize, Box<dyn std::error::Error>> {
        Ok(args
            .get(i)
            .map(|a| a.parse())
            .transpose()?
            .unwrap_or(default))
    };
    let calls = arg(0, 300)?;
    let threads = arg(1, 1)?;
    let (a_base, b_base) = (arg(2, 20_000)?, arg(3, 24_000)?);
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let engine = MediaEngine::new(EngineConfig {
        bind_ip: loopback,
        port_min: 30_000,
        port_max: 40_000,
        threads,
        pin_threads: true,
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let mut legs = Vec::new();
    let mut out = std::io::stdout().lock();
    for i in 0..calls {
        let a = u16::try_from(a_base + 2 * i)?;
        let b = u16::try_from(b_base + 2 * i)?;
        let leg = |peer: u16| {
            let mut config =
                SessionConfig::new(CodecKind::Pcmu, 0, SocketAddr::new(loopback, peer));
            config.dtmf_payload_type = Some(101);
            // The generator starts after the map is printed.
            config.inactivity_timeout = std::time::Duration::ZERO;
            config
        };
        let socket_a = runtime.block_on(engine.allocate())?;
        let socket_b = runtime.block_on(engine.allocate())?;
        let (pa, pb) = (socket_a.local_addr().port(), socket_b.local_addr().port());
        let (leg_a, events_a) = start_session_with(socket_a, leg(a));
        let (leg_b, events_b) = start_session_beside(socket_b, leg(b), &leg_a);
        leg_a.bridge(&leg_b)?;
        writeln!(out, "{a} {pa} {b} {pb}")?;
        legs.push((leg_a, leg_b, events_a, events_b));
    }
    out.flush()?;
    drop(out);
    eprintln!(
        "rtp_relay: {calls} calls on {} media thread(s), pid {}",
        engine.threads(),
        std::process::id()
    );
    // Relay until whoever started us closes stdin.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    Ok(())
}
