//! Incremental framing of a byte stream (TCP) into SIP messages.
//!
//! [`StreamFramer`] keeps what it learnt between reads: how far the search for the empty line
//! got and, once the head is parsed, the total length of the message, so each byte is scanned
//! once however the stream is chunked. Decisions depend only on the bytes, never on where the
//! reads split them: feeding a stream in any chunks yields the same frames as feeding it whole.

use bytes::{Bytes, BytesMut};

use super::ParseError;
use super::parse::{content_length, parse_head_bytes};

/// Default bound on one message (head + body) on a stream, and so on what a connection
/// buffers before a message is complete.
pub const STREAM_MAX_MESSAGE: usize = 64 * 1024;

/// One unit cut from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete message (head and Content-Length octets of body), without leading CRLFs.
    Message(Bytes),
    /// A CRLFCRLF keep-alive ping between messages; answer with a CRLF pong (RFC 5626 §3.5.1).
    Ping,
}

const PING: &[u8] = b"\r\n\r\n";

/// Incremental stream framer; see the module docs.
#[derive(Debug)]
pub struct StreamFramer {
    buf: BytesMut,
    /// Where the search for the empty line resumes.
    scan: usize,
    /// Total length of the message at the front, once its head has been parsed.
    pending: Option<usize>,
    max_message: usize,
    failed: Option<ParseError>,
}

impl Default for StreamFramer {
    fn default() -> Self {
        StreamFramer::new(STREAM_MAX_MESSAGE)
    }
}

impl StreamFramer {
    /// A framer refusing messages (head + body) above `max_message` bytes.
    pub fn new(max_message: usize) -> StreamFramer {
        StreamFramer {
            buf: BytesMut::new(),
            scan: 0,
            pending: None,
            max_message,
            failed: None,
        }
    }

