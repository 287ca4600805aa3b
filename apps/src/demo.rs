//! The demo application: greet the caller, ask for 1 or 2, say something different for each,
//! then hang up. It exercises the path a real app takes: audio prompts with text fallbacks, an
//! inline SRGS DTMF grammar, noinput/nomatch handling, `<submit>` back to the server (which
//! records the choice in redb) and a server-generated next document.

/// `GET /demo/hello.vxml`: the entry document (number 600 by default).
pub(crate) const HELLO_VXML: &str = r##"<?xml version="1.0" encoding="UTF-8"?>
<vxml version="2.1" xmlns="http://www.w3.org/2001/vxml">
  <property name="timeout" value="5s"/>
  <form id="main">
    <var name="tries" expr="0"/>
    <block>
      <prompt><audio src="/prompts/welcome.wav">Welcome to Parley.</audio></prompt>
    </block>
    <field name="choice">
      <prompt>
        <audio src="/prompts/ask-digit.wav">Press 1 to hear about voice mail, or press 2 to hear about the auto attendant.</audio>
      </prompt>
      <grammar mode="dtmf" version="1.0" root="choice" xmlns="http://www.w3.org/2001/06/grammar">
        <rule id="choice" scope="public">
          <one-of>
            <item>1</item>
            <item>2</item>
          </one-of>
        </rule>
      </grammar>
      <noinput>
        <assign name="tries" expr="tries + 1"/>
        <if cond="tries &gt;= 3">
          <goto next="#goodbye"/>
        </if>
        <prompt><audio src="/prompts/no-input.wav">Sorry, I did not hear anything.</audio></prompt>
        <reprompt/>
      </noinput>
      <nomatch>
        <prompt><audio src="/prompts/no-match.wav">Sorry, that is not a valid choice.</audio></prompt>
        <reprompt/>
      </nomatch>
      <filled>
        <submit next="/demo/choice" namelist="choice" method="get"/>
      </filled>
    </field>
  </form>
  <form id="goodbye">
    <block>
      <prompt><audio src="/prompts/goodbye.wav">Thank you for calling. Goodbye.</audio></prompt>
      <disconnect/>
    </block>
  </form>
</vxml>
"##;

/// The document for a recorded choice (`1` or `2`); `None` for anything else.
pub(crate) fn choice_vxml(choice: &str) -> Option<String> {
    let (audio, text) = match choice {
        "1" => (
            "/prompts/choice-1.wav",
            "You pressed one. Voice mail keeps your messages safe.",
        ),
        "2" => (
            "/prompts/choice-2.wav",
            "You pressed two. The auto attendant answers your calls, and connects every caller to the right person, by extension or by name.",
        ),
        _ => return None,
    };
    Some(format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<vxml version="2.1" xmlns="http://www.w3.org/2001/vxml">
  <form id="choice{choice}">
    <block>
      <prompt><audio src="{audio}">{text}</audio></prompt>
      <prompt><audio src="/prompts/goodbye.wav">Thank you for calling. Goodbye.</audio></prompt>
      <disconnect/>
    </block>
  </form>
</vxml>
"#
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_well_formed_xml() {
        for doc in [
            HELLO_VXML.to_string(),
            choice_vxml("1").unwrap(),
            choice_vxml("2").unwrap(),
        ] {
            let parsed = roxmltree::Document::parse_with_options(&doc, roxml_opts());
            assert!(parsed.is_ok(), "{doc}");
        }
        assert!(choice_vxml("3").is_none());
        assert_ne!(choice_vxml("1"), choice_vxml("2"));
    }

    fn roxml_opts<'a>() -> roxmltree::ParsingOptions<'a> {
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        }
    }
}
