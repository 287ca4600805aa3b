use super::*;
use crate::codec::g711;
use crate::resample::tests::goertzel_amplitude;

fn quiet_config() -> RoomConfig {
    RoomConfig {
        tones: false,
        ..RoomConfig::default()
    }
}

/// The far end of one participant: encodes what it says, decodes what it hears.
struct Peer {
    id: ParticipantId,
    codec: ParticipantCodec,
    encoder: Option<opus::Encoder>,
    decoder: Option<opus::Decoder>,
    heard: Vec<i16>,
    /// Ticks with `Frame::Audio`.
    audio_ticks: Vec<bool>,
}

impl Peer {
    fn join(room: &mut Room, codec: ParticipantCodec) -> Peer {
        let id = room.join(codec).unwrap();
        let (encoder, decoder) = match codec {
            ParticipantCodec::Opus { rate } => (
                Some(
                    opus::Encoder::new(rate, opus::Channels::Mono, opus::Application::Voip)
                        .unwrap(),
                ),
                Some(opus::Decoder::new(rate, opus::Channels::Mono).unwrap()),
            ),
            _ => (None, None),
        };
        Peer {
            id,
            codec,
            encoder,
            decoder,
            heard: Vec::new(),
            audio_ticks: Vec::new(),
        }
    }

    fn rate(&self) -> u32 {
        self.codec.pcm_rate()
    }

    fn payload(&mut self, pcm: &[i16]) -> Vec<u8> {
        match self.codec {
            ParticipantCodec::Pcmu => pcm.iter().map(|&s| g711::linear_to_ulaw(s)).collect(),
            ParticipantCodec::Pcma => pcm.iter().map(|&s| g711::linear_to_alaw(s)).collect(),
            ParticipantCodec::Opus { .. } => {
                let mut packet = vec![0; MAX_PACKET];
                let n = self
                    .encoder
                    .as_mut()
                    .unwrap()
                    .encode(pcm, &mut packet)
                    .unwrap();
                packet.truncate(n);
                packet
            }
        }
    }

    /// Says `pcm` (one frame at the peer's rate) this tick.
    fn say(&mut self, room: &mut Room, pcm: &[i16]) {
        let payload = self.payload(pcm);
        room.push_frame(self.id, Some(&payload)).unwrap();
    }

    fn hear(&mut self, out: &MixOutput) {
        let n = self.codec.samples();
        match out.frame(self.id).expect("participant in output") {
            Frame::Audio(payload) => {
                self.audio_ticks.push(true);
                match self.codec {
                    ParticipantCodec::Pcmu => {
                        assert_eq!(payload.len(), 160);
                        self.heard
                            .extend(payload.iter().map(|&c| g711::ulaw_to_linear(c)));
                    }
                    ParticipantCodec::Pcma => {
                        assert_eq!(payload.len(), 160);
                        self.heard
                            .extend(payload.iter().map(|&c| g711::alaw_to_linear(c)));
                    }
                    ParticipantCodec::Opus { .. } => {
                        let mut pcm = vec![0; n];
                        let got = self
                            .decoder
                            .as_mut()
                            .unwrap()
                            .decode(payload, &mut pcm, false)
                            .unwrap();
                        assert_eq!(got, n);
                        self.heard.extend_from_slice(&pcm);
                    }
                }
            }
            Frame::Silence => {
                self.audio_ticks.push(false);
                self.heard.extend(std::iter::repeat_n(0, n));
            }
        }
    }

    /// Amplitude of `freq` in what was heard from tick `from` to the end.
    fn amplitude(&self, freq: f64, from_tick: usize) -> f64 {
        let start = from_tick * self.codec.samples();
        goertzel_amplitude(&self.heard[start..], self.rate(), freq)
    }
}

/// Frame `tick` of a continuous sine.
fn sine_frame(rate: u32, freq: f64, amplitude: f64, tick: usize) -> Vec<i16> {
    let n = (rate / TICKS_PER_SECOND) as usize;
    (tick * n..(tick + 1) * n)
        .map(|i| {
            (amplitude * (std::f64::consts::TAU * freq * i as f64 / f64::from(rate)).sin()) as i16
        })
        .collect()
}

