//! Semantic Interpretation for Speech Recognition (W3C SISR 1.0), script format: evaluates the
//! tags of a parse tree in ECMAScript.
//!
//! The tree is flattened (without recursion) into enter/tag/exit events, each rule carrying the
//! text it matched, and a small evaluator written in ECMAScript walks them with an explicit
//! stack. Per rule reference it keeps a fresh `out` (an empty object), `rules` (the values of
//! rules referenced so far, and `rules.latest()`) and `meta` (`meta.current()`, `meta.NAME`,
//! `meta.latest()`, each with `text` and `score`). A tag runs as
//! `new Function('$e', 'with ($e) { ... }')`, compiled once per distinct tag per evaluation, so
//! `out = ...` assigns the rule's variable. A rule whose `out` no tag assigned or modified has
//! the text it matched as its value; the root rule's value is the result.

use boa_engine::{Context, JsValue, Source};

use super::ParseNode;
use super::builtin::is_dtmf_key;
use super::srgs::js_string;

/// Most tags executed in one evaluation.
pub(crate) const MAX_TAGS: usize = 10_000;
/// Deepest rule nesting in a tree.
pub(crate) const MAX_TREE_DEPTH: usize = 256;
/// Most nodes in a tree.
pub(crate) const MAX_TREE_NODES: usize = 200_000;

/// The evaluator; called with the events and the tag budget. Events: `[0, name, text]` enters
/// a rule, `[1, script]` runs a tag, `[2]` leaves the rule.
const EVALUATOR: &str = r#"(function (ev, maxTags) {
  var F = Function, M = Map, keys = Object.keys, create = Object.create;
  var defineProperty = Object.defineProperty, Err = Error;
  var cache = new M(), tags = 0, stack = [], result;
  function frame(name, text) {
    var fr = { name: name, text: text, init: {}, latest: undefined, latestMeta: undefined };
    var rules = {};
    defineProperty(rules, "latest", { value: function () { return fr.latest; } });
    var meta = {};
    defineProperty(meta, "current", { value: function () { return { text: text, score: 1.0 }; } });
    defineProperty(meta, "latest", { value: function () { return fr.latestMeta; } });
    fr.env = create(null);
    fr.env.out = fr.init;
    fr.env.rules = rules;
    fr.env.meta = meta;
    return fr;
  }
  for (var i = 0; i < ev.length; i++) {
    var e = ev[i];
    if (e[0] === 0) {
      stack.push(frame(e[1], e[2]));
    } else if (e[0] === 1) {
      if (++tags > maxTags) throw new Err("more than " + maxTags + " semantic tags");
      var f = cache.get(e[1]);
      if (f === undefined) {
        f = new F("$e", "with ($e) {\n" + e[1] + "\n}");
        cache.set(e[1], f);
      }
      f.call(undefined, stack[stack.length - 1].env);
    } else {
      var done = stack.pop();
      var v = done.env.out;
      if (v === done.init && keys(v).length === 0) v = done.env.$vxvars || done.text;
      if (stack.length === 0) {
        result = v;
      } else {
        var p = stack[stack.length - 1];
        var m = { text: done.text, score: 1.0 };
        p.env.rules[done.name] = v;
        p.env.meta[done.name] = m;
        p.latest = v;
        p.latestMeta = m;
      }
    }
  }
  return result;
})"#;

enum Event<'t> {
    Enter(&'t str, String),
    Tag(&'t str),
    Exit,
}

/// Evaluates the tags of `tree` and returns the root rule's value. Script errors, and trees
/// too deep or too large, are `Err`; the caller sets the context's loop and recursion limits.
pub(crate) fn evaluate(tree: &ParseNode, ctx: &mut Context) -> Result<JsValue, String> {
    let events = flatten(tree)?;
    let mut src = String::from(EVALUATOR);
    src.push_str("([");
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            src.push(',');
        }
        match event {
            Event::Enter(name, text) => {
                src.push_str(&format!("[0,{},{}]", js_string(name), js_string(text)));
            }
            Event::Tag(script) => {
                // Each tag is compiled by boa's recursive parser: bound its nesting first.
                crate::scope::check_source(script).map_err(|e| format!("semantic tag: {e}"))?;
                src.push_str(&format!("[1,{}]", js_string(script)));
            }
            Event::Exit => src.push_str("[2]"),
        }
    }
    src.push_str(&format!("],{MAX_TAGS})"));
    ctx.eval(Source::from_bytes(&src))
        .map_err(|e| format!("semantic interpretation: {e}"))
}

