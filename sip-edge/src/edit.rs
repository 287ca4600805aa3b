//! Re-emitting a received message with edits. Untouched headers are copied byte-for-byte from
//! their original spans (unknown headers, folding and all), so a proxy forwards what it does
//! not understand unchanged. The start line is always re-emitted with single spaces
//! (RFC 4475 §3.1.2.9/10: never forward the extra SP).

use bytes::Bytes;

use crate::message::{SipMessage, same_header, split_list};

enum Entry {
    /// Index into the original message's headers.
    Orig(usize),
    /// A new or rewritten header.
    New(String, String),
}

/// Edits to apply to a message; [`Editor::finish`] emits the new bytes.
pub struct Editor<'a> {
    msg: &'a SipMessage,
    uri: Option<String>,
    entries: Vec<Entry>,
    body: Option<Bytes>,
}

impl<'a> Editor<'a> {
    /// Starts from the message as is.
    pub fn new(msg: &'a SipMessage) -> Editor<'a> {
        Editor {
            msg,
            uri: None,
            entries: (0..msg.header_spans().len()).map(Entry::Orig).collect(),
            body: None,
        }
    }

    fn name_of<'s>(&'s self, e: &'s Entry) -> &'s str {
        match e {
            Entry::Orig(i) => {
                std::str::from_utf8(self.msg.raw(&self.msg.header_spans()[*i].name)).unwrap_or("")
            }
            Entry::New(n, _) => n,
        }
    }

    fn value_of(&self, e: &Entry) -> String {
        match e {
            Entry::Orig(i) => {
                let raw = self.msg.raw(&self.msg.header_spans()[*i].value);
                String::from_utf8_lossy(raw).replace(['\r', '\n'], " ")
            }
            Entry::New(_, v) => v.clone(),
        }
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| same_header(self.name_of(e), name))
    }

    /// Replaces the Request-URI.
    pub fn set_request_uri(&mut self, uri: impl Into<String>) -> &mut Self {
        self.uri = Some(uri.into());
        self
    }

    /// Adds `Via: value` above all others.
    pub fn prepend_via(&mut self, value: impl Into<String>) -> &mut Self {
        self.entries
            .insert(0, Entry::New("Via".into(), value.into()));
        self
    }

    /// Adds `Record-Route: value` above all others.
    pub fn prepend_record_route(&mut self, value: impl Into<String>) -> &mut Self {
        self.entries
            .insert(0, Entry::New("Record-Route".into(), value.into()));
        self
    }

    /// Adds `name: value` above all others (e.g. a Route toward a Path).
    pub fn prepend_header(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        self.entries
            .insert(0, Entry::New(name.into(), value.into()));
        self
    }

    /// Removes the topmost element of a list header (Via, Route); returns false if there is none.
    pub fn remove_top(&mut self, name: &str) -> bool {
        self.replace_top(name, None)
    }

    /// Removes the topmost Via.
    pub fn remove_top_via(&mut self) -> bool {
        self.remove_top("Via")
    }

    /// Removes the topmost Route.
    pub fn remove_top_route(&mut self) -> bool {
        self.remove_top("Route")
    }

    /// Rewrites the topmost Via (e.g. to add `received`/`rport`), keeping the rest.
    pub fn replace_top_via(&mut self, value: impl Into<String>) -> bool {
        self.replace_top("Via", Some(value.into()))
    }

    fn replace_top(&mut self, name: &str, new: Option<String>) -> bool {
        let Some(pos) = self.position(name) else {
            return false;
        };
        let header_name = self.name_of(&self.entries[pos]).to_owned();
        let value = self.value_of(&self.entries[pos]);
        let rest: Vec<&str> = split_list(&value)
            .map(|l| l.into_iter().skip(1).collect())
            .unwrap_or_default();
        let mut parts: Vec<&str> = new.as_deref().into_iter().collect();
        parts.extend(rest);
        if parts.is_empty() {
            self.entries.remove(pos);
        } else {
            self.entries[pos] = Entry::New(header_name, parts.join(", "));
        }
        true
    }

    /// Sets Max-Forwards.
    pub fn set_max_forwards(&mut self, n: u32) -> &mut Self {
        self.set_header("Max-Forwards", n.to_string())
    }

    /// Replaces the first header `name` (removing further ones) or appends it.
    pub fn set_header(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        let value = value.into();
        match self.position(name) {
            Some(pos) => {
                let raw_name = self.name_of(&self.entries[pos]).to_owned();
                self.entries[pos] = Entry::New(raw_name, value);
                let mut i = pos + 1;
                while i < self.entries.len() {
                    if same_header(self.name_of(&self.entries[i]), name) {
                        self.entries.remove(i);
                    } else {
                        i += 1;
                    }
                }
            }
            None => self.entries.push(Entry::New(name.into(), value)),
        }
        self
    }

    /// Appends a header.
    pub fn add_header(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        self.entries.push(Entry::New(name.into(), value.into()));
        self
    }

    /// Removes every header `name`.
    pub fn remove_header(&mut self, name: &str) -> &mut Self {
        let keep: Vec<bool> = self
            .entries
            .iter()
            .map(|e| !same_header(self.name_of(e), name))
            .collect();
        let mut it = keep.into_iter();
        self.entries.retain(|_| it.next().unwrap_or(true));
        self
    }

