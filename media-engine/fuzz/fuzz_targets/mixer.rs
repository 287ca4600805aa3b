//! Joins, leaves, pushed frames and mixes on one `Room` (settings from the input: participant
//! bound, talkers, threshold, hangover, tones, Opus complexity and bitrate). At most 200
//! operations and 3 Opus joins per input (libopus is slow). Frames are silence, loud or
//! arbitrary G.711, the wrong size, Opus-looking packets with a 20 ms TOC, or another
//! participant's last mixed payload fed back (valid Opus). Never a panic; after every mix every
//! participant in the room has a frame and nobody else does, G.711 audio is 160 bytes, Opus
//! audio 1-1275 bytes, a silent tick is silence for all, talkers are members and at most
//! `max_talkers`; stale ids are refused; the counters never decrease and add up.
#![no_main]

use libfuzzer_sys::fuzz_target;
use media_engine::mixer::{
    Frame, MAX_PACKET, MixError, MixOutput, OPUS_RATES, ParticipantCodec, ParticipantId, Room,
    RoomConfig, RoomStats,
};

/// Reads the input as a sequence of operations.
struct Ops<'a>(&'a [u8]);

impl<'a> Ops<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
}

fn counters(s: &RoomStats) -> [u64; 8] {
    [
        s.ticks,
        s.silent_ticks,
        s.frames_mixed,
        s.frames_decoded,
        s.frames_missing,
        s.frames_bad,
        s.encodes,
        s.encode_errors,
    ]
}

/// TOC bytes of one 20 ms mono Opus frame (code 0): SILK NB/MB/WB, hybrid SWB/FB, CELT NB/WB/FB.
const TOC_20MS: [u8; 8] = [0x08, 0x28, 0x48, 0x68, 0x78, 0x98, 0xB8, 0xF8];

