//! Opus (RFC 7587) at 48 kHz mono with 20 ms frames, fed and drained at 8 kHz.

use super::CodecError;
use crate::resample::Resampler;

/// Samples in one 20 ms frame at 48 kHz.
const FRAME_SAMPLES_48K: usize = 960;
/// Largest Opus packet we produce (RFC 6716 allows up to 1275 bytes per frame).
const MAX_PACKET: usize = 1275;
/// Longest frame a peer may send: 120 ms at 48 kHz.
const MAX_DECODED_48K: usize = 5760;

/// Opus encoder and decoder with their 8 kHz <-> 48 kHz resamplers.
pub struct OpusCodec {
    encoder: opus::Encoder,
    decoder: opus::Decoder,
    up: Resampler,
    down: Resampler,
    pcm_48k: Vec<i16>,
    packet: Vec<u8>,
}

impl std::fmt::Debug for OpusCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusCodec").finish_non_exhaustive()
    }
}

impl OpusCodec {
    /// Creates a VoIP-tuned mono encoder and decoder at 48 kHz.
    pub fn new() -> Result<Self, CodecError> {
        Ok(OpusCodec {
            encoder: opus::Encoder::new(48000, opus::Channels::Mono, opus::Application::Voip)?,
            decoder: opus::Decoder::new(48000, opus::Channels::Mono)?,
            up: Resampler::new_live(8000, 48000),
            down: Resampler::new_live(48000, 8000),
            pcm_48k: Vec::with_capacity(MAX_DECODED_48K),
            packet: vec![0; MAX_PACKET],
        })
    }

    /// Encodes 160 samples at 8 kHz (upsampled to one 960-sample frame).
    pub(crate) fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        self.pcm_48k.clear();
        self.up.process(pcm, &mut self.pcm_48k);
        // The live resampler yields exactly 6x its input; guard anyway so libopus never sees a
        // frame size it rejects.
        self.pcm_48k.resize(FRAME_SAMPLES_48K, 0);
        let n = self.encoder.encode(&self.pcm_48k, &mut self.packet)?;
        out.extend_from_slice(&self.packet[..n]);
        Ok(())
    }

    /// Decodes one packet (any Opus frame duration), appending 8 kHz PCM.
    pub(crate) fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError> {
        self.pcm_48k.clear();
        self.pcm_48k.resize(MAX_DECODED_48K, 0);
        let n = self.decoder.decode(payload, &mut self.pcm_48k, false)?;
        self.down
            .process(&self.pcm_48k[..n.min(MAX_DECODED_48K)], out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::FRAME_SAMPLES_8K;
    use crate::resample::tests::{crossing_frequency, goertzel_amplitude};

    #[test]
    fn opus_round_trip_keeps_a_tone() {
        let mut codec = OpusCodec::new().unwrap();
        let tone: Vec<i16> = (0..8000)
            .map(|n| (8000.0 * (std::f64::consts::TAU * 440.0 * n as f64 / 8000.0).sin()) as i16)
            .collect();
        let mut decoded = Vec::new();
        for frame in tone.chunks(FRAME_SAMPLES_8K) {
            let mut payload = Vec::new();
            codec.encode(frame, &mut payload).unwrap();
            assert!(
                !payload.is_empty() && payload.len() < 400,
                "{}",
                payload.len()
            );
            codec.decode(&payload, &mut decoded).unwrap();
        }
        assert_eq!(decoded.len(), 8000);
        let steady = &decoded[2000..];
        let f = crossing_frequency(steady, 8000);
        assert!((f - 440.0).abs() < 10.0, "{f} Hz");
        let a = goertzel_amplitude(&steady[..5600], 8000, 440.0);
        assert!(a > 4000.0, "amplitude {a}");
    }

    #[test]
    fn garbage_payload_is_an_error_not_a_panic() {
        let mut codec = OpusCodec::new().unwrap();
        // TOC byte announcing a code-3 packet with an impossible frame count.
        let result = codec.decode(&[0xFF, 0xFF], &mut Vec::new());
        assert!(result.is_err());
    }
}
