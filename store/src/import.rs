//! CSV import of users, and the user list.
//!
//! # Format
//! The first row is the header: column names from `user`, `pin`, `sip_password`,
//! `first_name`, `last_name`, `aliases`, `email`, in any order (case-insensitive). Only
//! `user` is required; an unknown or repeated column rejects the file. Cells are trimmed; a
//! UTF-8 byte-order mark is ignored. `aliases` holds several aliases separated by spaces or
//! `;`.
//!
//! Rows are numbered as a spreadsheet shows them: the header is row 1, the first user row 2.
//!
//! # What a cell means
//! - `pin`, `sip_password`: an empty cell (or a missing column) keeps what is stored, so a
//!   file without secrets can update names and aliases. Import cannot clear a secret. A new
//!   SIP password sets the user's realm to the import realm and stores both HA1s (MD5 and
//!   SHA-256); the password itself is never stored. A PIN that matches the stored hash keeps
//!   the stored hash (so a re-run is `unchanged`). A row without a password keeps the
//!   stored HA1s and the realm they were made for, even if that differs from the import realm.
//! - `first_name`, `last_name`, `aliases`, `email`: a missing column keeps what is stored;
//!   a present column sets the value, so an empty cell clears it.
//!
//! # Validation (all rows first; all or nothing)
//! `user` and each alias: `[0-9A-Za-z._-]{1,32}`. PIN: 4–10 ASCII digits. SIP password: at
//! most [`MAX_SIP_PASSWORD`] bytes, no control characters. Names: at most [`MAX_NAME`]
//! characters, no control characters. Email: at most [`MAX_EMAIL`] bytes,
//! `local@domain.tld` without spaces. At most [`MAX_ALIASES`] aliases per user. A user may
//! appear once per file; a name (user or alias) must not name two users, whether the other
//! is in the file or already stored. The file is at most [`MAX_CSV_BYTES`] bytes and
//! [`MAX_ROWS`] user rows. If any row is bad, nothing is written and the report says which
//! rows are bad (the other rows show what they would have done).
//!
//! # Cost
//! PINs are slow hashes (about 10–30 ms each, spread over the available cores), so a file
//! with many PINs takes a while: checking 10,000 PINs costs a few minutes of CPU.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::secrets::{ha1_md5, ha1_sha256, hash_pin, is_valid_pin, verify_pin};
use crate::{Store, StoreOp, UserRecord, is_valid_user};

/// Largest CSV accepted, in bytes.
pub const MAX_CSV_BYTES: usize = 8 * 1024 * 1024;
/// Most user rows (not counting the header) in one file.
pub const MAX_ROWS: usize = 100_000;
/// Longest first or last name, in characters.
pub const MAX_NAME: usize = 64;
/// Longest email address, in bytes (RFC 5321 path limit).
pub const MAX_EMAIL: usize = 254;
/// Longest SIP password, in bytes.
pub const MAX_SIP_PASSWORD: usize = 128;
/// Most aliases of one user.
pub const MAX_ALIASES: usize = 16;

const COLUMNS: [&str; 7] = [
    "user",
    "pin",
    "sip_password",
    "first_name",
    "last_name",
    "aliases",
    "email",
];

/// What happened to one row (or would have, for a dry run or a file with errors).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RowOutcome {
    Added,
    Updated,
    Unchanged,
    /// The row is bad: why.
    Error(String),
}

/// One line of an [`ImportReport`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowReport {
    /// Spreadsheet row number (header = 1); 0 for a problem with the whole file.
    pub row: usize,
    /// The row's user, if it had one.
    pub user: Option<String>,
    pub outcome: RowOutcome,
}

/// The result of [`import_users`]; `Display` prints one line per row and a summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub rows: Vec<RowReport>,
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Bad rows (and whole-file problems).
    pub errors: usize,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Whether the store now holds the file's users (false for a dry run or any error).
    pub written: bool,
}

impl fmt::Display for RowReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.row == 0 {
            f.write_str("file: ")?;
        } else {
            write!(f, "row {}: ", self.row)?;
        }
        if let Some(u) = &self.user {
            write!(f, "user {u}: ")?;
        }
        match &self.outcome {
            RowOutcome::Added => f.write_str("added"),
            RowOutcome::Updated => f.write_str("updated"),
            RowOutcome::Unchanged => f.write_str("unchanged"),
            RowOutcome::Error(why) => write!(f, "error: {why}"),
        }
    }
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.rows {
            writeln!(f, "{r}")?;
        }
        write!(
            f,
            "{} added, {} updated, {} unchanged, {} error{}; ",
            self.added,
            self.updated,
            self.unchanged,
            self.errors,
            if self.errors == 1 { "" } else { "s" }
        )?;
        if self.errors > 0 {
            f.write_str("nothing written (fix the rows above and run again)")
        } else if self.dry_run {
            f.write_str("dry run: nothing written")
        } else {
            f.write_str("written")
        }
    }
}

