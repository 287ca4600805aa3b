//! DTMF grammars: SRGS XML (with simple SISR tags) and the `builtin:dtmf/*` grammars, compiled
//! to a matcher that tells whether a key sequence is a prefix of, or a complete, sentence.

use std::collections::HashMap;

/// A compiled grammar.
#[derive(Debug, Clone)]
pub struct Grammar {
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Srgs(Srgs),
    Digits {
        min: usize,
        max: Option<usize>,
    },
    Boolean,
    /// A voice grammar: DTMF never matches it (no speech recogniser yet).
    Voice,
}

/// The outcome of matching keys against a grammar.
#[derive(Debug, Clone, PartialEq)]
pub enum Match {
    /// No sentence starts with these keys.
    NoMatch,
    /// Some sentence starts with these keys, none ends here.
    Prefix,
    /// A sentence ends here.
    Complete {
        /// Whether a longer sentence also starts with these keys.
        can_extend: bool,
        /// The semantic result (evaluated by the interpreter).
        semantics: Semantics,
    },
}

/// The semantic result of a match, before ECMAScript evaluation.
#[derive(Debug, Clone, PartialEq)]
pub enum Semantics {
    /// A literal value (builtins, literal tags, or the matched text when no tag ran).
    Value(SemValue),
    /// A parse tree whose SISR script tags the interpreter evaluates in ECMAScript.
    Script(ParseNode),
}

/// A literal semantic value.
#[derive(Debug, Clone, PartialEq)]
pub enum SemValue {
    /// A string.
    Str(String),
    /// A number.
    Num(f64),
    /// A boolean.
    Bool(bool),
    /// An object with properties in order.
    Object(Vec<(String, SemValue)>),
}

/// One node of the parse of a sentence: what SISR evaluation walks.
#[derive(Debug, Clone, PartialEq)]
pub enum ParseNode {
    /// A token of the sentence (a key or a word).
    Token(String),
    /// A `<tag>`'s script (or literal, for `semantics/1.0-literals`).
    Tag(String),
    /// A rule matched: its name and what it matched, in order.
    Rule {
        /// The rule's id.
        name: String,
        /// Tokens, tags and rules inside, in order.
        children: Vec<ParseNode>,
    },
}

/// Why a grammar could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrammarError {
    /// The XML is malformed.
    #[error("grammar xml: {0}")]
    Xml(String),
    /// The XML is well formed but not a valid SRGS grammar.
    #[error("grammar: {0}")]
    Invalid(String),
    /// A builtin or external grammar we do not support.
    #[error("unsupported grammar {0}")]
    Unsupported(String),
}

/// Matching work is bounded so that a pathological grammar cannot stall a call.
const MAX_STEPS: usize = 100_000;
const MAX_DEPTH: usize = 200;

