use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

fn tmp_dir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "parley-store-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn user(u: &str) -> UserRecord {
    UserRecord {
        user: u.into(),
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        aliases: vec![format!("{u}.a"), "x".repeat(3)],
        email: Some(format!("{u}@example.org")),
        pin_hash: Some("$argon2id$v=19$m=8192,t=2,p=1$c2FsdA$aGFzaA".into()),
        realm: "pbx.example.org".into(),
        ha1_md5: Some("0".repeat(32)),
        ha1_sha256: None,
    }
}

fn binding(aor: &str, contact: &str, source: &str) -> BindingRecord {
    BindingRecord {
        aor: aor.into(),
        contact: contact.into(),
        expires_unix: 1_700_000_000,
        q: 1000,
        call_id: "c1@host".into(),
        cseq: 42,
        path: vec!["<sip:edge1;lr>".into(), "<sip:edge2;lr>".into()],
        transport: "udp".into(),
        source: source.parse().unwrap(),
        instance: Some("<urn:uuid:00000000-0000-1000-8000-000A95A0E128>".into()),
        user_agent: None,
    }
}

fn subscription(call_id: &str, tag: &str) -> SubscriptionRecord {
    SubscriptionRecord {
        mailbox: "201".into(),
        call_id: call_id.into(),
        local_tag: tag.into(),
        remote_tag: "rt".into(),
        remote_uri: "sip:201@pbx".into(),
        local_uri: "sip:201@pbx".into(),
        remote_target: "sip:201@192.0.2.7:5062".into(),
        route_set: vec![],
        expires_unix: 1_700_003_600,
        next_cseq: 7,
        transport: "tcp".into(),
        source: "192.0.2.7:5062".parse().unwrap(),
        event_id: Some("1".into()),
    }
}

/// Writes a bit of everything, then checks it reads back.
fn exercise(store: &dyn Store) {
    let b1 = binding("201", "sip:201@192.0.2.7:5062", "192.0.2.7:5062");
    let b2 = binding("201", "sip:201@[2001:db8::1]:5060", "[2001:db8::1]:5060");
    let b3 = binding("202", "sip:202@192.0.2.8", "192.0.2.8:5060");
    store
        .apply(&[
            StoreOp::PutUsers(vec![user("202"), user("201")]),
            StoreOp::ReplaceBindings {
                aor: "201".into(),
                bindings: vec![b1.clone(), b2.clone()],
            },
            StoreOp::ReplaceBindings {
                aor: "202".into(),
                bindings: vec![b3.clone()],
            },
            StoreOp::PutSubscription(subscription("s1", "t1")),
            StoreOp::PutSubscription(subscription("s2", "t2")),
        ])
        .unwrap();
    assert_eq!(store.users().unwrap(), vec![user("201"), user("202")]);
    assert_eq!(store.user("201").unwrap(), Some(user("201")));
    assert_eq!(store.user("201.a").unwrap(), None, "aliases are not keys");
    assert_eq!(
        store.bindings().unwrap(),
        vec![b1.clone(), b2.clone(), b3.clone()]
    );
    assert_eq!(
        store.subscriptions().unwrap(),
        vec![subscription("s1", "t1"), subscription("s2", "t2")]
    );
    store
        .apply(&[
            StoreOp::ReplaceBindings {
                aor: "202".into(),
                bindings: vec![],
            },
            StoreOp::RemoveSubscription {
                call_id: "s1".into(),
                local_tag: "t1".into(),
            },
            StoreOp::RemoveSubscription {
                call_id: "absent".into(),
                local_tag: "t".into(),
            },
        ])
        .unwrap();
    assert_eq!(store.bindings().unwrap(), vec![b1, b2]);
    assert_eq!(
        store.subscriptions().unwrap(),
        vec![subscription("s2", "t2")]
    );
}

#[test]
fn memory_store_round_trip() {
    exercise(&MemoryStore::new());
}

