//! Prompts encoded once per codec: a cached prompt's RTP payloads are made ahead of time, so
//! playing it on a call is a copy per packet instead of an encode (for Opus, 50-90 µs a frame
//! saved on every call that plays it).

use std::sync::Arc;

use crate::codec::{Codec, CodecError, CodecKind, FRAME_SAMPLES_8K};

/// One prompt as the RTP payloads of one codec, 20 ms each, with the PCM it came from (a
/// session whose codec changed meanwhile encodes that instead).
#[derive(Clone, PartialEq, Eq)]
pub struct EncodedPrompt {
    codec: CodecKind,
    pcm: Arc<[i16]>,
    bytes: Vec<u8>,
    /// End offset of each frame's payload in `bytes`.
    ends: Vec<u32>,
}

impl std::fmt::Debug for EncodedPrompt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodedPrompt")
            .field("codec", &self.codec)
            .field("frames", &self.ends.len())
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

impl EncodedPrompt {
    /// Encodes 8 kHz `pcm` for `codec` with an encoder of its own; the last frame is padded
    /// with silence.
    pub fn encode(pcm: Arc<[i16]>, codec: CodecKind) -> Result<Self, CodecError> {
        let mut encoder = Codec::new(codec)?;
        let frames = pcm.len().div_ceil(FRAME_SAMPLES_8K);
        let mut bytes = Vec::with_capacity(frames * 160);
        let mut ends = Vec::with_capacity(frames);
        let mut frame = Vec::with_capacity(FRAME_SAMPLES_8K);
        for chunk in pcm.chunks(FRAME_SAMPLES_8K) {
            frame.clear();
            frame.extend_from_slice(chunk);
            frame.resize(FRAME_SAMPLES_8K, 0);
            encoder.encode(&frame, &mut bytes)?;
            ends.push(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
        }
        Ok(EncodedPrompt {
            codec,
            pcm,
            bytes,
            ends,
        })
    }

    /// The codec of the payloads.
    pub fn codec(&self) -> CodecKind {
        self.codec
    }

    /// The PCM it was encoded from.
    pub fn pcm(&self) -> &Arc<[i16]> {
        &self.pcm
    }

    /// Number of 20 ms frames.
    pub fn frames(&self) -> usize {
        self.ends.len()
    }

    /// The payload of frame `i`.
    pub fn frame(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)? as usize;
        let start = match i.checked_sub(1) {
            Some(prev) => *self.ends.get(prev)? as usize,
            None => 0,
        };
        self.bytes.get(start..end)
    }

    /// Memory held (payloads and PCM), for cache budgets.
    pub fn size_bytes(&self) -> usize {
        self.bytes.len() + self.ends.len() * 4 + self.pcm.len() * 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g711_frames_are_the_encoded_pcm_and_the_tail_is_padded() {
        let pcm: Arc<[i16]> = (0..400).map(|i| (i * 50) as i16).collect();
        let p = EncodedPrompt::encode(pcm.clone(), CodecKind::Pcmu).unwrap();
        assert_eq!(p.frames(), 3);
        let mut codec = Codec::new(CodecKind::Pcmu).unwrap();
        let mut want = Vec::new();
        codec.encode(&pcm[..160], &mut want).unwrap();
        assert_eq!(p.frame(0).unwrap(), &want[..]);
        assert_eq!(p.frame(2).unwrap().len(), 160);
        assert_eq!(
            p.frame(2).unwrap()[80..],
            [0xFF; 80],
            "padded with µ-law silence"
        );
        assert_eq!(p.frame(3), None);
        assert_eq!(p.size_bytes(), 480 + 12 + 800);
    }

    #[test]
    fn opus_frames_decode_back() {
        let pcm: Arc<[i16]> = (0..1600)
            .map(|i| (6000.0 * (i as f64 * 0.2).sin()) as i16)
            .collect();
        let p = EncodedPrompt::encode(pcm, CodecKind::Opus).unwrap();
        assert_eq!(p.frames(), 10);
        let mut decoder = Codec::new(CodecKind::Opus).unwrap();
        let mut out = Vec::new();
        for i in 0..p.frames() {
            decoder.decode(p.frame(i).unwrap(), &mut out).unwrap();
        }
        assert_eq!(out.len(), 1600);
    }
}
