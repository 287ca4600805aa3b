//! A simulated caller: what a person on the phone does, as typed input (`dtmf:12#`,
//! `say:new york`, `silence`, `hangup`, `record:3s`) or as read off the prompts the way the
//! W3C conformance harnesses did ("Press '1'.", "Say 'Chicago'.", "Say nothing.",
//! "Hang up now.", "Recite a sentence").

use std::time::Duration;

use super::collect_line;
use crate::action::{
    CollectRequest, InputResult, PlayItem, RecordRequest, RecordResult, TransferKind,
    TransferOutcome, TransferRequest, TransferResult,
};

/// One thing the caller does when the application waits for input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerInput {
    /// Press keys.
    Dtmf(String),
    /// Say words (matched against the active voice grammars).
    Say(String),
    /// Say nothing (noinput).
    Silence,
    /// Hang up.
    Hangup,
    /// Speak for this long (a recording).
    Record(Duration),
    /// The far end of a transfer ends this way.
    Transfer(TransferOutcome),
}

impl CallerInput {
    /// Parses `dtmf:123#`, `say:new york`, `silence`, `hangup`, `record:3s`,
    /// `transfer:busy`; bare keys (`12#`) and an empty string (silence) too.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() || text == "silence" {
            return Ok(Self::Silence);
        }
        if text == "hangup" {
            return Ok(Self::Hangup);
        }
        if let Some(keys) = text.strip_prefix("dtmf:") {
            return dtmf(keys);
        }
        if let Some(words) = text.strip_prefix("say:") {
            return Ok(Self::Say(words.trim().to_lowercase()));
        }
        if let Some(length) = text.strip_prefix("record:") {
            let length = if length.trim().is_empty() {
                Duration::from_secs(3)
            } else {
                crate::time::parse_duration(length)
                    .ok_or_else(|| format!("record length {length:?}: use e.g. 3s or 500ms"))?
            };
            return Ok(Self::Record(length.min(Duration::from_secs(600))));
        }
        if let Some(outcome) = text.strip_prefix("transfer:") {
            return transfer_outcome(outcome)
                .map(Self::Transfer)
                .ok_or_else(|| format!("unknown transfer outcome {outcome:?}"));
        }
        // Bare text: keys if it is all keys, else words.
        dtmf(text).or_else(|_| Ok(Self::Say(text.to_lowercase())))
    }

    /// What the caller does, read off the prompts played since the last input.
    pub fn from_prompts(prompts: &str) -> Option<Self> {
        let lower = prompts.to_lowercase();
        // The last instruction wins: a catch may repeat the one its prompt gave.
        let mut best: Option<(usize, Self)> = None;
        let mut consider = |at: Option<usize>, input: Self| {
            if let Some(at) = at
                && best.as_ref().is_none_or(|(b, _)| at >= *b)
            {
                best = Some((at, input));
            }
        };
        for (at, _) in lower.match_indices("press ") {
            let rest = &prompts[at + 6..];
            // "Press '12#'" or "Press 1": quoted keys, else the keys that follow.
            let keys = quoted(rest).or_else(|| {
                let token: String = rest
                    .trim_start()
                    .chars()
                    .take_while(|c| !c.is_whitespace() && !matches!(c, '.' | ',' | ';'))
                    .collect();
                (!token.is_empty() && token.chars().all(crate::grammar::is_dtmf_key))
                    .then_some(token)
            });
            if let Some(keys) = keys {
                consider(Some(at), Self::Dtmf(keys));
            }
        }
        for (at, _) in lower.match_indices("say ") {
            let rest = &lower[at + 4..];
            if rest.starts_with("nothing") {
                consider(Some(at), Self::Silence);
            } else if rest.starts_with("something unrecognizable")
                || rest.starts_with("something unrecognisable")
            {
                consider(Some(at), Self::Say("zzzz unrecognizable mumble".into()));
            } else if let Some(words) = quoted(rest) {
                consider(Some(at), Self::Say(words.to_lowercase()));
            } else {
                let word: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == ' ')
                    .collect();
                let word = word.split_whitespace().next().unwrap_or("").to_owned();
                if !word.is_empty() {
                    consider(Some(at), Self::Say(word));
                }
            }
        }
        consider(lower.rfind("no input expected"), Self::Silence);
        consider(lower.rfind("hang up"), Self::Hangup);
        consider(lower.rfind("recite"), Self::Record(Duration::from_secs(3)));
        best.map(|(_, input)| input)
    }

    /// The result of this input for a collection.
    pub fn collect(&self, req: &CollectRequest) -> InputResult {
        match self {
            Self::Dtmf(keys) => collect_line(req, keys),
            Self::Say(words) => crate::collect::recognize_voice(&req.grammars, words),
            Self::Silence | Self::Record(_) | Self::Transfer(_) => InputResult::NoInput,
            Self::Hangup => InputResult::Hangup,
        }
    }

    /// The result of this input for a recording.
    pub fn record(&self, req: &RecordRequest) -> RecordResult {
        let recorded = |length: Duration, termchar: Option<char>| RecordResult::Recorded {
            audio: super::wav::tone(length).into(),
            mime_type: req.mime_type.clone(),
            duration: length,
            termchar,
            maxtime: false,
        };
        match self {
            Self::Silence => RecordResult::NoInput,
            Self::Hangup => {
                RecordResult::Hangup(Some(Box::new(recorded(Duration::from_secs(2), None))))
            }
            Self::Record(length) => {
                if *length >= req.maxtime {
                    let mut r = recorded(req.maxtime, None);
                    if let RecordResult::Recorded { maxtime, .. } = &mut r {
                        *maxtime = true;
                    }
                    r
                } else {
                    recorded(*length, None)
                }
            }
            Self::Dtmf(keys) => {
                // Keys during a recording: a grammar match ends it as input; else a dtmfterm
                // key ends the recording.
                let creq = CollectRequest {
                    grammars: req.grammars.clone(),
                    timeout: req.timeout,
                    interdigit_timeout: Duration::from_secs(3),
                    term_timeout: Duration::ZERO,
                    termchar: None,
                    bargein: true,
                };
                match collect_line(&creq, keys) {
                    m @ InputResult::Match { .. } => RecordResult::Input(m),
                    _ => recorded(
                        Duration::from_secs(2),
                        keys.chars().next().filter(|_| req.dtmfterm),
                    ),
                }
            }
            Self::Say(_) | Self::Transfer(_) => recorded(Duration::from_secs(2), None),
        }
    }

    /// The result of this input for a transfer: the far end the caller asked for.
    pub fn transfer(&self, req: &TransferRequest) -> TransferResult {
        let outcome = match self {
            Self::Transfer(o) => *o,
            Self::Hangup => TransferOutcome::Hangup,
            _ => default_outcome(req),
        };
        let duration = match outcome {
            TransferOutcome::MaxtimeDisconnect => req.maxtime,
            TransferOutcome::FarEndDisconnect | TransferOutcome::NearEndDisconnect => {
                Duration::from_secs(2)
            }
            _ => Duration::ZERO,
        };
        TransferResult::Ended {
            outcome,
            duration,
            input: None,
        }
    }
}

