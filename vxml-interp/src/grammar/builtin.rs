//! The builtin grammars of VoiceXML 2.0 Appendix P: boolean, date, digits, currency, number,
//! phone and time, in their DTMF and (English) voice forms.
//!
//! Each is code rather than SRGS: the DTMF forms check the key shape as a prefix, the voice
//! forms read number words. Values follow Appendix P: boolean gives a boolean, the others a
//! string (`"20240105"`, `"0330p"`, `"-12.5"`, `"USD5.20"`, `"8005551234x12"`).

use super::{GrammarError, Match, SemValue, Semantics};

/// Whether `c` is a DTMF key.
pub(crate) fn is_dtmf_key(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D')
}

/// Which builtin, with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Type {
    Boolean { yes: char, no: char },
    Date,
    Digits { min: usize, max: Option<usize> },
    Currency,
    Number,
    Phone,
    Time,
}

/// A builtin grammar and the modes it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Builtin {
    pub(crate) ty: Type,
    pub(crate) dtmf: bool,
    pub(crate) voice: bool,
}

impl Builtin {
    /// Parses `builtin:dtmf/TYPE`, `builtin:voice/TYPE`, `builtin:grammar/TYPE` or `TYPE`,
    /// each with optional `?key=value;key=value` parameters.
    pub(crate) fn parse(uri: &str) -> Result<Self, GrammarError> {
        let unsupported = || GrammarError::Unsupported(uri.to_owned());
        let uri = uri.trim();
        let (dtmf, voice, rest) = if let Some(rest) = uri.strip_prefix("builtin:dtmf/") {
            (true, false, rest)
        } else if let Some(rest) = uri.strip_prefix("builtin:voice/") {
            (false, true, rest)
        } else if let Some(rest) = uri.strip_prefix("builtin:grammar/") {
            (true, true, rest)
        } else if uri.starts_with("builtin:") {
            return Err(unsupported());
        } else {
            (true, true, uri)
        };
        let (name, params) = rest.split_once('?').unwrap_or((rest, ""));
        let params = parse_params(params).ok_or_else(unsupported)?;
        let ty = match name.trim() {
            "boolean" => {
                let (mut yes, mut no) = ('1', '2');
                for (key, value) in params {
                    let mut chars = value.chars();
                    let key_char = match (chars.next(), chars.next()) {
                        (Some(c), None) if is_dtmf_key(c) => c,
                        _ => return Err(unsupported()),
                    };
                    match key {
                        "y" => yes = key_char,
                        "n" => no = key_char,
                        _ => return Err(unsupported()),
                    }
                }
                if yes == no {
                    return Err(unsupported());
                }
                Type::Boolean { yes, no }
            }
            "digits" => {
                let (mut min, mut max) = (1usize, None);
                for (key, value) in params {
                    let n: usize = value.parse().map_err(|_| unsupported())?;
                    match key {
                        "minlength" => min = n,
                        "maxlength" => max = Some(n),
                        "length" => {
                            min = n;
                            max = Some(n);
                        }
                        _ => return Err(unsupported()),
                    }
                }
                if max.is_some_and(|max| max < min) {
                    return Err(unsupported());
                }
                Type::Digits { min, max }
            }
            other => {
                if !params.is_empty() {
                    return Err(unsupported());
                }
                match other {
                    "date" => Type::Date,
                    "currency" => Type::Currency,
                    "number" => Type::Number,
                    "phone" => Type::Phone,
                    "time" => Type::Time,
                    _ => return Err(unsupported()),
                }
            }
        };
        Ok(Self { ty, dtmf, voice })
    }

