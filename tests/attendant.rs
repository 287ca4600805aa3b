//! The auto-attendant as IVR authors test it: a real `parley serve` with an `[attendant]`
//! section, and `parley vxml run http://APPS/aa/main --input ...` playing the caller on the
//! text platform. Each flow checks the printed prompts and the `[transfer] tel:N` line.

mod common;

use std::process::Command;

use common::*;

const USERS: &str = "user,first_name,last_name\n\
                     201,John,Smith\n\
                     202,Jane,Smythe\n\
                     203,Peter,Jones\n";

fn attendant(schedule_extra: &str) -> String {
    format!(
        r##"
[attendant]
operator = "0"
[attendant.menus.main]
prompt = "Welcome to Example Corp. For sales press 2."
keys = {{ "1" = "transfer 201", "2" = "menu sales", "9" = "dial-by-name", "#" = "disconnect" }}
dial_extensions = true
[attendant.menus.sales]
prompt = "Sales. For orders press 1."
keys = {{ "1" = "transfer 202", "*" = "menu main" }}
[attendant.menus.closed]
prompt = "We are closed today."
keys = {{ "9" = "dial-by-name" }}
[attendant.schedule]
open = "main"
closed = "closed"
{schedule_extra}
"##
    )
}

/// Runs the attendant on the text platform with these caller inputs; its output.
fn run(p: &Parley, inputs: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_parley"));
    cmd.args(["vxml", "run", &format!("http://{}/aa/main", p.apps)]);
    for i in inputs {
        cmd.args(["--input", i]);
    }
    let out = cmd.output().expect("run parley vxml run");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{inputs:?}: exit {:?}\n{text}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The number transferred to, and what was heard before it.
fn transfer_of(out: &str) -> Option<&str> {
    out.lines()
        .find_map(|l| l.strip_prefix("[transfer] tel:"))
        .and_then(|rest| rest.split_whitespace().next())
}

#[test]
fn callers_reach_people_by_key_extension_and_name() {
    let p = Parley::start_full(
        "attendant",
        "",
        "",
        &attendant("hours = [\"daily 00:00-24:00\"]"),
        Some(USERS),
    );

    // A menu key.
    let out = run(&p, &["1"]);
    assert!(out.contains("[tts] Welcome to Example Corp."), "{out}");
    assert_eq!(transfer_of(&out), Some("201"), "{out}");
    assert!(
        out.contains("Please hold, while I transfer your call."),
        "{out}"
    );

    // A submenu, then its key.
    let out = run(&p, &["2", "1"]);
    assert!(out.contains("[tts] Sales. For orders press 1."), "{out}");
    assert_eq!(transfer_of(&out), Some("202"), "{out}");

    // An extension dialled directly, ended by # or by the inter-digit timeout.
    assert_eq!(transfer_of(&run(&p, &["203#"])), Some("203"));
    assert_eq!(transfer_of(&run(&p, &["203"])), Some("203"));

    // Invalid extensions, then the operator when retries run out.
    let out = run(&p, &["299", "298", "297"]);
    assert_eq!(
        out.matches("That extension is not valid.").count(),
        3,
        "{out}"
    );
    assert_eq!(transfer_of(&out), Some("0"), "{out}");
    // Silence: the menu again, then the operator.
    let out = run(&p, &["silence", "silence", "silence"]);
    assert_eq!(
        out.matches("[tts] Welcome to Example Corp.").count(),
        3,
        "{out}"
    );
    assert_eq!(transfer_of(&out), Some("0"), "{out}");

    // Dial by name, one match: "Jon" -> Peter Jones.
    let out = run(&p, &["9", "566"]);
    assert!(
        out.contains("first three letters of the person's last name"),
        "{out}"
    );
    assert!(out.contains("(Peter Jones)"), "{out}");
    assert_eq!(transfer_of(&out), Some("203"), "{out}");

    // Several: "Sm#" -> Smith and Smythe, listed; the caller picks 2.
    let out = run(&p, &["9", "76#", "2"]);
    assert!(
        out.contains("(John Smith)") && out.contains("(Jane Smythe)"),
        "{out}"
    );
    assert!(out.contains("press") && out.contains("not listed"), "{out}");
    assert_eq!(transfer_of(&out), Some("202"), "{out}");

    // No one: told so, then asked again.
    let out = run(&p, &["9", "222", "566"]);
    assert!(out.contains("There is no one by that name."), "{out}");
    assert_eq!(transfer_of(&out), Some("203"), "{out}");

    // The # key hangs up with a goodbye.
    let out = run(&p, &["#"]);
    assert!(
        out.contains("Goodbye.") && out.contains("[disconnect]"),
        "{out}"
    );
    assert_eq!(transfer_of(&out), None);

    // Special mode: new calls get the closed menu; off again, the open one.
    let api = "/api/attendant/special-mode";
    assert_eq!(
        http_post(p.apps, api, r#"{"on":true}"#).unwrap(),
        (200, "{\"on\":true}\n".into())
    );
    let out = run(&p, &["hangup"]);
    assert!(out.contains("[tts] We are closed today."), "{out}");
    assert!(!out.contains("Welcome"), "{out}");
    assert_eq!(http_get(p.apps, api).unwrap().1, "{\"on\":true}\n");
    http_post(p.apps, api, r#"{"on":false}"#).unwrap();
    let out = run(&p, &["hangup"]);
    assert!(out.contains("[tts] Welcome to Example Corp."), "{out}");
    assert!(p.stop().success());
}

#[test]
fn holidays_send_callers_to_the_closed_menu() {
    // Today in every time zone: yesterday, today and tomorrow in UTC.
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let days = [today.yesterday().unwrap(), today, today.tomorrow().unwrap()]
        .map(|d| format!("\"{d}\""))
        .join(", ");
    let p = Parley::start_full(
        "attendant-holiday",
        "",
        "",
        &attendant(&format!(
            "hours = [\"daily 00:00-24:00\"]\nholidays = [{days}]"
        )),
        Some(USERS),
    );
    let out = run(&p, &["9", "566"]);
    assert!(out.contains("[tts] We are closed today."), "{out}");
    assert!(!out.contains("Welcome"), "{out}");
    assert_eq!(
        transfer_of(&out),
        Some("203"),
        "dial by name still works: {out}"
    );
    assert!(p.stop().success());
}
