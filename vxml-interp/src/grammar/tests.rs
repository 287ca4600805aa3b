use std::collections::BTreeSet;
use std::time::Duration;

use super::srgs::Expansion;
use super::*;

fn dtmf(body: &str) -> Grammar {
    let xml = format!(
        r#"<grammar xmlns="http://www.w3.org/2001/06/grammar" mode="dtmf" version="1.0" root="main">{body}</grammar>"#
    );
    Grammar::from_srgs_xml(&xml).expect("grammar compiles")
}

fn voice(body: &str) -> Grammar {
    let xml = format!(
        r#"<grammar xmlns="http://www.w3.org/2001/06/grammar" version="1.0" root="main">{body}</grammar>"#
    );
    Grammar::from_srgs_xml(&xml).expect("grammar compiles")
}

/// The value of a match: a literal, or the SISR result as JSON.
fn value(m: &Match) -> Option<String> {
    let Match::Complete { semantics, .. } = m else {
        return None;
    };
    Some(match semantics {
        Semantics::Value(SemValue::Str(s)) => s.clone(),
        Semantics::Value(v) => format!("{v:?}"),
        Semantics::Script(tree) => CONTEXT.with_borrow_mut(|ctx| match sisr::evaluate(tree, ctx) {
            Ok(v) => v
                .to_json(ctx)
                .ok()
                .flatten()
                .map_or_else(|| "undefined".to_owned(), |j| j.to_string()),
            Err(e) => format!("error: {e}"),
        }),
    })
}

thread_local! {
    /// One ECMAScript context per test thread: making one per evaluation is slow.
    static CONTEXT: std::cell::RefCell<boa_engine::Context> =
        std::cell::RefCell::new(crate::scope::test_context());
}

fn interp(m: Match) -> Option<(bool, String)> {
    let can_extend = matches!(
        m,
        Match::Complete {
            can_extend: true,
            ..
        }
    );
    value(&m).map(|v| (can_extend, v))
}

#[test]
fn one_of_with_literal_tags() {
    let g = dtmf(
        r#"<rule id="main"><one-of><item>1<tag>out='sales'</tag></item><item>2 3<tag>support</tag></item></one-of></rule>"#,
    );
    assert_eq!(interp(g.match_dtmf("1")), Some((false, "\"sales\"".into())));
    assert_eq!(g.match_dtmf("2"), Match::Prefix);
    assert_eq!(
        interp(g.match_dtmf("23")),
        Some((false, "\"support\"".into()))
    );
    assert_eq!(g.match_dtmf("3"), Match::NoMatch);
    assert_eq!(g.match_dtmf("12"), Match::NoMatch);
}

