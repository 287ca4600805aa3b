//! TEMPORARY stand-in for the phrase vocabulary (replaced by the full module on merge).
#![allow(dead_code)]

/// One stock prompt: its file name in prompts/ (without .wav) and its words (TTS fallback).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Phrase {
    pub(crate) name: String,
    pub(crate) text: String,
}

pub(crate) fn phrase(name: &str) -> Phrase {
    Phrase {
        name: name.into(),
        text: name.into(),
    }
}

pub(crate) fn number(n: u64) -> Vec<Phrase> {
    vec![Phrase {
        name: format!("num-{n}"),
        text: n.to_string(),
    }]
}

pub(crate) fn digits(s: &str) -> Vec<Phrase> {
    s.chars()
        .filter(|c| c.is_ascii_digit())
        .map(|c| Phrase {
            name: format!("digit-{c}"),
            text: c.to_string(),
        })
        .collect()
}

pub(crate) fn date_time(unix: i64, _tz: &jiff::tz::TimeZone, _now_unix: i64) -> Vec<Phrase> {
    vec![Phrase {
        name: "date".into(),
        text: unix.to_string(),
    }]
}

pub(crate) fn to_vxml(phrases: &[Phrase]) -> String {
    phrases
        .iter()
        .map(|p| {
            format!(
                "<audio src=\"/prompts/{}.wav\">{}</audio>",
                p.name,
                escape(&p.text)
            )
        })
        .collect()
}

pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}
