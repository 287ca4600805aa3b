//! Deposit: the caller hears the owner's active greeting (or the system greeting), a beep, and
//! records; `#` ends the recording and offers review (1 play, 2 send, 3 re-record, `*` cancel,
//! 0 send and reach the operator). Hanging up after recording keeps the message, and so does
//! silence at the review menu. Messages under a second are not kept.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Multipart, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use parley_store::{Greeting, MailError};
use serde::Deserialize;
use tracing::info;

use super::vxml::{doc, goodbye, keys_grammar, say, transfer, url};
use super::{blocking, find_user, refuse, unavailable, vxml};
use crate::Shared;
use crate::phrases::{self, escape};

/// Shorter recordings are not messages (a caller who hung up at the beep).
pub(crate) const MIN_MESSAGE_MS: u32 = 1000;
/// Longest message, as the recorder is told.
const MAX_MESSAGE_SECS: u32 = 300;

#[derive(Deserialize)]
pub(crate) struct Mailbox {
    mailbox: String,
}

/// `GET /vm/deposit?mailbox=U`: greeting, beep, record, review.
pub(crate) async fn document(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<Mailbox>,
) -> Response {
    let s = shared.clone();
    let found = blocking(move || {
        let user = find_user(s.users.as_ref(), &q.mailbox)?;
        let Some(user) = user else {
            return Ok(None);
        };
        let active = s.vm.store.active_greeting(&user.user).ok().flatten();
        Ok::<_, parley_store::Error>(Some((user, active)))
    })
    .await;
    let (user, active) = match found {
        Ok(Ok(Some(x))) => x,
        Ok(Ok(None)) => return refuse(StatusCode::NOT_FOUND, "no such mailbox"),
        Ok(Err(e)) => return unavailable(e),
        Err(r) => return r,
    };
    let mailbox = user.user.as_str();
    let greeting = greeting_prompt(&shared, mailbox, active);
    vxml(deposit_doc(&shared, mailbox, &greeting))
}

/// What a depositor hears before the beep.
fn greeting_prompt(shared: &Shared, mailbox: &str, active: Option<Greeting>) -> String {
    let audio = |g: Greeting, fallback: String| {
        format!(
            "<audio src=\"{}\">{}</audio>",
            escape(&url(
                "/vm/greeting.wav",
                &[("mailbox", mailbox), ("g", g.as_str())]
            )),
            escape(&fallback)
        )
    };
    if let Some(g) = active.filter(|&g| shared.vm.store.has_greeting(mailbox, g)) {
        return audio(g, String::new());
    }
    // The system greeting: the recorded name, else the extension spoken.
    let who = if shared.vm.store.has_greeting(mailbox, Greeting::Name) {
        audio(Greeting::Name, format!("Extension {mailbox}"))
    } else {
        let mut p = vec![phrases::phrase("vm-person-at-extension")];
        p.extend(phrases::digits(mailbox));
        phrases::to_vxml(&p)
    };
    format!("{who}{}", say(&["vm-is-unavailable"]))
}

fn deposit_doc(shared: &Shared, mailbox: &str, greeting: &str) -> String {
    let operator = shared.vm.settings.operator.is_some();
    let greet_keys = if operator { "0#" } else { "#" };
    let review_keys = if operator { "123*0" } else { "123*" };
    let save = "/vm/deposit/save";
    let submit = |names: &str| {
        format!(
            "<submit next=\"{save}\" method=\"post\" enctype=\"multipart/form-data\" namelist=\"{names}\"/>"
        )
    };
    let to_operator = match &shared.vm.settings.operator {
        Some(op) => format!(
            "<if cond=\"greet == '0'\"><goto next=\"{}\"/></if>",
            escape(&url("/vm/deposit/operator", &[("to", op)]))
        ),
        None => String::new(),
    };
    doc(&format!(
        r##"<form id="deposit">
<var name="mailbox" expr="'{mailbox}'"/>
<var name="from" expr="session.connection.remote.uri"/>
<var name="done" expr="false"/>
<catch event="connection.disconnect.hangup">
  <if cond="typeof msg != 'undefined' &amp;&amp; msg != null &amp;&amp; !done">
    <assign name="done" expr="true"/>
    {hangup_submit}
  </if>
  <exit/>
</catch>
<field name="greet">
  <property name="timeout" value="100ms"/>
  <property name="termchar" value=""/>
  <prompt>{greeting}</prompt>
  {greet_grammar}
  <noinput><assign name="greet" expr="'#'"/></noinput>
  <nomatch><assign name="greet" expr="'#'"/></nomatch>
  <filled>{to_operator}</filled>
</field>
<record name="msg" beep="true" maxtime="{MAX_MESSAGE_SECS}s" finalsilence="5s" dtmfterm="true" type="audio/x-wav">
  <prompt count="2">{record_again}</prompt>
  <noinput><prompt>{not_heard}</prompt><goto next="#bye"/></noinput>
</record>
<field name="review">
  <property name="termchar" value=""/>
  <prompt>{review}</prompt>
  {review_grammar}
  <nomatch><prompt>{invalid}</prompt><reprompt/></nomatch>
  <noinput count="3"><assign name="done" expr="true"/>{send_submit}</noinput>
  <noinput><reprompt/></noinput>
  <filled>
    <if cond="review == '1'">
      <prompt><audio expr="msg"/></prompt>
      <clear namelist="review"/>
    <elseif cond="review == '3'"/>
      <clear namelist="msg review"/>
    <elseif cond="review == '*'"/>
      <assign name="done" expr="true"/>
      <prompt>{cancelled}</prompt>
      <goto next="#bye"/>
    <else/>
      <assign name="done" expr="true"/>
      {send_submit}
    </if>
  </filled>
</field>
</form>
<form id="bye"><block><prompt>{goodbye}</prompt><disconnect/></block></form>
"##,
        mailbox = super::vxml::js_str(mailbox),
        hangup_submit = submit("mailbox from msg"),
        send_submit = submit("mailbox from msg review"),
        greet_grammar = keys_grammar(greet_keys),
        review_grammar = keys_grammar(review_keys),
        record_again = say(&["vm-record-message"]),
        not_heard = say(&["vm-not-heard"]),
        review = say(&["vm-review"]),
        invalid = say(&["vm-invalid"]),
        cancelled = say(&["vm-message-cancelled"]),
        goodbye = say(&["vm-goodbye"]),
    ))
}

