//! Jitter buffer timings (plain std timing, no harness): `cargo bench -p media-engine --bench
//! jitter`. Prints the median of several runs of the time per packet (one push and one pop).
#![allow(clippy::disallowed_methods)] // benchmarks measure wall time

use std::hint::black_box;
use std::time::{Duration, Instant};

use media_engine::jitter::{Frame, JitterBuffer, JitterConfig, PacketInfo};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const RUNS: usize = 9;
const PACKETS: u32 = 50_000;
const PTIME: Duration = Duration::from_millis(20);

/// Pushes `PACKETS` packets (packet `k` arriving `delays[k]` after its send time, in arrival
/// order) and pops every 20 ms; returns the median time per packet and the frames played.
fn per_packet(config: JitterConfig, delays: &[Duration], payload: &[u8]) -> (Duration, u64) {
    let spf = config.samples_per_frame();
    let mut arrivals: Vec<(Duration, u32)> = delays
        .iter()
        .enumerate()
        .map(|(k, d)| (PTIME * k as u32 + *d, k as u32))
        .collect();
    arrivals.sort();
    let mut samples = Vec::with_capacity(RUNS);
    let mut played = 0;
    for _ in 0..RUNS {
        let mut buffer = JitterBuffer::new(config);
        let epoch = Instant::now();
        let mut next = arrivals.iter().peekable();
        let start = Instant::now();
        for tick in 1..=PACKETS {
            let now = PTIME * tick;
            while let Some((at, k)) = next.next_if(|(at, _)| *at <= now) {
                let packet = PacketInfo {
                    seq: *k as u16,
                    timestamp: k.wrapping_mul(spf),
                    ssrc: 1,
                    marker: false,
                    payload,
                };
                buffer.push(epoch + *at, black_box(packet));
            }
            if let Frame::Audio { payload, .. } = buffer.pop(epoch + now) {
                black_box(payload);
            }
        }
        samples.push(start.elapsed() / PACKETS);
        played = buffer.stats().played;
    }
    samples.sort();
    (samples[RUNS / 2], played)
}

fn main() {
    let mut rng = StdRng::seed_from_u64(1);
    let steady = vec![Duration::from_millis(30); PACKETS as usize];
    let jittery: Vec<Duration> = (0..PACKETS)
        .map(|_| Duration::from_micros(rng.random_range(20_000..60_000)))
        .collect();
    for (name, rate, len) in [("G.711", 8000, 160), ("Opus", 48_000, 120)] {
        let payload = vec![0x55u8; len];
        for (pattern, delays) in [("steady", &steady), ("40 ms jitter", &jittery)] {
            let (time, played) = per_packet(JitterConfig::new(rate), delays, &payload);
            println!("{name}, {pattern}: {time:?} per push+pop ({played}/{PACKETS} played)");
        }
    }
}
