//! `parley users import FILE.csv [--dry-run]` and `parley users list`.
//!
//! They open the database in `data_dir` directly. When a running `parley serve` holds it
//! (redb allows one process per file), they go through the edge's loopback HTTP endpoint
//! instead, and the running edge picks the new users up at once.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use parley_store::{RedbStore, Store};

use crate::config::Config;

/// Where the users live, as the command reached them.
enum Target {
    Local(RedbStore),
    Running(String),
}

fn open(cfg: &Config) -> anyhow::Result<Target> {
    match RedbStore::open(&cfg.data_dir) {
        Ok(s) => Ok(Target::Local(s)),
        Err(parley_store::Error::Locked) => {
            Ok(Target::Running(format!("http://{}", cfg.edge.http)))
        }
        Err(e) => Err(e)
            .with_context(|| format!("cannot open the database in {}", cfg.data_dir.display())),
    }
}

pub(crate) fn import(cfg: &Config, file: &Path, dry_run: bool) -> anyhow::Result<ExitCode> {
    let meta =
        std::fs::metadata(file).with_context(|| format!("cannot read {}", file.display()))?;
    if meta.len() > parley_store::MAX_CSV_BYTES as u64 {
        bail!(
            "{} is {} bytes; an import takes at most {} bytes",
            file.display(),
            meta.len(),
            parley_store::MAX_CSV_BYTES
        );
    }
    let csv = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read {} as UTF-8 text", file.display()))?;
    match open(cfg)? {
        Target::Local(store) => {
            let report = parley_store::import_users(&store, &csv, &cfg.edge.domain, dry_run);
            print_lines(&report.to_string());
            Ok(if report.errors > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Target::Running(base) => {
            let url = format!("{base}/users/import?dry_run={dry_run}");
            let (status, body) = http(reqwest::Method::POST, &url, Some(csv))?;
            print_lines(&body);
            match status {
                200 => Ok(ExitCode::SUCCESS),
                422 => Ok(ExitCode::from(1)),
                s => bail!("the running parley answered {s} to {url}"),
            }
        }
    }
}

pub(crate) fn list(cfg: &Config) -> anyhow::Result<ExitCode> {
    match open(cfg)? {
        Target::Local(store) => {
            let users = store.users().context("cannot read users")?;
            print!("{}", parley_store::format_user_list(&users));
        }
        Target::Running(base) => {
            let url = format!("{base}/users");
            let (status, body) = http(reqwest::Method::GET, &url, None)?;
            if status != 200 {
                bail!("the running parley answered {status} to {url}");
            }
            print!("{body}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One request to the running edge (loopback), on a small runtime of its own.
fn http(method: reqwest::Method, url: &str, body: Option<String>) -> anyhow::Result<(u16, String)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(120))
            .build()?;
        let mut req = client.request(method, url);
        if let Some(b) = body {
            req = req.header("content-type", "text/csv").body(b);
        }
        let resp = req.send().await.with_context(|| {
            format!(
                "the database is in use by a running parley, and its edge did not answer at {url}"
            )
        })?;
        let status = resp.status().as_u16();
        Ok((status, resp.text().await?))
    })
}

fn print_lines(text: &str) {
    print!("{text}");
    if !text.ends_with('\n') {
        println!();
    }
}