#[test]
fn redb_round_trip_survives_reopen() {
    let dir = tmp_dir("reopen");
    {
        let s = RedbStore::open(&dir).unwrap();
        exercise(&s);
    }
    assert!(dir.join("parley.redb").exists());
    let s = RedbStore::open(&dir).unwrap();
    assert_eq!(s.users().unwrap(), vec![user("201"), user("202")]);
    assert_eq!(s.bindings().unwrap().len(), 2);
    assert_eq!(s.subscriptions().unwrap(), vec![subscription("s2", "t2")]);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn shares_one_database_and_second_open_is_locked() {
    let dir = tmp_dir("share");
    let a = RedbStore::open(&dir).unwrap();
    let b = RedbStore::from_database(a.database()).unwrap();
    a.apply(&[StoreOp::PutUsers(vec![user("201")])]).unwrap();
    assert_eq!(b.user("201").unwrap(), Some(user("201")));
    let err = RedbStore::open(&dir).unwrap_err();
    assert!(matches!(err, Error::Locked), "{err:?}");
    assert!(
        err.to_string().contains("in use by a running parley"),
        "{err}"
    );
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn corrupt_values_are_errors() {
    let dir = tmp_dir("corrupt");
    let s = RedbStore::open(&dir).unwrap();
    s.put_raw_user("201", &[codec::VERSION, 0xff, 0xff, 0xff, 0xff, b'a'])
        .unwrap();
    let err = s.user("201").unwrap_err();
    assert!(
        matches!(err, Error::Corrupt { what: "user", .. }),
        "{err:?}"
    );
    assert!(s.users().is_err());
    s.put_raw_user("201", &[]).unwrap();
    assert!(s.user("201").is_err());
    s.put_raw_user("201", &[99]).unwrap();
    assert!(s.user("201").unwrap_err().to_string().contains("version"));
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn decoding_garbage_never_panics() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let valid = [
        codec::encode_user(&user("201")),
        codec::encode_bindings(&[binding("201", "sip:a", "[::1]:5060")]),
        codec::encode_subscription(&subscription("s", "t")),
    ];
    // Every truncation of a valid value fails cleanly; so does one byte too many.
    for v in &valid {
        for n in 0..v.len() {
            let b = &v[..n];
            assert!(codec::decode_user(b).is_err() || n == v.len());
            let _ = codec::decode_bindings(b);
            let _ = codec::decode_subscription(b);
        }
        let mut long = v.clone();
        long.push(0);
        assert!(codec::decode_user(&long).is_err());
        assert!(codec::decode_bindings(&long).is_err());
        assert!(codec::decode_subscription(&long).is_err());
    }
    assert_eq!(codec::decode_user(&valid[0]).unwrap(), user("201"));
    // Random bytes, and valid values with random bytes flipped.
    for i in 0..20_000 {
        let mut b: Vec<u8> = if i % 2 == 0 {
            let n = rng.random_range(0..64);
            (0..n).map(|_| rng.random()).collect()
        } else {
            valid[i % 3].clone()
        };
        if !b.is_empty() {
            b[0] = codec::VERSION;
            let j = rng.random_range(0..b.len());
            b[j] = rng.random();
        }
        let _ = codec::decode_user(&b);
        let _ = codec::decode_bindings(&b);
        let _ = codec::decode_subscription(&b);
    }
}

// ---- import ----

const REALM: &str = "pbx.example.org";

fn import(store: &dyn Store, csv: &str) -> ImportReport {
    import_users(store, csv, REALM, false)
}

#[test]
fn import_any_column_order_then_rerun_is_unchanged() {
    let store = MemoryStore::new();
    let csv = "email,last_name,user,sip_password,aliases,first_name,pin\n\
        ada@example.org,Lovelace,201,s3cret,ada; countess,Ada,1234\n\
        ,Babbage,202,hunter2,charles babbage,Charles,\n";
    let r = import(&store, csv);
    assert_eq!(
        (r.added, r.updated, r.unchanged, r.errors),
        (2, 0, 0, 0),
        "{r}"
    );
    assert!(r.written);
    assert_eq!(
        r.to_string(),
        "row 2: user 201: added\nrow 3: user 202: added\n\
         2 added, 0 updated, 0 unchanged, 0 errors; written"
    );
    let u = store.user("201").unwrap().unwrap();
    assert_eq!(u.first_name, "Ada");
    assert_eq!(u.last_name, "Lovelace");
    assert_eq!(u.aliases, ["ada", "countess"]);
    assert_eq!(u.email.as_deref(), Some("ada@example.org"));
    assert_eq!(u.realm, REALM);
    assert_eq!(u.ha1_md5, Some(ha1_md5("201", REALM, "s3cret")));
    assert_eq!(u.ha1_sha256, Some(ha1_sha256("201", REALM, "s3cret")));
    assert!(verify_pin("1234", u.pin_hash.as_deref().unwrap()));
    let c = store.user("202").unwrap().unwrap();
    assert_eq!((c.email, c.pin_hash), (None, None));

    let before = store.users().unwrap();
    let r = import(&store, csv);
    assert_eq!(
        (r.added, r.updated, r.unchanged, r.errors),
        (0, 0, 2, 0),
        "{r}"
    );
    assert_eq!(
        store.users().unwrap(),
        before,
        "PIN hash kept when it verifies"
    );

    // Empty secrets keep what is stored; a new name updates.
    let r = import(&store, "user,first_name,pin,sip_password\n201,Augusta,,\n");
    assert_eq!((r.updated, r.unchanged), (1, 0), "{r}");
    let u2 = store.user("201").unwrap().unwrap();
    assert_eq!(u2.first_name, "Augusta");
    assert_eq!(u2.pin_hash, u.pin_hash);
    assert_eq!(u2.ha1_md5, u.ha1_md5);
    assert_eq!(u2.aliases, u.aliases, "missing column keeps aliases");

    // A new PIN replaces the hash.
    let r = import(&store, "user,pin\n201,99999\n");
    assert_eq!(r.updated, 1, "{r}");
    let u3 = store.user("201").unwrap().unwrap();
    assert!(verify_pin("99999", u3.pin_hash.as_deref().unwrap()));
}

#[test]
fn bad_row_writes_nothing() {
    let store = MemoryStore::new();
    let csv = "user,pin,email\n201,1234,a@example.org\n2 02,12,nope\n203,,\n";
    let r = import(&store, csv);
    assert_eq!(r.errors, 1, "{r}");
    assert!(!r.written);
    assert!(store.users().unwrap().is_empty());
    let text = r.to_string();
    assert!(text.contains("row 2: user 201: added"), "{text}");
    assert!(
        text.contains("row 3: user 2 02: error: user \"2 02\" is not"),
        "{text}"
    );
    assert!(text.contains("PIN must be 4 to 10 digits"), "{text}");
    assert!(text.contains("email \"nope\""), "{text}");
    assert!(text.ends_with("1 error; nothing written (fix the rows above and run again)"));
}

#[test]
fn dry_run_writes_nothing() {
    let store = MemoryStore::new();
    let r = import_users(&store, "user,pin\n201,1234\n", REALM, true);
    assert_eq!((r.added, r.errors), (1, 0));
    assert!(!r.written && r.dry_run);
    assert!(r.to_string().ends_with("dry run: nothing written"));
    assert!(store.users().unwrap().is_empty());
}

#[test]
fn alias_collisions() {
    let store = MemoryStore::new();
    assert_eq!(import(&store, "user,aliases\n201,ada\n").added, 1);
    // An alias naming an existing user, an existing alias, or a user of the file.
    let r = import(&store, "user,aliases\n202,201\n203,ada\n204,205\n205,\n");
    assert_eq!(r.errors, 4, "{r}");
    let text = r.to_string();
    assert!(
        text.contains("row 2: user 202: error: alias 201 is also existing user 201"),
        "{text}"
    );
    assert!(
        text.contains("row 3: user 203: error: alias ada is also an alias of existing user 201"),
        "{text}"
    );
    assert!(
        text.contains("row 4: user 204: error: alias 205 is also user 205 on row 5"),
        "{text}"
    );
    assert!(
        text.contains("row 5: user 205: error: user 205 is also an alias of 204 on row 4"),
        "{text}"
    );
    assert_eq!(store.users().unwrap().len(), 1);
    // A new user named like an existing alias.
    let r = import(&store, "user\nada\n");
    assert!(
        r.to_string()
            .contains("user ada is also an alias of existing user 201"),
        "{r}"
    );
    // Moving an alias from one user to another in the same file is fine.
    let r = import(&store, "user,aliases\n201,\n202,ada\n");
    assert_eq!((r.updated, r.added, r.errors), (1, 1, 0), "{r}");
    // Within one file and one row.
    let r = import(&store, "user,aliases\n301,x\n302,x\n303,y y\n304,304\n");
    assert_eq!(r.errors, 4, "{r}");
    assert!(r.to_string().contains("alias y listed twice"));
    assert!(r.to_string().contains("alias 304 is the user itself"));
}

#[test]
fn header_errors() {
    let store = MemoryStore::new();
    let r = import(&store, "user,phone\n201,555\n");
    assert_eq!(r.errors, 1);
    assert!(
        r.to_string()
            .starts_with("row 1: error: unknown column \"phone\""),
        "{r}"
    );
    let r = import(&store, "user,pin,PIN\n201,1234,1234\n");
    assert!(
        r.to_string().contains("column \"pin\" appears twice"),
        "{r}"
    );
    let r = import(&store, "first_name\nAda\n");
    assert!(r.to_string().contains("no \"user\" column"), "{r}");
    let r = import(&store, "");
    assert!(r.to_string().starts_with("file: error: empty file"), "{r}");
    assert!(store.users().unwrap().is_empty());
    // BOM and case-insensitive names, quoted cells.
    let r = import(&store, "\u{feff}User,First_Name\n201,\"Lovelace, Ada\"\n");
    assert_eq!(r.added, 1, "{r}");
    assert_eq!(
        store.user("201").unwrap().unwrap().first_name,
        "Lovelace, Ada"
    );
}

#[test]
fn duplicate_user_and_bounds() {
    let store = MemoryStore::new();
    let r = import(&store, "user\n201\n201\n");
    assert!(
        r.to_string()
            .contains("row 3: user 201: error: user 201 is also on row 2"),
        "{r}"
    );
    let r = import(&store, "user,first_name\n201,a,extra\n");
    assert!(r.to_string().contains("3 cells, header has 2"), "{r}");
    let long = "x".repeat(MAX_NAME + 1);
    let r = import(&store, &format!("user,first_name\n201,{long}\n"));
    assert!(r.to_string().contains("first name longer than 64"), "{r}");
    let r = import(&store, &format!("user\n{}\n", "1".repeat(33)));
    assert_eq!(r.errors, 1);
    let big = format!("user\n{}", "1\n".repeat(MAX_CSV_BYTES / 2));
    let r = import(&store, &big);
    assert!(r.to_string().starts_with("file: error: file is"), "{r}");
    let many = format!(
        "user\n{}",
        (0..=MAX_ROWS).map(|i| format!("{i}\n")).collect::<String>()
    );
    let r = import(&store, &many);
    assert!(r.to_string().contains("more than 100000 rows"), "{r}");
    assert!(store.users().unwrap().is_empty());
}

#[test]
fn import_into_redb() {
    let dir = tmp_dir("import");
    let s = RedbStore::open(&dir).unwrap();
    let csv = "user,pin,sip_password\n201,1234,pw\n";
    assert_eq!(import(&s, csv).added, 1);
    drop(s);
    let s = RedbStore::open(&dir).unwrap();
    assert_eq!(import(&s, csv).unchanged, 1);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn user_list_shows_no_secrets() {
    let mut a = user("201");
    a.aliases = vec!["ada".into()];
    let mut b = user("2020");
    b.pin_hash = None;
    b.ha1_md5 = None;
    b.email = None;
    b.aliases = vec![];
    let t = format_user_list(&[a.clone(), b]);
    assert_eq!(
        t,
        "USER  NAME          ALIASES  EMAIL            PIN  SIP PASSWORD\n\
         201   Ada Lovelace  ada      201@example.org  yes  yes\n\
         2020  Ada Lovelace                            no   no\n\
         2 users\n"
    );
    assert!(!t.contains(a.pin_hash.as_deref().unwrap()));
    assert!(!t.contains(a.ha1_md5.as_deref().unwrap()));
}
