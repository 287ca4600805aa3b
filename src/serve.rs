//! `parley serve`: starts the chosen roles on one tokio runtime and stops them on Ctrl-C/SIGTERM.
//! The roles talk to each other only through their protocols (SIP, HTTP) on the configured
//! addresses, exactly as they would on separate hosts.

use anyhow::Context;
use tracing::info;

use crate::Role;
use crate::config::Config;
use crate::media_server::MediaServer;

pub(crate) fn run(cfg: Config, roles: Vec<Role>) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("parley-io")
        .build()
        .context("cannot start the tokio runtime")?;
    rt.block_on(serve(cfg, roles))
}

async fn serve(cfg: Config, roles: Vec<Role>) -> anyhow::Result<()> {
    // Start in dependency order: apps (documents), media (answers), edge (takes calls).
    let apps = if roles.contains(&Role::Apps) {
        let h = apps::spawn(apps::AppsConfig {
            http: cfg.apps.http,
            data_dir: cfg.data_dir.clone(),
            prompts_dir: cfg.prompts_dir.clone(),
        })
        .await
        .with_context(|| format!("apps role: cannot start on {}", cfg.apps.http))?;
        info!(http = %h.local_addr(), data_dir = %cfg.data_dir.display(), "apps role ready");
        Some(h)
    } else {
        None
    };

    let media = if roles.contains(&Role::Media) {
        let m = MediaServer::start(&cfg.media, cfg.interpreter_threads())
            .await
            .with_context(|| format!("media role: cannot start on {}", cfg.media.sip))?;
        info!(sip = %m.sip_addr(), "media role ready");
        Some(m)
    } else {
        None
    };

    let edge = if roles.contains(&Role::Edge) {
        let mut dial_plan = sip_edge::DialPlan::new();
        for (number, url) in &cfg.dialplan {
            dial_plan.insert(
                number.clone(),
                sip_edge::Route::VxmlApp {
                    url: cfg.app_url(url)?.to_string(),
                },
            );
        }
        let h = sip_edge::spawn_edge(sip_edge::EdgeConfig {
            udp: cfg.edge.udp,
            tcp: cfg.edge.tcp_enabled.then_some(cfg.edge.tcp),
            media_server: cfg.media.sip,
            dial_plan,
        })
        .await
        .with_context(|| format!("edge role: cannot start on {}", cfg.edge.udp))?;
        info!(udp = %h.udp_addr, tcp = ?h.tcp_addr, "edge role ready");
        Some(h)
    } else {
        None
    };

    info!("parley is running; Ctrl-C to stop");
    wait_for_stop_signal().await;
    info!("stopping");
    // End calls first (their BYEs go out through the edge), then stop the edge, then stop
    // serving documents.
    if let Some(m) = media {
        m.shutdown().await;
    }
    if let Some(e) = edge {
        e.shutdown().await;
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
