//! Conference mixer timings (plain std timing, no harness): `cargo bench -p media-engine --bench
//! mixer`. Each figure is the median of several runs. A "participant-frame" is one participant's
//! share of one 20 ms tick: pushing its payload (decode + level) plus its share of the mix and
//! the encodes; "participants per core" is 20 ms divided by that, i.e. how many participants one
//! core can mix in real time (mixing only: no RTP, no sockets).
#![allow(clippy::disallowed_methods)] // benchmarks measure wall time

use std::hint::black_box;
use std::time::{Duration, Instant};

use media_engine::codec::g711;
use media_engine::mixer::{Frame, MixOutput, ParticipantCodec, ParticipantId, Room, RoomConfig};

const RUNS: usize = 9;
const TICK_US: f64 = 20_000.0;
/// C reference figures from `bench/rtp/README.md` (shared), measured on this machine.
const C_PCMU_N1_US: (f64, f64) = (0.29, 0.47);
const C_OPUS_8K_US: (f64, f64) = (88.0, 7.0);
const C_OPUS_48K_US: (f64, f64) = (154.0, 31.0);

/// Median over `RUNS` of the time `f` takes for `iterations` iterations, per iteration.
fn median_per_iteration(iterations: u32, mut f: impl FnMut()) -> Duration {
    let mut samples: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iterations {
                f();
            }
            start.elapsed() / iterations
        })
        .collect();
    samples.sort();
    samples[RUNS / 2]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Speech-like test signal (as opusbench.c): harmonics of a wandering pitch, amplitude-modulated,
