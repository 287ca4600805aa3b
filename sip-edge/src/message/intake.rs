//! The one intake every core runs a received datagram or stream message through: frame it,
//! validate it, and say which error answer (if any) it deserves instead of processing.

use bytes::Bytes;

use super::{ParseError, SipMessage, parse, parse_head};

/// Why a message will not be processed.
#[derive(Debug)]
pub struct Refused {
    /// The request to answer (its headers were readable), or `None`: drop silently
    /// (responses, ACKs, and messages too broken to answer).
    pub answer: Option<Box<SipMessage>>,
    /// The status to answer with (400, 416, 505).
    pub status: u16,
    /// Its reason phrase.
    pub reason: &'static str,
    /// What was wrong, for the log.
    pub why: String,
}

/// Frames and validates `data`: the message to process, or how to refuse it.
pub fn intake(data: &Bytes) -> Result<SipMessage, Box<Refused>> {
    let msg = match parse(data.clone()) {
        Ok(m) => m,
        Err(e) => {
            // Framing failed; a 400 still goes out if the headers are there to build one.
            let answer = parse_head(data.clone())
                .ok()
                .filter(SipMessage::can_answer)
                .map(Box::new);
            return Err(Box::new(refused(answer, 400, "Bad Request", e)));
        }
    };
    match msg.validate() {
        Ok(()) => Ok(msg),
        Err(rej) => {
            let why = format!("{} {}", rej.status, rej.reason);
            let answer = msg.can_answer().then(|| Box::new(msg));
            Err(Box::new(Refused {
                answer,
                status: rej.status,
                reason: rej.reason,
                why,
            }))
        }
    }
}

fn refused(
    answer: Option<Box<SipMessage>>,
    status: u16,
    reason: &'static str,
    e: ParseError,
) -> Refused {
    Refused {
        answer,
        status,
        reason,
        why: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answerable_or_silent() {
        let ok = Bytes::from_static(
            b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:x@y>;tag=1\r\n\
              To: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        );
        assert!(intake(&ok).is_ok());
        let bad_version = Bytes::from(
            String::from_utf8(ok.to_vec())
                .unwrap()
                .replace("SIP/2.0\r\nVia", "SIP/7.0\r\nVia"),
        );
        let r = intake(&bad_version).unwrap_err();
        assert_eq!((r.status, r.answer.is_some()), (505, true));
        let garbage = Bytes::from_static(b"\x00\x01 not sip");
        assert!(intake(&garbage).unwrap_err().answer.is_none());
    }
}
