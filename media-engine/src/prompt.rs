//! Prompt audio: WAV decoding (symphonia) to mono 16-bit PCM, and resampling to the 8 kHz the
//! session plays.

use std::borrow::Cow;
use std::io::Cursor;

use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

pub use crate::resample::{MAX_PHASES, MAX_RATE, MAX_TAPS, MIN_RATE, Resampler, resample};

/// Errors from decoding a prompt file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PromptError {
    /// Not a WAV file symphonia can read, or corrupt data.
    #[error("wav: {0}")]
    Decode(#[from] symphonia::core::errors::Error),
    /// The file has no audio track.
    #[error("wav: no audio track")]
    NoAudioTrack,
    /// The track has no codec parameters, sample rate or channel layout.
    #[error("wav: missing stream parameters")]
    MissingParameters,
    /// Not a RIFF/WAVE file, or its chunk structure is broken (no `fmt `/`data` chunk).
    #[error("wav: {0}")]
    NotWav(&'static str),
    /// The sample rate is outside [`MIN_SAMPLE_RATE`]..=[`MAX_SAMPLE_RATE`].
    #[error("wav: unsupported sample rate {0} Hz")]
    UnsupportedRate(u32),
    /// The channel count is 0 or over [`MAX_CHANNELS`], or the block alignment does not fit it.
    #[error("wav: unsupported layout ({channels} channels, {block_align}-byte frames)")]
    UnsupportedLayout {
        /// Channels of the `fmt ` chunk.
        channels: u16,
        /// Bytes per frame of the `fmt ` chunk.
        block_align: u16,
    },
    /// The audio is longer than [`MAX_PROMPT_SECONDS`].
    #[error("wav: {seconds} s of audio, over the {MAX_PROMPT_SECONDS} s a prompt may last")]
    TooLong {
        /// Duration the file holds, in whole seconds.
        seconds: u64,
    },
}

/// Lowest WAV sample rate accepted (Hz).
pub const MIN_SAMPLE_RATE: u32 = crate::resample::MIN_RATE;
/// Highest WAV sample rate accepted (Hz).
pub const MAX_SAMPLE_RATE: u32 = crate::resample::MAX_RATE;
/// Most channels accepted (they are mixed down to mono).
pub const MAX_CHANNELS: u16 = 8;
/// Longest prompt accepted: 10 minutes, 4.8 million samples (9.6 MB) at the call's 8 kHz, and
/// at most `600 * MAX_SAMPLE_RATE` samples at the file's rate while decoding. The duration is
/// checked from the header and the bytes actually present, before anything is decoded.
pub const MAX_PROMPT_SECONDS: u64 = 600;
/// Most RIFF chunks walked before the `data` chunk.
const MAX_CHUNKS: usize = 64;

/// Mono 16-bit PCM at a sample rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pcm {
    /// Samples per second.
    pub sample_rate: u32,
    /// Mono samples.
    pub samples: Vec<i16>,
}

impl Pcm {
    /// This audio at `rate`, resampled if needed.
    pub fn to_rate(&self, rate: u32) -> Pcm {
        Pcm {
            sample_rate: rate,
            samples: resample(&self.samples, self.sample_rate, rate),
        }
    }
}

/// Decodes a WAV file (PCM 8/16/24/32-bit, float, µ-law, A-law; up to [`MAX_CHANNELS`]
/// channels, mixed down to mono by averaging) to 16-bit PCM at the file's rate.
///
/// The header is checked before any decoding: a rate outside
/// [`MIN_SAMPLE_RATE`]..=[`MAX_SAMPLE_RATE`], a channel count over [`MAX_CHANNELS`] or more
/// than [`MAX_PROMPT_SECONDS`] of audio is an error. A truncated file (a `data` chunk shorter
/// than its header says, or cut in the middle of a sample) plays what is there: the whole
/// frames present are decoded.
pub fn decode_wav(bytes: &[u8]) -> Result<Pcm, crate::Error> {
    Ok(decode_wav_inner(bytes)?)
}

