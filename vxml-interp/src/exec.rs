//! Executable content as a resumable machine: a stack of frames stepped one element at a time,
//! so that `<script src>` and `<data>` can wait for a fetch in the middle of a block and carry
//! on where they stopped, without the driver ever blocking.

use std::ops::ControlFlow;

use boa_engine::JsValue;

use crate::action::{Action, ExitInfo, FetchRequest, Method};
use crate::document::{self, Exec, Op};
use crate::event::VxmlEvent;
pub(crate) use crate::frame::{Frame, Marker};
use crate::interpreter::{Interpreter, MAX_FRAMES, Pending, State};
use crate::scope::Scope;

/// A transfer of control out of the running content.
#[derive(Debug, Clone)]
pub(crate) enum Transition {
    /// `<goto nextitem>`: run this form item next.
    NextItem(String),
    /// `<goto>`/`<submit>`/link to a dialog of this document or to another document.
    Goto(Box<FetchRequest>),
    /// `<exit>`.
    Exit(ExitInfo),
    /// `<return>` from a subdialog: a namelist object, or an event to throw in the caller.
    Return(Result<JsValue, VxmlEvent>),
    /// `<disconnect>`.
    Disconnect,
    /// An event to hand to `<catch>`.
    Throw(VxmlEvent),
}

pub(crate) type Flow<T = ()> = ControlFlow<Transition, T>;

pub(crate) fn semantic(what: &str, error: impl std::fmt::Display) -> Transition {
    Transition::Throw(VxmlEvent::new("error.semantic", format!("{what}: {error}")))
}

pub(crate) fn badfetch(message: impl Into<String>) -> Transition {
    Transition::Throw(VxmlEvent::new("error.badfetch", message))
}

pub(crate) trait IntoFlow<T> {
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

/// What a fetch is for: each kind has its own `*maxage`/`*maxstale` properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    Document,
    Script,
    Data,
    Grammar,
}

/// What stepping one frame led to.
pub(crate) enum Step {
    /// Go on.
    Continue,
    /// Control leaves the content.
    Transition(Transition),
    /// A fetch was issued; the frames resume when it is answered.
    Suspended,
}

impl Interpreter {
    pub(crate) fn push_frame(&mut self, frame: Frame) -> Flow {
        if self.frames.len() >= MAX_FRAMES {
            return Flow::Break(semantic(
                "executable content",
                format!("nested deeper than {MAX_FRAMES} levels"),
            ));
        }
        self.frames.push(frame);
        Flow::Continue(())
    }

    /// Runs one element of the innermost frame.
    pub(crate) fn step_frames(&mut self) -> Step {
        let Some(top) = self.frames.last_mut() else {
            return Step::Continue;
        };
        let (body, pc, scope) = match top {
            Frame::Marker(_) => {
                let Some(Frame::Marker(m)) = self.frames.pop() else {
                    return Step::Continue;
                };
                return match self.on_marker(m) {
                    ControlFlow::Continue(()) => Step::Continue,
                    ControlFlow::Break(t) => Step::Transition(t),
                };
            }
            Frame::Body { fresh, .. } if *fresh => {
                *fresh = false;
                self.scopes.reset(Scope::Anonymous);
                return Step::Continue;
            }
            Frame::Body {
                body, pc, scope, ..
            } => match body.get(*pc) {
                Some(_) => {
                    *pc += 1;
                    (body.clone(), *pc - 1, *scope)
                }
                None => {
                    self.frames.pop();
                    return Step::Continue;
                }
            },
            Frame::Foreach {
                values,
                index,
                item,
                body,
                scope,
            } => {
                let Some(value) = values.get(*index).cloned() else {
                    self.frames.pop();
                    return Step::Continue;
                };
                *index += 1;
                let (item, body, scope) = (item.clone(), body.clone(), *scope);
                if let Err(e) = self.scopes.declare(scope, &item, value) {
                    return Step::Transition(semantic("foreach item", e));
                }
                return match self.push_frame(Frame::body(&body, scope, false)) {
                    ControlFlow::Continue(()) => Step::Continue,
                    ControlFlow::Break(t) => Step::Transition(t),
                };
            }
        };
        let e = &body[pc];
        match self.exec(e, scope) {
            // Errors the interpreter raises name the element's document and line, so that an
            // author can find them (an author's own <throw> keeps its message).
            ControlFlow::Break(Transition::Throw(mut ev))
                if ev.name.starts_with("error.")
                    && !matches!(e.op, Op::Throw { .. } | Op::Return { .. }) =>
            {
                let message = ev.message.take().unwrap_or_default();
                ev.message = Some(format!("{}:{}: {message}", e.url, e.line));
                Step::Transition(Transition::Throw(ev))
            }
            ControlFlow::Continue(suspended) => {
                if suspended {
                    Step::Suspended
                } else {
                    Step::Continue
                }
            }
            ControlFlow::Break(t) => Step::Transition(t),
        }
    }

