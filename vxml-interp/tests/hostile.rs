//! Hostile documents: each ends its own session with an error event, and a normal session on
//! the same thread completes afterwards (nothing panics, aborts, hangs or leaks between calls).

mod common;

use std::collections::HashMap;
use std::time::Duration;

use vxml_interp::platform::sim::SimPlatform;
use vxml_interp::{FetchError, FetchRequest, Fetched, Fetcher, Interpreter};

/// Serves documents from memory as `http://app.test/<name>`.
struct Docs(HashMap<String, String>);

impl Fetcher for Docs {
    async fn fetch(&self, req: FetchRequest) -> Result<Fetched, FetchError> {
        let name = req.url.path().trim_start_matches('/');
        match self.0.get(name) {
            Some(body) => Ok(Fetched {
                url: req.url.clone(),
                status: 200,
                content_type: None,
                body: body.clone().into_bytes(),
            }),
            None => Err(FetchError::Status {
                url: req.url.to_string(),
                status: 404,
            }),
        }
    }
}

fn run(docs: &Docs, start: &str, rt: &tokio::runtime::Runtime) -> (String, SimPlatform) {
    let mut platform = SimPlatform::new(["1"]);
    let exit = rt.block_on(async {
        let mut interp = Interpreter::new(common::session());
        tokio::time::timeout(
            Duration::from_secs(20),
            vxml_interp::run(&mut interp, &mut platform, docs, common::url(start)),
        )
        .await
        .expect("the session ends in time")
    });
    (exit.reason, platform)
}

fn form(body: &str) -> String {
    format!("<vxml version=\"2.1\"><form><block>{body}</block></form></vxml>")
}

#[test]
fn every_hostile_document_ends_its_session_and_the_next_call_completes() {
    let depth = 200_000;
    let nested_ifs = form(&format!(
        "{}{}",
        "<if cond=\"true\">".repeat(depth),
        "</if>".repeat(depth)
    ));
    let nested_grammar = format!(
        "<vxml version=\"2.1\"><form><field name=\"f\"><grammar mode=\"dtmf\" root=\"r\"><rule id=\"r\">{}1{}</rule></grammar></field></form></vxml>",
        "<item>".repeat(depth),
        "</item>".repeat(depth)
    );
    let parens = form(&format!(
        "<if cond=\"{}1{}\"><prompt>x</prompt></if>",
        "(".repeat(5000),
        ")".repeat(5000)
    ));
    let cases: Vec<(&str, String, &str)> = vec![
        ("nested.vxml", nested_ifs, "error.badfetch"),
        ("grammar.vxml", nested_grammar, "error.badfetch"),
        ("parens.vxml", parens, "error.semantic"),
        (
            "promise.vxml",
            form("<script>function f(){ Promise.resolve().then(f); } f();</script>"),
            "error.semantic",
        ),
        (
            "loop.vxml",
            form("<script>while(true){}</script>"),
            "error.semantic",
        ),
        (
            "nestedloops.vxml",
            form("<script>function f(){ var i = 0; while (i &lt; 999999) i++; } for (var j = 0; j &lt; 999999; j++) f();</script>"),
            "error.semantic",
        ),
        (
            "callback.vxml",
            form("<script>[1, 2, 3].forEach(function(){ for (var k = 0; k &lt; 1e9; k++) {} });</script>"),
            "error.semantic",
        ),
        (
            "recursion.vxml",
            form("<script>function r(n){ return r(n+1)+1; } r(0);</script>"),
            "error.semantic",
        ),
        (
            "bigstring.vxml",
            form("<script>var s = 'x'.repeat(2000000000);</script>"),
            "error.semantic",
        ),
        (
            "formless.vxml",
            "<vxml version=\"2.1\"><catch event=\"error\"><prompt>caught</prompt><throw event=\"error.semantic\"/></catch><var name=\"v\" expr=\"nosuchfunction()\"/></vxml>".into(),
            "error.semantic",
        ),
        (
            "goto.vxml",
            form("<goto next=\"goto.vxml\"/>"),
            "error.semantic",
        ),
        (
            "dialogs.vxml",
            "<vxml version=\"2.1\"><form id=\"a\"><block><goto next=\"#b\"/></block></form><form id=\"b\"><block><goto next=\"#a\"/></block></form></vxml>".into(),
            "error.semantic",
        ),
    ];
    let mut docs: HashMap<String, String> = cases
        .iter()
        .map(|(n, d, _)| ((*n).to_owned(), d.clone()))
        .collect();
    docs.insert(
        "normal.vxml".into(),
        "<vxml version=\"2.1\"><form><field name=\"n\" type=\"digits\"><prompt>digit?</prompt></field><block><prompt>got <value expr=\"n\"/></prompt></block></form></vxml>".into(),
    );
    let docs = Docs(docs);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    for (name, _, expected) in &cases {
        let (reason, _) = run(&docs, name, &rt);
        assert!(
            reason.starts_with(expected),
            "{name}: ended with {reason:?}, expected {expected}"
        );
        let (reason, platform) = run(&docs, "normal.vxml", &rt);
        assert_eq!(reason, "exit", "a normal call after {name}");
        assert_eq!(platform.texts(), ["digit?", "got 1"], "after {name}");
    }
}
