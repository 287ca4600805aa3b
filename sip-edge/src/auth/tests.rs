use std::net::IpAddr;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use super::*;

/// RFC 7616 §3.9.1: Mufasa / "Circle of Life" / http-auth@example.org, GET /dir/index.html.
fn rfc7616(algorithm: &str, response: &str) -> String {
    format!(
        "Digest username=\"Mufasa\",\r\n realm=\"http-auth@example.org\",\r\n \
         uri=\"/dir/index.html\",\r\n algorithm={algorithm},\r\n \
         nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\",\r\n nc=00000001,\r\n \
         cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\",\r\n qop=auth,\r\n \
         response=\"{response}\",\r\n opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
    )
}

#[test]
fn rfc7616_md5_and_sha256() {
    let c = parse_authorization(&rfc7616("MD5", "8ca523f5e9506fed4657c9700eebdbec")).unwrap();
    assert_eq!(c.username, "Mufasa");
    assert_eq!(c.algorithm, Algorithm::Md5);
    assert_eq!(c.nc_value(), Some(1));
    assert!(c.qop_auth);
    assert_eq!(
        c.opaque.as_deref(),
        Some("FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS")
    );
    let ha1 = Algorithm::Md5.hash_hex("Mufasa:http-auth@example.org:Circle of Life");
    assert_eq!(ha1, "3d78807defe7de2157e2b0b6573a855f");
    assert!(verify(&c, "GET", &ha1, Algorithm::Md5));
    assert!(!verify(&c, "POST", &ha1, Algorithm::Md5));
    assert!(
        !verify(&c, "GET", &ha1, Algorithm::Sha256),
        "algorithm mismatch"
    );

    let c = parse_authorization(&rfc7616(
        "SHA-256",
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
    ))
    .unwrap();
    assert_eq!(c.algorithm, Algorithm::Sha256);
    let ha1 = Algorithm::Sha256.hash_hex("Mufasa:http-auth@example.org:Circle of Life");
    assert!(verify(&c, "GET", &ha1, Algorithm::Sha256));
    let wrong = Algorithm::Sha256.hash_hex("Mufasa:http-auth@example.org:circle of life");
    assert!(!verify(&c, "GET", &wrong, Algorithm::Sha256));
}

#[test]
fn sipp_style_md5_qop_auth() {
    // How sipp's [authentication] formats it: no spaces, algorithm last, uppercase hex allowed.
    let h = "Digest username=\"201\",realm=\"parley\",cnonce=\"6b8b4567\",nc=00000001,\
             qop=auth,uri=\"sip:127.0.0.1:5060\",nonce=\"0123abcd\",\
             response=\"E1D1292DB197007B10D66DD74979CD3A\",algorithm=MD5";
    let c = parse_authorization(h).unwrap();
    let ha1 = Algorithm::Md5.hash_hex("201:parley:secret");
    assert_eq!(ha1, "3984e5944f8cdef1b268598e3db3d6a4");
    assert!(verify(&c, "REGISTER", &ha1, Algorithm::Md5));
    assert!(!verify(&c, "INVITE", &ha1, Algorithm::Md5));

    // RFC 2069 form (no qop), algorithm defaulting to MD5, tokens case-insensitive.
    let h = "digest USERNAME=\"201\", Realm=\"parley\", uri=\"sip:127.0.0.1:5060\", \
             nonce=\"0123abcd\", response=\"48fe81daa66ec2bd0b5dee0e6c3851b8\"";
    let c = parse_authorization(h).unwrap();
    assert!(!c.qop_auth && c.nc.is_none());
    assert!(verify(&c, "REGISTER", &ha1, Algorithm::Md5));
}

