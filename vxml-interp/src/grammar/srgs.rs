//! The rule IR shared by both SRGS forms, and the XML form's compiler.
//!
//! Both compilers build [`Rules`] through a [`Builder`], which owns every limit on the size of a
//! grammar (rules, expansion nodes, repeat counts) so that the XML and ABNF forms agree on them.

use std::collections::HashMap;
use std::sync::Arc;

use super::GrammarError;
use super::InputMode;
use super::builtin::Builtin;
use super::builtin::is_dtmf_key;

/// Deepest element (XML) or group (ABNF) nesting accepted, checked before any recursion.
pub(crate) const MAX_NESTING: usize = 128;
/// Most rules in one grammar.
pub(crate) const MAX_RULES: usize = 10_000;
/// Most expansion nodes (tokens, tags, items, references) in one grammar.
pub(crate) const MAX_NODES: usize = 200_000;
/// Largest repeat count: a larger maximum is clamped to it, a larger minimum is an error.
pub(crate) const MAX_REPEAT: u32 = 1_000;

/// The SRGS namespace.
const SRGS_NS: &str = "http://www.w3.org/2001/06/grammar";
/// The VoiceXML namespace, which an inline `<grammar>` inherits as its default.
const VXML_NS: &str = "http://www.w3.org/2001/vxml";

/// A rule expansion.
#[derive(Debug, Clone)]
pub(crate) enum Expansion {
    /// One token: a DTMF key, or a lowercase word.
    Token(String),
    /// Expansions in order.
    Seq(Vec<Expansion>),
    /// Alternatives, in document order (weights are ignored).
    OneOf(Vec<Expansion>),
    /// `repeat="min-max"`; `max: None` is unbounded.
    Repeat {
        inner: Box<Expansion>,
        min: u32,
        max: Option<u32>,
    },
    /// A reference to a rule of the same grammar, by index.
    RuleRef(usize),
    /// A reference to another grammar document, which is not resolved: it matches nothing.
    External(String),
    /// A reference to a builtin grammar (`builtin:dtmf/digits`).
    Builtin(Arc<Builtin>),
    /// An SISR script (literal tags are already turned into scripts).
    Tag(String),
    /// `$NULL`: matches without consuming input.
    Null,
    /// `$VOID`: never matches.
    Void,
    /// `$GARBAGE`: any tokens, as few as possible.
    Garbage,
}

/// A rule.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) name: String,
    pub(crate) body: Expansion,
}

/// A compiled grammar: its mode and rules.
#[derive(Debug)]
pub(crate) struct Rules {
    pub(crate) mode: InputMode,
    pub(crate) rules: Vec<Rule>,
    /// Whether any rule holds a tag (then matches carry a parse tree).
    pub(crate) tagged: bool,
}

impl Rules {
    /// The index of rule `name`.
    pub(crate) fn index(&self, name: &str) -> Option<usize> {
        self.rules.iter().position(|r| r.name == name)
    }
}

/// How tags are read (`tag-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TagFormat {
    /// `semantics/1.0-literals`: a tag is a string.
    Literals,
    /// `semantics/1.0`: a tag is a script, except a bare word, which older grammars used as a
    /// literal.
    Script,
    /// No `tag-format`: a script, read with the conventions of VoiceXML 2.0-era grammars too
    /// (a quoted string is the value, `$ =` is `out =`, `var`s fill slots of an untouched `out`).
    Legacy,
}

impl TagFormat {
    pub(crate) fn from_attr(format: Option<&str>) -> Self {
        match format.map(str::trim) {
            Some(f) if f.ends_with("-literals") => Self::Literals,
            Some(_) => Self::Script,
            None => Self::Legacy,
        }
    }
}

/// Builds [`Rules`], interning rule names and enforcing the limits.
#[derive(Debug)]
pub(crate) struct Builder {
    mode: InputMode,
    tag_format: TagFormat,
    names: Vec<String>,
    index: HashMap<String, usize>,
    bodies: Vec<Option<Expansion>>,
    nodes: usize,
    tagged: bool,
    /// The first rule defined, the root when none is named.
    first: Option<usize>,
}

impl Builder {
    pub(crate) fn new(mode: InputMode, tag_format: TagFormat) -> Self {
        Self {
            mode,
            tag_format,
            names: Vec::new(),
            index: HashMap::new(),
            bodies: Vec::new(),
            nodes: 0,
            tagged: false,
            first: None,
        }
    }

