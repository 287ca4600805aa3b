//! Prompt selection (count and cond) and rendering of prompt content to [`PlayItem`]s.

use std::sync::Arc;

use boa_engine::{JsString, JsValue};

use crate::action::PlayItem;
use crate::document::{Choice, Piece, Prompt};
use crate::scope::{Scope, Scopes, ScriptError};

/// The prompts to play on the `counter`th visit of a form item (VoiceXML 2.0 §4.1.6): among
/// those whose `cond` holds, the ones with the highest `count` not above `counter`.
pub(crate) fn select<'a>(
    prompts: &'a [Prompt],
    counter: u32,
    scopes: &mut Scopes,
) -> Result<Vec<&'a Prompt>, ScriptError> {
    let mut eligible = Vec::new();
    for prompt in prompts {
        let holds = match &prompt.cond {
            Some(cond) => scopes.eval_bool(cond)?,
            None => true,
        };
        if holds {
            eligible.push(prompt);
        }
    }
    let Some(best) = eligible
        .iter()
        .map(|p| p.count)
        .filter(|c| *c <= counter)
        .max()
    else {
        return Ok(Vec::new());
    };
    Ok(eligible.into_iter().filter(|p| p.count == best).collect())
}

/// Renders prompt content; audio URLs resolve against `base`; `<enumerate>` walks `choices`;
/// `recording` finds the audio of a recording object by its id.
pub(crate) fn render(
    pieces: &[Piece],
    base: &url::Url,
    choices: Option<&[Choice]>,
    scopes: &mut Scopes,
    recording: impl Fn(u32) -> Option<(Arc<[u8]>, String)> + Copy,
) -> Result<Vec<PlayItem>, ScriptError> {
    let mut out = Vec::new();
    // Adjacent text and values form one utterance.
    let mut text = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(t) => text.push_str(t),
            Piece::Value(expr) => text.push_str(&scopes.eval_string(expr)?),
            Piece::Break(time) => {
                end_text(&mut out, &mut text);
                out.push(PlayItem::Break(*time));
            }
            Piece::Mark { name, nameexpr } => {
                let name = match (name, nameexpr) {
                    (Some(n), _) => n.clone(),
                    (None, Some(expr)) => scopes.eval_string(expr)?,
                    (None, None) => continue,
                };
                end_text(&mut out, &mut text);
                out.push(PlayItem::Mark(name));
            }
            Piece::Enumerate(template) => {
                let Some(choices) = choices else {
                    continue;
                };
                for choice in choices {
                    let dtmf = choice.dtmf.clone().unwrap_or_default();
                    if template.is_empty() {
                        // The platform's default: the choice text, then its key.
                        text.push(' ');
                        text.push_str(&choice.text);
                        if !dtmf.is_empty() {
                            text.push_str(&format!(" {dtmf}"));
                        }
                        text.push(' ');
                        continue;
                    }
                    scopes.set(
                        Scope::Anonymous,
                        "_prompt",
                        JsValue::from(JsString::from(choice.text.as_str())),
                    )?;
                    scopes.set(
                        Scope::Anonymous,
                        "_dtmf",
                        JsValue::from(JsString::from(dtmf.as_str())),
                    )?;
                    end_text(&mut out, &mut text);
                    out.extend(render(template, base, None, scopes, recording)?);
                }
            }
            Piece::Audio {
                src,
                expr,
                fallback,
            } => {
                end_text(&mut out, &mut text);
                let target = match (src, expr) {
                    (Some(src), _) => Some(src.clone()),
                    (None, Some(expr)) => {
                        let value = scopes.eval(expr)?;
                        if let Some(obj) = value.as_object()
                            && let Some(id) = scopes.get_property(&obj, "$vxrecording").as_number()
                            && let Some((audio, mime_type)) = recording(id as u32)
                        {
                            out.push(PlayItem::Recording { audio, mime_type });
                            continue;
                        }
                        // An expr that yields nothing plays the fallback (VoiceXML 2.1 §4.1.3).
                        if value.is_undefined() || value.is_null() {
                            None
                        } else {
                            Some(scopes.string_of(&value)?)
                        }
                    }
                    (None, None) => None,
                };
                let fallback_items = render(fallback, base, choices, scopes, recording)?;
                let fallback_text = flatten(&fallback_items);
                match target.and_then(|t| base.join(&t).ok()) {
                    Some(url) => out.push(PlayItem::Audio { url, fallback_text }),
                    // No playable source: the fallback content is what the caller hears.
                    None => out.extend(fallback_items),
                }
            }
        }
    }
    end_text(&mut out, &mut text);
    Ok(out)
}

fn end_text(out: &mut Vec<PlayItem>, text: &mut String) {
    let words: Vec<&str> = text.split_whitespace().collect();
    if !words.is_empty() {
        out.push(PlayItem::Text(words.join(" ")));
    }
    text.clear();
}

/// Text of rendered items (audio fallback as text); `None` when there is none.
fn flatten(items: &[PlayItem]) -> Option<String> {
    let parts: Vec<&str> = items
        .iter()
        .filter_map(|item| match item {
            PlayItem::Text(t) => Some(t.as_str()),
            PlayItem::Audio { fallback_text, .. } => fallback_text.as_deref(),
            PlayItem::Break(_) | PlayItem::Recording { .. } | PlayItem::Mark(_) => None,
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn prompt(count: u32, cond: Option<&str>, text: &str) -> Prompt {
        Prompt {
            bargein: None,
            count,
            cond: cond.map(str::to_owned),
            content: vec![Piece::Text(text.into())],
        }
    }

    #[test]
    fn selects_by_count_and_cond() {
        let mut scopes = Scopes::new();
        let prompts = [
            prompt(1, None, "first"),
            prompt(2, None, "second"),
            prompt(2, Some("false"), "hidden"),
            prompt(2, None, "second too"),
        ];
        let texts = |ps: Vec<&Prompt>| -> Vec<String> {
            ps.iter()
                .map(|p| match &p.content[0] {
                    Piece::Text(t) => t.clone(),
                    _ => String::new(),
                })
                .collect()
        };
        assert_eq!(texts(select(&prompts, 1, &mut scopes).unwrap()), ["first"]);
        assert_eq!(
            texts(select(&prompts, 5, &mut scopes).unwrap()),
            ["second", "second too"]
        );
    }

    #[test]
    fn renders_values_audio_and_breaks() {
        let mut scopes = Scopes::new();
        scopes
            .declare(Scope::Document, "n", JsValue::from(3))
            .unwrap();
        let base = url::Url::parse("http://h/app/doc.vxml").unwrap();
        let pieces = [
            Piece::Text("you have ".into()),
            Piece::Value("n".into()),
            Piece::Text(" messages".into()),
            Piece::Break(Duration::from_millis(300)),
            Piece::Audio {
                src: Some("beep.wav".into()),
                expr: None,
                fallback: vec![Piece::Text("beep".into())],
            },
        ];
        let items = render(&pieces, &base, None, &mut scopes, |_| None).unwrap();
        assert_eq!(
            items,
            vec![
                PlayItem::Text("you have 3 messages".into()),
                PlayItem::Break(Duration::from_millis(300)),
                PlayItem::Audio {
                    url: url::Url::parse("http://h/app/beep.wav").unwrap(),
                    fallback_text: Some("beep".into()),
                },
            ]
        );
        assert!(
            render(
                &[Piece::Value("nope".into())],
                &base,
                None,
                &mut scopes,
                |_| None
            )
            .is_err()
        );
    }
}