#[test]
fn repeat_ranges_report_extension() {
    let g = dtmf(
        r#"<rule id="main"><item repeat="2-3"><one-of><item>1</item><item>2</item></one-of></item></rule>"#,
    );
    assert_eq!(g.match_dtmf("1"), Match::Prefix);
    assert_eq!(interp(g.match_dtmf("12")), Some((true, "12".into())));
    assert_eq!(interp(g.match_dtmf("121")), Some((false, "121".into())));
    assert_eq!(g.match_dtmf("1211"), Match::NoMatch);
    let open = dtmf(r#"<rule id="main"><item repeat="1-">5</item></rule>"#);
    assert_eq!(interp(open.match_dtmf("555")), Some((true, "555".into())));
}

#[test]
fn ruleref_values_flow_through_rules_latest() {
    let g = dtmf(
        r##"<rule id="main"><ruleref uri="#digit"/><tag>out=rules.latest();</tag> #</rule>
            <rule id="digit"><one-of><item>7<tag>out="seven"</tag></item><item>8</item></one-of></rule>"##,
    );
    assert_eq!(
        interp(g.match_dtmf("7#")),
        Some((false, "\"seven\"".into()))
    );
    assert_eq!(interp(g.match_dtmf("8#")), Some((false, "\"8\"".into())));
    assert_eq!(g.match_dtmf("8"), Match::Prefix);
    // The parse tree: root rule, then the reference, its tag, and the keys in order.
    let Match::Complete {
        semantics: Semantics::Script(tree),
        ..
    } = g.match_dtmf("7#")
    else {
        panic!("no tree");
    };
    let ParseNode::Rule { name, children } = tree else {
        panic!("root is not a rule");
    };
    assert_eq!(name, "main");
    assert!(matches!(&children[0], ParseNode::Rule { name, .. } if name == "digit"));
    assert_eq!(children[1], ParseNode::Tag("out=rules.latest();".into()));
    assert_eq!(children[2], ParseNode::Token("#".into()));
}

#[test]
fn builtin_digits_lengths() {
    let g = Grammar::builtin("builtin:dtmf/digits?minlength=2;maxlength=3").unwrap();
    assert_eq!(g.match_dtmf("1"), Match::Prefix);
    assert_eq!(interp(g.match_dtmf("12")), Some((true, "12".into())));
    assert_eq!(interp(g.match_dtmf("123")), Some((false, "123".into())));
    assert_eq!(g.match_dtmf("1234"), Match::NoMatch);
    assert_eq!(g.match_dtmf("1*"), Match::NoMatch);
    let exact = Grammar::builtin("builtin:dtmf/digits?length=4").unwrap();
    assert_eq!(
        interp(exact.match_dtmf("1234")),
        Some((false, "1234".into()))
    );
    assert!(Grammar::builtin("builtin:dtmf/colour").is_err());
    assert!(!g.accepts(InputMode::Voice));
    assert_eq!(g.match_voice("one two"), Match::NoMatch);
}

#[test]
fn builtin_boolean_and_modes() {
    let g = Grammar::builtin("builtin:dtmf/boolean").unwrap();
    assert!(g.is_boolean());
    let yes = Match::Complete {
        can_extend: false,
        semantics: Semantics::Value(SemValue::Bool(true)),
    };
    assert_eq!(g.match_dtmf("1"), yes);
    assert_eq!(g.match_dtmf("3"), Match::NoMatch);
    let both = Grammar::builtin("boolean").unwrap();
    assert!(both.accepts(InputMode::Dtmf) && both.accepts(InputMode::Voice));
    assert_eq!(both.match_voice("Yes"), yes);
    assert_eq!(both.match_dtmf("1"), yes);
    let spoken = Grammar::builtin("builtin:voice/number").unwrap();
    assert_eq!(spoken.match_dtmf("1"), Match::NoMatch);
    assert_eq!(value(&spoken.match_voice("twenty five")), Some("25".into()));
}

#[test]
fn invalid_grammars_are_errors_not_panics() {
    let bad = |body: &str| {
        let xml = format!(r#"<grammar mode="dtmf" root="main">{body}</grammar>"#);
        Grammar::from_srgs_xml(&xml).is_err()
    };
    assert!(bad(r##"<rule id="main"><ruleref uri="#nowhere"/></rule>"##));
    assert!(bad(r#"<rule id="main"><item repeat="3-1">1</item></rule>"#));
    assert!(bad(r#"<rule id="main">x</rule>"#));
    assert!(bad(r#"<rule id="other">1</rule>"#));
    assert!(bad(r#"<rule id="main">1</rule><rule id="main">2</rule>"#));
    assert!(bad(
        r#"<rule id="main"><ruleref uri="builtin:doesnotexist"/></rule>"#
    ));
    assert!(bad(
        r#"<rule id="main"><ruleref uri="builtin:voice/digits"/></rule>"#
    ));
    assert!(bad(r#"<rule id="main"><one-of/></rule>"#));
    assert!(bad(r#"<rule id="main"><bogus/></rule>"#));
    assert!(Grammar::from_srgs_xml("<grammar").is_err());
    assert!(
        Grammar::from_srgs_xml(r#"<grammar mode="fax"><rule id="a">x</rule></grammar>"#).is_err()
    );
    assert!(Grammar::from_srgs_xml("<grammar/>").is_err());
    assert!(Grammar::from_srgs_xml("<vxml/>").is_err());
}

#[test]
fn left_recursion_is_bounded() {
    let g = dtmf(r##"<rule id="main"><ruleref uri="#main"/>1</rule>"##);
    assert_eq!(g.match_dtmf("1"), Match::NoMatch);
    let g = dtmf(
        r##"<rule id="main"><one-of><item><ruleref uri="#main"/>1</item><item>2</item></one-of></rule>"##,
    );
    assert!(matches!(g.match_dtmf("2"), Match::Complete { .. }));
    // Right recursion deeper than the rule depth limit fails without overflowing.
    let r = Grammar::from_abnf("#ABNF 1.0; root $r; $r = a $r | a;").unwrap();
    assert!(matches!(r.match_voice("a a a"), Match::Complete { .. }));
    let long = vec!["a"; 1000].join(" ");
    assert_eq!(r.match_voice(&long), Match::NoMatch);
}

#[test]
fn voice_tokens_are_words_compared_without_case() {
    let g = voice(
        r#"<rule id="main"><one-of><item>"San Francisco"</item><item><token>New York</token></item>
           <item>Boston please</item></one-of><item repeat="0-1">thanks</item></rule>"#,
    );
    assert_eq!(
        value(&g.match_voice("san  FRANCISCO")),
        Some("san francisco".into())
    );
    assert_eq!(
        value(&g.match_voice("new york thanks.")),
        Some("new york thanks".into())
    );
    assert_eq!(g.match_voice("boston"), Match::NoMatch);
    assert_eq!(g.match_voice(""), Match::NoMatch);
    assert_eq!(g.match_dtmf("1"), Match::NoMatch);
    assert!(g.accepts(InputMode::Voice) && !g.accepts(InputMode::Dtmf));
}

#[test]
fn garbage_null_and_void() {
    let g = voice(
        r#"<rule id="main"><ruleref special="GARBAGE"/> operator <ruleref special="NULL"/></rule>
           <rule id="never">x <ruleref special="VOID"/></rule>"#,
    );
    assert!(matches!(g.match_voice("operator"), Match::Complete { .. }));
    assert!(matches!(
        g.match_voice("um get me an operator"),
        Match::Complete { .. }
    ));
    assert_eq!(g.match_voice("operator please"), Match::NoMatch);
    assert_eq!(
        g.with_root("never").unwrap().match_voice("x"),
        Match::NoMatch
    );
}

#[test]
fn builtin_references_inside_srgs() {
    let g = dtmf(
        r##"<rule id="main"><ruleref uri="builtin:dtmf/digits?length=3"/> # <tag>out = "n" + rules.digits;</tag></rule>"##,
    );
    assert_eq!(g.match_dtmf("12"), Match::Prefix);
    assert_eq!(g.match_dtmf("123"), Match::Prefix);
    assert_eq!(
        interp(g.match_dtmf("123#")),
        Some((false, "\"n123\"".into()))
    );
    assert_eq!(g.match_dtmf("1234#"), Match::NoMatch);
    let v = voice(
        r#"<rule id="main">pay <ruleref uri="builtin:voice/currency"/><tag>out = rules.currency;</tag></rule>"#,
    );
    assert_eq!(
        value(&v.match_voice("pay five dollars")),
        Some("\"USD5.00\"".into())
    );
}

#[test]
fn abnf_grammars() {
    let g = Grammar::from_abnf(
        r#"#ABNF 1.0 UTF-8;
           // a comment
           mode dtmf; root $pin; tag-format <semantics/1.0>;
           public $pin = $digit<4> [#] {out = meta.current().text;};
           private $digit = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9; /* block */"#,
    )
    .unwrap();
    assert!(g.accepts(InputMode::Dtmf));
    assert_eq!(g.match_dtmf("123"), Match::Prefix);
    assert_eq!(
        interp(g.match_dtmf("1234")),
        Some((true, "\"1234\"".into()))
    );
    assert_eq!(
        interp(g.match_dtmf("1234#")),
        Some((false, "\"1234#\"".into()))
    );
    let w = Grammar::from_abnf(
        r#"#ABNF 1.0; language en-US; root $main;
           meta "author" is "me";
           $main = /10/ (yes | yeah) {!{ out = {answer: true}; }!} | /1/ no {!{out = {answer: false};}!} | $NULL maybe $GARBAGE;"#,
    )
    .unwrap();
    assert_eq!(
        value(&w.match_voice("Yeah")),
        Some(r#"{"answer":true}"#.into())
    );
    assert_eq!(
        value(&w.match_voice("maybe not")),
        Some("\"maybe not\"".into())
    );
    for bad in [
        "",
        "$main = a;",
        "#ABNF 2.0; $main = a;",
        "#ABNF 1.0; $main = ;",
        "#ABNF 1.0; $main = (a;",
        "#ABNF 1.0; $main = a",
        "#ABNF 1.0; $main = $other;",
        "#ABNF 1.0; $main = a<3-1>;",
        "#ABNF 1.0; $main = a {tag;",
        "#ABNF 1.0; $main = a; mode dtmf;",
        "#ABNF 1.0; mode fax; $main = a;",
        "#ABNF 1.0; root $nope; $main = a;",
        "#ABNF 1.0; $main = a /* open",
        "#ABNF 1.0; mode dtmf; $main = x;",
        "#ABNF 1.0; $main = $<builtin:doesnotexist>;",
    ] {
        assert!(Grammar::from_abnf(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn sources_roots_and_external_refs() {
    let xml = r#"<?xml version="1.0"?><grammar root="a"><rule id="a">one</rule><rule id="b">two</rule></grammar>"#;
    let g = Grammar::from_source(&format!("\u{feff}\n {xml}"), None).unwrap();
    assert!(matches!(g.match_voice("one"), Match::Complete { .. }));
    let b = g.with_root("b").unwrap();
    assert!(matches!(b.match_voice("two"), Match::Complete { .. }));
    assert_eq!(b.match_voice("one"), Match::NoMatch);
    assert!(g.with_root("c").is_err());
    let abnf = Grammar::from_source("#ABNF 1.0; $a = one;", Some("text/plain")).unwrap();
    assert!(matches!(abnf.match_voice("one"), Match::Complete { .. }));
    assert!(Grammar::from_source("$a = one;", Some("application/srgs")).is_err());
    assert!(Grammar::from_source("hello", None).is_err());
    assert!(Grammar::from_source("hello", Some("audio/wav")).is_err());
    assert!(Grammar::builtin("digits").unwrap().with_root("x").is_err());
    let ext = voice(r#"<rule id="main">call <ruleref uri="names.grxml#first"/></rule>"#);
    assert_eq!(ext.external_refs(), vec!["names.grxml#first".to_owned()]);
    assert_eq!(ext.match_voice("call bob"), Match::NoMatch);
    // An inline ABNF grammar inside a VoiceXML document.
    let doc = roxmltree::Document::parse(
        r#"<vxml><grammar type="application/srgs">#ABNF 1.0; mode dtmf; $a = 1 2;</grammar></vxml>"#,
    )
    .unwrap();
    let node = doc
        .descendants()
        .find(|n| n.has_tag_name("grammar"))
        .unwrap();
    let inline = Grammar::from_srgs_node(node).unwrap();
    assert_eq!(interp(inline.match_dtmf("12")), Some((false, "12".into())));
}

#[test]
fn match_utterance_picks_the_first_matching_grammar() {
    let grammars = vec![
        Arc::new(Grammar::builtin("builtin:dtmf/digits").unwrap()),
        Arc::new(voice(r#"<rule id="main">main menu</rule>"#)),
        Arc::new(Grammar::builtin("number").unwrap()),
        Arc::new(Grammar::builtin("digits").unwrap()),
    ];
    assert_eq!(
        match_utterance(&grammars, "  Main   MENU "),
        VoiceMatch::Matched {
            utterance: "main menu".into(),
            grammar: 1,
            semantics: Semantics::Value(SemValue::Str("main menu".into())),
        }
    );
    assert_eq!(
        match_utterance(&grammars, "one two three"),
        VoiceMatch::Matched {
            utterance: "one two three".into(),
            grammar: 3,
            semantics: Semantics::Value(SemValue::Str("123".into())),
        }
    );
    assert!(matches!(
        match_utterance(&grammars, "123"),
        VoiceMatch::Matched { grammar: 2, .. }
    ));
    assert_eq!(
        match_utterance(&grammars, "Goodbye"),
        VoiceMatch::Unmatched {
            utterance: "goodbye".into(),
        }
    );
    assert_eq!(match_utterance(&grammars, "  "), VoiceMatch::Blank);
}

/// Runs `f`, failing if it takes longer than `limit` (generous: debug builds, shared cores).
fn quickly<T>(limit: Duration, f: impl FnOnce() -> T) -> T {
    #[allow(clippy::disallowed_methods)] // measuring a test, not the core's clock
    let start = std::time::Instant::now();
    let out = f();
    #[allow(clippy::disallowed_methods)]
    let took = start.elapsed();
    assert!(took < limit, "took {took:?}");
    out
}

#[test]
fn deep_nesting_is_rejected_quickly() {
    const DEPTH: usize = 200_000;
    let xml = format!(
        r#"<grammar root="r"><rule id="r">{}x{}</rule></grammar>"#,
        "<item>".repeat(DEPTH),
        "</item>".repeat(DEPTH)
    );
    let err = quickly(Duration::from_secs(5), || Grammar::from_srgs_xml(&xml)).unwrap_err();
    assert!(err.to_string().contains("nested"), "{err}");
    let abnf = format!(
        "#ABNF 1.0; $r = {}x{};",
        "(".repeat(DEPTH),
        ")".repeat(DEPTH)
    );
    let err = quickly(Duration::from_secs(5), || Grammar::from_abnf(&abnf)).unwrap_err();
    assert!(err.to_string().contains("nested"), "{err}");
    let opt = format!(
        "#ABNF 1.0; $r = {}x{};",
        "[".repeat(DEPTH),
        "]".repeat(DEPTH)
    );
    assert!(Grammar::from_abnf(&opt).is_err());
    let repeats = format!("#ABNF 1.0; $r = x{};", "<1>".repeat(DEPTH));
    assert!(quickly(Duration::from_secs(5), || Grammar::from_abnf(&repeats)).is_err());
    // Within the limit, nesting compiles and matches.
    let ok = format!("#ABNF 1.0; $r = {}x{};", "(".repeat(100), ")".repeat(100));
    assert!(matches!(
        Grammar::from_abnf(&ok).unwrap().match_voice("x"),
        Match::Complete { .. }
    ));
}

#[test]
fn huge_repeats_are_clamped_or_rejected() {
    let huge_min =
        r#"<grammar root="r"><rule id="r"><item repeat="1000000">x</item></rule></grammar>"#;
    assert!(Grammar::from_srgs_xml(huge_min).is_err());
    assert!(Grammar::from_abnf("#ABNF 1.0; $r = x<99999999999999999999>;").is_err());
    let clamped = Grammar::from_srgs_xml(
        r#"<grammar root="r"><rule id="r"><item repeat="0-99999999999999999999">x</item></rule></grammar>"#,
    )
    .unwrap();
    assert!(matches!(
        clamped.match_voice("x x x"),
        Match::Complete { .. }
    ));
    let too_many = vec!["x"; srgs::MAX_REPEAT as usize + 1].join(" ");
    assert_eq!(clamped.match_voice(&too_many), Match::NoMatch);
    // Nested large repeats and an exponentially ambiguous grammar stay within the step bound.
    let nested = Grammar::from_abnf("#ABNF 1.0; $r = ((x<0-1000>)<0-1000>)<0-1000> y;").unwrap();
    let input = vec!["x"; 60].join(" ");
    assert_eq!(
        quickly(Duration::from_secs(10), || nested.match_voice(&input)),
        Match::NoMatch
    );
    let ambiguous = Grammar::from_abnf("#ABNF 1.0; mode dtmf; $r = (1 | 1 | 1 1)<0-> 2;").unwrap();
    let keys = "1".repeat(200);
    let m = quickly(Duration::from_secs(10), || ambiguous.match_dtmf(&keys));
    assert_eq!(m, Match::Prefix);
}

// ---- SRGS XML and ABNF forms agree (W3C SRGS implementation report grammars) ----

/// Sentences of at most this many tokens are enumerated.
const MAX_LEN: usize = 10;
/// At most this many sentences per expansion.
const MAX_SENTENCES: usize = 300;

fn product(left: Vec<Vec<String>>, right: &[Vec<String>]) -> Vec<Vec<String>> {
    let mut out = BTreeSet::new();
    for l in &left {
        for r in right {
            if l.len() + r.len() <= MAX_LEN && out.len() < MAX_SENTENCES {
                out.insert(l.iter().chain(r).cloned().collect::<Vec<_>>());
            }
        }
    }
    out.into_iter().collect()
}

/// Sentences of an expansion (bounded), with external references as placeholder tokens.
fn sentences(rules: &Rules, e: &Expansion, depth: usize) -> Vec<Vec<String>> {
    match e {
        Expansion::Token(t) => vec![vec![t.clone()]],
        Expansion::Seq(items) => items.iter().fold(vec![Vec::new()], |acc, item| {
            product(acc, &sentences(rules, item, depth))
        }),
        Expansion::OneOf(alternatives) => {
            let mut out = BTreeSet::new();
            for alt in alternatives {
                out.extend(sentences(rules, alt, depth));
            }
            out.into_iter().take(MAX_SENTENCES).collect()
        }
        Expansion::Repeat { inner, min, max } => {
            let one = sentences(rules, inner, depth);
            let top = max.unwrap_or(min + 2).min(min + 2);
            let mut out = BTreeSet::new();
            let mut acc = vec![Vec::new()];
            for n in 0..=top {
                if n >= *min {
                    out.extend(acc.iter().cloned());
                }
                acc = product(acc, &one);
            }
            out.into_iter().take(MAX_SENTENCES).collect()
        }
        Expansion::RuleRef(i) if depth < 8 => sentences(rules, &rules.rules[*i].body, depth + 1),
        Expansion::External(uri) => vec![vec![matcher::external_token(uri)]],
        Expansion::Tag(_) | Expansion::Null | Expansion::Garbage => vec![Vec::new()],
        Expansion::RuleRef(_) | Expansion::Void | Expansion::Builtin(_) => Vec::new(),
    }
}

/// Matches tokens (keys or words) whatever the mode, external references as placeholders.
fn match_tokens(g: &Grammar, tokens: &[String]) -> Match {
    let Kind::Srgs { rules, root } = &g.kind else {
        panic!("not an SRGS grammar");
    };
    match matcher::run_with(rules, *root, tokens, true, true).complete {
        Some(semantics) => Match::Complete {
            can_extend: false,
            semantics,
        },
        None => Match::NoMatch,
    }
}

fn all_sentences(g: &Grammar) -> Vec<Vec<String>> {
    let Kind::Srgs { rules, root } = &g.kind else {
        panic!("not an SRGS grammar");
    };
    sentences(rules, &rules.rules[*root].body, 0)
}

/// Every enumerated sentence of `from` is accepted by `to` with the same interpretation, for
/// the root and every rule both define. Returns how many sentences were checked.
fn language_included(from: &Grammar, to: &Grammar, what: &str) -> usize {
    let Kind::Srgs { rules, .. } = &from.kind else {
        panic!("not an SRGS grammar");
    };
    let mut checked = 0;
    let roots = std::iter::once(None).chain(rules.rules.iter().map(|r| Some(r.name.as_str())));
    for root in roots {
        let (from, to) = match root {
            None => (from.clone(), to.clone()),
            Some(name) => match (from.with_root(name), to.with_root(name)) {
                (Ok(f), Ok(t)) => (f, t),
                (Ok(_), Err(_)) => panic!("{what}: rule {name} missing"),
                _ => continue,
            },
        };
        // Every sentence of the root; a sample of each other rule's (SISR is slow in debug).
        let limit = if root.is_none() { usize::MAX } else { 40 };
        for sentence in all_sentences(&from).into_iter().take(limit) {
            let expected = match_tokens(&from, &sentence);
            let got = match_tokens(&to, &sentence);
            assert!(
                matches!(expected, Match::Complete { .. }),
                "{what}: own sentence {sentence:?} rejected"
            );
            assert_eq!(
                value(&got),
                value(&expected),
                "{what}: {sentence:?} ({root:?})"
            );
            checked += 1;
        }
    }
    checked
}

fn same_language(xml: &str, abnf: &str, what: &str) -> usize {
    let x = Grammar::from_srgs_xml(xml).unwrap_or_else(|e| panic!("{what} xml: {e}"));
    let a = Grammar::from_abnf(abnf).unwrap_or_else(|e| panic!("{what} abnf: {e}"));
    assert_eq!(
        x.accepts(InputMode::Dtmf),
        a.accepts(InputMode::Dtmf),
        "{what}: modes"
    );
    language_included(&x, &a, what) + language_included(&a, &x, what)
}

macro_rules! srgs_test_file {
    ($name:literal) => {
        include_str!(concat!("../../tests/data/srgs/", $name))
    };
}

#[test]
fn w3c_xml_and_abnf_forms_agree() {
    // The files pair by content, not by number: 5.gram and 6.grxml are the same test
    // (an unknown builtin, to be rejected), 6.gram and 7.grxml are the same grammar, and
    // 5.grxml (foreign elements) has no ABNF twin.
    let pairs = [
        (
            srgs_test_file!("conformance-1.grxml"),
            srgs_test_file!("conformance-1.gram"),
            "1",
        ),
        (
            srgs_test_file!("conformance-2.grxml"),
            srgs_test_file!("conformance-2.gram"),
            "2",
        ),
        (
            srgs_test_file!("conformance-3.grxml"),
            srgs_test_file!("conformance-3.gram"),
            "3",
        ),
        (
            srgs_test_file!("conformance-4.grxml"),
            srgs_test_file!("conformance-4.gram"),
            "4",
        ),
        (
            srgs_test_file!("conformance-7.grxml"),
            srgs_test_file!("conformance-6.gram"),
            "7/6",
        ),
    ];
    for (xml, abnf, what) in pairs {
        let checked = same_language(xml, abnf, what);
        assert!(checked > 0, "{what}: nothing enumerated");
    }
    // The "in" sentences of the tests are accepted (external references as placeholders).
    let one = Grammar::from_abnf(srgs_test_file!("conformance-1.gram")).unwrap();
    assert!(matches!(
        one.match_voice("please call Jean Francois"),
        Match::Complete { .. }
    ));
    let three = Grammar::from_srgs_xml(srgs_test_file!("conformance-3.grxml")).unwrap();
    let said: Vec<String> = ["$<common#polite_start>", "call", "$<french_names>"]
        .map(String::from)
        .into();
    assert!(matches!(
        match_tokens(&three, &said),
        Match::Complete { .. }
    ));
    assert_eq!(three.external_refs().len(), 5);
    // Rejected in both forms: a reference to an unknown builtin.
    assert!(Grammar::from_abnf(srgs_test_file!("conformance-5.gram")).is_err());
    assert!(Grammar::from_srgs_xml(srgs_test_file!("conformance-6.grxml")).is_err());
    // Foreign elements are ignored, so only "test" is left.
    let five = Grammar::from_srgs_xml(srgs_test_file!("conformance-5.grxml")).unwrap();
    assert!(matches!(five.match_voice("test"), Match::Complete { .. }));
    assert_eq!(five.match_voice("this is a test"), Match::NoMatch);
}

#[test]
fn tagged_xml_and_abnf_forms_agree() {
    let xml = r##"<grammar xmlns="http://www.w3.org/2001/06/grammar" version="1.0" root="order"
                   tag-format="semantics/1.0">
      <rule id="order" scope="public">
        <item repeat="0-1">i would like</item>
        <ruleref uri="#drink"/><tag>out.drink = rules.drink;</tag>
        <item repeat="0-1">please</item>
      </rule>
      <rule id="drink">
        <item repeat="0-1"><ruleref uri="#size"/><tag>out.size = rules.size;</tag></item>
        <one-of>
          <item>coke<tag>out.type = "coke";</tag></item>
          <item>pepsi<tag>out.type = "pepsi";</tag></item>
          <item>"root beer"<tag>out.type = "root beer";</tag></item>
        </one-of>
        <item repeat="2-3">ice</item>
      </rule>
      <rule id="size"><one-of>
        <item weight="2">small<tag>out = "s";</tag></item><item>medium</item><item>large</item>
      </one-of></rule>
    </grammar>"##;
    let abnf = r#"#ABNF 1.0 UTF-8;
      mode voice; root $order; tag-format <semantics/1.0>;
      public $order = [i would like] $drink {out.drink = rules.drink;} [please];
      $drink = [$size {out.size = rules.size;}]
               (coke {out.type = "coke";} | pepsi {out.type = "pepsi";}
                | "root beer" {!{ out.type = "root beer"; }!}) ice<2-3>;
      $size = /2/ small {out = "s";} | medium | large;"#;
    let checked = same_language(xml, abnf, "drinks");
    assert!(checked > 50, "{checked}");
    let dtmf_xml = r##"<grammar mode="dtmf" root="pin" tag-format="semantics/1.0-literals">
      <rule id="pin"><one-of><item>1 2<tag>first</tag></item><item><item repeat="1-2">3</item>#<tag>second</tag></item></one-of></rule>
    </grammar>"##;
    let dtmf_abnf = "#ABNF 1.0; mode dtmf; tag-format <semantics/1.0-literals>;
      $pin = 1 2 {first} | 3<1-2> # {second};";
    assert!(same_language(dtmf_xml, dtmf_abnf, "pin") > 0);
}

#[test]
fn grammars_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Grammar>();
}

/// A small deterministic generator (no dependency needed for this).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

#[test]
fn truncated_and_scrambled_grammars_never_panic() {
    let abnf = "#ABNF 1.0 UTF-8; mode voice; root $a; tag-format <semantics/1.0>;\n\
                // c\n/* d */ public $a = [é $b<0-2 /0.5/>] ( x | /2/ \"y z\" {out=1;} ) {!{ out.q = 2; }!} $<u.gram#r>;\n\
                private $b = $NULL | $GARBAGE | $VOID | b!en-US;";
    let xml = srgs_test_file!("conformance-3.grxml");
    for text in [abnf, xml] {
        for (cut, _) in text.char_indices() {
            let _ = Grammar::from_source(&text[..cut], None);
        }
    }
    let alphabet: Vec<char> = "#ABNF1.0;$a=()[]{}<>|/!\"*-x y\n&é<grammar rule item one-of>"
        .chars()
        .collect();
    let mut rng = Lcg(42);
    for _ in 0..2_000 {
        let len = rng.next(60);
        let mut text = String::from("#ABNF 1.0; $a = ");
        text.extend((0..len).map(|_| alphabet[rng.next(alphabet.len())]));
        if let Ok(g) = Grammar::from_abnf(&text) {
            let _ = g.match_voice("x y x");
            let _ = g.match_dtmf("12");
        }
    }
    let words = [
        "one",
        "hundred",
        "and",
        "point",
        "minus",
        "dollars",
        "cents",
        "january",
        "fifth",
        "oh",
        "am",
        "p",
        "m",
        "thousand",
        "-",
        "$",
        "3:",
        ":30",
        "12.",
        "x",
        "extension",
        "a",
        "twenty",
        "of",
        "the",
        "half",
        "past",
        "double",
        "€",
        "99999999999999999999999",
    ];
    let builtins = [
        "boolean", "date", "digits", "currency", "number", "phone", "time",
    ]
    .map(|b| Grammar::builtin(b).unwrap());
    for _ in 0..3_000 {
        let said: Vec<&str> = (0..1 + rng.next(6))
            .map(|_| words[rng.next(words.len())])
            .collect();
        let said = said.join(" ");
        for g in &builtins {
            let _ = g.match_voice(&said);
        }
        let keys: String = (0..rng.next(10))
            .map(|_| "0123456789*#".chars().nth(rng.next(12)).unwrap_or('1'))
            .collect();
        for g in &builtins {
            let _ = g.match_dtmf(&keys);
        }
    }
}

#[test]
fn samples_are_sentences_the_grammar_accepts() {
    let g = voice(
        r##"<rule id="main"><ruleref uri="#city"/> <item repeat="0-1">please</item></rule>
            <rule id="city"><one-of><item>new york</item><item>boston</item></one-of></rule>"##,
    );
    assert_eq!(g.sample().as_deref(), Some("new york"));
    let keys = Grammar::from_srgs_xml(
        r#"<grammar mode="dtmf" root="r" version="1.0"><rule id="r"><item repeat="2">1</item> #</rule></grammar>"#,
    )
    .unwrap();
    assert_eq!(keys.sample().as_deref(), Some("11#"));
    assert_eq!(Grammar::builtin("digits").unwrap().sample(), None);
}
