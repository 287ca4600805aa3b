//! The [`Interpreter`]: public face of the sans-IO core. The FIA itself is in `fia.rs`.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::Instant;

use crate::action::{Action, ExitInfo, FetchRequest, Method, PlatformEvent, PlayItem};
use crate::document::Document;
use crate::scope::{Scope, Scopes, js_string_literal};

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
    /// `session.connection.redirect[i].uri`, from Diversion/History-Info.
    pub redirect: Vec<String>,
}

/// What the interpreter waits for.
#[derive(Debug)]
pub(crate) enum State {
    /// `start` not called yet.
    Idle,
    /// The FIA can make progress on the next poll.
    Running,
    /// A document fetch is out; `fragment` names the form to start.
    AwaitFetch { fragment: Option<String> },
    /// A collection for form item `item` is out.
    AwaitInput { item: usize },
    /// A disconnect is out.
    AwaitDisconnect,
    /// The session is over.
    Done(ExitInfo),
}

/// A VoiceXML session: one per call. See the crate docs for the run loop.
pub struct Interpreter {
    pub(crate) session: SessionInfo,
    pub(crate) scopes: Scopes,
    pub(crate) doc: Option<Rc<Document>>,
    /// Index of the active form in `doc.forms`.
    pub(crate) form: usize,
    /// Prompt counters of the active form's items.
    pub(crate) prompt_counts: Vec<u32>,
    /// Event counters of the active form, by event name.
    pub(crate) event_counts: HashMap<String, u32>,
    /// Set by `<goto nextitem>`: the item to run next regardless of its guard.
    pub(crate) next_item: Option<usize>,
    /// The item whose execution (or input) is under way; its catches apply first.
    pub(crate) current_item: Option<usize>,
    /// The last iteration ended in a `<catch>` without `<reprompt>`: do not queue prompts.
    pub(crate) suppress_prompts: bool,
    pub(crate) reprompted: bool,
    /// Last `bargein` attribute of a queued prompt, for the next collection.
    pub(crate) prompt_bargein: Option<bool>,
    pub(crate) hung_up: bool,
    pub(crate) disconnecting: bool,
    /// Prompts queued since the last `Action::Queue`.
    pub(crate) queue: Vec<PlayItem>,
    pub(crate) actions: VecDeque<Action>,
    pub(crate) state: State,
    /// FIA steps since the last input, to stop documents that never wait for the caller.
    pub(crate) steps: u32,
}

impl Interpreter {
    /// A new session; nothing happens until [`Interpreter::start`].
    pub fn new(session: SessionInfo) -> Self {
        let mut scopes = Scopes::new();
        let redirect: Vec<String> = session
            .redirect
            .iter()
            .map(|uri| format!("{{uri:{}}}", js_string_literal(uri)))
            .collect();
        let connection = format!(
            "$vxs0.connection = {{local:{{uri:{local}}}, remote:{{uri:{remote}}}, \
             protocol:{{name:{proto}, version:\"2.0\"}}, redirect:[{redirect}], \
             aai:undefined, originator:{remote}}};",
            local = js_string_literal(&session.local_uri),
            remote = js_string_literal(&session.remote_uri),
            proto = js_string_literal(&session.protocol_name),
            redirect = redirect.join(","),
        );
        if let Err(e) = scopes.run_internal(&connection) {
            tracing::error!(call_id = %session.call_id, error = %e, "cannot set session.connection");
        }
        let _ = scopes.set(
            Scope::Application,
            "lastresult$",
            boa_engine::JsValue::undefined(),
        );
        Self {
            session,
            scopes,
            doc: None,
            form: 0,
            prompt_counts: Vec::new(),
            event_counts: HashMap::new(),
            next_item: None,
            current_item: None,
            suppress_prompts: false,
            reprompted: false,
            prompt_bargein: None,
            hung_up: false,
            disconnecting: false,
            queue: Vec::new(),
            actions: VecDeque::new(),
            state: State::Idle,
            steps: 0,
        }
    }

    /// Starts the session at `url`; the first action is the fetch of that document.
    pub fn start(&mut self, url: url::Url) {
        tracing::info!(call_id = %self.session.call_id, %url, "vxml session start");
        let fragment = url.fragment().map(str::to_owned);
        self.actions.push_back(Action::Fetch(FetchRequest {
            url,
            method: Method::Get,
            body: None,
            content_type: None,
        }));
        self.state = State::AwaitFetch { fragment };
    }

    /// What to do next. Call again after each answer; never blocks.
    pub fn poll_action(&mut self, _now: Instant) -> Action {
        loop {
            if let Some(action) = self.actions.pop_front() {
                return action;
            }
            match &self.state {
                State::Running => self.run_fia(),
                State::Done(info) => return Action::Exit(info.clone()),
                _ => return Action::Wait,
            }
        }
    }

    /// Feeds the outcome of an action, or a hangup at any time.
    pub fn handle_event(&mut self, now: Instant, event: PlatformEvent) {
        let _ = now;
        // Only the caller's input proves progress; a fetch loop without input must still end.
        if matches!(event, PlatformEvent::Input(_) | PlatformEvent::Disconnected) {
            self.steps = 0;
        }
        self.on_event(event);
    }
}

impl std::fmt::Debug for Interpreter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interpreter")
            .field("call_id", &self.session.call_id)
            .field("state", &self.state)
            .field("document", &self.doc.as_ref().map(|d| d.url.as_str()))
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
    fn session_connection_variables() {
        let mut interp = Interpreter::new(SessionInfo {
            call_id: "c1".into(),
            local_uri: "sip:ivr@h".into(),
            remote_uri: "sip:\"bob\"@h".into(),
            protocol_name: "sip".into(),
            redirect: vec!["sip:201@h".into()],
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
            s.eval_string("session.connection.protocol.name").unwrap(),
            "sip"
        );
    }
}
