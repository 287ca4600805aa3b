//! `parley serve`: starts the chosen roles on one tokio runtime and stops them on Ctrl-C/SIGTERM.
//! The roles talk to each other only through their protocols (SIP, HTTP) on the configured
//! addresses, exactly as they would on separate hosts.

use std::sync::Arc;

use anyhow::Context;
use tracing::info;

use crate::Role;
use crate::config::Config;
use media_server::MediaServer;

pub(crate) fn run(cfg: Config, roles: Vec<Role>) -> anyhow::Result<()> {
    raise_file_limit();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("parley-io")
        .build()
        .context("cannot start the tokio runtime")?;
    rt.block_on(serve(cfg, roles))
}

async fn serve(cfg: Config, roles: Vec<Role>) -> anyhow::Result<()> {
    // One open database for the process (redb allows one open per file): users,
    // registrations and subscriptions for the edge, the apps role's own tables.
    let store = if roles.contains(&Role::Edge) || roles.contains(&Role::Apps) {
        let dir = cfg.data_dir.clone();
        let store = tokio::task::spawn_blocking(move || parley_store::RedbStore::open(&dir))
            .await?
            .with_context(|| format!("cannot open the database in {}", cfg.data_dir.display()))?;
        Some(Arc::new(store))
    } else {
        None
    };
    // Start in dependency order: apps (documents), media (answers), edge (takes calls).
    let apps = if roles.contains(&Role::Apps) {
        let mut ac =
            apps::AppsConfig::new(cfg.apps.http, cfg.data_dir.clone(), cfg.prompts_dir.clone());
        ac.database = store.as_ref().map(|s| s.database());
        ac.voicemail = cfg.voicemail_settings()?;
        ac.users = store
            .as_ref()
            .map(|s| s.clone() as Arc<dyn parley_store::Store>);
        ac.attendant = cfg.attendant();
        ac.admin_token = cfg.apps.admin_token.clone();
        ac.time_zone = cfg.time_zone()?;
        let h = apps::spawn(ac)
            .await
            .with_context(|| format!("apps role: cannot start on {}", cfg.apps.http))?;
        info!(http = %h.local_addr(), data_dir = %cfg.data_dir.display(), "apps role ready");
        Some(h)
    } else {
        None
    };

    let media = if roles.contains(&Role::Media) {
        // Outbound legs (transfers) go to the edge; a wildcard bind is reached on loopback.
        let mut edge = cfg.edge.udp;
        if edge.ip().is_unspecified() {
            edge.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let m = MediaServer::start(&cfg.media, cfg.interpreter_threads(), edge)
            .await
            .with_context(|| format!("media role: cannot start on {}", cfg.media.sip))?;
        info!(sip = %m.sip_addr(), "media role ready");
        Some(m)
    } else {
        None
    };

    let edge = match (roles.contains(&Role::Edge), &store) {
        (true, Some(store)) => {
            let store: Arc<dyn parley_store::Store> = store.clone();
            let mut ec = sip_edge::EdgeConfig::new(cfg.edge.udp, cfg.media.sip, store.clone());
            ec.tcp = cfg.edge.tcp_enabled.then_some(cfg.edge.tcp);
            ec.advertised_ip = cfg.edge.advertised_ip;
            ec.domain = cfg.edge.domain.clone();
            ec.dial_plan = cfg.dial_plan()?;
            ec.trusted = cfg.trusted_networks()?;
            ec.voicemail = cfg.voicemail()?;
            ec.digest_algorithms = cfg.digest_algorithms()?;
            ec.secret = Some(edge_key(&cfg.data_dir)?);
            ec.limits.per_source =
                (cfg.edge.rate_limit > 0).then_some(f64::from(cfg.edge.rate_limit));
            let h = sip_edge::spawn_edge(ec)
                .await
                .with_context(|| format!("edge role: cannot start on {}", cfg.edge.udp))?;
            info!(udp = %h.udp_addr, tcp = ?h.tcp_addr, domain = %h.domain, "edge role ready");
            let h = Arc::new(h);
            let api = crate::edge_http::EdgeApi {
                store,
                edge: h.clone(),
                realm: cfg.edge.domain.clone(),
            };
            let http = crate::edge_http::spawn(cfg.edge.http, api).await?;
            info!(http = %http.addr, "edge http ready (POST /mwi/{{user}})");
            Some((h, http))
        }
        _ => None,
    };

    info!("parley is running; Ctrl-C to stop");
    wait_for_stop_signal().await;
    info!("stopping");
    // End calls first (their BYEs go out through the edge), then stop the edge, then stop
    // serving documents.
    if let Some(m) = media {
        m.shutdown().await;
    }
    if let Some((e, http)) = edge {
        http.shutdown().await;
        match Arc::try_unwrap(e) {
            Ok(e) => e.shutdown().await,
            Err(_) => tracing::warn!("edge still referenced at shutdown"),
        }
    }
    if let Some(a) = apps {
        a.shutdown().await;
    }
    info!("stopped");
    Ok(())
}

async fn wait_for_stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The edge's key for nonces and Record-Route signatures, kept in `DATA/edge.key` (created
/// once, owner-only) so a restart neither breaks calls in progress nor re-challenges phones.
fn edge_key(data_dir: &std::path::Path) -> anyhow::Result<[u8; 32]> {
    let path = data_dir.join("edge.key");
    match std::fs::read(&path) {
        Ok(bytes) => bytes.try_into().map_err(|_| {
            anyhow::anyhow!(
                "{} is not a 32-byte key; delete it to make a new one",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            rand::Rng::fill(&mut rand::rng(), &mut key[..]);
            std::fs::create_dir_all(data_dir)?;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts
                .open(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            std::io::Write::write_all(&mut f, &key)?;
            f.sync_all()?;
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Every call holds sockets (RTP, RTCP, TCP, HTTP): take the hard limit on open files, not the
/// 1024 soft default, so a busy server does not fail at accept or bind.
fn raise_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => info!(open_files = n, "file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
}