impl ImportReport {
    fn file_error(mut self, row: usize, why: String) -> Self {
        self.rows.push(RowReport {
            row,
            user: None,
            outcome: RowOutcome::Error(why),
        });
        self.errors += 1;
        self
    }
}

/// One row as read: `None` keeps what is stored.
struct Parsed {
    row: usize,
    user: String,
    pin: Option<String>,
    password: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    aliases: Option<Vec<String>>,
    email: Option<Option<String>>,
}

/// Imports users from CSV text into `store` (see the module docs for the format and rules);
/// HA1s are made for `realm`. With `dry_run`, validates and reports without writing.
pub fn import_users(store: &dyn Store, csv_text: &str, realm: &str, dry_run: bool) -> ImportReport {
    let report = ImportReport {
        dry_run,
        ..Default::default()
    };
    if csv_text.len() > MAX_CSV_BYTES {
        return report.file_error(
            0,
            format!(
                "file is {} bytes, more than the {MAX_CSV_BYTES} accepted",
                csv_text.len()
            ),
        );
    }
    let csv_text = csv_text.strip_prefix('\u{feff}').unwrap_or(csv_text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(csv_text.as_bytes());
    let mut records = reader.records();

    // Header.
    let header = match records.next() {
        None => return report.file_error(0, "empty file: no header row".into()),
        Some(Err(e)) => return report.file_error(1, format!("unreadable header: {e}")),
        Some(Ok(h)) => h,
    };
    let mut index: HashMap<&'static str, usize> = HashMap::new();
    let mut header_errors = Vec::new();
    for (i, name) in header.iter().enumerate() {
        let lower = name.to_ascii_lowercase();
        match COLUMNS.iter().find(|c| **c == lower) {
            None => header_errors.push(format!(
                "unknown column {name:?} (known: {})",
                COLUMNS.join(", ")
            )),
            Some(c) => {
                if index.insert(c, i).is_some() {
                    header_errors.push(format!("column {c:?} appears twice"));
                }
            }
        }
    }
    if !index.contains_key("user") {
        header_errors.push("no \"user\" column".into());
    }
    if !header_errors.is_empty() {
        return report.file_error(1, header_errors.join("; "));
    }
    let width = header.len();

    // Pass 1: each row on its own.
    let mut report = report;
    let mut parsed: Vec<Parsed> = Vec::new();
    // Per-row reasons, by index into `report.rows`.
    let mut reasons: Vec<Vec<String>> = Vec::new();
    for (i, rec) in records.enumerate() {
        let row = i + 2;
        if i >= MAX_ROWS {
            return report.file_error(0, format!("more than {MAX_ROWS} rows"));
        }
        let rec = match rec {
            Ok(r) => r,
            Err(e) => return report.file_error(row, format!("unreadable CSV: {e}")),
        };
        let cell = |c: &str| index.get(c).map(|&i| rec.get(i).unwrap_or(""));
        let mut why = Vec::new();
        if rec.len() != width {
            why.push(format!("{} cells, header has {width}", rec.len()));
        }
        let user = cell("user").unwrap_or("").to_string();
        if user.is_empty() {
            why.push("no user".into());
        } else if !is_valid_user(&user) {
            why.push(format!("user {user:?} is not 1-32 of 0-9 A-Z a-z . _ -"));
        }
        let pin = cell("pin").filter(|p| !p.is_empty()).map(str::to_string);
        if let Some(p) = &pin
            && !is_valid_pin(p)
        {
            why.push("PIN must be 4 to 10 digits".into());
        }
        let password = cell("sip_password")
            .filter(|p| !p.is_empty())
            .map(str::to_string);
        if let Some(p) = &password {
            if p.len() > MAX_SIP_PASSWORD {
                why.push(format!("SIP password longer than {MAX_SIP_PASSWORD} bytes"));
            }
            if p.chars().any(char::is_control) {
                why.push("SIP password has control characters".into());
            }
        }
        let mut name = |col: &str, label: &str| {
            let v = cell(col)?;
            if v.chars().count() > MAX_NAME {
                why.push(format!("{label} longer than {MAX_NAME} characters"));
            }
            if v.chars().any(char::is_control) {
                why.push(format!("{label} has control characters"));
            }
            Some(v.to_string())
        };
        let first_name = name("first_name", "first name");
        let last_name = name("last_name", "last name");
        let email = cell("email").map(|e| {
            if e.is_empty() {
                None
            } else {
                if !is_valid_email(e) {
                    why.push(format!(
                        "email {e:?} is not an address like name@example.org"
                    ));
                }
                Some(e.to_string())
            }
        });
        let aliases = cell("aliases").map(|a| {
            let list: Vec<String> = a
                .split(|c: char| c == ';' || c.is_whitespace())
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            if list.len() > MAX_ALIASES {
                why.push(format!("more than {MAX_ALIASES} aliases"));
            }
            for (j, al) in list.iter().enumerate() {
                if !is_valid_user(al) {
                    why.push(format!("alias {al:?} is not 1-32 of 0-9 A-Z a-z . _ -"));
                } else if *al == user {
                    why.push(format!("alias {al} is the user itself"));
                } else if list[..j].contains(al) {
                    why.push(format!("alias {al} listed twice"));
                }
            }
            list
        });
        report.rows.push(RowReport {
            row,
            user: (!user.is_empty()).then(|| user.clone()),
            outcome: RowOutcome::Unchanged,
        });
        let ok = why.is_empty();
        reasons.push(why);
        if ok {
            parsed.push(Parsed {
                row,
                user,
                pin,
                password,
                first_name,
                last_name,
                aliases,
                email,
            });
        }
    }
    let slot = |row: usize| row - 2;

    // Pass 2: against each other and the store.
    let stored: BTreeMap<String, UserRecord> = match store.users() {
        Ok(list) => list.into_iter().map(|u| (u.user.clone(), u)).collect(),
        Err(e) => return report.file_error(0, format!("reading the stored users: {e}")),
    };
    let mut first_row: HashMap<&str, usize> = HashMap::new();
    let mut merged: BTreeMap<String, (usize, UserRecord)> = BTreeMap::new();
    let mut pins: Vec<(usize, String, Option<String>)> = Vec::new(); // (row, pin, stored hash)
    for p in &parsed {
        if let Some(&r) = first_row.get(p.user.as_str()) {
            reasons[slot(p.row)].push(format!("user {} is also on row {r}", p.user));
            continue;
        }
        first_row.insert(&p.user, p.row);
        let old = stored.get(&p.user);
        let mut u = old.cloned().unwrap_or_else(|| UserRecord {
            user: p.user.clone(),
            first_name: String::new(),
            last_name: String::new(),
            aliases: Vec::new(),
            email: None,
            pin_hash: None,
            realm: realm.to_string(),
            ha1_md5: None,
            ha1_sha256: None,
        });
        if let Some(v) = &p.first_name {
            u.first_name.clone_from(v);
        }
        if let Some(v) = &p.last_name {
            u.last_name.clone_from(v);
        }
        if let Some(v) = &p.aliases {
            u.aliases.clone_from(v);
        }
        if let Some(v) = &p.email {
            u.email.clone_from(v);
        }
        if let Some(pw) = &p.password {
            u.realm = realm.to_string();
            u.ha1_md5 = Some(ha1_md5(&p.user, realm, pw));
            u.ha1_sha256 = Some(ha1_sha256(&p.user, realm, pw));
        }
        if let Some(pin) = &p.pin {
            pins.push((p.row, pin.clone(), u.pin_hash.clone()));
        }
        merged.insert(p.user.clone(), (p.row, u));
    }

    // Names (users and aliases) after the import: each must name one user.
    let mut owners: BTreeMap<&str, Vec<(&str, bool)>> = BTreeMap::new(); // name -> (owner, is alias)
    for (name, u) in &stored {
        if !merged.contains_key(name) {
            owners.entry(name).or_default().push((name, false));
            for a in &u.aliases {
                owners.entry(a).or_default().push((name, true));
            }
        }
    }
    for (name, (_, u)) in &merged {
        owners.entry(name).or_default().push((name, false));
        for a in &u.aliases {
            owners.entry(a).or_default().push((name, true));
        }
    }
    for (name, list) in &owners {
        if list.len() < 2 {
            continue;
        }
        for &(owner, is_alias) in list {
            let Some((row, _)) = merged.get(owner) else {
                continue;
            };
            for &(other, other_alias) in list {
                if (other, other_alias) == (owner, is_alias) {
                    continue;
                }
                let mine = if is_alias { "alias" } else { "user" };
                let theirs = match (other_alias, merged.get(other)) {
                    (false, Some((r, _))) => format!("user {other} on row {r}"),
                    (false, None) => format!("existing user {other}"),
                    (true, Some((r, _))) => format!("an alias of {other} on row {r}"),
                    (true, None) => format!("an alias of existing user {other}"),
                };
                reasons[slot(*row)].push(format!("{mine} {name} is also {theirs}"));
            }
        }
    }

    // PINs: a PIN that verifies against the stored hash keeps it.
    let pin_kept = par_map(&pins, |(_, pin, old)| {
        old.as_deref().is_some_and(|h| verify_pin(pin, h))
    });
    let mut new_pins: Vec<(usize, String)> = Vec::new();
    for ((row, pin, _), kept) in pins.iter().zip(pin_kept) {
        if !kept {
            new_pins.push((*row, pin.clone()));
        }
    }
    let pin_changed: std::collections::HashSet<usize> = new_pins.iter().map(|(r, _)| *r).collect();

    // Outcomes.
    for (i, r) in report.rows.iter_mut().enumerate() {
        if !reasons[i].is_empty() {
            r.outcome = RowOutcome::Error(reasons[i].join("; "));
            report.errors += 1;
            continue;
        }
        let user = r.user.as_deref().unwrap_or_default();
        let (_, u) = &merged[user];
        r.outcome = match stored.get(user) {
            None => RowOutcome::Added,
            Some(old) if old == u && !pin_changed.contains(&r.row) => RowOutcome::Unchanged,
            Some(_) => RowOutcome::Updated,
        };
        match r.outcome {
            RowOutcome::Added => report.added += 1,
            RowOutcome::Updated => report.updated += 1,
            _ => report.unchanged += 1,
        }
    }
    if report.errors > 0 || dry_run {
        return report;
    }

    // Write: hash new PINs, then one transaction with every changed user.
    let hashes = par_map(&new_pins, |(_, pin)| hash_pin(pin));
    let mut by_row: HashMap<usize, &mut UserRecord> =
        merged.values_mut().map(|(r, u)| (*r, u)).collect();
    for ((row, _), h) in new_pins.iter().zip(hashes) {
        if let Some(u) = by_row.get_mut(row) {
            u.pin_hash = Some(h);
        }
    }
    let changed: Vec<UserRecord> = merged
        .into_values()
        .filter(|(_, u)| stored.get(&u.user) != Some(u))
        .map(|(_, u)| u)
        .collect();
    if !changed.is_empty()
        && let Err(e) = store.apply(&[StoreOp::PutUsers(changed)])
    {
        return report.file_error(0, format!("writing the users: {e}"));
    }
    report.written = true;
    report
}

/// A plain shape check: `local@domain.tld`, no spaces or control characters, one `@`.
fn is_valid_email(e: &str) -> bool {
    if e.len() > MAX_EMAIL || e.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain.contains('.')
}

/// Maps `f` over `items` on up to 8 threads (slow hashes), keeping the order.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    if items.len() < 2 || threads == 1 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|c| s.spawn(move || c.iter().map(f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// A table of users: user, name, aliases, email, and whether a PIN and a SIP password are
/// set (never the secrets themselves).
pub fn format_user_list(users: &[UserRecord]) -> String {
    let header = ["USER", "NAME", "ALIASES", "EMAIL", "PIN", "SIP PASSWORD"];
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    let rows: Vec<[String; 6]> = users
        .iter()
        .map(|u| {
            [
                u.user.clone(),
                format!("{} {}", u.first_name, u.last_name)
                    .trim()
                    .to_string(),
                u.aliases.join(" "),
                u.email.clone().unwrap_or_default(),
                yes_no(u.pin_hash.is_some()),
                yes_no(u.ha1_md5.is_some() || u.ha1_sha256.is_some()),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                l.push_str(c);
                l.extend(std::iter::repeat_n(' ', w - c.chars().count() + 2));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&header);
    for r in &rows {
        line(&r.each_ref().map(String::as_str));
    }
    out.push_str(&format!(
        "{} user{}\n",
        users.len(),
        if users.len() == 1 { "" } else { "s" }
    ));
    out
}