    /// The type's name (`digits`), used as the rule name in parse trees.
    pub(crate) fn name(&self) -> &'static str {
        match self.ty {
            Type::Boolean { .. } => "boolean",
            Type::Date => "date",
            Type::Digits { .. } => "digits",
            Type::Currency => "currency",
            Type::Number => "number",
            Type::Phone => "phone",
            Type::Time => "time",
        }
    }

    /// Matches keys; the semantics are always a [`Semantics::Value`].
    pub(crate) fn match_dtmf(&self, keys: &str) -> Match {
        if !keys.chars().all(is_dtmf_key) {
            return Match::NoMatch;
        }
        match &self.ty {
            Type::Boolean { yes, no } => {
                let mut chars = keys.chars();
                match (chars.next(), chars.next()) {
                    (None, _) => Match::Prefix,
                    (Some(c), None) if c == *yes => complete(false, SemValue::Bool(true)),
                    (Some(c), None) if c == *no => complete(false, SemValue::Bool(false)),
                    _ => Match::NoMatch,
                }
            }
            Type::Digits { min, max } => {
                if !keys.bytes().all(|b| b.is_ascii_digit()) {
                    return Match::NoMatch;
                }
                let len = keys.len();
                match max {
                    Some(max) if len > *max => Match::NoMatch,
                    _ if len < *min || len == 0 => Match::Prefix,
                    _ => complete(max.is_none_or(|max| len < max), str(keys)),
                }
            }
            Type::Number | Type::Currency => {
                let currency = self.ty == Type::Currency;
                let (int, frac) = match keys.split_once('*') {
                    None => (keys, None),
                    Some((int, frac)) => (int, Some(frac)),
                };
                let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
                if !digits(int) || !frac.is_none_or(digits) {
                    return Match::NoMatch;
                }
                if currency && frac.is_some_and(|f| f.len() > 2) {
                    return Match::NoMatch;
                }
                let int = if int.is_empty() { "0" } else { int };
                match frac {
                    None if keys.is_empty() => Match::Prefix,
                    Some("") => Match::Prefix,
                    None | Some(_) if currency => {
                        let frac = frac.unwrap_or("");
                        complete(frac.len() < 2, str(&format!("{int}.{frac:0<2}")))
                    }
                    None => complete(true, str(int)),
                    Some(frac) => complete(true, str(&format!("{int}.{frac}"))),
                }
            }
            Type::Phone => {
                let (number, ext) = match keys.split_once('*') {
                    None => (keys, None),
                    Some((number, ext)) => (number, Some(ext)),
                };
                let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
                if !digits(number)
                    || !ext.is_none_or(digits)
                    || (number.is_empty() && ext.is_some())
                {
                    return Match::NoMatch;
                }
                match ext {
                    _ if number.is_empty() => Match::Prefix,
                    None => complete(true, str(number)),
                    Some("") => Match::Prefix,
                    Some(ext) => complete(true, str(&format!("{number}x{ext}"))),
                }
            }
            Type::Date => {
                let d: Vec<u32> = keys.chars().filter_map(|c| c.to_digit(10)).collect();
                if d.len() != keys.len() || d.len() > 8 {
                    return Match::NoMatch;
                }
                let month = || d[4] * 10 + d[5];
                let ok = (d.len() < 5 || d[4] <= 1)
                    && (d.len() < 6 || (1..=12).contains(&month()))
                    && (d.len() < 7 || d[6] <= 3)
                    && (d.len() < 8 || {
                        let year = d[..4].iter().fold(0, |y, x| y * 10 + x);
                        let day = d[6] * 10 + d[7];
                        day >= 1 && day <= days_in(Some(year), month())
                    });
                match d.len() {
                    _ if !ok => Match::NoMatch,
                    8 => complete(false, str(keys)),
                    _ => Match::Prefix,
                }
            }
            Type::Time => {
                let d: Vec<u32> = keys.chars().filter_map(|c| c.to_digit(10)).collect();
                if d.len() != keys.len() || d.len() > 4 {
                    return Match::NoMatch;
                }
                let ok = (d.is_empty() || d[0] <= 2)
                    && (d.len() < 2 || d[0] * 10 + d[1] <= 23)
                    && (d.len() < 3 || d[2] <= 5);
                match d.len() {
                    _ if !ok => Match::NoMatch,
                    4 => {
                        let hour = d[0] * 10 + d[1];
                        let suffix = if hour == 0 || hour > 12 { 'h' } else { '?' };
                        complete(false, str(&format!("{keys}{suffix}")))
                    }
                    _ => Match::Prefix,
                }
            }
        }
    }

    /// Matches a whole utterance (lowercase words); the value, if it matches.
    pub(crate) fn match_voice(&self, words: &[String]) -> Option<SemValue> {
        let owned = normalise(words);
        let w: Vec<&str> = owned.iter().map(String::as_str).collect();
        if w.is_empty() {
            return None;
        }
        match &self.ty {
            Type::Boolean { .. } => boolean(&w).map(SemValue::Bool),
            Type::Digits { min, max } => {
                let digits = digit_string(&w)?;
                let len = digits.len();
                (len >= *min && max.is_none_or(|max| len <= max)).then(|| str(&digits))
            }
            Type::Number => number(&w).map(|n| str(&n)),
            Type::Currency => currency(&w).map(|c| str(&c)),
            Type::Phone => phone(&w).map(|p| str(&p)),
            Type::Date => date(&w).map(|d| str(&d)),
            Type::Time => time(&w).map(|t| str(&t)),
        }
    }
}

