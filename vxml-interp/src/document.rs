//! The VoiceXML document model: roxmltree parses, we keep an owned tree of what the FIA needs.
//!
//! A malformed document or an element unknown to VoiceXML 2.1 is an error (the interpreter
//! throws `error.badfetch` with it); an element VoiceXML knows but this interpreter does not
//! implement yet becomes [`Exec::Unsupported`] / [`ItemKind::Unsupported`] and throws
//! `error.unsupported.<element>` when reached.

use std::sync::Arc;
use std::time::Duration;

use roxmltree::Node;

use crate::grammar::Grammar;
use crate::time::parse_duration;

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
    /// Document-level `<var>` and `<script>`, in document order.
    pub(crate) decls: Vec<Exec>,
    pub(crate) catches: Vec<Catch>,
    pub(crate) properties: Vec<(String, String)>,
    pub(crate) forms: Vec<Form>,
}

#[derive(Debug)]
pub(crate) struct Form {
    pub(crate) id: String,
    /// `<var>`, `<script>` and form item variable declarations, in document order.
    pub(crate) decls: Vec<Decl>,
    pub(crate) items: Vec<FormItem>,
    pub(crate) catches: Vec<Catch>,
    pub(crate) filled: Vec<Filled>,
    pub(crate) properties: Vec<(String, String)>,
}

#[derive(Debug)]
pub(crate) enum Decl {
    Exec(Exec),
    /// The variable of form item `items[index]`.
    Item(usize),
}

#[derive(Debug)]
pub(crate) struct FormItem {
    pub(crate) name: String,
    pub(crate) expr: Option<String>,
    pub(crate) cond: Option<String>,
    pub(crate) kind: ItemKind,
    pub(crate) catches: Vec<Catch>,
    pub(crate) properties: Vec<(String, String)>,
}

#[derive(Debug)]
pub(crate) enum ItemKind {
    Block(Vec<Exec>),
    Field(Field),
    Unsupported(String),
}

#[derive(Debug)]
pub(crate) struct Field {
    pub(crate) prompts: Vec<Prompt>,
    pub(crate) grammars: Vec<Arc<Grammar>>,
    pub(crate) filled: Vec<Filled>,
    pub(crate) boolean: bool,
}

#[derive(Debug)]
pub(crate) struct Catch {
    /// Event names; empty catches everything.
    pub(crate) events: Vec<String>,
    pub(crate) count: u32,
    pub(crate) cond: Option<String>,
    pub(crate) body: Vec<Exec>,
}

#[derive(Debug)]
pub(crate) struct Filled {
    pub(crate) any: bool,
    pub(crate) namelist: Vec<String>,
    pub(crate) body: Vec<Exec>,
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
}

#[derive(Debug, Clone)]
pub(crate) enum Exec {
    Var {
        name: String,
        expr: Option<String>,
    },
    Assign {
        name: String,
        expr: String,
    },
    Script(String),
    Prompt(Prompt),
    If(Vec<(Option<String>, Vec<Exec>)>),
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
    Disconnect,
    Unsupported(String),
}

/// Elements of VoiceXML 2.1 that this interpreter does not implement yet.
const UNSUPPORTED: &[&str] = &[
    "menu",
    "choice",
    "enumerate",
    "subdialog",
    "record",
    "transfer",
    "object",
    "initial",
    "link",
    "data",
    "foreach",
    "return",
    "param",
    "mark",
];

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
const SSML_IGNORED: &[&str] = &["lexicon", "meta", "metadata", "desc", "mark"];

struct Parser<'u> {
    url: &'u url::Url,
    text: &'u str,
}

type PResult<T> = Result<T, DocumentError>;

/// Parses a VoiceXML document fetched from `url`.
pub(crate) fn parse(url: &url::Url, text: &str) -> PResult<Document> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let xml = roxmltree::Document::parse_with_options(text, opts).map_err(|e| DocumentError {
        url: url.to_string(),
        line: e.pos().row,
        message: format!("malformed xml: {e}"),
    })?;
    let p = Parser { url, text };
    p.document(xml.root_element())
}

