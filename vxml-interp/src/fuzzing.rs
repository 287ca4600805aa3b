//! Entry points for the cargo-fuzz targets in `vxml-interp/fuzz/`: the crate-private parsers
//! and the ECMAScript scope machinery, reachable from outside without making them public API.
//!
//! Not a stable interface: compiled only under `cfg(fuzzing)` (cargo-fuzz sets it) and for
//! this crate's own tests, and hidden from the docs. Grammars
//! need nothing here ([`crate::Grammar::from_srgs_xml`] and [`crate::Grammar::from_abnf`] are
//! public).

use crate::scope::{Scope, Scopes};

/// Parses `text` as a VoiceXML document fetched from `http://fuzz.test/doc.vxml` (the parser
/// the interpreter runs on every fetched document); whether it was accepted.
pub fn parse_document(text: &str) -> bool {
    let Ok(url) = url::Url::parse("http://fuzz.test/doc.vxml") else {
        return false;
    };
    crate::document::parse(&url, text).is_ok()
}

/// Evaluates `expr` as a `cond`/`expr` attribute in a fresh session's scope chain, with the
/// interpreter's guards (source checks, loop, recursion and job limits); the `ToString` of the
/// value, or the error message.
pub fn eval_expression(expr: &str) -> Result<String, String> {
    let mut scopes = Scopes::new();
    let value = scopes.eval(expr)?;
    scopes.string_of(&value)
}

/// Runs `body` as a document-level `<script>` in a fresh session's scope chain, with the same
/// guards; `Err` carries the script error.
pub fn run_script(body: &str) -> Result<(), String> {
    Scopes::new().run_script(Scope::Document, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_points_reach_the_parser_and_the_scopes() {
        assert!(parse_document(
            r#"<vxml version="2.1"><form><block>hi</block></form></vxml>"#
        ));
        assert!(!parse_document("<vxml"));
        assert_eq!(eval_expression("1 + 1").as_deref(), Ok("2"));
        assert!(
            eval_expression("while (true) {}").is_err(),
            "loops are bounded"
        );
        assert!(run_script("var a = 1; function f() { return a; }").is_ok());
        assert!(run_script("(").is_err());
    }
}