    /// Counts one expansion node against [`MAX_NODES`].
    pub(crate) fn node(&mut self) -> Result<(), GrammarError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(invalid(format!("more than {MAX_NODES} grammar nodes")));
        }
        Ok(())
    }

    fn intern(&mut self, name: &str) -> Result<usize, GrammarError> {
        if let Some(&i) = self.index.get(name) {
            return Ok(i);
        }
        if self.names.len() >= MAX_RULES {
            return Err(invalid(format!("more than {MAX_RULES} rules")));
        }
        if name.is_empty() {
            return Err(invalid("empty rule name"));
        }
        let i = self.names.len();
        self.names.push(name.to_owned());
        self.index.insert(name.to_owned(), i);
        self.bodies.push(None);
        Ok(i)
    }

    /// A reference to a local rule, defined before or after.
    pub(crate) fn rule_ref(&mut self, name: &str) -> Result<Expansion, GrammarError> {
        self.node()?;
        Ok(Expansion::RuleRef(self.intern(name)?))
    }

    /// A reference by URI (`#rule`, `builtin:...` or another document).
    pub(crate) fn uri_ref(&mut self, uri: &str) -> Result<Expansion, GrammarError> {
        let uri = uri.trim();
        if let Some(local) = uri.strip_prefix('#') {
            return self.rule_ref(local);
        }
        self.node()?;
        if uri.starts_with("builtin:") {
            let builtin = Builtin::parse(uri)?;
            let wanted = match self.mode {
                InputMode::Dtmf => builtin.dtmf,
                InputMode::Voice => builtin.voice,
            };
            if !wanted {
                return Err(invalid(format!(
                    "{uri} in a {} grammar",
                    self.mode.as_str()
                )));
            }
            return Ok(Expansion::Builtin(Arc::new(builtin)));
        }
        if uri.is_empty() {
            return Err(invalid("ruleref without uri"));
        }
        Ok(Expansion::External(uri.to_owned()))
    }

    /// Defines rule `name` once.
    pub(crate) fn define(&mut self, name: &str, body: Expansion) -> Result<(), GrammarError> {
        let i = self.intern(name)?;
        self.first.get_or_insert(i);
        match &mut self.bodies[i] {
            Some(_) => Err(invalid(format!("rule {name} defined twice"))),
            slot => {
                *slot = Some(body);
                Ok(())
            }
        }
    }

    /// Token text: keys for DTMF (each non-blank character), words for voice. Quotes group
    /// words into one SRGS token; we match word by word, so they only delimit.
    pub(crate) fn tokens(
        &mut self,
        text: &str,
        out: &mut Vec<Expansion>,
    ) -> Result<(), GrammarError> {
        match self.mode {
            InputMode::Dtmf => {
                for c in text.chars().filter(|c| !c.is_whitespace() && *c != '"') {
                    if !is_dtmf_key(c) {
                        return Err(invalid(format!("{c:?} is not a DTMF key")));
                    }
                    self.node()?;
                    out.push(Expansion::Token(c.to_string()));
                }
            }
            InputMode::Voice => {
                for word in text.split(|c: char| c.is_whitespace() || c == '"') {
                    let word = normalise_word(word);
                    if !word.is_empty() {
                        self.node()?;
                        out.push(Expansion::Token(word));
                    }
                }
            }
        }
        Ok(())
    }

    /// A tag; literal tags become `out="literal";`. An empty tag is `None`.
    pub(crate) fn tag(&mut self, text: &str) -> Result<Option<Expansion>, GrammarError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        self.node()?;
        self.tagged = true;
        // The pre-SISR draft named the rule's value `$` (`{$ = "alpha"}`): that is `out`.
        let draft;
        let text = match text.strip_prefix('$') {
            Some(rest)
                if rest.trim_start().starts_with('=') && !rest.trim_start().starts_with("==") =>
            {
                draft = format!("out{rest}");
                draft.as_str()
            }
            _ => text,
        };
        // A tag that is one quoted string (`'alpha'`) is the old literal form too: as a script
        // it would do nothing, so authors of VoiceXML 2.0 grammars meant its value.
        if self.tag_format == TagFormat::Legacy
            && let Some(quoted) = quoted_literal(text)
        {
            return Ok(Some(Expansion::Tag(format!("out={};", js_string(quoted)))));
        }
        let literal = match self.tag_format {
            TagFormat::Literals => true,
            TagFormat::Script | TagFormat::Legacy => is_legacy_literal(text),
        };
        Ok(Some(Expansion::Tag(if literal {
            format!("out={};", js_string(text))
        } else if self.tag_format == TagFormat::Legacy {
            with_declared_vars(text)
        } else {
            text.to_owned()
        })))
    }

    /// Checks that every referenced rule is defined and picks the root: `root`, else the first
    /// rule defined.
    pub(crate) fn finish(self, root: Option<&str>) -> Result<(Rules, usize), GrammarError> {
        let mut rules = Vec::with_capacity(self.names.len());
        for (name, body) in self.names.into_iter().zip(self.bodies) {
            match body {
                Some(body) => rules.push(Rule { name, body }),
                None => return Err(invalid(format!("reference to undefined rule {name}"))),
            }
        }
        let root = match root {
            Some(root) => self
                .index
                .get(root)
                .copied()
                .filter(|&i| rules.get(i).is_some())
                .ok_or_else(|| invalid(format!("root rule {root} not defined")))?,
            None => self.first.ok_or_else(|| invalid("grammar has no rule"))?,
        };
        Ok((
            Rules {
                mode: self.mode,
                rules,
                tagged: self.tagged,
            },
            root,
        ))
    }
}