#[test]
fn g711_tables_match_the_reference_codec() {
    for x in i16::MIN..=i16::MAX {
        assert_eq!(ulaw_encode(x), g711::linear_to_ulaw(x), "µ-law {x}");
        assert_eq!(alaw_encode(x), g711::linear_to_alaw(x), "A-law {x}");
    }
    for code in 0..=255u8 {
        assert_eq!(ULAW_DECODE[usize::from(code)], g711::ulaw_to_linear(code));
        assert_eq!(ALAW_DECODE[usize::from(code)], g711::alaw_to_linear(code));
    }
}

#[test]
fn each_participant_hears_the_others_and_not_itself() {
    let mut room = Room::new(quiet_config()).unwrap();
    let voices = [
        (400.0, ParticipantCodec::Pcmu),
        (700.0, ParticipantCodec::Pcma),
        (1100.0, ParticipantCodec::Pcmu),
    ];
    let mut peers: Vec<Peer> = voices
        .iter()
        .map(|&(_, codec)| Peer::join(&mut room, codec))
        .collect();
    let mut out = MixOutput::new();
    for tick in 0..40 {
        for (peer, &(freq, _)) in peers.iter_mut().zip(&voices) {
            peer.say(&mut room, &sine_frame(8000, freq, 6000.0, tick));
        }
        let summary = room.mix(&mut out);
        assert_eq!(summary.talkers, 3);
        // Three talkers, no listener: three N-1 encodes and no group encode.
        assert_eq!(summary.encodes, 3);
        for peer in &mut peers {
            peer.hear(&out);
        }
    }
    for (i, peer) in peers.iter().enumerate() {
        for (j, &(freq, _)) in voices.iter().enumerate() {
            let a = peer.amplitude(freq, 2);
            if i == j {
                assert!(a < 150.0, "participant {i} hears itself at {freq} Hz: {a}");
            } else {
                assert!(a > 5000.0, "participant {i} misses {freq} Hz: {a}");
            }
        }
    }
}

#[test]
fn listeners_share_one_encode_per_codec_group() {
    let mut room = Room::new(quiet_config()).unwrap();
    let mut out = MixOutput::new();
    let listeners: Vec<ParticipantId> = (0..100)
        .map(|_| room.join(ParticipantCodec::Pcmu).unwrap())
        .collect();
    let mut talker = Peer::join(&mut room, ParticipantCodec::Pcmu);
    let silence = [g711::ULAW_SILENCE; 160];

    let tick = |room: &mut Room, out: &mut MixOutput, talker: &mut Peer, n: usize, loud: bool| {
        for &id in &listeners {
            room.push_frame(id, Some(&silence)).unwrap();
        }
        let amplitude = if loud { 8000.0 } else { 0.0 };
        talker.say(room, &sine_frame(8000, 500.0, amplitude, n));
        room.mix(out)
    };

    // 100 silent PCMU listeners + 1 talker: one shared encode + one N-1 encode.
    for n in 0..5 {
        let summary = tick(&mut room, &mut out, &mut talker, n, true);
        assert_eq!((summary.talkers, summary.encodes), (1, 2));
    }
    let first = match out.frame(listeners[0]).unwrap() {
        Frame::Audio(p) => p.as_ptr(),
        Frame::Silence => panic!("listener hears the talker"),
    };
    for &id in &listeners {
        assert!(
            matches!(out.frame(id), Some(Frame::Audio(p)) if p.as_ptr() == first),
            "one shared payload"
        );
    }
    assert!(matches!(out.frame(talker.id), Some(Frame::Audio(p)) if p.as_ptr() != first));

    // Two more codec groups of listeners: one encode each.
    let pcma: Vec<_> = (0..5)
        .map(|_| room.join(ParticipantCodec::Pcma).unwrap())
        .collect();
    let opus: Vec<_> = (0..3)
        .map(|_| room.join(ParticipantCodec::Opus { rate: 8000 }).unwrap())
        .collect();
    for n in 5..10 {
        let summary = tick(&mut room, &mut out, &mut talker, n, true);
        assert_eq!(summary.encodes, 3 + 1);
    }
    for id in pcma.iter().chain(&opus) {
        assert!(matches!(out.frame(*id), Some(Frame::Audio(_))));
    }

    // The talker falls silent: after the hangover nothing is mixed or encoded.
    let before = room.stats().encodes;
    let mut silent_ticks = 0;
    for n in 10..40 {
        let summary = tick(&mut room, &mut out, &mut talker, n, false);
        if summary.silent {
            silent_ticks += 1;
            assert_eq!(summary.encodes, 0);
            assert!(out.iter().all(|(_, frame)| frame == Frame::Silence));
        }
    }
    // Loud up to tick 9, held up to 9 + hangover, silent after.
    assert_eq!(silent_ticks, 30 - room.config().hangover_frames as usize);
    assert_eq!(
        room.stats().encodes - before,
        4 * (30 - silent_ticks as u64)
    );
}

