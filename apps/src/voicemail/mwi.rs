//! Message waiting: after every change to a mailbox, its counts go to the edge's
//! `POST /mwi/{user}` `{"new":N,"old":M}` (old = saved; deleted messages do not light lamps).
//!
//! One worker posts in order and reads the counts when it posts, not when the change
//! happened: a burst of changes to one mailbox ends with its true counts, never with a stale
//! update that overtook a newer one. A failed post is retried a few times, then logged (the
//! edge re-reads nothing by itself, so the next change repairs the lamp).

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;

use parley_store::MailStore;
use tokio::sync::mpsc;
use tracing::{debug, warn};

/// Mailboxes waiting for their post; beyond this a change is dropped (and logged).
const QUEUE: usize = 4096;
const ATTEMPTS: u32 = 3;
const TIMEOUT: Duration = Duration::from_secs(5);

/// Queues mailboxes whose lamps need refreshing.
#[derive(Clone)]
pub(crate) struct Mwi {
    tx: Option<mpsc::Sender<String>>,
}

impl Mwi {
    /// Posts to `base` (e.g. `http://127.0.0.1:8081/mwi/`); `None`: no edge to tell.
    pub(crate) fn start(base: Option<String>, store: Arc<dyn MailStore>) -> Self {
        let Some(base) = base else {
            return Mwi { tx: None };
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(worker(base, store, rx));
        Mwi { tx: Some(tx) }
    }

    /// The counts of `mailbox` changed.
    pub(crate) fn changed(&self, mailbox: &str) {
        if let Some(tx) = &self.tx
            && tx.try_send(mailbox.to_owned()).is_err()
        {
            warn!(mailbox, "mwi: queue full, lamp update dropped");
        }
    }
}

async fn worker(base: String, store: Arc<dyn MailStore>, mut rx: mpsc::Receiver<String>) {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    while let Some(first) = rx.recv().await {
        // Coalesce what queued meanwhile: each mailbox once, in order.
        let mut batch = vec![first];
        while let Ok(m) = rx.try_recv() {
            if !batch.contains(&m) {
                batch.push(m);
            }
        }
        for mailbox in batch {
            let s = store.clone();
            let m = mailbox.clone();
            let counts = match tokio::task::spawn_blocking(move || s.counts(&m)).await {
                Ok(Ok(c)) => c,
                other => {
                    warn!(mailbox, error = ?other.err(), "mwi: cannot read counts");
                    continue;
                }
            };
            let body = format!("{{\"new\":{},\"old\":{}}}", counts.new, counts.saved);
            let url = format!("{base}{mailbox}");
            let mut ok = false;
            for attempt in 1..=ATTEMPTS {
                match post(&client, &url, &body).await {
                    Ok(()) => {
                        debug!(mailbox, body, "mwi: posted");
                        ok = true;
                        break;
                    }
                    Err(e) => {
                        debug!(mailbox, attempt, error = %e, "mwi: post failed");
                        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                    }
                }
            }
            if !ok {
                warn!(mailbox, url, "mwi: edge did not take the counts");
            }
        }
    }
}

async fn post(
    client: &Client<HttpConnector, Full<Bytes>>,
    url: &str,
    body: &str,
) -> Result<(), String> {
    let req = hyper::Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(TIMEOUT, client.request(req))
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let _ = tokio::time::timeout(TIMEOUT, resp.into_body().collect()).await;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("status {status}"))
    }
}
