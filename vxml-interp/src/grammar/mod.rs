//! Grammars: SRGS 1.0 in its XML and ABNF forms, and the VoiceXML builtins (Appendix P),
//! matched token by token against DTMF keys or spoken (typed) words.
//!
//! - [`Grammar::from_srgs_xml`], [`Grammar::from_abnf`] and [`Grammar::from_source`] compile a
//!   document; [`Grammar::builtin`] makes a builtin; [`Grammar::with_root`] picks another rule.
//! - [`Grammar::match_dtmf`] tells whether keys are a prefix of, or a complete, sentence (what
//!   [`crate::DtmfCollector`] needs); [`Grammar::match_voice`] matches a whole utterance, and
//!   [`match_utterance`] picks the first of several grammars that does.
//! - A grammar with tags gives its parse tree ([`Semantics::Script`]), whose SISR tags the
//!   interpreter evaluates in ECMAScript; other grammars give a literal ([`Semantics::Value`]).
//!
//! Every compiler and the matcher bound their work: element and group nesting, rule and node
//! counts, repeat counts, matching steps and rule recursion all have limits (see `srgs.rs`
//! and `matcher.rs`), so no grammar text or input can exhaust the stack or stall a call.

mod abnf;
mod builtin;
mod matcher;
// `sisr::evaluate` is for the interpreter core, which is being rewritten against it elsewhere;
// until it lands only the tests call it.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) mod sisr;
mod srgs;

use std::sync::Arc;

use builtin::Builtin;
use srgs::Rules;

pub(crate) use builtin::is_dtmf_key;

/// A compiled grammar.
#[derive(Debug, Clone)]
pub struct Grammar {
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    /// An SRGS grammar: shared rules and the root's index.
    Srgs {
        rules: Arc<Rules>,
        root: usize,
    },
    Builtin(Arc<Builtin>),
}

/// How the caller gave input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputMode {
    /// Keys (RFC 4733 or in-band).
    Dtmf,
    /// Speech (on the text platforms: typed words).
    Voice,
}

impl InputMode {
    /// The VoiceXML name (`dtmf` or `voice`), as in `application.lastresult$.inputmode`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dtmf => "dtmf",
            Self::Voice => "voice",
        }
    }
}

/// The outcome of matching input against a grammar.
#[derive(Debug, Clone, PartialEq)]
pub enum Match {
    /// No sentence starts with this input.
    NoMatch,
    /// Some sentence starts with these keys, none ends here (DTMF only).
    Prefix,
    /// A sentence ends here.
    Complete {
        /// Whether a longer sentence also starts with these keys (always false for voice).
        can_extend: bool,
        /// The semantic result (evaluated by the interpreter).
        semantics: Semantics,
    },
}

/// The semantic result of a match, before ECMAScript evaluation.
#[derive(Debug, Clone, PartialEq)]
pub enum Semantics {
    /// A literal value: a builtin's, or the matched text of a grammar without tags (keys run
    /// together for DTMF, words joined by one space for voice).
    Value(SemValue),
    /// The parse tree of a grammar with tags: a root [`ParseNode::Rule`] whose SISR scripts the
    /// interpreter evaluates in ECMAScript (literal tags are already scripts `out="...";`).
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
    /// A token of the sentence (a key, or a lowercase word).
    Token(String),
    /// A `<tag>`'s script.
    Tag(String),
    /// A rule matched: its name and what it matched, in order.
    Rule {
        /// The rule's id (a builtin's type, an external reference's URI).
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
    /// The document is well formed but not a valid SRGS grammar (or exceeds a limit).
    #[error("grammar: {0}")]
    Invalid(String),
    /// A builtin, media type or feature we do not support.
    #[error("unsupported grammar {0}")]
    Unsupported(String),
}

/// Most XML nodes parsed in a grammar document (roxmltree's own memory bound).
const MAX_XML_NODES: u32 = 1_000_000;

impl Grammar {
    /// Compiles an SRGS XML grammar document.
    pub fn from_srgs_xml(xml: &str) -> Result<Self, GrammarError> {
        let opts = roxmltree::ParsingOptions {
            allow_dtd: true,
            nodes_limit: MAX_XML_NODES,
            ..Default::default()
        };
        let doc = roxmltree::Document::parse_with_options(xml, opts)
            .map_err(|e| GrammarError::Xml(e.to_string()))?;
        Self::from_srgs_node(doc.root_element())
    }

    /// Compiles an SRGS `<grammar>` element found inside a VoiceXML document. Its content may
    /// also be an ABNF grammar (text starting `#ABNF`).
    pub(crate) fn from_srgs_node(node: roxmltree::Node<'_, '_>) -> Result<Self, GrammarError> {
        if node.tag_name().name() == "grammar" && !node.children().any(|c| c.is_element()) {
            let text: String = node
                .children()
                .filter(|c| c.is_text())
                .filter_map(|c| c.text())
                .collect::<Vec<_>>()
                .concat();
            if text.trim_start().starts_with("#ABNF") {
                let grammar = Self::from_abnf(&text)?;
                return match node.attribute("root") {
                    Some(root) => grammar.with_root(root),
                    None => Ok(grammar),
                };
            }
        }
        let (rules, root) = srgs::compile_xml(node)?;
        Ok(Self::srgs(rules, root))
    }

