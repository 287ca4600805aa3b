//! The Form Interpretation Algorithm (VoiceXML 2.0 §2.1.6, appendix C): select a form item,
//! collect (queue prompts, run a block, ask for input, record, transfer, call a subdialog),
//! process what came back.

use std::ops::ControlFlow;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use boa_engine::JsValue;

use crate::action::{
    Action, CollectRequest, InputResult, RecordRequest, RecordResult, TransferKind,
    TransferOutcome, TransferRequest, TransferResult,
};
use crate::document::{self, Choice, Dialog, Document, GrammarRef, ItemKind};
use crate::event::VxmlEvent;
use crate::exec::{Flow, Frame, IntoFlow, Resource, Step, Transition, badfetch, semantic};
use crate::grammar::Grammar;
use crate::interpreter::{
    GrammarOwner, Interpreter, LinkRef, MAX_RECORDINGS, MAX_STEPS, MAX_SUBDIALOG_DEPTH,
    MAX_TRANSITIONS, Pending, State,
};
use crate::prompt;
use crate::scope::Scope;
use crate::time::parse_duration;

impl Interpreter {
    /// Runs executable content and the FIA until the interpreter waits for the platform.
    pub(crate) fn run(&mut self) {
        while matches!(self.state, State::Running) && self.actions.is_empty() {
            self.steps += 1;
            if self.steps > MAX_STEPS || self.transitions > MAX_TRANSITIONS {
                self.finish(crate::action::ExitInfo {
                    reason:
                        "error.semantic: the application runs without ever waiting for the caller"
                            .into(),
                    value: None,
                });
                return;
            }
            let flow = if self.frames.is_empty() {
                self.iteration()
            } else {
                match self.step_frames() {
                    Step::Continue | Step::Suspended => Flow::Continue(()),
                    Step::Transition(t) => Flow::Break(t),
                }
            };
            if let ControlFlow::Break(t) = flow {
                self.apply(t);
            }
        }
    }

    fn dialog(&self) -> Option<(Rc<Document>, usize)> {
        let c = self.ctx()?;
        Some((c.doc.clone(), c.dialog?))
    }