#[test]
fn a_tone_to_100_silent_listeners_costs_one_encode() {
    let mut room = Room::new(RoomConfig::default()).unwrap();
    let ids: Vec<_> = (0..100)
        .map(|_| room.join(ParticipantCodec::Pcmu).unwrap())
        .collect();
    let mut out = MixOutput::new();
    for &id in &ids {
        room.push_frame(id, Some(&[g711::ULAW_SILENCE; 160]))
            .unwrap();
    }
    let summary = room.mix(&mut out);
    assert_eq!(
        (summary.talkers, summary.encodes, summary.silent),
        (0, 1, false)
    );
    let payloads: Vec<_> = ids.iter().map(|&id| out.frame(id).unwrap()).collect();
    assert!(payloads.iter().all(
        |f| matches!(f, Frame::Audio(p) if p.as_ptr() == match payloads[0] {
            Frame::Audio(q) => q.as_ptr(),
            Frame::Silence => std::ptr::null(),
        })
    ));
}

#[test]
fn loud_inputs_clip_without_wrapping() {
    assert_eq!(saturate(100_000), i16::MAX);
    assert_eq!(saturate(-100_000), i16::MIN);
    assert_eq!(saturate(-1234), -1234);

    let mut room = Room::new(quiet_config()).unwrap();
    let mut talkers: Vec<Peer> = (0..3)
        .map(|_| Peer::join(&mut room, ParticipantCodec::Pcmu))
        .collect();
    let mut listener = Peer::join(&mut room, ParticipantCodec::Pcma);
    let mut out = MixOutput::new();
    // A full-scale square wave, in phase on all three lines: sums reach ±96k.
    let square: Vec<i16> = (0..160)
        .map(|i| if (i / 20) % 2 == 0 { 32000 } else { -32000 })
        .collect();
    for _ in 0..10 {
        for t in &mut talkers {
            t.say(&mut room, &square);
        }
        room.mix(&mut out);
        listener.hear(&out);
        for t in &mut talkers {
            t.hear(&out);
        }
    }
    for peer in talkers.iter().chain([&listener]) {
        let last = &peer.heard[peer.heard.len() - 160..];
        for (i, (&heard, &said)) in last.iter().zip(&square).enumerate() {
            assert_eq!(
                heard.signum(),
                said.signum(),
                "sample {i}: {heard} vs {said} (wrapped)"
            );
            assert!(
                heard.unsigned_abs() > 31000,
                "sample {i}: {heard} not at full scale"
            );
        }
    }
}

