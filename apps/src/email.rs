//! Voicemail notification by e-mail: one message per new voicemail, the recording attached.
//!
//! SMTP through lettre on tokio; TLS (implicit or STARTTLS) is rustls with ring and the
//! platform's certificate verifier, as for reqwest, so there is no OpenSSL. Every send is
//! bounded ([`SEND_TIMEOUT`]) and attaches at most [`MAX_ATTACHMENT`] bytes: a voicemail is a
//! few hundred KiB of 8 kHz audio, anything far larger is not one.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::io::AsyncReadExt;

/// The whole of one send: connect, TLS, authenticate, transfer, quit.
pub(crate) const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest recording attached (10 MiB, about 11 minutes of 8 kHz 16-bit audio).
pub(crate) const MAX_ATTACHMENT: u64 = 10 << 20;

/// The outgoing mail relay (the `[smtp]` section of the configuration).
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// `host:port` of the relay; without a port, the usual one for `security` (25, 587, 465).
    pub relay: String,
    /// The sender, `Parley <voicemail@example.com>` or a bare address.
    pub from: String,
    /// How the connection is protected (default: none, for a relay on this host or network).
    #[serde(default)]
    pub security: Security,
    /// Login name, if the relay wants one.
    #[serde(default)]
    pub username: Option<String>,
    /// Password for `username`.
    #[serde(default)]
    pub password: Option<String>,
}

/// Protection of the SMTP connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Plain SMTP (port 25): a local relay.
    #[default]
    None,
    /// Plain connection upgraded with STARTTLS, which must succeed (port 587).
    Starttls,
    /// TLS from the first byte, "SMTPS" (port 465).
    Tls,
}

impl Security {
    fn default_port(self) -> u16 {
        match self {
            Security::None => 25,
            Security::Starttls => 587,
            Security::Tls => 465,
        }
    }
}

/// What one notification says.
#[derive(Clone, Debug)]
pub(crate) struct Notice {
    /// The mailbox owner's address.
    pub(crate) to: String,
    /// The mailbox (extension) the message was left in.
    pub(crate) mailbox: String,
    /// Who called: a name, a number, or "an unknown caller".
    pub(crate) from_caller: String,
    /// When, already formatted for people.
    pub(crate) received: String,
    /// Length of the recording.
    pub(crate) duration_secs: u32,
    /// The recording, attached as `audio/wav`.
    pub(crate) wav_path: PathBuf,
}

/// Sends notices through one relay. Cheap to keep: it connects per message (no pool).
pub(crate) struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// Checks `cfg` (relay, sender address, TLS parameters) without connecting.
    pub(crate) fn new(cfg: &SmtpConfig) -> Result<Self, String> {
        let (host, port) = split_relay(&cfg.relay, cfg.security.default_port())?;
        let from: Mailbox = cfg
            .from
            .parse()
            .map_err(|e| format!("smtp: bad from address {:?}: {e}", cfg.from))?;
        let tls = match cfg.security {
            Security::None => Tls::None,
            Security::Starttls | Security::Tls => {
                let params = TlsParameters::new(host.clone())
                    .map_err(|e| format!("smtp: tls setup for {host}: {e}"))?;
                if cfg.security == Security::Tls {
                    Tls::Wrapper(params)
                } else {
                    Tls::Required(params)
                }
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
            .port(port)
            .tls(tls)
            .timeout(Some(SEND_TIMEOUT));
        match (&cfg.username, &cfg.password) {
            (Some(user), password) => {
                // A password in clear text is only acceptable on this host.
                let loopback =
                    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
                if cfg.security == Security::None && !loopback {
                    return Err(format!(
                        "smtp: refusing to send a password in clear text to {host}: \
                         set security to starttls or tls"
                    ));
                }
                builder = builder.credentials(Credentials::new(
                    user.clone(),
                    password.clone().unwrap_or_default(),
                ));
            }
            (None, Some(_)) => return Err("smtp: password without username".into()),
            (None, None) => {}
        }
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }

    /// Sends `n`: the subject "New voicemail from X (0:12)", a short text, the recording
    /// attached. Fails (never hangs past [`SEND_TIMEOUT`]) on a bad address, a missing or
    /// oversized file, or a relay that refuses.
    pub(crate) async fn send(&self, n: &Notice) -> Result<(), String> {
        let to: Mailbox =
            n.to.parse()
                .map_err(|e| format!("smtp: bad to address {:?}: {e}", n.to))?;
        let wav = read_limited(&n.wav_path, MAX_ATTACHMENT).await?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject(n))
            .multipart(
                MultiPart::mixed()
                    .singlepart(SinglePart::plain(body(n)))
                    .singlepart(
                        Attachment::new(attachment_name(&n.wav_path))
                            .body(wav, ContentType::parse("audio/wav").expect("valid type")),
                    ),
            )
            .map_err(|e| format!("smtp: building the message: {e}"))?;
        match tokio::time::timeout(SEND_TIMEOUT, self.transport.send(message)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("smtp: sending to {}: {e}", n.to)),
            Err(_) => Err(format!(
                "smtp: sending to {}: no answer in {} s",
                n.to,
                SEND_TIMEOUT.as_secs()
            )),
        }
    }
}