    /// One FIA loop: select, then collect.
    fn iteration(&mut self) -> Flow {
        let Some((doc, d)) = self.dialog() else {
            // A document without dialogs ends the application once it is initialised.
            return Flow::Break(Transition::Exit(exit_info("exit")));
        };
        let form = &doc.dialogs[d];
        let next = self.ctx_mut().and_then(|c| c.next_item.take());
        let index = match next {
            Some(i) => i,
            None => match self.select(form)? {
                Some(i) => i,
                // Falling off the end of a form ends the application.
                None => return Flow::Break(Transition::Exit(exit_info("exit"))),
            },
        };
        let item = &form.items[index];
        let queue_prompts = match self.ctx_mut() {
            Some(c) => {
                c.current_item = Some(index);
                !std::mem::take(&mut c.suppress_prompts)
            }
            None => true,
        };
        match &item.kind {
            ItemKind::Block(body) => {
                self.scopes
                    .set(Scope::Dialog, &item.name, JsValue::from(true))
                    .map_err(|e| semantic(&item.name, e))
                    .into_flow()?;
                self.push_frame(Frame::body(body, Scope::Anonymous, true))
            }
            ItemKind::Object => Flow::Break(Transition::Throw(VxmlEvent::new(
                "error.unsupported.objecttype",
                "<object> is not supported",
            ))),
            ItemKind::Subdialog(sd) => {
                if self.ctxs.len() >= MAX_SUBDIALOG_DEPTH {
                    return Flow::Break(semantic(
                        &item.name,
                        format!("subdialogs nested deeper than {MAX_SUBDIALOG_DEPTH}"),
                    ));
                }
                if queue_prompts {
                    self.queue_item_prompts(&doc, d, index)?;
                }
                let target = self.target(&sd.src, &sd.srcexpr, "subdialog")?;
                let url = self.resolve(&target)?;
                let mut params = Vec::new();
                for p in &sd.params {
                    let value = match (&p.expr, &p.value) {
                        (Some(expr), _) => self
                            .scopes
                            .eval(expr)
                            .map_err(|e| semantic(expr, e))
                            .into_flow()?,
                        (None, Some(v)) => JsValue::from(boa_engine::JsString::from(v.as_str())),
                        (None, None) => JsValue::undefined(),
                    };
                    params.push((p.name.clone(), value));
                }
                let fragment = url.fragment().map(str::to_owned);
                let mut req =
                    self.submission(url, Resource::Document, &sd.namelist, sd.post, false)?;
                self.set_fetch_audio(&mut req, sd.fetchaudio.as_deref())?;
                self.flush_queue();
                self.actions.push_back(Action::Fetch(req));
                self.state = State::AwaitFetch(Pending::Subdialog {
                    item: index,
                    fragment,
                    params,
                });
                Flow::Continue(())
            }
            ItemKind::Field { .. } | ItemKind::Initial | ItemKind::Menu(_) => {
                let Some(grammars) = self.prepare_input(&doc, d, index, queue_prompts)? else {
                    return Flow::Continue(());
                };
                let request = self.collect_request(&doc, d, index, grammars);
                self.flush_queue();
                self.actions.push_back(Action::Collect(request));
                self.state = State::AwaitInput { item: index };
                Flow::Continue(())
            }
            ItemKind::Record(attrs) => {
                let Some(grammars) = self.prepare_input(&doc, d, index, queue_prompts)? else {
                    return Flow::Continue(());
                };
                let collect = self.collect_request(&doc, d, index, grammars);
                let request = RecordRequest {
                    beep: attrs.beep,
                    maxtime: attrs
                        .maxtime
                        .or_else(|| self.property_duration("maxtime"))
                        .unwrap_or(Duration::from_secs(60)),
                    final_silence: attrs.final_silence.unwrap_or(Duration::from_secs(3)),
                    dtmfterm: attrs.dtmfterm,
                    timeout: collect.timeout,
                    mime_type: attrs.mime_type.clone(),
                    grammars: collect.grammars,
                    bargein: collect.bargein,
                };
                self.flush_queue();
                self.actions.push_back(Action::Record(request));
                self.state = State::AwaitRecord { item: index };
                Flow::Continue(())
            }
            ItemKind::Transfer(attrs) => {
                let Some(grammars) = self.prepare_input(&doc, d, index, queue_prompts)? else {
                    return Flow::Continue(());
                };
                let dest = match (&attrs.dest, &attrs.destexpr) {
                    (Some(d), _) => d.clone(),
                    (None, Some(expr)) => self.eval_string(expr)?,
                    (None, None) => {
                        return Flow::Break(Transition::Throw(VxmlEvent::new(
                            "error.connection.baddestination",
                            "<transfer> without dest",
                        )));
                    }
                };
                let aai = match (&attrs.aai, &attrs.aaiexpr) {
                    (Some(a), _) => Some(a.clone()),
                    (None, Some(expr)) => Some(self.eval_string(expr)?),
                    (None, None) => None,
                };
                let transfer_audio = match &attrs.transfer_audio {
                    Some(a) => Some(self.resolve(a)?),
                    None => None,
                };
                let kind = if attrs.consultation {
                    TransferKind::Consultation
                } else if attrs.bridge {
                    TransferKind::Bridge
                } else {
                    TransferKind::Blind
                };
                let request = TransferRequest {
                    dest,
                    kind,
                    connect_timeout: attrs.connect_timeout,
                    maxtime: attrs.maxtime,
                    transfer_audio,
                    aai,
                    grammars,
                };
                self.flush_queue();
                self.actions.push_back(Action::Transfer(request));
                self.state = State::AwaitTransfer { item: index };
                Flow::Continue(())
            }
        }
    }

    /// What every input item does first: its active grammars (`None` while one is being
    /// fetched: this iteration then runs again when it arrives, with the prompt decision it
    /// had), then its prompts; a caller who is gone ends the application here.
    fn prepare_input(
        &mut self,
        doc: &Rc<Document>,
        d: usize,
        index: usize,
        queue_prompts: bool,
    ) -> Flow<Option<Vec<Arc<Grammar>>>> {
        let Some(grammars) = self.active_grammars(doc, d, index)? else {
            if let Some(c) = self.ctx_mut() {
                c.suppress_prompts = !queue_prompts;
            }
            return Flow::Continue(None);
        };
        if queue_prompts {
            self.queue_item_prompts(doc, d, index)?;
        }
        if self.hung_up {
            return Flow::Break(self.after_hangup());
        }
        Flow::Continue(Some(grammars))
    }

    /// The transition once the caller is gone and the hangup handler did not leave.
    fn after_hangup(&self) -> Transition {
        let reason = if self.disconnecting {
            "disconnect"
        } else {
            "hangup"
        };
        Transition::Exit(exit_info(reason))
    }