#[derive(Deserialize)]
pub(crate) struct GreetingQuery {
    mailbox: String,
    g: String,
}

/// `GET /vm/greeting.wav?mailbox=U&g=standard|out-of-office|extended-absence|name`.
pub(crate) async fn greeting_audio(
    State(shared): State<Arc<Shared>>,
    headers: axum::http::HeaderMap,
    Query(q): Query<GreetingQuery>,
) -> Response {
    let Some(g) = Greeting::ALL.into_iter().find(|g| g.as_str() == q.g) else {
        return refuse(StatusCode::BAD_REQUEST, "g must name a greeting");
    };
    if !parley_store::is_valid_user(&q.mailbox) {
        return refuse(StatusCode::BAD_REQUEST, "bad mailbox name");
    }
    let path = shared.vm.store.greeting_path(&q.mailbox, g);
    super::messages::serve_recording(path, &headers).await
}

/// `GET /vm/names/{extension}.wav`: the owner's recorded name (dial by name plays it; 404, and
/// so the caller hears the name spoken by TTS, when none was recorded).
pub(crate) async fn name_audio(
    State(shared): State<Arc<Shared>>,
    headers: axum::http::HeaderMap,
    axum::extract::Path(file): axum::extract::Path<String>,
) -> Response {
    let Some(ext) = file.strip_suffix(".wav") else {
        return refuse(StatusCode::NOT_FOUND, "names are served as EXTENSION.wav");
    };
    let s = shared.clone();
    let ext = ext.to_owned();
    let user = match blocking(move || find_user(s.users.as_ref(), &ext)).await {
        Ok(Ok(Some(u))) => u,
        Ok(Ok(None)) => return refuse(StatusCode::NOT_FOUND, "no such mailbox"),
        Ok(Err(e)) => return unavailable(e),
        Err(r) => return r,
    };
    let path = shared.vm.store.greeting_path(&user.user, Greeting::Name);
    super::messages::serve_recording(path, &headers).await
}

/// An uploaded form: text fields and at most one file.
#[derive(Default, Debug)]
pub(crate) struct Upload {
    pub(crate) fields: Vec<(String, String)>,
    pub(crate) file: Option<(String, Vec<u8>)>,
}

