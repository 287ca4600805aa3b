//! The VoiceXML document model: roxmltree parses, we keep an owned tree of what the FIA needs.
//!
//! A malformed document or an element unknown to VoiceXML 2.1 is an error (the interpreter
//! throws `error.badfetch` with it). Nesting depth and size are checked on roxmltree's flat
//! arena before the recursive descent here, so no document can exhaust the stack.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use roxmltree::Node;

use crate::grammar::Grammar;
use crate::time::parse_duration;

/// Deepest element nesting a document may have: far beyond what authors write, far below what
/// the recursive descent can take.
pub(crate) const MAX_DEPTH: usize = 100;
/// Most XML nodes in one document.
const MAX_NODES: u32 = 500_000;

/// Why a document was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{url}:{line}: {message}")]
pub(crate) struct DocumentError {
    pub(crate) url: String,
    pub(crate) line: u32,
    pub(crate) message: String,
}

#[derive(Debug)]
pub(crate) struct Document {
    pub(crate) url: url::Url,
    /// What relative URIs in the document resolve against (`xml:base`, else `url`).
    pub(crate) base: url::Url,
    /// The `application` attribute: the application root document.
    pub(crate) application: Option<String>,
    /// Document-level `<var>`, `<script>` (and `<data>`), in document order.
    pub(crate) decls: Rc<[Exec]>,
    pub(crate) catches: Vec<Catch>,
    pub(crate) properties: Vec<(String, String)>,
    pub(crate) links: Vec<Link>,
    pub(crate) dialogs: Vec<Dialog>,
}

impl Document {
    pub(crate) fn dialog_index(&self, id: &str) -> Option<usize> {
        self.dialogs.iter().position(|d| d.id == id)
    }
}

/// A `<form>` or a `<menu>` (a menu is a dialog with one [`ItemKind::Menu`] item).
#[derive(Debug)]
pub(crate) struct Dialog {
    pub(crate) id: String,
    /// `scope="document"`: the dialog's grammars stay active across the document.
    pub(crate) document_scope: bool,
    /// `<var>`, `<script>` and form item variables, in document order.
    pub(crate) decls: Rc<[Exec]>,
    pub(crate) items: Vec<FormItem>,
    pub(crate) catches: Vec<Catch>,
    pub(crate) filled: Vec<Filled>,
    pub(crate) properties: Vec<(String, String)>,
    pub(crate) links: Vec<Link>,
    /// Form-level grammars (mixed initiative).
    pub(crate) grammars: Vec<GrammarRef>,
    /// Those of them with `scope="document"`.
    pub(crate) document_grammars: Vec<GrammarRef>,
}

#[derive(Debug)]
pub(crate) struct FormItem {
    pub(crate) name: String,
    pub(crate) expr: Option<String>,
    pub(crate) cond: Option<String>,
    pub(crate) kind: ItemKind,
    pub(crate) catches: Vec<Catch>,
    pub(crate) properties: Vec<(String, String)>,
    pub(crate) prompts: Vec<Prompt>,
    pub(crate) filled: Vec<Filled>,
    pub(crate) grammars: Vec<GrammarRef>,
    pub(crate) links: Vec<Link>,
    /// `modal="true"`: only this item's grammars are active.
    pub(crate) modal: bool,
    /// The property of a form-level grammar's result that fills this item.
    pub(crate) slot: String,
}

impl FormItem {
    /// Whether the FIA collects input for this item (field, record, transfer, initial, menu).
    pub(crate) fn is_input(&self) -> bool {
        matches!(
            self.kind,
            ItemKind::Field { .. }
                | ItemKind::Record(_)
                | ItemKind::Transfer(_)
                | ItemKind::Initial
                | ItemKind::Menu(_)
        )
    }
}

#[derive(Debug)]
pub(crate) enum ItemKind {
    Block(Rc<[Exec]>),
    Field {
        /// `<option>`s, which also make the field's grammars.
        options: Vec<Choice>,
    },
    Initial,
    Record(RecordAttrs),
    Transfer(TransferAttrs),
    Subdialog(SubdialogAttrs),
    Object,
    Menu(Menu),
}

#[derive(Debug)]
pub(crate) struct Menu {
    pub(crate) choices: Vec<Choice>,
}

/// A menu `<choice>` or a field `<option>`.
#[derive(Debug, Clone)]
pub(crate) struct Choice {
    pub(crate) dtmf: Option<String>,
    /// The words to say (the element's text), also what `<enumerate>` speaks.
    pub(crate) text: String,
    /// `<option value>` (defaults to the text).
    pub(crate) value: Option<String>,
    /// Explicit `<grammar>` children of a choice.
    pub(crate) grammars: Vec<GrammarRef>,
    pub(crate) accept_approximate: bool,
    pub(crate) target: Target,
}

/// Where a `<choice>` or `<link>` leads.
#[derive(Debug, Clone, Default)]
pub(crate) struct Target {
    pub(crate) fetchaudio: Option<String>,
    pub(crate) next: Option<String>,
    pub(crate) expr: Option<String>,
    pub(crate) event: Option<String>,
    pub(crate) eventexpr: Option<String>,
    pub(crate) message: Option<String>,
    pub(crate) messageexpr: Option<String>,
}

#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) dtmf: Option<String>,
    pub(crate) grammars: Vec<GrammarRef>,
    pub(crate) target: Target,
}

#[derive(Debug, Clone)]
pub(crate) struct RecordAttrs {
    pub(crate) beep: bool,
    pub(crate) maxtime: Option<Duration>,
    pub(crate) final_silence: Option<Duration>,
    pub(crate) dtmfterm: bool,
    pub(crate) mime_type: String,
}