#[test]
fn parser_rejections() {
    use AuthParseError as E;
    let base = "username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"00\"";
    let p = |s: &str| parse_authorization(s);
    assert!(p(&format!("Digest {base}")).is_ok());
    assert_eq!(p(&format!("Basic {base}")), Err(E::NotDigest));
    assert_eq!(
        p(&format!("Digest {base}, algorithm=MD5-sess")),
        Err(E::UnsupportedAlgorithm("MD5-sess".into()))
    );
    assert_eq!(
        p(&format!(
            "Digest {base}, qop=auth-int, nc=00000001, cnonce=\"c\""
        )),
        Err(E::UnsupportedQop("auth-int".into()))
    );
    assert_eq!(
        p(&format!("Digest {base}, qop=auth, cnonce=\"c\"")),
        Err(E::Missing("nc"))
    );
    assert_eq!(
        p(&format!("Digest {base}, qop=auth, nc=1, cnonce=\"c\"")),
        Err(E::BadNc)
    );
    assert_eq!(
        p(&format!("Digest {base}, qop=auth, nc=00000001")),
        Err(E::Missing("cnonce"))
    );
    assert_eq!(
        p(&format!("Digest {base}, realm=\"x\"")),
        Err(E::Duplicate("realm".into()))
    );
    assert_eq!(p("Digest realm=\"r\""), Err(E::Missing("response")));
    assert_eq!(
        p(&format!("Digest {base}, userhash=true")),
        Err(E::UserHash)
    );
    assert_eq!(
        p(&format!("Digest {}", "x=1,".repeat(40))),
        Err(E::TooManyParams)
    );
    assert_eq!(
        p(&format!("Digest {base}, x=\"{}\"", "a".repeat(5000))),
        Err(E::TooLong)
    );
    assert!(matches!(p("Digest username=\"a"), Err(E::Syntax(_))));
    // Escapes in quoted strings.
    let c =
        p("Digest username=\"a\\\"b\\\\c\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"ab\"")
            .unwrap();
    assert_eq!(c.username, "a\"b\\c");
}

#[test]
fn parser_never_panics_on_garbage() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let valid = rfc7616("MD5", "8ca523f5e9506fed4657c9700eebdbec");
    // Every truncation of a valid header.
    for n in 0..=valid.len() {
        let _ = parse_authorization(&valid[..n]);
    }
    const ALPHABET: &[u8] = b"Digest =,\"\\ \t\r\nabcnqopuri0123456789-";
    for i in 0..50_000 {
        let s = if i % 2 == 0 {
            let n = rng.random_range(0..80);
            let bytes: Vec<u8> = (0..n)
                .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())])
                .collect();
            String::from_utf8(bytes).unwrap()
        } else {
            // A valid header with a few bytes replaced by arbitrary (valid UTF-8) characters.
            let mut chars: Vec<char> = valid.chars().collect();
            for _ in 0..rng.random_range(1..4) {
                let j = rng.random_range(0..chars.len());
                chars[j] = char::from_u32(rng.random_range(0..0x2_0000)).unwrap_or('\u{fffd}');
            }
            let cut = rng.random_range(0..=chars.len());
            chars[..cut].iter().collect()
        };
        let _ = parse_authorization(&s);
    }
}

#[test]
fn nonces() {
    let issuer = NonceIssuer::new([7; 32], "parley");
    let now = 1_700_000_000;
    let n = issuer.issue(now, 1);
    assert_eq!(n.len(), 64);
    assert_eq!(issuer.check(&n, now, 300), NonceState::Valid);
    assert_eq!(issuer.check(&n, now + 300, 300), NonceState::Valid);
    assert_eq!(issuer.check(&n, now + 301, 300), NonceState::Stale);
    // From the future (beyond skew), another realm, another secret, tampered, malformed.
    assert_eq!(issuer.check(&n, now - 31, 300), NonceState::Invalid);
    assert_eq!(
        NonceIssuer::new([7; 32], "other").check(&n, now, 300),
        NonceState::Invalid
    );
    assert_eq!(
        NonceIssuer::new([8; 32], "parley").check(&n, now, 300),
        NonceState::Invalid
    );
    let mut t = n.clone().into_bytes();
    t[3] = if t[3] == b'0' { b'1' } else { b'0' }; // shift the timestamp
    assert_eq!(
        issuer.check(std::str::from_utf8(&t).unwrap(), now, 300),
        NonceState::Invalid
    );
    let mut t = n.clone().into_bytes();
    t[47] = if t[47] == b'a' { b'b' } else { b'a' }; // the MAC
    assert_eq!(
        issuer.check(std::str::from_utf8(&t).unwrap(), now, 300),
        NonceState::Invalid
    );
    assert_eq!(
        issuer.check(&n.to_uppercase(), now, 300),
        NonceState::Invalid
    );
    assert_eq!(issuer.check("", now, 300), NonceState::Invalid);
    assert_eq!(issuer.check(&n[..47], now, 300), NonceState::Invalid);
    assert_eq!(issuer.check(&"é".repeat(24), now, 300), NonceState::Invalid);
    assert_ne!(issuer.issue(now, 1), issuer.issue(now + 1, 1));
    assert_ne!(
        issuer.issue(now, 1),
        issuer.issue(now, 2),
        "same second, other salt"
    );
}

