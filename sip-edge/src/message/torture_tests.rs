//! Every message of RFC 4475 (`../shared/sip/rfc4475` beside the repository), read at test time.
//! Expectations follow the README there (paraphrasing RFC 4475 §3).

use bytes::Bytes;

use super::{ParseError, Rejection, SipMessage, parse, parse_head};

/// The RFC 4475 folder of the shared material beside the repository.
pub(crate) const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/sip/rfc4475");

fn load(name: &str) -> Bytes {
    let path = format!("{DIR}/{name}.dat");
    Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
}

fn ok(name: &str) -> SipMessage {
    let m = parse(load(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(m.validate(), Ok(()), "{name}");
    m
}

fn rejected(name: &str) -> Rejection {
    let m = parse(load(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    m.validate().expect_err(name)
}

fn via_branches(m: &SipMessage) -> Vec<String> {
    m.vias()
        .unwrap()
        .iter()
        .map(|v| v.branch().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn every_file_is_covered() {
    let mut names: Vec<String> = std::fs::read_dir(DIR)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".dat").map(str::to_owned))
        .collect();
    names.sort();
    assert_eq!(names.len(), 50);
    let source = include_str!("torture_tests.rs");
    for n in names {
        assert!(source.contains(&format!("\"{n}\"")), "{n} has no test");
        // Whatever the verdict, nothing panics and framing is stable.
        let _ = parse(load(&n)).map(|m| (m.validate(), m.vias(), m.contacts()));
    }
}

#[test]
fn wsinv() {
    let m = ok("wsinv");
    assert_eq!(m.method(), Some("INVITE"));
    assert_eq!(
        m.request_uri(),
        Some("sip:vivekg@chair-dnrc.example.com;unknownparam")
    );
    assert_eq!(m.to().unwrap().tag(), Some("1918181833n"));
    assert_eq!(m.to().unwrap().uri, "sip:vivekg@chair-dnrc.example.com");
    assert_eq!(m.from().unwrap().tag(), Some("98asjd8"));
    assert_eq!(m.call_id().as_deref(), Some("wsinv.ndaksdj@192.0.2.1"));
    assert_eq!(m.cseq(), Some((9, "INVITE".into())));
    assert_eq!(m.max_forwards(), Some(68));
    assert_eq!(m.body().len(), 150);
    let vias = m.vias().unwrap();
    assert_eq!(vias.len(), 3);
    assert_eq!(
        via_branches(&m),
        ["390skdjuw", "z9hG4bK9ikj8", "z9hG4bK30239"]
    );
    assert_eq!(vias[1].transport, "TCP");
    assert_eq!(vias[2].host, "192.168.255.111");
    assert_eq!(m.header("s").as_deref(), Some(""));
    assert_eq!(
        m.routes().unwrap()[0].uri,
        "sip:services.example.com;lr;unknownwith=value;unknown-no-value"
    );
    let contact = m.contact().unwrap();
    assert_eq!(contact.uri, "sip:jdrosen@example.com");
    assert_eq!(contact.param("q"), Some(Some("0.33")));
}

#[test]
fn intmeth() {
    let m = ok("intmeth");
    let method = "!interesting-Method0123456789_*+`.%indeed'~";
    assert_eq!(m.method(), Some(method));
    assert_eq!(m.cseq(), Some((139122385, method.into())));
    assert_eq!(m.from().unwrap().tag(), Some("_token~1'+`*%!-."));
    assert_eq!(
        m.call_id().as_deref(),
        Some("intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{")
    );
    assert_eq!(m.max_forwards(), Some(255));
    assert!(m.body().is_empty());
}

#[test]
fn escapes() {
    let m = ok("esc01");
    assert_eq!(
        m.request_uri(),
        Some("sip:sips%3Auser%40example.com@example.net")
    );
    assert_eq!(
        m.contact().unwrap().uri,
        "sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31"
    );
    assert_eq!(m.body().len(), 150);
    let m = ok("escnull");
    assert_eq!(m.contacts().unwrap().len(), 2);
    assert_eq!(m.to().unwrap().uri, "sip:null-%00-null@example.com");
    let m = ok("esc02");
    assert_ne!(m.method(), Some("REGISTER"));
    assert_eq!(m.method(), Some("RE%47IST%45R"));
    // `C%6Fntact` is an unknown header, not a Contact.
    assert_eq!(m.contacts().unwrap().len(), 2);
    assert_eq!(
        m.header("C%6Fntact").as_deref(),
        Some("<sip:alias2@host2.example.com>")
    );
}

#[test]
fn lwsdisp_longreq_semiuri() {
    let m = ok("lwsdisp");
    assert_eq!(m.from().unwrap().display.as_deref(), Some("caller"));
    let m = ok("longreq");
    assert_eq!(m.vias().unwrap().len(), 34);
    assert_eq!(
        m.body().len(),
        m.header("Content-Length")
            .unwrap()
            .trim()
            .parse::<usize>()
            .unwrap()
    );
    assert!(m.to().unwrap().display.is_some_and(|d| d.len() > 80));
    assert!(m.to().unwrap().param("tag").is_none());
    let m = ok("semiuri");
    assert_eq!(m.uri().unwrap().user_name(), Some("user"));
    assert_eq!(m.uri().unwrap().host, "example.com");
    assert_eq!(m.list("Accept").unwrap().len(), 6);
}

#[test]
fn dblreq_ignores_trailing_octets() {
    let m = ok("dblreq");
    assert_eq!(m.method(), Some("REGISTER"));
    assert!(m.body().is_empty());
    assert!(!m.as_bytes().ends_with(b"a=rtpmap:31 LPC\r\n"));
    assert_eq!(
        m.call_id().as_deref(),
        Some("dblreq.0ha0isndaksdj99sdfafnl3lk233412")
    );
}

#[test]
fn transports_and_multipart() {
    let m = ok("transports");
    let t: Vec<String> = m.vias().unwrap().into_iter().map(|v| v.transport).collect();
    assert_eq!(t, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
    let m = ok("mpart01");
    assert_eq!(m.body().len(), 553);
    assert!(m.content_type().unwrap().starts_with("multipart/mixed"));
}

#[test]
fn odd_reason_phrases() {
    let m = ok("unreason");
    assert_eq!(m.status(), Some(200));
    assert!(m.reason().unwrap().contains("простое"));
    assert_eq!(m.body().len(), 154);
    let m = ok("noreason");
    assert_eq!((m.status(), m.reason()), (Some(100), Some("")));
}

#[test]
fn syntax_errors_are_400() {
    for name in [
        "badinv01",
        "scalar02",
        "quotbal",
        "ltgtruri",
        "escruri",
        "regbadct",
        "badaspec",
        "baddn",
        "mismatch01",
        "mismatch02",
        "multi01",
        "lwsruri",
        "insuf",
    ] {
        assert_eq!(rejected(name).status, 400, "{name}");
        // Enough is there to answer: each of them gets its 400, none is dropped silently.
        let m = parse(load(name)).unwrap();
        assert!(m.can_answer(), "{name} must get a 400");
        let resp = parse(crate::builder::response(&m, 400, "Bad Request").build())
            .unwrap_or_else(|e| panic!("{name}: our 400 does not parse: {e}"));
        assert_eq!(resp.status(), Some(400));
        assert_eq!(resp.header_count("Via"), m.header_count("Via"), "{name}");
        assert_eq!(resp.header("To"), m.header("To"), "{name}");
        assert_eq!(resp.call_id(), m.call_id(), "{name}");
    }
}

#[test]
fn lws_in_request_uri_frames_but_is_rejected() {
    let m = parse(load("lwsruri")).unwrap();
    assert_eq!(m.request_uri(), Some("sip:user@example.com; lr"));
    assert_eq!(m.method(), Some("INVITE"));
    assert_eq!(m.version(), "SIP/2.0");
    assert_eq!(m.validate().unwrap_err().reason, "Bad Request-URI");
}

#[test]
fn unbalanced_quotes_and_bad_display_names_are_rejected() {
    for name in ["quotbal", "baddn"] {
        let m = parse(load(name)).unwrap();
        assert!(m.to().is_none() || m.from().is_none(), "{name}");
        assert_eq!(m.validate().unwrap_err().reason, "Bad From/To", "{name}");
    }
}

#[test]
fn insufficient_headers_get_a_400() {
    let m = parse(load("insuf")).unwrap();
    assert_eq!(m.validate().unwrap_err().reason, "Missing Mandatory Header");
    assert!(m.can_answer());
    let resp = parse(crate::builder::response(&m, 400, "Bad Request").build()).unwrap();
    assert_eq!(resp.header("To"), None);
    assert_eq!(resp.cseq(), Some((193942, "INVITE".into())));
}

#[test]
fn framing_errors() {
    assert_eq!(parse(load("clerr")).unwrap_err(), ParseError::BodyTooShort);
    assert_eq!(
        parse(load("ncl")).unwrap_err(),
        ParseError::BadContentLength
    );
    assert_eq!(
        parse(load("mcl01")).unwrap_err(),
        ParseError::BadContentLength
    );
    for name in ["clerr", "ncl", "mcl01"] {
        assert!(
            parse_head(load(name)).unwrap().can_answer(),
            "{name} can get a 400"
        );
    }
    assert_eq!(
        parse(load("bigcode")).unwrap_err(),
        ParseError::BadStartLine
    );
    assert!(parse(load("test")).is_err());
}

#[test]
fn liberal_start_lines() {
    let m = ok("lwsstart");
    assert_eq!(m.request_uri(), Some("sip:user@example.com"));
    let m = ok("trws");
    assert_eq!(m.version(), "SIP/2.0");
}

#[test]
fn version_and_scheme() {
    assert_eq!(rejected("badvers").status, 505);
    assert_eq!(rejected("unkscm").status, 416);
    assert_eq!(rejected("novelsc").status, 416);
}

#[test]
fn responses_to_drop() {
    assert!(rejected("scalarlg").status == 400);
    let m = ok("bcast");
    assert_eq!(m.vias().unwrap()[1].host, "255.255.255.255");
}

#[test]
fn detectable_application_layer_cases() {
    let m = ok("baddate");
    assert!(m.header("Date").unwrap().ends_with("EST"));
    let m = ok("badbranch");
    assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bK"));
    let m = ok("unksm2");
    assert_eq!(m.to().unwrap().uri, "isbn:2983792873");
    let m = ok("bext01");
    assert_eq!(m.list("Proxy-Require").unwrap().len(), 2);
    let m = ok("invut");
    assert_ne!(m.content_type().as_deref(), Some("application/sdp"));
    let m = ok("regaut01");
    assert!(m.header("Authorization").is_some());
    let m = ok("zeromf");
    assert_eq!(m.max_forwards(), Some(0));
    let m = ok("sdp01");
    assert!(m.header("Accept").is_some());
}

#[test]
fn contact_params() {
    let c = ok("cparam01").contact().unwrap();
    assert_eq!(c.uri, "sip:+19725552222@gw1.example.net");
    assert_eq!(c.param("unknownparam"), Some(None));
    let c = ok("cparam02").contact().unwrap();
    assert_eq!(c.uri, "sip:+19725552222@gw1.example.net;unknownparam");
    let c = ok("regescrt").contact().unwrap();
    assert_eq!(
        c.uri,
        "sip:user@example.com?Route=%3Csip:sip.example.com%3E"
    );
}

#[test]
fn rfc2543_invite() {
    let m = ok("inv2543");
    assert_eq!(m.top_via().unwrap().branch(), None);
    assert_eq!(m.from().unwrap().tag(), None);
    assert_eq!(m.max_forwards(), None);
    assert!(m.body().starts_with(b"v=0"));
}
