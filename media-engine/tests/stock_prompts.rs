//! The stock prompts shipped in `prompts/` decode to non-silent 8 kHz mono PCM and survive a
//! round trip through the resampler at the rates prompts are commonly recorded at.

use std::path::PathBuf;

use media_engine::{decode_wav, resample};

fn prompt_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../prompts");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "wav"))
        .collect();
    files.sort();
    files
}

fn rms(samples: &[i16]) -> f64 {
    let sum: f64 = samples.iter().map(|&s| f64::from(s).powi(2)).sum();
    (sum / samples.len().max(1) as f64).sqrt()
}

#[test]
fn stock_prompts_decode_to_audible_8k_mono() {
    let files = prompt_files();
    assert!(!files.is_empty(), "no stock prompts found");
    for path in files {
        let bytes = std::fs::read(&path).unwrap();
        let pcm = decode_wav(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let seconds = pcm.samples.len() as f64 / f64::from(pcm.sample_rate);
        // ARCHITECTURE.md: stock prompts are 8 or 16 kHz mono; sessions play 8 kHz.
        assert!(
            [8000, 16000].contains(&pcm.sample_rate),
            "{}",
            path.display()
        );
        let pcm = pcm.to_rate(8000);
        assert!(
            (0.3..30.0).contains(&seconds),
            "{}: {seconds} s",
            path.display()
        );
        // Normalised to -3 dBFS peak speech: clearly not silence.
        let level = rms(&pcm.samples);
        assert!(level > 500.0, "{}: rms {level}", path.display());

        // 8 kHz -> 16 kHz -> 8 kHz keeps length and level (speech is band-limited below 4 kHz).
        let wide = resample(&pcm.samples, 8000, 16000);
        assert_eq!(wide.len(), pcm.samples.len() * 2);
        let back = resample(&wide, 16000, 8000);
        assert_eq!(back.len(), pcm.samples.len());
        let ratio = rms(&back) / level;
        assert!(
            (0.9..1.05).contains(&ratio),
            "{}: level ratio {ratio}",
            path.display()
        );
    }
}