/// How long the simulated far end rings before it answers.
const FAR_END_ANSWERS_AFTER: Duration = Duration::from_secs(2);

/// Without instructions: the far end answers after [`FAR_END_ANSWERS_AFTER`] (a shorter
/// `connecttimeout` is `noanswer`); then a blind transfer succeeds, and a bridge runs until
/// `maxtime` (if set), else the far end hangs up after a short talk.
fn default_outcome(req: &TransferRequest) -> TransferOutcome {
    if req.kind != TransferKind::Blind && req.connect_timeout < FAR_END_ANSWERS_AFTER {
        return TransferOutcome::NoAnswer;
    }
    match req.kind {
        TransferKind::Blind | TransferKind::Consultation => TransferOutcome::Transferred,
        TransferKind::Bridge if !req.maxtime.is_zero() => TransferOutcome::MaxtimeDisconnect,
        TransferKind::Bridge => TransferOutcome::FarEndDisconnect,
    }
}

fn transfer_outcome(text: &str) -> Option<TransferOutcome> {
    Some(match text.trim() {
        "busy" => TransferOutcome::Busy,
        "noanswer" => TransferOutcome::NoAnswer,
        "network_busy" => TransferOutcome::NetworkBusy,
        "near_end_disconnect" => TransferOutcome::NearEndDisconnect,
        "far_end_disconnect" => TransferOutcome::FarEndDisconnect,
        "maxtime_disconnect" => TransferOutcome::MaxtimeDisconnect,
        "unknown" => TransferOutcome::Unknown,
        "transferred" => TransferOutcome::Transferred,
        _ => return None,
    })
}

