//! The Form Interpretation Algorithm (VoiceXML 2.0 §2.1.6, appendix C): select a form item,
//! collect (queue prompts, run a block or ask for input), process the input; plus document
//! loading, executable content and event handling. Control transfers are [`Transition`] values
//! carried out of executable content with `ControlFlow`.

use std::ops::ControlFlow;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use boa_engine::JsValue;

use crate::action::{
    Action, CollectRequest, ExitInfo, FetchRequest, Fetched, InputResult, Method, PlatformEvent,
};
use crate::document::{self, Document, Exec, Filled, ItemKind};
use crate::event::{self, DefaultHandler, VxmlEvent};
use crate::interpreter::{Interpreter, State};
use crate::prompt;
use crate::scope::{Scope, js_string_literal};
use crate::time::parse_duration;

/// A transfer of control out of the running content.
#[derive(Debug, Clone)]
pub(crate) enum Transition {
    /// `<goto nextitem>`: run this form item next.
    NextItem(String),
    /// `<goto next="#id">`: enter this form of the current document.
    NextForm(String),
    /// `<goto>`/`<submit>` to another document.
    NextDocument(FetchRequest),
    /// `<exit>` or the end of the application.
    Exit(ExitInfo),
    /// `<disconnect>`.
    Disconnect,
    /// An event to hand to `<catch>`.
    Throw(VxmlEvent),
}

type Flow<T = ()> = ControlFlow<Transition, T>;

/// Steps the FIA may take without waiting for the platform before we call it a loop.
const MAX_STEPS: u32 = 1_000;

fn semantic(what: &str, error: impl std::fmt::Display) -> Transition {
    Transition::Throw(VxmlEvent::new("error.semantic", format!("{what}: {error}")))
}

fn badfetch(message: impl Into<String>) -> Transition {
    Transition::Throw(VxmlEvent::new("error.badfetch", message))
}

impl Interpreter {
    fn call_id(&self) -> &str {
        &self.session.call_id
    }

    /// Runs the FIA until it waits for the platform.
    pub(crate) fn run_fia(&mut self) {
        while matches!(self.state, State::Running) && self.actions.is_empty() {
            self.steps += 1;
            if self.steps > MAX_STEPS {
                self.finish(ExitInfo {
                    reason: "error.semantic: the document loops without waiting for input".into(),
                    value: None,
                });
                return;
            }
            if let ControlFlow::Break(t) = self.iteration() {
                self.apply(t);
            }
        }
    }

    /// One FIA loop: select, then collect (for a block: execute).
    fn iteration(&mut self) -> Flow {
        let Some(doc) = self.doc.clone() else {
            self.finish(exit_info("exit"));
            return Flow::Continue(());
        };
        let form = &doc.forms[self.form];
        let index = match self.next_item.take() {
            Some(i) => i,
            None => match self.select(&doc)? {
                Some(i) => i,
                None => {
                    // Falling off the end of a form ends the application.
                    return Flow::Break(Transition::Exit(exit_info("exit")));
                }
            },
        };
        let item = &form.items[index];
        self.current_item = Some(index);
        let queue_prompts = !std::mem::take(&mut self.suppress_prompts);
        match &item.kind {
            ItemKind::Block(body) => {
                self.scopes
                    .set(Scope::Dialog, &item.name, JsValue::from(true))
                    .map_err(|e| semantic(&item.name, e))
                    .into_flow()?;
                self.scopes.reset(Scope::Anonymous);
                self.exec_all(body, Scope::Anonymous)
            }
            ItemKind::Field(field) => {
                if queue_prompts {
                    self.prompt_counts[index] += 1;
                    let count = self.prompt_counts[index];
                    let chosen = prompt::select(&field.prompts, count, &mut self.scopes)
                        .map_err(|e| semantic("prompt cond", e))
                        .into_flow()?;
                    for p in chosen {
                        self.queue_prompt(p, &doc.url)?;
                    }
                }
                let request = self.collect_request(&doc, index, field.grammars.clone());
                if self.hung_up {
                    // The caller is gone and the hangup handler did not leave: end here.
                    let reason = if self.disconnecting {
                        "disconnect"
                    } else {
                        "hangup"
                    };
                    return Flow::Break(Transition::Exit(exit_info(reason)));
                }
                self.flush_queue();
                self.actions.push_back(Action::Collect(request));
                self.state = State::AwaitInput { item: index };
                Flow::Continue(())
            }
            ItemKind::Unsupported(name) => Flow::Break(Transition::Throw(VxmlEvent::new(
                format!("error.unsupported.{name}"),
                format!("<{name}> is not supported yet"),
            ))),
        }
    }

