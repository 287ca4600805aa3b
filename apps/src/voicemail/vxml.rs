//! Building blocks of the voicemail documents: the envelope, phrases, key menus.
//!
//! Every menu is one `<field>` with an inline DTMF grammar of exactly its keys, so a wrong key
//! is a nomatch the interpreter handles ("That is not a valid choice", then the menu again)
//! and only valid keys ever reach the server; three silences end the call politely.

use crate::phrases::{self, Phrase, escape};

/// A whole document around `body`.
pub(crate) fn doc(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <vxml version=\"2.1\" xmlns=\"http://www.w3.org/2001/vxml\">\n{body}</vxml>\n"
    )
}

/// The named stock phrases as audio elements.
pub(crate) fn say(names: &[&str]) -> String {
    let list: Vec<Phrase> = names.iter().map(|n| phrases::phrase(n)).collect();
    phrases::to_vxml(&list)
}

/// A document that says `prompt` and hangs up.
pub(crate) fn goodbye(prompt: &str) -> String {
    doc(&format!(
        "<form id=\"bye\"><block><prompt bargein=\"false\">{prompt}{}</prompt><disconnect/></block></form>\n",
        say(&["vm-goodbye"])
    ))
}

/// A document that says `prompt` and goes on to `next` (a URL).
pub(crate) fn then_go(prompt: &str, next: &str) -> String {
    doc(&format!(
        "<form id=\"say\"><block><prompt>{prompt}</prompt><goto next=\"{}\"/></block></form>\n",
        escape(next)
    ))
}

/// A document that says `prompt` and transfers the caller to `extension` (bridged through the
/// edge); if the transfer fails, it says goodbye.
pub(crate) fn transfer(prompt: &str, extension: &str) -> String {
    doc(&format!(
        "<form id=\"xfer\">\n<block><prompt>{prompt}</prompt></block>\n\
         <transfer name=\"t\" dest=\"tel:{}\" type=\"bridge\" connecttimeout=\"30s\">\n\
         <filled><prompt>{}</prompt><disconnect/></filled>\n\
         <catch event=\"error\"><prompt>{}</prompt><disconnect/></catch>\n\
         </transfer>\n</form>\n",
        escape(extension),
        say(&["vm-goodbye"]),
        say(&["vm-goodbye"]),
    ))
}

/// The inline grammar of exactly `keys` (each a DTMF key).
pub(crate) fn keys_grammar(keys: &str) -> String {
    let items: String = keys
        .chars()
        .map(|k| format!("<item>{}</item>", escape(&k.to_string())))
        .collect();
    format!(
        "<grammar mode=\"dtmf\" version=\"1.0\" root=\"k\" xmlns=\"http://www.w3.org/2001/06/grammar\">\
         <rule id=\"k\" scope=\"public\"><one-of>{items}</one-of></rule></grammar>"
    )
}

/// One menu: `prelude` once, then `prompt` (repeated on a wrong key or silence); the key
/// pressed goes to `next` as `k=`. Three silences in a row say goodbye.
pub(crate) fn menu(prelude: &str, prompt: &str, keys: &str, next: &str) -> String {
    menu_doc(prelude, prompt, keys, next, "", "k")
}

/// A [`menu`] whose prompt holds `<mark name="msg"/>`: the key also sends `mt=`, how many ms
/// after the mark it came (the platform's barge-in report), or -1 when no mark was heard.
pub(crate) fn menu_after_mark(prelude: &str, prompt: &str, keys: &str, next: &str) -> String {
    menu_doc(
        prelude,
        prompt,
        keys,
        next,
        "<var name=\"mt\" expr=\"-1\"/>\n",
        "k mt",
    )
    .replace(
        "<filled><submit",
        "<filled><if cond=\"application.lastresult$.markname == 'msg'\">\
         <assign name=\"mt\" expr=\"application.lastresult$.marktime\"/></if><submit",
    )
}

fn menu_doc(
    prelude: &str,
    prompt: &str,
    keys: &str,
    next: &str,
    vars: &str,
    namelist: &str,
) -> String {
    doc(&format!(
        "<form id=\"menu\">\n{vars}<block><prompt>{prelude}</prompt></block>\n\
         <field name=\"k\">\n<property name=\"termchar\" value=\"\"/>\n<prompt>{prompt}</prompt>\n{}\n\
         <nomatch><prompt>{}</prompt><reprompt/></nomatch>\n\
         <noinput count=\"3\"><prompt>{}</prompt><disconnect/></noinput>\n\
         <noinput><reprompt/></noinput>\n\
         <filled><submit next=\"{}\" namelist=\"{namelist}\" method=\"get\"/></filled>\n\
         </field>\n</form>\n",
        keys_grammar(keys),
        say(&["vm-invalid"]),
        say(&["vm-goodbye"]),
        escape(next),
    ))
}

/// A form asking for digits ended by `#` (mailbox numbers, PINs, extensions), sent to `next`
/// as `name=` with `method`; three silences say goodbye.
pub(crate) fn digits_form(prompt: &str, name: &str, next: &str, post: bool) -> String {
    let method = if post { "post" } else { "get" };
    format!(
        "<form id=\"{name}\">\n\
         <field name=\"{name}\" type=\"digits\">\n\
         <property name=\"termchar\" value=\"#\"/><property name=\"interdigittimeout\" value=\"5s\"/>\n\
         <prompt>{prompt}</prompt>\n\
         <nomatch><prompt>{}</prompt><reprompt/></nomatch>\n\
         <noinput count=\"3\"><prompt>{}</prompt><disconnect/></noinput>\n\
         <noinput><reprompt/></noinput>\n\
         <filled><submit next=\"{}\" namelist=\"{name}\" method=\"{method}\"/></filled>\n\
         </field>\n</form>\n",
        say(&["vm-invalid"]),
        say(&["vm-goodbye"]),
        escape(next),
    )
}

/// `s` as the inside of a single-quoted ECMAScript string in an XML attribute
/// (`expr="'…'"`): backslashes and quotes escaped for the script, then the XML escaped.
pub(crate) fn js_str(s: &str) -> String {
    escape(&s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A URL with its query pairs encoded.
pub(crate) fn url(path: &str, pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return path.to_owned();
    }
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    format!("{path}?{}", q.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn menus_are_well_formed_and_name_their_keys() {
        let d = menu(
            "",
            &say(&["vm-main-menu"]),
            "12#*",
            &url("/vm/m", &[("s", "a&b")]),
        );
        let x = roxmltree::Document::parse(&d).unwrap();
        let items: Vec<_> = x
            .descendants()
            .filter(|n| n.has_tag_name("item"))
            .map(|n| n.text().unwrap())
            .collect();
        assert_eq!(items, ["1", "2", "#", "*"]);
        let submit = x.descendants().find(|n| n.has_tag_name("submit")).unwrap();
        assert_eq!(submit.attribute("next"), Some("/vm/m?s=a%26b"));
        assert_eq!(js_str("a'b\\c&"), "a\\&apos;b\\\\c&amp;");
        for d in [
            goodbye(""),
            then_go("", "/x?a=1&b=2"),
            transfer("", "0"),
            doc(&digits_form("", "pin", "/vm/login", true)),
        ] {
            roxmltree::Document::parse(&d).unwrap();
        }
    }
}
