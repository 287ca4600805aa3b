//! An SRGS ABNF grammar document; when it compiles, it is matched against keys and words taken
//! from its own text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vxml_interp::Grammar;
use vxml_interp_fuzz::{MAX_INPUT, abnf_words, exercise_grammar};

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT {
        return;
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(grammar) = Grammar::from_abnf(text) {
        exercise_grammar(&grammar, text, &abnf_words(text));
    }
});
