//! Minimal WAV writing for the text platforms' recordings: 8 kHz 16-bit mono PCM.

use std::time::Duration;

const RATE: u32 = 8000;

/// A WAV file holding `samples` (8 kHz, 16-bit, mono).
pub(crate) fn encode(samples: &[i16]) -> Vec<u8> {
    let data_len = u32::try_from(samples.len() * 2).unwrap_or(u32::MAX - 44);
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&RATE.to_le_bytes());
    out.extend_from_slice(&(RATE * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// A recording of `length` of a quiet 440 Hz tone, standing in for the caller's voice.
pub(crate) fn tone(length: Duration) -> Vec<u8> {
    let n = (length.as_millis().min(600_000) as usize) * (RATE as usize) / 1000;
    let samples: Vec<i16> = (0..n)
        .map(|i| {
            let t = i as f32 / RATE as f32;
            ((t * 440.0 * std::f32::consts::TAU).sin() * 3000.0) as i16
        })
        .collect();
    encode(&samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_length() {
        let w = tone(Duration::from_millis(500));
        assert_eq!(&w[..4], b"RIFF");
        assert_eq!(&w[8..16], b"WAVEfmt ");
        assert_eq!(w.len(), 44 + 4000 * 2);
        assert_eq!(u32::from_le_bytes([w[40], w[41], w[42], w[43]]), 8000);
    }
}