fuzz_target!(|data: &[u8]| {
    let mut ops = Ops(data);
    let (Some(a), Some(b)) = (ops.byte(), ops.byte()) else {
        return;
    };
    let config = RoomConfig {
        max_participants: 1 + usize::from(a & 0x07),
        max_talkers: 1 + usize::from(a >> 3 & 0x03),
        talk_threshold_dbov: [-45.0, -20.0, -70.0, 0.0][usize::from(a >> 5 & 0x03)],
        hangover_frames: u32::from(b & 0x0F),
        tones: a & 0x80 != 0,
        tone_level_dbfs: if b & 0x10 != 0 { -18.0 } else { 0.0 },
        opus_complexity: i32::from(b >> 5 & 0x03) * 3, // 0, 3, 6, 9
        opus_bitrate: (b & 0x80 != 0).then_some(12_000),
    };
    let mut room = Room::new(config.clone()).expect("valid config");
    let mut out = MixOutput::new();

    let mut members: Vec<(ParticipantId, ParticipantCodec)> = Vec::new();
    let mut gone: Vec<ParticipantId> = Vec::new();
    let mut opus_joins = 0;
    let mut mixes = 0u64;
    let mut pushed_ok = 0u64;
    let mut prev = counters(&room.stats());
    let mut buf = Vec::with_capacity(MAX_PACKET + 1);
    // The last mixed payload of some participant, with its codec: fed back as input.
    let mut echo: Option<(ParticipantCodec, Vec<u8>)> = None;

    for _ in 0..200 {
        let Some(op) = ops.byte() else { break };
        let pick = usize::from(op >> 3);
        match op & 0x07 {
            // Join.
            0 => {
                let codec = match pick & 0x07 {
                    0..=2 => ParticipantCodec::Pcmu,
                    3..=5 => ParticipantCodec::Pcma,
                    6 if opus_joins < 3 => {
                        opus_joins += 1;
                        ParticipantCodec::Opus { rate: OPUS_RATES[(pick >> 3) % OPUS_RATES.len()] }
                    }
                    6 => ParticipantCodec::Pcmu,
                    // An unsupported rate: refused.
                    _ => ParticipantCodec::Opus { rate: 44100 },
                };
                match room.join(codec) {
                    Ok(id) => {
                        assert!(members.len() < config.max_participants);
                        assert!(!members.iter().any(|(m, _)| *m == id));
                        assert_eq!(room.codec(id), Some(codec));
                        members.push((id, codec));
                    }
                    Err(MixError::RoomFull(_)) => {
                        assert_eq!(members.len(), config.max_participants)
                    }
                    Err(MixError::UnsupportedRate(r)) => assert_eq!(r, 44100),
                    Err(e) => panic!("join {codec:?}: {e}"),
                }
            }
            // Leave (a member, or a stale id: refused).
            1 => {
                if !members.is_empty() && pick & 1 == 0 {
                    let (id, _) = members.remove((pick >> 1) % members.len());
                    room.leave(id).expect("member leaves");
                    assert!(!room.contains(id));
                    gone.push(id);
                } else if let Some(&id) = gone.get(pick % gone.len().max(1)) {
                    assert!(matches!(room.leave(id), Err(MixError::UnknownParticipant(_))));
                    assert!(matches!(
                        room.push_frame(id, None),
                        Err(MixError::UnknownParticipant(_))
                    ));
                }
            }
            // Push a frame to a member.
            2..=5 => {
                if members.is_empty() {
                    continue;
                }
                let (id, codec) = members[pick % members.len()];
                let kind = ops.byte().unwrap_or(0);
                buf.clear();
                let payload: Option<&[u8]> = match (kind & 0x07, codec) {
                    (0, _) => None,
                    // Whatever the input holds, any length up to 255 * 6.
                    (1, _) => {
                        let n = usize::from(ops.byte().unwrap_or(0)) * 6;
                        Some(ops.bytes(n))
                    }
                    (2, _) => {
                        // The fed-back payload, whatever its codec.
                        match &echo {
                            Some((_, bytes)) => Some(&bytes[..]),
                            None => None,
                        }
                    }
                    (_, ParticipantCodec::Opus { .. }) => {
                        buf.push(TOC_20MS[usize::from(kind >> 3) % TOC_20MS.len()]);
                        let n = usize::from(ops.byte().unwrap_or(0));
                        buf.extend_from_slice(ops.bytes(n));
                        Some(&buf[..])
                    }
                    // G.711: a loud square wave, silence, or 160 bytes of input.
                    (3 | 4, _) => {
                        buf.extend((0..160).map(|k| if (k / 10) % 2 == 0 { kind } else { kind ^ 0x80 }));
                        Some(&buf[..])
                    }
                    (5, ParticipantCodec::Pcma) => Some(&[0xD5; 160][..]),
                    (5, _) => Some(&[0xFF; 160][..]),
                    _ => {
                        buf.extend_from_slice(ops.bytes(160));
                        buf.resize(160, kind);
                        Some(&buf[..])
                    }
                };
                let valid_size = match (codec, payload) {
                    (_, None) => true,
                    (ParticipantCodec::Opus { .. }, Some(p)) => !p.is_empty() && p.len() <= MAX_PACKET,
                    (_, Some(p)) => p.len() == 160,
                };
                let result = room.push_frame(id, payload);
                pushed_ok += 1;
                match result {
                    Ok(()) => {}
                    Err(MixError::PayloadSize(n)) => assert!(!valid_size, "refused {n} bytes"),
                    Err(MixError::Opus(_) | MixError::FrameDuration { .. }) => {
                        assert!(matches!(codec, ParticipantCodec::Opus { .. }))
                    }
                    Err(e) => panic!("push_frame: {e}"),
                }
            }
            // Mix.
            _ => {
                let summary = room.mix(&mut out);
                mixes += 1;
                assert_eq!(summary.tick, out.tick());
                assert!(summary.talkers <= config.max_talkers);
                assert_eq!(summary.talkers, room.talkers().len());
                assert_eq!(summary.silent, out.is_silent());
                for t in room.talkers() {
                    assert!(members.iter().any(|(m, _)| m == t), "talker {t:?} not in the room");
                }
                for &(id, codec) in &members {
                    let frame = out.frame(id).expect("a member has a frame");
                    match frame {
                        Frame::Silence => {}
                        Frame::Audio(bytes) => {
                            assert!(!summary.silent, "audio on a silent tick");
                            match codec {
                                ParticipantCodec::Pcmu | ParticipantCodec::Pcma => {
                                    assert_eq!(bytes.len(), 160, "G.711 frame for {codec:?}")
                                }
                                ParticipantCodec::Opus { .. } => {
                                    assert!(!bytes.is_empty() && bytes.len() <= MAX_PACKET)
                                }
                            }
                            if pick & 1 == 1 || echo.is_none() {
                                echo = Some((codec, bytes.to_vec()));
                            }
                        }
                    }
                }
                for &id in &gone {
                    assert!(out.frame(id).is_none(), "a frame for {id:?}, who left");
                }
                assert_eq!(out.iter().count(), members.len());
            }
        }
        assert_eq!(room.len(), members.len());
        let stats = room.stats();
        let c = counters(&stats);
        for (k, (&new, &old)) in c.iter().zip(&prev).enumerate() {
            assert!(new >= old, "counter {k} went down: {old} -> {new}");
        }
        prev = c;
        assert_eq!(stats.ticks, mixes);
        assert!(stats.silent_ticks <= stats.ticks);
        assert_eq!(stats.frames_decoded + stats.frames_missing + stats.frames_bad, pushed_ok);
    }
});