/// A script tag that declares top-level `var`s also records them, so that a rule whose `out`
/// no tag touched takes them as its value: the slot-filling style of VoiceXML 2.0 grammars
/// (`<tag>var city='chicago';</tag>`). A tag boa cannot parse is left as it is (its error
/// comes when it runs).
fn with_declared_vars(text: &str) -> String {
    use boa_engine::ast::operations::{VarScopedDeclaration, var_scoped_declarations};
    if crate::scope::check_source(text).is_err() {
        return text.to_owned();
    }
    let mut interner = boa_engine::interner::Interner::default();
    let mut parser = boa_engine::parser::Parser::new(boa_engine::Source::from_bytes(text));
    let scope = boa_engine::ast::scope::Scope::new_global();
    let Ok(script) = parser.parse_script(&scope, &mut interner) else {
        return text.to_owned();
    };
    let mut names = Vec::new();
    for decl in var_scoped_declarations(&script) {
        if let VarScopedDeclaration::VariableDeclaration(_) = decl {
            for sym in decl.bound_names() {
                let Some(name) = interner.resolve(sym).map(|n| n.to_string()) else {
                    continue;
                };
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
    }
    if names.is_empty() {
        return text.to_owned();
    }
    let fields: Vec<String> = names
        .iter()
        .map(|n| format!("{}:{n}", js_string(n)))
        .collect();
    format!(
        "{text}\n;$e.$vxvars = Object.assign($e.$vxvars || {{}}, {{{}}});",
        fields.join(",")
    )
}

/// The content of a tag that is a single quoted string without escapes (`'alpha'`, `"x";`).
fn quoted_literal(text: &str) -> Option<&str> {
    let text = text.trim().trim_end_matches(';').trim_end();
    let quote = text.chars().next().filter(|c| matches!(c, '\'' | '"'))?;
    let inner = text.strip_prefix(quote)?.strip_suffix(quote)?;
    (!inner.contains(quote) && !inner.contains('\\')).then_some(inner)
}

/// An old-style literal tag (`<tag>support</tag>`): words only, nothing a script would need.
fn is_legacy_literal(text: &str) -> bool {
    const KEYWORDS: &[&str] = &["out", "var", "if", "return", "true", "false", "null"];
    text.chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | ' ' | '$'))
        && !text.split(' ').any(|w| KEYWORDS.contains(&w))
}

/// An ECMAScript string literal for `s`.
pub(crate) fn js_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub(crate) fn invalid(msg: impl Into<String>) -> GrammarError {
    GrammarError::Invalid(msg.into())
}

/// A voice token as grammars and utterances compare it: lowercase, without the punctuation
/// that typed input puts after words.
pub(crate) fn normalise_word(word: &str) -> String {
    word.trim_end_matches([',', '.', '!', '?', ';', ':'])
        .to_lowercase()
}

/// Parses `repeat="n"`, `"m-n"` or `"m-"`, clamping a maximum above [`MAX_REPEAT`].
pub(crate) fn parse_repeat(spec: &str) -> Result<(u32, Option<u32>), GrammarError> {
    let bad = || invalid(format!("repeat=\"{spec}\""));
    let num = |s: &str| -> Result<u32, GrammarError> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        // Any count with more digits than u32 holds is clamped like other large ones.
        Ok(s.parse::<u32>().unwrap_or(u32::MAX))
    };
    let (min, max) = match spec.split_once('-') {
        None => {
            let n = num(spec)?;
            (n, Some(n))
        }
        Some((min, max)) if max.trim().is_empty() => (num(min)?, None),
        Some((min, max)) => (num(min)?, Some(num(max)?)),
    };
    if max.is_some_and(|max| max < min) {
        return Err(bad());
    }
    if min > MAX_REPEAT {
        return Err(invalid(format!("repeat minimum above {MAX_REPEAT}")));
    }
    Ok((min, max.map(|m| m.min(MAX_REPEAT))))
}

/// The parse of `repeat` around `inner` (`0-1` of `[...]`, and so on).
pub(crate) fn repeat(inner: Expansion, min: u32, max: Option<u32>) -> Expansion {
    if (min, max) == (1, Some(1)) {
        return inner;
    }
    Expansion::Repeat {
        inner: Box::new(inner),
        min,
        max,
    }
}

