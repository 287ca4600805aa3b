//! A console platform: prompts printed as lines, DTMF keys or spoken words typed as lines (or
//! scripted).

use std::collections::VecDeque;
use std::io::{BufRead, Write};

use super::caller::CallerInput;
use super::{Hangup, Prompter, Recognizer, Telephony};
use crate::action::{
    CollectRequest, InputResult, PlayItem, RecordRequest, RecordResult, TransferRequest,
    TransferResult,
};

/// Prints prompts to stdout (`[audio] URL`, `[tts] text`, `[break 500ms]`) and takes one
/// caller input per collection, recording or transfer (see [`CallerInput::parse`]: `12#`,
/// `dtmf:12#`, `say:new york`, `silence`, `hangup`, `record:3s`, `transfer:busy`), from a
/// script or from stdin.
#[derive(Debug)]
pub struct TextPlatform {
    /// `Some`: scripted inputs (exhausted script = silence); `None`: read stdin (EOF = hangup).
    script: Option<VecDeque<String>>,
    queued: Vec<PlayItem>,
}

impl TextPlatform {
    /// Answers from `inputs` in order; once they are used up, the caller is silent.
    pub fn scripted(inputs: Vec<String>) -> Self {
        Self {
            script: Some(inputs.into()),
            queued: Vec::new(),
        }
    }

    /// Reads one input line from stdin each time; end of input hangs up.
    pub fn interactive() -> Self {
        Self {
            script: None,
            queued: Vec::new(),
        }
    }

    fn print_queue(&mut self) {
        let mut out = std::io::stdout().lock();
        for item in self.queued.drain(..) {
            // Console output is best effort: a closed stdout must not end the call.
            let _ = writeln!(out, "{}", render(&item));
        }
        let _ = out.flush();
    }

    /// The caller's next input, printed as it is consumed.
    fn next_input(&mut self) -> CallerInput {
        self.print_queue();
        let line = match &mut self.script {
            Some(script) => script.pop_front().unwrap_or_default(),
            None => {
                // Blocking stdin read: this platform is for the console, one call at a time.
                let mut line = String::new();
                match std::io::stdin().lock().read_line(&mut line) {
                    Ok(0) | Err(_) => "hangup".to_owned(),
                    Ok(_) => line,
                }
            }
        };
        let input = match CallerInput::parse(&line) {
            Ok(input) => input,
            Err(e) => {
                println!("[input error] {e}; taken as silence");
                CallerInput::Silence
            }
        };
        println!("[input] {}", describe(&input));
        input
    }
}

fn describe(input: &CallerInput) -> String {
    match input {
        CallerInput::Dtmf(keys) => format!("dtmf {keys}"),
        CallerInput::Say(words) => format!("say {words:?}"),
        CallerInput::Silence => "silence".into(),
        CallerInput::Hangup => "hangup".into(),
        CallerInput::Record(d) => format!("speaks for {}ms", d.as_millis()),
        CallerInput::Transfer(o) => format!("far end: {}", o.as_str()),
    }
}

fn describe_result(result: &InputResult) -> String {
    match result {
        InputResult::Match {
            utterance, mode, ..
        } => format!("[match] {} {utterance:?}", mode.as_str()),
        InputResult::NoMatch { utterance, mode } => {
            format!("[nomatch] {} {utterance:?}", mode.as_str())
        }
        InputResult::NoInput => "[noinput]".into(),
        InputResult::Hangup => "[hangup]".into(),
    }
}

/// The console line for one prompt item.
pub(crate) fn render(item: &PlayItem) -> String {
    match item {
        PlayItem::Audio { url, fallback_text } => match fallback_text {
            Some(text) => format!("[audio] {url} ({text})"),
            None => format!("[audio] {url}"),
        },
        PlayItem::Text(text) => format!("[tts] {text}"),
        PlayItem::Break(d) => format!("[break {}ms]", d.as_millis()),
        PlayItem::Mark(name) => format!("[mark {name}]"),
        PlayItem::Recording { audio, mime_type } => {
            format!("[recording] {} bytes of {mime_type}", audio.len())
        }
    }
}

impl Prompter for TextPlatform {
    fn queue(&mut self, items: Vec<PlayItem>) {
        self.queued.extend(items);
    }

    async fn while_fetching<F: std::future::Future>(
        &mut self,
        audio: &crate::action::FetchAudio,
        fetch: F,
    ) -> F::Output {
        // The console has no clock to play against: say what would play.
        println!(
            "[fetchaudio] {} (after {}ms, at least {}ms)",
            audio.url,
            audio.delay.as_millis(),
            audio.minimum.as_millis()
        );
        fetch.await
    }