#[derive(Debug, Clone)]
pub(crate) struct TransferAttrs {
    pub(crate) dest: Option<String>,
    pub(crate) destexpr: Option<String>,
    pub(crate) bridge: bool,
    pub(crate) consultation: bool,
    pub(crate) connect_timeout: Duration,
    pub(crate) maxtime: Duration,
    pub(crate) transfer_audio: Option<String>,
    pub(crate) aai: Option<String>,
    pub(crate) aaiexpr: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct SubdialogAttrs {
    pub(crate) fetchaudio: Option<String>,
    pub(crate) src: Option<String>,
    pub(crate) srcexpr: Option<String>,
    pub(crate) namelist: Vec<String>,
    pub(crate) post: bool,
    pub(crate) params: Vec<Param>,
}

#[derive(Debug, Clone)]
pub(crate) struct Param {
    pub(crate) name: String,
    pub(crate) expr: Option<String>,
    pub(crate) value: Option<String>,
}

/// A grammar as written: compiled now, or fetched when it first becomes active.
#[derive(Debug, Clone)]
pub(crate) enum GrammarRef {
    Ready(Arc<Grammar>),
    External {
        src: Option<String>,
        srcexpr: Option<String>,
        /// The `root` attribute, overriding the fetched grammar's root.
        root: Option<String>,
    },
}

#[derive(Debug)]
pub(crate) struct Catch {
    /// Event names; empty catches everything.
    pub(crate) events: Vec<String>,
    pub(crate) count: u32,
    pub(crate) cond: Option<String>,
    pub(crate) body: Rc<[Exec]>,
}

#[derive(Debug)]
pub(crate) struct Filled {
    pub(crate) any: bool,
    pub(crate) namelist: Vec<String>,
    pub(crate) body: Rc<[Exec]>,
}

#[derive(Debug, Clone)]
pub(crate) struct Prompt {
    pub(crate) bargein: Option<bool>,
    pub(crate) count: u32,
    pub(crate) cond: Option<String>,
    pub(crate) content: Vec<Piece>,
}

#[derive(Debug, Clone)]
pub(crate) enum Piece {
    Text(String),
    Value(String),
    Audio {
        src: Option<String>,
        expr: Option<String>,
        fallback: Vec<Piece>,
    },
    Break(Duration),
    /// `<enumerate>`: the template, or empty for the default rendering.
    Enumerate(Vec<Piece>),
    /// `<mark name|nameexpr>`: a named point in the prompt.
    Mark {
        name: Option<String>,
        nameexpr: Option<String>,
    },
}

/// One element of executable content and the line it is on (for error messages).
#[derive(Debug, Clone)]
pub(crate) struct Exec {
    /// The document it is in (shared by all its elements).
    pub(crate) url: Rc<str>,
    pub(crate) line: u32,
    /// `fetchaudio` of an element that fetches (`<goto>`, `<submit>`, `<data>`).
    pub(crate) fetchaudio: Option<String>,
    pub(crate) op: Op,
}

#[derive(Debug, Clone)]
pub(crate) enum Op {
    Var {
        name: String,
        expr: Option<String>,
    },
    Assign {
        name: String,
        expr: String,
    },
    Script(String),
    ScriptSrc {
        src: Option<String>,
        srcexpr: Option<String>,
    },
    Prompt(Prompt),
    If(Vec<(Option<String>, Rc<[Exec]>)>),
    Goto {
        next: Option<String>,
        expr: Option<String>,
        nextitem: Option<String>,
        expritem: Option<String>,
    },
    Submit {
        next: Option<String>,
        expr: Option<String>,
        namelist: Option<Vec<String>>,
        post: bool,
        multipart: bool,
    },
    Clear(Vec<String>),
    Reprompt,
    Throw {
        event: Option<String>,
        eventexpr: Option<String>,
        message: Option<String>,
        messageexpr: Option<String>,
    },
    Log {
        label: Option<String>,
        expr: Option<String>,
        content: Vec<Piece>,
    },
    Exit {
        expr: Option<String>,
        namelist: Vec<String>,
    },
    Return {
        event: Option<String>,
        eventexpr: Option<String>,
        message: Option<String>,
        messageexpr: Option<String>,
        namelist: Vec<String>,
    },
    Data {
        name: Option<String>,
        src: Option<String>,
        srcexpr: Option<String>,
        namelist: Vec<String>,
        post: bool,
    },
    Foreach {
        array: String,
        item: String,
        body: Rc<[Exec]>,
    },
    Disconnect,
}

/// SSML elements whose content we flatten into text.
const SSML_CONTAINERS: &[&str] = &[
    "emphasis",
    "p",
    "s",
    "paragraph",
    "sentence",
    "prosody",
    "say-as",
    "voice",
    "sub",
    "phoneme",
    "speak",
];
const SSML_IGNORED: &[&str] = &["lexicon", "meta", "metadata", "desc"];

struct Parser<'u> {
    url: &'u url::Url,
    text: &'u str,
    /// The URL as element executables carry it.
    url_rc: Rc<str>,
}

type PResult<T> = Result<T, DocumentError>;

/// Parses a VoiceXML document fetched from `url`.
pub(crate) fn parse(url: &url::Url, text: &str) -> PResult<Document> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        nodes_limit: MAX_NODES,
        ..Default::default()
    };
    let xml = roxmltree::Document::parse_with_options(text, opts).map_err(|e| DocumentError {
        url: url.to_string(),
        line: e.pos().row,
        message: format!("malformed xml: {e}"),
    })?;
    if let Some(node) = too_deep(xml.root_element(), MAX_DEPTH) {
        return Err(DocumentError {
            url: url.to_string(),
            line: line_of(text, node),
            message: format!("elements nested deeper than {MAX_DEPTH} levels"),
        });
    }
    if let Err((node, message)) = check_attributes(xml.root_element()) {
        return Err(DocumentError {
            url: url.to_string(),
            line: line_of(text, node),
            message,
        });
    }
    let p = Parser {
        url,
        text,
        url_rc: Rc::from(url.as_str()),
    };
    p.document(xml.root_element())
}

