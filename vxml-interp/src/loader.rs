//! Platform answers, documents and transitions: loading leaf and application root documents,
//! entering dialogs, subdialog calls and returns, and throwing events to `<catch>`.

use std::ops::ControlFlow;
use std::rc::Rc;
use std::sync::Arc;

use boa_engine::JsValue;

use crate::action::{Action, ExitInfo, FetchError, FetchRequest, Fetched, PlatformEvent};
use crate::document::{self, Document};
use crate::event::{self, DefaultHandler, VxmlEvent};
use crate::exec::{Flow, Frame, IntoFlow, Marker, Resource, Transition, badfetch, semantic};
use crate::fia::exit_info;
use crate::grammar::Grammar;
use crate::interpreter::{Ctx, Interpreter, ItemState, Pending, State};
use crate::scope::Scope;

/// The event for a failed fetch: `error.badfetch.http.NNN` for an HTTP status.
fn fetch_event(e: &FetchError) -> VxmlEvent {
    match e {
        FetchError::Status { status, .. } => {
            VxmlEvent::new(format!("error.badfetch.http.{status}"), e.to_string())
        }
        _ => VxmlEvent::new("error.badfetch", e.to_string()),
    }
}

fn body_text(fetched: &Fetched) -> Result<&str, VxmlEvent> {
    std::str::from_utf8(&fetched.body).map_err(|_| {
        VxmlEvent::new(
            "error.badfetch",
            format!("{}: body is not UTF-8", fetched.url),
        )
    })
}

impl Interpreter {
    pub(crate) fn on_event(&mut self, event: PlatformEvent) {
        let state = std::mem::replace(&mut self.state, State::Running);
        let flow = match (event, state) {
            (PlatformEvent::Fetched(result), State::AwaitFetch(pending)) => {
                self.on_fetched(result, pending)
            }
            (PlatformEvent::Input(input), State::AwaitInput { item }) => self.on_input(item, input),
            (PlatformEvent::Recorded(result), State::AwaitRecord { item }) => {
                self.on_recorded(item, result)
            }
            (PlatformEvent::Transferred(result), State::AwaitTransfer { item }) => {
                self.on_transferred(item, result)
            }
            (PlatformEvent::Disconnected, State::AwaitDisconnect) => {
                self.hung_up = true;
                Flow::Break(VxmlEvent::bare("connection.disconnect.hangup").into_throw())
            }
            (PlatformEvent::Hangup, state) => {
                self.hung_up = true;
                match state {
                    State::Done(info) => {
                        self.state = State::Done(info);
                        Flow::Continue(())
                    }
                    State::AwaitFetch(pending) => {
                        // A fetch in flight still completes; the application hears of the
                        // hangup once it is answered.
                        self.hangup_pending = true;
                        self.state = State::AwaitFetch(pending);
                        Flow::Continue(())
                    }
                    _ => Flow::Break(VxmlEvent::bare("connection.disconnect.hangup").into_throw()),
                }
            }
            (event, state) => {
                tracing::warn!(call_id = %self.call_id(), ?event, ?state, "unexpected platform event ignored");
                self.state = state;
                Flow::Continue(())
            }
        };
        if let ControlFlow::Break(t) = flow {
            self.apply(t);
        }
        if self.hangup_pending && matches!(self.state, State::Running) {
            self.hangup_pending = false;
            self.apply(VxmlEvent::bare("connection.disconnect.hangup").into_throw());
        }
    }

