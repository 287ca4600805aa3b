//! Configuration: embedded defaults, overridden key by key by an optional TOML file.
//! Unknown keys are errors, so a typo never silently falls back to a default.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

/// The whole configuration (see `parley.example.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Config {
    /// Data folder (redb database, later the mailstore).
    pub(crate) data_dir: PathBuf,
    /// Stock prompts folder, served by the apps role under /prompts/.
    pub(crate) prompts_dir: PathBuf,
    /// Log level filter when RUST_LOG is not set (e.g. "info", "parley=debug,info").
    pub(crate) log: String,
    pub(crate) edge: EdgeSection,
    pub(crate) media: media_server::MediaConfig,
    pub(crate) apps: AppsSection,
    /// Voicemail numbers and documents.
    pub(crate) voicemail: VoicemailSection,
    /// Auto-attendant number -> its VoiceXML URL (relative URLs are on the apps role).
    pub(crate) auto_attendants: BTreeMap<String, String>,
    /// The auto-attendant's menus, operator and schedule (served by the apps role).
    pub(crate) attendant: apps::attendant::AttendantConfig,
    /// Dialled number or pattern -> VoiceXML application URL. A relative URL
    /// ("/demo/hello.vxml") is resolved against the apps role's HTTP address.
    pub(crate) dialplan: BTreeMap<String, String>,
    /// Dialled number or pattern -> conference room name (`{number}` is the number dialled):
    /// every caller of the number is in the room with the others.
    pub(crate) conferences: BTreeMap<String, String>,
    /// Gateways to other networks, reached by number patterns.
    pub(crate) trunks: Vec<TrunkSection>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct EdgeSection {
    /// SIP over UDP.
    pub(crate) udp: SocketAddr,
    /// SIP over TCP (see `tcp_enabled`).
    pub(crate) tcp: SocketAddr,
    /// Set false to run the edge on UDP only.
    pub(crate) tcp_enabled: bool,
    /// The SIP domain and digest realm. Users' HA1s are made for it: re-import the users
    /// after changing it.
    pub(crate) domain: String,
    /// IP written in Via/Record-Route when bound to 0.0.0.0 (default: the interface that
    /// holds the default route).
    pub(crate) advertised_ip: Option<IpAddr>,
    /// The edge's HTTP endpoint (loopback only): `POST /mwi/{user}`, and users import/list
    /// for `parley users` while the server holds the database.
    pub(crate) http: SocketAddr,
    /// Networks whose requests need no digest (trunks, gateways), e.g. "192.0.2.0/24".
    /// Default: this host's loopback (local tools such as sipp; no one outside can send from
    /// it).
    pub(crate) trusted: Vec<String>,
    /// Ring a user's phones this long before voicemail answers.
    pub(crate) no_answer_secs: u64,
    /// Requests per second one untrusted source address may send (burst twice that);
    /// the rest are dropped unanswered. 0 turns the limit off.
    pub(crate) rate_limit: u32,
    /// Digest challenges offered, most preferred first ("MD5", "SHA-256"). Credentials of
    /// either algorithm verify whatever is offered.
    pub(crate) digest: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct VoicemailSection {
    /// Set false to let unanswered calls fail instead of reaching voicemail.
    pub(crate) enabled: bool,
    /// Callers dial this to reach their own mailbox.
    pub(crate) access_number: String,
    /// The mailbox (retrieve) application.
    pub(crate) access_url: String,
    /// The deposit application: unanswered, busy or unregistered calls to a user go here
    /// with `mailbox=USER` added to the query and a Diversion header naming the user.
    pub(crate) deposit_url: String,
    /// Extension that 0 reaches while leaving or listening to messages ("" = 0 not offered).
    pub(crate) operator: String,
    /// Distribution lists for "send a message": list number -> mailboxes.
    pub(crate) lists: BTreeMap<String, Vec<String>>,
    /// SMTP relay for new-message e-mails with the WAV attached (users with an `email`).
    pub(crate) email: Option<apps::SmtpConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TrunkSection {
    /// A name for logs.
    pub(crate) name: String,
    /// The gateway's SIP address (UDP); it is trusted (no digest) for calls it sends.
    pub(crate) address: SocketAddr,
    /// Number patterns routed to it (`X` any digit, `N` 2-9, `Z` 1-9, `[1-5]`, final `.`).
    pub(crate) patterns: Vec<String>,
    /// Leading digits to remove (e.g. 1 for an outside-line `9`).
    #[serde(default)]
    pub(crate) strip: usize,
    /// Digits to put in front after stripping.
    #[serde(default)]
    pub(crate) prefix: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct AppsSection {
    /// HTTP listen address of the apps role.
    pub(crate) http: SocketAddr,
    /// Bearer token for the admin API (`/api/*`); without one, the API answers only on a
    /// loopback `http` address.
    pub(crate) admin_token: Option<String>,
    /// IANA time zone for schedules and spoken dates (default: the host's).
    pub(crate) time_zone: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: "./data".into(),
            prompts_dir: "./prompts".into(),
            log: "info".into(),
            edge: EdgeSection::default(),
            media: media_server::MediaConfig::default(),
            apps: AppsSection::default(),
            voicemail: VoicemailSection::default(),
            auto_attendants: BTreeMap::from([("500".to_string(), "/aa/main".to_string())]),
            attendant: apps::attendant::AttendantConfig::default(),
            dialplan: BTreeMap::from([("600".to_string(), "/demo/hello.vxml".to_string())]),
            conferences: BTreeMap::new(),
            trunks: Vec::new(),
        }
    }
}

impl Default for EdgeSection {
    fn default() -> Self {
        Self {
            udp: "0.0.0.0:5060".parse().expect("literal"),
            tcp: "0.0.0.0:5060".parse().expect("literal"),
            tcp_enabled: true,
            domain: "parley.local".into(),
            advertised_ip: None,
            http: "127.0.0.1:8081".parse().expect("literal"),
            trusted: vec!["127.0.0.1/32".into(), "::1/128".into()],
            no_answer_secs: 20,
            rate_limit: 50,
            digest: vec!["MD5".into()],
        }
    }
}

impl Default for VoicemailSection {
    fn default() -> Self {
        Self {
            enabled: true,
            access_number: "100".into(),
            access_url: "/vm/retrieve".into(),
            deposit_url: "/vm/deposit".into(),
            operator: String::new(),
            lists: BTreeMap::new(),
            email: None,
        }
    }
}

impl Default for AppsSection {
    fn default() -> Self {
        Self {
            http: "127.0.0.1:8080".parse().expect("literal"),
            admin_token: None,
            time_zone: None,
        }
    }
}

impl Config {
    /// The embedded defaults, overridden by `path` if given.
    pub(crate) fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let cfg = match path {
            None => Self::default(),
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read config file {}", p.display()))?;
                Self::parse(&text).with_context(|| format!("in config file {}", p.display()))?
            }
        };
        cfg.validate()?;
        Ok(cfg)
    }

    pub(crate) fn parse(text: &str) -> anyhow::Result<Self> {
        Ok(toml::from_str(text)?)
    }

    fn validate(&self) -> anyhow::Result<()> {
        let m = &self.media;
        // RTP takes an even port and keeps the next one for RTCP (0..0 = any port the OS picks).
        let os_picks = m.rtp_port_min == 0 && m.rtp_port_max == 0;
        let has_pair = (m.rtp_port_min..m.rtp_port_max).any(|p| p % 2 == 0);
        if !os_picks && !has_pair {
            bail!(
                "media.rtp_port_min..rtp_port_max ({}..{}) must hold an even port and the one after it",
                m.rtp_port_min,
                m.rtp_port_max
            );
        }
        self.dial_plan()?;
        self.trusted_networks()?;
        if !self.edge.http.ip().is_loopback() {
            bail!(
                "edge.http ({}) must be a loopback address: it changes message-waiting lamps and users",
                self.edge.http
            );
        }
        if self.edge.domain.trim().is_empty() || self.edge.domain.contains(char::is_whitespace) {
            bail!(
                "edge.domain must be a host name or address, got {:?}",
                self.edge.domain
            );
        }
        self.digest_algorithms()?;
        self.attendant.validate().map_err(anyhow::Error::msg)?;
        if let Some(op) = &self.attendant.operator
            && self.auto_attendants.contains_key(op)
        {
            bail!(
                "attendant.operator {op:?} is an auto-attendant number: callers who ask for \
                 the operator would come back to the attendant"
            );
        }
        self.time_zone()?;
        if self.edge.no_answer_secs == 0 || self.edge.no_answer_secs > 600 {
            bail!(
                "edge.no_answer_secs must be 1..=600, got {}",
                self.edge.no_answer_secs
            );
        }
        Ok(())
    }

    /// The digest algorithms to offer, in order.
    pub(crate) fn digest_algorithms(&self) -> anyhow::Result<Vec<sip_edge::auth::Algorithm>> {
        if self.edge.digest.is_empty() {
            bail!("edge.digest must name at least one algorithm (\"MD5\", \"SHA-256\")");
        }
        self.edge
            .digest
            .iter()
            .map(|a| {
                sip_edge::auth::Algorithm::from_name(a).with_context(|| {
                    format!("edge.digest: unknown algorithm {a:?} (\"MD5\", \"SHA-256\")")
                })
            })
            .collect()
    }

    /// The trusted networks, parsed.
    pub(crate) fn trusted_networks(&self) -> anyhow::Result<Vec<sip_edge::Network>> {
        let mut nets: Vec<sip_edge::Network> = self
            .edge
            .trusted
            .iter()
            .map(|t| {
                sip_edge::Network::parse(t).with_context(|| {
                    format!("edge.trusted: {t:?} is not an address or address/prefix")
                })
            })
            .collect::<anyhow::Result<_>>()?;
        for t in &self.trunks {
            nets.extend(sip_edge::Network::parse(&t.address.ip().to_string()));
        }
        Ok(nets)
    }

    /// The dial plan: numbers and patterns, auto-attendants, voicemail access, trunks.
    /// Two entries for one number are an error rather than a silent override.
    pub(crate) fn dial_plan(&self) -> anyhow::Result<sip_edge::DialPlan> {
        let mut plan = sip_edge::DialPlan::new();
        let mut seen = std::collections::BTreeSet::new();
        let mut add =
            |plan: &mut sip_edge::DialPlan, key: &str, route: sip_edge::Route, what: &str| {
                if !seen.insert(key.to_owned()) {
                    bail!("{what} {key:?}: the number is already in the dial plan");
                }
                plan.insert_key(key, route)
                    .with_context(|| format!("{what} {key:?}"))?;
                Ok(())
            };
        let app = |url: &str, what: &str| -> anyhow::Result<sip_edge::Route> {
            Ok(sip_edge::Route::VxmlApp {
                url: self
                    .app_url(url)
                    .with_context(|| format!("{what}: bad URL {url:?}"))?
                    .to_string(),
            })
        };
        if self.voicemail.enabled && !self.voicemail.access_number.is_empty() {
            let r = app(&self.voicemail.access_url, "voicemail.access_url")?;
            add(
                &mut plan,
                &self.voicemail.access_number,
                r,
                "voicemail.access_number",
            )?;
        }
        for (number, url) in &self.auto_attendants {
            let r = app(url, &format!("auto_attendants entry {number:?}"))?;
            add(&mut plan, number, r, "auto_attendants entry")?;
        }
        for (number, url) in &self.dialplan {
            let r = app(url, &format!("dialplan entry {number:?}"))?;
            add(&mut plan, number, r, "dialplan entry")?;
        }
        for (number, room) in &self.conferences {
            let name = room.replace("{number}", "0");
            if name.is_empty()
                || name.len() > 64
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            {
                bail!(
                    "conferences entry {number:?}: room name {room:?} must be 1-64 letters, \
                     digits, '.', '_' or '-' (and may hold {{number}})"
                );
            }
            let route = sip_edge::Route::Conference { room: room.clone() };
            add(&mut plan, number, route, "conferences entry")?;
        }
        for t in &self.trunks {
            if t.patterns.is_empty() {
                bail!("trunk {:?} has no patterns", t.name);
            }
            for p in &t.patterns {
                let route = sip_edge::Route::Trunk {
                    name: t.name.clone(),
                    address: t.address,
                    strip: t.strip,
                    prefix: t.prefix.clone(),
                };
                add(&mut plan, p, route, &format!("trunk {:?} pattern", t.name))?;
            }
        }
        Ok(plan)
    }

    /// Voicemail for unanswered calls, when enabled.
    pub(crate) fn voicemail(&self) -> anyhow::Result<Option<sip_edge::Voicemail>> {
        if !self.voicemail.enabled {
            return Ok(None);
        }
        let url = self.app_url(&self.voicemail.deposit_url).with_context(|| {
            format!(
                "voicemail.deposit_url: bad URL {:?}",
                self.voicemail.deposit_url
            )
        })?;
        Ok(Some(sip_edge::Voicemail {
            deposit_url: url.to_string(),
            no_answer: std::time::Duration::from_secs(self.edge.no_answer_secs),
        }))
    }

    /// What the voicemail application needs: operator, lists, the SIP domain, and the edge's
    /// message-waiting endpoint (on loopback when the edge binds a wildcard).
    pub(crate) fn voicemail_settings(&self) -> anyhow::Result<apps::VoicemailSettings> {
        for (number, members) in &self.voicemail.lists {
            if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit()) {
                bail!("voicemail.lists: list number {number:?} must be digits");
            }
            if let Some(bad) = members.iter().find(|m| !parley_store::is_valid_user(m)) {
                bail!("voicemail.lists.{number}: {bad:?} is not a user name");
            }
        }
        let op = self.voicemail.operator.trim();
        if !op
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '*' | '#' | '+'))
        {
            bail!("voicemail.operator: {op:?} must be an extension");
        }
        let mut mwi = self.edge.http;
        if mwi.ip().is_unspecified() {
            mwi.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        Ok(apps::VoicemailSettings {
            operator: (!op.is_empty()).then(|| op.to_owned()),
            domain: self.edge.domain.clone(),
            mwi_url: Some(format!("http://{mwi}/mwi/")),
            lists: self.voicemail.lists.clone(),
            email: self.voicemail.email.clone(),
        })
    }

    /// The base URL of the apps role as the media server reaches it.
    pub(crate) fn apps_base(&self) -> url::Url {
        let mut addr = self.apps.http;
        if addr.ip().is_unspecified() {
            addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        url::Url::parse(&format!("http://{addr}/")).expect("socket address makes a valid URL")
    }

    /// Resolves a dial-plan URL (absolute, or relative to the apps role).
    pub(crate) fn app_url(&self, url: &str) -> anyhow::Result<url::Url> {
        Ok(self.apps_base().join(url)?)
    }

    /// The apps role's time zone: `apps.time_zone`, else the host's.
    pub(crate) fn time_zone(&self) -> anyhow::Result<jiff::tz::TimeZone> {
        match &self.apps.time_zone {
            None => Ok(jiff::tz::TimeZone::system()),
            Some(name) => jiff::tz::TimeZone::get(name)
                .with_context(|| format!("apps.time_zone: {name:?} is not a known IANA time zone")),
        }
    }

    /// The `[attendant]` section with the voicemail numbers it transfers to.
    pub(crate) fn attendant(&self) -> apps::attendant::AttendantConfig {
        let mut a = self.attendant.clone();
        a.voicemail_number = self.voicemail.access_number.clone();
        a.deposit_url = self.voicemail.deposit_url.clone();
        a
    }

    pub(crate) fn interpreter_threads(&self) -> usize {
        match self.media.interpreter_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_contract() {
        let c = Config::load(None).unwrap();
        assert_eq!(c.edge.udp.to_string(), "0.0.0.0:5060");
        assert_eq!(c.media.sip.to_string(), "127.0.0.1:5070");
        assert_eq!(c.apps.http.to_string(), "127.0.0.1:8080");
        assert_eq!((c.media.rtp_port_min, c.media.rtp_port_max), (20000, 29999));
        assert_eq!(
            c.app_url(&c.dialplan["600"]).unwrap().as_str(),
            "http://127.0.0.1:8080/demo/hello.vxml"
        );
    }

    #[test]
    fn file_overrides_single_keys() {
        let c = Config::parse(
            "data_dir = \"/tmp/x\"\n[apps]\nhttp = \"127.0.0.1:9999\"\n[dialplan]\n700 = \"http://example.test/app.vxml\"\n",
        )
        .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.apps.http.port(), 9999);
        assert_eq!(c.edge.udp.port(), 5060, "untouched keys keep defaults");
        assert_eq!(c.dialplan["700"], "http://example.test/app.vxml");
    }

    #[test]
    fn example_file_documents_the_defaults() {
        let example = Config::parse(include_str!("../parley.example.toml")).unwrap();
        assert_eq!(format!("{example:?}"), format!("{:?}", Config::default()));
    }

    #[test]
    fn rtp_range_needs_an_even_odd_pair() {
        let range = |lo: u16, hi: u16| {
            Config::parse(&format!(
                "[media]\nrtp_port_min = {lo}\nrtp_port_max = {hi}\n"
            ))
            .unwrap()
            .validate()
        };
        assert!(range(20000, 20001).is_ok());
        assert!(range(0, 0).is_ok());
        assert!(
            range(20001, 20002).is_err(),
            "20001 is odd, 20002 has no pair"
        );
        assert!(range(20000, 20000).is_err());
        assert!(range(30000, 20000).is_err());
    }

    #[test]
    fn typos_are_errors() {
        let e = Config::parse("[edge]\nupd = \"0.0.0.0:5060\"\n").unwrap_err();
        assert!(format!("{e:#}").contains("upd"), "{e:#}");
        assert!(Config::parse("[media]\nrtp_port_min = \"x\"\n").is_err());
    }

    #[test]
    fn dial_plan_from_every_section() {
        let c = Config::parse(
            "[voicemail]\naccess_number = \"100\"\n[auto_attendants]\n0 = \"/aa/main\"\n\
             [dialplan]\n\"7XX\" = \"http://ivr.example/app?n={number}\"\n\
             [[trunks]]\nname = \"carrier\"\naddress = \"192.0.2.50:5060\"\npatterns = [\"9NXXXXXX\"]\nstrip = 1\n",
        )
        .unwrap();
        c.validate().unwrap();
        let plan = c.dial_plan().unwrap();
        let app = |n: &str| match plan.lookup(n) {
            Some(sip_edge::Route::VxmlApp { url }) => url.clone(),
            other => panic!("{n}: {other:?}"),
        };
        assert_eq!(app("100"), "http://127.0.0.1:8080/vm/retrieve");
        assert_eq!(app("0"), "http://127.0.0.1:8080/aa/main");
        assert_eq!(app("712"), "http://ivr.example/app?n={number}");
        assert!(matches!(
            plan.lookup("92345678"),
            Some(sip_edge::Route::Trunk { strip: 1, .. })
        ));
        assert!(
            plan.lookup("555").is_none(),
            "unknown numbers are not routed"
        );
        let trusted = c.trusted_networks().unwrap();
        assert!(
            trusted
                .iter()
                .any(|n| n.contains("192.0.2.50".parse().unwrap())),
            "trunks are trusted"
        );
    }

    #[test]
    fn bad_edge_settings_are_errors() {
        let err = |text: &str| {
            let e = Config::parse(text).and_then(|c| c.validate()).unwrap_err();
            format!("{e:#}")
        };
        assert!(err("[dialplan]\n100 = \"/x\"\n").contains("already in the dial plan"));
        assert!(err("[edge]\nhttp = \"0.0.0.0:8081\"\n").contains("loopback"));
        assert!(err("[edge]\ntrusted = [\"10.0.0.0/99\"]\n").contains("edge.trusted"));
        assert!(err("[edge]\ndigest = [\"SHA-1\"]\n").contains("edge.digest"));
        assert!(err("[dialplan]\n\"9[\" = \"/x\"\n").contains("pattern"));
        assert!(err("[conferences]\n800 = \"a b\"\n").contains("room name"));
        assert!(err("[conferences]\n800 = \"\"\n").contains("room name"));
        assert!(err("[conferences]\n600 = \"x\"\n").contains("already in the dial plan"));
    }

    #[test]
    fn attendant_section_is_validated() {
        let err = |text: &str| {
            let e = Config::parse(text).and_then(|c| c.validate()).unwrap_err();
            format!("{e:#}")
        };
        let e = err("[attendant.menus.main]\nprompt = \"Hi\"\nkeys = { \"1\" = \"menu sales\" }\n");
        assert!(
            e.contains("attendant.menus.main.keys") && e.contains("sales"),
            "{e}"
        );
        let e = err("[attendant.menus.main]\nprompt = \"Hi\"\nkeyz = {}\n");
        assert!(e.contains("keyz"), "{e}");
        let e = err("[attendant]\noperator = \"500\"\n");
        assert!(e.contains("auto-attendant number"), "{e}");
        let e = err("[apps]\ntime_zone = \"Mars/Olympus\"\n");
        assert!(e.contains("apps.time_zone"), "{e}");
        let c = Config::parse(
            "[apps]\ntime_zone = \"Europe/Paris\"\nadmin_token = \"s3cret\"\n\
             [voicemail]\naccess_number = \"199\"\n\
             [attendant]\noperator = \"0\"\n[attendant.menus.main]\nprompt = \"Hi\"\n\
             keys = { \"0\" = \"operator\" }\n",
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.attendant().voicemail_number, "199");
        assert_eq!(c.apps.admin_token.as_deref(), Some("s3cret"));
        let plan = Config::load(None).unwrap().dial_plan().unwrap();
        assert!(
            matches!(plan.lookup("500"), Some(sip_edge::Route::VxmlApp { url }) if url.ends_with("/aa/main")),
            "the default dial plan reaches the attendant on 500"
        );
    }

    #[test]
    fn conference_numbers_route_to_rooms() {
        let c =
            Config::parse("[conferences]\n800 = \"main\"\n\"81X\" = \"room-{number}\"\n").unwrap();
        c.validate().unwrap();
        let plan = c.dial_plan().unwrap();
        let room = |n: &str| match plan.lookup(n) {
            Some(sip_edge::Route::Conference { room }) => room.clone(),
            other => panic!("{n}: {other:?}"),
        };
        assert_eq!(room("800"), "main");
        assert_eq!(room("812"), "room-{number}");
    }
}