/// The first element deeper than `max` below `root`, found without recursion.
pub(crate) fn too_deep<'a, 'i>(root: Node<'a, 'i>, max: usize) -> Option<Node<'a, 'i>> {
    // Nodes come in document order, parents first: a node's depth is its parent's plus one.
    let mut depths: std::collections::HashMap<roxmltree::NodeId, usize> =
        std::collections::HashMap::new();
    for n in root.descendants().filter(Node::is_element) {
        let depth = n
            .parent_element()
            .and_then(|p| depths.get(&p.id()))
            .map_or(1, |d| d + 1);
        if depth > max {
            return Some(n);
        }
        depths.insert(n.id(), depth);
    }
    None
}

fn line_of(text: &str, node: Node<'_, '_>) -> u32 {
    let upto = node.range().start.min(text.len());
    text.as_bytes()[..upto]
        .iter()
        .filter(|b| **b == b'\n')
        .count() as u32
        + 1
}

fn is_catch(name: &str) -> bool {
    matches!(name, "catch" | "noinput" | "nomatch" | "error" | "help")
}

/// Attribute groups of which an element may carry at most one (VoiceXML 2.1 schema); a
/// document breaking one is invalid, hence `error.badfetch`.
const EXCLUSIVE: &[(&str, &[&str])] = &[
    ("audio", &["src", "expr"]),
    ("script", &["src", "srcexpr"]),
    ("grammar", &["src", "srcexpr"]),
    ("goto", &["next", "expr", "nextitem", "expritem"]),
    ("submit", &["next", "expr"]),
    ("throw", &["event", "eventexpr"]),
    ("throw", &["message", "messageexpr"]),
    ("subdialog", &["src", "srcexpr"]),
    ("transfer", &["dest", "destexpr"]),
    ("transfer", &["aai", "aaiexpr"]),
    ("choice", &["next", "expr", "event", "eventexpr"]),
    ("link", &["next", "expr", "event", "eventexpr"]),
    ("choice", &["message", "messageexpr"]),
    ("link", &["message", "messageexpr"]),
    ("data", &["src", "srcexpr"]),
    ("exit", &["expr", "namelist"]),
    ("return", &["event", "eventexpr", "namelist"]),
    ("return", &["message", "messageexpr"]),
    ("param", &["expr", "value"]),
    ("mark", &["name", "nameexpr"]),
];

/// Attribute groups of which an element needs exactly one.
const REQUIRED_ONE: &[(&str, &[&str])] = &[
    ("goto", &["next", "expr", "nextitem", "expritem"]),
    ("subdialog", &["src", "srcexpr"]),
    ("throw", &["event", "eventexpr"]),
    ("data", &["src", "srcexpr"]),
    ("choice", &["next", "expr", "event", "eventexpr"]),
    ("link", &["next", "expr", "event", "eventexpr"]),
];

/// Checks every element's attribute groups, without recursion.
fn check_attributes<'a, 'i>(root: Node<'a, 'i>) -> Result<(), (Node<'a, 'i>, String)> {
    for node in root.descendants().filter(Node::is_element) {
        let tag = node.tag_name().name();
        for (element, group) in EXCLUSIVE {
            if *element == tag {
                let present: Vec<&str> = group
                    .iter()
                    .copied()
                    .filter(|a| node.has_attribute(*a))
                    .collect();
                if present.len() > 1 {
                    return Err((
                        node,
                        format!("<{tag}> may have only one of {}", present.join(", ")),
                    ));
                }
            }
        }
        for (element, group) in REQUIRED_ONE {
            if *element == tag && !group.iter().any(|a| node.has_attribute(*a)) {
                return Err((node, format!("<{tag}> needs one of {}", group.join(", "))));
            }
        }
        let external = node.has_attribute("src") || node.has_attribute("srcexpr");
        match tag {
            "script"
                if external
                    && node
                        .children()
                        .any(|c| c.is_text() && !c.text().unwrap_or("").trim().is_empty()) =>
            {
                return Err((node, "<script> with src and inline code".into()));
            }
            "grammar"
                if external
                    && node.children().any(|c| {
                        c.is_element() || (c.is_text() && !c.text().unwrap_or("").trim().is_empty())
                    }) =>
            {
                return Err((node, "<grammar> with src and inline content".into()));
            }
            "grammar"
                if !external
                    && !node.children().any(|c| c.is_element())
                    && node.text().unwrap_or("").trim().is_empty() =>
            {
                return Err((node, "<grammar> without src or rules".into()));
            }
            _ => {}
        }
    }
    Ok(())
}

