//! The shared vocabulary of stock prompts: phrases, numbers, digits, ordinals, dates and times,
//! and their VXML.
//!
//! Every phrase is one WAV of `prompts/` (`/prompts/NAME.wav`) whose words are in
//! `prompts/prompts.txt`; the words double as the TTS fallback inside `<audio>`, so a missing
//! file still speaks. Numbers, dates and times are sequences of phrases (`num-*`, `ord-*`,
//! `month-*`, `day-*`, `time-*`, `date-*`, `digit-*`), spoken in US English without "and".
//! The test `every_producible_name_has_its_wav` keeps the functions here and the folder in step.

use std::collections::HashMap;
use std::sync::LazyLock;

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// One stock prompt: its file name in prompts/ (without .wav) and its words (TTS fallback).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Phrase {
    pub(crate) name: String,
    pub(crate) text: String,
}

/// `prompts.txt` itself, so the words ship inside the binary and cannot drift from the list
/// the WAVs were generated from.
const PROMPTS_TXT: &str = include_str!("../../prompts/prompts.txt");

/// `name|text` lines of [`PROMPTS_TXT`] (comments and blank lines skipped), parsed once.
static TABLE: LazyLock<HashMap<&'static str, &'static str>> = LazyLock::new(|| parse(PROMPTS_TXT));

/// The same reading as `prompts/generate.sh`: the name up to the first `|`, the rest is text.
fn parse(src: &str) -> HashMap<&str, &str> {
    src.lines()
        .filter_map(|line| {
            let line = line.trim_end_matches('\r');
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            line.split_once('|')
        })
        .collect()
}

/// The stock prompt `name` with its words from `prompts.txt`. An unknown name is a bug (debug
/// builds panic); release builds speak the name itself.
pub(crate) fn phrase(name: &str) -> Phrase {
    let text = TABLE.get(name).copied();
    debug_assert!(text.is_some(), "no prompt named {name:?} in prompts.txt");
    Phrase {
        name: name.to_string(),
        text: text.unwrap_or(name).to_string(),
    }
}

/// `n` in words: 1234 is "one thousand two hundred thirty four". Above 999 999 999 the millions
/// are themselves a number ("one thousand million"): there is no `num-billion` prompt.
pub(crate) fn number(n: u64) -> Vec<Phrase> {
    let mut out = Vec::new();
    if n == 0 {
        out.push(phrase("num-0"));
    } else {
        push_number(&mut out, n);
    }
    out
}

/// `n > 0` in words, appended to `out`.
fn push_number(out: &mut Vec<Phrase>, n: u64) {
    const MILLION: u64 = 1_000_000;
    if n >= MILLION {
        push_number(out, n / MILLION);
        out.push(phrase("num-million"));
    }
    let n = n % MILLION;
    if n >= 1000 {
        push_below_1000(out, n / 1000);
        out.push(phrase("num-thousand"));
    }
    push_below_1000(out, n % 1000);
}

/// `n < 1000` in words (nothing for 0).
fn push_below_1000(out: &mut Vec<Phrase>, n: u64) {
    if n >= 100 {
        out.push(phrase(&format!("num-{}", n / 100)));
        out.push(phrase("num-hundred"));
    }
    let n = n % 100;
    match n {
        0 => {}
        1..20 => out.push(phrase(&format!("num-{n}"))),
        _ => {
            out.push(phrase(&format!("num-{}", n / 10 * 10)));
            if !n.is_multiple_of(10) {
                out.push(phrase(&format!("num-{}", n % 10)));
            }
        }
    }
}

/// `s` digit by digit (`0`-`9`, `*`, `#`), for extensions and mailbox numbers; any other
/// character is skipped.
pub(crate) fn digits(s: &str) -> Vec<Phrase> {
    s.chars()
        .filter_map(|c| match c {
            '0'..='9' => Some(phrase(&format!("digit-{c}"))),
            '*' => Some(phrase("digit-star")),
            '#' => Some(phrase("digit-pound")),
            _ => None,
        })
        .collect()
}

/// `n` as an ordinal, "first" to "thirty first" (days of the month); other values as a plain
/// [`number`].
pub(crate) fn ordinal(n: u32) -> Vec<Phrase> {
    if (1..=31).contains(&n) {
        vec![phrase(&format!("ord-{n}"))]
    } else {
        number(u64::from(n))
    }
}

