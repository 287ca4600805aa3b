//! The `[attendant]` section as written in TOML, and its validation into an [`Attendant`]
//! whose menus, keys and actions are known to be consistent.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Deserialize;

use super::schedule::Schedule;

/// The longest extension a caller may dial, and the longest number in the config.
pub(crate) const MAX_DIGITS: usize = 16;

/// The auto-attendant: menus, the operator, and an optional schedule (`[attendant]`).
///
/// The default is one menu, `main`: dial by name on 9, repeat on `*`, and any extension
/// dialled directly. No operator is configured by default (no extension is known to exist),
/// so callers who fail the menu hear "goodbye" and are disconnected.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttendantConfig {
    /// Extension for the `operator` action and for callers who run out of retries.
    pub operator: Option<String>,
    /// Numbers callers may dial directly besides users' extensions (e.g. `["600"]`).
    pub extensions: Vec<String>,
    /// The menus by name (`[attendant.menus.NAME]`).
    pub menus: BTreeMap<String, MenuConfig>,
    /// Which menu answers when (`[attendant.schedule]`); none: every menu is always itself.
    pub schedule: Option<ScheduleConfig>,
    /// The voicemail access number, for the `voicemail` action (set from `[voicemail]`).
    #[serde(skip)]
    pub voicemail_number: String,
    /// The deposit application, for `deposit EXT` (set from `[voicemail]`).
    #[serde(skip)]
    pub deposit_url: String,
}

/// One menu (`[attendant.menus.NAME]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MenuConfig {
    /// Text to speak, or `file:NAME` for `prompts/NAME.wav`.
    pub prompt: String,
    /// Key (`0`-`9`, `*`, `#`) -> action: `transfer EXT`, `menu NAME`, `dial-by-name`
    /// (`dial-by-name first` to search first names), `voicemail`, `deposit EXT`, `operator`,
    /// `repeat`, `disconnect`.
    #[serde(default)]
    pub keys: BTreeMap<String, String>,
    /// Callers may dial any extension (a user's, or one of `attendant.extensions`).
    #[serde(default)]
    pub dial_extensions: bool,
    /// Seconds to wait for the first key.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Seconds to wait between the keys of an extension.
    #[serde(default = "default_interdigit")]
    pub interdigit_secs: u64,
    /// Failures (no input, invalid key or extension) before the operator (or goodbye).
    #[serde(default = "default_retries")]
    pub retries: u32,
}

fn default_timeout() -> u64 {
    5
}
fn default_interdigit() -> u64 {
    3
}
fn default_retries() -> u32 {
    3
}

/// `[attendant.schedule]`: which menu the entry menu becomes, by time.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// The menu of regular hours; callers arriving at `/aa/OPEN` are routed by the schedule.
    pub open: String,
    /// The menu outside `hours`.
    pub closed: String,
    /// The menu on holidays (default: `closed`).
    #[serde(default)]
    pub holiday: Option<String>,
    /// The menu while special mode is on (default: `closed`).
    #[serde(default)]
    pub special: Option<String>,
    /// Regular hours: `"mon-fri 08:30-17:00"`, `"sat 09:00-12:00"`, `"mon,wed 13:00-24:00"`.
    #[serde(default)]
    pub hours: Vec<String>,
    /// Closed days: `"2026-12-25"` (that day) or `"12-25"` (every year).
    #[serde(default)]
    pub holidays: Vec<String>,
}

impl Default for AttendantConfig {
    fn default() -> Self {
        let main = MenuConfig {
            prompt: "Thank you for calling. If you know your party's extension, you may dial it \
                     at any time. To dial by name, press 9. To hear this menu again, press star."
                .into(),
            keys: BTreeMap::from([
                ("9".to_string(), "dial-by-name".to_string()),
                ("*".to_string(), "repeat".to_string()),
            ]),
            dial_extensions: true,
            timeout_secs: default_timeout(),
            interdigit_secs: default_interdigit(),
            retries: default_retries(),
        };
        Self {
            operator: None,
            extensions: Vec::new(),
            menus: BTreeMap::from([("main".to_string(), main)]),
            schedule: None,
            voicemail_number: "100".into(),
            deposit_url: "/vm/deposit".into(),
        }
    }
}

