//! Audio files as the call hears them: any WAV (rate, PCM or G.711) decoded and resampled to
//! the media session's 8 kHz mono PCM.
//!
//! Bounds (media-engine's `prompt` module): a WAV whose header gives an absurd sample rate
//! (outside 1 kHz..=384 kHz), channel count (0 or over 8) or more than ten minutes of audio is
//! refused before anything is decoded, so a prompt is at most 4.8 million samples (9.6 MB) at
//! 8 kHz; a truncated WAV plays the whole samples it holds.

/// Call rate of the media session: prompts are resampled to this before playout.
pub(crate) const RATE: u32 = 8000;

/// Most samples of one prompt at [`RATE`] (ten minutes).
pub(crate) const MAX_SAMPLES: usize =
    RATE as usize * media_engine::prompt::MAX_PROMPT_SECONDS as usize;

/// Decodes and resamples on tokio's blocking pool: a large or slow WAV must not hold up the
/// other calls on this interpreter thread.
pub(crate) async fn decode_off_thread(wav: Vec<u8>) -> anyhow::Result<Vec<i16>> {
    tokio::task::spawn_blocking(move || to_call_audio(&wav))
        .await
        .map_err(|e| anyhow::anyhow!("audio decoding stopped: {e}"))?
}

/// A WAV file (any rate, PCM or G.711) as the call's 8 kHz mono PCM.
pub(crate) fn to_call_audio(wav: &[u8]) -> anyhow::Result<Vec<i16>> {
    let mut samples = media_engine::decode_wav(wav)?.to_rate(RATE).samples;
    // decode_wav bounds the duration; rounding in the resampler may add one sample.
    samples.truncate(MAX_SAMPLES);
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 16-bit mono PCM WAV at `rate` holding `samples`.
    fn wav(rate: u32, samples: &[i16]) -> Vec<u8> {
        let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut out = Vec::new();
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&rate.to_le_bytes());
        out.extend_from_slice(&(rate.wrapping_mul(2)).to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&16u16.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&data);
        out
    }

    #[test]
    fn absurd_rates_are_errors_not_allocations() {
        for rate in [0, 1, 4_000_000_000] {
            assert!(to_call_audio(&wav(rate, &[1000; 100])).is_err(), "{rate}");
        }
        assert_eq!(
            to_call_audio(&wav(16000, &[1000; 1600])).unwrap().len(),
            800
        );
    }

    #[test]
    fn a_truncated_wav_plays_what_is_there() {
        let full = wav(8000, &[1000; 1600]);
        // The data chunk says 3200 bytes; 2001 are there (the last sample cut in half).
        let audio = to_call_audio(&full[..44 + 2001]).unwrap();
        assert_eq!(audio.len(), 1000);
    }
}