impl Grammar {
    /// Compiles an SRGS XML grammar document.
    pub fn from_srgs_xml(xml: &str) -> Result<Self, GrammarError> {
        let opts = roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        };
        let doc = roxmltree::Document::parse_with_options(xml, opts)
            .map_err(|e| GrammarError::Xml(e.to_string()))?;
        Self::from_srgs_node(doc.root_element())
    }

    /// Compiles an SRGS `<grammar>` element found inside a VoiceXML document.
    pub(crate) fn from_srgs_node(node: roxmltree::Node<'_, '_>) -> Result<Self, GrammarError> {
        if node.tag_name().name() != "grammar" {
            return Err(GrammarError::Invalid(format!(
                "root element is <{}>, not <grammar>",
                node.tag_name().name()
            )));
        }
        let mode = node.attribute("mode").unwrap_or("voice");
        if mode != "dtmf" {
            return Ok(Self { kind: Kind::Voice });
        }
        Ok(Self {
            kind: Kind::Srgs(Srgs::compile(node)?),
        })
    }

    /// Compiles a `builtin:dtmf/digits?minlength=..;maxlength=..;length=..` or
    /// `builtin:dtmf/boolean` URI (also the `builtin:grammar/...` spelling and bare type names).
    pub fn builtin(uri: &str) -> Result<Self, GrammarError> {
        let rest = uri
            .strip_prefix("builtin:dtmf/")
            .or_else(|| uri.strip_prefix("builtin:grammar/"))
            .unwrap_or(uri);
        let (name, params) = rest.split_once('?').unwrap_or((rest, ""));
        match name {
            "boolean" => Ok(Self {
                kind: Kind::Boolean,
            }),
            "digits" => {
                let (mut min, mut max) = (1usize, None);
                for param in params.split(';').filter(|p| !p.is_empty()) {
                    let (key, value) = param
                        .split_once('=')
                        .ok_or_else(|| GrammarError::Unsupported(uri.to_owned()))?;
                    let n: usize = value
                        .trim()
                        .parse()
                        .map_err(|_| GrammarError::Unsupported(uri.to_owned()))?;
                    match key.trim() {
                        "minlength" => min = n,
                        "maxlength" => max = Some(n),
                        "length" => {
                            min = n;
                            max = Some(n);
                        }
                        _ => return Err(GrammarError::Unsupported(uri.to_owned())),
                    }
                }
                if max.is_some_and(|max| max < min) {
                    return Err(GrammarError::Unsupported(uri.to_owned()));
                }
                Ok(Self {
                    kind: Kind::Digits { min, max },
                })
            }
            _ => Err(GrammarError::Unsupported(uri.to_owned())),
        }
    }

    /// Whether this grammar is the builtin boolean grammar (its interpretation is a boolean).
    pub fn is_boolean(&self) -> bool {
        matches!(self.kind, Kind::Boolean)
    }

    /// Matches a key sequence (`0-9`, `*`, `#`, `A-D`).
    pub fn matches(&self, digits: &str) -> Match {
        match &self.kind {
            Kind::Voice => Match::NoMatch,
            Kind::Boolean => match digits {
                "" => Match::Prefix,
                "1" | "2" => Match::Complete {
                    can_extend: false,
                    semantics: Semantics::Value(SemValue::Bool(digits == "1")),
                },
                _ => Match::NoMatch,
            },
            Kind::Digits { min, max } => {
                if !digits.chars().all(|c| c.is_ascii_digit()) {
                    return Match::NoMatch;
                }
                let len = digits.chars().count();
                match max {
                    Some(max) if len > *max => Match::NoMatch,
                    _ if len < *min => Match::Prefix,
                    _ => complete(max.is_none_or(|max| len < max), digits),
                }
            }
            Kind::Srgs(srgs) => srgs.matches(digits),
        }
    }
}

fn complete(can_extend: bool, interpretation: &str) -> Match {
    Match::Complete {
        can_extend,
        semantics: Semantics::Value(SemValue::Str(interpretation.to_owned())),
    }
}

#[derive(Debug, Clone)]
enum Expansion {
    Keys(Vec<char>),
    Seq(Vec<Expansion>),
    OneOf(Vec<Expansion>),
    Repeat {
        inner: Box<Expansion>,
        min: u32,
        max: Option<u32>,
    },
    RuleRef(String),
    Tag(String),
    Void,
}

#[derive(Debug, Clone)]
struct Srgs {
    rules: HashMap<String, Expansion>,
    root: String,
}

impl Srgs {
    fn compile(node: roxmltree::Node<'_, '_>) -> Result<Self, GrammarError> {
        let mut rules = HashMap::new();
        let mut first = None;
        for rule in node.children().filter(|n| n.tag_name().name() == "rule") {
            let id = rule
                .attribute("id")
                .ok_or_else(|| GrammarError::Invalid("<rule> without id".into()))?;
            first.get_or_insert_with(|| id.to_owned());
            rules.insert(id.to_owned(), Expansion::Seq(children(rule)?));
        }
        let root = node
            .attribute("root")
            .map(str::to_owned)
            .or(first)
            .ok_or_else(|| GrammarError::Invalid("grammar has no rule".into()))?;
        if !rules.contains_key(&root) {
            return Err(GrammarError::Invalid(format!(
                "root rule {root} not defined"
            )));
        }
        let srgs = Self { rules, root };
        for expansion in srgs.rules.values() {
            srgs.check_refs(expansion)?;
        }
        Ok(srgs)
    }

    fn check_refs(&self, e: &Expansion) -> Result<(), GrammarError> {
        match e {
            Expansion::RuleRef(name) if !self.rules.contains_key(name) => Err(
                GrammarError::Invalid(format!("ruleref to undefined rule {name}")),
            ),
            Expansion::Seq(v) | Expansion::OneOf(v) => {
                v.iter().try_for_each(|e| self.check_refs(e))
            }
            Expansion::Repeat { inner, .. } => self.check_refs(inner),
            _ => Ok(()),
        }
    }