fn dtmf(keys: &str) -> Result<CallerInput, String> {
    let keys: String = keys.chars().filter(|c| !c.is_whitespace()).collect();
    match keys.chars().find(|c| !crate::grammar::is_dtmf_key(*c)) {
        Some(c) => Err(format!("{c:?} is not a DTMF key (0-9, *, #, A-D)")),
        None => Ok(CallerInput::Dtmf(keys)),
    }
}

/// The text inside the first pair of quotes (' or ") at the start of `text`.
fn quoted(text: &str) -> Option<String> {
    let text = text.trim_start();
    let quote = text.chars().next().filter(|c| matches!(c, '\'' | '"'))?;
    let rest = &text[1..];
    let end = rest.find(quote)?;
    Some(rest[..end].to_owned())
}

/// The text of prompt items, as the caller hears it.
pub fn heard(items: &[PlayItem]) -> String {
    items
        .iter()
        .filter_map(|p| match p {
            PlayItem::Text(t) => Some(t.as_str()),
            PlayItem::Audio { fallback_text, .. } => fallback_text.as_deref(),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_typed_inputs() {
        assert_eq!(
            CallerInput::parse("12#"),
            Ok(CallerInput::Dtmf("12#".into()))
        );
        assert_eq!(
            CallerInput::parse("dtmf:1 2"),
            Ok(CallerInput::Dtmf("12".into()))
        );
        assert_eq!(
            CallerInput::parse("say:New York"),
            Ok(CallerInput::Say("new york".into()))
        );
        assert_eq!(CallerInput::parse(""), Ok(CallerInput::Silence));
        assert_eq!(CallerInput::parse("hangup"), Ok(CallerInput::Hangup));
        assert_eq!(
            CallerInput::parse("record:3s"),
            Ok(CallerInput::Record(Duration::from_secs(3)))
        );
        assert_eq!(
            CallerInput::parse("transfer:busy"),
            Ok(CallerInput::Transfer(TransferOutcome::Busy))
        );
        assert!(CallerInput::parse("dtmf:x").is_err());
        assert_eq!(
            CallerInput::parse("main menu"),
            Ok(CallerInput::Say("main menu".into()))
        );
        assert!(CallerInput::parse("record:forever").is_err());
    }

    #[test]
    fn reads_instructions_off_prompts() {
        let p = CallerInput::from_prompts;
        assert_eq!(p("Press '1'."), Some(CallerInput::Dtmf("1".into())));
        assert_eq!(p("Press '1' again."), Some(CallerInput::Dtmf("1".into())));
        assert_eq!(
            p("For sales, press 2."),
            Some(CallerInput::Dtmf("2".into()))
        );
        assert_eq!(p("press the button"), None);
        assert_eq!(
            p("Say 'Chicago' one more time."),
            Some(CallerInput::Say("chicago".into()))
        );
        assert_eq!(p("Say London."), Some(CallerInput::Say("london".into())));
        assert_eq!(
            p("No input expected. Say nothing again"),
            Some(CallerInput::Silence)
        );
        assert_eq!(p("Hang up now."), Some(CallerInput::Hangup));
        assert_eq!(p("welcome"), None);
        assert_eq!(
            p("Press '2'. then Say 'Tokyo'."),
            Some(CallerInput::Say("tokyo".into()))
        );
    }
}

/// A platform played by a simulated caller who follows the instructions in the prompts, as the
/// W3C harnesses did; it keeps the whole transcript.
#[derive(Debug, Default)]
pub struct InstructedCaller {
    /// Everything played, in order.
    pub played: Vec<PlayItem>,
    /// Each input given, in order.
    pub inputs: Vec<CallerInput>,
    queued: Vec<PlayItem>,
    /// Index into `played` where the prompts since the last input start.
    since: usize,
    /// Whether the application hung up.
    pub disconnected: bool,
}

/// Inputs after which a caller who gets no instruction gives up and hangs up.
const MAX_INPUTS: usize = 40;

impl InstructedCaller {
    /// A new caller.
    pub fn new() -> Self {
        Self::default()
    }

    fn next_input(&mut self) -> CallerInput {
        self.played.append(&mut self.queued);
        let heard_now = heard(&self.played[self.since..]);
        self.since = self.played.len();
        let input = if self.inputs.len() >= MAX_INPUTS {
            CallerInput::Hangup
        } else {
            CallerInput::from_prompts(&heard_now).unwrap_or(CallerInput::Silence)
        };
        self.inputs.push(input.clone());
        input
    }
}

impl super::Prompter for InstructedCaller {
    fn queue(&mut self, items: Vec<PlayItem>) {
        self.queued.extend(items);
    }

    async fn flush(&mut self) -> Result<(), super::Hangup> {
        self.played.append(&mut self.queued);
        Ok(())
    }
}

impl super::Recognizer for InstructedCaller {
    async fn collect(&mut self, req: CollectRequest) -> InputResult {
        self.next_input().collect(&req)
    }
}

impl super::Telephony for InstructedCaller {
    async fn disconnect(&mut self) {
        self.played.append(&mut self.queued);
        self.disconnected = true;
    }

    async fn record(&mut self, req: RecordRequest) -> RecordResult {
        let input = self.next_input();
        // Asked to record without an instruction: the caller says something.
        let input = if input == CallerInput::Silence {
            CallerInput::Record(Duration::from_secs(3))
        } else {
            input
        };
        input.record(&req)
    }

    async fn transfer(&mut self, req: TransferRequest) -> TransferResult {
        let input = self.next_input();
        // A bridge the caller may end by speaking (the transfer has grammars) and no other
        // instruction: the caller says something the grammars understand, as the W3C tests
        // expect ("Originator says 'Chicago' to disconnect the callee").
        if input == CallerInput::Silence
            && req.kind == TransferKind::Bridge
            && let Some(sentence) = req.grammars.iter().find_map(|g| g.sample())
        {
            let said = if sentence.chars().all(crate::grammar::is_dtmf_key) {
                CallerInput::Dtmf(sentence)
            } else {
                CallerInput::Say(sentence)
            };
            let creq = CollectRequest {
                grammars: req.grammars.clone(),
                timeout: Duration::from_secs(5),
                interdigit_timeout: Duration::from_secs(3),
                term_timeout: Duration::ZERO,
                termchar: None,
                bargein: true,
            };
            let heard = said.collect(&creq);
            if matches!(heard, InputResult::Match { .. }) {
                return TransferResult::Ended {
                    outcome: TransferOutcome::NearEndDisconnect,
                    duration: Duration::from_secs(2),
                    input: Some(heard),
                };
            }
        }
        input.transfer(&req)
    }
}