#[test]
fn only_the_loudest_talkers_are_mixed_and_hangover_bridges_pauses() {
    let mut room = Room::new(RoomConfig {
        hangover_frames: 10,
        ..quiet_config()
    })
    .unwrap();
    assert_eq!(room.config().max_talkers, 3);
    let voices = [
        (400.0, 16000.0),
        (700.0, 8000.0),
        (1100.0, 4000.0),
        (1500.0, 2000.0),
    ];
    let mut talkers: Vec<Peer> = voices
        .iter()
        .map(|_| Peer::join(&mut room, ParticipantCodec::Pcmu))
        .collect();
    let mut listener = Peer::join(&mut room, ParticipantCodec::Pcmu);
    let mut out = MixOutput::new();
    let mut run = |room: &mut Room,
                   talkers: &mut [Peer],
                   listener: &mut Peer,
                   ticks: std::ops::Range<usize>,
                   mute_first: bool| {
        let mut changes = Vec::new();
        for tick in ticks {
            for (i, (t, &(freq, amplitude))) in talkers.iter_mut().zip(&voices).enumerate() {
                let amplitude = if i == 0 && mute_first { 0.0 } else { amplitude };
                t.say(room, &sine_frame(8000, freq, amplitude, tick));
            }
            room.push_frame(listener.id, None).unwrap();
            room.mix(&mut out);
            listener.hear(&out);
            if room.talkers_changed() {
                changes.push(tick);
            }
        }
        changes
    };

    let changes = run(&mut room, &mut talkers, &mut listener, 0..25, false);
    assert_eq!(changes, vec![0]);
    assert_eq!(
        room.talkers(),
        &[talkers[0].id, talkers[1].id, talkers[2].id]
    );
    for &(freq, amplitude) in &voices[..3] {
        let a = listener.amplitude(freq, 1);
        assert!(
            (a - amplitude).abs() < amplitude * 0.1,
            "{freq} Hz at {a}, said {amplitude}"
        );
    }
    assert!(
        listener.amplitude(1500.0, 1) < 50.0,
        "the 4th talker is not mixed"
    );

    // The loudest pauses for 5 frames: the hangover keeps its slot.
    let changes = run(&mut room, &mut talkers, &mut listener, 25..30, true);
    assert!(changes.is_empty());
    assert!(room.talkers().contains(&talkers[0].id));
    assert!(!room.talkers().contains(&talkers[3].id));

    // A long pause: it drops out after the hangover and the 4th takes its slot.
    let heard_from = listener.heard.len() / 160;
    let changes = run(&mut room, &mut talkers, &mut listener, 30..60, true);
    assert_eq!(changes, vec![25 + room.config().hangover_frames as usize]);
    assert!(!room.talkers().contains(&talkers[0].id));
    assert!(room.talkers().contains(&talkers[3].id));
    let tail = heard_from + 15;
    assert!(listener.amplitude(1500.0, tail) > 1800.0);
    assert!(listener.amplitude(400.0, tail) < 50.0);
}

#[test]
fn quiet_lines_are_not_talkers() {
    let mut room = Room::new(quiet_config()).unwrap();
    let mut peers: Vec<Peer> = (0..5)
        .map(|_| Peer::join(&mut room, ParticipantCodec::Pcmu))
        .collect();
    let mut out = MixOutput::new();
    for tick in 0..20 {
        for p in &mut peers {
            // -60 dBov of hum: below the -45 dBov threshold.
            p.say(&mut room, &sine_frame(8000, 60.0, 46.0, tick));
        }
        let summary = room.mix(&mut out);
        assert!(summary.silent && summary.encodes == 0);
    }
    assert_eq!(room.stats().silent_ticks, 20);
}

#[test]
fn join_and_leave_tones_play_for_200_ms() {
    let mut room = Room::new(RoomConfig::default()).unwrap();
    let mut a = Peer::join(&mut room, ParticipantCodec::Pcmu);
    let b = room.join(ParticipantCodec::Pcma).unwrap();
    let mut out = MixOutput::new();
    let mut tick = |room: &mut Room, a: &mut Peer| {
        room.push_frame(a.id, None).unwrap();
        room.push_frame(b, None).unwrap();
        room.mix(&mut out);
        a.hear(&out);
    };
    for _ in 0..15 {
        tick(&mut room, &mut a);
    }
    assert_eq!(
        a.audio_ticks.iter().filter(|&&x| x).count(),
        10,
        "the first join tone"
    );
    assert!(!a.audio_ticks[14]);

    for (joining, [first, second]) in [(true, [440.0, 880.0]), (false, [880.0, 440.0])] {
        let c = if joining {
            room.join(ParticipantCodec::Pcmu).unwrap()
        } else {
            let c = room.join(ParticipantCodec::Pcmu).unwrap();
            for _ in 0..15 {
                tick(&mut room, &mut a);
            }
            room.leave(c).unwrap();
            c
        };
        let start = a.audio_ticks.len();
        for _ in 0..15 {
            if room.contains(c) {
                room.push_frame(c, None).unwrap();
            }
            tick(&mut room, &mut a);
        }
        assert_eq!(
            &a.audio_ticks[start..],
            &[[true; 10].as_slice(), &[false; 5]].concat()[..]
        );
        // 100 ms of each beep (skipping the ramps).
        let beep = |from: usize, freq: f64| {
            goertzel_amplitude(
                &a.heard[(start + from) * 160 + 80..(start + from + 5) * 160 - 80],
                8000,
                freq,
            )
        };
        let peak = 32767.0 * 10f64.powf(-18.0 / 20.0);
        assert!(
            beep(0, first) > peak * 0.85 && beep(0, second) < peak * 0.1,
            "{joining}: {}",
            beep(0, first)
        );
        assert!(
            beep(5, second) > peak * 0.85 && beep(5, first) < peak * 0.1,
            "{joining}: {}",
            beep(5, second)
        );
        if room.contains(c) {
            room.leave(c).unwrap();
            for _ in 0..12 {
                tick(&mut room, &mut a);
            }
        }
    }
}

