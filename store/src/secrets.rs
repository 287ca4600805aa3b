//! Secrets: digest HA1s (RFC 7616 §3.4.2) and slow PIN hashes (argon2id).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use md5::Md5;
use sha2::{Digest, Sha256};

/// argon2id memory cost in KiB: with [`PIN_T_COST`], one hash takes about 10–30 ms on one
/// core of a small server (optimised build). PINs are short, so the hash only slows offline
/// guessing of a stolen database; online guessing is bounded by lockouts.
const PIN_M_COST: u32 = 8 * 1024;
const PIN_T_COST: u32 = 3;
/// Stored hashes with a higher cost than these are refused by [`verify_pin`] (a tampered
/// record must not make a login take minutes).
const MAX_M_COST: u32 = 256 * 1024;
const MAX_T_COST: u32 = 16;
/// Longest PHC string [`verify_pin`] parses.
const MAX_PHC: usize = 256;

/// `MD5(user:realm:password)` as lowercase hex (the HA1 of RFC 7616 §3.4.2, algorithm MD5).
pub fn ha1_md5(user: &str, realm: &str, password: &str) -> String {
    let mut h = Md5::new();
    h.update(format!("{user}:{realm}:{password}"));
    hex(&h.finalize())
}

/// `SHA-256(user:realm:password)` as lowercase hex (RFC 7616 §3.4.2, algorithm SHA-256).
pub fn ha1_sha256(user: &str, realm: &str, password: &str) -> String {
    let mut h = Sha256::new();
    h.update(format!("{user}:{realm}:{password}"));
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Whether `pin` is a valid PIN: 4 to 10 ASCII digits.
pub fn is_valid_pin(pin: &str) -> bool {
    (4..=10).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit())
}

fn argon2(m_cost: u32, t_cost: u32) -> Argon2<'static> {
    let params = Params::new(m_cost, t_cost, 1, None).expect("valid argon2 params");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a PIN with argon2id and a random 16-byte salt; returns the PHC string
/// (`$argon2id$v=19$m=8192,t=3,p=1$<salt>$<hash>`). Callers check [`is_valid_pin`] first.
pub fn hash_pin(pin: &str) -> String {
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).expect("16-byte salt encodes");
    argon2(PIN_M_COST, PIN_T_COST)
        .hash_password(pin.as_bytes(), &salt)
        .expect("argon2 hashes a short PIN")
        .to_string()
}

/// Whether `pin` matches the PHC string `phc` made by [`hash_pin`]. A PIN that is not 4–10
/// digits (checked before any hashing), a malformed hash, an
/// algorithm other than argon2id, or costs past sane bounds give `false`.
pub fn verify_pin(pin: &str, phc: &str) -> bool {
    if !is_valid_pin(pin) || phc.len() > MAX_PHC {
        return false;
    }
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    if hash.algorithm.as_str() != "argon2id" {
        return false;
    }
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    if params.m_cost() > MAX_M_COST || params.t_cost() > MAX_T_COST || params.p_cost() > 4 {
        return false;
    }
    Argon2::default()
        .verify_password(pin.as_bytes(), &hash)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ha1_known_values() {
        // RFC 7616 §3.9.1: user Mufasa, realm http-auth@example.org, password "Circle of Life".
        assert_eq!(
            ha1_md5("Mufasa", "http-auth@example.org", "Circle of Life"),
            "3d78807defe7de2157e2b0b6573a855f"
        );
        assert_eq!(
            ha1_sha256("Mufasa", "http-auth@example.org", "Circle of Life"),
            "7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232"
        );
    }

    #[test]
    fn pins() {
        assert!(is_valid_pin("1234"));
        assert!(is_valid_pin("0123456789"));
        assert!(!is_valid_pin("123"));
        assert!(!is_valid_pin("12345678901"));
        assert!(!is_valid_pin("12a4"));
        assert!(!is_valid_pin("١٢٣٤")); // non-ASCII digits
        let start = std::time::Instant::now();
        let h = hash_pin("4321");
        eprintln!("hash_pin took {:?}", start.elapsed());
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_pin("4321", &h));
        assert!(!verify_pin("1234", &h));
        assert_ne!(h, hash_pin("4321"), "random salt");
        assert!(!verify_pin("4321", "garbage"));
        assert!(!verify_pin("4321", ""));
        assert!(!verify_pin(
            "4321",
            "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaA"
        ));
    }
}