/// `key=value;key=value`; `None` when a parameter has no value.
fn parse_params(params: &str) -> Option<Vec<(&str, &str)>> {
    params
        .split(';')
        .filter(|p| !p.trim().is_empty())
        .map(|p| p.split_once('=').map(|(k, v)| (k.trim(), v.trim())))
        .collect()
}

fn str(s: &str) -> SemValue {
    SemValue::Str(s.to_owned())
}

fn complete(can_extend: bool, value: SemValue) -> Match {
    Match::Complete {
        can_extend,
        semantics: Semantics::Value(value),
    }
}

/// Splits hyphenated words (`twenty-five`) and drops `,` and `.` that end words.
fn normalise(words: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for word in words {
        let word = word.trim_end_matches([',', '.', '!', '?', ';']);
        if word.chars().any(char::is_alphabetic) && !word.starts_with(['$', '€', '£']) {
            out.extend(
                word.split('-')
                    .filter(|w| !w.is_empty())
                    .map(|w| w.replace('.', "")),
            );
        } else if !word.is_empty() {
            out.push(word.to_owned());
        }
    }
    out
}

fn boolean(w: &[&str]) -> Option<bool> {
    const YES: &[&str] = &[
        "yes",
        "yeah",
        "yep",
        "yup",
        "sure",
        "correct",
        "right",
        "true",
        "affirmative",
        "ok",
        "okay",
        "yes please",
        "that is correct",
        "that's correct",
        "that's right",
        "of course",
    ];
    const NO: &[&str] = &[
        "no",
        "nope",
        "nah",
        "false",
        "negative",
        "incorrect",
        "wrong",
        "no thanks",
        "no thank you",
        "that is wrong",
        "that's wrong",
        "not really",
    ];
    let phrase = w.join(" ");
    if YES.contains(&phrase.as_str()) {
        Some(true)
    } else if NO.contains(&phrase.as_str()) {
        Some(false)
    } else {
        None
    }
}

fn digit_word(w: &str) -> Option<char> {
    let d = match w {
        "zero" | "oh" | "o" => '0',
        "one" => '1',
        "two" => '2',
        "three" => '3',
        "four" => '4',
        "five" => '5',
        "six" => '6',
        "seven" => '7',
        "eight" => '8',
        "nine" => '9',
        _ => return None,
    };
    Some(d)
}

