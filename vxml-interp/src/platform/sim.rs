//! A platform that records everything in memory, for tests.

use std::collections::VecDeque;

use super::{Hangup, Prompter, Recognizer, Telephony, collect_line};
use std::time::Duration;

use crate::action::{
    CollectRequest, InputResult, PlayItem, RecordRequest, RecordResult, TransferOutcome,
    TransferRequest, TransferResult,
};

/// One scripted caller action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimInput {
    /// Keys typed for one collection ("" for silence = noinput).
    Keys(String),
    /// The caller hangs up at this collection.
    Hangup,
}

/// Records prompts, collections and disconnects; answers collections from a script.
#[derive(Debug, Default)]
pub struct SimPlatform {
    /// Everything played, in order.
    pub played: Vec<PlayItem>,
    /// Every collection request, in order.
    pub collects: Vec<CollectRequest>,
    /// The results handed back, in order.
    pub results: Vec<InputResult>,
    /// Whether `disconnect` was called.
    pub disconnected: bool,
    /// Remaining scripted inputs; once they are used up the caller hangs up, so that a test
    /// cannot loop on noinput forever.
    pub inputs: VecDeque<SimInput>,
    queued: Vec<PlayItem>,
}

impl SimPlatform {
    /// A platform answering collections with `keys` in order.
    pub fn new<I, S>(keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            inputs: keys.into_iter().map(|k| SimInput::Keys(k.into())).collect(),
            ..Self::default()
        }
    }

    /// The spoken text (TTS items and audio fallbacks), in order.
    pub fn texts(&self) -> Vec<String> {
        self.played
            .iter()
            .filter_map(|p| match p {
                PlayItem::Text(t) => Some(t.clone()),
                PlayItem::Audio { fallback_text, .. } => fallback_text.clone(),
                PlayItem::Break(_) | PlayItem::Recording { .. } => None,
            })
            .collect()
    }
}

impl Prompter for SimPlatform {
    fn queue(&mut self, items: Vec<PlayItem>) {
        self.queued.extend(items);
    }

    async fn flush(&mut self) -> Result<(), Hangup> {
        self.played.append(&mut self.queued);
        Ok(())
    }
}

impl Recognizer for SimPlatform {
    async fn collect(&mut self, req: CollectRequest) -> InputResult {
        self.played.append(&mut self.queued);
        let result = match self.inputs.pop_front() {
            None | Some(SimInput::Hangup) => InputResult::Hangup,
            Some(SimInput::Keys(keys)) if keys.is_empty() => InputResult::NoInput,
            Some(SimInput::Keys(keys)) => collect_line(&req, &keys),
        };
        self.collects.push(req);
        self.results.push(result.clone());
        result
    }
}

impl Telephony for SimPlatform {
    async fn disconnect(&mut self) {
        self.played.append(&mut self.queued);
        self.disconnected = true;
    }

    async fn record(&mut self, req: RecordRequest) -> RecordResult {
        self.played.append(&mut self.queued);
        match self.inputs.pop_front() {
            None | Some(SimInput::Hangup) => RecordResult::Hangup(None),
            Some(SimInput::Keys(keys)) if keys.is_empty() => RecordResult::NoInput,
            Some(SimInput::Keys(keys)) => RecordResult::Recorded {
                audio: super::wav::silence(Duration::from_secs(1)).into(),
                mime_type: req.mime_type,
                duration: Duration::from_secs(1),
                termchar: keys.chars().next().filter(|_| req.dtmfterm),
                maxtime: false,
            },
        }
    }

    async fn transfer(&mut self, _req: TransferRequest) -> TransferResult {
        self.played.append(&mut self.queued);
        TransferResult::Ended {
            outcome: TransferOutcome::FarEndDisconnect,
            duration: Duration::from_secs(1),
            input: None,
        }
    }
}
