//! The VoiceXML documents of the auto-attendant. Every URL they hold is an absolute path on
//! the apps role, and every piece of text from the config or the directory is escaped.
//!
//! Retry state travels in the URLs (`t` = failures so far), so the server keeps nothing per
//! call.

use std::fmt::Write as _;

use super::config::{Menu, NameField, Prompt};
use super::dial_by_name::Entry;

/// Stock phrases (name under /prompts/, fallback text), from the shared phrase list.
pub(crate) mod phrase {
    pub(crate) const INVALID_EXTENSION: (&str, &str) =
        ("aa-invalid-extension", "That extension is not valid.");
    pub(crate) const INVALID_CHOICE: (&str, &str) =
        ("no-match", "Sorry, that is not a valid choice.");
    pub(crate) const TRANSFERRING: (&str, &str) = (
        "aa-transferring",
        "Please hold, while I transfer your call.",
    );
    pub(crate) const DBN_LAST: (&str, &str) = (
        "aa-dbn-last",
        "Please enter the first three letters of the person's last name, using your telephone keypad.",
    );
    pub(crate) const DBN_FIRST: (&str, &str) = (
        "aa-dbn-first",
        "Please enter the first three letters of the person's first name, using your telephone keypad.",
    );
    pub(crate) const DBN_NONE: (&str, &str) = ("aa-dbn-none", "There is no one by that name.");
    pub(crate) const DBN_FOR: (&str, &str) = ("aa-dbn-for", "For");
    pub(crate) const DBN_PRESS: (&str, &str) = ("aa-dbn-press", "press");
    pub(crate) const DBN_NOT_LISTED: (&str, &str) = (
        "aa-dbn-not-listed",
        "If the person you want is not listed, press star.",
    );
    pub(crate) const NO_ANSWER: (&str, &str) = (
        "aa-no-answer",
        "Sorry, nobody is available to take your call.",
    );
    pub(crate) const GOODBYE: (&str, &str) = ("aa-goodbye", "Thank you for calling. Goodbye.");
}

/// How long a transfer rings before giving up: longer than the edge's default no-answer time
/// (20 s), so an unanswered user's voicemail picks up rather than the attendant.
const CONNECT_TIMEOUT: &str = "60s";

/// At most this many people are listed for one name search (keys 1-8).
pub(crate) const MAX_LISTED: usize = 8;

pub(crate) use crate::phrases::escape;

/// `<audio src="/prompts/NAME.wav">text</audio>` for a stock phrase.
fn audio((name, text): (&str, &str)) -> String {
    format!(
        "<audio src=\"/prompts/{}.wav\">{}</audio>",
        escape(name),
        escape(text)
    )
}

/// A menu's own prompt.
fn menu_prompt(p: &Prompt) -> String {
    match p {
        Prompt::Text(t) => escape(t),
        Prompt::File(name) => format!("<audio src=\"/prompts/{}.wav\"/>", escape(name)),
    }
}

/// The recorded name of a user, falling back to their name spoken by TTS.
/// The voicemail application serves recorded names here; a missing one plays the text.
fn name_audio(e: &Entry) -> String {
    format!(
        "<audio src=\"/vm/names/{}.wav\">{}</audio>",
        escape(&e.extension),
        escape(&e.spoken())
    )
}

fn document(properties: &[(&str, String)], vars: &[(&str, String)], body: &str) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<vxml version=\"2.1\" xmlns=\"http://www.w3.org/2001/vxml\">\n",
    );
    for (name, value) in properties {
        let _ = writeln!(
            out,
            "  <property name=\"{name}\" value=\"{}\"/>",
            escape(value)
        );
    }
    for (name, expr) in vars {
        let _ = writeln!(out, "  <var name=\"{name}\" expr=\"{}\"/>", escape(expr));
    }
    out.push_str(body);
    out.push_str("</vxml>\n");
    out
}

/// A JavaScript string literal of `s` (only ever called on validated names: letters, digits,
/// '-' and '_').
fn js_str(s: &str) -> String {
    format!("'{}'", s.replace(['\\', '\''], ""))
}

/// What happens when a caller runs out of retries: the operator, else goodbye.
fn fail_form(operator: Option<&str>) -> String {
    match operator {
        Some(op) => transfer_form("fail", op, "", None),
        None => format!(
            "  <form id=\"fail\">\n    <block>\n      <prompt>{}</prompt>\n      <disconnect/>\n    </block>\n  </form>\n",
            audio(phrase::GOODBYE)
        ),
    }
}