    fn matches(&self, digits: &str) -> Match {
        let input: Vec<char> = digits.chars().collect();
        let mut m = Matcher {
            srgs: self,
            input: &input,
            steps: 0,
            complete: None,
            need_more: false,
        };
        let start = State {
            pos: 0,
            out: None,
            latest: None,
            start: 0,
        };
        let stack = vec![
            Frame::EndRule { caller: None },
            Frame::Exp(&self.rules[&self.root]),
        ];
        m.run(stack, start);
        match m.complete {
            Some(interpretation) => Match::Complete {
                can_extend: m.need_more,
                semantics: Semantics::Value(SemValue::Str(interpretation)),
            },
            None if m.need_more => Match::Prefix,
            None => Match::NoMatch,
        }
    }
}

fn children(node: roxmltree::Node<'_, '_>) -> Result<Vec<Expansion>, GrammarError> {
    let mut out = Vec::new();
    for child in node.children() {
        if child.is_text() {
            let keys = keys(child.text().unwrap_or(""))?;
            if !keys.is_empty() {
                out.push(Expansion::Keys(keys));
            }
            continue;
        }
        if !child.is_element() {
            continue;
        }
        out.push(expansion(child)?);
    }
    Ok(out)
}

fn expansion(node: roxmltree::Node<'_, '_>) -> Result<Expansion, GrammarError> {
    let e = match node.tag_name().name() {
        "item" => {
            let inner = Expansion::Seq(children(node)?);
            match node.attribute("repeat") {
                None => inner,
                Some(spec) => {
                    let (min, max) = parse_repeat(spec)?;
                    Expansion::Repeat {
                        inner: Box::new(inner),
                        min,
                        max,
                    }
                }
            }
        }
        "one-of" => Expansion::OneOf(
            node.children()
                .filter(|n| n.is_element())
                .map(expansion)
                .collect::<Result<_, _>>()?,
        ),
        "token" => Expansion::Keys(keys(node.text().unwrap_or(""))?),
        "tag" => Expansion::Tag(node.text().unwrap_or("").trim().to_owned()),
        "ruleref" => {
            if let Some(special) = node.attribute("special") {
                match special {
                    "NULL" | "GARBAGE" => Expansion::Seq(Vec::new()),
                    "VOID" => Expansion::Void,
                    other => {
                        return Err(GrammarError::Invalid(format!("special ruleref {other}")));
                    }
                }
            } else {
                let uri = node.attribute("uri").unwrap_or("");
                let name = uri
                    .strip_prefix('#')
                    .ok_or_else(|| GrammarError::Unsupported(format!("external ruleref {uri}")))?;
                Expansion::RuleRef(name.to_owned())
            }
        }
        "example" | "meta" | "metadata" | "lexicon" => Expansion::Seq(Vec::new()),
        other => return Err(GrammarError::Invalid(format!("unexpected <{other}>"))),
    };
    Ok(e)
}

fn keys(text: &str) -> Result<Vec<char>, GrammarError> {
    let keys: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
    match keys.iter().find(|c| !is_dtmf_key(**c)) {
        Some(c) => Err(GrammarError::Invalid(format!("{c:?} is not a DTMF key"))),
        None => Ok(keys),
    }
}

/// Whether `c` is a DTMF key.
pub(crate) fn is_dtmf_key(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D')
}

fn parse_repeat(spec: &str) -> Result<(u32, Option<u32>), GrammarError> {
    let bad = || GrammarError::Invalid(format!("repeat=\"{spec}\""));
    let num = |s: &str| s.trim().parse::<u32>().map_err(|_| bad());
    match spec.split_once('-') {
        None => {
            let n = num(spec)?;
            Ok((n, Some(n)))
        }
        Some((min, "")) => Ok((num(min)?, None)),
        Some((min, max)) => {
            let (min, max) = (num(min)?, num(max)?);
            if max < min {
                return Err(bad());
            }
            Ok((min, Some(max)))
        }
    }
}

/// One pending piece of work of the backtracking matcher (a continuation stack).
#[derive(Clone)]
enum Frame<'a> {
    Exp(&'a Expansion),
    Repeat {
        inner: &'a Expansion,
        done: u32,
        min: u32,
        max: Option<u32>,
        last_pos: usize,
    },
    EndRule {
        /// The calling rule's state, restored when this rule ends (`None` for the root).
        caller: Option<(Option<String>, usize)>,
    },
}

#[derive(Clone)]
struct State {
    pos: usize,
    /// The current rule's `out`, once a tag has set it.
    out: Option<String>,
    /// `rules.latest()`: the value of the last rule reference that ended.
    latest: Option<String>,
    /// Where the current rule started, for its default value (the keys it matched).
    start: usize,
}

