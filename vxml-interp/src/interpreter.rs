//! The [`Interpreter`]: public face of the sans-IO core. The FIA is in `fia.rs`, executable
//! content in `exec.rs`, events in `events.rs`, document loading in `loader.rs`.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use boa_engine::JsValue;

use crate::action::{Action, ExitInfo, FetchRequest, Method, PlatformEvent, PlayItem};
use crate::document::Document;
use crate::frame::Frame;
use crate::grammar::Grammar;
use crate::scope::{SavedScopes, Scope, Scopes};

/// Facts about the call, exposed to documents as `session.connection.*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionInfo {
    /// The SIP Call-ID; every log line about the session carries it.
    pub call_id: String,
    /// `session.connection.local.uri`.
    pub local_uri: String,
    /// `session.connection.remote.uri`.
    pub remote_uri: String,
    /// `session.connection.protocol.name` ("sip").
    pub protocol_name: String,
    /// `session.connection.redirect`: who the call was meant for before it reached us
    /// (from Diversion/History-Info), most recent first.
    pub redirect: Vec<Redirect>,
}

/// One `session.connection.redirect[i]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// The URI the call was diverted from.
    pub uri: String,
    /// Why (`no-answer`, `user-busy`, `unavailable`, ...), if the protocol said.
    pub reason: Option<String>,
}

/// What a fetch in flight is for.
#[derive(Debug)]
pub(crate) enum Pending {
    /// A document to go to (`<goto>`, `<submit>`, a link, the first document).
    Document { fragment: Option<String> },
    /// The document of a `<subdialog>` item of the current context.
    Subdialog {
        item: usize,
        fragment: Option<String>,
        params: Vec<(String, JsValue)>,
    },
    /// The application root of `leaf`, fetched before the leaf starts.
    Root {
        leaf: Rc<Document>,
        fragment: Option<String>,
        subdialog: Option<(usize, Vec<(String, JsValue)>)>,
    },
    /// `<script src>`: run the body in `scope`, then resume executable content.
    Script { url: url::Url, scope: Scope },
    /// `<data>`: assign the parsed body to `name`, then resume.
    Data { name: Option<String>, scope: Scope },
    /// An external grammar, cached under `url`; then the FIA iteration runs again.
    Grammar { url: url::Url },
}

/// What the interpreter waits for.
#[derive(Debug)]
pub(crate) enum State {
    /// `start` not called yet.
    Idle,
    /// The FIA can make progress on the next poll.
    Running,
    /// A fetch is out.
    AwaitFetch(Pending),
    /// A collection for form item `item` is out.
    AwaitInput { item: usize },
    /// A recording for form item `item` is out.
    AwaitRecord { item: usize },
    /// A transfer for form item `item` is out.
    AwaitTransfer { item: usize },
    /// A disconnect is out.
    AwaitDisconnect,
    /// The session is over.
    Done(ExitInfo),
}

/// Per form item state of the active dialog.
#[derive(Debug, Default, Clone)]
pub(crate) struct ItemState {
    pub(crate) prompt_count: u32,
    /// Event counters by event name prefix ("error", "error.badfetch", ...).
    pub(crate) events: HashMap<String, u32>,
}

/// One execution context: the top-level application, or a subdialog.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) root: Option<Rc<Document>>,
    pub(crate) doc: Rc<Document>,
    /// Index of the active dialog in `doc.dialogs`, once one is entered.
    pub(crate) dialog: Option<usize>,
    pub(crate) items: Vec<ItemState>,
    /// Event counters for events outside any form item.
    pub(crate) dialog_events: HashMap<String, u32>,
    /// Set by `<goto nextitem>`: the item to run next regardless of its guard.
    pub(crate) next_item: Option<usize>,
    /// The item whose execution (or input) is under way; its catches apply first.
    pub(crate) current_item: Option<usize>,
    /// The last iteration ended in a `<catch>` without `<reprompt>`: do not queue prompts.
    pub(crate) suppress_prompts: bool,
    pub(crate) reprompted: bool,
    /// `<param>` values for the subdialog's variables, used while its dialog initialises.
    pub(crate) params: HashMap<String, JsValue>,
    /// For a subdialog: the caller's scopes and its `<subdialog>` item.
    pub(crate) caller: Option<(SavedScopes, usize)>,
}

impl Ctx {
    pub(crate) fn new(doc: Rc<Document>, root: Option<Rc<Document>>) -> Self {
        Self {
            root,
            doc,
            dialog: None,
            items: Vec::new(),
            dialog_events: HashMap::new(),
            next_item: None,
            current_item: None,
            suppress_prompts: false,
            reprompted: false,
            params: HashMap::new(),
            caller: None,
        }
    }
}