    /// Appends received bytes; call [`StreamFramer::next_frame`] until it returns `Ok(None)`.
    pub fn push(&mut self, data: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(data);
        }
    }

    /// Bytes held (at most one incomplete message once `next_frame` returned `Ok(None)`).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete frame; `Ok(None)` = more bytes needed. After an error the stream
    /// cannot be resynchronised (RFC 3261 §18.3): the same error is returned again; close.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ParseError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let r = self.step();
        if let Err(e) = r {
            self.failed = Some(e);
            self.buf = BytesMut::new();
        }
        r
    }

    fn step(&mut self) -> Result<Option<Frame>, ParseError> {
        if self.pending.is_none() {
            // Between messages: CRLFCRLF is a ping; any other CR or LF is skipped (§7.5).
            loop {
                match self.buf.first() {
                    None => return Ok(None),
                    Some(b'\r' | b'\n') => {}
                    Some(_) => break,
                }
                if self.buf.starts_with(PING) {
                    let _ = self.buf.split_to(PING.len());
                    return Ok(Some(Frame::Ping));
                }
                if PING.starts_with(&self.buf) {
                    return Ok(None); // maybe a ping: wait for the rest
                }
                let _ = self.buf.split_to(1);
            }
            let Some(body_start) = self.find_head_end() else {
                if self.buf.len() >= self.max_message {
                    return Err(ParseError::TooLarge);
                }
                return Ok(None);
            };
            if body_start > self.max_message {
                return Err(ParseError::TooLarge);
            }
            let head = parse_head_bytes(&self.buf[..body_start])?.ok_or(ParseError::Truncated)?;
            debug_assert_eq!(head.body_start, body_start);
            let body_len = content_length(&self.buf, &head.headers)?.unwrap_or(0);
            let total = body_start
                .checked_add(body_len)
                .filter(|t| *t <= self.max_message)
                .ok_or(ParseError::TooLarge)?;
            self.pending = Some(total);
        }
        let total = self.pending.unwrap_or(0);
        if self.buf.len() < total {
            return Ok(None);
        }
        self.pending = None;
        self.scan = 0;
        Ok(Some(Frame::Message(self.buf.split_to(total).freeze())))
    }

    /// Offset just after the empty line closing the head (LF or CRLF line ends, as
    /// [`parse_head_bytes`] reads them), resuming where the last call stopped.
    fn find_head_end(&mut self) -> Option<usize> {
        let buf = &self.buf[..];
        let mut p = self.scan;
        while let Some(rel) = buf
            .get(p..)
            .and_then(|b| b.iter().position(|&c| c == b'\n'))
        {
            let lf = p + rel;
            match (buf.get(lf + 1), buf.get(lf + 2)) {
                (Some(b'\n'), _) => return Some(lf + 2),
                (Some(b'\r'), Some(b'\n')) => return Some(lf + 3),
                (None, _) | (Some(b'\r'), None) => {
                    // Cannot tell yet: look at this LF again next time.
                    self.scan = lf;
                    return None;
                }
                _ => p = lf + 1,
            }
        }
        self.scan = buf.len();
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &[u8] =
        b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nl: 4\r\n\r\nbody";

    /// All frames of `input` fed in `chunks`, then the error if any.
    fn frames(chunks: &[&[u8]], max: usize) -> (Vec<Frame>, Option<ParseError>, usize) {
        let mut f = StreamFramer::new(max);
        let mut out = Vec::new();
        let mut max_buffered = 0;
        for c in chunks {
            f.push(c);
            loop {
                match f.next_frame() {
                    Ok(Some(fr)) => out.push(fr),
                    Ok(None) => break,
                    Err(e) => return (out, Some(e), max_buffered),
                }
            }
            max_buffered = max_buffered.max(f.buffered());
        }
        (out, None, max_buffered)
    }

    fn msg(b: &[u8]) -> Frame {
        Frame::Message(Bytes::copy_from_slice(b))
    }

    #[test]
    fn frames_messages_pings_and_stray_crlf() {
        let mut s = b"\r\n\r\n".to_vec();
        s.extend_from_slice(OPTIONS);
        s.extend_from_slice(b"\r\n");
        s.extend_from_slice(OPTIONS);
        s.extend_from_slice(b"\r\n\r\n");
        let (f, e, _) = frames(&[&s], 1 << 16);
        assert_eq!(e, None);
        assert_eq!(f, [Frame::Ping, msg(OPTIONS), msg(OPTIONS), Frame::Ping]);
    }

    #[test]
    fn waits_for_head_body_and_a_possible_ping() {
        let (f, e, _) = frames(&[&OPTIONS[..OPTIONS.len() - 1]], 1 << 16);
        assert_eq!((f.len(), e), (0, None));
        let (f, _, _) = frames(&[b"\r\n"], 1 << 16);
        assert!(f.is_empty(), "CRLF alone could still become a ping");
        let (f, _, _) = frames(&[b"\r\n", b"\r\n"], 1 << 16);
        assert_eq!(f, [Frame::Ping]);
    }

    #[test]
    fn missing_content_length_is_zero_and_lf_only_lines_work() {
        let m = b"OPTIONS sip:a@b SIP/2.0\nVia: SIP/2.0/TCP h\n\nNEXT";
        let (f, e, _) = frames(&[m], 1 << 16);
        assert_eq!(e, None);
        assert_eq!(f, [msg(&m[..m.len() - 4])]);
    }

    #[test]
    fn limits_and_errors() {
        // Head never ends: refused once the limit is reached, not before.
        let junk = vec![b'a'; 100];
        assert_eq!(frames(&[&junk], 100).1, Some(ParseError::TooLarge));
        assert_eq!(frames(&[&junk[..99]], 100).1, None);
        // Content-Length pushing the message over the limit: refused at the head.
        let big = b"OPTIONS sip:a@b SIP/2.0\r\nl: 999999\r\n\r\n";
        assert_eq!(frames(&[big], 1000).1, Some(ParseError::TooLarge));
        let neg = b"OPTIONS sip:a@b SIP/2.0\r\nl: -1\r\n\r\n";
        assert_eq!(frames(&[neg], 1000).1, Some(ParseError::BadContentLength));
        let garbage = b"OPTIONS sip:a@b SIP/2.0\r\nno colon\r\n\r\n";
        assert_eq!(frames(&[garbage], 1000).1, Some(ParseError::BadHeader));
        // Poisoned: the error sticks and nothing is buffered.
        let mut f = StreamFramer::new(1000);
        f.push(garbage);
        assert!(f.next_frame().is_err());
        f.push(OPTIONS);
        assert_eq!(f.next_frame(), Err(ParseError::BadHeader));
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn each_byte_is_scanned_once() {
        // A long head fed byte by byte: the resume point keeps advancing.
        let mut f = StreamFramer::new(1 << 20);
        let mut head = b"OPTIONS sip:a@b SIP/2.0\r\n".to_vec();
        for i in 0..2000 {
            head.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
        }
        for b in &head {
            f.push(&[*b]);
            assert_eq!(f.next_frame(), Ok(None));
            assert!(f.scan + 2 >= f.buffered(), "scan restarted");
        }
        f.push(b"\r\n");
        assert!(matches!(f.next_frame(), Ok(Some(Frame::Message(_)))));
    }

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// A random stream: messages with bodies, LF-only heads, pings, stray CR/LFs, and now
    /// and then something broken or oversized.
    fn random_stream(rng: &mut Rng) -> Vec<u8> {
        let mut s = Vec::new();
        for _ in 0..rng.below(12) {
            match rng.below(10) {
                0 => s.extend_from_slice(b"\r\n\r\n"),
                1 => s.extend_from_slice([&b"\r\n"[..], b"\n", b"\r", b"\r\n\r"][rng.below(4)]),
                2 if rng.below(4) == 0 => {
                    s.extend_from_slice(b"BROKEN sip:x SIP/2.0\r\nno colon\r\n\r\n")
                }
                3 if rng.below(4) == 0 => {
                    s.extend_from_slice(b"OPTIONS sip:x SIP/2.0\r\n");
                    s.resize(s.len() + 300, b'a');
                }
                _ => {
                    let eol: &[u8] = if rng.below(5) == 0 { b"\n" } else { b"\r\n" };
                    let body: Vec<u8> = (0..rng.below(40)).map(|i| b"\r\nab"[i % 4]).collect();
                    s.extend_from_slice(b"MESSAGE sip:a@b SIP/2.0");
                    s.extend_from_slice(eol);
                    s.extend_from_slice(b"Via: SIP/2.0/TCP h;branch=z9hG4bK1");
                    s.extend_from_slice(eol);
                    s.extend_from_slice(format!("l: {}", body.len()).as_bytes());
                    s.extend_from_slice(eol);
                    s.extend_from_slice(eol);
                    s.extend_from_slice(&body);
                }
            }
        }
        s
    }

    #[test]
    fn chunked_frames_exactly_as_whole() {
        for seed in 1..3000u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let stream = random_stream(&mut rng);
            let whole = frames(&[&stream], 256);
            let mut chunks = Vec::new();
            let mut rest = &stream[..];
            while !rest.is_empty() {
                let n = 1 + rng.below(rest.len().min(20));
                let (a, b) = rest.split_at(n);
                chunks.push(a);
                rest = b;
            }
            let chunked = frames(&chunks, 256);
            assert_eq!(whole.0, chunked.0, "seed {seed}");
            assert_eq!(whole.1, chunked.1, "seed {seed}");
            // Bounded: at most one incomplete message of under 256 bytes is held.
            assert!(chunked.2 <= 256, "seed {seed}: {}", chunked.2);
        }
    }

    #[test]
    fn agrees_with_frame_stream_on_single_messages() {
        let (f, _, _) = frames(&[OPTIONS], 1 << 16);
        assert_eq!(super::super::frame_stream(OPTIONS), Ok(Some(OPTIONS.len())));
        assert_eq!(f, [msg(OPTIONS)]);
    }
}
