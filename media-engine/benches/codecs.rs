//! Codec and resampler timings (plain std timing, no harness): `cargo bench -p media-engine`.
//! Prints the median of several runs per case, per frame / per second of audio.
#![allow(clippy::disallowed_methods)] // benchmarks measure wall time

use std::hint::black_box;
use std::time::{Duration, Instant};

use media_engine::CodecKind;
use media_engine::codec::Codec;
use media_engine::dtmf::InbandDetector;

const RUNS: usize = 9;

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

fn tone(rate: u32, seconds: f64) -> Vec<i16> {
    (0..(f64::from(rate) * seconds) as usize)
        .map(|n| {
            (8000.0 * (std::f64::consts::TAU * 440.0 * n as f64 / f64::from(rate)).sin()) as i16
        })
        .collect()
}

fn main() {
    let frame = tone(8000, 0.02);
    let mut payload = Vec::with_capacity(1500);
    let mut pcm = Vec::with_capacity(960);

    for kind in [CodecKind::Pcmu, CodecKind::Pcma, CodecKind::Opus] {
        let mut codec = Codec::new(kind).expect("codec");
        let encode = median_per_iteration(2000, || {
            payload.clear();
            codec
                .encode(black_box(&frame), &mut payload)
                .expect("encode");
        });
        payload.clear();
        codec.encode(&frame, &mut payload).expect("encode");
        let encoded = payload.clone();
        let decode = median_per_iteration(2000, || {
            pcm.clear();
            codec.decode(black_box(&encoded), &mut pcm).expect("decode");
        });
        println!("{kind:?}: encode {encode:?}/frame, decode {decode:?}/frame (20 ms)");
    }

    for from in [16000, 32000, 44100, 48000] {
        let input = tone(from, 1.0);
        let down = median_per_iteration(3, || {
            black_box(media_engine::resample(black_box(&input), from, 8000));
        });
        let narrow = tone(8000, 1.0);
        let up = median_per_iteration(3, || {
            black_box(media_engine::resample(black_box(&narrow), 8000, from));
        });
        println!("resample {from} -> 8000: {down:?}/s of audio; 8000 -> {from}: {up:?}/s");
    }

    let mut detector = InbandDetector::new();
    let mut digits = Vec::new();
    let inband = median_per_iteration(2000, || detector.process(black_box(&frame), &mut digits));
    println!("in-band DTMF detector: {inband:?}/frame (20 ms)");
}