impl Parser<'_> {
    fn error(&self, node: Node<'_, '_>, message: impl Into<String>) -> DocumentError {
        DocumentError {
            url: self.url.to_string(),
            line: line_of(self.text, node),
            message: message.into(),
        }
    }

    fn unknown(&self, node: Node<'_, '_>, parent: &str) -> DocumentError {
        self.error(
            node,
            format!("<{}> is not allowed in <{parent}>", node.tag_name().name()),
        )
    }

    fn document(&self, root: Node<'_, '_>) -> PResult<Document> {
        if root.tag_name().name() != "vxml" {
            return Err(self.error(
                root,
                format!("root is <{}>, not <vxml>", root.tag_name().name()),
            ));
        }
        match root.attribute("version") {
            Some("2.0" | "2.1") => {}
            Some(v) => return Err(self.error(root, format!("unsupported vxml version {v}"))),
            None => return Err(self.error(root, "<vxml> without version")),
        }
        let mut decls = Vec::new();
        // `xml:base` (or the VoiceXML 2.0 `base`) changes what relative URIs resolve against.
        let base_attr = root
            .attribute(("http://www.w3.org/XML/1998/namespace", "base"))
            .or_else(|| root.attribute("base"));
        let base = match base_attr {
            Some(b) => self
                .url
                .join(b)
                .map_err(|e| self.error(root, format!("base {b:?}: {e}")))?,
            None => self.url.clone(),
        };
        let mut doc = Document {
            url: self.url.clone(),
            base,
            application: root.attribute("application").map(str::to_owned),
            decls: Rc::new([]),
            catches: Vec::new(),
            properties: Vec::new(),
            links: Vec::new(),
            dialogs: Vec::new(),
        };
        for child in root.children().filter(Node::is_element) {
            let name = child.tag_name().name();
            match name {
                "var" | "script" | "data" => decls.push(self.exec(child)?),
                "property" => doc.properties.push(self.property(child)?),
                "form" => {
                    let index = doc.dialogs.len();
                    doc.dialogs.push(self.form(child, index)?);
                }
                "menu" => {
                    let index = doc.dialogs.len();
                    doc.dialogs.push(self.menu(child, index)?);
                }
                "link" => doc.links.push(self.link(child)?),
                "meta" | "metadata" => {}
                _ if is_catch(name) => doc.catches.push(self.catch(child)?),
                _ => return Err(self.unknown(child, "vxml")),
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (dialog, node) in doc.dialogs.iter().zip(
            root.children()
                .filter(|n| matches!(n.tag_name().name(), "form" | "menu")),
        ) {
            if !seen.insert(dialog.id.clone()) {
                return Err(self.error(node, format!("duplicate dialog id {:?}", dialog.id)));
            }
        }
        doc.decls = decls.into();
        Ok(doc)
    }

    fn form(&self, node: Node<'_, '_>, index: usize) -> PResult<Dialog> {
        let mut form = self.empty_dialog(node, index);
        let mut decls = Vec::new();
        for child in node.children().filter(Node::is_element) {
            let name = child.tag_name().name();
            match name {
                "var" | "script" | "data" => decls.push(self.exec(child)?),
                "property" => form.properties.push(self.property(child)?),
                "filled" => form.filled.push(self.filled(child)?),
                "grammar" => {
                    let g = self.grammar(child)?;
                    // `scope="document"` on one grammar: active in the whole document too.
                    if child.attribute("scope") == Some("document") {
                        form.document_grammars.push(g.clone());
                    }
                    form.grammars.push(g);
                }
                "link" => form.links.push(self.link(child)?),
                "block" | "field" | "initial" | "record" | "transfer" | "subdialog" | "object" => {
                    let index = form.items.len();
                    let item = self.item(child, index)?;
                    if form.items.iter().any(|i: &FormItem| i.name == item.name) {
                        return Err(
                            self.error(child, format!("duplicate form item name {:?}", item.name))
                        );
                    }
                    decls.push(Exec {
                        url: self.url_rc.clone(),
                        line: line_of(self.text, child),
                        fetchaudio: None,
                        op: Op::Var {
                            name: item.name.clone(),
                            expr: item.expr.clone(),
                        },
                    });
                    form.items.push(item);
                }
                _ if is_catch(name) => form.catches.push(self.catch(child)?),
                _ => return Err(self.unknown(child, "form")),
            }
        }
        form.decls = decls.into();
        Ok(form)
    }

    fn empty_dialog(&self, node: Node<'_, '_>, index: usize) -> Dialog {
        Dialog {
            id: node
                .attribute("id")
                .map_or_else(|| format!("$dialog{index}"), str::to_owned),
            document_scope: node.attribute("scope") == Some("document"),
            decls: Rc::new([]),
            items: Vec::new(),
            catches: Vec::new(),
            filled: Vec::new(),
            properties: Vec::new(),
            links: Vec::new(),
            grammars: Vec::new(),
            document_grammars: Vec::new(),
        }
    }

    fn new_item(&self, node: Node<'_, '_>, index: usize, kind: ItemKind) -> FormItem {
        let name = node
            .attribute("name")
            .map_or_else(|| format!("$item{index}"), str::to_owned);
        FormItem {
            slot: node.attribute("slot").unwrap_or(&name).to_owned(),
            name,
            expr: node.attribute("expr").map(str::to_owned),
            cond: node.attribute("cond").map(str::to_owned),
            kind,
            catches: Vec::new(),
            properties: Vec::new(),
            prompts: Vec::new(),
            filled: Vec::new(),
            grammars: Vec::new(),
            links: Vec::new(),
            modal: node.attribute("modal") == Some("true"),
        }
    }

    fn menu(&self, node: Node<'_, '_>, index: usize) -> PResult<Dialog> {
        let mut dialog = self.empty_dialog(node, index);
        let mut item = self.new_item(node, 0, ItemKind::Initial);
        item.name = "$menu".into();
        item.slot = item.name.clone();
        item.expr = None;
        item.cond = None;
        let auto_dtmf = node.attribute("dtmf") == Some("true");
        let approximate = node.attribute("accept") == Some("approximate");
        let mut choices = Vec::new();
        let mut implicit = Vec::new();
        for child in node.children() {
            if child.is_text() {
                push_text(&mut implicit, child.text().unwrap_or(""));
                continue;
            }
            if !child.is_element() {
                continue;
            }
            let name = child.tag_name().name();
            match name {
                "choice" => choices.push(self.choice(child, approximate)?),
                "prompt" => item.prompts.push(self.prompt(child)?),
                "audio" | "value" | "break" | "enumerate" => {
                    implicit.extend(self.pieces_of(child)?)
                }
                "property" => dialog.properties.push(self.property(child)?),
                _ if is_catch(name) => item.catches.push(self.catch(child)?),
                _ => return Err(self.unknown(child, "menu")),
            }
        }
        if !is_blank(&implicit) {
            item.prompts.push(Prompt {
                bargein: None,
                count: 1,
                cond: None,
                content: implicit,
            });
        }
        if auto_dtmf {
            // The first nine choices without a key get 1 to 9 (VoiceXML 2.0 §2.2.1).
            for (key, choice) in (1..=9).zip(choices.iter_mut().filter(|c| c.dtmf.is_none())) {
                choice.dtmf = Some(key.to_string());
            }
        }
        item.kind = ItemKind::Menu(Menu { choices });
        dialog.items.push(item);
        Ok(dialog)
    }

    fn choice(&self, node: Node<'_, '_>, approximate: bool) -> PResult<Choice> {
        let mut grammars = Vec::new();
        let mut text = String::new();
        for child in node.children() {
            if child.is_text() {
                text.push_str(child.text().unwrap_or(""));
            } else if child.tag_name().name() == "grammar" {
                grammars.push(self.grammar(child)?);
            } else if child.is_element() {
                text.push_str(&descendant_text(child));
            }
        }
        Ok(Choice {
            dtmf: node.attribute("dtmf").map(str::to_owned),
            text: text.split_whitespace().collect::<Vec<_>>().join(" "),
            value: None,
            grammars,
            accept_approximate: match node.attribute("accept") {
                Some(a) => a == "approximate",
                None => approximate,
            },
            target: target_of(node),
        })
    }

    fn link(&self, node: Node<'_, '_>) -> PResult<Link> {
        let mut grammars = Vec::new();
        for child in node.children().filter(Node::is_element) {
            match child.tag_name().name() {
                "grammar" => grammars.push(self.grammar(child)?),
                _ => return Err(self.unknown(child, "link")),
            }
        }
        Ok(Link {
            dtmf: node.attribute("dtmf").map(str::to_owned),
            grammars,
            target: target_of(node),
        })
    }

    fn item(&self, node: Node<'_, '_>, index: usize) -> PResult<FormItem> {
        let tag = node.tag_name().name();
        let mut item = self.new_item(node, index, ItemKind::Initial);
        let attr_duration = |name: &str| node.attribute(name).and_then(parse_duration);
        item.kind = match tag {
            "block" => {
                item.kind = ItemKind::Block(self.body(node)?);
                return Ok(item);
            }
            "object" => ItemKind::Object,
            "initial" => ItemKind::Initial,
            "field" => ItemKind::Field {
                options: Vec::new(),
            },
            "record" => ItemKind::Record(RecordAttrs {
                beep: node.attribute("beep") == Some("true"),
                maxtime: attr_duration("maxtime"),
                final_silence: attr_duration("finalsilence"),
                dtmfterm: node.attribute("dtmfterm") != Some("false"),
                mime_type: node.attribute("type").unwrap_or("audio/x-wav").to_owned(),
            }),
            "transfer" => ItemKind::Transfer(TransferAttrs {
                dest: node.attribute("dest").map(str::to_owned),
                destexpr: node.attribute("destexpr").map(str::to_owned),
                // VoiceXML 2.1 says `type="bridge"`; 2.0 said `bridge="true"`.
                bridge: node.attribute("bridge") == Some("true")
                    || node.attribute("type") == Some("bridge"),
                consultation: node.attribute("type") == Some("consultation"),
                connect_timeout: attr_duration("connecttimeout").unwrap_or(Duration::from_secs(30)),
                maxtime: attr_duration("maxtime").unwrap_or(Duration::ZERO),
                transfer_audio: node.attribute("transferaudio").map(str::to_owned),
                aai: node.attribute("aai").map(str::to_owned),
                aaiexpr: node.attribute("aaiexpr").map(str::to_owned),
            }),
            "subdialog" => ItemKind::Subdialog(SubdialogAttrs {
                fetchaudio: node.attribute("fetchaudio").map(str::to_owned),
                src: node.attribute("src").map(str::to_owned),
                srcexpr: node.attribute("srcexpr").map(str::to_owned),
                namelist: split_names(node.attribute("namelist")),
                post: node
                    .attribute("method")
                    .is_some_and(|m| m.eq_ignore_ascii_case("post")),
                params: Vec::new(),
            }),
            other => return Err(self.error(node, format!("<{other}> is not a form item"))),
        };
        if let Some(ty) = node.attribute("type")
            && tag == "field"
        {
            let grammar = Grammar::builtin(ty)
                .map_err(|e| self.error(node, format!("field type {ty:?}: {e}")))?;
            item.grammars.push(GrammarRef::Ready(Arc::new(grammar)));
        }
        let mut implicit = Vec::new();
        let mut options = Vec::new();
        let mut params = Vec::new();
        for child in node.children() {
            if child.is_text() {
                push_text(&mut implicit, child.text().unwrap_or(""));
                continue;
            }
            if !child.is_element() {
                continue;
            }
            let name = child.tag_name().name();
            match name {
                "prompt" => item.prompts.push(self.prompt(child)?),
                "audio" | "value" | "break" | "enumerate" => {
                    implicit.extend(self.pieces_of(child)?)
                }
                "grammar" => item.grammars.push(self.grammar(child)?),
                "filled" => item.filled.push(self.filled(child)?),
                "property" => item.properties.push(self.property(child)?),
                "link" => item.links.push(self.link(child)?),
                "option" if tag == "field" => options.push(self.option(child)?),
                "param" if matches!(tag, "subdialog" | "object") => {
                    params.push(Param {
                        name: child
                            .attribute("name")
                            .ok_or_else(|| self.error(child, "<param> without name"))?
                            .to_owned(),
                        expr: child.attribute("expr").map(str::to_owned),
                        value: child.attribute("value").map(str::to_owned),
                    });
                }
                _ if is_catch(name) => item.catches.push(self.catch(child)?),
                _ => return Err(self.unknown(child, tag)),
            }
        }
        if !is_blank(&implicit) {
            item.prompts.push(Prompt {
                bargein: None,
                count: 1,
                cond: None,
                content: implicit,
            });
        }
        match &mut item.kind {
            ItemKind::Field { options: o } => *o = options,
            ItemKind::Subdialog(s) => s.params = params,
            _ => {}
        }
        Ok(item)
    }

    fn option(&self, node: Node<'_, '_>) -> PResult<Choice> {
        let text = descendant_text(node)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Choice {
            dtmf: node.attribute("dtmf").map(str::to_owned),
            value: Some(
                node.attribute("value")
                    .map_or_else(|| text.clone(), str::to_owned),
            ),
            text,
            grammars: Vec::new(),
            accept_approximate: node.attribute("accept") == Some("approximate"),
            target: Target::default(),
        })
    }

    fn grammar(&self, node: Node<'_, '_>) -> PResult<GrammarRef> {
        let src = node.attribute("src");
        let srcexpr = node.attribute("srcexpr");
        if let Some(src) = src
            && src.starts_with("builtin:")
        {
            return Grammar::builtin(src)
                .map(|g| GrammarRef::Ready(Arc::new(g)))
                .map_err(|e| self.error(node, e.to_string()));
        }
        if src.is_some() || srcexpr.is_some() {
            if src.is_some() && srcexpr.is_some() {
                return Err(self.error(node, "<grammar> with both src and srcexpr"));
            }
            return Ok(GrammarRef::External {
                src: src.map(str::to_owned),
                srcexpr: srcexpr.map(str::to_owned),
                root: None,
            });
        }
        Grammar::from_srgs_node(node)
            .map(|g| GrammarRef::Ready(Arc::new(g)))
            .map_err(|e| self.error(node, e.to_string()))
    }

    fn property(&self, node: Node<'_, '_>) -> PResult<(String, String)> {
        match (node.attribute("name"), node.attribute("value")) {
            (Some(n), Some(v)) => Ok((n.to_owned(), v.to_owned())),
            _ => Err(self.error(node, "<property> needs name and value")),
        }
    }

    fn count(&self, node: Node<'_, '_>) -> PResult<u32> {
        match node.attribute("count") {
            None => Ok(1),
            Some(c) => c
                .trim()
                .parse()
                .ok()
                .filter(|c| *c > 0)
                .ok_or_else(|| self.error(node, format!("count={c:?}"))),
        }
    }

    fn catch(&self, node: Node<'_, '_>) -> PResult<Catch> {
        let events = match node.tag_name().name() {
            "catch" => split_names(node.attribute("event")),
            short => vec![short.to_owned()],
        };
        Ok(Catch {
            events,
            count: self.count(node)?,
            cond: node.attribute("cond").map(str::to_owned),
            body: self.body(node)?,
        })
    }

    fn filled(&self, node: Node<'_, '_>) -> PResult<Filled> {
        Ok(Filled {
            any: node.attribute("mode") == Some("any"),
            namelist: split_names(node.attribute("namelist")),
            body: self.body(node)?,
        })
    }

    fn prompt(&self, node: Node<'_, '_>) -> PResult<Prompt> {
        Ok(Prompt {
            bargein: node.attribute("bargein").map(|b| b == "true"),
            count: self.count(node)?,
            cond: node.attribute("cond").map(str::to_owned),
            content: self.pieces(node)?,
        })
    }

    /// The content of a prompt (SSML subset) flattened to pieces.
    fn pieces(&self, node: Node<'_, '_>) -> PResult<Vec<Piece>> {
        let mut out = Vec::new();
        for child in node.children() {
            if child.is_text() {
                push_text(&mut out, child.text().unwrap_or(""));
            } else if child.is_element() {
                out.extend(self.pieces_of(child)?);
            }
        }
        Ok(out)
    }

    fn pieces_of(&self, child: Node<'_, '_>) -> PResult<Vec<Piece>> {
        let name = child.tag_name().name();
        Ok(match name {
            "value" => vec![Piece::Value(
                child
                    .attribute("expr")
                    .ok_or_else(|| self.error(child, "<value> without expr"))?
                    .to_owned(),
            )],
            "audio" => vec![Piece::Audio {
                src: child.attribute("src").map(str::to_owned),
                expr: child.attribute("expr").map(str::to_owned),
                fallback: self.pieces(child)?,
            }],
            "break" => {
                let time = child
                    .attribute("time")
                    .and_then(parse_duration)
                    .unwrap_or_else(|| match child.attribute("strength") {
                        Some("none") => Duration::ZERO,
                        Some("x-weak" | "weak") => Duration::from_millis(250),
                        Some("strong" | "x-strong") => Duration::from_millis(1000),
                        _ => Duration::from_millis(500),
                    });
                vec![Piece::Break(time)]
            }
            "enumerate" => vec![Piece::Enumerate(self.pieces(child)?)],
            "mark" => vec![Piece::Mark {
                name: child.attribute("name").map(str::to_owned),
                nameexpr: child.attribute("nameexpr").map(str::to_owned),
            }],
            _ if SSML_CONTAINERS.contains(&name) => self.pieces(child)?,
            _ if SSML_IGNORED.contains(&name) => Vec::new(),
            _ => return Err(self.unknown(child, "prompt")),
        })
    }

    /// Executable content of a block, catch, filled, if or foreach.
    fn body(&self, node: Node<'_, '_>) -> PResult<Rc<[Exec]>> {
        let mut out = Vec::new();
        let mut loose = Vec::new();
        for child in node.children() {
            if child.is_text() {
                push_text(&mut loose, child.text().unwrap_or(""));
                continue;
            }
            if !child.is_element() {
                continue;
            }
            match child.tag_name().name() {
                "audio" | "value" | "break" | "enumerate" | "mark" => {
                    loose.extend(self.pieces_of(child)?)
                }
                _ => {
                    flush_loose(
                        &mut loose,
                        &mut out,
                        &self.url_rc,
                        line_of(self.text, child),
                    );
                    out.push(self.exec(child)?);
                }
            }
        }
        flush_loose(&mut loose, &mut out, &self.url_rc, line_of(self.text, node));
        Ok(out.into())
    }

    fn exec(&self, node: Node<'_, '_>) -> PResult<Exec> {
        let attr = |n: &str| node.attribute(n).map(str::to_owned);
        let name = node.tag_name().name();
        let op = match name {
            "var" => Op::Var {
                name: attr("name").ok_or_else(|| self.error(node, "<var> without name"))?,
                expr: attr("expr"),
            },
            "assign" => Op::Assign {
                name: attr("name").ok_or_else(|| self.error(node, "<assign> without name"))?,
                expr: attr("expr").ok_or_else(|| self.error(node, "<assign> without expr"))?,
            },
            "script" => {
                if node.attribute("src").is_some() || node.attribute("srcexpr").is_some() {
                    Op::ScriptSrc {
                        src: attr("src"),
                        srcexpr: attr("srcexpr"),
                    }
                } else {
                    let text: String = node
                        .children()
                        .filter(|c| c.is_text())
                        .filter_map(|c| c.text())
                        .collect();
                    Op::Script(text)
                }
            }
            "prompt" => Op::Prompt(self.prompt(node)?),
            "if" => self.if_chain(node)?.op,
            "goto" => Op::Goto {
                next: attr("next"),
                expr: attr("expr"),
                nextitem: attr("nextitem"),
                expritem: attr("expritem"),
            },
            "submit" => Op::Submit {
                next: attr("next"),
                expr: attr("expr"),
                namelist: node.attribute("namelist").map(|n| split_names(Some(n))),
                post: node
                    .attribute("method")
                    .is_some_and(|m| m.eq_ignore_ascii_case("post")),
                multipart: node.attribute("enctype") == Some("multipart/form-data"),
            },
            "clear" => Op::Clear(split_names(node.attribute("namelist"))),
            "reprompt" => Op::Reprompt,
            "throw" => Op::Throw {
                event: attr("event"),
                eventexpr: attr("eventexpr"),
                message: attr("message"),
                messageexpr: attr("messageexpr"),
            },
            "log" => Op::Log {
                label: attr("label"),
                expr: attr("expr"),
                content: self.pieces(node)?,
            },
            "exit" => Op::Exit {
                expr: attr("expr"),
                namelist: split_names(node.attribute("namelist")),
            },
            "return" => Op::Return {
                event: attr("event"),
                eventexpr: attr("eventexpr"),
                message: attr("message"),
                messageexpr: attr("messageexpr"),
                namelist: split_names(node.attribute("namelist")),
            },
            "data" => Op::Data {
                name: attr("name"),
                src: attr("src"),
                srcexpr: attr("srcexpr"),
                namelist: split_names(node.attribute("namelist")),
                post: node
                    .attribute("method")
                    .is_some_and(|m| m.eq_ignore_ascii_case("post")),
            },
            "foreach" => Op::Foreach {
                array: attr("array").ok_or_else(|| self.error(node, "<foreach> without array"))?,
                item: attr("item").ok_or_else(|| self.error(node, "<foreach> without item"))?,
                body: self.body(node)?,
            },
            "disconnect" => Op::Disconnect,
            "elseif" | "else" => return Err(self.error(node, format!("<{name}> outside <if>"))),
            _ => {
                return Err(self.unknown(
                    node,
                    node.parent_element().map_or("?", |p| p.tag_name().name()),
                ));
            }
        };
        Ok(Exec {
            url: self.url_rc.clone(),
            line: line_of(self.text, node),
            fetchaudio: node.attribute("fetchaudio").map(str::to_owned),
            op,
        })
    }

    fn if_chain(&self, node: Node<'_, '_>) -> PResult<Exec> {
        let mut branches: Vec<(Option<String>, Vec<Exec>)> = vec![(
            Some(
                node.attribute("cond")
                    .ok_or_else(|| self.error(node, "<if> without cond"))?
                    .to_owned(),
            ),
            Vec::new(),
        )];
        let mut loose = Vec::new();
        for child in node.children() {
            if child.is_text() {
                push_text(&mut loose, child.text().unwrap_or(""));
                continue;
            }
            if !child.is_element() {
                continue;
            }
            let name = child.tag_name().name();
            if matches!(name, "audio" | "value" | "break" | "enumerate" | "mark") {
                loose.extend(self.pieces_of(child)?);
                continue;
            }
            let Some((_, current)) = branches.last_mut() else {
                break;
            };
            flush_loose(&mut loose, current, &self.url_rc, line_of(self.text, child));
            match name {
                "elseif" => branches.push((
                    Some(
                        child
                            .attribute("cond")
                            .ok_or_else(|| self.error(child, "<elseif> without cond"))?
                            .to_owned(),
                    ),
                    Vec::new(),
                )),
                "else" => branches.push((None, Vec::new())),
                _ => current.push(self.exec(child)?),
            }
        }
        if let Some((_, current)) = branches.last_mut() {
            flush_loose(&mut loose, current, &self.url_rc, line_of(self.text, node));
        }
        Ok(Exec {
            url: self.url_rc.clone(),
            line: line_of(self.text, node),
            fetchaudio: None,
            op: Op::If(
                branches
                    .into_iter()
                    .map(|(cond, body)| (cond, body.into()))
                    .collect(),
            ),
        })
    }
}