#[test]
fn replayed_nc_rejected_and_table_bounded() {
    let mut counts = NonceCounts::new(3);
    assert!(counts.check_and_record("a", 1));
    assert!(!counts.check_and_record("a", 1), "replay");
    assert!(counts.check_and_record("a", 2));
    assert!(!counts.check_and_record("a", 1), "older count");
    assert!(counts.check_and_record("a", 5), "gaps are fine");
    assert!(!counts.check_and_record("b", 0));
    assert!(counts.check_and_record("b", 1));
    assert!(counts.check_and_record("c", 1));
    assert!(counts.check_and_record("d", 1));
    assert_eq!(counts.len(), 3, "oldest (a) evicted");
    assert!(counts.check_and_record("a", 1));
    assert!(!counts.check_and_record("c", 1));
}

#[test]
fn challenges() {
    let [sha, md5] = challenge_headers("parley", "abc", false);
    assert_eq!(
        sha,
        "Digest realm=\"parley\", nonce=\"abc\", algorithm=SHA-256, qop=\"auth\""
    );
    assert_eq!(
        md5,
        "Digest realm=\"parley\", nonce=\"abc\", algorithm=MD5, qop=\"auth\""
    );
    assert_eq!(
        challenge_header("a\"b", "n", Algorithm::Md5, true),
        "Digest realm=\"a\\\"b\", nonce=\"n\", algorithm=MD5, qop=\"auth\", stale=true"
    );
}

#[test]
fn lockout_after_failures_and_release() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let ip: IpAddr = "192.0.2.7".parse().unwrap();
    let key = ("201".to_string(), ip);
    let other = ("202".to_string(), ip);
    let mut l = Lockout::default();
    for i in 0..4 {
        assert!(!l.record_failure(&key, t0 + s(i * 10)));
        assert!(!l.is_locked(&key, t0 + s(i * 10)));
    }
    assert!(
        l.record_failure(&key, t0 + s(50)),
        "5th failure in 60 s locks"
    );
    assert!(l.is_locked(&key, t0 + s(50)));
    assert!(!l.is_locked(&other, t0 + s(50)), "per (user, ip)");
    assert!(!l.record_failure(&key, t0 + s(60)), "already locked");
    assert!(l.is_locked(&key, t0 + s(349)));
    assert!(!l.is_locked(&key, t0 + s(350)), "released after 300 s");
    // Starts afresh after the lock.
    assert!(!l.record_failure(&key, t0 + s(351)));

    // Failures spread beyond the window do not lock (windows restart every 60 s).
    let mut l = Lockout::default();
    for i in 0..10 {
        assert!(!l.record_failure(&key, t0 + s(i * 20)));
    }
    // A success clears the count.
    let mut l = Lockout::default();
    for i in 0..4 {
        l.record_failure(&key, t0 + s(i));
    }
    l.record_success(&key);
    assert!(!l.record_failure(&key, t0 + s(5)));
    assert_eq!(l.len(), 1);

    // Bounded.
    let mut l = Lockout::new(LockoutConfig {
        capacity: 100,
        ..Default::default()
    });
    for i in 0..1000 {
        l.record_failure(&(i.to_string(), ip), t0);
        if i % 3 == 0 {
            l.record_success(&(i.to_string(), ip));
        }
    }
    assert!(l.len() <= 100);
}

#[test]
fn lockout_log_line_format() {
    let ip: IpAddr = "192.0.2.7".parse().unwrap();
    assert_eq!(
        lockout_log_line("201", ip),
        "auth failure lockout: user=201 ip=192.0.2.7"
    );
    assert_eq!(
        lockout_log_line("x ip=10.0.0.1\n", ip),
        "auth failure lockout: user=x?ip?10.0.0.1? ip=192.0.2.7"
    );
    let v6: IpAddr = "2001:db8::1".parse().unwrap();
    assert!(
        lockout_log_line(&"a".repeat(100), v6)
            .ends_with(&format!("{} ip=2001:db8::1", "a".repeat(64)))
    );
}