fn opus_and_g711_hear_each_other(rate: u32) {
    let mut room = Room::new(quiet_config()).unwrap();
    let mut o = Peer::join(&mut room, ParticipantCodec::Opus { rate });
    let mut u = Peer::join(&mut room, ParticipantCodec::Pcmu);
    let mut l = Peer::join(&mut room, ParticipantCodec::Pcma);
    assert_eq!(room.mix_rate(), rate.max(8000));
    let mut out = MixOutput::new();
    for tick in 0..50 {
        o.say(&mut room, &sine_frame(rate, 1000.0, 8000.0, tick));
        u.say(&mut room, &sine_frame(8000, 400.0, 8000.0, tick));
        room.push_frame(l.id, Some(&[g711::ALAW_SILENCE; 160]))
            .unwrap();
        let summary = room.mix(&mut out);
        assert_eq!((summary.talkers, summary.encodes), (2, 3));
        for p in [&mut o, &mut u, &mut l] {
            p.hear(&out);
        }
    }
    let from = 10;
    let (o_hears, o_echo) = (o.amplitude(400.0, from), o.amplitude(1000.0, from));
    assert!(
        o_hears > 6000.0 && o_echo < 400.0,
        "{rate}: Opus hears {o_hears}, itself {o_echo}"
    );
    let (u_hears, u_echo) = (u.amplitude(1000.0, from), u.amplitude(400.0, from));
    assert!(
        u_hears > 6000.0 && u_echo < 400.0,
        "{rate}: PCMU hears {u_hears}, itself {u_echo}"
    );
    let (l400, l1000) = (l.amplitude(400.0, from), l.amplitude(1000.0, from));
    assert!(
        l400 > 6500.0 && l1000 > 6000.0,
        "{rate}: listener hears {l400} and {l1000}"
    );
}

#[test]
fn opus_narrowband_and_g711_hear_each_other() {
    opus_and_g711_hear_each_other(8000);
}

#[test]
fn opus_fullband_and_g711_hear_each_other() {
    opus_and_g711_hear_each_other(48000);
}

#[test]
fn opus_wideband_and_g711_hear_each_other() {
    opus_and_g711_hear_each_other(16000);
}

#[test]
fn mixing_rate_follows_the_widest_participant() {
    let mut room = Room::new(quiet_config()).unwrap();
    let a = room.join(ParticipantCodec::Pcmu).unwrap();
    assert_eq!(room.mix_rate(), 8000);
    let o = room.join(ParticipantCodec::Opus { rate: 48000 }).unwrap();
    assert_eq!(room.mix_rate(), 48000);
    let w = room.join(ParticipantCodec::Opus { rate: 16000 }).unwrap();
    assert_eq!(room.mix_rate(), 48000);
    room.leave(o).unwrap();
    assert_eq!(room.mix_rate(), 16000);
    room.leave(w).unwrap();
    assert_eq!(room.mix_rate(), 8000);
    assert_eq!(room.codec(a), Some(ParticipantCodec::Pcmu));
}

