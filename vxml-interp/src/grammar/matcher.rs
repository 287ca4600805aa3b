//! A backtracking matcher of token sequences against the rule IR.
//!
//! It is iterative: the continuation (what is left to match), the trace (what matched, for the
//! parse tree) and the active rule chain are persistent lists shared between branches, and
//! pending branches wait on an explicit stack, so neither the grammar nor the input can deepen
//! the Rust stack. Work is bounded by [`MAX_STEPS`], rule nesting by [`MAX_RULE_DEPTH`], and a
//! rule that calls itself without consuming input (left recursion) fails that branch.

use std::rc::Rc;

use super::InputMode;
use super::builtin::Builtin;
use super::srgs::{Expansion, Rules, js_string};
use super::{Match, ParseNode, SemValue, Semantics};

/// Matching steps per match, across all branches.
pub(crate) const MAX_STEPS: usize = 200_000;
/// Deepest rule reference nesting on one branch.
pub(crate) const MAX_RULE_DEPTH: usize = 200;
/// Most tokens a builtin referenced from a rule takes (no builtin sentence is longer).
const MAX_BUILTIN_TOKENS: usize = 64;

/// A persistent (shared-tail) list.
struct Cons<T> {
    head: T,
    tail: List<T>,
}

type List<T> = Option<Rc<Cons<T>>>;

impl<T> Drop for Cons<T> {
    // Unlinks the tail iteratively: the default drop would recurse once per element.
    fn drop(&mut self) {
        let mut next = self.tail.take();
        while let Some(rc) = next {
            match Rc::try_unwrap(rc) {
                Ok(mut cons) => next = cons.tail.take(),
                Err(_) => break,
            }
        }
    }
}

fn push<T>(list: &List<T>, head: T) -> List<T> {
    Some(Rc::new(Cons {
        head,
        tail: list.clone(),
    }))
}

/// Pending work.
#[derive(Clone, Copy)]
enum Frame<'a> {
    Exp(&'a Expansion),
    Repeat {
        inner: &'a Expansion,
        done: u32,
        min: u32,
        max: Option<u32>,
        last_pos: usize,
    },
    /// Garbage that may take more tokens.
    Garbage,
    EndRule,
}

/// What a branch matched, in order.
#[derive(Clone, Copy)]
enum Event<'a> {
    Enter(&'a str),
    Token(usize),
    Tag(&'a str),
    /// A tag made at match time (a builtin's value).
    Value(usize),
    Exit,
}

#[derive(Clone)]
struct State<'a> {
    pos: usize,
    stack: List<Frame<'a>>,
    trace: List<Event<'a>>,
    /// Active rules (index, where each started), innermost first.
    active: List<(usize, usize)>,
    depth: usize,
}

/// How a match ended.
pub(crate) struct Outcome {
    /// The first complete parse, as a parse tree when the grammar has tags.
    pub(crate) complete: Option<Semantics>,
    /// Whether some branch ran out of input (more tokens could extend or complete a sentence).
    pub(crate) need_more: bool,
}

impl Outcome {
    /// The DTMF reading: prefix, complete (and whether it can extend) or no match.
    pub(crate) fn into_match(self) -> Match {
        match self.complete {
            Some(semantics) => Match::Complete {
                can_extend: self.need_more,
                semantics,
            },
            None if self.need_more => Match::Prefix,
            None => Match::NoMatch,
        }
    }
}

struct Matcher<'a> {
    rules: &'a Rules,
    input: &'a [String],
    steps: usize,
    need_more: bool,
    /// Values made by builtins, referred to by [`Event::Value`].
    values: Vec<String>,
    /// Stop at the first complete parse (voice), or explore every branch (DTMF prefixes).
    first_only: bool,
    /// Tests: an external reference matches one token `$<uri>` (extension removed).
    externals_as_tokens: bool,
}

/// Matches `input` against rule `root`.
pub(crate) fn run(rules: &Rules, root: usize, input: &[String], first_only: bool) -> Outcome {
    run_with(rules, root, input, first_only, false)
}

pub(crate) fn run_with(
    rules: &Rules,
    root: usize,
    input: &[String],
    first_only: bool,
    externals_as_tokens: bool,
) -> Outcome {
    let Some(rule) = rules.rules.get(root) else {
        return Outcome {
            complete: None,
            need_more: false,
        };
    };
    let mut m = Matcher {
        rules,
        input,
        steps: 0,
        need_more: false,
        values: Vec::new(),
        first_only,
        externals_as_tokens,
    };
    let start = State {
        pos: 0,
        stack: push(&push(&None, Frame::EndRule), Frame::Exp(&rule.body)),
        trace: push(&None, Event::Enter(&rule.name)),
        active: push(&None, (root, 0)),
        depth: 1,
    };
    let complete = m.search(start).map(|trace| m.semantics(&trace));
    Outcome {
        complete,
        need_more: m.need_more,
    }
}

/// The external-reference placeholder token used by tests.
pub(crate) fn external_token(uri: &str) -> String {
    let uri = uri.replace(".grxml", "").replace(".gram", "");
    format!("$<{}>", uri.to_lowercase())
}

