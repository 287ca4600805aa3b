//! VoiceXML 2.1 features beyond the W3C suite's coverage, each as a small application run
//! end to end on the sim platform: root documents, subdialogs, menus, links, mixed initiative,
//! record, transfer, `<data>`, `<foreach>`, `<script src>`, events.

mod common;

use std::time::Duration;

use common::Docs;
use vxml_interp::platform::caller::CallerInput;
use vxml_interp::platform::sim::SimPlatform;
use vxml_interp::{Method, TransferKind, TransferOutcome};

fn vxml(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?><vxml version=\"2.1\" xmlns=\"http://www.w3.org/2001/vxml\">{body}</vxml>"
    )
}

fn with_root(root: &str, body: &str) -> String {
    format!("<?xml version=\"1.0\"?><vxml version=\"2.1\" application=\"{root}\">{body}</vxml>")
}

fn dtmf(keys: &str) -> CallerInput {
    CallerInput::Dtmf(keys.into())
}

#[test]
fn application_scope_lives_across_leaves_of_one_root_and_resets_with_another() {
    let root = vxml(
        r##"<var name="visits" expr="0"/>
           <catch event="app.done"><prompt>root caught <value expr="visits"/></prompt><exit/></catch>
           <link event="help"><grammar mode="dtmf" root="r"><rule id="r">*</rule></grammar></link>"##,
    );
    let leaf1 = with_root(
        "root.vxml",
        r##"<form><block><assign name="application.visits" expr="visits + 1"/>
           <goto next="leaf2.vxml"/></block></form>"##,
    );
    let leaf2 = with_root(
        "root.vxml",
        r##"<form><block><assign name="visits" expr="visits + 1"/>
           <prompt>visits <value expr="application.visits"/></prompt><goto next="other.vxml"/></block></form>"##,
    );
    let other = vxml(
        r##"<form><block><prompt>typeof <value expr="typeof visits"/></prompt>
           <goto next="leaf3.vxml"/></block></form>"##,
    );
    let leaf3 = with_root(
        "root.vxml",
        r##"<form><field name="f" type="digits"><prompt>digits</prompt>
           <help><prompt>help from the root link</prompt><throw event="app.done"/></help>
           </field></form>"##,
    );
    let docs = Docs::new(&[
        ("root.vxml", &root),
        ("leaf1.vxml", &leaf1),
        ("leaf2.vxml", &leaf2),
        ("other.vxml", &other),
        ("leaf3.vxml", &leaf3),
    ]);
    let mut p = SimPlatform::with_inputs([dtmf("*")]);
    let exit = docs.run("leaf1.vxml", &mut p);
    assert_eq!(exit.reason, "exit");
    assert_eq!(
        p.texts(),
        [
            "visits 2",
            "typeof undefined",
            "digits",
            "help from the root link",
            "root caught 0"
        ]
    );
    let root_fetches = docs
        .requests
        .borrow()
        .iter()
        .filter(|r| r.url.path() == "/root.vxml")
        .count();
    assert_eq!(
        root_fetches, 2,
        "the root is loaded again only after another application"
    );
}

#[test]
fn subdialog_params_return_namelist_and_returned_events() {
    let main = vxml(
        r##"<catch event="sub.failed"><prompt>caller caught <value expr="_message"/></prompt><exit/></catch>
           <form>
             <var name="greeting" expr="'hi'"/>
             <subdialog name="r" src="sub.vxml">
               <param name="who" expr="greeting + ' bob'"/>
               <filled><prompt>returned <value expr="r.answer"/></prompt></filled>
             </subdialog>
             <subdialog name="bad" src="sub.vxml#fails"/>
           </form>"##,
    );
    let sub = vxml(
        r##"<form id="asks">
             <var name="who"/>
             <var name="answer"/>
             <block><prompt>sub sees <value expr="who"/> and <value expr="typeof greeting"/></prompt>
               <assign name="answer" expr="who.length"/><return namelist="answer"/></block>
           </form>
           <form id="fails"><block><return event="sub.failed" messageexpr="'no luck'"/></block></form>"##,
    );
    let docs = Docs::new(&[("main.vxml", &main), ("sub.vxml", &sub)]);
    let mut p = SimPlatform::default();
    let exit = docs.run("main.vxml", &mut p);
    assert_eq!(exit.reason, "exit");
    assert_eq!(
        p.texts(),
        [
            "sub sees hi bob and undefined",
            "returned 6",
            "caller caught no luck"
        ]
    );
}

