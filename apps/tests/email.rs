//! Voicemail notification against a real SMTP server (aiosmtpd, see support/smtp.rs): the test
//! parses the MIME it received and decodes the attachment back to the recording's exact bytes.

#[path = "support/smtp.rs"]
mod smtp;

use std::path::{Path, PathBuf};
use std::time::Duration;

use apps::send_notice_for_tests;
use smtp::*;

#[test]
fn base64_decoder_round_trips_known_vectors() {
    // RFC 4648 section 10.
    for (plain, enc) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64_decode(enc), plain.as_bytes());
    }
}

/// A recording: a real stock prompt copied under a voicemail-like name.
fn recording(server: &Smtpd) -> (PathBuf, Vec<u8>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../prompts/vm-message-sent.wav");
    let bytes = std::fs::read(src).unwrap();
    let wav = server.dir.join("0007.wav");
    std::fs::write(&wav, &bytes).unwrap();
    (wav, bytes)
}

#[tokio::test]
async fn notice_arrives_with_the_recording_attached() {
    let server = Smtpd::start("notice");
    let (wav, bytes) = recording(&server);
    tokio::time::timeout(
        Duration::from_secs(40),
        send_notice_for_tests(
            &server.config(),
            "Alice Example <alice@example.com>",
            "2001",
            "Bob (2002)",
            "today at three fifteen P M",
            12,
            &wav,
        ),
    )
    .await
    .expect("send is bounded")
    .expect("sent");

    let (env, msg) = server.message(1);
    assert_eq!(env, "voicemail@parley.test\nalice@example.com\n");
    let (headers, body) = split(&msg);
    assert_eq!(
        header(&headers, "from"),
        "\"Parley Voicemail\" <voicemail@parley.test>"
    );
    assert_eq!(
        header(&headers, "to"),
        "\"Alice Example\" <alice@example.com>"
    );
    assert_eq!(
        header(&headers, "subject"),
        "New voicemail from Bob (2002) (0:12)"
    );
    assert!(!header(&headers, "date").is_empty());
    let content_type = header(&headers, "content-type");
    assert!(
        content_type.starts_with("multipart/mixed"),
        "{content_type}"
    );
    let boundary = param(content_type, "boundary");

    let parts: Vec<&str> = body
        .split(&format!("--{boundary}"))
        .skip(1) // the preamble
        .filter(|p| !p.starts_with("--")) // the closing delimiter
        .map(|p| p.strip_prefix("\r\n").unwrap())
        .collect();
    assert_eq!(parts.len(), 2, "{body}");

    let (text_headers, text) = split(parts[0]);
    assert!(header(&text_headers, "content-type").starts_with("text/plain"));
    assert!(text.contains("mailbox 2001"), "{text}");
    assert!(text.contains("today at three fifteen P M"), "{text}");

    let (att_headers, att) = split(parts[1]);
    assert_eq!(header(&att_headers, "content-type"), "audio/wav");
    assert_eq!(header(&att_headers, "content-transfer-encoding"), "base64");
    let disposition = header(&att_headers, "content-disposition");
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert_eq!(param(disposition, "filename"), "msg-0007.wav");
    let decoded = base64_decode(att);
    assert_eq!(decoded.len(), bytes.len());
    assert!(decoded == bytes, "attachment differs from the recording");
}

#[tokio::test]
async fn a_refused_recipient_is_an_error() {
    let server = Smtpd::start("refused");
    let (wav, _) = recording(&server);
    let e = tokio::time::timeout(
        Duration::from_secs(40),
        send_notice_for_tests(
            &server.config(),
            "rejected@example.com",
            "2001",
            "Bob",
            "today",
            3,
            &wav,
        ),
    )
    .await
    .expect("send is bounded")
    .unwrap_err();
    assert!(e.contains("550"), "{e}");
    assert!(!server.dir.join("1.eml").exists());
}