/// The events of `tree` in order, each rule with the text it matched. A tree whose root is not
/// a rule is read as the children of an unnamed rule.
fn flatten(tree: &ParseNode) -> Result<Vec<Event<'_>>, String> {
    enum Work<'t> {
        Node(&'t ParseNode, usize),
        Close,
    }
    let mut events = Vec::new();
    let mut tokens: Vec<&str> = Vec::new();
    let mut open: Vec<(usize, usize)> = Vec::new();
    let mut work = Vec::new();
    if !matches!(tree, ParseNode::Rule { .. }) {
        events.push(Event::Enter("", String::new()));
        open.push((0, 0));
        work.push(Work::Close);
    }
    work.push(Work::Node(tree, 0));
    let (mut nodes, mut tags) = (0usize, 0usize);
    while let Some(item) = work.pop() {
        match item {
            Work::Node(node, depth) => {
                nodes += 1;
                if nodes > MAX_TREE_NODES {
                    return Err(format!("parse tree larger than {MAX_TREE_NODES} nodes"));
                }
                match node {
                    ParseNode::Token(t) => tokens.push(t),
                    ParseNode::Tag(script) => {
                        tags += 1;
                        if tags > MAX_TAGS {
                            return Err(format!("more than {MAX_TAGS} semantic tags"));
                        }
                        events.push(Event::Tag(script));
                    }
                    ParseNode::Rule { name, children } => {
                        if depth >= MAX_TREE_DEPTH {
                            return Err(format!("rules nested deeper than {MAX_TREE_DEPTH}"));
                        }
                        events.push(Event::Enter(name, String::new()));
                        open.push((events.len() - 1, tokens.len()));
                        work.push(Work::Close);
                        work.extend(children.iter().rev().map(|c| Work::Node(c, depth + 1)));
                    }
                }
            }
            Work::Close => {
                if let Some((enter, start)) = open.pop() {
                    let text = join(&tokens[start..]);
                    if let Some(Event::Enter(_, slot)) = events.get_mut(enter) {
                        *slot = text;
                    }
                    events.push(Event::Exit);
                }
            }
        }
    }
    Ok(events)
}

