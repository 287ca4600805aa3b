//! `<data>` results as ECMAScript values: an XML body becomes a read-only tree with the subset
//! of DOM Level 2 Core that VoiceXML 2.1 §5.2 asks for; a JSON body (a documented extension)
//! becomes plain objects.
//!
//! The XML is parsed by roxmltree (depth and node count checked without recursion), turned
//! into a compact JSON array form, and built into JS objects by one helper whose prototypes
//! carry the DOM methods, so each node costs one small object.

use boa_engine::JsValue;

use crate::document::too_deep;
use crate::scope::{Scopes, ScriptError, js_string_literal};

/// Deepest element nesting accepted in a `<data>` document.
const MAX_DEPTH: usize = 64;
/// Most nodes in a `<data>` document.
const MAX_NODES: u32 = 200_000;

/// Builds nodes from `[type, name, attrs, children]` arrays (1 element, 3 text, 4 cdata,
/// 8 comment, 7 pi); the prototypes hold the DOM methods.
const BUILDER: &str = r#"(function(){
function NodeList(a){this._a=a;this.length=a.length;}
NodeList.prototype.item=function(i){return (i>=0&&i<this._a.length)?this._a[i]:null;};
function N(){}
N.prototype.hasChildNodes=function(){return this.childNodes.length>0;};
N.prototype.hasAttributes=function(){return !!this.attributes&&this.attributes.length>0;};
N.prototype.getElementsByTagName=function(n){var out=[];(function walk(x){for(var i=0;i<x.childNodes._a.length;i++){var c=x.childNodes._a[i];if(c.nodeType===1){if(n==='*'||c.nodeName===n)out.push(c);walk(c);}}})(this);return new NodeList(out);};
N.prototype.getElementsByTagNameNS=function(ns,n){var out=[];(function walk(x){for(var i=0;i<x.childNodes._a.length;i++){var c=x.childNodes._a[i];if(c.nodeType===1){if((ns==='*'||c.namespaceURI===ns)&&(n==='*'||c.localName===n))out.push(c);walk(c);}}})(this);return new NodeList(out);};
N.prototype.getAttribute=function(n){var a=this.getAttributeNode(n);return a?a.value:'';};
N.prototype.getAttributeNode=function(n){if(!this.attributes)return null;for(var i=0;i<this.attributes._a.length;i++){if(this.attributes._a[i].name===n)return this.attributes._a[i];}return null;};
N.prototype.hasAttribute=function(n){return this.getAttributeNode(n)!==null;};
N.prototype.getAttributeNS=function(ns,n){if(!this.attributes)return '';for(var i=0;i<this.attributes._a.length;i++){var a=this.attributes._a[i];if(a.localName===n&&a.namespaceURI===ns)return a.value;}return '';};
N.prototype.substringData=function(o,c){return this.data.substring(o,o+c);};
function attrs(o,el){var list=[];for(var i=0;i<o.length;i++){var a=new N();a.nodeType=2;a.name=a.nodeName=o[i][0];a.localName=o[i][1];a.namespaceURI=o[i][2];a.value=a.nodeValue=o[i][3];a.specified=true;a.ownerElement=el;a.childNodes=new NodeList([]);list.push(a);}var nl=new NodeList(list);nl.getNamedItem=function(n){for(var i=0;i<list.length;i++){if(list[i].name===n)return list[i];}return null;};return nl;}
function build(t,parent,doc){var n=new N();n.nodeType=t[0];n.parentNode=parent;n.ownerDocument=doc;
if(t[0]===1){n.nodeName=n.tagName=t[1];n.localName=t[4];n.namespaceURI=t[5];n.nodeValue=null;n.attributes=attrs(t[2],n);var kids=[];for(var i=0;i<t[3].length;i++)kids.push(build(t[3][i],n,doc));n.childNodes=new NodeList(kids);}
else{n.nodeName=t[0]===3?'#text':(t[0]===4?'#cdata-section':(t[0]===8?'#comment':t[1]));n.data=n.nodeValue=t[2];n.length=t[2].length;n.childNodes=new NodeList([]);}
return n;}
function link(n){var k=n.childNodes._a;n.firstChild=k.length?k[0]:null;n.lastChild=k.length?k[k.length-1]:null;for(var i=0;i<k.length;i++){k[i].previousSibling=i>0?k[i-1]:null;k[i].nextSibling=i+1<k.length?k[i+1]:null;link(k[i]);}}
return function(json){var tree=JSON.parse(json);var doc=new N();doc.nodeType=9;doc.nodeName='#document';doc.nodeValue=null;doc.parentNode=null;doc.ownerDocument=null;
var root=build(tree,doc,doc);doc.childNodes=new NodeList([root]);doc.documentElement=root;link(doc);return doc;};
})()"#;

/// Parses a `<data>` body: JSON when the type says so or the body starts with `{`/`[`,
/// else XML.
pub(crate) fn parse(
    text: &str,
    content_type: Option<&str>,
    scopes: &mut Scopes,
) -> Result<JsValue, ScriptError> {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    let json = content_type.is_some_and(|t| t.contains("json"))
        || trimmed.starts_with('{')
        || trimmed.starts_with('[');
    if json {
        crate::scope::check_source(trimmed)?;
        return scopes.eval(&format!("JSON.parse({})", js_string_literal(trimmed)));
    }
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
        ..Default::default()
    };
    let xml = roxmltree::Document::parse_with_options(trimmed, opts)
        .map_err(|e| format!("malformed xml: {e}"))?;
    if too_deep(xml.root_element(), MAX_DEPTH).is_some() {
        return Err(format!("xml nested deeper than {MAX_DEPTH} levels"));
    }
    let mut tree = String::with_capacity(text.len() * 2);
    encode(xml.root_element(), &mut tree);
    // The builder is compiled once per thread and called with the tree as JSON.
    scopes.call_helper(
        BUILDER,
        &[JsValue::from(boa_engine::JsString::from(tree.as_str()))],
    )
}

/// The array form of an element (depth is bounded by the caller).
fn encode(node: roxmltree::Node<'_, '_>, out: &mut String) {
    let tag = node.tag_name();
    let qname = match node.lookup_prefix(tag.namespace().unwrap_or("")) {
        Some(p) if !p.is_empty() => format!("{p}:{}", tag.name()),
        _ => tag.name().to_owned(),
    };
    out.push_str("[1,");
    out.push_str(&js_string_literal(&qname));
    out.push_str(",[");
    for (i, a) in node.attributes().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        out.push_str(&js_string_literal(a.name()));
        out.push(',');
        out.push_str(&js_string_literal(a.name()));
        out.push(',');
        out.push_str(&a.namespace().map_or("null".into(), js_string_literal));
        out.push(',');
        out.push_str(&js_string_literal(a.value()));
        out.push(']');
    }
    out.push_str("],[");
    let mut first = true;
    for child in node.children() {
        let start = out.len();
        if !first {
            out.push(',');
        }
        if child.is_element() {
            encode(child, out);
        } else if child.is_text() {
            out.push_str("[3,null,");
            out.push_str(&js_string_literal(child.text().unwrap_or("")));
            out.push(']');
        } else if child.is_comment() {
            out.push_str("[8,null,");
            out.push_str(&js_string_literal(child.text().unwrap_or("")));
            out.push(']');
        } else {
            out.truncate(start);
            continue;
        }
        first = false;
    }
    out.push_str("],");
    out.push_str(&js_string_literal(tag.name()));
    out.push(',');
    out.push_str(&tag.namespace().map_or("null".into(), js_string_literal));
    out.push(']');
}