    /// Compiles an SRGS ABNF grammar document (`#ABNF 1.0;` ...).
    pub fn from_abnf(text: &str) -> Result<Self, GrammarError> {
        let (rules, root) = abnf::compile(text)?;
        Ok(Self::srgs(rules, root))
    }

    /// Compiles an external grammar document: XML when it starts with `<` (after white space
    /// and a byte order mark), ABNF when it starts with `#ABNF`, else as `content_type` says
    /// (`application/srgs+xml` or `application/srgs`).
    pub fn from_source(text: &str, content_type: Option<&str>) -> Result<Self, GrammarError> {
        let body = text.trim_start_matches(|c: char| c == '\u{feff}' || c.is_whitespace());
        if body.starts_with('<') {
            return Self::from_srgs_xml(body);
        }
        if body.starts_with("#ABNF") {
            return Self::from_abnf(body);
        }
        let media = content_type
            .map(|t| {
                t.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        match media.as_str() {
            "application/srgs+xml" => Self::from_srgs_xml(body),
            "application/srgs" => Self::from_abnf(body),
            "" => Err(GrammarError::Unsupported(
                "document of unknown format".into(),
            )),
            other => Err(GrammarError::Unsupported(format!("media type {other}"))),
        }
    }

    /// The same grammar with rule `rule` as its root (`src="g.grxml#rule"`).
    pub fn with_root(&self, rule: &str) -> Result<Self, GrammarError> {
        match &self.kind {
            Kind::Srgs { rules, .. } => {
                let root = rules
                    .index(rule)
                    .ok_or_else(|| GrammarError::Invalid(format!("no rule {rule}")))?;
                Ok(Self {
                    kind: Kind::Srgs {
                        rules: rules.clone(),
                        root,
                    },
                })
            }
            Kind::Builtin(_) => Err(GrammarError::Invalid(format!(
                "a builtin grammar has no rule {rule}"
            ))),
        }
    }

    /// A builtin grammar: `builtin:dtmf/TYPE`, `builtin:voice/TYPE`, or `builtin:grammar/TYPE`
    /// and a bare `TYPE` (both modes), where TYPE is `boolean`, `date`, `digits`, `currency`,
    /// `number`, `phone` or `time`, with Appendix P parameters (`digits?minlength=3`,
    /// `boolean?y=7;n=9`).
    pub fn builtin(uri: &str) -> Result<Self, GrammarError> {
        Ok(Self {
            kind: Kind::Builtin(Arc::new(Builtin::parse(uri)?)),
        })
    }

    fn srgs(rules: Rules, root: usize) -> Self {
        Self {
            kind: Kind::Srgs {
                rules: Arc::new(rules),
                root,
            },
        }
    }

    /// Whether this grammar is the builtin boolean grammar (its interpretation is a boolean).
    pub fn is_boolean(&self) -> bool {
        matches!(&self.kind, Kind::Builtin(b) if matches!(b.ty, builtin::Type::Boolean { .. }))
    }

    /// One sentence the grammar accepts (first alternatives, fewest repeats), for a simulated
    /// caller who must say something it understands; `None` when there is no simple one
    /// (builtins, external references). Bounded in depth and length.
    pub fn sample(&self) -> Option<String> {
        let Kind::Srgs { rules, root } = &self.kind else {
            return None;
        };
        let mut tokens = Vec::new();
        sample_into(rules, &rules.rules.get(*root)?.body, 0, &mut tokens)?;
        let sentence = if rules.mode == InputMode::Dtmf {
            tokens.concat()
        } else {
            tokens.join(" ")
        };
        let accepted = match rules.mode {
            InputMode::Dtmf => self.match_dtmf(&sentence),
            InputMode::Voice => self.match_voice(&sentence),
        };
        matches!(accepted, Match::Complete { .. }).then_some(sentence)
    }

    /// Whether this grammar takes input of `mode`.
    pub fn accepts(&self, mode: InputMode) -> bool {
        match &self.kind {
            Kind::Srgs { rules, .. } => rules.mode == mode,
            Kind::Builtin(b) => match mode {
                InputMode::Dtmf => b.dtmf,
                InputMode::Voice => b.voice,
            },
        }
    }

    /// The URIs of rule references to other documents, which are not resolved (they match
    /// nothing); the interpreter may report them.
    pub fn external_refs(&self) -> Vec<String> {
        let Kind::Srgs { rules, .. } = &self.kind else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut work: Vec<&srgs::Expansion> = rules.rules.iter().map(|r| &r.body).collect();
        while let Some(e) = work.pop() {
            match e {
                srgs::Expansion::External(uri) if !out.contains(uri) => out.push(uri.clone()),
                srgs::Expansion::Seq(v) | srgs::Expansion::OneOf(v) => work.extend(v),
                srgs::Expansion::Repeat { inner, .. } => work.push(inner),
                _ => {}
            }
        }
        out
    }

    /// Matches a key sequence (`0-9`, `*`, `#`, `A-D`): whether it is a prefix of, or a
    /// complete, sentence. A grammar that does not accept DTMF never matches.
    pub fn match_dtmf(&self, keys: &str) -> Match {
        if !self.accepts(InputMode::Dtmf) || !keys.chars().all(is_dtmf_key) {
            return Match::NoMatch;
        }
        match &self.kind {
            Kind::Builtin(b) => b.match_dtmf(keys),
            Kind::Srgs { rules, root } => {
                let input: Vec<String> = keys.chars().map(String::from).collect();
                matcher::run(rules, *root, &input, false).into_match()
            }
        }
    }

    /// Matches a whole utterance (words, compared case-insensitively): `Complete` or `NoMatch`.
    /// A grammar that does not accept voice never matches.
    pub fn match_voice(&self, utterance: &str) -> Match {
        self.match_words(&words(utterance))
    }

    fn match_words(&self, words: &[String]) -> Match {
        if !self.accepts(InputMode::Voice) || words.is_empty() {
            return Match::NoMatch;
        }
        match &self.kind {
            Kind::Builtin(b) => match b.match_voice(words) {
                Some(value) => Match::Complete {
                    can_extend: false,
                    semantics: Semantics::Value(value),
                },
                None => Match::NoMatch,
            },
            Kind::Srgs { rules, root } => match matcher::run(rules, *root, words, true).complete {
                Some(semantics) => Match::Complete {
                    can_extend: false,
                    semantics,
                },
                None => Match::NoMatch,
            },
        }
    }
}

/// The words of an utterance, as grammars compare them.
fn words(utterance: &str) -> Vec<String> {
    utterance
        .split_whitespace()
        .map(srgs::normalise_word)
        .filter(|w| !w.is_empty())
        .collect()
}

/// Appends the tokens of a shortest-choice sentence of `e` to `out`; `None` if there is none.
fn sample_into(
    rules: &srgs::Rules,
    e: &srgs::Expansion,
    depth: usize,
    out: &mut Vec<String>,
) -> Option<()> {
    use srgs::Expansion;
    if depth > 64 || out.len() > 64 {
        return None;
    }
    match e {
        Expansion::Token(t) => out.push(t.clone()),
        Expansion::Seq(items) => {
            for item in items {
                sample_into(rules, item, depth + 1, out)?;
            }
        }
        Expansion::OneOf(alternatives) => {
            let mark = out.len();
            let found = alternatives.iter().any(|alt| {
                out.truncate(mark);
                sample_into(rules, alt, depth + 1, out).is_some()
            });
            if !found {
                return None;
            }
        }
        Expansion::Repeat { inner, min, .. } => {
            for _ in 0..(*min).min(8) {
                sample_into(rules, inner, depth + 1, out)?;
            }
        }
        Expansion::RuleRef(i) => sample_into(rules, &rules.rules.get(*i)?.body, depth + 1, out)?,
        Expansion::Tag(_) | Expansion::Null => {}
        Expansion::External(_) | Expansion::Builtin(_) | Expansion::Void | Expansion::Garbage => {
            return None;
        }
    }
    Some(())
}

/// How an utterance fared against a list of grammars.
#[derive(Debug, Clone, PartialEq)]
pub enum VoiceMatch {
    /// Nothing was said.
    Blank,
    /// `grammar` (an index into the list) took it.
    Matched {
        /// The utterance, normalised (lowercase words, single spaces).
        utterance: String,
        /// Index of the grammar that matched.
        grammar: usize,
        /// Its semantics.
        semantics: Semantics,
    },
    /// No grammar took it.
    Unmatched {
        /// The utterance, normalised.
        utterance: String,
    },
}

/// Matches an utterance against grammars in priority order: the first grammar that accepts
/// voice and matches the whole utterance wins.
pub fn match_utterance(grammars: &[Arc<Grammar>], utterance: &str) -> VoiceMatch {
    let words = words(utterance);
    if words.is_empty() {
        return VoiceMatch::Blank;
    }
    let utterance = words.join(" ");
    for (grammar, g) in grammars.iter().enumerate() {
        if let Match::Complete { semantics, .. } = g.match_words(&words) {
            return VoiceMatch::Matched {
                utterance,
                grammar,
                semantics,
            };
        }
    }
    VoiceMatch::Unmatched { utterance }
}

#[cfg(test)]
mod tests;
