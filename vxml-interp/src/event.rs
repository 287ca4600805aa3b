//! VoiceXML events and `<catch>` selection (VoiceXML 2.0 §5.2.4).

use crate::document::Catch;

/// A thrown VoiceXML event (`error.badfetch`, `noinput`, a user event...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxmlEvent {
    /// The dot-separated event name.
    pub name: String,
    /// `_message`, if any.
    pub message: Option<String>,
}

impl VxmlEvent {
    /// An event with a message.
    pub fn new(name: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            message: Some(message.into()),
        }
    }

    /// An event without a message.
    pub fn bare(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            message: None,
        }
    }
}

/// Whether the catch name `pattern` selects `event`: a prefix made of whole dot-separated tokens
/// ("error" selects "error.badfetch.http.404", "err" does not). A trailing "." is ignored.
pub(crate) fn name_matches(pattern: &str, event: &str) -> bool {
    let pattern = pattern.trim_end_matches('.');
    if pattern.is_empty() || pattern == "." {
        return true;
    }
    event == pattern
        || event
            .strip_prefix(pattern)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// Picks the handler for `event` among `candidates`, which are ordered innermost element first
/// and in document order within each element (VoiceXML 2.0 §5.2.4).
///
/// `count(pattern)` is how often an event under the name `pattern` has been thrown for the
/// item at hand (every prefix of a name is counted). Catches whose name does not match or whose
/// `cond` is false are dropped; among the rest, a catch qualifies when its `count` is not above
/// its event's counter; the highest qualifying count wins, and the first such catch in order.
pub(crate) fn select<'a>(
    candidates: &[&'a Catch],
    event: &str,
    count: impl Fn(&str) -> u32,
    mut cond: impl FnMut(&str) -> bool,
) -> Option<&'a Catch> {
    let thrown = |c: &Catch| -> Option<u32> {
        if c.events.is_empty() {
            return Some(count(event));
        }
        c.events
            .iter()
            .filter(|p| name_matches(p, event))
            .map(|p| count(p.trim_end_matches('.')))
            .max()
    };
    let matching: Vec<(&Catch, u32)> = candidates
        .iter()
        .copied()
        .filter_map(|c| thrown(c).map(|n| (c, n)))
        .filter(|(c, _)| c.cond.as_deref().is_none_or(&mut cond))
        .collect();
    let correct = matching
        .iter()
        .filter(|(c, n)| c.count <= *n)
        .map(|(c, _)| c.count)
        .max()?;
    matching
        .into_iter()
        .find(|(c, n)| c.count == correct && c.count <= *n)
        .map(|(c, _)| c)
}

/// What the platform does with an event no `<catch>` handles (VoiceXML 2.0 §5.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DefaultHandler {
    /// noinput, nomatch, help: play the prompts again.
    Reprompt,
    /// cancel: nothing.
    Ignore,
    /// Everything else: end the session.
    Exit,
}

pub(crate) fn default_handler(event: &str) -> DefaultHandler {
    match event {
        "noinput" | "nomatch" | "help" => DefaultHandler::Reprompt,
        "cancel" => DefaultHandler::Ignore,
        _ if name_matches("noinput", event) || name_matches("nomatch", event) => {
            DefaultHandler::Reprompt
        }
        _ => DefaultHandler::Exit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catch(events: &[&str], count: u32, cond: Option<&str>) -> Catch {
        Catch {
            events: events.iter().map(|e| e.to_string()).collect(),
            count,
            cond: cond.map(str::to_owned),
            body: std::rc::Rc::new([]),
        }
    }

    #[test]
    fn prefix_matches_whole_tokens() {
        assert!(name_matches("error", "error.badfetch.http.404"));
        assert!(name_matches("error.badfetch", "error.badfetch"));
        assert!(name_matches("error.", "error.semantic"));
        assert!(!name_matches("err", "error.semantic"));
        assert!(!name_matches("error.bad", "error.badfetch"));
        assert!(name_matches(".", "anything"));
    }

    #[test]
    fn selects_highest_count_not_above_then_first_in_order() {
        let once = catch(&["noinput"], 1, None);
        let twice = catch(&["noinput"], 2, None);
        let other = catch(&["nomatch"], 3, None);
        let outer = catch(&["noinput"], 2, None);
        let list = [&once, &twice, &other, &outer];
        assert!(std::ptr::eq(
            select(&list, "noinput", |_| 1, |_| true).unwrap(),
            &once
        ));
        assert!(std::ptr::eq(
            select(&list, "noinput", |_| 2, |_| true).unwrap(),
            &twice
        ));
        assert!(std::ptr::eq(
            select(&list, "noinput", |_| 9, |_| true).unwrap(),
            &twice
        ));
        assert!(select(&list, "nomatch", |_| 2, |_| true).is_none());
    }

    #[test]
    fn false_conditions_are_skipped_and_empty_event_catches_all() {
        let guarded = catch(&["error"], 1, Some("false"));
        let all = catch(&[], 1, None);
        let list = [&guarded, &all];
        let chosen = select(&list, "error.semantic", |_| 1, |c| c == "true").unwrap();
        assert!(std::ptr::eq(chosen, &all));
    }

    #[test]
    fn defaults() {
        assert_eq!(default_handler("noinput"), DefaultHandler::Reprompt);
        assert_eq!(default_handler("error.badfetch"), DefaultHandler::Exit);
        assert_eq!(
            default_handler("connection.disconnect.hangup"),
            DefaultHandler::Exit
        );
    }
}
