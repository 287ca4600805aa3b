//! A VoiceXML document, as fetched: the parser behind every `<goto>` and `<subdialog>`
//! (roxmltree, then the owned model with its inline grammars).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() > vxml_interp_fuzz::MAX_INPUT {
        return;
    }
    // The loader rejects bodies that are not UTF-8 before parsing.
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = vxml_interp::fuzzing::parse_document(text);
    }
});
