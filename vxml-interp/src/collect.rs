//! Sans-IO DTMF collection: turns keys and timeouts into an [`InputResult`] with the VoiceXML
//! timing rules (`timeout`, `interdigittimeout`, `termchar`, `termtimeout`).
//!
//! The caller owns the clock: feed keys with [`DtmfCollector::handle_digit`], and call
//! [`DtmfCollector::handle_timeout`] when the deadline from [`DtmfCollector::poll`] passes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::action::{CollectRequest, InputMode, InputResult};
use crate::grammar::{Grammar, Match, Semantics, VoiceMatch};

/// Recognises a (typed) utterance against a collection's grammars: the first grammar that
/// accepts voice and matches the whole utterance gives the result; a blank one is no input.
pub fn recognize_voice(grammars: &[Arc<Grammar>], utterance: &str) -> InputResult {
    match crate::grammar::match_utterance(grammars, utterance) {
        VoiceMatch::Blank => InputResult::NoInput,
        VoiceMatch::Matched {
            utterance,
            grammar,
            semantics,
        } => InputResult::Match {
            utterance,
            mode: InputMode::Voice,
            grammar,
            semantics,
        },
        VoiceMatch::Unmatched { utterance } => InputResult::NoMatch {
            utterance,
            mode: InputMode::Voice,
        },
    }
}

/// Where a collection stands.
#[derive(Debug, Clone, PartialEq)]
pub enum CollectState {
    /// Waiting for a key until `deadline`; call `handle_timeout` then.
    Pending {
        /// When to call `handle_timeout`.
        deadline: Instant,
    },
    /// Finished.
    Done(InputResult),
}

/// Collects DTMF keys against a set of grammars.
#[derive(Debug)]
pub struct DtmfCollector {
    grammars: Vec<Arc<Grammar>>,
    interdigit_timeout: Duration,
    term_timeout: Duration,
    termchar: Option<char>,
    keys: String,
    /// The best complete match so far (grammar index, semantics), used when the timer fires.
    complete: Option<(usize, Semantics)>,
    state: CollectState,
}

impl DtmfCollector {
    /// Starts a collection at `now`: the first key must come within `req.timeout`.
    pub fn new(req: &CollectRequest, now: Instant) -> Self {
        Self {
            grammars: req.grammars.clone(),
            interdigit_timeout: req.interdigit_timeout,
            term_timeout: req.term_timeout,
            termchar: req.termchar,
            keys: String::new(),
            complete: None,
            state: CollectState::Pending {
                deadline: now + req.timeout,
            },
        }
    }

    /// Handles one key pressed at `now`. Keys after the end are ignored.
    pub fn handle_digit(&mut self, now: Instant, key: char) {
        if matches!(self.state, CollectState::Done(_)) {
            return;
        }
        if Some(key) == self.termchar {
            self.finish();
            return;
        }
        self.keys.push(key);
        let mut prefix = false;
        let mut best: Option<(bool, usize, Semantics)> = None;
        // Only grammars that take DTMF; indexes stay those of the request.
        let dtmf = self
            .grammars
            .iter()
            .enumerate()
            .filter(|(_, g)| g.accepts(InputMode::Dtmf));
        for (index, grammar) in dtmf {
            match grammar.match_dtmf(&self.keys) {
                Match::NoMatch => {}
                Match::Prefix => prefix = true,
                Match::Complete {
                    can_extend,
                    semantics,
                } => {
                    if best.is_none() {
                        best = Some((can_extend, index, semantics));
                    } else {
                        prefix |= can_extend;
                    }
                }
            }
        }
        self.complete = best.as_ref().map(|(_, g, s)| (*g, s.clone()));
        let wait = match best {
            // Nothing can come of more keys.
            None if !prefix => {
                self.finish();
                return;
            }
            Some((can_extend, _, _)) if !can_extend && !prefix => {
                if self.termchar.is_some() && !self.term_timeout.is_zero() {
                    self.term_timeout
                } else {
                    self.finish();
                    return;
                }
            }
            _ => self.interdigit_timeout,
        };
        self.state = CollectState::Pending {
            deadline: now + wait,
        };
    }