/// Widens a 16-byte `fmt ` chunk of a G.711 WAV to the 18-byte WAVEFORMATEX symphonia insists
/// on (many telephony tools write the short form). Other files pass through untouched.
fn widen_g711_fmt(bytes: &[u8]) -> Cow<'_, [u8]> {
    const FMT_AT: usize = 12;
    let is_short_g711 = bytes.len() >= FMT_AT + 8 + 16
        && &bytes[..4] == b"RIFF"
        && &bytes[8..12] == b"WAVE"
        && &bytes[FMT_AT..FMT_AT + 4] == b"fmt "
        && bytes[FMT_AT + 4..FMT_AT + 8] == 16u32.to_le_bytes()
        && matches!(bytes[FMT_AT + 8..FMT_AT + 10], [6 | 7, 0]);
    if !is_short_g711 {
        return Cow::Borrowed(bytes);
    }
    let mut widened = Vec::with_capacity(bytes.len() + 2);
    let riff_len = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    widened.extend_from_slice(b"RIFF");
    widened.extend_from_slice(&riff_len.saturating_add(2).to_le_bytes());
    widened.extend_from_slice(b"WAVEfmt ");
    widened.extend_from_slice(&18u32.to_le_bytes());
    widened.extend_from_slice(&bytes[FMT_AT + 8..FMT_AT + 24]);
    widened.extend_from_slice(&0u16.to_le_bytes()); // cbSize
    widened.extend_from_slice(&bytes[FMT_AT + 24..]);
    Cow::Owned(widened)
}

/// What [`check_wav`] read from the header.
struct WavLayout {
    /// Frames (samples per channel) present in the file.
    frames: u64,
    sample_rate: u32,
}

/// Walks the RIFF chunks up to `data`, checks the `fmt ` chunk and the duration against the
/// bounds, and repairs a truncated `data` chunk: its size is set to the whole frames present,
/// the partial frame at the end is dropped, so the decoder reads a consistent file.
fn check_wav(bytes: Cow<'_, [u8]>) -> Result<(Cow<'_, [u8]>, WavLayout), PromptError> {
    let u32_at = |at: usize| -> Option<u32> {
        let b = bytes.get(at..at + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b = bytes.get(at..at + 2)?;
        Some(u16::from_le_bytes([b[0], b[1]]))
    };
    if bytes.get(..4) != Some(b"RIFF") || bytes.get(8..12) != Some(b"WAVE") {
        return Err(PromptError::NotWav("not a RIFF/WAVE file"));
    }
    let mut at = 12usize;
    let mut format = None;
    for _ in 0..MAX_CHUNKS {
        let id = bytes
            .get(at..at + 4)
            .ok_or(PromptError::NotWav("no data chunk"))?;
        let size = u32_at(at + 4).ok_or(PromptError::NotWav("truncated chunk header"))?;
        let body = at + 8;
        if id == b"fmt " {
            let channels = u16_at(body + 2).ok_or(PromptError::NotWav("short fmt chunk"))?;
            let rate = u32_at(body + 4).ok_or(PromptError::NotWav("short fmt chunk"))?;
            let block_align = u16_at(body + 12).ok_or(PromptError::NotWav("short fmt chunk"))?;
            if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&rate) {
                return Err(PromptError::UnsupportedRate(rate));
            }
            // At most 8 bytes (64-bit float) per sample.
            if channels == 0
                || channels > MAX_CHANNELS
                || block_align < channels
                || block_align > channels * 8
            {
                return Err(PromptError::UnsupportedLayout {
                    channels,
                    block_align,
                });
            }
            format = Some((rate, block_align));
        } else if id == b"data" {
            let (sample_rate, block_align) =
                format.ok_or(PromptError::NotWav("data chunk before fmt chunk"))?;
            let available = bytes.len().saturating_sub(body) as u64;
            let whole = u64::from(size).min(available);
            let whole = whole - whole % u64::from(block_align);
            let frames = whole / u64::from(block_align);
            let seconds = frames / u64::from(sample_rate);
            if frames > MAX_PROMPT_SECONDS * u64::from(sample_rate) {
                return Err(PromptError::TooLong { seconds });
            }
            let layout = WavLayout {
                frames,
                sample_rate,
            };
            if whole == u64::from(size) {
                return Ok((bytes, layout));
            }
            // Truncated (or cut mid-frame): keep the whole frames, say so in the header.
            let end = body + whole as usize;
            let mut repaired = bytes[..end].to_vec();
            repaired[at + 4..body].copy_from_slice(&(whole as u32).to_le_bytes());
            repaired[4..8].copy_from_slice(&((end - 8) as u32).to_le_bytes());
            tracing::debug!(
                declared = size,
                present = whole,
                "truncated wav: playing the frames present"
            );
            return Ok((Cow::Owned(repaired), layout));
        }
        // Chunks are padded to an even size.
        at = body
            .checked_add(size as usize)
            .and_then(|end| end.checked_add(size as usize & 1))
            .ok_or(PromptError::NotWav("chunk size overflows"))?;
    }
    Err(PromptError::NotWav("too many chunks before the data chunk"))
}

