//! Number -> destination. Exact numbers win over patterns; among patterns the first that
//! matches (in insertion order) wins. User extensions are not in the plan: the proxy looks
//! them up in its directory after the plan says nothing.

use std::collections::HashMap;
use std::net::SocketAddr;

/// Where a dialled number goes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Route {
    /// A VoiceXML application on the media server (RFC 5552 Request-URI). `{number}` in the
    /// URL is replaced by the dialled number.
    VxmlApp {
        /// The application's document URL.
        url: String,
    },
    /// A conference room on the media server: everyone who dials it hears everyone else.
    /// `{number}` in the name is replaced by the dialled number (one room per number).
    Conference {
        /// The room's name (letters, digits, `.`, `_`, `-`).
        room: String,
    },
    /// A configured trunk: the call leaves through it with the dialled number.
    Trunk {
        /// The trunk's name (for logs).
        name: String,
        /// Where the trunk's gateway listens (UDP).
        address: SocketAddr,
        /// Leading digits removed before sending (e.g. the `9` of an outside line).
        strip: usize,
        /// Digits put in front after stripping.
        prefix: String,
    },
}

/// A dial-plan pattern: digits match themselves, `X` any digit, `Z` 1-9, `N` 2-9,
/// `[1-5]`/`[137]` a set, and a trailing `.` one or more further characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    elems: Vec<Elem>,
    /// Ends with `.`: one or more characters may follow.
    open: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Elem {
    Lit(char),
    Set(Vec<(char, char)>),
}

/// Why a pattern did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad dial-plan pattern {0:?}: {1}")]
pub struct PatternError(String, &'static str);

impl Pattern {
    /// Parses `_`-less pattern text (see the type docs). At most 64 elements.
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        let err = |why| PatternError(text.to_owned(), why);
        let mut elems = Vec::new();
        let mut open = false;
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if open {
                return Err(err("'.' must be last"));
            }
            match c {
                'X' | 'x' => elems.push(Elem::Set(vec![('0', '9')])),
                'Z' | 'z' => elems.push(Elem::Set(vec![('1', '9')])),
                'N' | 'n' => elems.push(Elem::Set(vec![('2', '9')])),
                '.' => open = true,
                '[' => {
                    let mut set = Vec::new();
                    loop {
                        match chars.next() {
                            Some(']') => break,
                            Some(lo) if lo.is_ascii_alphanumeric() || lo == '*' || lo == '#' => {
                                if chars.peek() == Some(&'-') {
                                    chars.next();
                                    let hi = chars.next().ok_or_else(|| err("unclosed '['"))?;
                                    if hi < lo {
                                        return Err(err("range runs backwards"));
                                    }
                                    set.push((lo, hi));
                                } else {
                                    set.push((lo, lo));
                                }
                            }
                            Some(_) => return Err(err("only digits and ranges inside '[]'")),
                            None => return Err(err("unclosed '['")),
                        }
                    }
                    if set.is_empty() {
                        return Err(err("empty '[]'"));
                    }
                    elems.push(Elem::Set(set));
                }
                c if c.is_ascii_digit() || c == '*' || c == '#' || c == '+' => {
                    elems.push(Elem::Lit(c))
                }
                _ => return Err(err("only digits, * # +, X Z N, [..] and a final '.'")),
            }
            if elems.len() > 64 {
                return Err(err("longer than 64 elements"));
            }
        }
        if elems.is_empty() {
            return Err(err("empty"));
        }
        Ok(Pattern { elems, open })
    }

    /// True when `number` matches the whole pattern.
    pub fn matches(&self, number: &str) -> bool {
        let n: Vec<char> = number.chars().collect();
        if n.len() < self.elems.len() || (!self.open && n.len() != self.elems.len()) {
            return false;
        }
        if self.open && n.len() == self.elems.len() {
            return false;
        }
        self.elems.iter().zip(&n).all(|(e, &c)| match e {
            Elem::Lit(l) => *l == c,
            Elem::Set(s) => s.iter().any(|&(lo, hi)| lo <= c && c <= hi),
        })
    }

    /// True for text that is a pattern rather than a plain number.
    pub fn is_pattern(text: &str) -> bool {
        text.chars()
            .any(|c| matches!(c, 'X' | 'x' | 'Z' | 'z' | 'N' | 'n' | '.' | '['))
    }
}

/// The dial plan: Request-URI user part -> [`Route`].
#[derive(Debug, Clone, Default)]
pub struct DialPlan {
    routes: HashMap<String, Route>,
    patterns: Vec<(Pattern, Route)>,
}

impl DialPlan {
    /// An empty plan.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces an exact number.
    pub fn insert(&mut self, number: impl Into<String>, route: Route) {
        self.routes.insert(number.into(), route);
    }

    /// Adds a pattern, tried after exact numbers and earlier patterns.
    pub fn insert_pattern(&mut self, pattern: Pattern, route: Route) {
        self.patterns.push((pattern, route));
    }

    /// Adds `key`: a pattern if it looks like one, else an exact number.
    pub fn insert_key(&mut self, key: &str, route: Route) -> Result<(), PatternError> {
        if Pattern::is_pattern(key) {
            self.insert_pattern(Pattern::parse(key)?, route);
        } else {
            self.insert(key, route);
        }
        Ok(())
    }

    /// Looks a number up: exact first, then patterns in order.
    pub fn lookup(&self, number: &str) -> Option<&Route> {
        self.routes.get(number).or_else(|| {
            self.patterns
                .iter()
                .find(|(p, _)| p.matches(number))
                .map(|(_, r)| r)
        })
    }

    /// True when `number` is an exact entry (used to refuse extensions that shadow it).
    pub fn has_exact(&self, number: &str) -> bool {
        self.routes.contains_key(number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(u: &str) -> Route {
        Route::VxmlApp { url: u.into() }
    }

    #[test]
    fn patterns_match_whole_numbers() {
        let p = Pattern::parse("9NXXXXXX").unwrap();
        assert!(p.matches("92345678"));
        assert!(!p.matches("91345678"), "N is 2-9");
        assert!(!p.matches("9234567"), "too short");
        assert!(!p.matches("923456789"), "too long");
        let open = Pattern::parse("00.").unwrap();
        assert!(open.matches("0044"));
        assert!(!open.matches("00"), "'.' needs at least one more");
        let set = Pattern::parse("8[1-35]X").unwrap();
        assert!(set.matches("810") && set.matches("859") && !set.matches("840"));
        for bad in ["", "9.X", "[", "[]", "9a", "[5-1]"] {
            assert!(Pattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn exact_wins_then_first_pattern() {
        let mut d = DialPlan::new();
        d.insert_key("6XX", app("p1")).unwrap();
        d.insert_key("60X", app("p2")).unwrap();
        d.insert_key("600", app("exact")).unwrap();
        assert_eq!(d.lookup("600"), Some(&app("exact")));
        assert_eq!(d.lookup("601"), Some(&app("p1")));
        assert_eq!(d.lookup("7"), None);
    }
}
