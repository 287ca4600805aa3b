//! A platform that records everything in memory, for tests: a scripted caller
//! ([`CallerInput`]s in order) and a log of what the application asked for.

use std::collections::VecDeque;

use super::caller::CallerInput;
use super::{Hangup, Prompter, Recognizer, Telephony};
use crate::action::{
    CollectRequest, InputResult, PlayItem, RecordRequest, RecordResult, TransferRequest,
    TransferResult,
};

/// One scripted caller action (kept for older tests; [`CallerInput`] says more).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimInput {
    /// Keys typed for one collection ("" for silence = noinput).
    Keys(String),
    /// The caller hangs up at this collection.
    Hangup,
    /// Any caller input.
    Caller(CallerInput),
}

/// Records prompts, collections, recordings, transfers and disconnects; answers from a script.
#[derive(Debug, Default)]
pub struct SimPlatform {
    /// Everything played, in order.
    pub played: Vec<PlayItem>,
    /// Every collection request, in order.
    pub collects: Vec<CollectRequest>,
    /// Every recording request, in order.
    pub records: Vec<RecordRequest>,
    /// Every transfer request, in order.
    pub transfers: Vec<TransferRequest>,
    /// The collection results handed back, in order.
    pub results: Vec<InputResult>,
    /// Whether `disconnect` was called.
    pub disconnected: bool,
    /// The `fetchaudio` of each fetch that had one, in order.
    pub fetch_audio: Vec<crate::action::FetchAudio>,
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

    /// A platform answering with these caller inputs in order.
    pub fn with_inputs(inputs: impl IntoIterator<Item = CallerInput>) -> Self {
        Self {
            inputs: inputs.into_iter().map(SimInput::Caller).collect(),
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
                PlayItem::Break(_) | PlayItem::Recording { .. } | PlayItem::Mark(_) => None,
            })
            .collect()
    }

    fn next(&mut self) -> CallerInput {
        self.played.append(&mut self.queued);
        match self.inputs.pop_front() {
            None | Some(SimInput::Hangup) => CallerInput::Hangup,
            Some(SimInput::Keys(keys)) if keys.is_empty() => CallerInput::Silence,
            Some(SimInput::Keys(keys)) => {
                CallerInput::parse(&keys).unwrap_or(CallerInput::Dtmf(keys))
            }
            Some(SimInput::Caller(input)) => input,
        }
    }
}

impl Prompter for SimPlatform {
    fn queue(&mut self, items: Vec<PlayItem>) {
        self.queued.extend(items);
    }

    async fn while_fetching<F: std::future::Future>(
        &mut self,
        audio: &crate::action::FetchAudio,
        fetch: F,
    ) -> F::Output {
        self.fetch_audio.push(audio.clone());
        fetch.await
    }

    async fn flush(&mut self) -> Result<(), Hangup> {
        self.played.append(&mut self.queued);
        Ok(())
    }
}

impl Recognizer for SimPlatform {
    async fn collect(&mut self, req: CollectRequest) -> InputResult {
        let result = self.next().collect(&req);
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
        let result = self.next().record(&req);
        self.records.push(req);
        result
    }

    async fn transfer(&mut self, req: TransferRequest) -> TransferResult {
        let result = self.next().transfer(&req);
        self.transfers.push(req);
        result
    }
}
