//! The SRGS 1.0 ABNF form (SRGS §4), compiled to the same rule IR as the XML form.
//!
//! A hand-written recursive descent parser; group nesting is counted and capped at
//! [`MAX_NESTING`] so that `((((…))))` cannot exhaust the stack.

use super::GrammarError;
use super::InputMode;
use super::srgs::{self, Builder, Expansion, MAX_NESTING, Rules, TagFormat, invalid};

/// Compiles an ABNF grammar document.
pub(crate) fn compile(text: &str) -> Result<(Rules, usize), GrammarError> {
    let mut p = Parser { s: text, pos: 0 };
    p.header()?;
    let mut mode = InputMode::Voice;
    let mut root: Option<String> = None;
    let mut tag_format = TagFormat::Legacy;
    // Declarations come first (SRGS §4.1); rules follow, so the builder is made at the first.
    let mut builder: Option<Builder> = None;
    loop {
        p.skip_blank()?;
        if p.eof() {
            break;
        }
        if p.peek() == Some('$') || p.keyword("public") || p.keyword("private") {
            let b = builder.get_or_insert_with(|| Builder::new(mode, tag_format));
            p.rule(b)?;
            continue;
        }
        if p.peek() == Some('{') {
            // A header tag declaration (global script): accepted and not run.
            p.tag_text()?;
            p.expect(';')?;
            continue;
        }
        let word = p.word();
        if builder.is_some() {
            return Err(p.error(format!("declaration {word:?} after the rules")));
        }
        p.skip_blank()?;
        match word {
            "mode" => {
                mode = match p.word() {
                    "voice" => InputMode::Voice,
                    "dtmf" => InputMode::Dtmf,
                    other => return Err(p.error(format!("mode {other:?}"))),
                };
            }
            "root" => {
                p.expect('$')?;
                root = Some(p.rule_name().to_owned());
            }
            "tag-format" => tag_format = TagFormat::from_attr(Some(&p.uri()?)),
            "language" | "base" | "lexicon" => {
                p.uri()?;
            }
            "meta" | "http-equiv" => {
                p.quoted()?;
                p.skip_blank()?;
                if p.word() != "is" {
                    return Err(p.error("expected `is`"));
                }
                p.skip_blank()?;
                p.quoted()?;
            }
            "" => return Err(p.error(format!("unexpected {:?}", p.peek().unwrap_or(' ')))),
            other => return Err(p.error(format!("unknown declaration {other:?}"))),
        }
        p.expect(';')?;
    }
    let b = builder.ok_or_else(|| invalid("grammar has no rule"))?;
    b.finish(root.as_deref())
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

/// Characters that end a bare token (SRGS §4.1: tokens are delimited by white space and these).
fn is_special(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            ';' | '|' | '/' | '(' | ')' | '[' | ']' | '{' | '}' | '<' | '>' | '$' | '!' | '"' | '='
        )
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        self.s.get(self.pos..).unwrap_or("")
    }

    fn eof(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn error(&self, msg: impl std::fmt::Display) -> GrammarError {
        let line = 1 + self.s.get(..self.pos).unwrap_or("").matches('\n').count();
        invalid(format!("abnf line {line}: {msg}"))
    }

    fn expect(&mut self, c: char) -> Result<(), GrammarError> {
        self.skip_blank()?;
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            Ok(())
        } else {
            Err(self.error(format!("expected {c:?}")))
        }
    }

    /// Whether `word` comes next as a whole word.
    fn keyword(&self, word: &str) -> bool {
        self.rest()
            .strip_prefix(word)
            .is_some_and(|after| after.chars().next().is_none_or(char::is_whitespace))
    }

    /// Skips white space and comments.
    fn skip_blank(&mut self) -> Result<(), GrammarError> {
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start();
            self.pos += rest.len() - trimmed.len();
            if trimmed.starts_with("//") {
                self.pos += trimmed.find('\n').unwrap_or(trimmed.len());
            } else if let Some(body) = trimmed.strip_prefix("/*") {
                let end = body
                    .find("*/")
                    .ok_or_else(|| self.error("unterminated comment"))?;
                self.pos += 2 + end + 2;
            } else {
                return Ok(());
            }
        }
    }

    /// `#ABNF 1.0 [encoding];` after an optional byte order mark and white space.
    fn header(&mut self) -> Result<(), GrammarError> {
        let rest = self.rest();
        let trimmed = rest.trim_start_matches(|c: char| c == '\u{feff}' || c.is_whitespace());
        self.pos += rest.len() - trimmed.len();
        let Some(after) = trimmed.strip_prefix("#ABNF") else {
            return Err(self.error("missing #ABNF header"));
        };
        self.pos += "#ABNF".len();
        let end = after
            .find(';')
            .ok_or_else(|| self.error("unterminated header"))?;
        let mut words = after[..end].split_whitespace();
        if words.next() != Some("1.0") {
            return Err(self.error("unsupported ABNF version"));
        }
        self.pos += end + 1;
        Ok(())
    }

    /// A run of non-special characters.
    fn word(&mut self) -> &'a str {
        let rest = self.rest();
        let len = rest.find(is_special).unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    fn rule_name(&mut self) -> &'a str {
        let rest = self.rest();
        let len = rest
            .find(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')))
            .unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    /// `<uri>`, or a bare word (`language en-US;`).
    fn uri(&mut self) -> Result<String, GrammarError> {
        self.skip_blank()?;
        if self.peek() == Some('<') {
            self.pos += 1;
            let rest = self.rest();
            let end = rest
                .find('>')
                .ok_or_else(|| self.error("unterminated <uri>"))?;
            self.pos += end + 1;
            return Ok(rest[..end].trim().to_owned());
        }
        Ok(self.word().to_owned())
    }

    /// `"..."` or `'...'` with backslash escapes.
    fn quoted(&mut self) -> Result<String, GrammarError> {
        let quote = match self.bump() {
            Some(q @ ('"' | '\'')) => q,
            _ => return Err(self.error("expected a quoted string")),
        };
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Err(self.error("unterminated string")),
                Some('\\') => out.extend(self.bump()),
                Some(c) if c == quote => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    /// `{...}` (ends at the first `}`) or `{!{...}!}`; returns the content.
    fn tag_text(&mut self) -> Result<&'a str, GrammarError> {
        let rest = self.rest();
        if let Some(body) = rest.strip_prefix("{!{") {
            let end = body
                .find("}!}")
                .ok_or_else(|| self.error("unterminated {!{ tag"))?;
            self.pos += 3 + end + 3;
            return Ok(&body[..end]);
        }
        let body = rest
            .strip_prefix('{')
            .ok_or_else(|| self.error("expected a tag"))?;
        let end = body
            .find('}')
            .ok_or_else(|| self.error("unterminated tag"))?;
        self.pos += 1 + end + 1;
        Ok(&body[..end])
    }

    /// `[public|private] $name = expansion ;`
    fn rule(&mut self, b: &mut Builder) -> Result<(), GrammarError> {
        if self.keyword("public") || self.keyword("private") {
            self.word();
            self.skip_blank()?;
        }
        self.expect('$')?;
        let name = self.rule_name();
        if name.is_empty() || matches!(name, "NULL" | "VOID" | "GARBAGE") {
            return Err(self.error(format!("bad rule name {name:?}")));
        }
        self.expect('=')?;
        let body = self.alternatives(b, 0)?;
        self.expect(';')?;
        b.define(name, body)
    }

    /// `[/w/] seq | [/w/] seq | ...`
    fn alternatives(&mut self, b: &mut Builder, depth: usize) -> Result<Expansion, GrammarError> {
        if depth > MAX_NESTING {
            return Err(self.error(format!("groups nested deeper than {MAX_NESTING}")));
        }
        let mut alternatives = Vec::new();
        loop {
            self.skip_blank()?;
            if self.peek() == Some('/') {
                // A weight: `/10/` or `/0.5/`; ignored.
                self.pos += 1;
                let rest = self.rest();
                let end = rest
                    .find('/')
                    .ok_or_else(|| self.error("unterminated weight"))?;
                if rest[..end].trim().parse::<f64>().is_err() {
                    return Err(self.error("bad weight"));
                }
                self.pos += end + 1;
            }
            alternatives.push(self.sequence(b, depth)?);
            self.skip_blank()?;
            if self.peek() != Some('|') {
                break;
            }
            self.pos += 1;
        }
        if alternatives.len() == 1 {
            return Ok(alternatives.pop().unwrap_or(Expansion::Null));
        }
        b.node()?;
        Ok(Expansion::OneOf(alternatives))
    }

    /// Items up to `|`, `)`, `]` or `;`.
    fn sequence(&mut self, b: &mut Builder, depth: usize) -> Result<Expansion, GrammarError> {
        let mut items = Vec::new();
        loop {
            self.skip_blank()?;
            match self.peek() {
                None | Some('|' | ')' | ']' | ';') => break,
                Some(_) => self.item(b, depth, &mut items)?,
            }
        }
        if items.is_empty() {
            return Err(self.error("empty expansion"));
        }
        b.node()?;
        Ok(srgs::seq(items))
    }

    /// One unit with its repeat `<m-n>` and language `!xx` suffixes.
    fn item(
        &mut self,
        b: &mut Builder,
        depth: usize,
        out: &mut Vec<Expansion>,
    ) -> Result<(), GrammarError> {
        let mut unit = match self.peek() {
            Some('(') => {
                self.pos += 1;
                let inner = self.alternatives(b, depth + 1)?;
                self.expect(')')?;
                Some(inner)
            }
            Some('[') => {
                self.pos += 1;
                let inner = self.alternatives(b, depth + 1)?;
                self.expect(']')?;
                Some(srgs::repeat(inner, 0, Some(1)))
            }
            Some('{') => {
                let text = self.tag_text()?;
                b.tag(text)?
            }
            Some('$') => {
                self.pos += 1;
                Some(self.reference(b)?)
            }
            Some('"') => {
                let text = self.quoted()?;
                let mut words = Vec::new();
                b.tokens(&text, &mut words)?;
                Some(srgs::seq(words))
            }
            Some(c) if !is_special(c) => {
                let word = self.word();
                b.tokens(word, out)?;
                None
            }
            Some(c) => return Err(self.error(format!("unexpected {c:?}"))),
            None => return Err(self.error("unexpected end")),
        };
        // Suffixes apply to the unit, or to the last token of a bare word. Each repeat wraps
        // it once more, so repeats count against the nesting limit too.
        let mut wraps = depth;
        loop {
            self.skip_blank()?;
            match self.peek() {
                Some('<') => {
                    self.pos += 1;
                    let rest = self.rest();
                    let end = rest
                        .find('>')
                        .ok_or_else(|| self.error("unterminated repeat"))?;
                    // `<m-n /p/>`: the probability is ignored.
                    let spec = rest[..end].split('/').next().unwrap_or("");
                    let (min, max) = srgs::parse_repeat(spec)?;
                    self.pos += end + 1;
                    let target = match unit.take().or_else(|| out.pop()) {
                        Some(e) => e,
                        None => return Err(self.error("repeat of nothing")),
                    };
                    wraps += 1;
                    if wraps > MAX_NESTING {
                        return Err(self.error(format!("repeats nested deeper than {MAX_NESTING}")));
                    }
                    b.node()?;
                    unit = Some(srgs::repeat(target, min, max));
                }
                Some('!') => {
                    self.pos += 1;
                    if self.word().is_empty() {
                        return Err(self.error("empty language"));
                    }
                }
                _ => break,
            }
        }
        out.extend(unit);
        Ok(())
    }

    /// After `$`: `name`, `NULL`/`VOID`/`GARBAGE`, or `<uri>` (optionally `~<media-type>`).
    fn reference(&mut self, b: &mut Builder) -> Result<Expansion, GrammarError> {
        if self.peek() == Some('<') {
            let uri = self.uri()?;
            if self.rest().starts_with("~<") {
                self.pos += 1;
                self.uri()?;
            }
            return b.uri_ref(&uri);
        }
        let name = self.rule_name();
        Ok(match name {
            "NULL" => Expansion::Null,
            "VOID" => Expansion::Void,
            "GARBAGE" => Expansion::Garbage,
            "" => return Err(self.error("empty rule reference")),
            name => b.rule_ref(name)?,
        })
    }
}