#[test]
fn subdialog_fetch_failure_is_badfetch_in_the_caller() {
    let main = vxml(
        r##"<form><subdialog name="s" src="missing.vxml">
             <catch event="error.badfetch.http.404"><prompt>404 at the item</prompt><exit/></catch>
           </subdialog></form>"##,
    );
    let docs = Docs::new(&[("main.vxml", &main)]);
    let mut p = SimPlatform::default();
    assert_eq!(docs.run("main.vxml", &mut p).reason, "exit");
    assert_eq!(p.texts(), ["404 at the item"]);
}

#[test]
fn menu_with_automatic_dtmf_enumerate_and_choices() {
    let doc = vxml(
        r##"<menu id="main" dtmf="true">
             <prompt>Say one of <enumerate/></prompt>
             <choice next="#sales">sales</choice>
             <choice next="#support">technical support</choice>
             <choice event="bye">good bye</choice>
             <noinput><prompt>nothing?</prompt><reprompt/></noinput>
           </menu>
           <form id="sales"><block><prompt>sales here</prompt><goto next="#main"/></block></form>
           <form id="support"><block><prompt>support here</prompt><goto next="#main"/></block></form>
           <catch event="bye"><prompt>bye</prompt><exit/></catch>"##,
    );
    let docs = Docs::new(&[("m.vxml", &doc)]);
    let mut p = SimPlatform::with_inputs([
        dtmf("2"),
        CallerInput::Silence,
        CallerInput::Say("sales".into()),
        dtmf("3"),
    ]);
    assert_eq!(docs.run("m.vxml", &mut p).reason, "exit");
    let texts = p.texts();
    assert_eq!(
        texts[0],
        "Say one of sales 1 technical support 2 good bye 3"
    );
    assert_eq!(texts[1], "support here");
    assert_eq!(texts[3], "nothing?");
    assert!(texts.contains(&"sales here".to_owned()), "{texts:?}");
    assert_eq!(texts.last().map(String::as_str), Some("bye"));
}

#[test]
fn menu_enumerate_template_and_approximate_accept() {
    let doc = vxml(
        r##"<menu accept="approximate">
             <prompt><enumerate>For <value expr="_prompt"/> press <value expr="_dtmf"/>.</enumerate></prompt>
             <choice dtmf="7" next="#news">world news</choice>
           </menu>
           <form id="news"><block><prompt>news</prompt></block></form>"##,
    );
    let docs = Docs::new(&[("m.vxml", &doc)]);
    let mut p = SimPlatform::with_inputs([CallerInput::Say("news".into())]);
    assert_eq!(docs.run("m.vxml", &mut p).reason, "exit");
    assert_eq!(p.texts(), ["For world news press 7.", "news"]);
}