/// plus noise; `level` scales it.
fn speech(rate: u32, frames: usize, level: f64, seed: u64) -> Vec<i16> {
    let mut state = seed | 1;
    let n = frames * (rate / 50) as usize;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            let f0 = 120.0 + 30.0 * (std::f64::consts::TAU * 0.7 * t).sin();
            let voiced: f64 = (1..=10)
                .map(|h| (std::f64::consts::TAU * f0 * f64::from(h) * t).sin() / f64::from(h))
                .sum();
            let am = 0.5 + 0.5 * (std::f64::consts::TAU * 3.0 * t).sin();
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = (state % 2001) as f64 - 1000.0;
            (level * (voiced * am * 6000.0 + noise)).clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

/// Payloads for one participant: 50 frames of speech (talker) or faint line noise (listener).
fn payloads(codec: ParticipantCodec, talker: bool, seed: u64) -> Vec<Vec<u8>> {
    let rate = codec.pcm_rate();
    let level = if talker { 1.0 } else { 0.002 };
    let pcm = speech(rate, 50, level, seed);
    let frame = (rate / 50) as usize;
    match codec {
        ParticipantCodec::Pcmu => pcm
            .chunks(frame)
            .map(|f| f.iter().map(|&s| g711::linear_to_ulaw(s)).collect())
            .collect(),
        ParticipantCodec::Pcma => pcm
            .chunks(frame)
            .map(|f| f.iter().map(|&s| g711::linear_to_alaw(s)).collect())
            .collect(),
        ParticipantCodec::Opus { rate } => {
            let mut encoder =
                opus::Encoder::new(rate, opus::Channels::Mono, opus::Application::Voip).unwrap();
            encoder.set_complexity(5).unwrap();
            let mut packet = vec![0; 1275];
            pcm.chunks(frame)
                .map(|f| {
                    let n = encoder.encode(f, &mut packet).unwrap();
                    packet[..n].to_vec()
                })
                .collect()
        }
    }
}

struct Bench {
    room: Room,
    out: MixOutput,
    ids: Vec<ParticipantId>,
    payloads: Vec<Vec<Vec<u8>>>,
    tick: usize,
}

impl Bench {
    /// A room of `codecs`, the first `talkers` of them talking.
    fn new(codecs: &[ParticipantCodec], talkers: usize) -> Bench {
        let mut room = Room::new(RoomConfig {
            max_participants: codecs.len(),
            tones: false,
            ..RoomConfig::default()
        })
        .unwrap();
        let ids = codecs.iter().map(|&c| room.join(c).unwrap()).collect();
        let payloads = codecs
            .iter()
            .enumerate()
            .map(|(i, &c)| payloads(c, i < talkers, i as u64 + 1))
            .collect();
        let mut bench = Bench {
            room,
            out: MixOutput::new(),
            ids,
            payloads,
            tick: 0,
        };
        for _ in 0..60 {
            bench.tick(); // warm up: talkers detected, buffers grown
        }
        assert_eq!(bench.room.talkers().len(), talkers.min(3));
        bench
    }

    fn push_all(&mut self) {
        let frame = self.tick % 50;
        for (id, frames) in self.ids.iter().zip(&self.payloads) {
            let _ = self.room.push_frame(*id, Some(&frames[frame]));
        }
    }

    /// One whole tick: push everyone's frame, mix, and collect everyone's payload.
    fn tick(&mut self) -> usize {
        self.push_all();
        self.tick += 1;
        let summary = self.room.mix(&mut self.out);
        let mut bytes = 0;
        for &id in &self.ids {
            if let Some(Frame::Audio(p)) = self.out.frame(id) {
                bytes += p.len();
            }
        }
        black_box(bytes) + summary.encodes
    }
}

fn report_room(label: &str, codecs: &[ParticipantCodec], talkers: usize) -> f64 {
    let n = codecs.len();
    let mut bench = Bench::new(codecs, talkers);
    let iterations = (200_000 / n as u32).clamp(20, 4000);
    let tick = median_per_iteration(iterations, || {
        black_box(bench.tick());
    });
    let push = median_per_iteration(iterations, || bench.push_all());
    let per = us(tick) / n as f64;
    println!(
        "{label:<34} N={n:<5} {:>9.1} µs/tick  (push {:>8.1}, mix+collect {:>8.1})  {per:>6.3} µs/participant-frame  -> {:>9.0} participants/core",
        us(tick),
        us(push),
        us(tick) - us(push),
        TICK_US / per,
    );
    per
}

fn opus_codec_costs(rate: u32, bitrate: i32) -> (f64, f64) {
    let pcm = speech(rate, 50, 1.0, 7);
    let frame = (rate / 50) as usize;
    let mut encoder =
        opus::Encoder::new(rate, opus::Channels::Mono, opus::Application::Voip).unwrap();
    encoder.set_complexity(5).unwrap();
    encoder.set_bitrate(opus::Bitrate::Bits(bitrate)).unwrap();
    let mut decoder = opus::Decoder::new(rate, opus::Channels::Mono).unwrap();
    let mut packet = vec![0; 1275];
    let mut i = 0;
    let encode = median_per_iteration(500, || {
        let f = &pcm[(i % 50) * frame..][..frame];
        i += 1;
        black_box(encoder.encode(black_box(f), &mut packet).unwrap());
    });
    let packets: Vec<Vec<u8>> = pcm
        .chunks(frame)
        .map(|f| {
            let n = encoder.encode(f, &mut packet).unwrap();
            packet[..n].to_vec()
        })
        .collect();
    let mut out = vec![0i16; frame];
    let decode = median_per_iteration(500, || {
        let p = &packets[i % 50];
        i += 1;
        black_box(decoder.decode(black_box(p), &mut out, false).unwrap());
    });
    (us(encode), us(decode))
}

fn main() {
    println!("== (a) all-PCMU room, 3 talkers (decode + level for all, 1 shared + 3 N-1 encodes)");
    let mut pcmu = Vec::new();
    for n in [10, 100, 1000] {
        let per = report_room("PCMU", &vec![ParticipantCodec::Pcmu; n], 3);
        pcmu.push((n, per));
    }
    let (c_lo, c_hi) = C_PCMU_N1_US;
    for (n, per) in &pcmu {
        println!(
            "   N={n:<5}: Rust {per:.3} µs/pf vs C full N-1 mix (every participant encoded) {c_lo}-{c_hi} µs/pf: {:.2}-{:.2}x",
            per / c_hi,
            per / c_lo,
        );
    }
    println!(
        "   (C '3 talkers+shared' from mixbench.c: see the report; the README gives the full N-1 figure)"
    );

    println!("\n== (b) Opus, complexity 5 (libopus bundled by opusic-sys)");
    for (rate, bitrate, (c_enc, c_dec)) in
        [(8000, 12000, C_OPUS_8K_US), (48000, 32000, C_OPUS_48K_US)]
    {
        let (enc, dec) = opus_codec_costs(rate, bitrate);
        println!(
            "opus {rate:>5} Hz {bitrate:>5} bit/s: encode {enc:>6.1} µs, decode {dec:>5.1} µs per 20 ms; encode+decode {:>6.1} µs -> {:>5.0} channels/core (C libopus 1.3.1: {c_enc}/{c_dec} µs, ratio {:.2}x/{:.2}x)",
            enc + dec,
            TICK_US / (enc + dec),
            enc / c_enc,
            dec / c_dec,
        );
    }
    for rate in [8000, 48000] {
        for n in [10, 100] {
            report_room(
                &format!("Opus {rate} Hz"),
                &vec![ParticipantCodec::Opus { rate }; n],
                3,
            );
        }
    }

    println!("\n== mixed room at 48 kHz: 90 PCMU + 10 Opus 48 kHz, 3 PCMU talkers (resampling)");
    let mut mixed = vec![ParticipantCodec::Pcmu; 90];
    mixed.extend([ParticipantCodec::Opus { rate: 48000 }; 10]);
    report_room("PCMU+Opus48k", &mixed, 3);

    println!(
        "\n== idle: 1000 PCMU participants, nobody talking (decode + level only; mix is silent)"
    );
    report_room("PCMU idle", &vec![ParticipantCodec::Pcmu; 1000], 0);
}