impl Upload {
    pub(crate) fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The file sent as `name`, if that is the one file.
    pub(crate) fn audio(&self, name: &str) -> Option<&[u8]> {
        self.file
            .as_ref()
            .filter(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
    }
}

/// How long reading one upload may take: a slow sender must not hold an upload slot forever.
const UPLOAD_READ: std::time::Duration = std::time::Duration::from_secs(30);

/// Reads a multipart form: at most 16 text fields of 1 KiB and one file (the route's body
/// limit bounds it), within [`UPLOAD_READ`]; anything malformed is a 400 naming the problem.
pub(crate) async fn read_upload(m: Multipart) -> Result<Upload, Response> {
    match tokio::time::timeout(UPLOAD_READ, read_fields(m)).await {
        Ok(r) => r,
        Err(_) => Err(refuse(
            StatusCode::REQUEST_TIMEOUT,
            "bad upload: not received within 30 s",
        )),
    }
}

async fn read_fields(mut m: Multipart) -> Result<Upload, Response> {
    let bad = |why: String| refuse(StatusCode::BAD_REQUEST, &format!("bad upload: {why}"));
    let mut up = Upload::default();
    loop {
        let field = match m.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                return Err(refuse(
                    e.status(),
                    &format!("bad upload: {}", e.body_text()),
                ));
            }
        };
        let name = field.name().unwrap_or_default().to_owned();
        let is_file = field.file_name().is_some();
        let bytes = match field.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return Err(refuse(
                    e.status(),
                    &format!("bad upload: {}", e.body_text()),
                ));
            }
        };
        if is_file {
            if up.file.is_some() {
                return Err(bad("more than one file".into()));
            }
            up.file = Some((name, bytes.to_vec()));
        } else {
            if up.fields.len() >= 16 || bytes.len() > 1024 {
                return Err(bad(format!("field {name:?} too large or too many fields")));
            }
            let v = String::from_utf8(bytes.to_vec())
                .map_err(|_| bad(format!("field {name:?} is not UTF-8")))?;
            up.fields.push((name, v));
        }
    }
    Ok(up)
}

/// `POST /vm/deposit/save` (multipart: mailbox, from, msg, review): stores the message, then
/// answers; 0 at review goes on to the operator.
pub(crate) async fn save(State(shared): State<Arc<Shared>>, m: Multipart) -> Response {
    let up = match read_upload(m).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let Some(mailbox) = up.field("mailbox").map(str::to_owned) else {
        return refuse(StatusCode::BAD_REQUEST, "bad upload: no mailbox field");
    };
    let from = up.field("from").unwrap_or("").to_owned();
    let Some(audio) = up.audio("msg").map(<[u8]>::to_vec) else {
        return refuse(StatusCode::BAD_REQUEST, "bad upload: no msg file");
    };
    let s = shared.clone();
    let user = match blocking(move || find_user(s.users.as_ref(), &mailbox)).await {
        Ok(Ok(Some(u))) => u,
        Ok(Ok(None)) => return refuse(StatusCode::NOT_FOUND, "no such mailbox"),
        Ok(Err(e)) => return unavailable(e),
        Err(r) => return r,
    };
    let Some(duration) = parley_store::mailstore::wav_duration_ms(&audio) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "bad upload: msg is not a PCM WAV file",
        );
    };
    let then_operator = up.field("review") == Some("0");
    let operator = shared.vm.settings.operator.clone();
    let next = |prompt: String| match (&operator, then_operator) {
        (Some(op), true) => vxml(transfer(&format!("{prompt}{}", say(&["vm-operator"])), op)),
        _ => vxml(goodbye(&prompt)),
    };
    if duration < MIN_MESSAGE_MS {
        info!(mailbox = %user.user, duration, "voicemail: too short, not kept");
        return next(say(&["vm-too-short"]));
    }
    match deliver(&shared, &user, &from, audio).await {
        Ok(()) => next(say(&["vm-message-sent"])),
        Err(MailError::Full) => next(say(&["vm-mailbox-full"])),
        Err(MailError::BadAudio(why)) => {
            refuse(StatusCode::BAD_REQUEST, &format!("bad upload: msg: {why}"))
        }
        Err(e) => unavailable(e),
    }
}

/// Stores one message durably, then lights the lamp and sends the e-mail notice.
pub(crate) async fn deliver(
    shared: &Arc<Shared>,
    user: &parley_store::UserRecord,
    from: &str,
    audio: Vec<u8>,
) -> Result<(), MailError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let s = shared.clone();
    let mailbox = user.user.clone();
    let from_owned = from.to_owned();
    let m =
        tokio::task::spawn_blocking(move || s.vm.store.deposit(&mailbox, &from_owned, &audio, now))
            .await
            .map_err(|e| MailError::Store(parley_store::Error::Io(std::io::Error::other(e))))??;
    info!(mailbox = %m.mailbox, id = m.id, from, duration_ms = m.duration_ms, "voicemail: message stored");
    shared.vm.mwi.changed(&m.mailbox);
    crate::voicemail::notify_email(shared, user, &m);
    Ok(())
}

#[derive(Deserialize)]
pub(crate) struct OperatorQuery {
    to: String,
}

/// `GET /vm/deposit/operator?to=EXT`: 0 during the greeting.
pub(crate) async fn operator(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<OperatorQuery>,
) -> Response {
    // Only the configured operator: the parameter is not a way to dial anywhere.
    match &shared.vm.settings.operator {
        Some(op) if *op == q.to => vxml(transfer(&say(&["vm-operator"]), op)),
        _ => refuse(StatusCode::BAD_REQUEST, "not the operator"),
    }
}