/// What a key does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    Transfer(String),
    Menu(String),
    DialByName(NameField),
    Voicemail,
    Deposit(String),
    Operator,
    Repeat,
    Disconnect,
}

/// Which name dial by name searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameField {
    Last,
    First,
}

impl NameField {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            NameField::Last => "last",
            NameField::First => "first",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "last" => Some(NameField::Last),
            "first" => Some(NameField::First),
            _ => None,
        }
    }
}

/// A prompt: text to speak or a stock prompt file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Prompt {
    Text(String),
    File(String),
}

/// A validated menu.
#[derive(Debug, Clone)]
pub(crate) struct Menu {
    pub(crate) prompt: Prompt,
    pub(crate) keys: BTreeMap<char, Action>,
    pub(crate) dial_extensions: bool,
    pub(crate) timeout: Duration,
    pub(crate) interdigit: Duration,
    pub(crate) retries: u32,
}

/// The validated attendant.
#[derive(Debug, Clone)]
pub(crate) struct Attendant {
    pub(crate) operator: Option<String>,
    pub(crate) extensions: BTreeSet<String>,
    pub(crate) menus: BTreeMap<String, Menu>,
    pub(crate) schedule: Option<Schedule>,
    pub(crate) voicemail_number: String,
    pub(crate) deposit_url: String,
}

/// A number the edge can route from a `tel:` URI: 1 to [`MAX_DIGITS`] digits.
pub(crate) fn is_number(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_DIGITS && s.bytes().all(|b| b.is_ascii_digit())
}

