//! The framer: start line, header spans (folding handled) and the body sliced by Content-Length.
//! Nothing here interprets header values beyond Content-Length.

use std::ops::Range;

use bytes::Bytes;

use super::names::{is_token, same};
use super::{Header, ParseError, SipMessage, StartLine};

/// Upper bound for the start line + headers, so a peer cannot make us buffer forever.
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// Upper bound for a body announced by Content-Length.
pub(crate) const MAX_BODY: usize = 1024 * 1024;

/// Start line and headers of a message; `body_start` is the offset just after the empty line.
pub(crate) struct Head {
    pub(crate) start: StartLine,
    pub(crate) headers: Vec<Header>,
    pub(crate) body_start: usize,
}

/// Parses a datagram. Bytes after `Content-Length` octets of body are ignored (RFC 3261 §18.3).
pub fn parse(buf: Bytes) -> Result<SipMessage, ParseError> {
    let (buf, head) = datagram_head(buf)?;
    let available = buf.len() - head.body_start;
    let body_len = match content_length(&buf, &head.headers)? {
        // Without Content-Length, a datagram's body runs to its end (§18.3).
        None => available,
        Some(n) if n > available => return Err(ParseError::BodyTooShort),
        Some(n) => n,
    };
    let end = head.body_start + body_len;
    Ok(SipMessage::from_parts(buf.slice(..end), head, end))
}

/// Parses start line and headers only; the body is whatever follows, unchecked.
///
/// For the case where [`parse`] rejected the framing (bad Content-Length, short body) and the
/// caller still wants the headers to answer 400.
pub fn parse_head(buf: Bytes) -> Result<SipMessage, ParseError> {
    let (buf, head) = datagram_head(buf)?;
    let end = buf.len();
    Ok(SipMessage::from_parts(buf, head, end))
}

/// A datagram is complete by definition: if its last header line ends without the empty line
/// (seen in the wild and in RFC 4475's baddn.dat), the head ends with the datagram.
fn datagram_head(buf: Bytes) -> Result<(Bytes, Head), ParseError> {
    if let Some(head) = parse_head_bytes(&buf)? {
        return Ok((buf, head));
    }
    if buf.ends_with(b"\n") {
        let mut patched = buf.to_vec();
        patched.extend_from_slice(b"\r\n");
        let patched = Bytes::from(patched);
        if let Some(head) = parse_head_bytes(&patched)? {
            return Ok((patched, head));
        }
    }
    Err(ParseError::Truncated)
}

/// Length of the first complete message in a stream buffer (TCP), `None` when more bytes are needed.
///
/// Leading CRLFs (keep-alives, RFC 5626) are counted into the first message.
/// A missing Content-Length counts as 0.
pub fn frame_stream(buf: &[u8]) -> Result<Option<usize>, ParseError> {
    let Some(head) = parse_head_bytes(buf)? else {
        return Ok(None);
    };
    let body_len = content_length(buf, &head.headers)?.unwrap_or(0);
    if body_len > MAX_BODY {
        return Err(ParseError::TooLarge);
    }
    let end = head.body_start + body_len;
    Ok((end <= buf.len()).then_some(end))
}

pub(crate) fn content_length(buf: &[u8], headers: &[Header]) -> Result<Option<usize>, ParseError> {
    let mut found: Option<usize> = None;
    for h in headers {
        let name = std::str::from_utf8(&buf[h.name.clone()]).unwrap_or("");
        if !same(name, "Content-Length") {
            continue;
        }
        let raw = &buf[h.value.clone()];
        let digits = trim(raw);
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return Err(ParseError::BadContentLength);
        }
        let n = std::str::from_utf8(digits)
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
            .ok_or(ParseError::BadContentLength)?;
        match found {
            Some(prev) if prev != n => return Err(ParseError::BadContentLength),
            _ => found = Some(n),
        }
    }
    Ok(found)
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// One line: `content` excludes the line terminator, `next` is where the following line starts.
struct Line {
    content: Range<usize>,
    next: usize,
}

fn next_line(buf: &[u8], from: usize) -> Option<Line> {
    let rel = buf.get(from..)?.iter().position(|&c| c == b'\n')?;
    let lf = from + rel;
    let end = if lf > from && buf[lf - 1] == b'\r' {
        lf - 1
    } else {
        lf
    };
    Some(Line {
        content: from..end,
        next: lf + 1,
    })
}