    /// Handles the timer; does nothing before the deadline.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let CollectState::Pending { deadline } = self.state
            && now >= deadline
        {
            if self.keys.is_empty() {
                self.state = CollectState::Done(InputResult::NoInput);
            } else {
                self.finish();
            }
        }
    }

    /// The current state.
    pub fn poll(&self) -> CollectState {
        self.state.clone()
    }

    fn finish(&mut self) {
        let result = match &self.complete {
            Some((grammar, semantics)) => InputResult::Match {
                utterance: self.keys.clone(),
                mode: InputMode::Dtmf,
                grammar: *grammar,
                semantics: semantics.clone(),
            },
            None => InputResult::NoMatch {
                utterance: self.keys.clone(),
                mode: InputMode::Dtmf,
            },
        };
        self.state = CollectState::Done(result);
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // an origin for virtual time; nothing sleeps
mod tests {
    use super::*;

    fn request(grammar: &str, termchar: Option<char>) -> CollectRequest {
        CollectRequest {
            grammars: vec![Arc::new(Grammar::builtin(grammar).unwrap())],
            timeout: Duration::from_secs(5),
            interdigit_timeout: Duration::from_secs(3),
            term_timeout: Duration::ZERO,
            termchar,
            bargein: true,
        }
    }

    fn deadline(c: &DtmfCollector) -> Instant {
        match c.poll() {
            CollectState::Pending { deadline } => deadline,
            CollectState::Done(r) => panic!("done early: {r:?}"),
        }
    }

    #[test]
    fn timeout_before_first_key_is_noinput() {
        let t0 = Instant::now();
        let mut c = DtmfCollector::new(&request("builtin:dtmf/digits", Some('#')), t0);
        assert_eq!(deadline(&c), t0 + Duration::from_secs(5));
        c.handle_timeout(t0 + Duration::from_secs(4));
        assert_eq!(deadline(&c), t0 + Duration::from_secs(5));
        c.handle_timeout(t0 + Duration::from_secs(5));
        assert_eq!(c.poll(), CollectState::Done(InputResult::NoInput));
    }

    #[test]
    fn termchar_ends_extensible_input() {
        let t0 = Instant::now();
        let mut c = DtmfCollector::new(&request("builtin:dtmf/digits", Some('#')), t0);
        c.handle_digit(t0 + Duration::from_secs(1), '1');
        assert_eq!(deadline(&c), t0 + Duration::from_secs(4));
        c.handle_digit(t0 + Duration::from_secs(2), '2');
        c.handle_digit(t0 + Duration::from_secs(2), '#');
        let expected = InputResult::dtmf_text("12", "12");
        assert_eq!(c.poll(), CollectState::Done(expected));
        c.handle_digit(t0 + Duration::from_secs(2), '3');
        assert!(matches!(
            c.poll(),
            CollectState::Done(InputResult::Match { .. })
        ));
    }

    #[test]
    fn interdigit_timeout_accepts_a_complete_match() {
        let t0 = Instant::now();
        let mut c = DtmfCollector::new(&request("builtin:dtmf/digits", None), t0);
        c.handle_digit(t0, '4');
        c.handle_timeout(t0 + Duration::from_secs(3));
        assert!(matches!(
            c.poll(),
            CollectState::Done(InputResult::Match { .. })
        ));
    }

    #[test]
    fn interdigit_timeout_on_a_prefix_is_nomatch() {
        let t0 = Instant::now();
        let mut c = DtmfCollector::new(&request("builtin:dtmf/digits?length=3", None), t0);
        c.handle_digit(t0, '4');
        c.handle_timeout(t0 + Duration::from_secs(3));
        let expected = InputResult::NoMatch {
            utterance: "4".into(),
            mode: InputMode::Dtmf,
        };
        assert_eq!(c.poll(), CollectState::Done(expected));
    }

    #[test]
    fn complete_and_final_ends_at_once_unless_termtimeout() {
        let t0 = Instant::now();
        let mut c = DtmfCollector::new(&request("builtin:dtmf/boolean", None), t0);
        c.handle_digit(t0, '1');
        let yes = InputResult::Match {
            utterance: "1".into(),
            mode: InputMode::Dtmf,
            grammar: 0,
            semantics: Semantics::Value(crate::grammar::SemValue::Bool(true)),
        };
        assert_eq!(c.poll(), CollectState::Done(yes.clone()));

        let mut req = request("builtin:dtmf/boolean", Some('#'));
        req.term_timeout = Duration::from_secs(1);
        let mut c = DtmfCollector::new(&req, t0);
        c.handle_digit(t0, '1');
        assert_eq!(deadline(&c), t0 + Duration::from_secs(1));
        c.handle_timeout(t0 + Duration::from_secs(1));
        assert_eq!(c.poll(), CollectState::Done(yes));
    }

    #[test]
    fn grammars_without_dtmf_take_no_part() {
        let t0 = Instant::now();
        let mut req = request("builtin:dtmf/digits", None);
        let spoken = Grammar::builtin("builtin:voice/digits").unwrap();
        req.grammars.insert(0, Arc::new(spoken));
        let mut c = DtmfCollector::new(&req, t0);
        c.handle_digit(t0, '4');
        c.handle_timeout(t0 + Duration::from_secs(3));
        assert!(matches!(
            c.poll(),
            CollectState::Done(InputResult::Match { grammar: 1, .. })
        ));
    }

    #[test]
    fn impossible_key_is_nomatch_at_once() {
        let t0 = Instant::now();
        let mut c = DtmfCollector::new(&request("builtin:dtmf/boolean", None), t0);
        c.handle_digit(t0, '7');
        let expected = InputResult::NoMatch {
            utterance: "7".into(),
            mode: InputMode::Dtmf,
        };
        assert_eq!(c.poll(), CollectState::Done(expected));
    }
}
