//! Text-to-speech for plain-text prompts: flite (`-voice slt`, ~85 ms a sentence here) run as a
//! subprocess, its 16 kHz WAV decoded and resampled to 8 kHz. A real TTS seam (MRCP or an HTTP
//! engine) replaces this later; without flite installed, text prompts are logged and skipped.

use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, bail};

static SEQ: AtomicU64 = AtomicU64::new(0);

/// Synthesizes `text` to 8 kHz mono PCM.
pub(crate) async fn synthesize(text: &str) -> anyhow::Result<Vec<i16>> {
    let path = std::env::temp_dir().join(format!(
        "parley-tts-{}-{}.wav",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let out = tokio::process::Command::new("flite")
        .args(["-voice", "slt", "-t", text, "-o"])
        .arg(&path)
        .kill_on_drop(true)
        .output()
        .await
        .context("cannot run flite (apt-get install flite)")?;
    let wav = tokio::fs::read(&path).await;
    let _ = tokio::fs::remove_file(&path).await;
    if !out.status.success() {
        bail!(
            "flite failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    super::audio::to_call_audio(&wav.context("flite wrote no audio")?)
}