/// `host:port`, `[v6]:port`, or a bare host (then `default_port`).
fn split_relay(relay: &str, default_port: u16) -> Result<(String, u16), String> {
    let bad = || format!("smtp: bad relay {relay:?}, expected host:port");
    let relay = relay.trim();
    let (host, port) = if let Some(rest) = relay.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match relay.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (relay, None),
        }
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(bad());
    }
    let port = match port {
        Some(p) => p.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(bad)?,
        None => default_port,
    };
    Ok((host.to_string(), port))
}

/// The file, refused if over `max` bytes (checked while reading, so a file that grows after
/// a size check cannot slip through).
async fn read_limited(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    let err = |e: std::io::Error| format!("smtp: reading {}: {e}", path.display());
    let file = tokio::fs::File::open(path).await.map_err(err)?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(err)?;
    if bytes.len() as u64 > max {
        return Err(format!(
            "smtp: {} is over {} MiB, not attached",
            path.display(),
            max >> 20
        ));
    }
    Ok(bytes)
}

/// Caller-supplied text on one line (a caller ID could carry anything).
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// `m:ss`.
fn duration(secs: u32) -> String {
    format!("{}:{:02}", secs / 60, secs % 60)
}

fn subject(n: &Notice) -> String {
    format!(
        "New voicemail from {} ({})",
        one_line(&n.from_caller),
        duration(n.duration_secs)
    )
}

fn body(n: &Notice) -> String {
    format!(
        "You have a new voicemail in mailbox {}.\n\n\
         From:     {}\n\
         Received: {}\n\
         Length:   {}\n\n\
         The recording is attached. Call your mailbox to save or delete it.\n",
        one_line(&n.mailbox),
        one_line(&n.from_caller),
        one_line(&n.received),
        duration(n.duration_secs)
    )
}

/// `msg-STEM.wav` from the recording's file name (its stem kept to `[A-Za-z0-9_-]`, and not
/// prefixed twice).
fn attachment_name(path: &Path) -> String {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let stem: String = stem
        .strip_prefix("msg-")
        .unwrap_or(stem)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .collect();
    if stem.is_empty() {
        "msg.wav".into()
    } else {
        format!("msg-{stem}.wav")
    }
}