/// When `unix` was, seen from `now_unix`, in `tz`: "today at 3 15 P M", "yesterday at ...",
/// the weekday within the last six days ("Monday at ..."), else the month and day ("March
/// third at ..."); a moment after `now_unix` (clock skew) gets the month and day too. Days are
/// calendar days in `tz`, so a message from 11 PM is "yesterday" at 1 AM. A time outside
/// jiff's range (years -9999..=9999) gives no phrases.
pub(crate) fn date_time(unix: i64, tz: &TimeZone, now_unix: i64) -> Vec<Phrase> {
    let (Ok(at), Ok(now)) = (
        Timestamp::from_second(unix),
        Timestamp::from_second(now_unix),
    ) else {
        return Vec::new();
    };
    let at = at.to_zoned(tz.clone());
    let (date, today) = (at.date(), now.to_zoned(tz.clone()).date());
    // Whole calendar days back from today (negative: in the future).
    let days_ago = date.until(today).map_or(i32::MIN, |span| span.get_days());
    let mut out = match days_ago {
        0 => vec![phrase("date-today")],
        1 => vec![phrase("date-yesterday")],
        2..=6 => vec![phrase(&format!(
            "day-{}",
            date.weekday().to_sunday_zero_offset()
        ))],
        _ => {
            let mut v = vec![phrase(&format!("month-{}", date.month()))];
            v.extend(ordinal(date.day().unsigned_abs().into()));
            v
        }
    };
    out.push(phrase("time-at"));
    out.extend(time_of_day(at.hour(), at.minute()));
    out
}

/// A 12-hour clock time: "nine oh five A M", "three fifteen P M", "twelve o'clock A M"
/// (midnight), "twelve o'clock P M" (noon).
fn time_of_day(hour: i8, minute: i8) -> Vec<Phrase> {
    let (hour, minute) = (hour.unsigned_abs(), minute.unsigned_abs());
    let h12 = match hour % 12 {
        0 => 12,
        h => h,
    };
    let mut out = number(h12.into());
    match minute {
        0 => out.push(phrase("time-oclock")),
        1..10 => {
            out.push(phrase("time-oh"));
            out.extend(number(minute.into()));
        }
        _ => out.extend(number(minute.into())),
    }
    out.push(phrase(if hour < 12 { "time-am" } else { "time-pm" }));
    out
}

/// Each phrase as `<audio src="/prompts/NAME.wav">TEXT</audio>`, the words as the fallback a
/// VoiceXML browser speaks when the file cannot be fetched; concatenated with no separator,
/// ready to go inside a `<prompt>`.
pub(crate) fn to_vxml(phrases: &[Phrase]) -> String {
    let mut out = String::new();
    for p in phrases {
        out.push_str("<audio src=\"/prompts/");
        out.push_str(&escape(&p.name));
        out.push_str(".wav\">");
        out.push_str(&escape(&p.text));
        out.push_str("</audio>");
    }
    out
}