/// Who owns each grammar of the collection in flight.
#[derive(Debug, Clone)]
pub(crate) enum GrammarOwner {
    /// The form item's own grammar (or a field `<option>` with this value).
    Item(Option<String>),
    /// A menu choice, by index.
    Choice(usize),
    /// A form-level grammar of the active dialog.
    Form,
    /// A document-scoped grammar of another dialog of the document (or of the root).
    Dialog { root: bool, index: usize },
    /// A link: where it is, and which.
    Link(LinkRef),
    /// A universal grammar (`universals` property): the event it throws.
    Universal(&'static str),
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum LinkRef {
    Item(usize),
    Dialog(usize),
    Document(usize),
    Root(usize),
}

/// Steps the interpreter may take without the caller's input before we call it a loop.
pub(crate) const MAX_STEPS: u32 = 200_000;
/// Documents or dialogs entered without the caller's input before we call it a loop.
pub(crate) const MAX_TRANSITIONS: u32 = 500;
/// Executable content nesting (`<if>`, `<foreach>`) at run time.
pub(crate) const MAX_FRAMES: usize = 256;
/// Subdialogs called inside each other.
pub(crate) const MAX_SUBDIALOG_DEPTH: usize = 32;
/// Recordings a session keeps in memory at once.
pub(crate) const MAX_RECORDINGS: usize = 16;

/// A VoiceXML session: one per call. See the crate docs for the run loop.
pub struct Interpreter {
    pub(crate) session: SessionInfo,
    pub(crate) scopes: Scopes,
    /// Execution contexts, the active one last (more than one inside subdialogs).
    pub(crate) ctxs: Vec<Ctx>,
    /// Executable content in progress.
    pub(crate) frames: Vec<Frame>,
    /// Grammars of the collection in flight, with their owners.
    pub(crate) active: Vec<GrammarOwner>,
    /// Last `bargein` attribute of a queued prompt, for the next collection.
    pub(crate) prompt_bargein: Option<bool>,
    pub(crate) hung_up: bool,
    /// The caller hung up while a fetch was out: throw the event once it is answered.
    pub(crate) hangup_pending: bool,
    pub(crate) disconnecting: bool,
    /// Prompts queued since the last `Action::Queue`.
    pub(crate) queue: Vec<PlayItem>,
    pub(crate) actions: VecDeque<Action>,
    pub(crate) state: State,
    /// Steps and transitions since the last input, to stop documents that never wait.
    pub(crate) steps: u32,
    pub(crate) transitions: u32,
    /// Fetched external grammars and scripts, by URL.
    pub(crate) grammars: HashMap<url::Url, Arc<Grammar>>,
    pub(crate) scripts: HashMap<url::Url, Rc<str>>,
    /// Recordings, by the id their audio object carries.
    pub(crate) recordings: VecDeque<(u32, Arc<[u8]>, String)>,
    pub(crate) next_recording: u32,
    /// The last `<mark>` queued, reported with the next input.
    pub(crate) last_mark: Option<String>,
    /// The last `<mark>` the caller actually heard before the input, and how long before it
    /// (from platforms that know playout progress); preferred over `last_mark`.
    pub(crate) heard_mark: Option<(String, std::time::Duration)>,
}

impl Interpreter {
    /// A new session; nothing happens until [`Interpreter::start`].
    pub fn new(session: SessionInfo) -> Self {
        let mut scopes = Scopes::new();
        if let Err(e) = set_connection(&mut scopes, &session) {
            tracing::error!(call_id = %session.call_id, error = %e, "cannot set session.connection");
        }
        let mut interp = Self {
            session,
            scopes,
            ctxs: Vec::new(),
            frames: Vec::new(),
            active: Vec::new(),
            prompt_bargein: None,
            hung_up: false,
            hangup_pending: false,
            disconnecting: false,
            queue: Vec::new(),
            actions: VecDeque::new(),
            state: State::Idle,
            steps: 0,
            transitions: 0,
            grammars: HashMap::new(),
            scripts: HashMap::new(),
            recordings: VecDeque::new(),
            next_recording: 1,
            last_mark: None,
            heard_mark: None,
        };
        interp.reset_application();
        interp
    }

    /// Starts the session at `url`; the first action is the fetch of that document.
    pub fn start(&mut self, url: url::Url) {
        tracing::info!(call_id = %self.session.call_id, %url, "vxml session start");
        let fragment = url.fragment().map(str::to_owned);
        self.actions
            .push_back(Action::Fetch(FetchRequest::get(url)));
        self.state = State::AwaitFetch(Pending::Document { fragment });
    }

    /// What to do next. Call again after each answer; never blocks.
    pub fn poll_action(&mut self, _now: Instant) -> Action {
        loop {
            if let Some(action) = self.actions.pop_front() {
                return action;
            }
            match &self.state {
                State::Running => self.run(),
                State::Done(info) => return Action::Exit(info.clone()),
                _ => return Action::Wait,
            }
        }
    }

    /// The platform's report, with the input that follows, of the last `<mark>` played before
    /// the caller's input and how long before it: `markname` and `marktime` of
    /// `application.lastresult$` (VoiceXML 2.1 §3.3). Without it, the last mark queued is
    /// reported with a marktime of 0.
    pub fn note_heard_mark(&mut self, name: String, time: std::time::Duration) {
        self.heard_mark = Some((name, time));
    }

    /// Feeds the outcome of an action, or a hangup at any time.
    pub fn handle_event(&mut self, now: Instant, event: PlatformEvent) {
        let _ = now;
        // Only the caller's input proves progress; a fetch loop without input must still end.
        if matches!(
            event,
            PlatformEvent::Input(_)
                | PlatformEvent::Recorded(_)
                | PlatformEvent::Transferred(_)
                | PlatformEvent::Disconnected
        ) {
            self.steps = 0;
            self.transitions = 0;
        }
        self.on_event(event);
    }

    /// A fresh application scope with its `lastresult$`.
    pub(crate) fn reset_application(&mut self) {
        self.scopes.reset(Scope::Application);
        let _ = self
            .scopes
            .run_internal("$vxs1[\"lastresult$\"] = (function(){var a=[]; a.confidence=undefined; a.utterance=undefined; a.inputmode=undefined; a.interpretation=undefined; return a;})();");
    }

    pub(crate) fn ctx(&self) -> Option<&Ctx> {
        self.ctxs.last()
    }

    pub(crate) fn ctx_mut(&mut self) -> Option<&mut Ctx> {
        self.ctxs.last_mut()
    }

    pub(crate) fn call_id(&self) -> &str {
        &self.session.call_id
    }

    /// Hands queued prompts to the driver, ahead of the action about to be pushed.
    pub(crate) fn flush_queue(&mut self) {
        if !self.queue.is_empty() {
            self.actions
                .push_back(Action::Queue(std::mem::take(&mut self.queue)));
        }
    }

    pub(crate) fn finish(&mut self, info: ExitInfo) {
        tracing::info!(call_id = %self.call_id(), reason = %info.reason, value = ?info.value, "vxml session end");
        self.frames.clear();
        self.flush_queue();
        self.actions.push_back(Action::Exit(info.clone()));
        self.state = State::Done(info);
    }
}

/// `session.connection.*`, built as objects (no script to compile per call).
fn set_connection(scopes: &mut Scopes, session: &SessionInfo) -> Result<(), String> {
    let text = |t: &str| JsValue::from(boa_engine::JsString::from(t));
    let object = |scopes: &mut Scopes, fields: &[(&str, JsValue)]| -> Result<JsValue, String> {
        let o = scopes.new_object();
        for (name, value) in fields {
            scopes.set_property(&o, name, value.clone())?;
        }
        Ok(o)
    };
    let local = object(scopes, &[("uri", text(&session.local_uri))])?;
    let remote = object(scopes, &[("uri", text(&session.remote_uri))])?;
    let protocol = object(
        scopes,
        &[
            ("name", text(&session.protocol_name)),
            ("version", text("2.0")),
        ],
    )?;
    let mut redirects = Vec::new();
    for r in &session.redirect {
        let reason = r.reason.as_deref().map_or(JsValue::undefined(), text);
        redirects.push(object(
            scopes,
            &[("uri", text(&r.uri)), ("reason", reason)],
        )?);
    }
    let redirect = scopes.new_array(redirects)?;
    let connection = object(
        scopes,
        &[
            ("local", local),
            ("remote", remote),
            ("protocol", protocol),
            ("redirect", redirect),
            ("aai", JsValue::undefined()),
            ("originator", text(&session.remote_uri)),
        ],
    )?;
    scopes.set(Scope::Session, "connection", connection)
}

impl FetchRequest {
    /// A GET of `url`.
    pub fn get(url: url::Url) -> Self {
        Self {
            url,
            method: Method::Get,
            body: None,
            content_type: None,
            timeout: None,
            max_age: None,
            max_stale: None,
            fetch_audio: None,
        }
    }
}

impl std::fmt::Debug for Interpreter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interpreter")
            .field("call_id", &self.session.call_id)
            .field("state", &self.state)
            .field("document", &self.ctx().map(|c| c.doc.url.as_str()))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // an origin for virtual time; nothing sleeps
mod tests {
    use super::*;
    use crate::action::{Fetched, InputResult};

    const DOC: &str = r#"<vxml version="2.1">
      <form>
        <field name="pin" type="digits">
          <prompt>pin?</prompt>
          <property name="timeout" value="7s"/>
        </field>
        <block><prompt>got <value expr="pin"/></prompt><disconnect/></block>
      </form>
    </vxml>"#;

    fn fetched(url: &url::Url, body: &str) -> PlatformEvent {
        PlatformEvent::Fetched(Ok(Fetched {
            url: url.clone(),
            status: 200,
            content_type: None,
            body: body.as_bytes().to_vec(),
        }))
    }

    #[test]
    fn sans_io_run_loop() {
        let now = Instant::now();
        let url = url::Url::parse("http://h/app.vxml").unwrap();
        let mut interp = Interpreter::new(SessionInfo::default());
        assert!(matches!(interp.poll_action(now), Action::Wait));
        interp.start(url.clone());
        let Action::Fetch(req) = interp.poll_action(now) else {
            panic!("fetch first")
        };
        assert_eq!(req.url, url);
        assert!(matches!(interp.poll_action(now), Action::Wait));
        interp.handle_event(now, fetched(&url, DOC));
        assert_eq!(
            match interp.poll_action(now) {
                Action::Queue(items) => items,
                other => panic!("{other:?}"),
            },
            vec![PlayItem::Text("pin?".into())]
        );
        let Action::Collect(req) = interp.poll_action(now) else {
            panic!("collect")
        };
        assert_eq!(req.timeout, std::time::Duration::from_secs(7));
        assert!(req.bargein);
        interp.handle_event(
            now,
            PlatformEvent::Input(InputResult::dtmf_text("42", "42")),
        );
        assert!(
            matches!(interp.poll_action(now), Action::Queue(items) if items == vec![PlayItem::Text("got 42".into())])
        );
        assert!(matches!(interp.poll_action(now), Action::Disconnect));
        interp.handle_event(now, PlatformEvent::Disconnected);
        let Action::Exit(info) = interp.poll_action(now) else {
            panic!("exit")
        };
        assert_eq!(info.reason, "disconnect");
        // Exit is sticky.
        assert!(matches!(interp.poll_action(now), Action::Exit(_)));
    }

    #[test]
    fn hangup_during_collect_ends_with_hangup() {
        let now = Instant::now();
        let url = url::Url::parse("http://h/app.vxml").unwrap();
        let mut interp = Interpreter::new(SessionInfo::default());
        interp.start(url.clone());
        let _ = interp.poll_action(now);
        interp.handle_event(now, fetched(&url, DOC));
        let _ = interp.poll_action(now);
        assert!(matches!(interp.poll_action(now), Action::Collect(_)));
        interp.handle_event(now, PlatformEvent::Hangup);
        let Action::Exit(info) = interp.poll_action(now) else {
            panic!("exit")
        };
        assert_eq!(info.reason, "hangup");
    }

    #[test]
    fn hangup_during_a_fetch_is_thrown_once_the_document_arrives() {
        let now = Instant::now();
        let url = url::Url::parse("http://h/app.vxml").unwrap();
        let doc = r#"<vxml version="2.1">
          <catch event="connection.disconnect.hangup"><submit next="saved.vxml"/></catch>
          <form><field name="f" type="digits"/></form></vxml>"#;
        let mut interp = Interpreter::new(SessionInfo::default());
        interp.start(url.clone());
        let _ = interp.poll_action(now);
        interp.handle_event(now, PlatformEvent::Hangup);
        assert!(
            matches!(interp.poll_action(now), Action::Wait),
            "the fetch still completes"
        );
        interp.handle_event(now, fetched(&url, doc));
        let Action::Fetch(req) = interp.poll_action(now) else {
            panic!("the hangup handler runs")
        };
        assert_eq!(req.url.path(), "/saved.vxml");
    }

    #[test]
    fn session_connection_variables() {
        let mut interp = Interpreter::new(SessionInfo {
            call_id: "c1".into(),
            local_uri: "sip:ivr@h".into(),
            remote_uri: "sip:\"bob\"@h".into(),
            protocol_name: "sip".into(),
            redirect: vec![Redirect {
                uri: "sip:201@h".into(),
                reason: Some("no-answer".into()),
            }],
        });
        let s = &mut interp.scopes;
        assert_eq!(
            s.eval_string("session.connection.local.uri").unwrap(),
            "sip:ivr@h"
        );
        assert_eq!(
            s.eval_string("session.connection.remote.uri").unwrap(),
            "sip:\"bob\"@h"
        );
        assert_eq!(
            s.eval_string("session.connection.redirect[0].uri").unwrap(),
            "sip:201@h"
        );
        assert_eq!(
            s.eval_string("session.connection.redirect[0].reason")
                .unwrap(),
            "no-answer"
        );
        assert_eq!(
            s.eval_string("session.connection.protocol.name").unwrap(),
            "sip"
        );
    }
}