#[test]
fn mixed_initiative_form_grammar_fills_slots_and_initial() {
    let doc = vxml(
        r##"<form>
             <grammar root="trip" version="1.0" tag-format="semantics/1.0">
               <rule id="trip">from <ruleref uri="#city"/><tag>out.from = rules.city;</tag>
                 to <ruleref uri="#city"/><tag>out.to = rules.city;</tag></rule>
               <rule id="city"><one-of><item>boston</item><item>denver</item><item>paris</item></one-of></rule>
             </grammar>
             <initial name="start"><prompt>where to?</prompt></initial>
             <field name="from"><prompt>from?</prompt>
               <grammar root="c" version="1.0"><rule id="c"><one-of><item>boston</item><item>denver</item></one-of></rule></grammar></field>
             <field name="to"><prompt>to?</prompt>
               <grammar root="c" version="1.0"><rule id="c"><one-of><item>boston</item><item>paris</item></one-of></rule></grammar></field>
             <filled mode="all" namelist="from to">
               <prompt>from <value expr="from"/> to <value expr="to"/>, heard <value expr="to$.utterance"/></prompt>
             </filled>
           </form>"##,
    );
    let docs = Docs::new(&[("trip.vxml", &doc)]);
    let mut p = SimPlatform::with_inputs([CallerInput::Say("from denver to paris".into())]);
    assert_eq!(docs.run("trip.vxml", &mut p).reason, "exit");
    assert_eq!(
        p.texts(),
        [
            "where to?",
            "from denver to paris, heard from denver to paris"
        ]
    );
}

#[test]
fn links_leave_the_dialog_as_if_by_goto() {
    let doc = vxml(
        r##"<link next="#operator"><grammar mode="dtmf" root="r"><rule id="r">*0</rule></grammar></link>
           <form><field name="pin" type="digits"><prompt>pin?</prompt></field></form>
           <form id="operator"><block><prompt>operator</prompt></block></form>"##,
    );
    let docs = Docs::new(&[("l.vxml", &doc)]);
    // The field's own grammar comes first: "0" would be a pin; "*0" only the link takes.
    let mut p = SimPlatform::with_inputs([dtmf("*0")]);
    assert_eq!(docs.run("l.vxml", &mut p).reason, "exit");
    assert_eq!(p.texts(), ["pin?", "operator"]);
}

#[test]
fn record_fills_audio_and_shadow_variables_and_submits_multipart() {
    let doc = vxml(
        r##"<form>
             <record name="msg" beep="true" maxtime="10s" finalsilence="2s" type="audio/x-wav">
               <prompt>after the beep</prompt>
               <filled><prompt>got <value expr="msg$.duration"/> ms, <value expr="msg$.size"/> bytes, maxtime <value expr="msg$.maxtime"/></prompt></filled>
             </record>
             <block><audio expr="msg"/><submit next="save" method="post" enctype="multipart/form-data" namelist="msg"/></block>
           </form>"##,
    );
    let saved = vxml("<form><block><prompt>saved</prompt></block></form>");
    let docs = Docs::new(&[("r.vxml", &doc), ("save", &saved)]);
    let mut p = SimPlatform::with_inputs([CallerInput::Record(Duration::from_secs(3))]);
    assert_eq!(docs.run("r.vxml", &mut p).reason, "exit");
    assert_eq!(p.records.len(), 1);
    assert!(p.records[0].beep);
    assert_eq!(p.records[0].maxtime, Duration::from_secs(10));
    assert_eq!(p.records[0].final_silence, Duration::from_secs(2));
    assert_eq!(
        p.texts(),
        [
            "after the beep",
            "got 3000 ms, 48044 bytes, maxtime false",
            "saved"
        ]
    );
    assert!(
        p.played.iter().any(
            |i| matches!(i, vxml_interp::PlayItem::Recording { audio, .. } if audio.len() == 48044)
        ),
        "the recording plays back"
    );
    let requests = docs.requests.borrow();
    let post = requests.iter().find(|r| r.url.path() == "/save").unwrap();
    assert_eq!(post.method, Method::Post);
    let ct = post.content_type.as_deref().unwrap();
    assert!(ct.starts_with("multipart/form-data; boundary="), "{ct}");
    let body = post.body.as_deref().unwrap();
    let text = String::from_utf8_lossy(body);
    assert!(
        text.contains("name=\"msg\"; filename=\"msg.wav\""),
        "{text:.200}"
    );
    assert!(
        body.windows(4).any(|w| w == b"RIFF"),
        "the WAV travels in the body"
    );
}