    /// The first form item whose variable is undefined and whose `cond` holds.
    fn select(&mut self, form: &Dialog) -> Flow<Option<usize>> {
        for (i, item) in form.items.iter().enumerate() {
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

    fn queue_item_prompts(&mut self, doc: &Document, d: usize, index: usize) -> Flow {
        let item = &doc.dialogs[d].items[index];
        let count = match self.ctx_mut().and_then(|c| c.items.get_mut(index)) {
            Some(state) => {
                state.prompt_count += 1;
                state.prompt_count
            }
            None => 1,
        };
        let chosen = prompt::select(&item.prompts, count, &mut self.scopes)
            .map_err(|e| semantic("prompt cond", e))
            .into_flow()?;
        let choices = match &item.kind {
            ItemKind::Menu(m) => Some(m.choices.as_slice()),
            ItemKind::Field { options } if !options.is_empty() => Some(options.as_slice()),
            _ => None,
        };
        for p in chosen {
            self.queue_prompt(p, choices)?;
        }
        Flow::Continue(())
    }

    pub(crate) fn queue_prompt(
        &mut self,
        p: &document::Prompt,
        choices: Option<&[Choice]>,
    ) -> Flow {
        let Some(base) = self.base_url() else {
            return Flow::Continue(());
        };
        let recordings = &self.recordings;
        let items = prompt::render(&p.content, &base, choices, &mut self.scopes, |id| {
            recordings
                .iter()
                .find(|(i, _, _)| *i == id)
                .map(|(_, a, m)| (a.clone(), m.clone()))
        })
        .map_err(|e| semantic("prompt", e))
        .into_flow()?;
        if p.bargein.is_some() {
            self.prompt_bargein = p.bargein;
        }
        if let Some(mark) = items.iter().rev().find_map(|i| match i {
            crate::action::PlayItem::Mark(name) => Some(name.clone()),
            _ => None,
        }) {
            self.last_mark = Some(mark);
        }
        self.queue.extend(items);
        Flow::Continue(())
    }

    /// A property in force for the current item: item, dialog, document, root.
    pub(crate) fn property(&self, name: &str) -> Option<String> {
        let c = self.ctx()?;
        let lists: Vec<&Vec<(String, String)>> = {
            let mut v = Vec::new();
            if let Some(d) = c.dialog {
                let dialog = &c.doc.dialogs[d];
                if let Some(i) = c.current_item.and_then(|i| dialog.items.get(i)) {
                    v.push(&i.properties);
                }
                v.push(&dialog.properties);
            }
            v.push(&c.doc.properties);
            if let Some(root) = &c.root {
                v.push(&root.properties);
            }
            v
        };
        lists.into_iter().find_map(|props| {
            props
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        })
    }

    fn property_duration(&self, name: &str) -> Option<Duration> {
        self.property(name).and_then(|v| parse_duration(&v))
    }

    fn collect_request(
        &mut self,
        _doc: &Document,
        _d: usize,
        _item: usize,
        grammars: Vec<Arc<Grammar>>,
    ) -> CollectRequest {
        let duration =
            |s: &Self, name: &str, default: Duration| s.property_duration(name).unwrap_or(default);
        let termchar = match self.property("termchar") {
            None => Some('#'),
            Some(v) => v.trim().chars().next(),
        };
        let bargein = self
            .prompt_bargein
            .take()
            .unwrap_or_else(|| self.property("bargein").as_deref() != Some("false"));
        CollectRequest {
            grammars,
            timeout: duration(self, "timeout", Duration::from_secs(5)),
            interdigit_timeout: duration(self, "interdigittimeout", Duration::from_secs(3)),
            term_timeout: duration(self, "termtimeout", Duration::ZERO),
            termchar,
            bargein,
        }
    }

    /// The grammars active while collecting for `index`, in priority order, with their owners
    /// in `self.active`. `None` when an external grammar had to be fetched first.
    fn active_grammars(
        &mut self,
        doc: &Rc<Document>,
        d: usize,
        index: usize,
    ) -> Flow<Option<Vec<Arc<Grammar>>>> {
        let form = &doc.dialogs[d];
        let item = &form.items[index];
        let root = self.ctx().and_then(|c| c.root.clone());
        let mut refs: Vec<(GrammarRef, GrammarOwner)> = Vec::new();
        match &item.kind {
            ItemKind::Menu(menu) => {
                for (i, choice) in menu.choices.iter().enumerate() {
                    for g in choice_grammars(choice)? {
                        refs.push((g, GrammarOwner::Choice(i)));
                    }
                }
            }
            ItemKind::Field { options } => {
                for g in &item.grammars {
                    refs.push((g.clone(), GrammarOwner::Item(None)));
                }
                for option in options {
                    for g in choice_grammars(option)? {
                        refs.push((g, GrammarOwner::Item(option.value.clone())));
                    }
                }
            }
            _ => {
                for g in &item.grammars {
                    refs.push((g.clone(), GrammarOwner::Item(None)));
                }
            }
        }
        for (i, link) in item.links.iter().enumerate() {
            for g in link_grammars(link)? {
                refs.push((g, GrammarOwner::Link(LinkRef::Item(i))));
            }
        }
        if !item.modal {
            for g in &form.grammars {
                refs.push((g.clone(), GrammarOwner::Form));
            }
            for (i, link) in form.links.iter().enumerate() {
                for g in link_grammars(link)? {
                    refs.push((g, GrammarOwner::Link(LinkRef::Dialog(i))));
                }
            }
            push_document_grammars(doc, false, Some(d), &mut refs)?;
            if let Some(root) = &root
                && !Rc::ptr_eq(root, doc)
            {
                push_document_grammars(root, true, None, &mut refs)?;
            }
        }
        // Universal grammars (VoiceXML 2.0 §6.3.6): "help", "cancel", "exit" when enabled.
        if let Some(universals) = self.property("universals") {
            for name in ["help", "cancel", "exit"] {
                let on = universals
                    .split_whitespace()
                    .any(|w| w == "all" || w == name);
                if on && let Some(g) = phrase_grammar("voice", name, false) {
                    refs.push((g, GrammarOwner::Universal(name)));
                }
            }
        }
        let mut grammars = Vec::with_capacity(refs.len());
        let mut owners = Vec::with_capacity(refs.len());
        for (g, owner) in refs {
            match g {
                GrammarRef::Ready(g) => grammars.push(g),
                GrammarRef::External { src, srcexpr, root } => {
                    let target = self.target(&src, &srcexpr, "grammar")?;
                    let url = self.resolve(&target)?;
                    let mut key = url.clone();
                    key.set_fragment(None);
                    let rule = url.fragment().map(str::to_owned).or(root);
                    let Some(compiled) = self.grammars.get(&key).cloned() else {
                        let req = self.fetch_request(key.clone(), Resource::Grammar);
                        self.actions.push_back(Action::Fetch(req));
                        self.state = State::AwaitFetch(Pending::Grammar { url: key });
                        return Flow::Continue(None);
                    };
                    let g = match rule {
                        Some(rule) => Arc::new(
                            compiled
                                .with_root(&rule)
                                .map_err(|e| badfetch(format!("grammar {url}: {e}")))
                                .into_flow()?,
                        ),
                        None => compiled,
                    };
                    grammars.push(g);
                }
            }
            owners.push(owner);
        }
        // `inputmodes` turns off the grammars of a mode (VoiceXML 2.0 §6.3.6).
        if let Some(modes) = self.property("inputmodes") {
            let dtmf = modes.split_whitespace().any(|m| m == "dtmf");
            let voice = modes.split_whitespace().any(|m| m == "voice");
            let keep: Vec<bool> = grammars
                .iter()
                .map(|g| {
                    (dtmf && g.accepts(crate::action::InputMode::Dtmf))
                        || (voice && g.accepts(crate::action::InputMode::Voice))
                })
                .collect();
            let mut k = keep.iter();
            grammars.retain(|_| *k.next().unwrap_or(&true));
            let mut k = keep.iter();
            owners.retain(|_| *k.next().unwrap_or(&true));
        }
        self.active = owners;
        Flow::Continue(Some(grammars))
    }

    /// Input for form item `index` arrived.
    pub(crate) fn on_input(&mut self, index: usize, input: InputResult) -> Flow {
        if let Some(c) = self.ctx_mut() {
            c.current_item = Some(index);
        }
        self.prompt_bargein = None;
        match input {
            InputResult::NoInput => Flow::Break(VxmlEvent::bare("noinput").into_throw()),
            InputResult::NoMatch { utterance, mode } => {
                tracing::debug!(call_id = %self.call_id(), %utterance, "nomatch");
                let _ = self.set_lastresult(&utterance, mode, JsValue::undefined());
                Flow::Break(VxmlEvent::bare("nomatch").into_throw())
            }
            InputResult::Hangup => {
                self.hung_up = true;
                Flow::Break(VxmlEvent::bare("connection.disconnect.hangup").into_throw())
            }
            InputResult::Match {
                utterance,
                mode,
                grammar,
                semantics,
            } => {
                let interpretation = crate::semantics::to_js(&semantics, &mut self.scopes)
                    .map_err(|e| semantic("grammar tags", e))
                    .into_flow()?;
                self.set_lastresult(&utterance, mode, interpretation.clone())?;
                let owner = self
                    .active
                    .get(grammar)
                    .cloned()
                    .unwrap_or(GrammarOwner::Item(None));
                self.dispatch_match(index, owner, &utterance, mode, interpretation)
            }
        }
    }

    fn set_lastresult(
        &mut self,
        utterance: &str,
        mode: crate::action::InputMode,
        interpretation: JsValue,
    ) -> Flow {
        let text = |t: &str| JsValue::from(boa_engine::JsString::from(t));
        // The mark the platform heard played (with the time since), else the last one queued
        // (then marktime is 0: the platform does not know how far playout got).
        let queued = self.last_mark.take();
        let (mark, mark_ms) = match self.heard_mark.take() {
            Some((m, t)) => (text(&m), t.as_millis().min(u128::from(u32::MAX)) as f64),
            None => match queued {
                Some(m) => (text(&m), 0.0),
                None => (JsValue::undefined(), 0.0),
            },
        };
        for (name, value) in [
            ("$vxmark", mark),
            ("$vxmarktime", JsValue::from(mark_ms)),
            ("$vxinterp", interpretation),
            ("$vxutterance", text(utterance)),
            ("$vxmode", text(mode.as_str())),
        ] {
            self.scopes
                .set(Scope::Anonymous, name, value)
                .map_err(|e| semantic("lastresult", e))
                .into_flow()?;
        }
        self.scopes
            .run_internal(
                "var t=$vxs4, u=t.$vxutterance, i=t.$vxinterp, m=t.$vxmode;\
                 var r={utterance:u, interpretation:i, confidence:1.0, inputmode:m};\
                 var a=[r]; a.utterance=u; a.interpretation=i; a.confidence=1.0; a.inputmode=m;\
                 if (t.$vxmark !== undefined) { r.markname=a.markname=t.$vxmark; r.marktime=a.marktime=t.$vxmarktime; }\
                 $vxs1[\"lastresult$\"]=a; delete t.$vxinterp; delete t.$vxutterance; delete t.$vxmode; delete t.$vxmark; delete t.$vxmarktime;",
            )
            .map_err(|e| semantic("lastresult", e))
            .into_flow()?;
        Flow::Continue(())
    }

    fn dispatch_match(
        &mut self,
        index: usize,
        owner: GrammarOwner,
        utterance: &str,
        mode: crate::action::InputMode,
        interpretation: JsValue,
    ) -> Flow {
        let Some((doc, d)) = self.dialog() else {
            return Flow::Continue(());
        };
        let form = &doc.dialogs[d];
        match owner {
            GrammarOwner::Universal(event) => Flow::Break(VxmlEvent::bare(event).into_throw()),
            GrammarOwner::Link(link) => {
                let Some(c) = self.ctx() else {
                    return Flow::Continue(());
                };
                let target = match link {
                    LinkRef::Item(i) => form.items[index].links[i].target.clone(),
                    LinkRef::Dialog(i) => form.links[i].target.clone(),
                    LinkRef::Document(i) => doc.links[i].target.clone(),
                    LinkRef::Root(i) => match &c.root {
                        Some(root) => root.links[i].target.clone(),
                        None => return Flow::Continue(()),
                    },
                };
                Flow::Break(self.follow(&target)?)
            }
            GrammarOwner::Choice(i) => {
                let ItemKind::Menu(menu) = &form.items[index].kind else {
                    return Flow::Continue(());
                };
                let target = menu.choices[i].target.clone();
                Flow::Break(self.follow(&target)?)
            }
            GrammarOwner::Item(option_value) => {
                let item = &form.items[index];
                let value = match option_value {
                    Some(v) => JsValue::from(boa_engine::JsString::from(v.as_str())),
                    None => self.slot_value(&interpretation, &item.slot),
                };
                self.fill(&item.name, value, utterance, mode, &interpretation)?;
                self.run_filled(&doc, d, &[index])
            }
            GrammarOwner::Form => self.fill_from_form_result(interpretation, utterance, mode, true),
            GrammarOwner::Dialog { root, index } => {
                // As if by <goto> to that dialog, which then takes the input.
                let target_doc = if root {
                    match self.ctx().and_then(|c| c.root.clone()) {
                        Some(r) => r,
                        None => return Flow::Continue(()),
                    }
                } else {
                    doc.clone()
                };
                let id = target_doc.dialogs[index].id.clone();
                if root {
                    let mut url = target_doc.url.clone();
                    url.set_fragment(Some(&id));
                    return Flow::Break(Transition::Goto(Box::new(
                        self.fetch_request(url, Resource::Document),
                    )));
                }
                self.enter_dialog_by_id(&id)?;
                self.push_frame(Frame::Marker(crate::exec::Marker::FillFromResult(
                    interpretation,
                )))?;
                // The marker must run after the dialog's variables: put it under them.
                let len = self.frames.len();
                if len >= 2 {
                    self.frames.swap(len - 1, len - 2);
                }
                Flow::Continue(())
            }
        }
    }

    /// The value for an item from a grammar result: the property named by the slot when the
    /// result is an object that has one, else the whole result.
    fn slot_value(&mut self, interpretation: &JsValue, slot: &str) -> JsValue {
        if let Some(obj) = interpretation.as_object()
            && self.scopes.has_property(&obj, slot)
        {
            return self.scopes.get_property(&obj, slot);
        }
        interpretation.clone()
    }

    /// Sets an input item's variable and its `name$` shadow.
    fn fill(
        &mut self,
        name: &str,
        value: JsValue,
        utterance: &str,
        mode: crate::action::InputMode,
        interpretation: &JsValue,
    ) -> Flow {
        self.scopes
            .set(Scope::Dialog, name, value)
            .map_err(|e| semantic(name, e))
            .into_flow()?;
        let shadow = self.object_of(&[
            (
                "utterance".into(),
                JsValue::from(boa_engine::JsString::from(utterance)),
            ),
            ("confidence".into(), JsValue::from(1.0)),
            (
                "inputmode".into(),
                JsValue::from(boa_engine::JsString::from(mode.as_str())),
            ),
            ("interpretation".into(), interpretation.clone()),
        ])?;
        self.scopes
            .set(Scope::Dialog, &format!("{name}$"), shadow)
            .map_err(|e| semantic(name, e))
            .into_flow()
    }

    /// Mixed initiative: a form-level grammar's result fills every input item whose slot it
    /// names; `<initial>` items are then done.
    /// `strict`: a result that fills nothing is a `nomatch` (for the dialog at hand; a dialog
    /// entered through its document-scoped grammar simply starts).
    pub(crate) fn fill_from_form_result(
        &mut self,
        interpretation: JsValue,
        utterance: &str,
        mode: crate::action::InputMode,
        strict: bool,
    ) -> Flow {
        let Some((doc, d)) = self.dialog() else {
            return Flow::Continue(());
        };
        let form = &doc.dialogs[d];
        let mut filled = Vec::new();
        if let Some(obj) = interpretation.as_object() {
            for (i, item) in form.items.iter().enumerate() {
                if matches!(item.kind, ItemKind::Field { .. })
                    && self.scopes.has_property(&obj, &item.slot)
                {
                    let value = self.scopes.get_property(&obj, &item.slot);
                    if value.is_undefined() {
                        continue;
                    }
                    self.fill(&item.name, value, utterance, mode, &interpretation)?;
                    filled.push(i);
                }
            }
        }
        if filled.is_empty() {
            return if strict {
                Flow::Break(VxmlEvent::bare("nomatch").into_throw())
            } else {
                Flow::Continue(())
            };
        }
        for item in &form.items {
            if matches!(item.kind, ItemKind::Initial) {
                self.scopes
                    .set(Scope::Dialog, &item.name, JsValue::from(true))
                    .map_err(|e| semantic(&item.name, e))
                    .into_flow()?;
            }
        }
        self.run_filled(&doc, d, &filled)
    }

    /// Queues the `<filled>` elements due after `just` items were filled: the items' own, then
    /// the form's whose namelist they are in (mode any/all), each in document order.
    pub(crate) fn run_filled(&mut self, doc: &Rc<Document>, d: usize, just: &[usize]) -> Flow {
        let form = &doc.dialogs[d];
        let mut bodies = Vec::new();
        for &i in just {
            for f in &form.items[i].filled {
                bodies.push(f.body.clone());
            }
        }
        let just_names: Vec<&str> = just.iter().map(|&i| form.items[i].name.as_str()).collect();
        for filled in &form.filled {
            let names: Vec<&str> = if filled.namelist.is_empty() {
                form.items
                    .iter()
                    .filter(|i| i.is_input())
                    .map(|i| i.name.as_str())
                    .collect()
            } else {
                filled.namelist.iter().map(String::as_str).collect()
            };
            if !names.iter().any(|n| just_names.contains(n)) {
                continue;
            }
            let applies = filled.any
                || names
                    .iter()
                    .all(|n| !self.scopes.get(Scope::Dialog, n).is_undefined());
            if applies {
                bodies.push(filled.body.clone());
            }
        }
        for body in bodies.iter().rev() {
            self.push_frame(Frame::body(body, Scope::Anonymous, true))?;
        }
        Flow::Continue(())
    }

    /// Where a link or choice leads: an event, or a document/dialog.
    fn follow(&mut self, target: &document::Target) -> Flow<Transition> {
        if target.event.is_some() || target.eventexpr.is_some() {
            let ev = self.event_of(
                &target.event,
                &target.eventexpr,
                &target.message,
                &target.messageexpr,
                "link",
            )?;
            return Flow::Continue(Transition::Throw(ev));
        }
        let dest = self.target(&target.next, &target.expr, "link")?;
        let url = self.resolve(&dest)?;
        let mut req = self.fetch_request(url, Resource::Document);
        self.set_fetch_audio(&mut req, target.fetchaudio.as_deref())?;
        Flow::Continue(Transition::Goto(Box::new(req)))
    }

    /// A recording arrived for `<record>` item `index`.
    pub(crate) fn on_recorded(&mut self, index: usize, result: RecordResult) -> Flow {
        if let Some(c) = self.ctx_mut() {
            c.current_item = Some(index);
        }
        self.prompt_bargein = None;
        let Some((doc, d)) = self.dialog() else {
            return Flow::Continue(());
        };
        let name = doc.dialogs[d].items[index].name.clone();
        match result {
            RecordResult::NoInput => Flow::Break(VxmlEvent::bare("noinput").into_throw()),
            RecordResult::Input(input) => self.on_input(index, input),
            RecordResult::Error { event, message } => {
                Flow::Break(VxmlEvent::new(event, message).into_throw())
            }
            RecordResult::Hangup(partial) => {
                self.hung_up = true;
                if let Some(rec) = partial {
                    self.store_recording(&name, *rec)?;
                }
                Flow::Break(VxmlEvent::bare("connection.disconnect.hangup").into_throw())
            }
            rec @ RecordResult::Recorded { .. } => {
                self.store_recording(&name, rec)?;
                self.run_filled(&doc, d, &[index])
            }
        }
    }

    fn store_recording(&mut self, name: &str, rec: RecordResult) -> Flow {
        let RecordResult::Recorded {
            audio,
            mime_type,
            duration,
            termchar,
            maxtime,
        } = rec
        else {
            return Flow::Continue(());
        };
        let id = self.next_recording;
        self.next_recording += 1;
        let size = audio.len();
        if self.recordings.len() >= MAX_RECORDINGS {
            self.recordings.pop_front();
        }
        self.recordings.push_back((id, audio, mime_type.clone()));
        let value = self.object_of(&[
            ("$vxrecording".into(), JsValue::from(id)),
            ("size".into(), JsValue::from(size as f64)),
            (
                "type".into(),
                JsValue::from(boa_engine::JsString::from(mime_type.as_str())),
            ),
            (
                "duration".into(),
                JsValue::from(duration.as_millis() as f64),
            ),
        ])?;
        self.scopes
            .set(Scope::Dialog, name, value)
            .map_err(|e| semantic(name, e))
            .into_flow()?;
        let termchar = match termchar {
            Some(c) => JsValue::from(boa_engine::JsString::from(c.to_string().as_str())),
            None => JsValue::null(),
        };
        let shadow = self.object_of(&[
            (
                "duration".into(),
                JsValue::from(duration.as_millis() as f64),
            ),
            ("size".into(), JsValue::from(size as f64)),
            ("termchar".into(), termchar),
            ("maxtime".into(), JsValue::from(maxtime)),
        ])?;
        self.scopes
            .set(Scope::Dialog, &format!("{name}$"), shadow)
            .map_err(|e| semantic(name, e))
            .into_flow()
    }

    /// The audio of a recording object, if `value` is one.
    pub(crate) fn recording_of(&mut self, value: &JsValue) -> Option<(Arc<[u8]>, String)> {
        let obj = value.as_object()?;
        let id = self.scopes.get_property(&obj, "$vxrecording").as_number()? as u32;
        self.recordings
            .iter()
            .find(|(i, _, _)| *i == id)
            .map(|(_, a, m)| (a.clone(), m.clone()))
    }

    /// A transfer for `<transfer>` item `index` ended.
    pub(crate) fn on_transferred(&mut self, index: usize, result: TransferResult) -> Flow {
        if let Some(c) = self.ctx_mut() {
            c.current_item = Some(index);
        }
        let Some((doc, d)) = self.dialog() else {
            return Flow::Continue(());
        };
        let name = doc.dialogs[d].items[index].name.clone();
        match result {
            TransferResult::Error { event, message } => {
                Flow::Break(VxmlEvent::new(event, message).into_throw())
            }
            TransferResult::Ended {
                outcome,
                duration,
                input,
            } => {
                match outcome {
                    TransferOutcome::Transferred => {
                        self.hung_up = true;
                        return Flow::Break(
                            VxmlEvent::bare("connection.disconnect.transfer").into_throw(),
                        );
                    }
                    TransferOutcome::Hangup => {
                        self.hung_up = true;
                        return Flow::Break(
                            VxmlEvent::bare("connection.disconnect.hangup").into_throw(),
                        );
                    }
                    _ => {}
                }
                self.scopes
                    .set(
                        Scope::Dialog,
                        &name,
                        JsValue::from(boa_engine::JsString::from(outcome.as_str())),
                    )
                    .map_err(|e| semantic(&name, e))
                    .into_flow()?;
                let mut shadow =
                    vec![("duration".to_owned(), JsValue::from(duration.as_secs_f64()))];
                if let Some(InputResult::Match {
                    utterance,
                    mode,
                    semantics,
                    ..
                }) = &input
                {
                    let interp = crate::semantics::to_js(semantics, &mut self.scopes)
                        .map_err(|e| semantic("grammar tags", e))
                        .into_flow()?;
                    shadow.push((
                        "utterance".into(),
                        JsValue::from(boa_engine::JsString::from(utterance.as_str())),
                    ));
                    shadow.push((
                        "inputmode".into(),
                        JsValue::from(boa_engine::JsString::from(mode.as_str())),
                    ));
                    shadow.push(("interpretation".into(), interp));
                }
                let shadow = self.object_of(&shadow)?;
                self.scopes
                    .set(Scope::Dialog, &format!("{name}$"), shadow)
                    .map_err(|e| semantic(&name, e))
                    .into_flow()?;
                self.run_filled(&doc, d, &[index])
            }
        }
    }
}

/// The grammars a document makes active everywhere in it: its links and the dialogs with
/// `scope="document"` (but `skip`, the dialog at hand).
fn push_document_grammars(
    doc: &Document,
    root: bool,
    skip: Option<usize>,
    refs: &mut Vec<(GrammarRef, GrammarOwner)>,
) -> Flow {
    for (index, other) in doc.dialogs.iter().enumerate() {
        if Some(index) == skip {
            continue;
        }
        let grammars = if other.document_scope {
            dialog_grammars(other)?
        } else {
            other.document_grammars.clone()
        };
        for g in grammars {
            refs.push((g, GrammarOwner::Dialog { root, index }));
        }
    }
    for (i, link) in doc.links.iter().enumerate() {
        let at = if root {
            LinkRef::Root(i)
        } else {
            LinkRef::Document(i)
        };
        for g in link_grammars(link)? {
            refs.push((g, GrammarOwner::Link(at)));
        }
    }
    Flow::Continue(())
}

/// The grammars of a menu choice or field option: its own, or made from its `dtmf` and text.
fn choice_grammars(choice: &Choice) -> Flow<Vec<GrammarRef>> {
    let mut out = choice.grammars.clone();
    if let Some(keys) = &choice.dtmf
        && let Some(g) = phrase_grammar("dtmf", keys, false)
    {
        out.push(g);
    }
    if choice.grammars.is_empty()
        && !choice.text.is_empty()
        && let Some(g) = phrase_grammar("voice", &choice.text, choice.accept_approximate)
    {
        out.push(g);
    }
    Flow::Continue(out)
}

fn link_grammars(link: &document::Link) -> Flow<Vec<GrammarRef>> {
    let mut out = link.grammars.clone();
    if let Some(keys) = &link.dtmf
        && let Some(g) = phrase_grammar("dtmf", keys, false)
    {
        out.push(g);
    }
    Flow::Continue(out)
}

/// A document-scoped dialog's grammars: a form's own, or a menu's choices.
fn dialog_grammars(dialog: &Dialog) -> Flow<Vec<GrammarRef>> {
    let mut out = dialog.grammars.clone();
    for item in &dialog.items {
        if let ItemKind::Menu(menu) = &item.kind {
            for choice in &menu.choices {
                out.extend(choice_grammars(choice)?);
            }
        }
    }
    Flow::Continue(out)
}

/// A grammar accepting `phrase` (DTMF keys or words); with `approximate`, also any ordered
/// part of it.
fn phrase_grammar(mode: &str, phrase: &str, approximate: bool) -> Option<GrammarRef> {
    let escape = |t: &str| {
        t.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let words: Vec<String> = if mode == "dtmf" {
        phrase
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_string())
            .collect()
    } else {
        phrase
            .split_whitespace()
            .map(|w| {
                w.trim_matches(|c: char| !c.is_alphanumeric())
                    .to_lowercase()
            })
            .filter(|w| !w.is_empty())
            .collect()
    };
    if words.is_empty() {
        return None;
    }
    let body = if approximate && words.len() > 1 && words.len() <= 12 {
        let items: String = words
            .iter()
            .map(|w| format!("<item repeat=\"0-1\">{}</item>", escape(w)))
            .collect();
        // At least one word: the whole optional sequence, minus the empty sentence.
        format!("<one-of><item>{}</item></one-of>", items)
    } else {
        escape(&words.join(" "))
    };
    let xml = format!(
        "<grammar xmlns=\"http://www.w3.org/2001/06/grammar\" version=\"1.0\" mode=\"{mode}\" root=\"r\"><rule id=\"r\">{body}</rule></grammar>"
    );
    Grammar::from_srgs_xml(&xml)
        .ok()
        .map(|g| GrammarRef::Ready(Arc::new(g)))
}

pub(crate) fn exit_info(reason: &str) -> crate::action::ExitInfo {
    crate::action::ExitInfo {
        reason: reason.to_owned(),
        value: None,
    }
}

impl VxmlEvent {
    pub(crate) fn into_throw(self) -> Transition {
        Transition::Throw(self)
    }
}
