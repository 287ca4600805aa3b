//! Prompt audio: WAV decoding (symphonia) to mono 16-bit PCM, and resampling to the 8 kHz the
//! session plays.

use std::borrow::Cow;
use std::io::Cursor;

use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

pub use crate::resample::{Resampler, resample};

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
}

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

/// Decodes a WAV file (PCM 8/16/24/32-bit, float, µ-law, A-law; any channel count, mixed down
/// to mono by averaging) to 16-bit PCM at the file's rate.
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

fn decode_wav_inner(bytes: &[u8]) -> Result<Pcm, PromptError> {
    let bytes = widen_g711_fmt(bytes);
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

    let mut sample_rate = params.sample_rate;
    let mut samples = Vec::new();
    let mut interleaved: Vec<i16> = Vec::new();
    while let Some(packet) = format.next_packet()? {
        if packet.track_id != track_id {
            continue;
        }
        let buffer = decoder.decode(&packet)?;
        let channels = buffer.spec().channels().count().max(1);
        sample_rate = Some(buffer.spec().rate());
        buffer.copy_to_vec_interleaved(&mut interleaved);
        samples.extend(interleaved.chunks(channels).map(|frame| {
            let sum: i32 = frame.iter().map(|&s| i32::from(s)).sum();
            // The mean of i16 values always fits an i16.
            (sum / frame.len() as i32) as i16
        }));
    }
    let sample_rate = sample_rate
        .filter(|&r| r > 0)
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
}
