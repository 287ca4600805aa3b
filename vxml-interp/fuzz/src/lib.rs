//! Helpers shared by the fuzz targets: inputs derived from a grammar's own text, so that a
//! grammar which compiles is also matched against keys and words it is likely to accept.

use std::sync::Arc;

use vxml_interp::{Grammar, recognize_voice};

/// Most keys fed to one grammar; every prefix is matched, as the DTMF collector does.
const MAX_KEYS: usize = 24;
/// Most words of an utterance.
const MAX_WORDS: usize = 8;

/// Longest input a target takes: longer inputs add no coverage, only time per run.
pub const MAX_INPUT: usize = 64 * 1024;

fn is_dtmf_key(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D')
}

/// Matches `grammar` against keys and utterances taken from `text` (its source), plus a few
/// fixed ones.
pub fn exercise_grammar(grammar: &Grammar, text: &str, words: &[&str]) {
    let _ = grammar.external_refs();
    let keys: String = text
        .chars()
        .filter(|c| is_dtmf_key(*c))
        .take(MAX_KEYS)
        .collect();
    for end in 0..=keys.len() {
        let _ = grammar.match_dtmf(&keys[..end]);
    }
    for keys in ["1", "12#", "*9", "#"] {
        let _ = grammar.match_dtmf(keys);
    }
    let words = &words[..words.len().min(MAX_WORDS)];
    for n in 1..=words.len() {
        let _ = grammar.match_voice(&words[..n].join(" "));
    }
    for word in words {
        let _ = grammar.match_voice(word);
    }
    let shared = [Arc::new(grammar.clone())];
    let _ = recognize_voice(&shared, &words.join(" "));
    if let Some(first) = words.first()
        && let Ok(other) = grammar.with_root(first)
    {
        let _ = other.match_voice(&words.join(" "));
    }
}

/// The words of the text content of an XML document (between `>` and `<`).
pub fn xml_words(text: &str) -> Vec<&str> {
    text.split('<')
        .filter_map(|part| part.split_once('>').map(|(_, content)| content))
        .flat_map(str::split_whitespace)
        .take(MAX_WORDS)
        .collect()
}

/// The bare words of an ABNF grammar: tokens outside rule names, tags and declarations.
pub fn abnf_words(text: &str) -> Vec<&str> {
    text.split(|c: char| c.is_whitespace() || "|;()[]<>{}/\"=".contains(c))
        .filter(|t| {
            !t.is_empty() && !t.starts_with(['$', '#', '!']) && t.chars().all(char::is_alphanumeric)
        })
        .take(MAX_WORDS)
        .collect()
}