/// A sequence, without the wrapper when it holds one expansion.
pub(crate) fn seq(mut items: Vec<Expansion>) -> Expansion {
    if items.len() == 1 {
        items.pop().unwrap_or(Expansion::Null)
    } else {
        Expansion::Seq(items)
    }
}

/// Compiles an SRGS `<grammar>` element.
pub(crate) fn compile_xml(
    grammar: roxmltree::Node<'_, '_>,
) -> Result<(Rules, usize), GrammarError> {
    if grammar.tag_name().name() != "grammar" {
        return Err(invalid(format!(
            "root element is <{}>, not <grammar>",
            grammar.tag_name().name()
        )));
    }
    check_depth(grammar)?;
    let mode = match grammar.attribute("mode").map(str::trim) {
        None | Some("voice") => InputMode::Voice,
        Some("dtmf") => InputMode::Dtmf,
        Some(other) => return Err(invalid(format!("mode=\"{other}\""))),
    };
    let mut b = Builder::new(mode, TagFormat::from_attr(grammar.attribute("tag-format")));
    for rule in grammar.children().filter(|n| is_srgs(*n, "rule")) {
        let id = rule
            .attribute("id")
            .ok_or_else(|| invalid("<rule> without id"))?;
        let body = children(&mut b, rule)?;
        b.define(id, body)?;
    }
    b.finish(grammar.attribute("root"))
}

/// Measures the element nesting under `node` without recursion.
fn check_depth(node: roxmltree::Node<'_, '_>) -> Result<(), GrammarError> {
    let mut stack = vec![(node, 0usize)];
    while let Some((n, depth)) = stack.pop() {
        if depth > MAX_NESTING {
            return Err(invalid(format!(
                "elements nested deeper than {MAX_NESTING}"
            )));
        }
        stack.extend(
            n.children()
                .filter(|c| c.is_element())
                .map(|c| (c, depth + 1)),
        );
    }
    Ok(())
}

/// An SRGS element (in the SRGS or VoiceXML namespace, or none) named `name`.
fn is_srgs(node: roxmltree::Node<'_, '_>, name: &str) -> bool {
    node.is_element() && node.tag_name().name() == name && !is_foreign(node)
}

/// An element of another vocabulary, which SRGS lets processors ignore.
fn is_foreign(node: roxmltree::Node<'_, '_>) -> bool {
    node.tag_name()
        .namespace()
        .is_some_and(|ns| ns != SRGS_NS && ns != VXML_NS)
}

fn children(b: &mut Builder, node: roxmltree::Node<'_, '_>) -> Result<Expansion, GrammarError> {
    let mut out = Vec::new();
    for child in node.children() {
        if child.is_text() {
            b.tokens(child.text().unwrap_or(""), &mut out)?;
        } else if child.is_element() && !is_foreign(child) {
            out.extend(expansion(b, child)?);
        }
    }
    b.node()?;
    Ok(seq(out))
}

fn expansion(
    b: &mut Builder,
    node: roxmltree::Node<'_, '_>,
) -> Result<Option<Expansion>, GrammarError> {
    let e = match node.tag_name().name() {
        "item" => {
            let inner = children(b, node)?;
            match node.attribute("repeat") {
                None => inner,
                Some(spec) => {
                    let (min, max) = parse_repeat(spec)?;
                    repeat(inner, min, max)
                }
            }
        }
        "one-of" => {
            let mut alternatives = Vec::new();
            for child in node
                .children()
                .filter(|n| n.is_element() && !is_foreign(*n))
            {
                if let Some(e) = expansion(b, child)? {
                    alternatives.push(e);
                }
            }
            if alternatives.is_empty() {
                return Err(invalid("empty <one-of>"));
            }
            b.node()?;
            Expansion::OneOf(alternatives)
        }
        "token" => {
            let mut words = Vec::new();
            b.tokens(&node.text().unwrap_or("").replace('"', " "), &mut words)?;
            seq(words)
        }
        "tag" => return b.tag(node.text().unwrap_or("")),
        "ruleref" => match node.attribute("special") {
            Some("NULL") => Expansion::Null,
            Some("VOID") => Expansion::Void,
            Some("GARBAGE") => Expansion::Garbage,
            Some(other) => return Err(invalid(format!("special ruleref {other}"))),
            None => b.uri_ref(node.attribute("uri").unwrap_or(""))?,
        },
        "example" | "meta" | "metadata" | "lexicon" => return Ok(None),
        other => return Err(invalid(format!("unexpected <{other}>"))),
    };
    Ok(Some(e))
}