struct Matcher<'a> {
    srgs: &'a Srgs,
    input: &'a [char],
    steps: usize,
    complete: Option<String>,
    need_more: bool,
}

impl<'a> Matcher<'a> {
    fn run(&mut self, mut stack: Vec<Frame<'a>>, mut st: State) {
        loop {
            self.steps += 1;
            if self.steps > MAX_STEPS || stack.len() > MAX_DEPTH {
                return;
            }
            let Some(frame) = stack.pop() else {
                if st.pos == self.input.len() && self.complete.is_none() {
                    self.complete = st.out.take();
                }
                return;
            };
            match frame {
                Frame::Exp(Expansion::Keys(keys)) => {
                    for key in keys {
                        match self.input.get(st.pos) {
                            None => {
                                self.need_more = true;
                                return;
                            }
                            Some(c) if c == key => st.pos += 1,
                            Some(_) => return,
                        }
                    }
                }
                Frame::Exp(Expansion::Seq(items)) => {
                    stack.extend(items.iter().rev().map(Frame::Exp));
                }
                Frame::Exp(Expansion::OneOf(alternatives)) => {
                    for alt in alternatives {
                        let mut branch = stack.clone();
                        branch.push(Frame::Exp(alt));
                        self.run(branch, st.clone());
                    }
                    return;
                }
                Frame::Exp(Expansion::Repeat { inner, min, max }) => stack.push(Frame::Repeat {
                    inner,
                    done: 0,
                    min: *min,
                    max: *max,
                    last_pos: usize::MAX,
                }),
                Frame::Repeat {
                    inner,
                    done,
                    min,
                    max,
                    last_pos,
                } => {
                    // An iteration that consumed nothing would loop forever: stop there.
                    let progressed = last_pos != st.pos;
                    if progressed && max.is_none_or(|max| done < max) {
                        let mut again = stack.clone();
                        again.push(Frame::Repeat {
                            inner,
                            done: done + 1,
                            min,
                            max,
                            last_pos: st.pos,
                        });
                        again.push(Frame::Exp(inner));
                        self.run(again, st.clone());
                    }
                    if done < min {
                        return;
                    }
                }
                Frame::Exp(Expansion::RuleRef(name)) => {
                    let rule = &self.srgs.rules[name];
                    stack.push(Frame::EndRule {
                        caller: Some((st.out.take(), st.start)),
                    });
                    stack.push(Frame::Exp(rule));
                    st.start = st.pos;
                }
                Frame::EndRule { caller } => {
                    let value = st
                        .out
                        .take()
                        .unwrap_or_else(|| self.input[st.start..st.pos].iter().collect());
                    match caller {
                        Some((out, start)) => {
                            st.out = out;
                            st.start = start;
                            st.latest = Some(value);
                        }
                        None => st.out = Some(value),
                    }
                }
                Frame::Exp(Expansion::Tag(script)) => {
                    if let Some(value) = eval_tag(script, st.latest.as_deref()) {
                        st.out = Some(value);
                    }
                }
                Frame::Exp(Expansion::Void) => return,
            }
        }
    }
}

