//! Audio codecs behind one small interface: 20 ms of 8 kHz mono PCM in, one RTP payload out.
//!
//! The session always works on 8 kHz PCM (prompts are resampled to 8 kHz once, when loaded), so
//! G.711 maps samples one to one and [`Codec::Opus`] resamples 8 kHz <-> 48 kHz inside.

pub mod g711;
mod opus_codec;

pub use opus_codec::OpusCodec;

/// Samples in one 20 ms frame at the session's 8 kHz PCM rate.
pub const FRAME_SAMPLES_8K: usize = 160;

/// Errors from encoding or decoding a frame.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// libopus rejected the frame or the configuration.
    #[error("opus: {0}")]
    Opus(#[from] opus::Error),
    /// The PCM frame did not hold exactly 20 ms at 8 kHz.
    #[error("frame has {0} samples, expected 160")]
    FrameSize(usize),
}

/// The audio codecs the engine negotiates, in no particular preference order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CodecKind {
    /// G.711 µ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
    /// Opus (RFC 7587): always `opus/48000/2` in SDP, sent as mono.
    Opus,
}

impl CodecKind {
    /// RTP clock rate (Hz), which sets the timestamp step: `clock_rate / 50` per 20 ms.
    pub fn clock_rate(self) -> u32 {
        match self {
            CodecKind::Pcmu | CodecKind::Pcma => 8000,
            CodecKind::Opus => 48000,
        }
    }

    /// RTP timestamp increment of one 20 ms packet.
    pub fn timestamp_step(self) -> u32 {
        self.clock_rate() / 50
    }

    /// Encoding name as written in `a=rtpmap`.
    pub fn encoding_name(self) -> &'static str {
        match self {
            CodecKind::Pcmu => "PCMU",
            CodecKind::Pcma => "PCMA",
            CodecKind::Opus => "opus",
        }
    }

    /// Channel count written in `a=rtpmap` (RFC 7587 mandates `/2` for Opus).
    pub fn rtpmap_channels(self) -> Option<u8> {
        match self {
            CodecKind::Pcmu | CodecKind::Pcma => None,
            CodecKind::Opus => Some(2),
        }
    }

    /// The RFC 3551 static payload type, if the codec has one.
    pub fn static_payload_type(self) -> Option<u8> {
        match self {
            CodecKind::Pcmu => Some(0),
            CodecKind::Pcma => Some(8),
            CodecKind::Opus => None,
        }
    }
}

/// A codec instance with its state (Opus keeps encoder/decoder and resampler history).
#[derive(Debug)]
#[non_exhaustive]
pub enum Codec {
    /// G.711 µ-law.
    Pcmu,
    /// G.711 A-law.
    Pcma,
    /// Opus at 48 kHz mono, fed from 8 kHz.
    Opus(Box<OpusCodec>),
}

impl Codec {
    /// Creates a codec instance of `kind`.
    pub fn new(kind: CodecKind) -> Result<Self, CodecError> {
        Ok(match kind {
            CodecKind::Pcmu => Codec::Pcmu,
            CodecKind::Pcma => Codec::Pcma,
            CodecKind::Opus => Codec::Opus(Box::new(OpusCodec::new()?)),
        })
    }

    /// Which codec this is.
    pub fn kind(&self) -> CodecKind {
        match self {
            Codec::Pcmu => CodecKind::Pcmu,
            Codec::Pcma => CodecKind::Pcma,
            Codec::Opus(_) => CodecKind::Opus,
        }
    }

    /// Encodes exactly 20 ms of 8 kHz PCM ([`FRAME_SAMPLES_8K`] samples), appending the payload.
    pub fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        if pcm.len() != FRAME_SAMPLES_8K {
            return Err(CodecError::FrameSize(pcm.len()));
        }
        match self {
            Codec::Pcmu => out.extend(pcm.iter().map(|&s| g711::linear_to_ulaw(s))),
            Codec::Pcma => out.extend(pcm.iter().map(|&s| g711::linear_to_alaw(s))),
            Codec::Opus(opus) => opus.encode(pcm, out)?,
        }
        Ok(())
    }

    /// Decodes one payload, appending 8 kHz PCM.
    pub fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError> {
        match self {
            Codec::Pcmu => out.extend(payload.iter().map(|&c| g711::ulaw_to_linear(c))),
            Codec::Pcma => out.extend(payload.iter().map(|&c| g711::alaw_to_linear(c))),
            Codec::Opus(opus) => opus.decode(payload, out)?,
        }
        Ok(())
    }

    /// The payload of 20 ms of silence, cheap for G.711 (no encoder call).
    pub fn encode_silence(&mut self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        match self {
            Codec::Pcmu => out.extend([g711::ULAW_SILENCE; FRAME_SAMPLES_8K]),
            Codec::Pcma => out.extend([g711::ALAW_SILENCE; FRAME_SAMPLES_8K]),
            Codec::Opus(opus) => opus.encode(&[0; FRAME_SAMPLES_8K], out)?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f32, amplitude: f32) -> Vec<i16> {
        (0..FRAME_SAMPLES_8K)
            .map(|n| (amplitude * (std::f32::consts::TAU * freq * n as f32 / 8000.0).sin()) as i16)
            .collect()
    }

    #[test]
    fn g711_codecs_round_trip_a_frame() {
        for kind in [CodecKind::Pcmu, CodecKind::Pcma] {
            let mut codec = Codec::new(kind).unwrap();
            let pcm = tone(1000.0, 8000.0);
            let mut payload = Vec::new();
            codec.encode(&pcm, &mut payload).unwrap();
            assert_eq!(payload.len(), 160);
            let mut back = Vec::new();
            codec.decode(&payload, &mut back).unwrap();
            assert_eq!(back.len(), 160);
            for (a, b) in pcm.iter().zip(&back) {
                assert!(
                    (i32::from(*a) - i32::from(*b)).abs() <= 256,
                    "{kind:?}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn silence_payloads() {
        let mut out = Vec::new();
        Codec::Pcmu.encode_silence(&mut out).unwrap();
        assert!(out.len() == 160 && out.iter().all(|&b| b == 0xFF));
        out.clear();
        Codec::Pcma.encode_silence(&mut out).unwrap();
        assert!(out.len() == 160 && out.iter().all(|&b| b == 0xD5));
    }

    #[test]
    fn wrong_frame_size_is_an_error() {
        let err = Codec::Pcmu.encode(&[0; 80], &mut Vec::new()).unwrap_err();
        assert!(matches!(err, CodecError::FrameSize(80)));
    }

    #[test]
    fn codec_kind_rtp_parameters() {
        assert_eq!(CodecKind::Pcmu.timestamp_step(), 160);
        assert_eq!(CodecKind::Opus.timestamp_step(), 960);
        assert_eq!(CodecKind::Pcma.static_payload_type(), Some(8));
        assert_eq!(CodecKind::Opus.static_payload_type(), None);
    }
}