impl Parser<'_> {
    fn error(&self, node: Node<'_, '_>, message: impl Into<String>) -> DocumentError {
        DocumentError {
            url: self.url.to_string(),
            line: self.text_pos(node),
            message: message.into(),
        }
    }

    fn text_pos(&self, node: Node<'_, '_>) -> u32 {
        let upto = node.range().start.min(self.text.len());
        self.text.as_bytes()[..upto]
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u32
            + 1
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
        if let Some(app) = root.attribute("application") {
            tracing::info!(url = %self.url, application = app, "application root documents are not supported yet; ignored");
        }
        let mut doc = Document {
            url: self.url.clone(),
            decls: Vec::new(),
            catches: Vec::new(),
            properties: Vec::new(),
            forms: Vec::new(),
        };
        for child in root.children().filter(Node::is_element) {
            let name = child.tag_name().name();
            match name {
                "var" | "script" => doc.decls.push(self.exec(child)?),
                "property" => doc.properties.push(self.property(child)?),
                "form" => {
                    let index = doc.forms.len();
                    doc.forms.push(self.form(child, index)?);
                }
                "meta" | "metadata" => {}
                _ if is_catch(name) => doc.catches.push(self.catch(child)?),
                _ if UNSUPPORTED.contains(&name) => {
                    tracing::warn!(url = %self.url, element = name, "unsupported document-level element ignored");
                }
                _ => return Err(self.unknown(child, "vxml")),
            }
        }
        Ok(doc)
    }

    fn form(&self, node: Node<'_, '_>, index: usize) -> PResult<Form> {
        let mut form = Form {
            id: node
                .attribute("id")
                .map_or_else(|| format!("$form{index}"), str::to_owned),
            decls: Vec::new(),
            items: Vec::new(),
            catches: Vec::new(),
            filled: Vec::new(),
            properties: Vec::new(),
        };
        for child in node.children().filter(Node::is_element) {
            let name = child.tag_name().name();
            match name {
                "var" | "script" => form.decls.push(Decl::Exec(self.exec(child)?)),
                "property" => form.properties.push(self.property(child)?),
                "filled" => form.filled.push(self.filled(child)?),
                "block" | "field" => {
                    let index = form.items.len();
                    form.items.push(self.item(child, index)?);
                    form.decls.push(Decl::Item(index));
                }
                "grammar" => {
                    tracing::warn!(url = %self.url, "form-level grammars are not supported yet; ignored");
                }
                _ if is_catch(name) => form.catches.push(self.catch(child)?),
                _ if UNSUPPORTED.contains(&name) => {
                    let index = form.items.len();
                    form.items.push(FormItem {
                        name: child
                            .attribute("name")
                            .map_or_else(|| format!("$item{index}"), str::to_owned),
                        expr: child.attribute("expr").map(str::to_owned),
                        cond: child.attribute("cond").map(str::to_owned),
                        kind: ItemKind::Unsupported(name.to_owned()),
                        catches: Vec::new(),
                        properties: Vec::new(),
                    });
                    form.decls.push(Decl::Item(index));
                }
                _ => return Err(self.unknown(child, "form")),
            }
        }
        Ok(form)
    }

    fn item(&self, node: Node<'_, '_>, index: usize) -> PResult<FormItem> {
        let mut item = FormItem {
            name: node
                .attribute("name")
                .map_or_else(|| format!("$item{index}"), str::to_owned),
            expr: node.attribute("expr").map(str::to_owned),
            cond: node.attribute("cond").map(str::to_owned),
            kind: ItemKind::Unsupported(String::new()),
            catches: Vec::new(),
            properties: Vec::new(),
        };
        if node.tag_name().name() == "block" {
            item.kind = ItemKind::Block(self.body(node)?);
            return Ok(item);
        }
        let mut field = Field {
            prompts: Vec::new(),
            grammars: Vec::new(),
            filled: Vec::new(),
            boolean: false,
        };
        if let Some(ty) = node.attribute("type") {
            let grammar = Grammar::builtin(ty)
                .map_err(|e| self.error(node, format!("field type {ty:?}: {e}")))?;
            field.boolean = grammar.is_boolean();
            field.grammars.push(Arc::new(grammar));
        }
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
                "prompt" => field.prompts.push(self.prompt(child)?),
                "audio" | "value" | "break" => implicit.extend(self.pieces_of(child)?),
                "grammar" => field.grammars.push(Arc::new(self.grammar(child)?)),
                "filled" => field.filled.push(self.filled(child)?),
                "property" => item.properties.push(self.property(child)?),
                "option" | "link" => {
                    return Err(
                        self.error(child, format!("<{name}> in <field> is not supported yet"))
                    );
                }
                _ if is_catch(name) => item.catches.push(self.catch(child)?),
                _ => return Err(self.unknown(child, "field")),
            }
        }
        if !is_blank(&implicit) {
            field.prompts.push(Prompt {
                bargein: None,
                count: 1,
                cond: None,
                content: implicit,
            });
        }
        item.kind = ItemKind::Field(field);
        Ok(item)
    }

    fn grammar(&self, node: Node<'_, '_>) -> PResult<Grammar> {
        if let Some(src) = node.attribute("src") {
            if src.starts_with("builtin:") {
                return Grammar::builtin(src).map_err(|e| self.error(node, e.to_string()));
            }
            return Err(self.error(node, format!("external grammar {src} is not supported yet")));
        }
        Grammar::from_srgs_node(node).map_err(|e| self.error(node, e.to_string()))
    }

    fn property(&self, node: Node<'_, '_>) -> PResult<(String, String)> {
        match (node.attribute("name"), node.attribute("value")) {
            (Some(n), Some(v)) => Ok((n.to_owned(), v.to_owned())),
            _ => Err(self.error(node, "<property> needs name and value")),
        }
    }

    fn catch(&self, node: Node<'_, '_>) -> PResult<Catch> {
        let events = match node.tag_name().name() {
            "catch" => node
                .attribute("event")
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            short => vec![short.to_owned()],
        };
        let count = match node.attribute("count") {
            None => 1,
            Some(c) => c
                .trim()
                .parse()
                .ok()
                .filter(|c| *c > 0)
                .ok_or_else(|| self.error(node, format!("count={c:?}")))?,
        };
        Ok(Catch {
            events,
            count,
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
        let count = match node.attribute("count") {
            None => 1,
            Some(c) => c
                .trim()
                .parse()
                .ok()
                .filter(|c| *c > 0)
                .ok_or_else(|| self.error(node, format!("count={c:?}")))?,
        };
        Ok(Prompt {
            bargein: node.attribute("bargein").map(|b| b == "true"),
            count,
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
            "enumerate" => return Err(self.error(child, "<enumerate> is not supported yet")),
            _ if SSML_CONTAINERS.contains(&name) => self.pieces(child)?,
            _ if SSML_IGNORED.contains(&name) => Vec::new(),
            _ => return Err(self.unknown(child, "prompt")),
        })
    }

    /// Executable content of a block, catch, filled or if.
    fn body(&self, node: Node<'_, '_>) -> PResult<Vec<Exec>> {
        let mut out = Vec::new();
        let mut loose = Vec::new();
        let flush = |loose: &mut Vec<Piece>, out: &mut Vec<Exec>| {
            if is_blank(loose) {
                loose.clear();
            } else {
                out.push(Exec::Prompt(Prompt {
                    bargein: None,
                    count: 1,
                    cond: None,
                    content: std::mem::take(loose),
                }));
            }
        };
        for child in node.children() {
            if child.is_text() {
                push_text(&mut loose, child.text().unwrap_or(""));
                continue;
            }
            if !child.is_element() {
                continue;
            }
            match child.tag_name().name() {
                "audio" | "value" | "break" => loose.extend(self.pieces_of(child)?),
                _ => {
                    flush(&mut loose, &mut out);
                    out.push(self.exec(child)?);
                }
            }
        }
        flush(&mut loose, &mut out);
        Ok(out)
    }

    fn exec(&self, node: Node<'_, '_>) -> PResult<Exec> {
        let attr = |n: &str| node.attribute(n).map(str::to_owned);
        let name = node.tag_name().name();
        Ok(match name {
            "var" => Exec::Var {
                name: attr("name").ok_or_else(|| self.error(node, "<var> without name"))?,
                expr: attr("expr"),
            },
            "assign" => Exec::Assign {
                name: attr("name").ok_or_else(|| self.error(node, "<assign> without name"))?,
                expr: attr("expr").ok_or_else(|| self.error(node, "<assign> without expr"))?,
            },
            "script" => {
                if node.attribute("src").is_some() {
                    Exec::Unsupported("script src".into())
                } else {
                    Exec::Script(node.text().unwrap_or("").to_owned())
                }
            }
            "prompt" => Exec::Prompt(self.prompt(node)?),
            "if" => self.if_chain(node)?,
            "goto" => Exec::Goto {
                next: attr("next"),
                expr: attr("expr"),
                nextitem: attr("nextitem"),
                expritem: attr("expritem"),
            },
            "submit" => Exec::Submit {
                next: attr("next"),
                expr: attr("expr"),
                namelist: node.attribute("namelist").map(|n| split_names(Some(n))),
                post: node
                    .attribute("method")
                    .is_some_and(|m| m.eq_ignore_ascii_case("post")),
            },
            "clear" => Exec::Clear(split_names(node.attribute("namelist"))),
            "reprompt" => Exec::Reprompt,
            "throw" => Exec::Throw {
                event: attr("event"),
                eventexpr: attr("eventexpr"),
                message: attr("message"),
                messageexpr: attr("messageexpr"),
            },
            "log" => Exec::Log {
                label: attr("label"),
                expr: attr("expr"),
                content: self.pieces(node)?,
            },
            "exit" => Exec::Exit {
                expr: attr("expr"),
                namelist: split_names(node.attribute("namelist")),
            },
            "disconnect" => Exec::Disconnect,
            "elseif" | "else" => return Err(self.error(node, format!("<{name}> outside <if>"))),
            _ if UNSUPPORTED.contains(&name) => Exec::Unsupported(name.to_owned()),
            _ => {
                return Err(self.unknown(
                    node,
                    node.parent_element().map_or("?", |p| p.tag_name().name()),
                ));
            }
        })
    }

    fn if_chain(&self, node: Node<'_, '_>) -> PResult<Exec> {
        let mut branches = vec![(
            Some(
                node.attribute("cond")
                    .ok_or_else(|| self.error(node, "<if> without cond"))?
                    .to_owned(),
            ),
            Vec::new(),
        )];
        let mut loose = Vec::new();
        for child in node.children() {
            let current = &mut branches.last_mut().expect("at least one branch").1;
            if child.is_text() {
                push_text(&mut loose, child.text().unwrap_or(""));
                continue;
            }
            if !child.is_element() {
                continue;
            }
            let name = child.tag_name().name();
            if matches!(name, "audio" | "value" | "break") {
                loose.extend(self.pieces_of(child)?);
                continue;
            }
            if is_blank(&loose) {
                loose.clear();
            } else {
                current.push(Exec::Prompt(Prompt {
                    bargein: None,
                    count: 1,
                    cond: None,
                    content: std::mem::take(&mut loose),
                }));
            }
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
        if !is_blank(&loose) {
            let current = &mut branches.last_mut().expect("at least one branch").1;
            current.push(Exec::Prompt(Prompt {
                bargein: None,
                count: 1,
                cond: None,
                content: loose,
            }));
        }
        Ok(Exec::If(branches))
    }
}

fn is_catch(name: &str) -> bool {
    matches!(name, "catch" | "noinput" | "nomatch" | "error" | "help")
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
    pieces
        .iter()
        .all(|p| matches!(p, Piece::Text(t) if t.trim().is_empty()))
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
<vxml version="2.1" xmlns="http://www.w3.org/2001/vxml">
  <var name="x" expr="1"/>
  <catch event="error.badfetch"><exit/></catch>
  <form id="f">
    <field name="pin" type="digits">
      <prompt count="2">again <value expr="x"/></prompt>
      <noinput count="2"><reprompt/></noinput>
      <filled><if cond="pin == '1'"><goto next="#g"/><else/><exit/></if></filled>
    </field>
    <block>hello<break time="500ms"/></block>
  </form>
  <form id="g"><block><disconnect/></block></form>
</vxml>"##,
        )
        .expect("valid document");
        assert_eq!(doc.forms.len(), 2);
        assert_eq!(doc.forms[0].items.len(), 2);
        assert_eq!(doc.catches[0].events, vec!["error.badfetch"]);
        let ItemKind::Field(field) = &doc.forms[0].items[0].kind else {
            panic!("field expected")
        };
        assert_eq!(field.prompts[0].count, 2);
        assert_eq!(doc.forms[0].items[0].catches[0].count, 2);
        let Exec::If(branches) = &field.filled[0].body[0] else {
            panic!("if expected")
        };
        assert_eq!(branches.len(), 2);
        assert!(branches[1].0.is_none());
        assert_eq!(doc.forms[0].items[1].name, "$item1");
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
    fn known_but_unsupported_elements_are_deferred() {
        let doc = parse(
            &url(),
            r#"<vxml version="2.0"><form><record name="r"/><block><data src="x"/></block></form></vxml>"#,
        )
        .unwrap();
        assert!(
            matches!(doc.forms[0].items[0].kind, ItemKind::Unsupported(ref n) if n == "record")
        );
    }
}