fn target_of(node: Node<'_, '_>) -> Target {
    let attr = |n: &str| node.attribute(n).map(str::to_owned);
    Target {
        fetchaudio: attr("fetchaudio"),
        next: attr("next"),
        expr: attr("expr"),
        event: attr("event"),
        eventexpr: attr("eventexpr"),
        message: attr("message"),
        messageexpr: attr("messageexpr"),
    }
}

/// The text inside an element, without recursion (depth is bounded anyway).
fn descendant_text(node: Node<'_, '_>) -> String {
    node.descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect::<Vec<_>>()
        .join(" ")
}

fn flush_loose(loose: &mut Vec<Piece>, out: &mut Vec<Exec>, url: &Rc<str>, line: u32) {
    if is_blank(loose) {
        loose.clear();
    } else {
        out.push(Exec {
            url: url.clone(),
            line,
            fetchaudio: None,
            op: Op::Prompt(Prompt {
                bargein: None,
                count: 1,
                cond: None,
                content: std::mem::take(loose),
            }),
        });
    }
}

fn split_names(list: Option<&str>) -> Vec<String> {
    list.unwrap_or("")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Adds text with white space runs collapsed to one space; edges are kept so that text next to
/// a `<value>` stays apart from it (or not) as written.
fn push_text(out: &mut Vec<Piece>, text: &str) {
    let mut collapsed = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_whitespace() {
            if !collapsed.ends_with(' ') {
                collapsed.push(' ');
            }
        } else {
            collapsed.push(c);
        }
    }
    if collapsed.is_empty() {
        return;
    }
    match out.last_mut() {
        Some(Piece::Text(prev)) => {
            if !(prev.ends_with(' ') && collapsed.starts_with(' ')) {
                prev.push_str(&collapsed);
            } else {
                prev.push_str(&collapsed[1..]);
            }
        }
        _ => out.push(Piece::Text(collapsed)),
    }
}

