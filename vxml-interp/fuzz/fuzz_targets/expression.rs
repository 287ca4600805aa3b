//! A `cond`/`expr` value evaluated in a fresh session's scope chain or, when it holds a `;`, a
//! `<script>` body run there: the interpreter's source checks, then boa with its runtime limits.
//! (One boa context per run: making one is most of the cost of a run.)
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Longest expression tried. The interpreter takes up to 1 MiB, but boa's cost grows faster
/// than the length for some sources, and real `expr` values are short.
const MAX_EXPR: usize = 4096;

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_EXPR {
        return;
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.contains(';') {
        let _ = vxml_interp::fuzzing::run_script(text);
    } else {
        let _ = vxml_interp::fuzzing::eval_expression(text);
    }
});