/// A numeral typed as a word, with `-()` separators (`555-1234`) removed.
fn numeral(w: &str) -> Option<String> {
    let digits: String = w
        .chars()
        .filter(|c| !matches!(c, '-' | '(' | ')'))
        .collect();
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// Digit words and numerals (`one two 3`, `double five`), as a string of digits.
fn digit_string(w: &[&str]) -> Option<String> {
    let mut out = String::new();
    let mut i = 0;
    while i < w.len() {
        let times = match w[i] {
            "double" => 2,
            "triple" => 3,
            _ => 1,
        };
        if times > 1 {
            let d = w.get(i + 1).and_then(|w| digit_word(w))?;
            out.extend(std::iter::repeat_n(d, times));
            i += 2;
            continue;
        }
        match digit_word(w[i]) {
            Some(d) => out.push(d),
            None => out.push_str(&numeral(w[i])?),
        }
        i += 1;
    }
    (!out.is_empty()).then_some(out)
}

fn unit(w: &str) -> Option<u64> {
    const UNITS: &[&str] = &[
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    UNITS.iter().position(|u| *u == w).map(|i| i as u64 + 1)
}

fn tens(w: &str) -> Option<u64> {
    const TENS: &[&str] = &[
        "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    TENS.iter()
        .position(|t| *t == w)
        .map(|i| (i as u64 + 2) * 10)
}

fn scale(w: &str) -> Option<u64> {
    match w {
        "thousand" => Some(1_000),
        "million" => Some(1_000_000),
        "billion" => Some(1_000_000_000),
        _ => None,
    }
}

/// A whole number in words (`one hundred and three`, `twenty five thousand`), or a numeral.
fn cardinal(w: &[&str]) -> Option<u64> {
    #[derive(PartialEq, Clone, Copy)]
    enum Prev {
        Start,
        Unit,
        Tens,
        Hundred,
        Scale,
        And,
    }
    if let [one] = w {
        if *one == "zero" {
            return Some(0);
        }
        if let Some(n) = numeral_int(one) {
            return Some(n);
        }
    }
    let (mut total, mut cur, mut last_scale, mut prev) = (0u64, 0u64, u64::MAX, Prev::Start);
    for (i, word) in w.iter().enumerate() {
        let low_empty = matches!(prev, Prev::Start | Prev::Hundred | Prev::Scale | Prev::And);
        let next = w.get(i + 1).copied();
        if *word == "and" {
            if !matches!(prev, Prev::Hundred | Prev::Scale) || next.is_none() {
                return None;
            }
            prev = Prev::And;
        } else if *word == "a" {
            let before_scale = next.is_some_and(|n| n == "hundred" || scale(n).is_some());
            if !low_empty || cur != 0 || !before_scale {
                return None;
            }
            cur = 1;
            prev = Prev::Unit;
        } else if let Some(n) = unit(word) {
            if !(low_empty || (prev == Prev::Tens && n < 10)) {
                return None;
            }
            cur += n;
            prev = Prev::Unit;
        } else if let Some(n) = tens(word) {
            if !low_empty {
                return None;
            }
            cur += n;
            prev = Prev::Tens;
        } else if *word == "hundred" {
            if !(1..=99).contains(&cur) || !matches!(prev, Prev::Unit | Prev::Tens) {
                return None;
            }
            cur *= 100;
            prev = Prev::Hundred;
        } else if let Some(s) = scale(word) {
            if cur == 0 || s >= last_scale || prev == Prev::And {
                return None;
            }
            total = total.checked_add(cur.checked_mul(s)?)?;
            cur = 0;
            last_scale = s;
            prev = Prev::Scale;
        } else {
            return None;
        }
    }
    if matches!(prev, Prev::Start | Prev::And) {
        return None;
    }
    total.checked_add(cur)
}

/// `1234` or `1,234`.
fn numeral_int(w: &str) -> Option<u64> {
    let digits: String = w.chars().filter(|c| *c != ',').collect();
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A decimal numeral (`-12.5`, `1,000`, `.5`), normalised.
fn numeral_decimal(w: &str) -> Option<String> {
    let (sign, rest) = match w.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", w.strip_prefix('+').unwrap_or(w)),
    };
    let (int, frac) = match rest.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (rest, None),
    };
    let int = if int.is_empty() && frac.is_some() {
        0
    } else {
        numeral_int(int)?
    };
    match frac {
        None => Some(format!("{sign}{int}")),
        Some(f) if !f.is_empty() && f.len() <= 18 && f.bytes().all(|b| b.is_ascii_digit()) => {
            Some(format!("{sign}{int}.{f}"))
        }
        Some(_) => None,
    }
}

/// `minus five point two` → `-5.2`; `twenty five` → `25`; `-12.5` → `-12.5`.
fn number(w: &[&str]) -> Option<String> {
    if let [one] = w
        && let Some(n) = numeral_decimal(one)
    {
        return Some(n);
    }
    let (sign, w) = match w.split_first() {
        Some((&("minus" | "negative"), rest)) => ("-", rest),
        Some((&("plus" | "positive"), rest)) => ("", rest),
        _ => ("", w),
    };
    let point = w.iter().position(|x| *x == "point" || *x == "dot");
    let (int_words, frac_words) = match point {
        Some(p) => (&w[..p], Some(&w[p + 1..])),
        None => (w, None),
    };
    let int = match (int_words.is_empty(), frac_words) {
        (true, Some(_)) => 0,
        (true, None) => return None,
        (false, _) => cardinal(int_words)?,
    };
    match frac_words {
        None => Some(format!("{sign}{int}")),
        Some(f) => Some(format!("{sign}{int}.{}", digit_string(f)?)),
    }
}

fn currency_code(w: &str) -> Option<&'static str> {
    match w {
        "dollar" | "dollars" | "buck" | "bucks" => Some("USD"),
        "euro" | "euros" => Some("EUR"),
        "pound" | "pounds" => Some("GBP"),
        "yen" => Some("JPY"),
        _ => None,
    }
}

/// `mm.nn` from a decimal string with at most two decimals.
fn amount(decimal: &str) -> Option<String> {
    if decimal.starts_with('-') {
        return None;
    }
    let (int, frac) = decimal.split_once('.').unwrap_or((decimal, ""));
    (frac.len() <= 2).then(|| format!("{int}.{frac:0<2}"))
}

/// `five dollars and twenty cents` → `USD5.20`; `twelve fifty`-style amounts are not read.
fn currency(w: &[&str]) -> Option<String> {
    if let [one] = w {
        for (symbol, code) in [('$', "USD"), ('€', "EUR"), ('£', "GBP")] {
            if let Some(rest) = one.strip_prefix(symbol) {
                return Some(format!("{code}{}", amount(&numeral_decimal(rest)?)?));
            }
        }
    }
    if let Some(u) = w.iter().position(|x| currency_code(x).is_some()) {
        let code = currency_code(w[u])?;
        let whole = amount(&number(&w[..u])?)?;
        let rest = &w[u + 1..];
        let rest = rest.strip_prefix(&["and"]).unwrap_or(rest);
        let rest = rest
            .strip_suffix(&["cents"])
            .or_else(|| rest.strip_suffix(&["cent"]))
            .or_else(|| rest.strip_suffix(&["pence"]))
            .unwrap_or(rest);
        if rest.is_empty() {
            return Some(format!("{code}{whole}"));
        }
        let cents = cardinal(rest).filter(|c| *c < 100)?;
        if whole.contains(".0") && !whole.ends_with(".00") {
            return None;
        }
        let int = whole.split('.').next().unwrap_or("0");
        return Some(format!("{code}{int}.{cents:02}"));
    }
    if let Some(rest) = w
        .strip_suffix(&["cents"])
        .or_else(|| w.strip_suffix(&["cent"]))
    {
        let cents = cardinal(rest).filter(|c| *c < 100)?;
        return Some(format!("0.{cents:02}"));
    }
    amount(&number(w)?)
}

/// `eight hundred five five five one two one two extension twelve` → `8005551212x12`.
fn phone(w: &[&str]) -> Option<String> {
    let ext = w
        .iter()
        .position(|x| matches!(*x, "extension" | "ext" | "x"));
    match ext {
        None => digit_string(w),
        Some(e) => {
            let number = digit_string(&w[..e])?;
            let ext = digit_string(&w[e + 1..])
                .or_else(|| cardinal(&w[e + 1..]).map(|n| n.to_string()))?;
            Some(format!("{number}x{ext}"))
        }
    }
}

const MONTHS: &[&str] = &[
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

fn month(w: &str) -> Option<u32> {
    MONTHS
        .iter()
        .position(|m| *m == w || (w.len() >= 3 && m.starts_with(w) && w != "ma" && w != "ju"))
        .map(|i| i as u32 + 1)
}

fn ordinal_unit(w: &str) -> Option<u32> {
    const ORDINALS: &[&str] = &[
        "first",
        "second",
        "third",
        "fourth",
        "fifth",
        "sixth",
        "seventh",
        "eighth",
        "ninth",
        "tenth",
        "eleventh",
        "twelfth",
        "thirteenth",
        "fourteenth",
        "fifteenth",
        "sixteenth",
        "seventeenth",
        "eighteenth",
        "nineteenth",
        "twentieth",
    ];
    match w {
        "thirtieth" => Some(30),
        _ => ORDINALS.iter().position(|o| *o == w).map(|i| i as u32 + 1),
    }
}

/// A day of the month: `fifth`, `twenty first`, `5`, `5th`, `twenty five`.
fn day(w: &[&str]) -> Option<u32> {
    let w = w.strip_prefix(&["the"]).unwrap_or(w);
    let d = match w {
        [one] => ordinal_unit(one).or_else(|| {
            let digits = one.trim_end_matches(|c: char| c.is_ascii_alphabetic());
            numeral_int(digits)
                .map(|n| n as u32)
                .or_else(|| cardinal(w).map(|n| n as u32))
        })?,
        [t, u] => {
            let t = tens(t)? as u32;
            t + ordinal_unit(u)
                .or_else(|| unit(u).map(|n| n as u32))
                .filter(|u| *u < 10)?
        }
        _ => return None,
    };
    (1..=31).contains(&d).then_some(d)
}

/// A year: `2024`, `two thousand twenty four`, `nineteen ninety nine`, `twenty oh four`.
fn year(w: &[&str]) -> Option<u32> {
    if let Some(y) = cardinal(w).filter(|y| (1000..=2999).contains(y)) {
        return Some(y as u32);
    }
    for split in 1..=2.min(w.len()) {
        let Some(century) = cardinal(&w[..split]).filter(|c| (10..=29).contains(c)) else {
            continue;
        };
        let rest = &w[split..];
        let within = match rest {
            ["hundred"] => Some(0),
            ["oh" | "o", d] => digit_word(d).and_then(|d| d.to_digit(10)).map(u64::from),
            _ => cardinal(rest).filter(|n| (10..=99).contains(n)),
        };
        if let Some(within) = within {
            return Some((century * 100 + within) as u32);
        }
    }
    None
}

fn days_in(year: Option<u32>, month: u32) -> u32 {
    match month {
        2 => match year {
            Some(y) if !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) => 28,
            _ => 29,
        },
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `january fifth`, `the fifth of january twenty twenty four`, `5 january 2024` → `yyyymmdd`
/// (`????` for an unspoken year).
fn date(w: &[&str]) -> Option<String> {
    const WEEKDAYS: &[&str] = &[
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "on",
    ];
    let mut w = w;
    while let Some((first, rest)) = w.split_first() {
        if !WEEKDAYS.contains(first) {
            break;
        }
        w = rest;
    }
    let m_at = w.iter().position(|x| month(x).is_some())?;
    let m = month(w[m_at])?;
    let before = &w[..m_at];
    let after = &w[m_at + 1..];
    let before = before.strip_suffix(&["of"]).unwrap_or(before);
    let format = |d: u32, y: Option<u32>| {
        (d <= days_in(y, m)).then(|| match y {
            Some(y) => format!("{y:04}{m:02}{d:02}"),
            None => format!("????{m:02}{d:02}"),
        })
    };
    if before.is_empty() {
        // month day [year]
        for split in 1..=2.min(after.len()) {
            let Some(d) = day(&after[..split]) else {
                continue;
            };
            let rest = &after[split..];
            if rest.is_empty() {
                return format(d, None);
            }
            if let Some(y) = year(rest) {
                return format(d, Some(y));
            }
        }
        None
    } else {
        // day [of] month [year]
        let d = day(before)?;
        if after.is_empty() {
            return format(d, None);
        }
        format(d, Some(year(after)?))
    }
}

/// `three thirty p m`, `fifteen hundred`, `noon`, `half past two`, `3:30pm` → `hhmm` + `a`,
/// `p`, `h` (24-hour) or `?` (ambiguous).
fn time(w: &[&str]) -> Option<String> {
    match w {
        ["noon" | "midday"] => return Some("1200p".into()),
        ["midnight"] => return Some("1200a".into()),
        _ => {}
    }
    // The am/pm suffix, spoken or glued to a numeral.
    let mut core: Vec<String> = w.iter().map(|s| (*s).to_owned()).collect();
    let mut ampm = None;
    let suffixes: &[(&[&str], char)] = &[
        (&["am"], 'a'),
        (&["a", "m"], 'a'),
        (&["in", "the", "morning"], 'a'),
        (&["pm"], 'p'),
        (&["p", "m"], 'p'),
        (&["in", "the", "afternoon"], 'p'),
        (&["in", "the", "evening"], 'p'),
        (&["at", "night"], 'p'),
    ];
    for (suffix, c) in suffixes {
        if core.len() > suffix.len()
            && core.ends_with(&suffix.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
        {
            core.truncate(core.len() - suffix.len());
            ampm = Some(*c);
            break;
        }
    }
    if ampm.is_none()
        && let [one] = core.as_mut_slice()
    {
        for (glued, c) in [("am", 'a'), ("pm", 'p')] {
            if one.len() > 2 && one.ends_with(glued) && one.as_bytes()[0].is_ascii_digit() {
                one.truncate(one.len() - 2);
                ampm = Some(c);
            }
        }
    }
    let core: Vec<&str> = core.iter().map(String::as_str).collect();
    let (hour, minute, military) = clock(&core)?;
    let suffix = match ampm {
        Some(_) if !(1..=12).contains(&hour) || military => return None,
        Some(c) => c,
        None if hour == 0 || hour > 12 || military => 'h',
        None => '?',
    };
    Some(format!("{hour:02}{minute:02}{suffix}"))
}

/// Hour, minute, and whether it was said the military way (`fourteen hundred`).
fn clock(w: &[&str]) -> Option<(u64, u64, bool)> {
    let hour_of = |w: &[&str]| cardinal(w).filter(|h| *h <= 23);
    match w {
        [one] if one.contains(':') => {
            let (h, m) = one.split_once(':')?;
            let (h, m) = (numeral_int(h)?, numeral_int(m)?);
            return (h <= 23 && m <= 59 && m_len_ok(one)).then_some((h, m, false));
        }
        ["half", "past", rest @ ..] => return Some((hour_of(rest)?, 30, false)),
        ["quarter", "past" | "after", rest @ ..] => return Some((hour_of(rest)?, 15, false)),
        ["quarter", "to" | "of", rest @ ..] => {
            let h = hour_of(rest).filter(|h| *h >= 1)?;
            return Some((h - 1, 45, false));
        }
        _ => {}
    }
    for split in (1..=2.min(w.len())).rev() {
        let Some(hour) = hour_of(&w[..split]) else {
            continue;
        };
        let rest = &w[split..];
        let (minute, military) = match rest {
            [] | ["o'clock" | "oclock"] => (0, false),
            ["hundred"] | ["hundred", "hours"] => (0, true),
            ["oh" | "o", d] => (u64::from(digit_word(d)?.to_digit(10)?), false),
            _ => match cardinal(rest).filter(|m| (10..=59).contains(m)) {
                Some(m) => (m, false),
                None => continue,
            },
        };
        return Some((hour, minute, military));
    }
    None
}

/// `3:30` has two minute digits.
fn m_len_ok(s: &str) -> bool {
    s.split_once(':').is_some_and(|(_, m)| m.len() == 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_lowercase).collect()
    }

    fn voice(uri: &str, said: &str) -> Option<SemValue> {
        Builtin::parse(uri).unwrap().match_voice(&words(said))
    }

    fn s(v: &str) -> Option<SemValue> {
        Some(SemValue::Str(v.to_owned()))
    }

    fn dtmf(uri: &str, keys: &str) -> Match {
        Builtin::parse(uri).unwrap().match_dtmf(keys)
    }

    fn done(can_extend: bool, v: &str) -> Match {
        complete(can_extend, SemValue::Str(v.to_owned()))
    }

    #[test]
    fn uris_and_parameters() {
        let b = Builtin::parse("builtin:dtmf/digits?minlength=2;maxlength=4").unwrap();
        assert_eq!(
            b.ty,
            Type::Digits {
                min: 2,
                max: Some(4)
            }
        );
        assert!(b.dtmf && !b.voice);
        let b = Builtin::parse("digits?length=3").unwrap();
        assert!(b.dtmf && b.voice);
        let b = Builtin::parse("builtin:voice/boolean").unwrap();
        assert!(!b.dtmf && b.voice);
        assert_eq!(
            Builtin::parse("builtin:grammar/boolean?y=7;n=9")
                .unwrap()
                .ty,
            Type::Boolean { yes: '7', no: '9' }
        );
        for bad in [
            "builtin:dtmf/colour",
            "builtin:doesnotexist",
            "builtin:dtmf/digits?minlength=x",
            "builtin:dtmf/digits?minlength=4;maxlength=2",
            "builtin:dtmf/digits?colour=2",
            "builtin:dtmf/boolean?y=1;n=1",
            "builtin:dtmf/boolean?y=yes",
            "builtin:dtmf/number?x=1",
            "builtin:dtmf/digits?minlength",
        ] {
            assert!(Builtin::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dtmf_forms() {
        let yes = complete(false, SemValue::Bool(true));
        assert_eq!(dtmf("builtin:dtmf/boolean?y=7", "7"), yes);
        assert_eq!(dtmf("builtin:dtmf/boolean?y=7", "1"), Match::NoMatch);
        assert_eq!(dtmf("builtin:dtmf/number", "12*5"), done(true, "12.5"));
        assert_eq!(dtmf("builtin:dtmf/number", "12*"), Match::Prefix);
        assert_eq!(dtmf("builtin:dtmf/number", "*5"), done(true, "0.5"));
        assert_eq!(dtmf("builtin:dtmf/number", "1*2*3"), Match::NoMatch);
        assert_eq!(dtmf("builtin:dtmf/currency", "12"), done(true, "12.00"));
        assert_eq!(dtmf("builtin:dtmf/currency", "12*5"), done(true, "12.50"));
        assert_eq!(dtmf("builtin:dtmf/currency", "12*50"), done(false, "12.50"));
        assert_eq!(dtmf("builtin:dtmf/currency", "12*501"), Match::NoMatch);
        assert_eq!(
            dtmf("builtin:dtmf/phone", "5551234*12"),
            done(true, "5551234x12")
        );
        assert_eq!(dtmf("builtin:dtmf/phone", "555*"), Match::Prefix);
        assert_eq!(dtmf("builtin:dtmf/phone", "*1"), Match::NoMatch);
        assert_eq!(dtmf("builtin:dtmf/date", "2024"), Match::Prefix);
        assert_eq!(
            dtmf("builtin:dtmf/date", "20240229"),
            done(false, "20240229")
        );
        assert_eq!(dtmf("builtin:dtmf/date", "20230229"), Match::NoMatch);
        assert_eq!(dtmf("builtin:dtmf/date", "202413"), Match::NoMatch);
        assert_eq!(dtmf("builtin:dtmf/time", "1530"), done(false, "1530h"));
        assert_eq!(dtmf("builtin:dtmf/time", "0930"), done(false, "0930?"));
        assert_eq!(dtmf("builtin:dtmf/time", "2460"), Match::NoMatch);
        assert_eq!(dtmf("builtin:dtmf/time", "15"), Match::Prefix);
        assert_eq!(dtmf("builtin:dtmf/digits", "12#"), Match::NoMatch);
    }

    #[test]
    fn spoken_digits_numbers_and_booleans() {
        assert_eq!(voice("digits", "one two three"), s("123"));
        assert_eq!(voice("digits", "oh zero 7"), s("007"));
        assert_eq!(voice("digits", "123"), s("123"));
        assert_eq!(voice("digits", "double five"), s("55"));
        assert_eq!(voice("digits?length=4", "one two three"), None);
        assert_eq!(voice("digits", "twenty"), None);
        assert_eq!(voice("number", "twenty five"), s("25"));
        assert_eq!(voice("number", "twenty-five"), s("25"));
        assert_eq!(voice("number", "one hundred and three"), s("103"));
        assert_eq!(voice("number", "minus five point two"), s("-5.2"));
        assert_eq!(voice("number", "point five"), s("0.5"));
        assert_eq!(voice("number", "two thousand and twenty four"), s("2024"));
        assert_eq!(voice("number", "a hundred"), s("100"));
        assert_eq!(voice("number", "twelve hundred"), s("1200"));
        assert_eq!(
            voice("number", "three million four hundred thousand"),
            s("3400000")
        );
        assert_eq!(voice("number", "-12.5"), s("-12.5"));
        assert_eq!(voice("number", "zero"), s("0"));
        assert_eq!(voice("number", "five five"), None);
        assert_eq!(voice("number", "twenty twenty"), None);
        assert_eq!(voice("number", "thousand"), None);
        assert_eq!(voice("number", "one thousand thousand"), None);
        assert_eq!(voice("number", "hundred and"), None);
        let yes = Some(SemValue::Bool(true));
        assert_eq!(voice("boolean", "Yes"), yes);
        assert_eq!(voice("boolean", "yes please"), yes);
        assert_eq!(voice("boolean", "nope"), Some(SemValue::Bool(false)));
        assert_eq!(voice("boolean", "maybe"), None);
    }

    #[test]
    fn spoken_currency_phone_dates_and_times() {
        assert_eq!(
            voice("currency", "five dollars and twenty cents"),
            s("USD5.20")
        );
        assert_eq!(voice("currency", "twelve euros"), s("EUR12.00"));
        assert_eq!(
            voice("currency", "five point two five pounds"),
            s("GBP5.25")
        );
        assert_eq!(voice("currency", "$12.50"), s("USD12.50"));
        assert_eq!(voice("currency", "twenty cents"), s("0.20"));
        assert_eq!(voice("currency", "seven"), s("7.00"));
        assert_eq!(voice("phone", "eight hundred"), None);
        assert_eq!(
            voice("phone", "five five five one two one two extension twelve"),
            s("5551212x12")
        );
        assert_eq!(voice("phone", "555-1212"), s("5551212"));
        assert_eq!(voice("date", "january fifth"), s("????0105"));
        assert_eq!(
            voice("date", "january fifth twenty twenty four"),
            s("20240105")
        );
        assert_eq!(
            voice("date", "the twenty first of march 1999"),
            s("19990321")
        );
        assert_eq!(voice("date", "july 4 two thousand and four"), s("20040704"));
        assert_eq!(voice("date", "february thirtieth"), None);
        assert_eq!(voice("date", "monday december twenty five"), s("????1225"));
        assert_eq!(voice("time", "three thirty p m"), s("0330p"));
        assert_eq!(voice("time", "three thirty"), s("0330?"));
        assert_eq!(voice("time", "ten o'clock in the morning"), s("1000a"));
        assert_eq!(voice("time", "fourteen hundred"), s("1400h"));
        assert_eq!(voice("time", "seven oh five"), s("0705?"));
        assert_eq!(voice("time", "quarter to four"), s("0345?"));
        assert_eq!(voice("time", "noon"), s("1200p"));
        assert_eq!(voice("time", "15:30"), s("1530h"));
        assert_eq!(voice("time", "3:30pm"), s("0330p"));
        assert_eq!(voice("time", "fifteen thirty p m"), None);
    }
}