#[test]
fn record_noinput_and_hangup_keep_the_recording() {
    let doc = vxml(
        r##"<form>
             <record name="msg"><prompt>speak</prompt>
               <noinput count="1"><prompt>silent</prompt></noinput></record>
           </form>
           <catch event="connection.disconnect.hangup"><prompt>kept <value expr="msg$.size > 0"/></prompt><exit/></catch>"##,
    );
    let docs = Docs::new(&[("r.vxml", &doc)]);
    let mut p = SimPlatform::with_inputs([CallerInput::Silence, CallerInput::Hangup]);
    assert_eq!(docs.run("r.vxml", &mut p).reason, "exit");
    assert_eq!(p.texts(), ["speak", "silent", "kept true"]);
}

#[test]
fn transfer_outcomes_fill_the_item_and_blind_transfer_disconnects() {
    let doc = vxml(
        r##"<form>
             <transfer name="t1" dest="sip:201@pbx" bridge="true" connecttimeout="20s" maxtime="60s">
               <filled><prompt>t1 <value expr="t1"/></prompt></filled></transfer>
             <transfer name="t2" destexpr="'tel:+1555' + '0100'" bridge="true" connecttimeout="20s">
               <filled><prompt>t2 <value expr="t2"/> after <value expr="t2$.duration"/></prompt></filled></transfer>
             <transfer name="t3" dest="sip:202@pbx" bridge="false"/>
           </form>
           <catch event="connection.disconnect.transfer"><prompt>transferred</prompt><exit/></catch>"##,
    );
    let docs = Docs::new(&[("t.vxml", &doc)]);
    let mut p = SimPlatform::with_inputs([
        CallerInput::Transfer(TransferOutcome::Busy),
        CallerInput::Silence,
        CallerInput::Silence,
    ]);
    assert_eq!(docs.run("t.vxml", &mut p).reason, "exit");
    assert_eq!(
        p.texts(),
        ["t1 busy", "t2 far_end_disconnect after 2", "transferred"]
    );
    assert_eq!(p.transfers[0].kind, TransferKind::Bridge);
    assert_eq!(p.transfers[0].maxtime, Duration::from_secs(60));
    assert_eq!(p.transfers[1].dest, "tel:+15550100");
    assert_eq!(p.transfers[2].kind, TransferKind::Blind);
}