/// `Ok(None)` = the head is not complete yet.
pub(crate) fn parse_head_bytes(buf: &[u8]) -> Result<Option<Head>, ParseError> {
    // RFC 3261 §7.5: CRLFs before the start line are ignored.
    let mut pos = buf
        .iter()
        .position(|&c| c != b'\r' && c != b'\n')
        .unwrap_or(buf.len());
    let Some(first) = next_line(buf, pos) else {
        return if buf.len() > MAX_HEAD {
            Err(ParseError::TooLarge)
        } else {
            Ok(None)
        };
    };
    let start = parse_start_line(buf, first.content)?;
    pos = first.next;
    let mut headers: Vec<Header> = Vec::new();
    loop {
        if pos > MAX_HEAD {
            return Err(ParseError::TooLarge);
        }
        let Some(line) = next_line(buf, pos) else {
            return if buf.len() > MAX_HEAD {
                Err(ParseError::TooLarge)
            } else {
                Ok(None)
            };
        };
        pos = line.next;
        let content = line.content;
        if content.is_empty() {
            return Ok(Some(Head {
                start,
                headers,
                body_start: pos,
            }));
        }
        let bytes = &buf[content.clone()];
        if bytes[0] == b' ' || bytes[0] == b'\t' {
            // Folded continuation of the previous header (LWS, §7.3.1).
            let h = headers.last_mut().ok_or(ParseError::BadHeader)?;
            let Some(first_non_ws) = bytes.iter().position(|c| !c.is_ascii_whitespace()) else {
                continue;
            };
            let last_non_ws = bytes
                .iter()
                .rposition(|c| !c.is_ascii_whitespace())
                .unwrap_or(first_non_ws);
            if h.value.is_empty() {
                h.value.start = content.start + first_non_ws;
            }
            h.value.end = content.start + last_non_ws + 1;
            h.line.end = h.value.end;
            continue;
        }
        let colon = bytes
            .iter()
            .position(|&c| c == b':')
            .ok_or(ParseError::BadHeader)?;
        let name_end = bytes[..colon]
            .iter()
            .rposition(|c| !c.is_ascii_whitespace())
            .map_or(0, |p| p + 1);
        if !is_token(&bytes[..name_end]) {
            return Err(ParseError::BadHeader);
        }
        let after = &bytes[colon + 1..];
        let (vs, ve) = match after.iter().position(|c| !c.is_ascii_whitespace()) {
            Some(s) => {
                let e = after
                    .iter()
                    .rposition(|c| !c.is_ascii_whitespace())
                    .unwrap_or(s);
                (colon + 1 + s, colon + 2 + e)
            }
            None => (bytes.len(), bytes.len()),
        };
        let base = content.start;
        headers.push(Header {
            name: base..base + name_end,
            value: base + vs..base + ve,
            line: base..base + ve.max(colon + 1),
        });
    }
}

fn parse_start_line(buf: &[u8], range: Range<usize>) -> Result<StartLine, ParseError> {
    let line = &buf[range.clone()];
    std::str::from_utf8(line).map_err(|_| ParseError::BadStartLine)?;
    let at = |r: Range<usize>| range.start + r.start..range.start + r.end;
    if line.starts_with(b"SIP/") {
        let sp = line
            .iter()
            .position(|&c| c == b' ')
            .ok_or(ParseError::BadStartLine)?;
        check_version(&line[..sp])?;
        let rest = &line[sp + 1..];
        let code_len = rest.iter().position(|&c| c == b' ').unwrap_or(rest.len());
        let code = &rest[..code_len];
        if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) || code[0] == b'0' {
            return Err(ParseError::BadStartLine);
        }
        let status = code
            .iter()
            .fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'));
        let reason_start = (sp + 1 + code_len + 1).min(line.len());
        return Ok(StartLine::Response {
            version: at(0..sp),
            status,
            reason: at(reason_start..line.len()),
        });
    }
    // Request-Line; runs of SP are tolerated (RFC 4475 §3.1.2.9/10), LWS inside the URI is not.
    let mut tokens = Vec::with_capacity(3);
    let mut i = 0;
    while i < line.len() {
        if line[i] == b' ' {
            i += 1;
            continue;
        }
        let s = i;
        while i < line.len() && line[i] != b' ' {
            i += 1;
        }
        tokens.push(s..i);
    }
    // LWS inside the Request-URI (RFC 4475 §3.1.2.8) still frames: the URI then spans every
    // token between method and version, and validation answers 400 instead of staying silent.
    if tokens.len() < 3 {
        return Err(ParseError::BadStartLine);
    }
    let (method, version) = (tokens[0].clone(), tokens[tokens.len() - 1].clone());
    let uri = tokens[1].start..tokens[tokens.len() - 2].end;
    if !is_token(&line[method.clone()]) {
        return Err(ParseError::BadStartLine);
    }
    check_version(&line[version.clone()])?;
    Ok(StartLine::Request {
        method: at(method),
        uri: at(uri),
        version: at(version),
    })
}