fn decode_wav_inner(bytes: &[u8]) -> Result<Pcm, PromptError> {
    let (bytes, layout) = check_wav(widen_g711_fmt(bytes))?;
    // Decoded samples never exceed the frames the header check allowed.
    let max_samples = usize::try_from(layout.frames).unwrap_or(usize::MAX);
    let source = MediaSourceStream::new(Box::new(Cursor::new(bytes)), Default::default());
    let mut hint = Hint::new();
    hint.with_extension("wav");
    let mut format = symphonia::default::get_probe().probe(
        &hint,
        source,
        FormatOptions::default(),
        MetadataOptions::default(),
    )?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or(PromptError::NoAudioTrack)?;
    let track_id = track.id;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or(PromptError::MissingParameters)?;
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(params, &AudioDecoderOptions::default())?;

    let mut sample_rate = params.sample_rate.or(Some(layout.sample_rate));
    let mut samples = Vec::with_capacity(max_samples.min(MAX_PROMPT_SECONDS as usize * 8000));
    let mut interleaved: Vec<i16> = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            // A damaged tail after some audio: play what was decoded.
            Err(e) if !samples.is_empty() => {
                tracing::debug!(error = %e, "wav read stopped early: playing what was decoded");
                break;
            }
            Err(e) => return Err(e.into()),
        };
        if packet.track_id != track_id {
            continue;
        }
        let buffer = match decoder.decode(&packet) {
            Ok(buffer) => buffer,
            Err(e) if !samples.is_empty() => {
                tracing::debug!(error = %e, "wav decode stopped early: playing what was decoded");
                break;
            }
            Err(e) => return Err(e.into()),
        };
        let channels = buffer.spec().channels().count().max(1);
        sample_rate = Some(buffer.spec().rate());
        buffer.copy_to_vec_interleaved(&mut interleaved);
        let room = max_samples.saturating_sub(samples.len());
        samples.extend(interleaved.chunks(channels).take(room).map(|frame| {
            let sum: i32 = frame.iter().map(|&s| i32::from(s)).sum();
            // The mean of i16 values always fits an i16.
            (sum / frame.len() as i32) as i16
        }));
    }
    let sample_rate = sample_rate
        .filter(|r| (MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(r))
        .ok_or(PromptError::MissingParameters)?;
    Ok(Pcm {
        sample_rate,
        samples,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::resample::tests::{crossing_frequency, goertzel_amplitude, sine};

    /// Builds a WAV file: `format` 1 = PCM, 6 = A-law, 7 = µ-law; `data` already encoded.
    pub(crate) fn wav_bytes(
        format: u16,
        channels: u16,
        rate: u32,
        bits: u16,
        data: &[u8],
    ) -> Vec<u8> {
        let block_align = channels * bits / 8;
        // Non-PCM formats carry a cbSize field (WAVEFORMATEX), as sox writes for G.711.
        let fmt_len: u32 = if format == 1 { 16 } else { 18 };
        let mut out = Vec::new();
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&(20 + fmt_len + data.len() as u32).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&fmt_len.to_le_bytes());
        out.extend_from_slice(&format.to_le_bytes());
        out.extend_from_slice(&channels.to_le_bytes());
        out.extend_from_slice(&rate.to_le_bytes());
        out.extend_from_slice(&(rate * u32::from(block_align)).to_le_bytes());
        out.extend_from_slice(&block_align.to_le_bytes());
        out.extend_from_slice(&bits.to_le_bytes());
        if format != 1 {
            out.extend_from_slice(&0u16.to_le_bytes());
        }
        out.extend_from_slice(b"data");
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        out
    }

    pub(crate) fn pcm16_wav(rate: u32, samples: &[i16]) -> Vec<u8> {
        let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        wav_bytes(1, 1, rate, 16, &data)
    }

    #[test]
    fn decodes_a_1khz_pcm16_wav() {
        let tone = sine(1000.0, 16000, 0.5, 12000.0);
        let pcm = decode_wav(&pcm16_wav(16000, &tone)).unwrap();
        assert_eq!(pcm.sample_rate, 16000);
        assert_eq!(pcm.samples, tone);
        let at_8k = pcm.to_rate(8000);
        assert_eq!(at_8k.samples.len(), 4000);
        let f = crossing_frequency(&at_8k.samples[200..3800], 8000);
        assert!((f - 1000.0).abs() < 5.0, "{f}");
    }

    #[test]
    fn decodes_g711_24bit_and_stereo() {
        let tone = sine(1000.0, 8000, 0.25, 12000.0);
        let check = |pcm: Pcm, what: &str| {
            assert_eq!(pcm.sample_rate, 8000, "{what}");
            assert_eq!(pcm.samples.len(), tone.len(), "{what}");
            let a = goertzel_amplitude(&pcm.samples, 8000, 1000.0);
            assert!((a - 12000.0).abs() < 400.0, "{what}: amplitude {a}");
        };
        let ulaw: Vec<u8> = tone
            .iter()
            .map(|&s| crate::codec::g711::linear_to_ulaw(s))
            .collect();
        check(
            decode_wav(&wav_bytes(7, 1, 8000, 8, &ulaw)).unwrap(),
            "µ-law",
        );
        let alaw: Vec<u8> = tone
            .iter()
            .map(|&s| crate::codec::g711::linear_to_alaw(s))
            .collect();
        check(
            decode_wav(&wav_bytes(6, 1, 8000, 8, &alaw)).unwrap(),
            "A-law",
        );
        let s24: Vec<u8> = tone
            .iter()
            .flat_map(|&s| (i32::from(s) << 8).to_le_bytes()[..3].to_vec())
            .collect();
        check(
            decode_wav(&wav_bytes(1, 1, 8000, 24, &s24)).unwrap(),
            "24-bit",
        );
        // Left carries the tone, right is silent: the mono mix is half amplitude.
        let stereo: Vec<u8> = tone
            .iter()
            .flat_map(|&s| [s.to_le_bytes(), [0, 0]].concat())
            .collect();
        let mixed = decode_wav(&wav_bytes(1, 2, 8000, 16, &stereo)).unwrap();
        assert_eq!(mixed.samples.len(), tone.len());
        assert_eq!(mixed.samples[2], tone[2] / 2);
    }

    #[test]
    fn g711_wav_with_short_fmt_chunk() {
        let tone = sine(1000.0, 8000, 0.1, 12000.0);
        let ulaw: Vec<u8> = tone
            .iter()
            .map(|&s| crate::codec::g711::linear_to_ulaw(s))
            .collect();
        let mut short = wav_bytes(7, 1, 8000, 8, &ulaw);
        // Drop cbSize: 16-byte fmt chunk, RIFF size two bytes smaller.
        short.drain(36..38);
        short[16..20].copy_from_slice(&16u32.to_le_bytes());
        let riff = u32::from_le_bytes([short[4], short[5], short[6], short[7]]) - 2;
        short[4..8].copy_from_slice(&riff.to_le_bytes());
        let pcm = decode_wav(&short).unwrap();
        assert_eq!(pcm.samples.len(), tone.len());
        assert_eq!(pcm.samples[2], crate::codec::g711::ulaw_to_linear(ulaw[2]));
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(decode_wav(b"not a wav file at all").is_err());
        assert!(decode_wav(&[]).is_err());
        // A truncated header.
        let wav = pcm16_wav(8000, &[1, 2, 3]);
        assert!(decode_wav(&wav[..20]).is_err());
    }

    /// Overwrites the `fmt ` fields of a [`wav_bytes`] file: channels, rate, block align.
    fn with_fmt(mut wav: Vec<u8>, channels: u16, rate: u32, block_align: u16) -> Vec<u8> {
        wav[22..24].copy_from_slice(&channels.to_le_bytes());
        wav[24..28].copy_from_slice(&rate.to_le_bytes());
        wav[32..34].copy_from_slice(&block_align.to_le_bytes());
        wav
    }

    #[test]
    fn absurd_rates_and_layouts_are_refused_before_decoding() {
        let wav = pcm16_wav(8000, &[1, 2, 3, 4]);
        for rate in [0, 1, 999, 384_001, 4_000_000_000, u32::MAX] {
            let err = decode_wav_inner(&with_fmt(wav.clone(), 1, rate, 2)).unwrap_err();
            assert!(
                matches!(err, PromptError::UnsupportedRate(r) if r == rate),
                "{rate}: {err}"
            );
        }
        for (channels, block_align) in [(0, 2), (9, 18), (u16::MAX, 2), (1, 0), (2, 1), (1, 9)] {
            let err =
                decode_wav_inner(&with_fmt(wav.clone(), channels, 8000, block_align)).unwrap_err();
            assert!(
                matches!(err, PromptError::UnsupportedLayout { .. }),
                "{channels}/{block_align}: {err}"
            );
        }
        // At the edges of the bounds: decoded.
        assert_eq!(
            decode_wav(&with_fmt(wav.clone(), 1, MIN_SAMPLE_RATE, 2))
                .unwrap()
                .samples
                .len(),
            4
        );
        assert_eq!(
            decode_wav(&with_fmt(wav, 1, MAX_SAMPLE_RATE, 2))
                .unwrap()
                .samples
                .len(),
            4
        );
    }

    #[test]
    fn more_than_ten_minutes_is_refused() {
        // 601 s of µ-law at the lowest rate: refused from the header and the bytes present.
        let data = vec![0xffu8; (MIN_SAMPLE_RATE as usize) * 601];
        let err = decode_wav_inner(&wav_bytes(7, 1, MIN_SAMPLE_RATE, 8, &data)).unwrap_err();
        assert!(
            matches!(err, PromptError::TooLong { seconds: 601 }),
            "{err}"
        );
        // Exactly ten minutes is fine.
        let data = &data[..MIN_SAMPLE_RATE as usize * 600];
        let pcm = decode_wav(&wav_bytes(7, 1, MIN_SAMPLE_RATE, 8, data)).unwrap();
        assert_eq!(pcm.samples.len(), data.len());
        // A header claiming 4 GiB with a few bytes present is a truncated file, not a long one.
        let mut wav = wav_bytes(7, 1, 8000, 8, &[0xff; 80]);
        wav[42..46].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_wav(&wav).unwrap().samples.len(), 80);
    }

    #[test]
    fn truncated_wavs_play_what_is_there() {
        let tone = sine(1000.0, 8000, 0.25, 12000.0);
        let wav = pcm16_wav(8000, &tone);
        // Cut at a sample boundary: the data chunk says 4000 bytes, 1600 are there.
        let pcm = decode_wav(&wav[..44 + 1600]).unwrap();
        assert_eq!(pcm.samples, tone[..800]);
        // Cut in the middle of a sample: the whole samples play.
        let pcm = decode_wav(&wav[..44 + 1001]).unwrap();
        assert_eq!(pcm.samples, tone[..500]);
        // Stereo cut in the middle of a frame.
        let stereo: Vec<u8> = tone
            .iter()
            .flat_map(|&s| [s.to_le_bytes(), s.to_le_bytes()].concat())
            .collect();
        let wav = wav_bytes(1, 2, 8000, 16, &stereo);
        let pcm = decode_wav(&wav[..44 + 4 * 300 + 3]).unwrap();
        assert_eq!(pcm.samples, tone[..300]);
        // A data chunk whose size is not a whole number of frames.
        let mut odd = pcm16_wav(8000, &tone[..10]);
        odd[40..44].copy_from_slice(&19u32.to_le_bytes());
        assert_eq!(decode_wav(&odd).unwrap().samples, tone[..9]);
        // Cut inside the data chunk header, or before any audio: nothing to play, an error.
        assert!(decode_wav(&pcm16_wav(8000, &tone)[..42]).is_err());
        assert!(decode_wav(&pcm16_wav(8000, &tone)[..44]).map_or(true, |p| p.samples.is_empty()));
    }

    #[test]
    fn chunks_before_data_are_walked() {
        let tone = sine(500.0, 8000, 0.05, 8000.0);
        let mut wav = pcm16_wav(8000, &tone);
        // An odd-sized chunk (padded) between fmt and data.
        let list = [b"JUNK".as_slice(), &3u32.to_le_bytes(), b"abc\0"].concat();
        wav.splice(36..36, list.iter().copied());
        let riff = u32::from_le_bytes([wav[4], wav[5], wav[6], wav[7]]) + list.len() as u32;
        wav[4..8].copy_from_slice(&riff.to_le_bytes());
        assert_eq!(decode_wav(&wav).unwrap().samples, tone);
        // data before fmt, or no data chunk at all.
        let mut swapped = b"RIFF\0\0\0\0WAVEdata\x02\0\0\0\x01\0".to_vec();
        swapped.extend_from_slice(&wav[12..36]);
        assert!(matches!(
            decode_wav_inner(&swapped),
            Err(PromptError::NotWav(_))
        ));
        assert!(matches!(
            decode_wav_inner(&wav[..36]),
            Err(PromptError::NotWav(_))
        ));
        // A chunk size that overflows.
        let mut huge = wav.clone();
        huge[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
        let _ = decode_wav(&huge);
    }

    #[test]
    fn mangled_wavs_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let base = wav_bytes(1, 2, 16000, 16, &[7u8; 400]);
        for _ in 0..3_000 {
            let mut bytes = base.clone();
            for _ in 0..rng.random_range(1..6) {
                let at = rng.random_range(0..48);
                bytes[at] = rng.random();
            }
            bytes.truncate(rng.random_range(0..=bytes.len()));
            if let Ok(pcm) = decode_wav(&bytes) {
                assert!(pcm.samples.len() <= 200, "{}", pcm.samples.len());
                let _ = pcm.to_rate(8000);
            }
        }
    }
}