    async fn flush(&mut self) -> Result<(), Hangup> {
        self.print_queue();
        Ok(())
    }
}

impl Recognizer for TextPlatform {
    async fn collect(&mut self, req: CollectRequest) -> InputResult {
        let result = self.next_input().collect(&req);
        println!("{}", describe_result(&result));
        result
    }
}

impl Telephony for TextPlatform {
    async fn disconnect(&mut self) {
        self.print_queue();
        println!("[disconnect]");
    }

    async fn record(&mut self, req: RecordRequest) -> RecordResult {
        self.print_queue();
        if req.beep {
            println!("[beep]");
        }
        let input = self.next_input();
        let result = input.record(&req);
        match &result {
            RecordResult::Recorded {
                audio, duration, ..
            } => println!(
                "[recorded] {}ms, {} bytes of {}",
                duration.as_millis(),
                audio.len(),
                req.mime_type
            ),
            RecordResult::Hangup(Some(r)) => match r.as_ref() {
                RecordResult::Recorded {
                    audio, duration, ..
                } => println!(
                    "[recorded] {}ms, {} bytes of {}, then the caller hung up",
                    duration.as_millis(),
                    audio.len(),
                    req.mime_type
                ),
                _ => println!("[record] hangup"),
            },
            RecordResult::Hangup(None) => println!("[record] hangup"),
            RecordResult::NoInput => println!("[record] noinput"),
            RecordResult::Input(r) => println!("[record] ended by input: {}", describe_result(r)),
            other => println!("[record] {other:?}"),
        }
        result
    }

    async fn transfer(&mut self, req: TransferRequest) -> TransferResult {
        // What was queued plays before the call is transferred.
        self.print_queue();
        println!("[transfer] {} ({:?})", req.dest, req.kind);
        let result = self.next_input().transfer(&req);
        if let TransferResult::Ended { outcome, .. } = &result {
            println!("[transfer ended] {}", outcome.as_str());
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grammar::Grammar;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn scripted_lines_follow_collector_rules_then_run_dry_as_noinput() {
        let req = CollectRequest {
            grammars: vec![Arc::new(Grammar::builtin("builtin:dtmf/digits").unwrap())],
            timeout: Duration::from_secs(5),
            interdigit_timeout: Duration::from_secs(3),
            term_timeout: Duration::ZERO,
            termchar: Some('#'),
            bargein: true,
        };
        let mut p = TextPlatform::scripted(vec!["12#".into(), "".into(), "1*".into()]);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut next = || rt.block_on(p.collect(req.clone()));
        assert_eq!(next(), InputResult::dtmf_text("12", "12"));
        assert_eq!(next(), InputResult::NoInput);
        assert_eq!(
            next(),
            InputResult::NoMatch {
                utterance: "1*".into(),
                mode: crate::action::InputMode::Dtmf
            }
        );
        assert_eq!(next(), InputResult::NoInput);
    }

    #[test]
    fn typed_words_are_recognised_as_voice() {
        use crate::action::InputMode;
        use crate::grammar::{SemValue, Semantics};
        let req = CollectRequest {
            grammars: vec![Arc::new(Grammar::builtin("boolean").unwrap())],
            timeout: Duration::from_secs(5),
            interdigit_timeout: Duration::from_secs(3),
            term_timeout: Duration::ZERO,
            termchar: None,
            bargein: true,
        };
        let mut p = TextPlatform::scripted(vec!["Yes".into(), "2".into(), "perhaps".into()]);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut next = || rt.block_on(p.collect(req.clone()));
        let answer = |utterance: &str, mode, yes| InputResult::Match {
            utterance: utterance.into(),
            mode,
            grammar: 0,
            semantics: Semantics::Value(SemValue::Bool(yes)),
        };
        assert_eq!(next(), answer("yes", InputMode::Voice, true));
        assert_eq!(next(), answer("2", InputMode::Dtmf, false));
        assert_eq!(
            next(),
            InputResult::NoMatch {
                utterance: "perhaps".into(),
                mode: InputMode::Voice
            }
        );
    }

    #[test]
    fn renders_lines() {
        let url = url::Url::parse("http://h/a.wav").unwrap();
        assert_eq!(
            render(&PlayItem::Audio {
                url: url.clone(),
                fallback_text: Some("hi".into())
            }),
            "[audio] http://h/a.wav (hi)"
        );
        assert_eq!(
            render(&PlayItem::Audio {
                url,
                fallback_text: None
            }),
            "[audio] http://h/a.wav"
        );
        assert_eq!(render(&PlayItem::Text("hello".into())), "[tts] hello");
        assert_eq!(
            render(&PlayItem::Break(Duration::from_millis(500))),
            "[break 500ms]"
        );
    }
}