/// Whether pieces would make no sound (white space between elements).
fn is_blank(pieces: &[Piece]) -> bool {
    pieces.iter().all(|p| match p {
        Piece::Text(t) => t.trim().is_empty(),
        Piece::Mark { .. } => false,
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> url::Url {
        url::Url::parse("http://example.com/app/doc.vxml").unwrap()
    }

    #[test]
    fn parses_forms_items_and_catches() {
        let doc = parse(
            &url(),
            r##"<?xml version="1.0"?>
<vxml version="2.1" xmlns="http://www.w3.org/2001/vxml" application="root.vxml">
  <var name="x" expr="1"/>
  <catch event="error.badfetch"><exit/></catch>
  <link next="#g"><grammar mode="dtmf" root="r"><rule id="r">0</rule></grammar></link>
  <form id="f">
    <field name="pin" type="digits">
      <prompt count="2">again <value expr="x"/></prompt>
      <noinput count="2"><reprompt/></noinput>
      <filled><if cond="pin == '1'"><goto next="#g"/><else/><exit/></if></filled>
    </field>
    <block>hello<break time="500ms"/></block>
    <record name="msg" beep="true" maxtime="10s"/>
    <subdialog name="sd" src="sub.vxml"><param name="p" expr="1"/></subdialog>
  </form>
  <menu id="g" dtmf="true"><choice next="#f">one</choice><choice event="help">two</choice></menu>
</vxml>"##,
        )
        .expect("valid document");
        assert_eq!(doc.application.as_deref(), Some("root.vxml"));
        assert_eq!(doc.dialogs.len(), 2);
        assert_eq!(doc.links.len(), 1);
        let form = &doc.dialogs[0];
        assert_eq!(form.items.len(), 4);
        assert_eq!(form.decls.len(), 4, "one variable per item");
        assert_eq!(doc.catches[0].events, vec!["error.badfetch"]);
        assert_eq!(form.items[0].prompts[0].count, 2);
        assert_eq!(form.items[0].catches[0].count, 2);
        let Op::If(branches) = &form.items[0].filled[0].body[0].op else {
            panic!("if expected")
        };
        assert_eq!(branches.len(), 2);
        assert!(branches[1].0.is_none());
        assert_eq!(form.items[1].name, "$item1");
        assert!(matches!(form.items[2].kind, ItemKind::Record(ref r) if r.beep));
        assert!(matches!(form.items[3].kind, ItemKind::Subdialog(ref s) if s.params.len() == 1));
        let ItemKind::Menu(menu) = &doc.dialogs[1].items[0].kind else {
            panic!("menu")
        };
        assert_eq!(menu.choices[1].dtmf.as_deref(), Some("2"));
        assert_eq!(menu.choices[1].text, "two");
    }

    #[test]
    fn unknown_element_names_element_line_and_url() {
        let err = parse(
            &url(),
            "<vxml version=\"2.1\">\n<form>\n<block><bogus/></block></form></vxml>",
        )
        .unwrap_err();
        assert_eq!(err.line, 3);
        let text = err.to_string();
        assert!(text.contains("<bogus>"), "{text}");
        assert!(text.contains("http://example.com/app/doc.vxml"), "{text}");
    }

    #[test]
    fn malformed_xml_is_an_error() {
        let err = parse(&url(), "<vxml version=\"2.1\"><form>").unwrap_err();
        assert!(err.message.contains("malformed"));
        assert!(parse(&url(), "<html/>").is_err());
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        let depth = 200_000;
        let doc = format!(
            "<vxml version=\"2.1\"><form><block>{}{}</block></form></vxml>",
            "<if cond=\"true\">".repeat(depth),
            "</if>".repeat(depth)
        );
        let err = parse(&url(), &doc).unwrap_err();
        assert!(err.message.contains("nested deeper"), "{err}");
    }
}