/// A form that says `intro` + "transferring" and bridges the caller to `ext`. If nobody
/// answers (busy, no answer, an unroutable number), the caller hears so and goes to `back`
/// (or is told goodbye when there is no way back).
fn transfer_form(id: &str, ext: &str, intro: &str, back: Option<&str>) -> String {
    let after_failure = match back {
        Some(url) => format!("<goto next=\"{}\"/>", escape(url)),
        None => format!("<prompt>{}</prompt><disconnect/>", audio(phrase::GOODBYE)),
    };
    let no_answer = audio(phrase::NO_ANSWER);
    format!(
        r##"  <form id="{id}">
    <block>
      <prompt>{intro}{transferring}</prompt>
    </block>
    <transfer name="xfer" dest="tel:{ext}" bridge="true" connecttimeout="{CONNECT_TIMEOUT}">
      <filled>
        <if cond="xfer == 'busy' || xfer == 'noanswer' || xfer == 'network_busy' || xfer == 'unknown'">
          <prompt>{no_answer}</prompt>
          {after_failure}
        </if>
        <disconnect/>
      </filled>
    </transfer>
    <catch event="error.connection">
      <prompt>{no_answer}</prompt>
      {after_failure}
    </catch>
  </form>
"##,
        transferring = audio(phrase::TRANSFERRING),
        ext = escape(ext),
    )
}

/// A DTMF grammar whose root accepts the given alternatives (SRGS XML).
fn grammar(alternatives: &str) -> String {
    format!(
        r##"      <grammar mode="dtmf" version="1.0" root="k" xmlns="http://www.w3.org/2001/06/grammar">
        <rule id="k" scope="public">
          <one-of>
{alternatives}          </one-of>
        </rule>
      </grammar>
"##
    )
}

fn items(keys: impl IntoIterator<Item = String>) -> String {
    keys.into_iter()
        .map(|k| format!("            <item>{}</item>\n", escape(&k)))
        .collect()
}

/// The no input and no match handlers shared by every field: count a failure in `t`, give up
/// to `#fail` after `retries`, else play the field again.
fn retry_handlers(retries: u32, invalid: (&str, &str)) -> String {
    format!(
        r##"      <noinput>
        <assign name="t" expr="t + 1"/>
        <if cond="t &gt;= {retries}"><goto next="#fail"/></if>
        <reprompt/>
      </noinput>
      <nomatch>
        <assign name="t" expr="t + 1"/>
        <prompt>{invalid}</prompt>
        <if cond="t &gt;= {retries}"><goto next="#fail"/></if>
        <reprompt/>
      </nomatch>
"##,
        invalid = audio(invalid)
    )
}

/// The document of menu `name`: its prompt, then one key or (with `dial_extensions`) an
/// extension, submitted to `/aa/NAME/key`.
pub(crate) fn menu(name: &str, m: &Menu, tries: u32, operator: Option<&str>) -> String {
    let keys = items(m.keys.keys().map(|k| k.to_string()));
    let alternatives = if m.dial_extensions {
        // Any extension (up to 16 digits, an optional # to end it early) or a single key.
        format!(
            "{keys}            <item><item repeat=\"1-{max}\"><one-of>{digits}</one-of></item><item repeat=\"0-1\">#</item></item>\n",
            max = super::config::MAX_DIGITS,
            digits = (0..=9)
                .map(|d| format!("<item>{d}</item>"))
                .collect::<String>()
        )
    } else {
        keys
    };
    let body = format!(
        r##"  <form id="menu">
    <field name="d">
      <prompt>{prompt}</prompt>
{grammar}{handlers}      <filled>
        <submit next="/aa/{name}/key" namelist="d t" method="get"/>
      </filled>
    </field>
  </form>
{fail}"##,
        prompt = menu_prompt(&m.prompt),
        grammar = grammar(&alternatives),
        handlers = retry_handlers(m.retries, phrase::INVALID_CHOICE),
        name = escape(name),
        fail = fail_form(operator),
    );
    document(
        &[
            ("timeout", format!("{}s", m.timeout.as_secs())),
            ("interdigittimeout", format!("{}s", m.interdigit.as_secs())),
            // '#' is a menu key (and ends an extension through the grammar), not a terminator.
            ("termchar", String::new()),
        ],
        &[("t", tries.to_string())],
        &body,
    )
}

/// A document that only goes to `url`.
pub(crate) fn goto(url: &str) -> String {
    document(
        &[],
        &[],
        &format!(
            "  <form id=\"go\">\n    <block><goto next=\"{}\"/></block>\n  </form>\n",
            escape(url)
        ),
    )
}

/// Says goodbye and hangs up.
pub(crate) fn goodbye() -> String {
    document(&[], &[], &fail_form(None))
}

/// Transfers to `ext` (after `intro`, e.g. the person's name); on failure back to `back`.
pub(crate) fn transfer(ext: &str, intro: Option<&Entry>, back: &str) -> String {
    let intro = intro.map(name_audio).unwrap_or_default();
    document(&[], &[], &transfer_form("xfer", ext, &intro, Some(back)))
}

/// A failed attempt: `phrase`, then `retry` again, or `#fail` when retries are used up.
pub(crate) fn invalid(phrase: (&str, &str), retry: Option<&str>, operator: Option<&str>) -> String {
    let next = retry.unwrap_or("#fail");
    document(
        &[],
        &[],
        &format!(
            "  <form id=\"invalid\">\n    <block>\n      <prompt>{}</prompt>\n      <goto next=\"{}\"/>\n    </block>\n  </form>\n{}",
            audio(phrase),
            escape(next),
            fail_form(operator),
        ),
    )
}