/// `SIP/1*DIGIT.1*DIGIT`; the value itself (505 for non-2.0) is judged by validation.
fn check_version(v: &[u8]) -> Result<(), ParseError> {
    let rest = v.strip_prefix(b"SIP/").ok_or(ParseError::BadStartLine)?;
    let dot = rest
        .iter()
        .position(|&c| c == b'.')
        .ok_or(ParseError::BadStartLine)?;
    let (major, minor) = (&rest[..dot], &rest[dot + 1..]);
    let digits = |d: &[u8]| !d.is_empty() && d.iter().all(u8::is_ascii_digit);
    if digits(major) && digits(minor) {
        Ok(())
    } else {
        Err(ParseError::BadStartLine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &[u8] =
        b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nl: 4\r\n\r\nbody";

    #[test]
    fn frames_stream_messages() {
        assert_eq!(frame_stream(&OPTIONS[..20]).unwrap(), None);
        assert_eq!(frame_stream(&OPTIONS[..OPTIONS.len() - 1]).unwrap(), None);
        assert_eq!(frame_stream(OPTIONS).unwrap(), Some(OPTIONS.len()));
        let mut two = OPTIONS.to_vec();
        two.extend_from_slice(OPTIONS);
        assert_eq!(frame_stream(&two).unwrap(), Some(OPTIONS.len()));
        let mut keepalive = b"\r\n\r\n".to_vec();
        keepalive.extend_from_slice(OPTIONS);
        assert_eq!(frame_stream(&keepalive).unwrap(), Some(OPTIONS.len() + 4));
    }

    #[test]
    fn datagram_body_is_cut_at_content_length() {
        let mut d = OPTIONS.to_vec();
        d.extend_from_slice(b"trailing junk");
        let m = parse(Bytes::from(d)).unwrap();
        assert_eq!(&m.body()[..], b"body");
    }

    #[test]
    fn short_body_and_bad_length_are_errors() {
        let short = Bytes::from_static(&OPTIONS[..OPTIONS.len() - 1]);
        assert_eq!(parse(short.clone()).unwrap_err(), ParseError::BodyTooShort);
        assert!(parse_head(short).is_ok());
        let neg = Bytes::from_static(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n");
        assert_eq!(parse(neg).unwrap_err(), ParseError::BadContentLength);
    }

    #[test]
    fn rejects_garbage_start_lines() {
        for bad in [
            &b"INVITE sip:a@b\r\n\r\n"[..],
            b"SIP/2.0 4294967301 x\r\n\r\n",
            b"INV/ITE sip:a@b SIP/2.0\r\n\r\n",
            b"INVITE sip:a@b SIP/x\r\n\r\n",
            b"OPTIONS sip:a@b SIP/2.0\r\nno colon here\r\n\r\n",
        ] {
            assert!(parse(Bytes::copy_from_slice(bad)).is_err(), "{bad:?}");
        }
    }

    /// Found by the `parse_message` fuzz target (regescrt.dat with `L:+0`): a signed
    /// Content-Length does not frame, but the head still gets its 400.
    #[test]
    fn signed_content_length_is_refused_but_answerable() {
        let raw = b"REGISTER sip:example.com SIP/2.0\r\nTo: sip:user@example.com\r\n\
            From: sip:user@example.com;tag=8\r\nMax-Forwards: 70\r\nCall-ID: r@h\r\n\
            CSeq: 14398234 REGISTER\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKkdjuw\r\n\
            M: <sip:user@example.com?Route=%3Csip:sip.example.com%3E>\r\nL:+0\r\n\r\n";
        let b = Bytes::from_static(raw);
        assert_eq!(parse(b.clone()).unwrap_err(), ParseError::BadContentLength);
        let head = parse_head(b).unwrap();
        assert!(head.can_answer());
        let resp = crate::builder::response(&head, 400, "Bad Request").build();
        assert_eq!(parse(resp).unwrap().status(), Some(400));
    }

    #[test]
    fn oversized_head_is_refused() {
        let mut big = b"OPTIONS sip:a@b SIP/2.0\r\n".to_vec();
        big.resize(MAX_HEAD + 10, b'a');
        assert_eq!(frame_stream(&big).unwrap_err(), ParseError::TooLarge);
    }
}
