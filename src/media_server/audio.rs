//! Audio files as the call hears them: any WAV (rate, PCM or G.711) decoded and resampled to
//! the media session's 8 kHz mono PCM.

/// Call rate of the media session: prompts are resampled to this before playout.
pub(crate) const RATE: u32 = 8000;

/// Decodes and resamples on tokio's blocking pool: a large or slow WAV must not hold up the
/// other calls on this interpreter thread.
pub(crate) async fn decode_off_thread(wav: Vec<u8>) -> anyhow::Result<Vec<i16>> {
    tokio::task::spawn_blocking(move || to_call_audio(&wav))
        .await
        .map_err(|e| anyhow::anyhow!("audio decoding stopped: {e}"))?
}

/// A WAV file (any rate, PCM or G.711) as the call's 8 kHz mono PCM.
pub(crate) fn to_call_audio(wav: &[u8]) -> anyhow::Result<Vec<i16>> {
    Ok(media_engine::decode_wav(wav)?.to_rate(RATE).samples)
}