/// Dial by name: asks for the first letters of a name, submitted to `/aa/dbn/find`.
pub(crate) fn dbn_entry(
    menu: &str,
    m: &Menu,
    by: NameField,
    tries: u32,
    operator: Option<&str>,
) -> String {
    let ask = match by {
        NameField::Last => phrase::DBN_LAST,
        NameField::First => phrase::DBN_FIRST,
    };
    let alternatives = format!(
        "            <item>*</item>\n            <item repeat=\"1-{}\"><one-of>{}</one-of></item>\n",
        super::dial_by_name::NAME_KEYS,
        (2..=9)
            .map(|d| format!("<item>{d}</item>"))
            .collect::<String>()
    );
    let body = format!(
        r##"  <form id="dbn">
    <field name="d">
      <prompt>{ask}</prompt>
{grammar}{handlers}      <filled>
        <submit next="/aa/dbn/find" namelist="d m by t" method="get"/>
      </filled>
    </field>
  </form>
{fail}"##,
        ask = audio(ask),
        grammar = grammar(&alternatives),
        handlers = retry_handlers(m.retries, phrase::INVALID_CHOICE),
        fail = fail_form(operator),
    );
    document(
        &[
            ("timeout", format!("{}s", m.timeout.as_secs())),
            ("interdigittimeout", format!("{}s", m.interdigit.as_secs())),
        ],
        &[
            ("t", tries.to_string()),
            ("m", js_str(menu)),
            ("by", js_str(by.as_str())),
        ],
        &body,
    )
}

/// Several people match: "For NAME, press 1 ...", submitted back to `/aa/dbn/find` with `c`.
#[allow(clippy::too_many_arguments)] // the request's state, passed through as it came
pub(crate) fn dbn_choose(
    menu: &str,
    m: &Menu,
    by: NameField,
    keys: &str,
    tries: u32,
    entries: &[Entry],
    operator: Option<&str>,
) -> String {
    let listed = &entries[..entries.len().min(MAX_LISTED)];
    let mut prompt = String::new();
    for (i, e) in listed.iter().enumerate() {
        let _ = write!(
            prompt,
            "{} {} {} {} ",
            audio(phrase::DBN_FOR),
            name_audio(e),
            audio(phrase::DBN_PRESS),
            crate::phrases::to_vxml(&crate::phrases::number(i as u64 + 1))
        );
    }
    prompt.push_str(&audio(phrase::DBN_NOT_LISTED));
    let alternatives =
        items(std::iter::once("*".to_string()).chain((1..=listed.len()).map(|i| i.to_string())));
    let body = format!(
        r##"  <form id="choose">
    <field name="c">
      <prompt>{prompt}</prompt>
{grammar}{handlers}      <filled>
        <submit next="/aa/dbn/find" namelist="d c m by t" method="get"/>
      </filled>
    </field>
  </form>
{fail}"##,
        grammar = grammar(&alternatives),
        handlers = retry_handlers(m.retries, phrase::INVALID_CHOICE),
        fail = fail_form(operator),
    );
    document(
        &[
            ("timeout", format!("{}s", m.timeout.as_secs())),
            ("termchar", String::new()),
        ],
        &[
            ("t", tries.to_string()),
            ("m", js_str(menu)),
            ("by", js_str(by.as_str())),
            ("d", js_str(keys)),
        ],
        &body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attendant::config::AttendantConfig;

    fn parses(doc: &str) {
        roxmltree::Document::parse(doc).unwrap_or_else(|e| panic!("{e}\n{doc}"));
    }

    #[test]
    fn documents_are_well_formed_and_escaped() {
        let mut c = AttendantConfig::default();
        c.menus.get_mut("main").unwrap().prompt = "Press 1 for <sales> & \"support\"".into();
        let a = c.build().unwrap();
        let m = &a.menus["main"];
        let doc = menu("main", m, 0, Some("0"));
        parses(&doc);
        assert!(doc.contains("&lt;sales&gt; &amp; &quot;support&quot;"));
        assert!(
            doc.contains("dest=\"tel:0\""),
            "failures go to the operator"
        );
        let doc = menu("main", m, 2, None);
        parses(&doc);
        assert!(doc.contains("<disconnect/>") && doc.contains("expr=\"2\""));
        let e = Entry {
            extension: "201".into(),
            first_name: "Zoë <x>".into(),
            last_name: "O'Neil & Co".into(),
        };
        for doc in [
            goto("/aa/main?t=0&x=1"),
            goodbye(),
            transfer("201", Some(&e), "/aa/main?t=0"),
            invalid(phrase::INVALID_EXTENSION, Some("/aa/main?t=1"), Some("0")),
            invalid(phrase::INVALID_EXTENSION, None, None),
            dbn_entry("main", m, NameField::Last, 0, None),
            dbn_choose(
                "main",
                m,
                NameField::First,
                "766",
                0,
                &[e.clone(), e.clone()],
                Some("0"),
            ),
        ] {
            parses(&doc);
        }
        let many = vec![e; 12];
        let doc = dbn_choose("main", m, NameField::Last, "766", 0, &many, None);
        assert!(doc.contains("<item>8</item>") && !doc.contains("<item>9</item>"));
    }
}