    fn on_fetched(&mut self, result: Result<Fetched, FetchError>, pending: Pending) -> Flow {
        let fetched = match result {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(call_id = %self.call_id(), error = %e, "fetch failed");
                // A failed resource abandons the content that needed it.
                self.frames
                    .retain(|f| matches!(f, Frame::Marker(Marker::EnterDialog(_))));
                return Flow::Break(fetch_event(&e).into_throw());
            }
        };
        match pending {
            Pending::Document { fragment } => {
                let doc = self.parse_document(&fetched)?;
                self.load(doc, fragment, None)
            }
            Pending::Subdialog {
                item,
                fragment,
                params,
            } => {
                let doc = self.parse_document(&fetched)?;
                self.load(doc, fragment, Some((item, params)))
            }
            Pending::Root {
                leaf,
                fragment,
                subdialog,
            } => {
                let root = self.parse_document(&fetched)?;
                if root.application.is_some() {
                    return Flow::Break(badfetch(format!(
                        "{}: an application root document cannot have its own root",
                        root.url
                    )));
                }
                self.start_document(leaf, Some(root), true, fragment, subdialog)
            }
            Pending::Script { url, scope } => {
                let text = body_text(&fetched)
                    .map_err(Transition::Throw)
                    .into_flow()?
                    .to_owned();
                if self.scripts.len() >= 64 {
                    self.scripts.clear();
                }
                self.scripts.insert(url.clone(), Rc::from(text.as_str()));
                self.scopes
                    .run_script(scope, &text)
                    .map_err(|e| semantic(&format!("script {url}"), e))
                    .into_flow()
            }
            Pending::Data { name, scope } => {
                let text = body_text(&fetched).map_err(Transition::Throw).into_flow()?;
                let value =
                    crate::dom::parse(text, fetched.content_type.as_deref(), &mut self.scopes)
                        .map_err(|e| badfetch(format!("{}: {e}", fetched.url)))
                        .into_flow()?;
                if let Some(name) = name {
                    if self.scopes.is_declared(&name) {
                        self.scopes
                            .assign(&name, value)
                            .map_err(|e| semantic(&name, e))
                            .into_flow()?;
                    } else {
                        self.scopes
                            .declare(scope, &name, value)
                            .map_err(|e| semantic(&name, e))
                            .into_flow()?;
                    }
                }
                Flow::Continue(())
            }
            Pending::Grammar { url } => {
                let text = body_text(&fetched).map_err(Transition::Throw).into_flow()?;
                let grammar = Grammar::from_source(text, fetched.content_type.as_deref())
                    .map_err(|e| badfetch(format!("grammar {url}: {e}")))
                    .into_flow()?;
                if self.grammars.len() >= 256 {
                    self.grammars.clear();
                }
                self.grammars.insert(url, Arc::new(grammar));
                // The FIA iteration that needed it runs again and finds it.
                if let Some(c) = self.ctx_mut() {
                    c.next_item = c.current_item;
                }
                Flow::Continue(())
            }
        }
    }

    fn parse_document(&mut self, fetched: &Fetched) -> Flow<Rc<Document>> {
        let text = body_text(fetched).map_err(Transition::Throw).into_flow()?;
        match document::parse(&fetched.url, text) {
            Ok(doc) => Flow::Continue(Rc::new(doc)),
            Err(e) => {
                tracing::warn!(call_id = %self.call_id(), error = %e, "document rejected");
                Flow::Break(badfetch(e.to_string()))
            }
        }
    }

    /// A fetched document becomes the leaf: first its application root, if it has one that is
    /// not loaded yet.
    fn load(
        &mut self,
        doc: Rc<Document>,
        fragment: Option<String>,
        subdialog: Option<(usize, Vec<(String, JsValue)>)>,
    ) -> Flow {
        self.transitions += 1;
        let Some(app) = &doc.application else {
            return self.start_document(doc, None, false, fragment, subdialog);
        };
        let mut root_url = doc
            .base
            .join(app)
            .map_err(|e| badfetch(format!("application {app:?}: {e}")))
            .into_flow()?;
        root_url.set_fragment(None);
        let current_root = if subdialog.is_some() {
            None
        } else {
            self.ctx().and_then(|c| c.root.clone())
        };
        if let Some(root) = current_root
            && same_document(&root.url, &root_url)
        {
            return self.start_document(doc, Some(root), false, fragment, subdialog);
        }
        self.actions.push_back(Action::Fetch(
            self.fetch_request(root_url, Resource::Document),
        ));
        self.state = State::AwaitFetch(Pending::Root {
            leaf: doc,
            fragment,
            subdialog,
        });
        Flow::Continue(())
    }

    /// Makes `doc` the current document (in a new context for a subdialog) and queues the
    /// initialisation of its variables (and of a newly loaded root's).
    fn start_document(
        &mut self,
        doc: Rc<Document>,
        root: Option<Rc<Document>>,
        new_root: bool,
        fragment: Option<String>,
        subdialog: Option<(usize, Vec<(String, JsValue)>)>,
    ) -> Flow {
        self.frames.clear();
        // A document that is its own application root (a leaf going back to its root).
        let current_root = self.ctx().and_then(|c| c.root.clone());
        let is_root_itself = subdialog.is_none()
            && current_root
                .as_ref()
                .is_some_and(|r| same_document(&r.url, &doc.url));
        let mut ctx = Ctx::new(doc.clone(), root.clone());
        match subdialog {
            Some((item, params)) => {
                let saved = self.scopes.save();
                self.reset_application();
                ctx.params = params.into_iter().collect();
                ctx.caller = Some((saved, item));
                self.ctxs.push(ctx);
            }
            None => {
                if is_root_itself {
                    ctx.root = current_root;
                } else if new_root || root.is_none() {
                    self.reset_application();
                }
                // A goto replaces the current context (inside a subdialog, the subdialog's).
                let caller = self.ctxs.pop().and_then(|c| c.caller);
                ctx.caller = caller;
                self.ctxs.push(ctx);
            }
        }
        if is_root_itself {
            self.scopes.alias_document_to_application();
        } else {
            self.scopes.reset(Scope::Document);
        }
        self.push_frame(Frame::Marker(Marker::EnterDialog(fragment)))?;
        if !is_root_itself {
            self.push_frame(Frame::body(&doc.decls, Scope::Document, false))?;
        }
        if new_root && let Some(root) = root {
            self.push_frame(Frame::body(&root.decls, Scope::Application, false))?;
        }
        Flow::Continue(())
    }

    pub(crate) fn on_marker(&mut self, marker: Marker) -> Flow {
        match marker {
            Marker::CatchDone => {
                if let Some(c) = self.ctx_mut() {
                    c.suppress_prompts = !c.reprompted;
                }
                Flow::Continue(())
            }
            Marker::EnterDialog(fragment) => match fragment {
                Some(id) => self.enter_dialog_by_id(&id),
                None => {
                    let has_dialog = self.ctx().is_some_and(|c| !c.doc.dialogs.is_empty());
                    if has_dialog {
                        self.enter_dialog(0)
                    } else {
                        Flow::Continue(())
                    }
                }
            },
            Marker::FillFromResult(value) => {
                self.fill_from_form_result(value, "", crate::action::InputMode::Voice, false)
            }
        }
    }

    pub(crate) fn enter_dialog_by_id(&mut self, id: &str) -> Flow {
        let found = self.ctx().and_then(|c| c.doc.dialog_index(id));
        match found {
            Some(i) => self.enter_dialog(i),
            None => Flow::Break(badfetch(format!("no dialog with id {id:?}"))),
        }
    }

    /// Enters dialog `index` of the current document: fresh dialog scope and counters, then
    /// its variables.
    fn enter_dialog(&mut self, index: usize) -> Flow {
        self.transitions += 1;
        let Some(c) = self.ctx_mut() else {
            return Flow::Continue(());
        };
        let doc = c.doc.clone();
        let dialog = &doc.dialogs[index];
        c.dialog = Some(index);
        c.items = vec![ItemState::default(); dialog.items.len()];
        c.dialog_events.clear();
        c.next_item = None;
        c.current_item = None;
        c.suppress_prompts = false;
        self.scopes.reset(Scope::Dialog);
        self.push_frame(Frame::body(&dialog.decls, Scope::Dialog, false))
    }

    /// Carries out a transition, handling any events it leads to.
    pub(crate) fn apply(&mut self, mut t: Transition) {
        loop {
            let next = match t {
                Transition::NextItem(name) => {
                    self.frames.clear();
                    let found = self.item_names().iter().position(|n| *n == name);
                    match found {
                        Some(i) => {
                            if let Some(c) = self.ctx_mut() {
                                c.next_item = Some(i);
                            }
                            self.state = State::Running;
                            return;
                        }
                        None => badfetch(format!("goto nextitem: no form item {name}")),
                    }
                }
                Transition::Goto(req) => match self.goto(*req) {
                    ControlFlow::Continue(()) => return,
                    ControlFlow::Break(t) => t,
                },
                Transition::Exit(info) => {
                    self.finish(info);
                    return;
                }
                Transition::Return(result) => match self.return_to_caller(result) {
                    ControlFlow::Continue(()) => return,
                    ControlFlow::Break(t) => t,
                },
                Transition::Disconnect => {
                    self.frames.clear();
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
            if matches!(self.state, State::Done(_)) {
                return;
            }
        }
    }

    /// `<goto>`, `<submit>`, links: a dialog of this document, or another document.
    fn goto(&mut self, req: FetchRequest) -> Flow {
        self.frames.clear();
        self.state = State::Running;
        self.transitions += 1;
        let current = self.ctx().map(|c| c.doc.url.clone());
        if req.method == crate::action::Method::Get
            && req.body.is_none()
            && let Some(current) = current
            && same_document(&current, &req.url)
            && req.url.query() == current.query()
        {
            return match req.url.fragment() {
                Some(id) => {
                    let id = id.to_owned();
                    self.enter_dialog_by_id(&id)
                }
                // The same document without a fragment: reload it.
                None => self.fetch_document(req),
            };
        }
        self.fetch_document(req)
    }

    fn fetch_document(&mut self, req: FetchRequest) -> Flow {
        tracing::debug!(call_id = %self.call_id(), url = %req.url, "next document");
        let fragment = req.url.fragment().map(str::to_owned);
        self.flush_queue();
        self.actions.push_back(Action::Fetch(req));
        self.state = State::AwaitFetch(Pending::Document { fragment });
        Flow::Continue(())
    }

    /// `<return>`: back to the caller's context, filling its `<subdialog>` item (or throwing
    /// the returned event there).
    fn return_to_caller(&mut self, result: Result<JsValue, VxmlEvent>) -> Flow {
        self.frames.clear();
        self.state = State::Running;
        let caller = self.ctx_mut().and_then(|c| c.caller.take());
        let Some((saved, item)) = caller else {
            return Flow::Break(semantic("return", "<return> outside a subdialog"));
        };
        self.ctxs.pop();
        self.scopes.restore(saved);
        if let Some(c) = self.ctx_mut() {
            c.current_item = Some(item);
        }
        match result {
            Err(ev) => Flow::Break(ev.into_throw()),
            Ok(value) => {
                let Some(c) = self.ctx() else {
                    return Flow::Continue(());
                };
                let Some(d) = c.dialog else {
                    return Flow::Continue(());
                };
                let doc = c.doc.clone();
                let name = doc.dialogs[d].items[item].name.clone();
                self.scopes
                    .set(Scope::Dialog, &name, value)
                    .map_err(|e| semantic(&name, e))
                    .into_flow()?;
                self.run_filled(&doc, d, &[item])
            }
        }
    }

    /// Runs the handler `<catch>` selects for `ev`, or the default handler.
    fn throw(&mut self, ev: VxmlEvent) -> Flow {
        tracing::info!(call_id = %self.call_id(), event = %ev.name, message = ?ev.message, "vxml event");
        self.state = State::Running;
        // The content that threw is abandoned; pending initialisation goes on afterwards.
        self.frames
            .retain(|f| matches!(f, Frame::Marker(Marker::EnterDialog(_))));
        let Some(c) = self.ctx_mut() else {
            // No document to catch it (the first fetch failed).
            let info = exit_for(&ev, false);
            self.finish(info);
            return Flow::Continue(());
        };
        // Count the event under every prefix of its name, for the item (or dialog) at hand.
        let counters = match c.current_item.and_then(|i| c.items.get_mut(i)) {
            Some(state) => &mut state.events,
            None => &mut c.dialog_events,
        };
        let mut prefix = String::new();
        for (i, part) in ev.name.split('.').enumerate() {
            if i > 0 {
                prefix.push('.');
            }
            prefix.push_str(part);
            *counters.entry(prefix.clone()).or_insert(0) += 1;
        }
        let counts = counters.clone();
        let doc = c.doc.clone();
        let root = c.root.clone();
        let dialog = c.dialog;
        let item = c.current_item;
        let mut candidates = Vec::new();
        if let Some(d) = dialog {
            let form = &doc.dialogs[d];
            if let Some(item) = item.and_then(|i| form.items.get(i)) {
                candidates.extend(item.catches.iter());
            }
            candidates.extend(form.catches.iter());
        }
        candidates.extend(doc.catches.iter());
        if let Some(root) = &root
            && !Rc::ptr_eq(root, &doc)
        {
            candidates.extend(root.catches.iter());
        }
        let mut cond_error = None;
        let scopes = &mut self.scopes;
        let chosen = event::select(
            &candidates,
            &ev.name,
            |pattern| counts.get(pattern).copied().unwrap_or(1),
            |cond| {
                scopes.eval_bool(cond).unwrap_or_else(|e| {
                    cond_error.get_or_insert(e);
                    false
                })
            },
        );
        if let Some(e) = cond_error {
            tracing::warn!(call_id = %self.call_id(), error = %e, "catch cond failed");
        }
        match chosen {
            Some(catch) => {
                let body = catch.body.clone();
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
                if let Some(c) = self.ctx_mut() {
                    c.reprompted = false;
                }
                self.push_frame(Frame::Marker(Marker::CatchDone))?;
                self.push_frame(Frame::body(&body, Scope::Anonymous, false))
            }
            None => match event::default_handler(&ev.name) {
                DefaultHandler::Reprompt => Flow::Continue(()),
                DefaultHandler::Ignore => {
                    if let Some(c) = self.ctx_mut() {
                        c.suppress_prompts = true;
                    }
                    Flow::Continue(())
                }
                DefaultHandler::Exit => {
                    let info = exit_for(&ev, self.disconnecting);
                    self.finish(info);
                    Flow::Continue(())
                }
            },
        }
    }
}

/// Whether two URLs name the same document (fragments aside).
fn same_document(a: &url::Url, b: &url::Url) -> bool {
    let (mut a, mut b) = (a.clone(), b.clone());
    a.set_fragment(None);
    b.set_fragment(None);
    a == b
}

/// The exit of the default handler for an uncaught event.
fn exit_for(ev: &VxmlEvent, disconnecting: bool) -> ExitInfo {
    if event::name_matches("connection.disconnect", &ev.name) {
        return exit_info(if disconnecting {
            "disconnect"
        } else {
            "hangup"
        });
    }
    ExitInfo {
        reason: match &ev.message {
            Some(m) => format!("{}: {m}", ev.name),
            None => ev.name.clone(),
        },
        value: None,
    }
}