    fn eval(&mut self, expr: &str) -> Flow<JsValue> {
        self.scopes
            .eval(expr)
            .map_err(|e| semantic(expr, e))
            .into_flow()
    }

    pub(crate) fn eval_string(&mut self, expr: &str) -> Flow<String> {
        self.scopes
            .eval_string(expr)
            .map_err(|e| semantic(expr, e))
            .into_flow()
    }

    pub(crate) fn eval_bool(&mut self, expr: &str) -> Flow<bool> {
        self.scopes
            .eval_bool(expr)
            .map_err(|e| semantic(expr, e))
            .into_flow()
    }

    pub(crate) fn base_url(&self) -> Option<url::Url> {
        self.ctx().map(|c| c.doc.base.clone())
    }

    /// Runs one element; `Continue(true)` when it issued a fetch and the frames must wait.
    fn exec(&mut self, e: &Exec, var_scope: Scope) -> Flow<bool> {
        match &e.op {
            Op::Var { name, expr } => {
                let param = if var_scope == Scope::Dialog {
                    self.ctx_mut().and_then(|c| c.params.remove(name))
                } else {
                    None
                };
                let value = match (param, expr) {
                    (Some(v), _) => v,
                    (None, Some(expr)) => self.eval(expr)?,
                    (None, None) => JsValue::undefined(),
                };
                self.scopes
                    .declare(var_scope, name, value)
                    .map_err(|e| semantic(name, e))
                    .into_flow()?;
            }
            Op::Assign { name, expr } => {
                let value = self.eval(expr)?;
                self.scopes
                    .assign(name, value)
                    .map_err(|e| semantic(&format!("assign {name}"), e))
                    .into_flow()?;
            }
            Op::Script(body) => self
                .scopes
                .run_script(var_scope, body)
                .map_err(|e| semantic("script", e))
                .into_flow()?,
            Op::ScriptSrc { src, srcexpr } => {
                let target = self.target(src, srcexpr, "script")?;
                let url = self.resolve(&target)?;
                if let Some(body) = self.scripts.get(&url).cloned() {
                    self.scopes
                        .run_script(var_scope, &body)
                        .map_err(|e| semantic(&format!("script {url}"), e))
                        .into_flow()?;
                } else {
                    let req = self.fetch_request(url.clone(), Resource::Script);
                    self.actions.push_back(Action::Fetch(req));
                    self.state = State::AwaitFetch(Pending::Script {
                        url,
                        scope: var_scope,
                    });
                    return Flow::Continue(true);
                }
            }
            Op::Prompt(p) => {
                if let Some(cond) = &p.cond
                    && !self.eval_bool(cond)?
                {
                    return Flow::Continue(false);
                }
                self.queue_prompt(p, None)?;
            }
            Op::If(branches) => {
                for (cond, body) in branches {
                    let taken = match cond {
                        Some(cond) => self.eval_bool(cond)?,
                        None => true,
                    };
                    if taken {
                        self.push_frame(Frame::body(body, var_scope, false))?;
                        break;
                    }
                }
            }
            Op::Goto {
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
                let url = self.resolve(&target)?;
                let mut req = self.fetch_request(url, Resource::Document);
                self.set_fetch_audio(&mut req, e.fetchaudio.as_deref())?;
                return Flow::Break(Transition::Goto(Box::new(req)));
            }
            Op::Submit {
                next,
                expr,
                namelist,
                post,
                multipart,
            } => {
                let target = self.target(next, expr, "submit")?;
                let url = self.resolve(&target)?;
                let names = match namelist {
                    Some(names) => names.clone(),
                    None => self.item_names(),
                };
                let req = self.submission(
                    url,
                    Resource::Document,
                    &names,
                    *post || *multipart,
                    *multipart,
                )?;
                let mut req = req;
                self.set_fetch_audio(&mut req, e.fetchaudio.as_deref())?;
                return Flow::Break(Transition::Goto(Box::new(req)));
            }
            Op::Clear(names) => self.clear(names)?,
            Op::Reprompt => {
                if let Some(c) = self.ctx_mut() {
                    c.reprompted = true;
                }
            }
            Op::Throw {
                event,
                eventexpr,
                message,
                messageexpr,
            } => {
                let ev = self.event_of(event, eventexpr, message, messageexpr, "throw")?;
                return Flow::Break(Transition::Throw(ev));
            }
            Op::Log {
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
                tracing::info!(call_id = %self.call_id(), label = label.as_deref().unwrap_or(""), "vxml log: {}", text.trim());
            }
            Op::Exit { expr, namelist } => {
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
                return Flow::Break(Transition::Exit(ExitInfo {
                    reason: "exit".into(),
                    value,
                }));
            }
            Op::Return {
                event,
                eventexpr,
                message,
                messageexpr,
                namelist,
            } => {
                if event.is_some() || eventexpr.is_some() {
                    let ev = self.event_of(event, eventexpr, message, messageexpr, "return")?;
                    return Flow::Break(Transition::Return(Err(ev)));
                }
                let mut fields = Vec::new();
                for name in namelist {
                    fields.push((name.clone(), self.eval(name)?));
                }
                let object = self.object_of(&fields)?;
                return Flow::Break(Transition::Return(Ok(object)));
            }
            Op::Data {
                name,
                src,
                srcexpr,
                namelist,
                post,
            } => {
                let target = self.target(src, srcexpr, "data")?;
                let url = self.resolve(&target)?;
                let mut req = self.submission(url, Resource::Data, namelist, *post, false)?;
                self.set_fetch_audio(&mut req, e.fetchaudio.as_deref())?;
                if let Some(name) = name
                    && !self.scopes.is_declared(name)
                {
                    self.scopes
                        .declare(var_scope, name, JsValue::undefined())
                        .map_err(|e| semantic(name, e))
                        .into_flow()?;
                }
                self.actions.push_back(Action::Fetch(req));
                self.state = State::AwaitFetch(Pending::Data {
                    name: name.clone(),
                    scope: var_scope,
                });
                return Flow::Continue(true);
            }
            Op::Foreach { array, item, body } => {
                let value = self.eval(array)?;
                let values = self
                    .scopes
                    .array_values(&value)
                    .map_err(|e| semantic(&format!("foreach array {array}"), e))
                    .into_flow()?;
                self.push_frame(Frame::Foreach {
                    values,
                    index: 0,
                    item: item.clone(),
                    body: body.clone(),
                    scope: var_scope,
                })?;
            }
            Op::Disconnect => return Flow::Break(Transition::Disconnect),
        }
        Flow::Continue(false)
    }

