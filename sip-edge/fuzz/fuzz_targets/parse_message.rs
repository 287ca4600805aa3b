//! One datagram: framed with `parse` (and `parse_head` when that fails), then every typed
//! accessor, `validate`, `can_answer`, a 400 built from it and a re-emit through
//! `edit::Editor` with the edits a proxy makes. Nothing may panic; what is emitted must frame.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sip_edge::edit::Editor;
use sip_edge::message::{NameAddr, Uri, Via, split_list, unescape};
use sip_edge::transaction::ServerKey;
use sip_edge::{SipMessage, builder, parse};

/// `framed`: `m` came from `parse` (not the `parse_head` fallback, whose Content-Length may be
/// anything, so its re-emit need not frame).
fn exercise(m: &SipMessage, framed: bool) {
    let _ = (m.is_request(), m.method(), m.method_typed(), m.request_uri(), m.uri());
    let _ = (m.version(), m.status(), m.status_code(), m.reason(), m.to_string());
    let _ = m.status_code().map(|s| (s.class(), s.canonical_reason(), s.is_final()));
    for (name, value) in m.headers_iter() {
        let _ = m.header_count(name);
        let _ = split_list(&value);
        let _ = (NameAddr::parse(&value), Via::parse(&value), Uri::parse(&value));
        let _ = unescape(&value);
    }
    let _ = (m.call_id(), m.cseq(), m.cseq_typed(), m.max_forwards());
    let _ = (m.vias(), m.top_via(), m.from(), m.to(), m.contact(), m.contacts());
    let _ = (m.routes(), m.record_routes(), m.list("Accept"), m.content_type());
    if let Some(v) = m.top_via() {
        let _ = (v.branch(), v.received(), v.rport(), v.is_reliable(), v.to_string());
    }
    if let Some(u) = m.uri() {
        let _ = (u.user_name(), u.ip(), u.param("transport"), &u.host);
    }
    for na in [m.from(), m.to()].into_iter().flatten() {
        let _ = (na.tag(), na.param("tag"), na.to_string());
    }
    let _ = (ServerKey::for_request(m), ServerKey::invite_for(m));
    let _ = m.body();
    let verdict = m.validate();
    if m.can_answer() {
        let resp = builder::response(m, 400, "Bad Request").to_tag("x").build();
        let back = parse(resp).expect("our 400 frames");
        assert_eq!(back.status(), Some(400));
    }
    let mut e = Editor::new(m);
    e.prepend_via("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKfuzz");
    e.set_max_forwards(m.max_forwards().unwrap_or(71).saturating_sub(1));
    e.remove_top_route();
    if let Some(v) = m.top_via() {
        e.replace_top_via(v.to_string());
    }
    e.set_header("X-Fuzz", "1");
    let out = e.finish();
    // A framed message that passed validation re-emits into one that frames again.
    if framed && verdict.is_ok() {
        let again = parse(out).expect("re-emitted message frames");
        assert_eq!(again.is_request(), m.is_request());
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() > 70 * 1024 {
        return;
    }
    let bytes = Bytes::copy_from_slice(data);
    match parse(bytes.clone()) {
        Ok(m) => exercise(&m, true),
        Err(_) => {
            if let Ok(m) = sip_edge::message::parse_head(bytes) {
                exercise(&m, false);
            }
        }
    }
});
