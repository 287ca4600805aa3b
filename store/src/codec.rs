//! A small hand-written binary encoding for stored records.
//!
//! Every value starts with a format version byte ([`VERSION`]); integers are little-endian;
//! a string is a `u32` length then UTF-8 bytes; an `Option` is a `0`/`1` tag then the value;
//! a list is a `u32` count then the items; a socket address is a tag (`4`/`6`), the address
//! bytes and a `u16` port. Decoding checks every length against the bytes left (and against
//! [`MAX_LIST`]), so corrupt or truncated bytes give [`Error::Corrupt`], never a panic or a
//! huge allocation.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::{BindingRecord, Error, Result, SubscriptionRecord, UserRecord};

/// Format version written as the first byte of every value.
pub(crate) const VERSION: u8 = 1;
/// Largest list count accepted when decoding (bindings of one AOR, aliases, route set...).
const MAX_LIST: u32 = 65_536;

#[derive(Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new() -> Self {
        let mut w = Self::default();
        w.u8(VERSION);
        w
    }
    pub(crate) fn finish(self) -> Vec<u8> {
        self.buf
    }
    fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn len(&mut self, n: usize) {
        // Records are built from bounded input; a length past u32 is a programming error.
        self.u32(u32::try_from(n).expect("encoded length fits in u32"));
    }
    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.buf.extend_from_slice(s.as_bytes());
    }
    fn opt_str(&mut self, s: &Option<String>) {
        match s {
            None => self.u8(0),
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
        }
    }
    fn strs(&mut self, v: &[String]) {
        self.len(v.len());
        for s in v {
            self.str(s);
        }
    }
    fn addr(&mut self, a: &SocketAddr) {
        match a.ip() {
            IpAddr::V4(ip) => {
                self.u8(4);
                self.buf.extend_from_slice(&ip.octets());
            }
            IpAddr::V6(ip) => {
                self.u8(6);
                self.buf.extend_from_slice(&ip.octets());
            }
        }
        self.u16(a.port());
    }

    pub(crate) fn user(&mut self, u: &UserRecord) {
        self.str(&u.user);
        self.str(&u.first_name);
        self.str(&u.last_name);
        self.strs(&u.aliases);
        self.opt_str(&u.email);
        self.opt_str(&u.pin_hash);
        self.str(&u.realm);
        self.opt_str(&u.ha1_md5);
        self.opt_str(&u.ha1_sha256);
    }

    pub(crate) fn bindings(&mut self, v: &[BindingRecord]) {
        self.len(v.len());
        for b in v {
            self.str(&b.aor);
            self.str(&b.contact);
            self.u64(b.expires_unix);
            self.u16(b.q);
            self.str(&b.call_id);
            self.u32(b.cseq);
            self.strs(&b.path);
            self.str(&b.transport);
            self.addr(&b.source);
            self.opt_str(&b.instance);
            self.opt_str(&b.user_agent);
        }
    }

    pub(crate) fn subscription(&mut self, s: &SubscriptionRecord) {
        self.str(&s.mailbox);
        self.str(&s.call_id);
        self.str(&s.local_tag);
        self.str(&s.remote_tag);
        self.str(&s.remote_uri);
        self.str(&s.local_uri);
        self.str(&s.remote_target);
        self.strs(&s.route_set);
        self.u64(s.expires_unix);
        self.u32(s.next_cseq);
        self.str(&s.transport);
        self.addr(&s.source);
        self.opt_str(&s.event_id);
    }
}

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// Starts reading a value of kind `what` (named in errors); checks the version byte.
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Result<Self> {
        let mut r = Self { buf, what };
        let v = r.u8()?;
        if v != VERSION {
            return Err(r.err(format!("unknown format version {v}")));
        }
        Ok(r)
    }

    /// Fails unless every byte was consumed.
    pub(crate) fn end(self) -> Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(self.err(format!("{} trailing bytes", self.buf.len())))
        }
    }

    fn err(&self, reason: String) -> Error {
        Error::Corrupt {
            what: self.what,
            reason,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.buf.len() {
            return Err(self.err(format!(
                "truncated: need {n} bytes, {} left",
                self.buf.len()
            )));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn count(&mut self) -> Result<usize> {
        let n = self.u32()?;
        if n > MAX_LIST {
            return Err(self.err(format!("list of {n} items exceeds {MAX_LIST}")));
        }
        Ok(n as usize)
    }
    fn str(&mut self) -> Result<String> {
        let n = self.u32()? as usize;
        let bytes = self.take(n)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(e) => Err(self.err(format!("invalid UTF-8: {e}"))),
        }
    }
    fn opt_str(&mut self) -> Result<Option<String>> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.str()?)),
            t => Err(self.err(format!("bad option tag {t}"))),
        }
    }
    fn strs(&mut self) -> Result<Vec<String>> {
        let n = self.count()?;
        // Each string takes at least its 4-byte length: cap the reservation by what is left.
        let mut v = Vec::with_capacity(n.min(self.buf.len() / 4));
        for _ in 0..n {
            v.push(self.str()?);
        }
        Ok(v)
    }
    fn addr(&mut self) -> Result<SocketAddr> {
        let ip = match self.u8()? {
            4 => IpAddr::V4(Ipv4Addr::from(self.array::<4>()?)),
            6 => IpAddr::V6(Ipv6Addr::from(self.array::<16>()?)),
            t => return Err(self.err(format!("bad address tag {t}"))),
        };
        Ok(SocketAddr::new(ip, self.u16()?))
    }

    pub(crate) fn user(&mut self) -> Result<UserRecord> {
        Ok(UserRecord {
            user: self.str()?,
            first_name: self.str()?,
            last_name: self.str()?,
            aliases: self.strs()?,
            email: self.opt_str()?,
            pin_hash: self.opt_str()?,
            realm: self.str()?,
            ha1_md5: self.opt_str()?,
            ha1_sha256: self.opt_str()?,
        })
    }

    pub(crate) fn bindings(&mut self) -> Result<Vec<BindingRecord>> {
        let n = self.count()?;
        let mut v = Vec::with_capacity(n.min(self.buf.len() / 32));
        for _ in 0..n {
            v.push(BindingRecord {
                aor: self.str()?,
                contact: self.str()?,
                expires_unix: self.u64()?,
                q: self.u16()?,
                call_id: self.str()?,
                cseq: self.u32()?,
                path: self.strs()?,
                transport: self.str()?,
                source: self.addr()?,
                instance: self.opt_str()?,
                user_agent: self.opt_str()?,
            });
        }
        Ok(v)
    }

    pub(crate) fn subscription(&mut self) -> Result<SubscriptionRecord> {
        Ok(SubscriptionRecord {
            mailbox: self.str()?,
            call_id: self.str()?,
            local_tag: self.str()?,
            remote_tag: self.str()?,
            remote_uri: self.str()?,
            local_uri: self.str()?,
            remote_target: self.str()?,
            route_set: self.strs()?,
            expires_unix: self.u64()?,
            next_cseq: self.u32()?,
            transport: self.str()?,
            source: self.addr()?,
            event_id: self.opt_str()?,
        })
    }
}

pub(crate) fn encode_user(u: &UserRecord) -> Vec<u8> {
    let mut w = Writer::new();
    w.user(u);
    w.finish()
}

pub(crate) fn decode_user(b: &[u8]) -> Result<UserRecord> {
    let mut r = Reader::new(b, "user")?;
    let u = r.user()?;
    r.end()?;
    Ok(u)
}

pub(crate) fn encode_bindings(v: &[BindingRecord]) -> Vec<u8> {
    let mut w = Writer::new();
    w.bindings(v);
    w.finish()
}

pub(crate) fn decode_bindings(b: &[u8]) -> Result<Vec<BindingRecord>> {
    let mut r = Reader::new(b, "bindings")?;
    let v = r.bindings()?;
    r.end()?;
    Ok(v)
}

pub(crate) fn encode_subscription(s: &SubscriptionRecord) -> Vec<u8> {
    let mut w = Writer::new();
    w.subscription(s);
    w.finish()
}

pub(crate) fn decode_subscription(b: &[u8]) -> Result<SubscriptionRecord> {
    let mut r = Reader::new(b, "subscription")?;
    let s = r.subscription()?;
    r.end()?;
    Ok(s)
}