    pub(crate) fn event_of(
        &mut self,
        event: &Option<String>,
        eventexpr: &Option<String>,
        message: &Option<String>,
        messageexpr: &Option<String>,
        what: &str,
    ) -> Flow<VxmlEvent> {
        let name = match (event, eventexpr) {
            (Some(e), _) => e.clone(),
            (None, Some(expr)) => self.eval_string(expr)?,
            (None, None) => {
                return Flow::Break(semantic(what, "no event or eventexpr"));
            }
        };
        let message = match (message, messageexpr) {
            (Some(m), _) => Some(m.clone()),
            (None, Some(expr)) => Some(self.eval_string(expr)?),
            (None, None) => None,
        };
        Flow::Continue(VxmlEvent { name, message })
    }

    /// A plain object with these properties.
    pub(crate) fn object_of(&mut self, fields: &[(String, JsValue)]) -> Flow<JsValue> {
        let object = self.scopes.new_object();
        for (name, value) in fields {
            self.scopes
                .set_property(&object, name, value.clone())
                .map_err(|e| semantic(name, e))
                .into_flow()?;
        }
        Flow::Continue(object)
    }

    fn clear(&mut self, names: &[String]) -> Flow {
        let items = self.item_names();
        let names = if names.is_empty() {
            items.clone()
        } else {
            names.to_vec()
        };
        for name in &names {
            if let Some(i) = items.iter().position(|n| n == name) {
                if let Some(state) = self.ctx_mut().and_then(|c| c.items.get_mut(i)) {
                    state.prompt_count = 0;
                    state.events.clear();
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

    pub(crate) fn item_names(&self) -> Vec<String> {
        self.ctx()
            .and_then(|c| c.dialog.map(|d| &c.doc.dialogs[d]))
            .map(|d| d.items.iter().map(|i| i.name.clone()).collect())
            .unwrap_or_default()
    }

    pub(crate) fn target(
        &mut self,
        next: &Option<String>,
        expr: &Option<String>,
        what: &str,
    ) -> Flow<String> {
        match (next, expr) {
            (Some(n), _) => Flow::Continue(n.clone()),
            (None, Some(expr)) => self.eval_string(expr),
            (None, None) => Flow::Break(badfetch(format!("{what} without a target"))),
        }
    }

    /// `target` resolved against the current document.
    pub(crate) fn resolve(&self, target: &str) -> Flow<url::Url> {
        let Some(base) = self.base_url() else {
            return Flow::Break(badfetch("no document to resolve against"));
        };
        base.join(target.trim())
            .map_err(|e| badfetch(format!("bad url {target:?}: {e}")))
            .into_flow()
    }

    /// A GET of `url` with the `fetchtimeout`, `*maxage` and `*maxstale` properties in force.
    pub(crate) fn fetch_request(&self, url: url::Url, kind: Resource) -> FetchRequest {
        let duration = |name: &str| {
            self.property(name)
                .and_then(|v| crate::time::parse_duration(&v))
        };
        let prefix = match kind {
            Resource::Document => "document",
            Resource::Script => "script",
            Resource::Data => "data",
            Resource::Grammar => "grammar",
        };
        let mut req = FetchRequest::get(url);
        req.timeout = duration("fetchtimeout");
        req.max_age = duration(&format!("{prefix}maxage"));
        req.max_stale = duration(&format!("{prefix}maxstale"));
        req
    }

    /// Sets what plays while `req` is out: the element's `fetchaudio`, else the property.
    pub(crate) fn set_fetch_audio(&self, req: &mut FetchRequest, attr: Option<&str>) -> Flow {
        let Some(audio) = attr
            .map(str::to_owned)
            .or_else(|| self.property("fetchaudio"))
        else {
            return Flow::Continue(());
        };
        if audio.trim().is_empty() {
            return Flow::Continue(());
        }
        let url = self.resolve(&audio)?;
        let duration = |name: &str, default: u64| {
            self.property(name)
                .and_then(|v| crate::time::parse_duration(&v))
                .unwrap_or(std::time::Duration::from_secs(default))
        };
        req.fetch_audio = Some(crate::action::FetchAudio {
            url,
            delay: duration("fetchaudiodelay", 2),
            minimum: duration("fetchaudiominimum", 5),
        });
        Flow::Continue(())
    }

    /// A request carrying `names` and their values: query string for GET, url-encoded or
    /// multipart (recordings as files) body for POST.
    pub(crate) fn submission(
        &mut self,
        url: url::Url,
        kind: Resource,
        names: &[String],
        post: bool,
        multipart: bool,
    ) -> Flow<FetchRequest> {
        let mut req = self.fetch_request(url, kind);
        let mut pairs = Vec::new();
        let mut files = Vec::new();
        for name in names {
            let value = self.eval(name)?;
            if let Some((audio, mime)) = self.recording_of(&value) {
                files.push((name.clone(), audio, mime));
                continue;
            }
            let text = self
                .scopes
                .string_of(&value)
                .map_err(|e| semantic(name, e))
                .into_flow()?;
            pairs.push((name.clone(), text));
        }
        if multipart {
            let boundary = format!("parley-{:016x}", self.next_recording as u64 * 7919 + 1);
            let mut body = Vec::new();
            for (n, v) in &pairs {
                body.extend_from_slice(
                    format!(
                        "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n{v}\r\n",
                        n.replace('"', "%22")
                    )
                    .as_bytes(),
                );
            }
            for (n, audio, mime) in &files {
                body.extend_from_slice(
                    format!(
                        "--{boundary}\r\nContent-Disposition: form-data; name=\"{0}\"; filename=\"{0}.wav\"\r\nContent-Type: {mime}\r\n\r\n",
                        n.replace('"', "%22")
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(audio);
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
            req.method = Method::Post;
            req.body = Some(body);
            req.content_type = Some(format!("multipart/form-data; boundary={boundary}"));
            return Flow::Continue(req);
        }
        for (n, audio, _) in &files {
            pairs.push((n.clone(), format!("{} bytes of audio", audio.len())));
        }
        if post {
            let mut ser = url::form_urlencoded::Serializer::new(String::new());
            for (n, v) in &pairs {
                ser.append_pair(n, v);
            }
            req.method = Method::Post;
            req.body = Some(ser.finish().into_bytes());
            req.content_type = Some("application/x-www-form-urlencoded".into());
        } else if !pairs.is_empty() {
            req.url
                .query_pairs_mut()
                .extend_pairs(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        }
        Flow::Continue(req)
    }
}