/// Sends one notice through `cfg`: the integration test's way in (apps/tests/email.rs), since
/// [`Mailer`] and [`Notice`] are crate-private. Not an API.
#[doc(hidden)]
#[allow(clippy::too_many_arguments)] // a flat test entry point; Notice stays crate-private
pub async fn send_notice_for_tests(
    cfg: &SmtpConfig,
    to: &str,
    mailbox: &str,
    from_caller: &str,
    received: &str,
    duration_secs: u32,
    wav_path: &Path,
) -> Result<(), String> {
    Mailer::new(cfg)?
        .send(&Notice {
            to: to.into(),
            mailbox: mailbox.into(),
            from_caller: from_caller.into(),
            received: received.into(),
            duration_secs,
            wav_path: wav_path.into(),
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice() -> Notice {
        Notice {
            to: "alice@example.com".into(),
            mailbox: "2001".into(),
            from_caller: "Bob\r\nBcc: x@y".into(),
            received: "today at three fifteen P M".into(),
            duration_secs: 72,
            wav_path: "/var/lib/parley/vm/2001/0007.wav".into(),
        }
    }

    #[test]
    fn subject_and_body() {
        let n = notice();
        assert_eq!(subject(&n), "New voicemail from Bob  Bcc: x@y (1:12)");
        let b = body(&n);
        assert!(b.contains("mailbox 2001"), "{b}");
        assert!(b.contains("Length:   1:12"), "{b}");
        assert_eq!(duration(0), "0:00");
        assert_eq!(duration(12), "0:12");
        assert_eq!(duration(600), "10:00");
    }

    #[test]
    fn attachment_names() {
        assert_eq!(attachment_name(Path::new("/x/0007.wav")), "msg-0007.wav");
        assert_eq!(
            attachment_name(Path::new("/x/msg-0007.wav")),
            "msg-0007.wav"
        );
        assert_eq!(attachment_name(Path::new("/x/a b\"c.wav")), "msg-abc.wav");
        assert_eq!(attachment_name(Path::new("/")), "msg.wav");
    }

    #[test]
    fn relays() {
        assert_eq!(split_relay("mail:2525", 25), Ok(("mail".into(), 2525)));
        assert_eq!(split_relay("mail", 587), Ok(("mail".into(), 587)));
        assert_eq!(split_relay("[::1]:25", 465), Ok(("::1".into(), 25)));
        assert_eq!(split_relay("[::1]", 465), Ok(("::1".into(), 465)));
        for bad in [
            "", ":25", "mail:", "mail:0", "mail:x", "[::1", "[::1]x", "a b:25",
        ] {
            assert!(split_relay(bad, 25).is_err(), "{bad:?}");
        }
    }

    fn cfg(json: &str) -> Result<SmtpConfig, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn config_defaults_and_unknown_fields() {
        let c = cfg(r#"{"relay":"localhost:25","from":"vm@example.com"}"#).unwrap();
        assert_eq!(c.security, Security::None);
        assert!(c.username.is_none() && c.password.is_none());
        let c = cfg(r#"{"relay":"h","from":"f@x","security":"starttls"}"#).unwrap();
        assert_eq!(c.security, Security::Starttls);
        assert!(cfg(r#"{"relay":"h","from":"f@x","security":"ssl"}"#).is_err());
        assert!(cfg(r#"{"relay":"h","from":"f@x","port":25}"#).is_err());
    }

    #[tokio::test]
    async fn new_checks_the_configuration() {
        let ok = |json: &str| Mailer::new(&cfg(json).unwrap());
        assert!(ok(r#"{"relay":"127.0.0.1:25","from":"Parley <vm@example.com>"}"#).is_ok());
        assert!(ok(r#"{"relay":"smtp.example.com","from":"v@x","security":"tls"}"#).is_ok());
        assert!(ok(r#"{"relay":"h:25","from":"not an address"}"#).is_err());
        // Passwords only over TLS, or to this host.
        let e = ok(r#"{"relay":"smtp.example.com","from":"v@x","username":"u","password":"p"}"#)
            .unwrap_err();
        assert!(e.contains("clear text"), "{e}");
        assert!(ok(r#"{"relay":"localhost","from":"v@x","username":"u","password":"p"}"#).is_ok());
        assert!(
            ok(r#"{"relay":"h","from":"v@x","security":"starttls","username":"u","password":"p"}"#)
                .is_ok()
        );
        assert!(ok(r#"{"relay":"h","from":"v@x","password":"p"}"#).is_err());
    }

    #[tokio::test]
    async fn oversized_missing_or_misaddressed_is_refused_before_connecting() {
        let dir = std::env::temp_dir().join(format!("parley-email-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let big = dir.join("big.wav");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_ATTACHMENT + 1)
            .unwrap();
        // Nothing listens on port 9 of the loopback: any attempt to connect would fail
        // differently.
        let m = Mailer::new(&cfg(r#"{"relay":"127.0.0.1:9","from":"v@x"}"#).unwrap()).unwrap();
        let mut n = notice();
        n.wav_path = big.clone();
        let e = m.send(&n).await.unwrap_err();
        assert!(e.contains("over 10 MiB"), "{e}");
        n.wav_path = dir.join("missing.wav");
        let e = m.send(&n).await.unwrap_err();
        assert!(e.contains("reading"), "{e}");
        n.to = "nobody".into();
        let e = m.send(&n).await.unwrap_err();
        assert!(e.contains("bad to address"), "{e}");
        // Exactly the limit is fine as far as the file goes; then the relay is down.
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_ATTACHMENT)
            .unwrap();
        n.to = "alice@example.com".into();
        n.wav_path = big;
        let e = m.send(&n).await.unwrap_err();
        assert!(e.contains("sending to alice@example.com"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