/// A rule's text: its tokens separated by spaces, or run together when they are all DTMF
/// keys (the tree does not say which mode matched, and keys read as `"123"`, not `"1 2 3"`).
fn join(tokens: &[&str]) -> String {
    let keys = tokens.iter().all(|t| {
        let mut chars = t.chars();
        chars.next().is_some_and(is_dtmf_key) && chars.next().is_none()
    });
    tokens.join(if keys { "" } else { " " })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grammar::{Grammar, Match, Semantics};

    fn interpret(g: &Grammar, said: &str) -> Result<String, String> {
        let tree = match g.match_voice(said) {
            Match::Complete {
                semantics: Semantics::Script(tree),
                ..
            } => tree,
            other => return Err(format!("no parse tree: {other:?}")),
        };
        let mut ctx = crate::scope::test_context();
        let value = evaluate(&tree, &mut ctx)?;
        let json = value
            .to_json(&mut ctx)
            .map_err(|e| e.to_string())?
            .map_or_else(|| "undefined".to_owned(), |j| j.to_string());
        Ok(json)
    }

    fn xml(body: &str) -> Grammar {
        Grammar::from_srgs_xml(&format!(
            r#"<grammar xmlns="http://www.w3.org/2001/06/grammar" version="1.0" root="main"
                 tag-format="semantics/1.0">{body}</grammar>"#
        ))
        .expect("grammar compiles")
    }

    #[test]
    fn rules_values_and_latest() {
        // SISR 1.0 §6 style: a pizza order built from rule variables.
        let g = xml(r##"<rule id="main">
                  <ruleref uri="#size"/> <tag>out.size = rules.size;</tag>
                  <ruleref uri="#topping"/> <tag>out.topping = rules.latest();</tag>
                  pizza
                </rule>
                <rule id="size"><one-of>
                  <item>small<tag>out = "S";</tag></item>
                  <item>large<tag>out = "L";</tag></item>
                </one-of></rule>
                <rule id="topping"><one-of><item>ham</item><item>extra cheese</item></one-of></rule>"##);
        assert_eq!(
            interpret(&g, "Large extra cheese pizza").unwrap(),
            r#"{"size":"L","topping":"extra cheese"}"#
        );
    }

    #[test]
    fn untouched_out_is_the_text_and_meta_gives_texts() {
        let g = xml(r##"<rule id="main"><ruleref uri="#city"/>
                  <tag>out = meta.city.text + "|" + meta.current().text + "|" + meta.latest().text;</tag>
                </rule>
                <rule id="city"><one-of><item>new york</item><item>"san francisco"</item></one-of></rule>"##);
        assert_eq!(
            interpret(&g, "san francisco").unwrap(),
            r#""san francisco|san francisco|san francisco""#
        );
        let plain = xml(r#"<rule id="main">hello <tag>var x = 1;</tag> world</rule>"#);
        assert_eq!(
            interpret(&plain, "hello world").unwrap(),
            r#""hello world""#
        );
    }

    #[test]
    fn numbers_and_nested_objects() {
        let g = xml(
            r##"<rule id="main"><item repeat="1-3"><ruleref uri="#digit"/>
                  <tag>out.n = (out.n || 0) * 10 + rules.digit;</tag></item>
                  <tag>out = out.n;</tag></rule>
                <rule id="digit"><one-of>
                  <item>one<tag>out = 1;</tag></item><item>two<tag>out = 2;</tag></item>
                </one-of></rule>"##,
        );
        assert_eq!(interpret(&g, "two one two").unwrap(), "212");
    }

    #[test]
    fn cdata_scripts() {
        let g = xml(
            r#"<rule id="main">go <tag><![CDATA[ out = 1 < 2 && "a" ? "lt" : "ge"; ]]></tag></rule>"#,
        );
        assert_eq!(interpret(&g, "go").unwrap(), r#""lt""#);
    }

    #[test]
    fn literal_tags_become_strings() {
        let g = Grammar::from_srgs_xml(
            r#"<grammar root="main" tag-format="semantics/1.0-literals">
                 <rule id="main"><one-of><item>yes<tag>it's "true"</tag></item><item>no</item></one-of></rule>
               </grammar>"#,
        )
        .unwrap();
        assert_eq!(interpret(&g, "yes").unwrap(), r#""it's \"true\"""#);
    }

    #[test]
    fn script_errors_are_errors() {
        let g = xml(r#"<rule id="main">go <tag>out = nosuchvariable.x;</tag></rule>"#);
        assert!(interpret(&g, "go").unwrap_err().contains("semantic"));
        let g = xml(r#"<rule id="main">go <tag>out = ;</tag></rule>"#);
        assert!(interpret(&g, "go").is_err());
        let g = xml(r#"<rule id="main">go <tag>throw 5;</tag></rule>"#);
        assert!(interpret(&g, "go").is_err());
    }

    #[test]
    fn hostile_trees_are_bounded() {
        let mut deep = ParseNode::Token("x".into());
        for _ in 0..MAX_TREE_DEPTH + 5 {
            deep = ParseNode::Rule {
                name: "r".into(),
                children: vec![deep],
            };
        }
        assert!(evaluate(&deep, &mut crate::scope::test_context()).is_err());
        let many = ParseNode::Rule {
            name: "r".into(),
            children: vec![ParseNode::Tag("out = 1;".into()); MAX_TAGS + 1],
        };
        assert!(evaluate(&many, &mut crate::scope::test_context()).is_err());
        let bare = ParseNode::Tag("out = 7;".into());
        let v = evaluate(&bare, &mut crate::scope::test_context()).unwrap();
        assert_eq!(v, JsValue::from(7));
    }

    #[test]
    fn dtmf_text_runs_keys_together() {
        let g = Grammar::from_srgs_xml(
            r##"<grammar mode="dtmf" root="main"><rule id="main">
                 <ruleref uri="#pin"/><tag>out = "pin:" + rules.pin;</tag> #</rule>
                 <rule id="pin"><item repeat="4">
                 <one-of><item>1</item><item>2</item></one-of></item></rule></grammar>"##,
        )
        .unwrap();
        let Match::Complete {
            semantics: Semantics::Script(tree),
            ..
        } = g.match_dtmf("1212#")
        else {
            panic!("no match");
        };
        let mut ctx = crate::scope::test_context();
        let v = evaluate(&tree, &mut ctx).unwrap();
        assert_eq!(
            v.to_string(&mut ctx).unwrap().to_std_string_escaped(),
            "pin:1212"
        );
    }
}
