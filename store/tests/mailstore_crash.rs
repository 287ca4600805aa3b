//! kill -9 while deposits stream in: a child process (this test binary, re-run as
//! `deposit_until_killed`) deposits messages in a loop and prints `ack ID TAG` after each
//! `deposit` returns; the parent SIGKILLs it mid-stream, reopens the store, and every
//! acknowledged message must be there, in its folder, with its exact audio. Three rounds on the
//! same store, so recovery after one crash is crashed into again.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parley_store::{Folder, Mailstore};

const CHILD_ENV: &str = "PARLEY_MAILSTORE_CRASH_DIR";

/// 300 ms of 8 kHz PCM whose samples are all `tag`.
fn wav(tag: i16) -> Vec<u8> {
    let n = 2400usize;
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + 2 * n as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&16000u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(2 * n as u32).to_le_bytes());
    for _ in 0..n {
        out.extend_from_slice(&tag.to_le_bytes());
    }
    out
}

fn open(dir: &std::path::Path) -> Mailstore {
    let db = Arc::new(redb::Database::create(dir.join("parley.redb")).expect("open db"));
    Mailstore::open(db, &dir.join("voicemail")).expect("open mailstore")
}

/// The child: deposits until killed (bounded: 60 s).
#[test]
fn deposit_until_killed() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return; // only as the parent's child
    };
    let store = open(std::path::Path::new(&dir));
    let end = Instant::now() + Duration::from_secs(60);
    let mut tag: i16 = std::process::id() as i16;
    while Instant::now() < end {
        tag = tag.wrapping_add(1);
        let m = store
            .deposit("201", "sip:crash@test", &wav(tag), 1)
            .unwrap();
        println!("ack {} {}", m.id, tag);
    }
}

#[test]
fn acknowledged_deposits_survive_kill_9() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("parley-mailcrash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut acked: Vec<(u64, i16)> = Vec::new();
    for round in 0..3 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "deposit_until_killed",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let want = 15 + 7 * round;
        let mut this_round = 0;
        while this_round < want {
            let Some(Ok(line)) = lines.next() else {
                panic!("child ended before {want} deposits");
            };
            if let Some(rest) = line.strip_prefix("ack ") {
                let mut it = rest.split_whitespace();
                let id: u64 = it.next().unwrap().parse().unwrap();
                let tag: i16 = it.next().unwrap().parse().unwrap();
                acked.push((id, tag));
                this_round += 1;
            }
        }
        // SIGKILL, mid-stream: the child is inside its next deposit or between two.
        child.kill().unwrap();
        let _ = child.wait();
        // Acks the child printed before it died were read or lost with the pipe; every one we
        // read must be there.
        let store = open(&dir);
        let listed = store.list("201").unwrap();
        for &(id, tag) in &acked {
            let m = listed
                .iter()
                .find(|m| m.id == id)
                .unwrap_or_else(|| panic!("round {round}: acknowledged message {id} lost"));
            assert_eq!(m.folder, Folder::New);
            assert_eq!(m.duration_ms, 300);
            let audio = std::fs::read(store.audio_path("201", id)).unwrap();
            assert_eq!(audio, wav(tag), "round {round}: message {id} audio");
        }
        // Nothing half-written is left next to them.
        for f in std::fs::read_dir(dir.join("voicemail/201"))
            .unwrap()
            .flatten()
        {
            let name = f.file_name().to_string_lossy().to_string();
            let id: u64 = name
                .strip_suffix(".wav")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("stray file {name}"));
            assert!(listed.iter().any(|m| m.id == id), "orphan file {name}");
        }
        eprintln!(
            "round {round}: {} acknowledged so far, {} stored",
            acked.len(),
            listed.len()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