    /// Replaces the body (and Content-Type when given); Content-Length follows on emit.
    pub fn set_body(&mut self, content_type: Option<&str>, body: Bytes) -> &mut Self {
        if let Some(ct) = content_type {
            self.set_header("Content-Type", ct);
        }
        self.body = Some(body);
        self
    }

    /// Emits the edited message. Content-Length always matches the body: the original line is
    /// kept when it already does, otherwise rewritten (or added).
    pub fn finish(&self) -> Bytes {
        let body = self.body.clone().unwrap_or_else(|| self.msg.body());
        let mut out = Vec::with_capacity(self.msg.as_bytes().len() + 256);
        match (self.msg.method(), self.msg.status()) {
            (Some(method), _) => {
                let uri = self.uri.as_deref().or(self.msg.request_uri()).unwrap_or("");
                out.extend_from_slice(
                    format!("{method} {uri} {}\r\n", self.msg.version()).as_bytes(),
                );
            }
            (_, Some(status)) => {
                let reason = self.msg.reason().unwrap_or("");
                out.extend_from_slice(
                    format!("{} {status} {reason}\r\n", self.msg.version()).as_bytes(),
                );
            }
            _ => {}
        }
        let mut length_written = false;
        for e in &self.entries {
            if same_header(self.name_of(e), "Content-Length") {
                if length_written {
                    continue;
                }
                length_written = true;
                if let Entry::Orig(_) = e
                    && self.value_of(e).trim().parse::<usize>().ok() == Some(body.len())
                {
                    self.write_entry(&mut out, e);
                } else {
                    out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
                }
                continue;
            }
            self.write_entry(&mut out, e);
        }
        if !length_written {
            out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&body);
        Bytes::from(out)
    }

    fn write_entry(&self, out: &mut Vec<u8>, e: &Entry) {
        match e {
            Entry::Orig(i) => {
                out.extend_from_slice(self.msg.raw(&self.msg.header_spans()[*i].line))
            }
            Entry::New(n, v) => out.extend_from_slice(format!("{n}: {v}").as_bytes()),
        }
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::parse;

    fn invite() -> SipMessage {
        parse(Bytes::from_static(
            b"INVITE  sip:600@edge  SIP/2.0\r\n\
              Via: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2\r\n\
              Route: <sip:edge;lr>\r\nRoute: <sip:next;lr>\r\n\
              X-Odd :  keep   me\r\n  folded too\r\nMax-Forwards: 70\r\nl: 2\r\n\r\nhi",
        ))
        .unwrap()
    }

    #[test]
    fn unknown_headers_stay_byte_exact() {
        let m = invite();
        let out = Editor::new(&m).finish();
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text.starts_with("INVITE sip:600@edge SIP/2.0\r\n"));
        assert!(text.contains("X-Odd :  keep   me\r\n  folded too\r\n"));
        assert!(text.contains("l: 2\r\n\r\nhi"));
    }

    #[test]
    fn proxy_edits() {
        let m = invite();
        let mut e = Editor::new(&m);
        e.prepend_via("SIP/2.0/UDP me;branch=z9hG4bKme")
            .prepend_record_route("<sip:me;lr>")
            .set_max_forwards(69)
            .set_request_uri("sip:dialog@media");
        assert!(e.remove_top_route());
        let out = parse(e.finish()).unwrap();
        assert_eq!(out.request_uri(), Some("sip:dialog@media"));
        let branches: Vec<_> = out
            .vias()
            .unwrap()
            .iter()
            .map(|v| v.branch().unwrap().to_owned())
            .collect();
        assert_eq!(branches, ["z9hG4bKme", "z9hG4bK1", "z9hG4bK2"]);
        assert_eq!(out.routes().unwrap().len(), 1);
        assert_eq!(out.routes().unwrap()[0].uri, "sip:next;lr");
        assert_eq!(out.record_routes().unwrap()[0].uri, "sip:me;lr");
        assert_eq!(out.max_forwards(), Some(69));
        assert_eq!(&out.body()[..], b"hi");
    }

    #[test]
    fn top_via_removal_splits_comma_lists() {
        let m = invite();
        let mut e = Editor::new(&m);
        assert!(e.remove_top_via());
        let out = parse(e.finish()).unwrap();
        assert_eq!(out.vias().unwrap().len(), 1);
        assert_eq!(out.top_via().unwrap().host, "b");
        let mut e = Editor::new(&out);
        assert!(e.remove_top_via());
        assert!(!e.remove_top_via());
    }

    #[test]
    fn body_change_fixes_content_length() {
        let m = invite();
        let mut e = Editor::new(&m);
        e.set_body(Some("application/sdp"), Bytes::from_static(b"v=0\r\n"));
        let out = parse(e.finish()).unwrap();
        assert_eq!(out.header("Content-Length").as_deref(), Some("5"));
        assert_eq!(out.header_count("Content-Length"), 1);
        assert_eq!(out.content_type().as_deref(), Some("application/sdp"));
        assert_eq!(&out.body()[..], b"v=0\r\n");
    }
}