impl<'a> Matcher<'a> {
    /// Depth-first search in document order; returns the trace of the first complete parse.
    fn search(&mut self, start: State<'a>) -> Option<List<Event<'a>>> {
        let mut branches = vec![start];
        let mut found = None;
        while let Some(mut st) = branches.pop() {
            loop {
                self.steps += 1;
                if self.steps > MAX_STEPS {
                    return found;
                }
                let Some(frame) = st.stack.as_ref().map(|c| c.head) else {
                    if st.pos == self.input.len() && found.is_none() {
                        found = Some(st.trace.clone());
                        if self.first_only {
                            return found;
                        }
                    }
                    break;
                };
                st.stack = st.stack.as_ref().and_then(|c| c.tail.clone());
                if !self.step(frame, &mut st, &mut branches) {
                    break;
                }
            }
        }
        found
    }

    /// Runs one frame; false ends the branch. Alternatives are pushed on `branches` in
    /// reverse so that the first in document order runs first.
    fn step(
        &mut self,
        frame: Frame<'a>,
        st: &mut State<'a>,
        branches: &mut Vec<State<'a>>,
    ) -> bool {
        match frame {
            Frame::Exp(Expansion::Token(token)) => self.token(st, |t| t == token),
            Frame::Exp(Expansion::Seq(items)) => {
                for item in items.iter().rev() {
                    st.stack = push(&st.stack, Frame::Exp(item));
                }
                true
            }
            Frame::Exp(Expansion::OneOf(alternatives)) => {
                for alt in alternatives.iter().skip(1).rev() {
                    let mut branch = st.clone();
                    branch.stack = push(&branch.stack, Frame::Exp(alt));
                    branches.push(branch);
                }
                if let Some(first) = alternatives.first() {
                    st.stack = push(&st.stack, Frame::Exp(first));
                }
                !alternatives.is_empty()
            }
            Frame::Exp(Expansion::Repeat { inner, min, max }) => {
                st.stack = push(
                    &st.stack,
                    Frame::Repeat {
                        inner,
                        done: 0,
                        min: *min,
                        max: *max,
                        last_pos: usize::MAX,
                    },
                );
                true
            }
            Frame::Repeat {
                inner,
                done,
                min,
                max,
                last_pos,
            } => {
                // An iteration that consumed nothing would loop forever: only the minimum
                // count of empty iterations is useful, so stop once it is reached.
                let progressed = last_pos != st.pos || done < min;
                let may_stop = done >= min;
                let may_continue = progressed && max.is_none_or(|max| done < max);
                if may_stop && may_continue {
                    // Greedy: another iteration first, stopping here as the alternative.
                    branches.push(st.clone());
                }
                if may_continue {
                    st.stack = push(
                        &st.stack,
                        Frame::Repeat {
                            inner,
                            done: done + 1,
                            min,
                            max,
                            last_pos: st.pos,
                        },
                    );
                    st.stack = push(&st.stack, Frame::Exp(inner));
                    true
                } else {
                    may_stop
                }
            }
            Frame::Exp(Expansion::RuleRef(index)) => self.enter(*index, st),
            Frame::EndRule => {
                st.trace = push(&st.trace, Event::Exit);
                st.active = st.active.as_ref().and_then(|c| c.tail.clone());
                st.depth -= 1;
                true
            }
            Frame::Exp(Expansion::Tag(script)) => {
                st.trace = push(&st.trace, Event::Tag(script));
                true
            }
            Frame::Exp(Expansion::Null) => true,
            Frame::Exp(Expansion::Void) => false,
            Frame::Exp(Expansion::External(uri)) => {
                if !self.externals_as_tokens {
                    return false;
                }
                let token = external_token(uri);
                st.trace = push(&st.trace, Event::Enter(uri));
                let ok = self.token(st, |t| *t == token);
                st.trace = push(&st.trace, Event::Exit);
                ok
            }
            Frame::Exp(Expansion::Garbage) | Frame::Garbage => {
                // As few tokens as possible: skip now, or take one and maybe more.
                if st.pos < self.input.len() {
                    let mut more = st.clone();
                    more.trace = push(&more.trace, Event::Token(more.pos));
                    more.pos += 1;
                    more.stack = push(&more.stack, Frame::Garbage);
                    branches.push(more);
                } else {
                    self.need_more = true;
                }
                true
            }
            Frame::Exp(Expansion::Builtin(builtin)) => self.builtin(builtin, st, branches),
        }
    }

    /// Consumes one token if `accept` takes it.
    fn token(&mut self, st: &mut State<'a>, accept: impl Fn(&String) -> bool) -> bool {
        match self.input.get(st.pos) {
            None => {
                self.need_more = true;
                false
            }
            Some(t) if accept(t) => {
                st.trace = push(&st.trace, Event::Token(st.pos));
                st.pos += 1;
                true
            }
            Some(_) => false,
        }
    }

    fn enter(&mut self, index: usize, st: &mut State<'a>) -> bool {
        let Some(rule) = self.rules.rules.get(index) else {
            return false;
        };
        if st.depth >= MAX_RULE_DEPTH {
            return false;
        }
        // Left recursion: the same rule already active at this position.
        let mut cur = st.active.as_ref();
        while let Some(cons) = cur {
            let (active, at) = cons.head;
            if at != st.pos {
                break;
            }
            if active == index {
                return false;
            }
            cur = cons.tail.as_ref();
        }
        st.active = push(&st.active, (index, st.pos));
        st.depth += 1;
        st.trace = push(&st.trace, Event::Enter(&rule.name));
        st.stack = push(&st.stack, Frame::EndRule);
        st.stack = push(&st.stack, Frame::Exp(&rule.body));
        true
    }

    /// A builtin takes any number of tokens it accepts; each length is a branch (shortest
    /// first), and its value becomes a literal tag.
    fn builtin(
        &mut self,
        builtin: &'a Builtin,
        st: &mut State<'a>,
        branches: &mut Vec<State<'a>>,
    ) -> bool {
        let rest = &self.input[st.pos..];
        let mut ends = Vec::new();
        for len in 1..=rest.len().min(MAX_BUILTIN_TOKENS) {
            self.steps += len;
            if self.steps > MAX_STEPS {
                break;
            }
            let value = match self.rules.mode {
                InputMode::Dtmf => match builtin.match_dtmf(&rest[..len].concat()) {
                    Match::Complete {
                        semantics: Semantics::Value(v),
                        can_extend,
                    } => {
                        if len == rest.len() && can_extend {
                            self.need_more = true;
                        }
                        Some(v)
                    }
                    Match::Prefix => {
                        if len == rest.len() {
                            self.need_more = true;
                        }
                        None
                    }
                    _ => None,
                },
                InputMode::Voice => builtin.match_voice(&rest[..len]),
            };
            if let Some(v) = value {
                ends.push((len, v));
            }
        }
        if rest.is_empty() && self.rules.mode == InputMode::Dtmf {
            self.need_more = true;
        }
        let mut all = Vec::new();
        for (len, value) in ends {
            let mut b = st.clone();
            b.trace = push(&b.trace, Event::Enter(builtin.name()));
            for i in 0..len {
                b.trace = push(&b.trace, Event::Token(b.pos + i));
            }
            self.values.push(format!("out={};", js_value(&value)));
            b.trace = push(&b.trace, Event::Value(self.values.len() - 1));
            b.trace = push(&b.trace, Event::Exit);
            b.pos += len;
            all.push(b);
        }
        let mut all = all.into_iter();
        let Some(first) = all.next() else {
            return false;
        };
        let rest: Vec<_> = all.collect();
        branches.extend(rest.into_iter().rev());
        *st = first;
        true
    }

    /// The semantics of a complete parse.
    fn semantics(&self, trace: &List<Event<'a>>) -> Semantics {
        let joiner = match self.rules.mode {
            InputMode::Dtmf => "",
            InputMode::Voice => " ",
        };
        if !self.rules.tagged {
            return Semantics::Value(SemValue::Str(self.input.join(joiner)));
        }
        let mut events = Vec::new();
        let mut cur = trace.as_ref();
        while let Some(cons) = cur {
            events.push(cons.head);
            cur = cons.tail.as_ref();
        }
        events.reverse();
        // Build the tree with an explicit stack of open rules.
        let mut open: Vec<(String, Vec<ParseNode>)> = Vec::new();
        let mut root = None;
        for event in events {
            match event {
                Event::Enter(name) => open.push((name.to_owned(), Vec::new())),
                Event::Token(i) => {
                    if let Some((_, children)) = open.last_mut() {
                        children.push(ParseNode::Token(self.input[i].clone()));
                    }
                }
                Event::Tag(script) => {
                    if let Some((_, children)) = open.last_mut() {
                        children.push(ParseNode::Tag(script.to_owned()));
                    }
                }
                Event::Value(i) => {
                    if let Some((_, children)) = open.last_mut() {
                        children.push(ParseNode::Tag(self.values[i].clone()));
                    }
                }
                Event::Exit => {
                    if let Some((name, children)) = open.pop() {
                        let node = ParseNode::Rule { name, children };
                        match open.last_mut() {
                            Some((_, parent)) => parent.push(node),
                            None => root = Some(node),
                        }
                    }
                }
            }
        }
        Semantics::Script(root.unwrap_or(ParseNode::Rule {
            name: String::new(),
            children: Vec::new(),
        }))
    }
}

/// An ECMAScript literal for a value.
pub(crate) fn js_value(value: &SemValue) -> String {
    match value {
        SemValue::Str(s) => js_string(s),
        SemValue::Num(n) if n.is_finite() => n.to_string(),
        SemValue::Num(_) => "NaN".to_owned(),
        SemValue::Bool(b) => b.to_string(),
        SemValue::Object(props) => {
            let props: Vec<String> = props
                .iter()
                .map(|(k, v)| format!("{}:{}", js_string(k), js_value(v)))
                .collect();
            format!("({{{}}})", props.join(","))
        }
    }
}