#[test]
fn hostile_input_is_an_error_or_silence_never_a_panic() {
    fn assert_send<T: Send>() {}
    assert_send::<Room>();

    assert!(matches!(
        Room::new(RoomConfig {
            max_participants: 0,
            ..RoomConfig::default()
        }),
        Err(MixError::Config(_))
    ));
    assert!(matches!(
        Room::new(RoomConfig {
            max_talkers: 33,
            ..RoomConfig::default()
        }),
        Err(MixError::Config(_))
    ));
    assert!(matches!(
        Room::new(RoomConfig {
            talk_threshold_dbov: f32::NAN,
            ..RoomConfig::default()
        }),
        Err(MixError::Config(_))
    ));

    let mut room = Room::new(RoomConfig {
        max_participants: 3,
        ..quiet_config()
    })
    .unwrap();
    let mut out = MixOutput::new();
    assert!(room.mix(&mut out).silent, "an empty room mixes nothing");
    assert!(matches!(
        room.join(ParticipantCodec::Opus { rate: 44100 }),
        Err(MixError::UnsupportedRate(44100))
    ));
    let u = room.join(ParticipantCodec::Pcmu).unwrap();
    let mut o = Peer::join(&mut room, ParticipantCodec::Opus { rate: 48000 });
    let gone = room.join(ParticipantCodec::Pcma).unwrap();
    assert!(matches!(
        room.join(ParticipantCodec::Pcmu),
        Err(MixError::RoomFull(3))
    ));
    room.leave(gone).unwrap();
    assert!(matches!(
        room.leave(gone),
        Err(MixError::UnknownParticipant(_))
    ));
    assert!(matches!(
        room.push_frame(gone, None),
        Err(MixError::UnknownParticipant(_))
    ));
    let reused = room.join(ParticipantCodec::Pcma).unwrap();
    assert_eq!(reused.index(), gone.index());
    assert!(
        matches!(
            room.push_frame(gone, None),
            Err(MixError::UnknownParticipant(_))
        ),
        "stale id"
    );
    let bogus = ParticipantId {
        room: room.tag,
        slot: 1_000_000,
        generation: 0,
    };
    assert!(matches!(
        room.push_frame(bogus, None),
        Err(MixError::UnknownParticipant(_))
    ));
    let mut other = Room::new(quiet_config()).unwrap();
    let foreign = other.join(ParticipantCodec::Pcmu).unwrap();
    assert_eq!(foreign.index(), u.index());
    assert!(
        matches!(
            room.push_frame(foreign, None),
            Err(MixError::UnknownParticipant(_))
        ),
        "another room's id"
    );

    // Wrong G.711 sizes: an error, and silence in the mix.
    for len in [0, 1, 80, 159, 161, 320, 1500] {
        assert!(
            matches!(room.push_frame(u, Some(&vec![0x00; len])), Err(MixError::PayloadSize(n)) if n == len)
        );
        room.mix(&mut out);
        assert_eq!(out.frame(reused), Some(Frame::Silence), "{len} bytes");
    }
    // Opus: a 60 ms packet, oversize and empty payloads, then random garbage.
    let mut long = vec![0; MAX_PACKET];
    let mut encoder =
        opus::Encoder::new(48000, opus::Channels::Mono, opus::Application::Voip).unwrap();
    let n = encoder
        .encode(&sine_frame(48000, 440.0, 8000.0, 0).repeat(3), &mut long)
        .unwrap();
    assert!(room.push_frame(o.id, Some(&long[..n])).is_err());
    assert!(matches!(
        room.push_frame(o.id, Some(&[])),
        Err(MixError::PayloadSize(0))
    ));
    assert!(matches!(
        room.push_frame(o.id, Some(&[0xFC; 1276])),
        Err(MixError::PayloadSize(1276))
    ));
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut random = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..2000 {
        let len = (random() % 1400) as usize;
        let payload: Vec<u8> = (0..len).map(|_| random() as u8).collect();
        let _ = room.push_frame(o.id, Some(&payload));
        let _ = room.push_frame(u, Some(&payload));
        let _ = room.push_frame(
            reused,
            if len.is_multiple_of(3) {
                None
            } else {
                Some(&payload)
            },
        );
        room.mix(&mut out);
        assert!(out.frame(foreign).is_none());
        assert_eq!(out.iter().count(), 3);
    }
    assert!(room.stats().frames_bad > 2000);
    // Missing frames (Opus PLC, then silence), then the room still works.
    for _ in 0..10 {
        room.push_frame(o.id, None).unwrap();
        room.mix(&mut out);
    }
    for tick in 0..20 {
        o.say(&mut room, &sine_frame(48000, 700.0, 8000.0, tick));
        room.push_frame(u, Some(&[g711::ULAW_SILENCE; 160]))
            .unwrap();
        room.mix(&mut out);
    }
    assert_eq!(room.talkers(), &[o.id]);
    assert!(matches!(out.frame(u), Some(Frame::Audio(p)) if p.len() == 160));
}