/// `s` escaped for XML text and attribute values (`&`, `<`, `>`, `"`, `'`).
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    use super::*;

    /// The words of `v`, space separated.
    fn words(v: &[Phrase]) -> String {
        v.iter()
            .map(|p| p.text.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn prompts_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../prompts")
    }

    fn unix(rfc3339: &str) -> i64 {
        rfc3339.parse::<Timestamp>().unwrap().as_second()
    }

    #[test]
    fn phrase_takes_its_words_from_prompts_txt() {
        assert_eq!(
            phrase("welcome"),
            Phrase {
                name: "welcome".into(),
                text: "Welcome to Parley.".into()
            }
        );
        assert_eq!(phrase("time-oclock").text, "o'clock");
        assert_eq!(phrase("ord-31").text, "thirty first");
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "no prompt named")]
    fn unknown_phrase_is_a_bug() {
        phrase("no-such-prompt");
    }

    #[test]
    fn parse_skips_comments_and_blank_lines_and_keeps_later_bars() {
        let t = parse("# name|text\n\na|A b.\r\nb|x | y\nno bar\n");
        assert_eq!(t.len(), 2);
        assert_eq!(t["a"], "A b.");
        assert_eq!(t["b"], "x | y");
    }

    #[test]
    fn numbers() {
        for (n, want) in [
            (0, "zero"),
            (7, "seven"),
            (10, "ten"),
            (13, "thirteen"),
            (19, "nineteen"),
            (20, "twenty"),
            (21, "twenty one"),
            (99, "ninety nine"),
            (100, "one hundred"),
            (101, "one hundred one"),
            (110, "one hundred ten"),
            (999, "nine hundred ninety nine"),
            (1000, "one thousand"),
            (1001, "one thousand one"),
            (1234, "one thousand two hundred thirty four"),
            (20_000, "twenty thousand"),
            (100_000, "one hundred thousand"),
            (1_000_000, "one million"),
            (1_000_001, "one million one"),
            (2_003_040, "two million three thousand forty"),
            (1_000_000_000, "one thousand million"),
        ] {
            assert_eq!(words(&number(n)), want, "{n}");
        }
        // The largest value neither panics nor says nothing.
        assert!(number(u64::MAX).len() > 10);
        assert_eq!(number(3)[0].name, "num-3");
        assert_eq!(number(40)[0].name, "num-40");
    }

    #[test]
    fn digits_skip_what_is_not_a_key() {
        let d = digits("1-0*#9x");
        let names: Vec<_> = d.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["digit-1", "digit-0", "digit-star", "digit-pound", "digit-9"]
        );
        assert_eq!(words(&d), "one zero star pound nine");
        assert!(digits("").is_empty());
    }

    #[test]
    fn ordinals() {
        assert_eq!(words(&ordinal(1)), "first");
        assert_eq!(words(&ordinal(2)), "second");
        assert_eq!(words(&ordinal(3)), "third");
        assert_eq!(words(&ordinal(12)), "twelfth");
        assert_eq!(words(&ordinal(22)), "twenty second");
        assert_eq!(words(&ordinal(31)), "thirty first");
        // Outside the days of a month: a plain number.
        assert_eq!(words(&ordinal(0)), "zero");
        assert_eq!(words(&ordinal(32)), "thirty two");
    }

    #[test]
    fn times_of_day() {
        let now = unix("2024-03-05T23:59:59Z"); // a Tuesday
        let utc = TimeZone::UTC;
        for (at, want) in [
            ("2024-03-05T00:00:00Z", "today at twelve o'clock A M"),
            ("2024-03-05T00:01:00Z", "today at twelve oh one A M"),
            ("2024-03-05T09:05:59Z", "today at nine oh five A M"),
            ("2024-03-05T10:10:00Z", "today at ten ten A M"),
            ("2024-03-05T11:59:00Z", "today at eleven fifty nine A M"),
            ("2024-03-05T12:00:00Z", "today at twelve o'clock P M"),
            ("2024-03-05T12:30:00Z", "today at twelve thirty P M"),
            ("2024-03-05T15:00:00Z", "today at three o'clock P M"),
            ("2024-03-05T15:15:00Z", "today at three fifteen P M"),
            ("2024-03-05T23:59:00Z", "today at eleven fifty nine P M"),
        ] {
            assert_eq!(words(&date_time(unix(at), &utc, now)), want, "{at}");
        }
    }

    #[test]
    fn dates_relative_to_now() {
        let now = unix("2024-03-05T12:00:00Z"); // a Tuesday
        let utc = TimeZone::UTC;
        for (at, want) in [
            ("2024-03-05T00:00:00Z", "today at twelve o'clock A M"),
            ("2024-03-04T23:59:00Z", "yesterday at eleven fifty nine P M"),
            ("2024-03-04T00:00:00Z", "yesterday at twelve o'clock A M"),
            ("2024-03-03T23:59:00Z", "Sunday at eleven fifty nine P M"),
            ("2024-02-29T08:00:00Z", "Thursday at eight o'clock A M"),
            ("2024-02-28T08:00:00Z", "Wednesday at eight o'clock A M"),
            (
                "2024-02-27T08:00:00Z",
                "February twenty seventh at eight o'clock A M",
            ),
            (
                "2023-12-31T18:45:00Z",
                "December thirty first at six forty five P M",
            ),
            // Later than now (a skewed clock): never "today" for tomorrow.
            ("2024-03-06T08:00:00Z", "March sixth at eight o'clock A M"),
        ] {
            assert_eq!(words(&date_time(unix(at), &utc, now)), want, "{at}");
        }
    }

    #[test]
    fn dates_and_times_in_a_zone_with_dst() {
        let ny = TimeZone::get("America/New_York").unwrap();
        // DST starts 2024-03-10 at 2 AM EST (07:00 UTC); noon EDT is 16:00 UTC.
        let now = unix("2024-03-10T16:00:00Z");
        for (at, want) in [
            // 22:30 EST on Saturday the 9th: yesterday in New York, today in UTC.
            ("2024-03-10T03:30:00Z", "yesterday at ten thirty P M"),
            ("2024-03-10T06:59:00Z", "today at one fifty nine A M"),
            ("2024-03-10T07:05:00Z", "today at three oh five A M"),
            ("2024-03-10T16:00:00Z", "today at twelve o'clock P M"),
            ("2024-03-08T05:00:00Z", "Friday at twelve o'clock A M"),
            (
                "2024-03-04T04:59:00Z",
                "March third at eleven fifty nine P M",
            ),
        ] {
            assert_eq!(words(&date_time(unix(at), &ny, now)), want, "{at}");
        }
        assert_eq!(
            words(&date_time(
                unix("2024-03-10T03:30:00Z"),
                &TimeZone::UTC,
                now
            )),
            "today at three thirty A M"
        );
    }

    #[test]
    fn out_of_range_times_say_nothing() {
        assert!(date_time(i64::MAX, &TimeZone::UTC, 0).is_empty());
        assert!(date_time(0, &TimeZone::UTC, i64::MIN).is_empty());
    }

    #[test]
    fn vxml_is_audio_with_escaped_fallback_text() {
        let v = vec![
            phrase("time-oclock"),
            Phrase {
                name: "x".into(),
                text: "a<b & \"c\"".into(),
            },
        ];
        assert_eq!(
            to_vxml(&v),
            "<audio src=\"/prompts/time-oclock.wav\">o&apos;clock</audio>\
             <audio src=\"/prompts/x.wav\">a&lt;b &amp; &quot;c&quot;</audio>"
        );
        assert_eq!(to_vxml(&[]), "");
        // Well-formed XML once wrapped.
        let doc = format!(
            "<prompt>{}</prompt>",
            to_vxml(&date_time(0, &TimeZone::UTC, 0))
        );
        let parsed = roxmltree::Document::parse(&doc).unwrap();
        assert_eq!(parsed.root_element().children().count(), 5);
    }

    #[test]
    fn escape_all_five() {
        assert_eq!(escape("&<>\"'x"), "&amp;&lt;&gt;&quot;&apos;x");
        assert_eq!(escape("plain"), "plain");
    }

    /// Every name these functions can produce, from inputs that cover each branch.
    fn producible_names() -> BTreeSet<String> {
        let mut all = Vec::new();
        for n in (0..=1000).chain([1_000_000, 1_000_000_000, u64::MAX]) {
            all.extend(number(n));
        }
        for n in 0..=40 {
            all.extend(ordinal(n));
        }
        all.extend(digits("0123456789*#"));
        let tz = TimeZone::UTC;
        let now = unix("2024-12-31T12:00:00Z");
        // A year of days (every month, weekday and day of the month) at 24 hours and 60 minutes.
        for day in 0..400 {
            all.extend(date_time(now - day * 86_400, &tz, now));
        }
        // Two days back from seven successive days: every weekday.
        for day in 0..7 {
            let later = now + day * 86_400;
            all.extend(date_time(later - 2 * 86_400, &tz, later));
        }
        for minute in 0..24 * 60 {
            all.extend(date_time(now - 43_200 + minute * 60, &tz, now));
        }
        all.into_iter().map(|p| p.name).collect()
    }

    #[test]
    fn every_producible_name_has_its_wav() {
        let names = producible_names();
        // num 0..19, tens, hundred/thousand/million, 31 ordinals, 12 months, 7 days, 7 time and
        // date words, 12 digits.
        assert_eq!(names.len(), 20 + 8 + 3 + 31 + 12 + 7 + 7 + 12, "{names:?}");
        let dir = prompts_dir();
        for name in &names {
            assert!(
                TABLE.contains_key(name.as_str()),
                "{name} not in prompts.txt"
            );
            let wav = dir.join(format!("{name}.wav"));
            assert!(wav.is_file(), "{} missing", wav.display());
        }
    }

    #[test]
    fn every_line_of_prompts_txt_has_its_wav() {
        let dir = prompts_dir();
        assert!(TABLE.len() > 150);
        for (name, text) in TABLE.iter() {
            assert!(!text.trim().is_empty(), "{name} has no words");
            let wav = dir.join(format!("{name}.wav"));
            let len = std::fs::metadata(&wav)
                .unwrap_or_else(|e| panic!("{}: {e}", wav.display()))
                .len();
            assert!(len > 44, "{} is empty", wav.display());
        }
    }
}