#[test]
fn data_xml_dom_json_and_foreach() {
    let doc = vxml(
        r##"<form><block>
             <data name="quote" src="quote.xml"/>
             <var name="q" expr="quote.documentElement"/>
             <prompt><value expr="q.getAttribute('symbol')"/> at <value expr="q.getElementsByTagName('price').item(0).firstChild.data"/></prompt>
             <data name="list" src="list.json"/>
             <foreach item="n" array="list.names"><prompt><value expr="n"/></prompt></foreach>
             <prompt>nodes <value expr="q.childNodes.length"/> <value expr="q.firstChild.nodeName"/></prompt>
           </block></form>"##,
    );
    let docs = Docs::new(&[("d.vxml", &doc)])
        .with(
            "quote.xml",
            "<?xml version=\"1.0\"?><quote symbol=\"ACME\"><price>12.5</price><volume>100</volume></quote>",
            "text/xml",
        )
        .with("list.json", r##"{"names": ["ann", "bo"]}"##, "application/json");
    let mut p = SimPlatform::default();
    assert_eq!(docs.run("d.vxml", &mut p).reason, "exit");
    assert_eq!(p.texts(), ["ACME at 12.5", "ann", "bo", "nodes 2 price"]);
}

#[test]
fn data_fetch_failure_and_bad_xml_are_badfetch() {
    let doc = vxml(
        r##"<catch event="error.badfetch"><prompt><value expr="_event"/></prompt></catch>
           <form><block><data name="a" src="nowhere.xml"/></block>
           <block><data name="b" src="bad.xml"/></block></form>"##,
    );
    let docs = Docs::new(&[("d.vxml", &doc)]).with("bad.xml", "<a><b></a>", "text/xml");
    let mut p = SimPlatform::default();
    assert_eq!(docs.run("d.vxml", &mut p).reason, "exit");
    assert_eq!(p.texts(), ["error.badfetch.http.404", "error.badfetch"]);
}

#[test]
fn script_src_runs_mid_block_and_is_fetched_once() {
    let doc = vxml(
        r##"<form><block>
             <prompt>before</prompt>
             <script src="lib.js"/>
             <prompt><value expr="double(21)"/></prompt>
             <script src="lib.js"/>
             <prompt>after <value expr="loaded"/></prompt>
           </block></form>"##,
    );
    let docs = Docs::new(&[("s.vxml", &doc)]).with(
        "lib.js",
        "var loaded = (typeof loaded == 'number') ? loaded + 1 : 1; function double(n) { return 2 * n; }",
        "application/javascript",
    );
    let mut p = SimPlatform::default();
    assert_eq!(docs.run("s.vxml", &mut p).reason, "exit");
    assert_eq!(p.texts(), ["before", "42", "after 2"]);
    let fetches = docs
        .requests
        .borrow()
        .iter()
        .filter(|r| r.url.path() == "/lib.js")
        .count();
    assert_eq!(fetches, 1);
}

#[test]
fn event_counters_count_prefixes_and_clear_resets_them() {
    let doc = vxml(
        r##"<form>
             <field name="f" type="digits">
               <prompt>enter</prompt>
               <catch event="error" count="2"><prompt>second error</prompt><clear namelist="f"/></catch>
               <catch event="error.app"><prompt>first <value expr="_event"/></prompt><throw event="error.app.two"/></catch>
             </field>
             <block><prompt>done <value expr="f"/></prompt></block>
           </form>"##,
    );
    let docs = Docs::new(&[("e.vxml", &doc)]);
    let mut p = SimPlatform::with_inputs([dtmf("1*")]);
    // "1*" is a nomatch for digits; throw error.app instead through a nomatch handler.
    let doc2 = doc.replace(
        "<prompt>enter</prompt>",
        "<prompt>enter</prompt><nomatch><throw event=\"error.app.one\"/></nomatch>",
    );
    let docs2 = Docs::new(&[("e.vxml", &doc2)]);
    let mut p2 = SimPlatform::with_inputs([dtmf("1*"), dtmf("5")]);
    assert_eq!(docs2.run("e.vxml", &mut p2).reason, "exit");
    assert_eq!(
        p2.texts(),
        // After a catch without <reprompt>, the same item is collected again silently.
        ["enter", "first error.app.one", "second error", "done 5"]
    );
    let _ = docs.run("e.vxml", &mut p);
}

#[test]
fn object_is_unsupported_objecttype() {
    let doc = vxml(
        r##"<form><object name="o" classid="method://x"/>
           <catch event="error.unsupported.objecttype"><prompt>no objects</prompt><exit/></catch></form>"##,
    );
    let docs = Docs::new(&[("o.vxml", &doc)]);
    let mut p = SimPlatform::default();
    assert_eq!(docs.run("o.vxml", &mut p).reason, "exit");
    assert_eq!(p.texts(), ["no objects"]);
}

#[test]
fn submit_get_namelist_and_fetch_status_events() {
    let doc = vxml(
        r##"<form><var name="a" expr="'x y'"/><var name="b" expr="2"/>
           <block><submit next="next.vxml" namelist="a b"/></block></form>"##,
    );
    let next = vxml(
        r##"<catch event="error.badfetch.http.500"><prompt>server error</prompt><exit/></catch>
           <form><block><goto next="broken"/></block></form>"##,
    );
    let docs = Docs::new(&[("s.vxml", &doc), ("next.vxml", &next)]);
    let mut p = SimPlatform::default();
    // "broken" is not served: 404, which the 500 catch does not take; the default handler ends.
    let exit = docs.run("s.vxml", &mut p);
    assert!(
        exit.reason.starts_with("error.badfetch.http.404"),
        "{}",
        exit.reason
    );
    let requests = docs.requests.borrow();
    assert_eq!(requests[1].url.query(), Some("a=x+y&b=2"));
}

#[test]
fn external_grammars_with_fragments_srcexpr_and_cache() {
    let doc = vxml(
        r##"<var name="g" expr="'keys.grxml'"/>
           <form>
             <property name="inputmodes" value="dtmf"/>
             <field name="a"><prompt>a</prompt><grammar src="keys.grxml#two"/></field>
             <field name="b"><prompt>b</prompt><grammar srcexpr="g"/></field>
             <field name="c"><prompt>c</prompt><grammar src="words.gram"/><grammar src="keys.grxml"/></field>
             <block><prompt><value expr="a + b + c"/></prompt></block>
           </form>"##,
    );
    let keys = r##"<grammar xmlns="http://www.w3.org/2001/06/grammar" version="1.0" mode="dtmf" root="one">
        <rule id="one" scope="public">1</rule><rule id="two" scope="public">2</rule></grammar>"##;
    let words = "#ABNF 1.0; mode voice; root $w; $w = hello | world;";
    let docs = Docs::new(&[("x.vxml", &doc)])
        .with("keys.grxml", keys, "application/srgs+xml")
        .with("words.gram", words, "application/srgs");
    // c: "hello" is voice, which inputmodes turns off, so the caller's "hello" is a nomatch.
    let mut p = SimPlatform::with_inputs([
        dtmf("2"),
        dtmf("1"),
        CallerInput::Say("hello".into()),
        dtmf("1"),
    ]);
    assert_eq!(docs.run("x.vxml", &mut p).reason, "exit");
    assert_eq!(p.texts(), ["a", "b", "c", "c", "211"]);
    let grammar_fetches = docs
        .requests
        .borrow()
        .iter()
        .filter(|r| r.url.path() == "/keys.grxml")
        .count();
    assert_eq!(
        grammar_fetches, 1,
        "fetched once, its rules picked by fragment"
    );
}

#[test]
fn marks_are_reported_with_the_next_input() {
    let doc = vxml(
        r##"<form><field name="f" type="digits">
             <prompt>first <mark name="one"/> then <mark nameexpr="'tw' + 'o'"/> the end</prompt>
             <filled><prompt>mark <value expr="application.lastresult$.markname"/> at <value expr="lastresult$.marktime"/></prompt></filled>
           </field></form>"##,
    );
    let docs = Docs::new(&[("m.vxml", &doc)]);
    let mut p = SimPlatform::with_inputs([dtmf("5")]);
    assert_eq!(docs.run("m.vxml", &mut p).reason, "exit");
    assert_eq!(p.texts(), ["first", "then", "the end", "mark two at 0"]);
    assert!(
        p.played
            .contains(&vxml_interp::PlayItem::Mark("one".into()))
    );
}

#[test]
fn recursive_subdialogs_are_bounded() {
    // Each level waits for a key, so the loop guard alone would not stop it.
    let doc = vxml(
        r##"<form><field name="k" type="digits"><prompt>k</prompt></field>
             <subdialog name="s" src="r.vxml"/></form>
           <catch event="error.semantic"><prompt>too deep</prompt><exit/></catch>"##,
    );
    let docs = Docs::new(&[("r.vxml", &doc)]);
    let mut p = SimPlatform::with_inputs((0..40).map(|_| dtmf("1")));
    assert_eq!(docs.run("r.vxml", &mut p).reason, "exit");
    assert_eq!(p.texts().last().map(String::as_str), Some("too deep"));
    assert_eq!(p.collects.len(), 32);
}

#[test]
fn interpreter_errors_name_the_document_and_line() {
    let doc = "<?xml version=\"1.0\"?>\n<vxml version=\"2.1\">\n<form>\n<block>\n<prompt>ok</prompt>\n<assign name=\"nope\" expr=\"1\"/>\n</block>\n</form>\n</vxml>";
    let docs = Docs::new(&[("e.vxml", doc)]);
    let mut p = SimPlatform::default();
    let exit = docs.run("e.vxml", &mut p);
    assert_eq!(
        exit.reason,
        "error.semantic: http://app.test/e.vxml:6: assign nope: nope is not declared"
    );
}

#[test]
fn xml_base_changes_what_relative_uris_resolve_against() {
    let doc = "<?xml version=\"1.0\"?><vxml version=\"2.1\" xml:base=\"http://app.test/lib/\"><form><block><goto next=\"next.vxml\"/></block></form></vxml>";
    let next = vxml("<form><block><prompt>in lib</prompt></block></form>");
    let docs = Docs::new(&[("start.vxml", doc), ("lib/next.vxml", &next)]);
    let mut p = SimPlatform::default();
    assert_eq!(docs.run("start.vxml", &mut p).reason, "exit");
    assert_eq!(p.texts(), ["in lib"]);
}

#[test]
fn document_scoped_grammars_of_other_dialogs_are_active() {
    let doc = vxml(
        r##"<form id="main"><field name="pin" type="digits?length=4"><prompt>pin?</prompt></field>
             <block><prompt>pin <value expr="pin"/></prompt></block></form>
           <form id="help">
             <grammar mode="dtmf" root="h" scope="document"><rule id="h">* 9</rule></grammar>
             <block><prompt>help desk</prompt></block></form>
           <menu id="m" scope="document"><choice dtmf="*8" next="#main">main menu</choice></menu>"##,
    );
    let docs = Docs::new(&[("d.vxml", &doc)]);
    let mut p = SimPlatform::with_inputs([dtmf("*9")]);
    assert_eq!(docs.run("d.vxml", &mut p).reason, "exit");
    assert_eq!(p.texts(), ["pin?", "help desk"]);
}

#[test]
fn universal_grammars_throw_their_events() {
    let doc = vxml(
        r##"<property name="universals" value="help exit"/>
           <form><field name="n" type="digits"><prompt>number?</prompt>
             <help><prompt>say some digits</prompt></help></field></form>"##,
    );
    let docs = Docs::new(&[("u.vxml", &doc)]);
    let mut p = SimPlatform::with_inputs([
        CallerInput::Say("help".into()),
        CallerInput::Say("exit".into()),
    ]);
    assert_eq!(docs.run("u.vxml", &mut p).reason, "exit");
    assert_eq!(p.texts(), ["number?", "say some digits"]);
}

#[test]
fn fetchaudio_from_the_element_or_the_property() {
    let doc = vxml(
        r##"<property name="fetchaudiodelay" value="500ms"/>
           <form><block><prompt>one moment</prompt>
             <goto next="next.vxml" fetchaudio="hold.wav"/></block></form>"##,
    );
    let next = vxml(
        r##"<property name="fetchaudio" value="music.wav"/>
           <form><block><submit next="last.vxml"/></block></form>"##,
    );
    let last = vxml("<form><block><prompt>done</prompt></block></form>");
    let docs = Docs::new(&[("f.vxml", &doc), ("next.vxml", &next), ("last.vxml", &last)]);
    let mut p = SimPlatform::default();
    assert_eq!(docs.run("f.vxml", &mut p).reason, "exit");
    assert_eq!(p.texts(), ["one moment", "done"]);
    let urls: Vec<&str> = p.fetch_audio.iter().map(|a| a.url.path()).collect();
    assert_eq!(urls, ["/hold.wav", "/music.wav"]);
    assert_eq!(p.fetch_audio[0].delay, Duration::from_millis(500));
    assert_eq!(p.fetch_audio[1].delay, Duration::from_secs(2));
    assert_eq!(p.fetch_audio[1].minimum, Duration::from_secs(5));
}