/// A menu name as it appears in a URL path.
pub(crate) fn is_menu_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl AttendantConfig {
    /// Checks the whole section; the error names the key at fault.
    pub fn validate(&self) -> Result<(), String> {
        self.build().map(|_| ())
    }

    pub(crate) fn build(&self) -> Result<Attendant, String> {
        if let Some(op) = &self.operator
            && !is_number(op)
        {
            return Err(format!(
                "attendant.operator: {op:?} is not an extension (1-{MAX_DIGITS} digits)"
            ));
        }
        for e in &self.extensions {
            if !is_number(e) {
                return Err(format!(
                    "attendant.extensions: {e:?} is not an extension (1-{MAX_DIGITS} digits)"
                ));
            }
        }
        if self.menus.is_empty() {
            return Err("attendant.menus: at least one menu is needed".into());
        }
        let mut menus = BTreeMap::new();
        for (name, m) in &self.menus {
            let at = format!("attendant.menus.{name}");
            if !is_menu_name(name) {
                return Err(format!(
                    "{at}: menu names are 1-32 letters, digits, '-' or '_'"
                ));
            }
            if name == "dbn" {
                return Err(format!("{at}: \"dbn\" is reserved (dial by name)"));
            }
            menus.insert(name.clone(), self.menu(&at, m)?);
        }
        let schedule = match &self.schedule {
            None => None,
            Some(s) => {
                for (key, menu) in [
                    ("open", Some(&s.open)),
                    ("closed", Some(&s.closed)),
                    ("holiday", s.holiday.as_ref()),
                    ("special", s.special.as_ref()),
                ] {
                    if let Some(menu) = menu
                        && !self.menus.contains_key(menu)
                    {
                        return Err(format!(
                            "attendant.schedule.{key}: no menu named {menu:?} (menus: {})",
                            self.menu_names()
                        ));
                    }
                }
                Some(Schedule::parse(s).map_err(|e| format!("attendant.schedule.{e}"))?)
            }
        };
        Ok(Attendant {
            operator: self.operator.clone(),
            extensions: self.extensions.iter().cloned().collect(),
            menus,
            schedule,
            voicemail_number: self.voicemail_number.clone(),
            deposit_url: self.deposit_url.clone(),
        })
    }

    fn menu_names(&self) -> String {
        self.menus.keys().cloned().collect::<Vec<_>>().join(", ")
    }

    fn menu(&self, at: &str, m: &MenuConfig) -> Result<Menu, String> {
        let prompt = match m.prompt.strip_prefix("file:") {
            Some(name) => {
                let ok = !name.is_empty()
                    && name.len() <= 64
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if !ok {
                    return Err(format!(
                        "{at}.prompt: {name:?} is not a prompt name (letters, digits, '-', '_'; \
                         the file is prompts/NAME.wav)"
                    ));
                }
                Prompt::File(name.to_string())
            }
            None if m.prompt.trim().is_empty() => {
                return Err(format!("{at}.prompt: empty"));
            }
            None => Prompt::Text(m.prompt.trim().to_string()),
        };
        if !(1..=60).contains(&m.timeout_secs) {
            return Err(format!(
                "{at}.timeout_secs: must be 1..=60, got {}",
                m.timeout_secs
            ));
        }
        if !(1..=30).contains(&m.interdigit_secs) {
            return Err(format!(
                "{at}.interdigit_secs: must be 1..=30, got {}",
                m.interdigit_secs
            ));
        }
        if !(1..=10).contains(&m.retries) {
            return Err(format!("{at}.retries: must be 1..=10, got {}", m.retries));
        }
        let mut keys = BTreeMap::new();
        for (key, action) in &m.keys {
            let mut chars = key.chars();
            let k = match (chars.next(), chars.next()) {
                (Some(c), None) if c.is_ascii_digit() || c == '*' || c == '#' => c,
                _ => {
                    return Err(format!(
                        "{at}.keys: {key:?} is not a key (one of 0-9, * or #)"
                    ));
                }
            };
            let action = self
                .action(action)
                .map_err(|e| format!("{at}.keys.{key:?}: {e}"))?;
            keys.insert(k, action);
        }
        Ok(Menu {
            prompt,
            keys,
            dial_extensions: m.dial_extensions,
            timeout: Duration::from_secs(m.timeout_secs),
            interdigit: Duration::from_secs(m.interdigit_secs),
            retries: m.retries,
        })
    }

    fn action(&self, text: &str) -> Result<Action, String> {
        let mut words = text.split_whitespace();
        let verb = words.next().unwrap_or("");
        let arg = words.next();
        if words.next().is_some() {
            return Err(format!("{text:?}: too many words"));
        }
        let number = |what: &str| -> Result<String, String> {
            match arg {
                Some(n) if is_number(n) => Ok(n.to_string()),
                Some(n) => Err(format!(
                    "{what}: {n:?} is not an extension (1-{MAX_DIGITS} digits)"
                )),
                None => Err(format!("{what} needs an extension, e.g. \"{what} 201\"")),
            }
        };
        let no_arg = |a: Action| match arg {
            None => Ok(a),
            Some(x) => Err(format!("{verb} takes no argument, got {x:?}")),
        };
        match verb {
            "transfer" => Ok(Action::Transfer(number("transfer")?)),
            "deposit" => Ok(Action::Deposit(number("deposit")?)),
            "menu" => match arg {
                Some(m) if self.menus.contains_key(m) => Ok(Action::Menu(m.to_string())),
                Some(m) => Err(format!(
                    "no menu named {m:?} (menus: {})",
                    self.menu_names()
                )),
                None => Err("menu needs a menu name, e.g. \"menu sales\"".into()),
            },
            "dial-by-name" => match arg {
                None => Ok(Action::DialByName(NameField::Last)),
                Some(f) => NameField::parse(f)
                    .map(Action::DialByName)
                    .ok_or_else(|| format!("dial-by-name takes \"last\" or \"first\", got {f:?}")),
            },
            "voicemail" => no_arg(Action::Voicemail),
            "operator" if self.operator.is_none() => {
                Err("operator: set attendant.operator to the operator's extension".into())
            }
            "operator" => no_arg(Action::Operator),
            "repeat" => no_arg(Action::Repeat),
            "disconnect" => no_arg(Action::Disconnect),
            _ => Err(format!(
                "unknown action {text:?} (transfer EXT, menu NAME, dial-by-name [last|first], \
                 voicemail, deposit EXT, operator, repeat, disconnect)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Attendant, String> {
        let c: AttendantConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.build()
    }

    const GOOD: &str = r##"
operator = "0"
extensions = ["600"]
[menus.main]
prompt = "Thank you for calling."
keys = { "1" = "transfer 201", "2" = "menu sales", "9" = "dial-by-name", "8" = "voicemail", "7" = "deposit 201", "0" = "operator", "*" = "repeat", "#" = "disconnect", "6" = "dial-by-name first" }
dial_extensions = true
[menus.sales]
prompt = "file:sales-menu"
keys = { "1" = "transfer 202" }
retries = 2
[menus.closed]
prompt = "We are closed."
[schedule]
open = "main"
closed = "closed"
hours = ["mon-fri 08:30-17:00"]
holidays = ["2026-12-25"]
"##;

    #[test]
    fn a_full_config_builds() {
        let a = parse(GOOD).unwrap();
        let main = &a.menus["main"];
        assert_eq!(main.keys[&'1'], Action::Transfer("201".into()));
        assert_eq!(main.keys[&'2'], Action::Menu("sales".into()));
        assert_eq!(main.keys[&'9'], Action::DialByName(NameField::Last));
        assert_eq!(main.keys[&'6'], Action::DialByName(NameField::First));
        assert_eq!(main.keys[&'#'], Action::Disconnect);
        assert_eq!(main.timeout, Duration::from_secs(5));
        assert_eq!(a.menus["sales"].prompt, Prompt::File("sales-menu".into()));
        assert_eq!(a.menus["sales"].retries, 2);
        assert!(!a.menus["sales"].dial_extensions);
        assert!(a.schedule.is_some());
        assert!(a.extensions.contains("600"));
    }

    #[test]
    fn the_default_is_valid() {
        let a = AttendantConfig::default().build().unwrap();
        assert!(a.menus["main"].dial_extensions);
        assert_eq!(
            a.menus["main"].keys[&'9'],
            Action::DialByName(NameField::Last)
        );
    }

    #[test]
    fn errors_name_the_key_at_fault() {
        let err = |from: &str, to: &str| parse(&GOOD.replacen(from, to, 1)).unwrap_err();
        let e = err("\"2\" = \"menu sales\"", "\"2\" = \"menu nowhere\"");
        assert!(
            e.contains("menus.main.keys.\"2\"") && e.contains("nowhere"),
            "{e}"
        );
        let e = err("\"1\" = \"transfer 201\"", "\"11\" = \"transfer 201\"");
        assert!(e.contains("\"11\" is not a key"), "{e}");
        let e = err("\"1\" = \"transfer 201\"", "\"1\" = \"transfer bob\"");
        assert!(e.contains("keys.\"1\"") && e.contains("bob"), "{e}");
        let e = err("\"1\" = \"transfer 201\"", "\"1\" = \"transfer\"");
        assert!(e.contains("needs an extension"), "{e}");
        let e = err("\"1\" = \"transfer 201\"", "\"1\" = \"jump 201\"");
        assert!(e.contains("unknown action"), "{e}");
        let e = err("\"*\" = \"repeat\"", "\"*\" = \"repeat twice\"");
        assert!(e.contains("takes no argument"), "{e}");
        let e = err(
            "\"6\" = \"dial-by-name first\"",
            "\"6\" = \"dial-by-name middle\"",
        );
        assert!(e.contains("middle"), "{e}");
        let e = err("operator = \"0\"", "operator = \"zero\"");
        assert!(e.contains("attendant.operator"), "{e}");
        let e = err("operator = \"0\"\n", "");
        assert!(e.contains("set attendant.operator"), "{e}");
        let e = err("closed = \"closed\"", "closed = \"shut\"");
        assert!(
            e.contains("attendant.schedule.closed") && e.contains("shut"),
            "{e}"
        );
        let e = err("mon-fri 08:30-17:00", "mon-fry 08:30-17:00");
        assert!(
            e.contains("attendant.schedule.hours") && e.contains("fry"),
            "{e}"
        );
        let e = err("2026-12-25", "2026-13-25");
        assert!(e.contains("attendant.schedule.holidays"), "{e}");
        let e = err("file:sales-menu", "file:../etc/passwd");
        assert!(e.contains("menus.sales.prompt"), "{e}");
        let e = err("retries = 2", "retries = 0");
        assert!(e.contains("menus.sales.retries"), "{e}");
        let e = err("[menus.closed]", "[menus.\"clo sed\"]");
        assert!(e.contains("menu names"), "{e}");
        let e = err("dial_extensions = true", "dial_extension = true");
        assert!(e.contains("dial_extension"), "unknown keys are errors: {e}");
        let e = err("extensions = [\"600\"]", "extensions = [\"6x\"]");
        assert!(e.contains("attendant.extensions"), "{e}");
    }
}
