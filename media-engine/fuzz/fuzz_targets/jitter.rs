//! An arbitrary sequence of pushes, pops and time steps into one `JitterBuffer` (configuration
//! from the input too: clock rate, ptime, delays, a small capacity, a small slot size). Never a
//! panic; `len() <= capacity()`; popped audio is the payload pushed with that sequence number
//! and timestamp, and its timestamps strictly increase (modulo 2^32) until a resync is counted;
//! the counters never decrease, `played` and `missing` count the pops that returned them,
//! `received` counts the pushes, and every packet pushed is buffered, played or counted as
//! dropped (at most one more: the pending jump candidate).
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use media_engine::jitter::{Frame, JitterBuffer, JitterConfig, JitterStats, PacketInfo};

/// Reads the input as a sequence of operations.
struct Ops<'a>(&'a [u8]);

impl Ops<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte().unwrap_or(0), self.byte().unwrap_or(0)])
    }
}

#[allow(clippy::disallowed_methods)] // the virtual clock needs an arbitrary epoch
fn epoch() -> Instant {
    Instant::now()
}

/// The counters (not the estimates), in one array.
fn counters(s: &JitterStats) -> [u64; 11] {
    [
        s.received,
        s.played,
        s.missing,
        s.skipped,
        s.late,
        s.duplicates,
        s.overflow,
        s.oversize,
        s.discarded,
        s.resyncs,
        s.ssrc_changes,
    ]
}

/// Payload of a pushed packet: its seq and timestamp, then filler up to `len` (at least 6).
fn payload(seq: u16, timestamp: u32, len: usize, buf: &mut Vec<u8>) {
    buf.clear();
    buf.extend_from_slice(&seq.to_be_bytes());
    buf.extend_from_slice(&timestamp.to_be_bytes());
    buf.resize(len.max(6), seq as u8 ^ 0x5A);
}

fuzz_target!(|data: &[u8]| {
    let mut ops = Ops(data);
    let (Some(a), Some(b)) = (ops.byte(), ops.byte()) else {
        return;
    };
    let rate = [8000, 16000, 48000, 8000][usize::from(a & 3)];
    let mut config = JitterConfig::new(rate);
    if a & 0x04 != 0 {
        // Unusual settings: short or long frames, delays in any order, a few slots.
        config.ptime = Duration::from_millis(u64::from(b & 0x03) * 10 + 10);
        config.min_delay = Duration::from_millis(u64::from(b >> 2 & 0x07) * 40);
        config.max_delay = Duration::from_millis(u64::from(b >> 5) * 80);
        config.capacity = usize::from(a >> 3 & 0x0F); // 0 is corrected to 1
        config.max_payload = [1500, 160][usize::from(a >> 7)];
    }
    let spf = config.samples_per_frame();
    let mut jb = JitterBuffer::new(config);
    let capacity = jb.capacity();
    assert!(capacity >= 1 && capacity >= config.capacity);

    let t0 = epoch();
    let mut now = t0;
    // Sender state the pushes step from (so most packets look like a stream).
    let mut seq: u16 = 0;
    let mut ts: u32 = 0;
    let mut ssrc: u32 = 1;
    let mut buf = Vec::with_capacity(2048);

    let mut prev = counters(&jb.stats());
    let (mut pushes, mut audio, mut missing) = (0u64, 0u64, 0u64);
    // Last audio timestamp played, and the resync count then.
    let mut last_played: Option<(u32, u64)> = None;
    let mut steps = 0u32;
    while let Some(op) = ops.byte() {
        steps += 1;
        if steps > 4000 {
            break;
        }
        match op >> 5 {
            // Next packet of the stream (op bit 0: marker, bits 1-4: extra seq step).
            0..=2 => {
                let skip = u16::from(op >> 1 & 0x0F);
                let skip = if skip > 12 { 0 } else { skip };
                seq = seq.wrapping_add(1 + skip);
                ts = ts.wrapping_add(spf.wrapping_mul(1 + u32::from(skip)));
                payload(seq, ts, 160, &mut buf);
                let info = PacketInfo { seq, timestamp: ts, ssrc, marker: op & 1 != 0, payload: &buf };
                jb.push(now, info);
                pushes += 1;
            }
            // An arbitrary packet: seq/ts offsets from the stream, SSRC switch, payload length.
            3 => {
                let dseq = ops.u16();
                let dts = u32::from(ops.u16()) << (op & 0x0F);
                let len = usize::from(ops.byte().unwrap_or(0)) * 8;
                let s = if op & 0x10 != 0 { ssrc ^ 1 } else { ssrc };
                let (pseq, pts) = (seq.wrapping_add(dseq), ts.wrapping_add(dts));
                payload(pseq, pts, len, &mut buf);
                let info = PacketInfo { seq: pseq, timestamp: pts, ssrc: s, marker: len & 8 != 0, payload: &buf };
                jb.push(now, info);
                pushes += 1;
            }
            // Sender changes: new SSRC, or a timestamp/sequence jump.
            4 => match op & 3 {
                0 => ssrc = ssrc.wrapping_add(1),
                1 => ts = ts.wrapping_add(u32::from(ops.u16()) << 12),
                2 => seq = seq.wrapping_add(ops.u16()),
                _ => ts = ts.wrapping_sub(u32::from(ops.u16())),
            },
            // Time passes: 0-31 ms, or up to ~6.5 s.
            5 => now += Duration::from_millis(u64::from(op & 0x1F)),
            6 => now += Duration::from_millis(u64::from(ops.u16() / 10)),
            // A pop, then (op bit 4) a ptime of time.
            _ => {
                let resyncs = jb.stats().resyncs;
                match jb.pop(now) {
                    Frame::Audio { payload, timestamp, seq: s } => {
                        audio += 1;
                        assert!(payload.len() >= 6, "payload of {} bytes", payload.len());
                        assert_eq!(payload[..2], s.to_be_bytes(), "payload of another seq");
                        assert_eq!(payload[2..6], timestamp.to_be_bytes(), "payload of another ts");
                        if let Some((last, at)) = last_played
                            && at == resyncs
                        {
                            let step = timestamp.wrapping_sub(last) as i32;
                            assert!(step > 0, "played ts {timestamp} after {last}, no resync");
                        }
                        last_played = Some((timestamp, resyncs));
                    }
                    Frame::Missing { .. } => missing += 1,
                    Frame::Idle => {}
                }
                if op & 0x10 != 0 {
                    now += config.ptime;
                }
            }
        }
        assert!(jb.len() <= jb.capacity(), "{} > {}", jb.len(), jb.capacity());
        assert_eq!(jb.capacity(), capacity);
        assert_eq!(jb.is_empty(), jb.len() == 0);
        let stats = jb.stats();
        let c = counters(&stats);
        for (k, (&new, &old)) in c.iter().zip(&prev).enumerate() {
            assert!(new >= old, "counter {k} went down: {old} -> {new}");
        }
        prev = c;
        assert_eq!(stats.received, pushes);
        assert_eq!(stats.played, audio);
        assert_eq!(stats.missing, missing);
        assert!(stats.ssrc_changes <= stats.resyncs);
        // Conservation: every packet is buffered, played, or dropped and counted (+ pending).
        let accounted = jb.len() as u64
            + stats.played
            + stats.late
            + stats.duplicates
            + stats.overflow
            + stats.oversize
            + stats.discarded;
        assert!(
            accounted <= stats.received && stats.received <= accounted + 1,
            "received {} but accounted {accounted}: {stats:?}",
            stats.received
        );
        assert!(stats.target_delay <= config.max_delay.max(config.ptime) + Duration::from_millis(1));
    }
});
