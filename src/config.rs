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
    pub(crate) media: MediaSection,
    pub(crate) apps: AppsSection,
    /// Dialled number -> VoiceXML application URL. A relative URL ("/demo/hello.vxml")
    /// is resolved against the apps role's HTTP address.
    pub(crate) dialplan: BTreeMap<String, String>,
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
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct MediaSection {
    /// The media server's own SIP address (the edge sends VXML calls here).
    pub(crate) sip: SocketAddr,
    /// Address RTP sockets bind to.
    pub(crate) rtp_ip: IpAddr,
    /// Address written into SDP answers. Default: the local address that routes to the
    /// caller's media address (right for one host or a LAN without NAT).
    pub(crate) rtp_public_ip: Option<IpAddr>,
    pub(crate) rtp_port_min: u16,
    pub(crate) rtp_port_max: u16,
    /// Interpreter threads (each runs many calls); 0 = one per core.
    pub(crate) interpreter_threads: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct AppsSection {
    /// HTTP listen address of the apps role.
    pub(crate) http: SocketAddr,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: "./data".into(),
            prompts_dir: "./prompts".into(),
            log: "info".into(),
            edge: EdgeSection::default(),
            media: MediaSection::default(),
            apps: AppsSection::default(),
            dialplan: BTreeMap::from([("600".to_string(), "/demo/hello.vxml".to_string())]),
        }
    }
}

impl Default for EdgeSection {
    fn default() -> Self {
        Self {
            udp: "0.0.0.0:5060".parse().expect("literal"),
            tcp: "0.0.0.0:5060".parse().expect("literal"),
            tcp_enabled: true,
        }
    }
}

impl Default for MediaSection {
    fn default() -> Self {
        Self {
            sip: "127.0.0.1:5070".parse().expect("literal"),
            rtp_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            rtp_public_ip: None,
            rtp_port_min: 20000,
            rtp_port_max: 29999,
            interpreter_threads: 0,
        }
    }
}

impl Default for AppsSection {
    fn default() -> Self {
        Self {
            http: "127.0.0.1:8080".parse().expect("literal"),
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
        for (number, url) in &self.dialplan {
            self.app_url(url)
                .with_context(|| format!("dialplan entry {number:?}: bad URL {url:?}"))?;
        }
        Ok(())
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
}
