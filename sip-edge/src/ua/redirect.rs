//! Who a call was meant for before it reached us: Diversion (RFC 5806) and History-Info
//! (RFC 7044), for `session.connection.redirect`.

use crate::message::{NameAddr, SipMessage, split_list, unescape};

/// One diversion, most recent first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diverted {
    /// The URI the call was diverted from.
    pub uri: String,
    /// Why (`no-answer`, `user-busy`, `unavailable`, ...), if said.
    pub reason: Option<String>,
}

/// Most entries kept (a hostile INVITE may carry many).
const MAX: usize = 8;

/// Diversion headers (topmost is the most recent), else History-Info entries before the
/// current target (last is the most recent).
pub(crate) fn redirects(msg: &SipMessage) -> Vec<Diverted> {
    let mut out = Vec::new();
    for value in msg.headers("Diversion") {
        for item in split_list(&value).unwrap_or_default() {
            if let Ok(na) = NameAddr::parse(item) {
                out.push(Diverted {
                    uri: na.uri.clone(),
                    reason: na
                        .param("reason")
                        .flatten()
                        .map(|r| r.trim_matches('"').to_owned()),
                });
            }
            if out.len() >= MAX {
                return out;
            }
        }
    }
    if !out.is_empty() {
        return out;
    }
    let mut history: Vec<NameAddr> = Vec::new();
    for value in msg.headers("History-Info") {
        for item in split_list(&value).unwrap_or_default() {
            if history.len() >= 32 {
                break;
            }
            if let Ok(na) = NameAddr::parse(item) {
                history.push(na);
            }
        }
    }
    // The last entry is the target that reached us; the ones before it were diverted.
    history.pop();
    for na in history.iter().rev().take(MAX) {
        let (uri, headers) = match na.uri.split_once('?') {
            Some((u, h)) => (u.to_owned(), Some(h)),
            None => (na.uri.clone(), None),
        };
        let cause = headers.and_then(|h| {
            let h = unescape(h);
            let at = h.find("cause=")? + 6;
            h[at..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse::<u16>()
                .ok()
        });
        out.push(Diverted {
            uri,
            reason: cause.and_then(|c| match c {
                486 | 600 | 603 => Some("user-busy".to_owned()),
                408 | 480 | 487 => Some("no-answer".to_owned()),
                404 | 410 => Some("unavailable".to_owned()),
                302 => Some("unconditional".to_owned()),
                _ => None,
            }),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::parse;

    fn invite(extra: &str) -> SipMessage {
        parse(bytes::Bytes::from(format!(
            "INVITE sip:dialog@m SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\n\
             To: <sip:202@pbx>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n{extra}Content-Length: 0\r\n\r\n"
        )))
        .unwrap()
    }

    #[test]
    fn diversion_then_history_info() {
        let d = redirects(&invite(
            "Diversion: <sip:202@pbx>;reason=no-answer;counter=1\r\n",
        ));
        assert_eq!(
            d,
            vec![Diverted {
                uri: "sip:202@pbx".into(),
                reason: Some("no-answer".into())
            }]
        );
        let h = redirects(&invite(
            "History-Info: <sip:202@pbx?Reason=SIP%3Bcause%3D486>;index=1, <sip:vm@m>;index=1.1\r\n",
        ));
        assert_eq!(h[0].uri, "sip:202@pbx");
        assert_eq!(h[0].reason.as_deref(), Some("user-busy"));
        assert!(redirects(&invite("")).is_empty());
    }
}