/// Evaluates the SISR subset we support: `out = 'literal';`, `out = rules.latest();`,
/// `out = rules.NAME;`, or a plain literal tag (the SRGS "semantics/1.0-literals" format).
fn eval_tag(script: &str, latest: Option<&str>) -> Option<String> {
    let script = script.trim().trim_end_matches(';').trim();
    let Some(rhs) = script
        .strip_prefix("out")
        .map(str::trim_start)
        .and_then(|s| s.strip_prefix('='))
    else {
        return (!script.is_empty()).then(|| script.to_owned());
    };
    let rhs = rhs.trim();
    for quote in ['\'', '"'] {
        if let Some(lit) = rhs.strip_prefix(quote).and_then(|s| s.strip_suffix(quote)) {
            return Some(lit.to_owned());
        }
    }
    if rhs.starts_with("rules.") {
        return latest.map(str::to_owned);
    }
    Some(rhs.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn srgs(body: &str) -> Grammar {
        let xml = format!(
            r#"<grammar xmlns="http://www.w3.org/2001/06/grammar" mode="dtmf" version="1.0" root="main">{body}</grammar>"#
        );
        Grammar::from_srgs_xml(&xml).expect("grammar compiles")
    }

    fn interp(m: Match) -> Option<(bool, String)> {
        match m {
            Match::Complete {
                can_extend,
                semantics: Semantics::Value(SemValue::Str(interpretation)),
            } => Some((can_extend, interpretation)),
            _ => None,
        }
    }

    #[test]
    fn one_of_with_literal_tags() {
        let g = srgs(
            r#"<rule id="main"><one-of><item>1<tag>out='sales'</tag></item><item>2 3<tag>support</tag></item></one-of></rule>"#,
        );
        assert_eq!(interp(g.matches("1")), Some((false, "sales".into())));
        assert_eq!(g.matches("2"), Match::Prefix);
        assert_eq!(interp(g.matches("23")), Some((false, "support".into())));
        assert_eq!(g.matches("3"), Match::NoMatch);
        assert_eq!(g.matches("12"), Match::NoMatch);
    }

    #[test]
    fn repeat_ranges_report_extension() {
        let g = srgs(
            r#"<rule id="main"><item repeat="2-3"><one-of><item>1</item><item>2</item></one-of></item></rule>"#,
        );
        assert_eq!(g.matches("1"), Match::Prefix);
        assert_eq!(interp(g.matches("12")), Some((true, "12".into())));
        assert_eq!(interp(g.matches("121")), Some((false, "121".into())));
        assert_eq!(g.matches("1211"), Match::NoMatch);
        let open = srgs(r#"<rule id="main"><item repeat="1-">5</item></rule>"#);
        assert_eq!(interp(open.matches("555")), Some((true, "555".into())));
    }

    #[test]
    fn ruleref_values_flow_through_rules_latest() {
        let g = srgs(
            r##"<rule id="main"><ruleref uri="#digit"/><tag>out=rules.latest();</tag> #</rule>
                <rule id="digit"><one-of><item>7<tag>out="seven"</tag></item><item>8</item></one-of></rule>"##,
        );
        assert_eq!(interp(g.matches("7#")), Some((false, "seven".into())));
        assert_eq!(interp(g.matches("8#")), Some((false, "8".into())));
        assert_eq!(g.matches("8"), Match::Prefix);
    }

    #[test]
    fn builtin_digits_lengths() {
        let g = Grammar::builtin("builtin:dtmf/digits?minlength=2;maxlength=3").unwrap();
        assert_eq!(g.matches("1"), Match::Prefix);
        assert_eq!(interp(g.matches("12")), Some((true, "12".into())));
        assert_eq!(interp(g.matches("123")), Some((false, "123".into())));
        assert_eq!(g.matches("1234"), Match::NoMatch);
        assert_eq!(g.matches("1*"), Match::NoMatch);
        let exact = Grammar::builtin("builtin:dtmf/digits?length=4").unwrap();
        assert_eq!(interp(exact.matches("1234")), Some((false, "1234".into())));
        assert!(Grammar::builtin("builtin:dtmf/currency").is_err());
    }

    #[test]
    fn builtin_boolean() {
        let g = Grammar::builtin("builtin:dtmf/boolean").unwrap();
        assert!(g.is_boolean());
        let yes = Match::Complete {
            can_extend: false,
            semantics: Semantics::Value(SemValue::Bool(true)),
        };
        assert_eq!(g.matches("1"), yes);
        assert_eq!(g.matches("3"), Match::NoMatch);
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
        assert!(Grammar::from_srgs_xml("<grammar").is_err());
    }

    #[test]
    fn left_recursion_is_bounded() {
        let g = srgs(r##"<rule id="main"><ruleref uri="#main"/>1</rule>"##);
        assert_eq!(g.matches("1"), Match::NoMatch);
    }
}

impl Grammar {
    /// An external grammar document (temporary: SRGS XML only).
    pub fn from_source(text: &str, _content_type: Option<&str>) -> Result<Self, GrammarError> {
        Self::from_srgs_xml(text)
    }

    /// The same grammar with another root rule (temporary: unchanged).
    pub fn with_root(&self, _rule: &str) -> Result<Self, GrammarError> {
        Ok(self.clone())
    }
}

/// SISR evaluation (temporary).
pub(crate) mod sisr {
    /// Evaluates a parse tree's tags.
    pub(crate) fn evaluate(
        _tree: &super::ParseNode,
        _ctx: &mut boa_engine::Context,
    ) -> Result<boa_engine::JsValue, String> {
        Err("SISR not available yet".into())
    }
}

/// Matches a spoken utterance against the voice grammars (temporary: none match).
pub fn recognize_voice(
    _grammars: &[std::sync::Arc<Grammar>],
    utterance: &str,
) -> crate::action::InputResult {
    crate::action::InputResult::NoMatch {
        utterance: utterance.to_owned(),
        mode: crate::action::InputMode::Voice,
    }
}