    /// The first form item whose variable is undefined and whose `cond` holds.
    fn select(&mut self, doc: &Document) -> Flow<Option<usize>> {
        for (i, item) in doc.forms[self.form].items.iter().enumerate() {
            if !self.scopes.get(Scope::Dialog, &item.name).is_undefined() {
                continue;
            }
            if let Some(cond) = &item.cond {
                let holds = self
                    .scopes
                    .eval_bool(cond)
                    .map_err(|e| semantic(cond, e))
                    .into_flow()?;
                if !holds {
                    continue;
                }
            }
            return Flow::Continue(Some(i));
        }
        Flow::Continue(None)
    }

    fn collect_request(
        &self,
        doc: &Document,
        item: usize,
        grammars: Vec<Arc<crate::grammar::Grammar>>,
    ) -> CollectRequest {
        let form = &doc.forms[self.form];
        let lookup = |name: &str| -> Option<&str> {
            [
                &form.items[item].properties,
                &form.properties,
                &doc.properties,
            ]
            .into_iter()
            .find_map(|props| {
                props
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.as_str())
            })
        };
        let duration = |name: &str, default: Duration| {
            lookup(name).and_then(parse_duration).unwrap_or(default)
        };
        let termchar = match lookup("termchar") {
            None => Some('#'),
            Some(v) => v.trim().chars().next(),
        };
        let bargein = self
            .prompt_bargein
            .unwrap_or_else(|| lookup("bargein") != Some("false"));
        CollectRequest {
            grammars,
            timeout: duration("timeout", Duration::from_secs(5)),
            interdigit_timeout: duration("interdigittimeout", Duration::from_secs(3)),
            term_timeout: duration("termtimeout", Duration::ZERO),
            termchar,
            bargein,
        }
    }

    fn queue_prompt(&mut self, p: &document::Prompt, base: &url::Url) -> Flow {
        let items = prompt::render(&p.content, base, &mut self.scopes)
            .map_err(|e| semantic("prompt", e))
            .into_flow()?;
        if p.bargein.is_some() {
            self.prompt_bargein = p.bargein;
        }
        self.queue.extend(items);
        Flow::Continue(())
    }

    /// Hands queued prompts to the driver, ahead of the action about to be pushed.
    pub(crate) fn flush_queue(&mut self) {
        if !self.queue.is_empty() {
            self.actions
                .push_back(Action::Queue(std::mem::take(&mut self.queue)));
        }
    }

    fn finish(&mut self, info: ExitInfo) {
        tracing::info!(call_id = %self.call_id(), reason = %info.reason, value = ?info.value, "vxml session end");
        self.flush_queue();
        self.actions.push_back(Action::Exit(info.clone()));
        self.state = State::Done(info);
    }

    /// Carries out a transition, handling any events it leads to.
    fn apply(&mut self, mut t: Transition) {
        loop {
            self.steps += 1;
            if self.steps > MAX_STEPS {
                self.finish(ExitInfo {
                    reason: "error.semantic: events loop without end".into(),
                    value: None,
                });
                return;
            }
            let next = match t {
                Transition::NextItem(name) => {
                    let found = self
                        .doc
                        .as_ref()
                        .and_then(|d| d.forms[self.form].items.iter().position(|i| i.name == name));
                    match found {
                        Some(i) => {
                            self.next_item = Some(i);
                            self.state = State::Running;
                            return;
                        }
                        None => badfetch(format!("goto nextitem: no form item {name}")),
                    }
                }
                Transition::NextForm(id) => match self.enter_form_by_id(&id) {
                    ControlFlow::Continue(()) => return,
                    ControlFlow::Break(t) => t,
                },
                Transition::NextDocument(req) => {
                    tracing::debug!(call_id = %self.call_id(), url = %req.url, "next document");
                    let fragment = req.url.fragment().map(str::to_owned);
                    self.flush_queue();
                    self.actions.push_back(Action::Fetch(req));
                    self.state = State::AwaitFetch { fragment };
                    return;
                }
                Transition::Exit(info) => {
                    self.finish(info);
                    return;
                }
                Transition::Disconnect => {
                    if self.hung_up {
                        VxmlEvent::bare("connection.disconnect.hangup").into_throw()
                    } else {
                        self.disconnecting = true;
                        self.flush_queue();
                        self.actions.push_back(Action::Disconnect);
                        self.state = State::AwaitDisconnect;
                        return;
                    }
                }
                Transition::Throw(ev) => match self.throw(ev) {
                    ControlFlow::Continue(()) => return,
                    ControlFlow::Break(t) => t,
                },
            };
            t = next;
        }
    }

    /// Runs the handler `<catch>` selects for `ev`, or the default handler.
    fn throw(&mut self, ev: VxmlEvent) -> Flow {
        tracing::debug!(call_id = %self.call_id(), event = %ev.name, message = ?ev.message, "vxml event");
        self.state = State::Running;
        let Some(doc) = self.doc.clone() else {
            // No document to catch it (the first fetch failed).
            self.finish(exit_for(&ev, false));
            return Flow::Continue(());
        };
        let count = {
            let c = self.event_counts.entry(ev.name.clone()).or_insert(0);
            *c += 1;
            *c
        };
        let form = &doc.forms[self.form];
        let mut candidates = Vec::new();
        if let Some(item) = self.current_item.and_then(|i| form.items.get(i)) {
            candidates.extend(item.catches.iter());
        }
        candidates.extend(form.catches.iter());
        candidates.extend(doc.catches.iter());
        let mut cond_error = None;
        let scopes = &mut self.scopes;
        let chosen = event::select(&candidates, &ev.name, count, |cond| {
            scopes.eval_bool(cond).unwrap_or_else(|e| {
                cond_error.get_or_insert(e);
                false
            })
        });
        if let Some(e) = cond_error {
            tracing::warn!(call_id = %self.call_id(), error = %e, "catch cond failed");
        }
        match chosen {
            Some(catch) => {
                self.scopes.reset(Scope::Anonymous);
                let message = ev.message.as_deref().map_or(JsValue::undefined(), |m| {
                    JsValue::from(boa_engine::JsString::from(m))
                });
                let _ = self.scopes.set(
                    Scope::Anonymous,
                    "_event",
                    JsValue::from(boa_engine::JsString::from(ev.name.as_str())),
                );
                let _ = self.scopes.set(Scope::Anonymous, "_message", message);
                self.reprompted = false;
                self.exec_all(&catch.body, Scope::Anonymous)?;
                self.suppress_prompts = !self.reprompted;
                Flow::Continue(())
            }
            None => match event::default_handler(&ev.name) {
                DefaultHandler::Reprompt => Flow::Continue(()),
                DefaultHandler::Ignore => {
                    self.suppress_prompts = true;
                    Flow::Continue(())
                }
                DefaultHandler::Exit => {
                    self.finish(exit_for(&ev, self.disconnecting));
                    Flow::Continue(())
                }
            },
        }
    }

    pub(crate) fn on_event(&mut self, event: PlatformEvent) {
        match (event, std::mem::replace(&mut self.state, State::Running)) {
            (PlatformEvent::Fetched(result), State::AwaitFetch { fragment }) => {
                let flow = self.on_fetched(result, fragment);
                if let ControlFlow::Break(t) = flow {
                    self.apply(t);
                }
            }
            (PlatformEvent::Input(input), State::AwaitInput { item }) => {
                if let ControlFlow::Break(t) = self.on_input(item, input) {
                    self.apply(t);
                }
            }
            (PlatformEvent::Disconnected, State::AwaitDisconnect) => {
                self.hung_up = true;
                self.apply(VxmlEvent::bare("connection.disconnect.hangup").into_throw());
            }
            (PlatformEvent::Hangup, state) => {
                self.hung_up = true;
                match state {
                    State::Done(info) => self.state = State::Done(info),
                    State::AwaitInput { .. } | State::AwaitDisconnect | State::Running => {
                        self.apply(VxmlEvent::bare("connection.disconnect.hangup").into_throw());
                    }
                    // A fetch in flight still completes; the hangup is seen at the next input.
                    other => self.state = other,
                }
            }
            (event, state) => {
                tracing::warn!(call_id = %self.call_id(), ?event, ?state, "unexpected platform event ignored");
                self.state = state;
            }
        }
    }

    fn on_fetched(
        &mut self,
        result: Result<Fetched, crate::action::FetchError>,
        fragment: Option<String>,
    ) -> Flow {
        let fetched = result.map_err(|e| badfetch(e.to_string())).into_flow()?;
        if !(200..300).contains(&fetched.status) {
            return Flow::Break(badfetch(format!(
                "status {} from {}",
                fetched.status, fetched.url
            )));
        }
        let text = String::from_utf8_lossy(&fetched.body);
        let doc = document::parse(&fetched.url, &text)
            .map_err(|e| badfetch(e.to_string()))
            .into_flow()?;
        tracing::debug!(call_id = %self.call_id(), url = %fetched.url, forms = doc.forms.len(), "document loaded");
        let doc = Rc::new(doc);
        self.doc = Some(doc.clone());
        self.form = 0;
        self.current_item = None;
        self.event_counts.clear();
        self.scopes.reset(Scope::Document);
        self.exec_all(&doc.decls, Scope::Document)?;
        match fragment {
            Some(id) => self.enter_form_by_id(&id),
            None if doc.forms.is_empty() => Flow::Break(Transition::Exit(exit_info("exit"))),
            None => {
                self.enter_form(0)?;
                Flow::Continue(())
            }
        }
    }

    fn enter_form_by_id(&mut self, id: &str) -> Flow {
        let found = self
            .doc
            .as_ref()
            .and_then(|d| d.forms.iter().position(|f| f.id == id));
        match found {
            Some(i) => self.enter_form(i),
            None => Flow::Break(badfetch(format!("no form with id {id}"))),
        }
    }

    /// Enters a form: fresh dialog scope, counters reset, variables and scripts run in order.
    fn enter_form(&mut self, index: usize) -> Flow {
        let Some(doc) = self.doc.clone() else {
            return Flow::Continue(());
        };
        let form = &doc.forms[index];
        tracing::debug!(call_id = %self.call_id(), form = %form.id, "enter form");
        self.form = index;
        self.state = State::Running;
        self.prompt_counts = vec![0; form.items.len()];
        self.event_counts.clear();
        self.next_item = None;
        self.current_item = None;
        self.suppress_prompts = false;
        self.prompt_bargein = None;
        self.scopes.reset(Scope::Dialog);
        for decl in &form.decls {
            match decl {
                document::Decl::Exec(e) => self.exec(e, Scope::Dialog)?,
                document::Decl::Item(i) => {
                    let item = &form.items[*i];
                    let value = match &item.expr {
                        Some(expr) => self.eval(expr)?,
                        None => JsValue::undefined(),
                    };
                    self.scopes
                        .declare(Scope::Dialog, &item.name, value)
                        .map_err(|e| semantic(&item.name, e))
                        .into_flow()?;
                }
            }
        }
        Flow::Continue(())
    }

    fn on_input(&mut self, index: usize, input: InputResult) -> Flow {
        let Some(doc) = self.doc.clone() else {
            return Flow::Continue(());
        };
        let form = &doc.forms[self.form];
        let item = &form.items[index];
        self.current_item = Some(index);
        self.prompt_bargein = None;
        let ItemKind::Field(field) = &item.kind else {
            return Flow::Continue(());
        };
        match input {
            InputResult::NoInput => Flow::Break(VxmlEvent::bare("noinput").into_throw()),
            InputResult::NoMatch { utterance, .. } => {
                tracing::debug!(call_id = %self.call_id(), %utterance, "nomatch");
                Flow::Break(VxmlEvent::bare("nomatch").into_throw())
            }
            InputResult::Hangup => {
                self.hung_up = true;
                Flow::Break(VxmlEvent::bare("connection.disconnect.hangup").into_throw())
            }
            InputResult::Match {
                utterance,
                semantics,
                ..
            } => {
                tracing::debug!(call_id = %self.call_id(), field = %item.name, %utterance, "filled");
                let value = match semantics {
                    crate::grammar::Semantics::Value(crate::grammar::SemValue::Bool(b)) => b.to_string(),
                    crate::grammar::Semantics::Value(crate::grammar::SemValue::Str(s)) => js_string_literal(&s),
                    _ => "undefined".to_owned(),
                };
                let _ = field.boolean;
                let script = format!(
                    "(function(){{var u={u}, i={value};\
                     var r={{utterance:u, interpretation:i, confidence:1.0, inputmode:\"dtmf\"}};\
                     var a=[r]; a.utterance=u; a.interpretation=i; a.confidence=1.0; a.inputmode=\"dtmf\";\
                     $vxs1[\"lastresult$\"]=a; $vxs3[{shadow}]=r; $vxs3[{name}]=i;}})()",
                    u = js_string_literal(&utterance),
                    shadow = js_string_literal(&format!("{}$", item.name)),
                    name = js_string_literal(&item.name),
                );
                self.scopes
                    .run_internal(&script)
                    .map_err(|e| semantic("field result", e))
                    .into_flow()?;
                self.run_filled(&field.filled)?;
                let just_filled = item.name.clone();
                for filled in &form.filled {
                    if self.form_filled_applies(form, filled, &just_filled) {
                        self.scopes.reset(Scope::Anonymous);
                        self.exec_all(&filled.body, Scope::Anonymous)?;
                    }
                }
                Flow::Continue(())
            }
        }
    }

    fn run_filled(&mut self, filled: &[Filled]) -> Flow {
        for f in filled {
            self.scopes.reset(Scope::Anonymous);
            self.exec_all(&f.body, Scope::Anonymous)?;
        }
        Flow::Continue(())
    }

    /// A form-level `<filled>` runs when the item just filled is in its namelist (default: all
    /// input items) and, in mode "all", every item of the namelist is filled.
    fn form_filled_applies(
        &mut self,
        form: &document::Form,
        filled: &Filled,
        just_filled: &str,
    ) -> bool {
        let names: Vec<&str> = if filled.namelist.is_empty() {
            form.items
                .iter()
                .filter(|i| matches!(i.kind, ItemKind::Field(_)))
                .map(|i| i.name.as_str())
                .collect()
        } else {
            filled.namelist.iter().map(String::as_str).collect()
        };
        if !names.contains(&just_filled) {
            return false;
        }
        filled.any
            || names
                .iter()
                .all(|n| !self.scopes.get(Scope::Dialog, n).is_undefined())
    }

    fn eval(&mut self, expr: &str) -> Flow<JsValue> {
        self.scopes
            .eval(expr)
            .map_err(|e| semantic(expr, e))
            .into_flow()
    }

    fn eval_string(&mut self, expr: &str) -> Flow<String> {
        self.scopes
            .eval_string(expr)
            .map_err(|e| semantic(expr, e))
            .into_flow()
    }

    fn eval_bool(&mut self, expr: &str) -> Flow<bool> {
        self.scopes
            .eval_bool(expr)
            .map_err(|e| semantic(expr, e))
            .into_flow()
    }

    pub(crate) fn exec_all(&mut self, body: &[Exec], var_scope: Scope) -> Flow {
        for e in body {
            self.exec(e, var_scope)?;
        }
        Flow::Continue(())
    }

    fn base_url(&self) -> Option<url::Url> {
        self.doc.as_ref().map(|d| d.url.clone())
    }

    fn exec(&mut self, e: &Exec, var_scope: Scope) -> Flow {
        match e {
            Exec::Var { name, expr } => {
                let value = match expr {
                    Some(expr) => self.eval(expr)?,
                    None => JsValue::undefined(),
                };
                self.scopes
                    .declare(var_scope, name, value)
                    .map_err(|e| semantic(name, e))
                    .into_flow()
            }
            Exec::Assign { name, expr } => {
                let value = self.eval(expr)?;
                self.scopes
                    .assign(name, value)
                    .map_err(|e| semantic("assign", e))
                    .into_flow()
            }
            Exec::Script(body) => self
                .scopes
                .run_script(var_scope, body)
                .map_err(|e| semantic("script", e))
                .into_flow(),
            Exec::Prompt(p) => {
                if let Some(cond) = &p.cond
                    && !self.eval_bool(cond)?
                {
                    return Flow::Continue(());
                }
                let Some(base) = self.base_url() else {
                    return Flow::Continue(());
                };
                self.queue_prompt(p, &base)
            }
            Exec::If(branches) => {
                for (cond, body) in branches {
                    let taken = match cond {
                        Some(cond) => self.eval_bool(cond)?,
                        None => true,
                    };
                    if taken {
                        return self.exec_all(body, var_scope);
                    }
                }
                Flow::Continue(())
            }
            Exec::Goto {
                next,
                expr,
                nextitem,
                expritem,
            } => {
                if let Some(item) = nextitem {
                    return Flow::Break(Transition::NextItem(item.clone()));
                }
                if let Some(expr) = expritem {
                    let item = self.eval_string(expr)?;
                    return Flow::Break(Transition::NextItem(item));
                }
                let target = self.target(next, expr, "goto")?;
                Flow::Break(self.goto(&target, None)?)
            }
            Exec::Submit {
                next,
                expr,
                namelist,
                post,
            } => {
                let target = self.target(next, expr, "submit")?;
                let names = match namelist {
                    Some(names) => names.clone(),
                    None => self.item_names(),
                };
                let mut pairs = Vec::new();
                for name in &names {
                    let value = self.eval_string(name)?;
                    pairs.push((name.clone(), value));
                }
                Flow::Break(self.goto(&target, Some((pairs, *post)))?)
            }
            Exec::Clear(names) => {
                let names = if names.is_empty() {
                    self.item_names()
                } else {
                    names.clone()
                };
                let items = self.item_names();
                for name in &names {
                    if let Some(i) = items.iter().position(|n| n == name) {
                        if let Some(c) = self.prompt_counts.get_mut(i) {
                            *c = 0;
                        }
                        self.scopes
                            .set(Scope::Dialog, name, JsValue::undefined())
                            .map_err(|e| semantic(name, e))
                            .into_flow()?;
                    } else {
                        self.scopes
                            .assign(name, JsValue::undefined())
                            .map_err(|e| semantic("clear", e))
                            .into_flow()?;
                    }
                }
                Flow::Continue(())
            }
            Exec::Reprompt => {
                self.reprompted = true;
                Flow::Continue(())
            }
            Exec::Throw {
                event,
                eventexpr,
                message,
                messageexpr,
            } => {
                let name = match (event, eventexpr) {
                    (Some(e), _) => e.clone(),
                    (None, Some(expr)) => self.eval_string(expr)?,
                    (None, None) => {
                        return Flow::Break(semantic("throw", "no event or eventexpr"));
                    }
                };
                let message = match (message, messageexpr) {
                    (Some(m), _) => Some(m.clone()),
                    (None, Some(expr)) => Some(self.eval_string(expr)?),
                    (None, None) => None,
                };
                Flow::Break(Transition::Throw(VxmlEvent { name, message }))
            }
            Exec::Log {
                label,
                expr,
                content,
            } => {
                let mut text = String::new();
                for piece in content {
                    match piece {
                        document::Piece::Text(t) => text.push_str(t),
                        document::Piece::Value(expr) => text.push_str(&self.eval_string(expr)?),
                        _ => {}
                    }
                }
                if let Some(expr) = expr {
                    text.push_str(&self.eval_string(expr)?);
                }
                tracing::info!(call_id = %self.call_id(), label = label.as_deref().unwrap_or(""), "vxml log: {text}");
                Flow::Continue(())
            }
            Exec::Exit { expr, namelist } => {
                let value = match expr {
                    Some(expr) => Some(self.eval_string(expr)?),
                    None if !namelist.is_empty() => {
                        let mut ser = url::form_urlencoded::Serializer::new(String::new());
                        for name in namelist {
                            let v = self.eval_string(name)?;
                            ser.append_pair(name, &v);
                        }
                        Some(ser.finish())
                    }
                    None => None,
                };
                Flow::Break(Transition::Exit(ExitInfo {
                    reason: "exit".into(),
                    value,
                }))
            }
            Exec::Disconnect => Flow::Break(Transition::Disconnect),
            Exec::Unsupported(name) => Flow::Break(Transition::Throw(VxmlEvent::new(
                format!("error.unsupported.{}", name.replace(' ', ".")),
                format!("<{name}> is not supported yet"),
            ))),
        }
    }

    fn item_names(&self) -> Vec<String> {
        self.doc
            .as_ref()
            .map(|d| {
                d.forms[self.form]
                    .items
                    .iter()
                    .map(|i| i.name.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn target(&mut self, next: &Option<String>, expr: &Option<String>, what: &str) -> Flow<String> {
        match (next, expr) {
            (Some(n), _) => Flow::Continue(n.clone()),
            (None, Some(expr)) => self.eval_string(expr),
            (None, None) => Flow::Break(badfetch(format!("{what} without next or expr"))),
        }
    }

    /// The transition to `target` ("#form" or a URL relative to the document), with submitted
    /// `(name, value)` pairs sent by GET query or POST body.
    fn goto(
        &mut self,
        target: &str,
        submit: Option<(Vec<(String, String)>, bool)>,
    ) -> Flow<Transition> {
        if let Some(id) = target.strip_prefix('#')
            && submit.is_none()
        {
            return Flow::Continue(Transition::NextForm(id.to_owned()));
        }
        let Some(base) = self.base_url() else {
            return Flow::Break(badfetch("no document to resolve against"));
        };
        let mut url = base
            .join(target)
            .map_err(|e| badfetch(format!("bad url {target:?}: {e}")))
            .into_flow()?;
        let mut request = FetchRequest {
            url: url.clone(),
            method: Method::Get,
            body: None,
            content_type: None,
        };
        if let Some((pairs, post)) = submit {
            if post {
                let mut ser = url::form_urlencoded::Serializer::new(String::new());
                for (n, v) in &pairs {
                    ser.append_pair(n, v);
                }
                request.method = Method::Post;
                request.body = Some(ser.finish());
                request.content_type = Some("application/x-www-form-urlencoded".into());
            } else if !pairs.is_empty() {
                url.query_pairs_mut()
                    .extend_pairs(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())));
                request.url = url;
            }
        }
        Flow::Continue(Transition::NextDocument(request))
    }
}

fn exit_info(reason: &str) -> ExitInfo {
    ExitInfo {
        reason: reason.to_owned(),
        value: None,
    }
}

/// The exit of the default handler for an uncaught event.
fn exit_for(ev: &VxmlEvent, disconnecting: bool) -> ExitInfo {
    let reason = if event::name_matches("connection.disconnect", &ev.name) {
        if disconnecting {
            "disconnect"
        } else {
            "hangup"
        }
        .to_owned()
    } else {
        match &ev.message {
            Some(m) => format!("{}: {m}", ev.name),
            None => ev.name.clone(),
        }
    };
    ExitInfo {
        reason,
        value: None,
    }
}

trait IntoFlow<T> {
    fn into_flow(self) -> Flow<T>;
}

impl<T> IntoFlow<T> for Result<T, Transition> {
    fn into_flow(self) -> Flow<T> {
        match self {
            Ok(v) => Flow::Continue(v),
            Err(t) => Flow::Break(t),
        }
    }
}

impl VxmlEvent {
    fn into_throw(self) -> Transition {
        Transition::Throw(self)
    }
}
