//! IVR sessions on one media thread, for `bench/rtp/ivr.sh`: SESSIONS sessions each play a
//! cached prompt in a loop (re-queued on `PlayoutDone`, as the media server does between
//! prompts), with RFC 4733 negotiated, while a generator sends each 50 packets/s. Prints the
//! generator map (`a pa b pb`: two sessions per line), then relays until stdin closes, then
//! the engine's late-frame counters.
//!
//! `cargo run --release -p media-engine --example ivr_load -- SESSIONS [A_BASE] [B_BASE]`

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use media_engine::{
    CodecKind, EngineConfig, MediaEngine, MediaEvent, SessionConfig, start_session_with,
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
    let sessions = arg(0, 1000)?.next_multiple_of(2);
    let (a_base, b_base) = (arg(1, 20_000)?, arg(2, 24_000)?);
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let engine = MediaEngine::new(EngineConfig {
        bind_ip: loopback,
        port_min: 30_000,
        port_max: 40_000,
        threads: 1,
        pin_threads: true,
    })?;
    // One decoded prompt shared by every call, as the prompt cache hands it out: 3 s of a
    // two-tone signal.
    let prompt: Arc<[i16]> = (0..24_000)
        .map(|i| {
            let t = f64::from(i) / 8000.0;
            (6000.0
                * ((2.0 * std::f64::consts::PI * 440.0 * t).sin()
                    + (2.0 * std::f64::consts::PI * 620.0 * t).sin())) as i16
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut out = std::io::stdout().lock();
    let mut handles = Vec::new();
    for i in 0..sessions / 2 {
        let a = u16::try_from(a_base + 2 * i)?;
        let b = u16::try_from(b_base + 2 * i)?;
        let mut ports = [0u16; 2];
        for (j, peer) in [a, b].into_iter().enumerate() {
            let mut config =
                SessionConfig::new(CodecKind::Pcmu, 0, SocketAddr::new(loopback, peer));
            config.dtmf_payload_type = Some(101);
            config.inactivity_timeout = std::time::Duration::ZERO;
            let socket = runtime.block_on(engine.allocate())?;
            ports[j] = socket.local_addr().port();
            let (media, mut events) = start_session_with(socket, config);
            media.play(0, prompt.clone())?;
            let prompt = prompt.clone();
            let looping = media.clone();
            runtime.spawn(async move {
                let mut next = 1;
                while let Some(event) = events.recv().await {
                    if let MediaEvent::PlayoutDone(_) = event {
                        let _ = looping.play(next, prompt.clone());
                        next += 1;
                    }
                }
            });
            handles.push(media);
        }
        writeln!(out, "{a} {} {b} {}", ports[0], ports[1])?;
    }
    out.flush()?;
    drop(out);
    eprintln!("ivr_load: {sessions} sessions, pid {}", std::process::id());
    // Steady state only: the counters start once every session has been set up (the starts
    // are queued to the media thread faster than it registers them).
    runtime.block_on(async {
        // Commands are applied in order, so the last session's answer means all are running.
        if let Some(last) = handles.last() {
            let _ = last.stats().await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    });
    let before = engine.stats();
    // Event loops run on this thread while we wait for stdin to close.
    let stdin = std::thread::spawn(|| std::io::stdin().read_to_end(&mut Vec::new()));
    runtime.block_on(async {
        while !stdin.is_finished() {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    });
    let after = engine.stats();
    let fired = after.timers_fired - before.timers_fired;
    let late = after.late - before.late;
    println!(
        "sessions={sessions} frames={fired} late={late} late_pct={:.4} max_late_us={}",
        100.0 * late as f64 / fired.max(1) as f64,
        after.max_late_us
    );
    Ok(())
}
