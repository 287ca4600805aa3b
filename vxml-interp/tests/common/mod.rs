//! Shared helpers: a `Fetcher` backed by files under a folder, served as `http://app.test/...`.
#![allow(dead_code)] // each test binary uses a subset

use std::cell::RefCell;
use std::path::PathBuf;

use vxml_interp::platform::sim::SimPlatform;
use vxml_interp::{ExitInfo, FetchError, FetchRequest, Fetched, Fetcher, Interpreter, SessionInfo};

/// Serves `root/<path>` for `http://app.test/<path>` and records every request.
pub(crate) struct MapFetcher {
    pub(crate) root: PathBuf,
    pub(crate) requests: RefCell<Vec<FetchRequest>>,
    /// Maps a requested `NAME.txml` to `NAME.vxml` (the W3C IR convention).
    pub(crate) txml_to_vxml: bool,
}

impl MapFetcher {
    pub(crate) fn fixtures() -> Self {
        Self::new(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data"))
    }

    pub(crate) fn new(root: PathBuf) -> Self {
        Self {
            root,
            requests: RefCell::new(Vec::new()),
            txml_to_vxml: false,
        }
    }
}

impl Fetcher for MapFetcher {
    async fn fetch(&self, req: FetchRequest) -> Result<Fetched, FetchError> {
        // Yield so that the caller's timeout can fire even when every fetch is ready at once.
        tokio::task::yield_now().await;
        self.requests.borrow_mut().push(req.clone());
        let mut path = req.url.path().trim_start_matches('/').to_owned();
        if self.txml_to_vxml
            && let Some(stem) = path.strip_suffix(".txml")
        {
            path = format!("{stem}.vxml");
        }
        match std::fs::read(self.root.join(&path)) {
            Ok(body) => Ok(Fetched {
                url: req.url.clone(),
                status: 200,
                content_type: Some("application/voicexml+xml".into()),
                body,
            }),
            Err(_) => Err(FetchError::Status {
                url: req.url.to_string(),
                status: 404,
            }),
        }
    }
}

pub(crate) fn url(path: &str) -> url::Url {
    url::Url::parse("http://app.test/")
        .unwrap()
        .join(path)
        .unwrap()
}

pub(crate) fn session() -> SessionInfo {
    SessionInfo {
        call_id: "test-call".into(),
        local_uri: "sip:ivr@127.0.0.1".into(),
        remote_uri: "sip:alice@127.0.0.1".into(),
        protocol_name: "sip".into(),
        redirect: vec![vxml_interp::Redirect {
            uri: "sip:201@127.0.0.1".into(),
            reason: None,
        }],
    }
}

/// Runs `path` to its end with scripted keys, bounded in time.
pub(crate) fn run_doc(path: &str, keys: &[&str]) -> (ExitInfo, SimPlatform, MapFetcher) {
    let fetcher = MapFetcher::fixtures();
    let mut platform = SimPlatform::new(keys.iter().copied());
    let exit = block_on(&mut platform, &fetcher, url(path));
    (exit, platform, fetcher)
}

pub(crate) fn block_on<F: Fetcher>(
    platform: &mut SimPlatform,
    fetcher: &F,
    url: url::Url,
) -> ExitInfo {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut interp = Interpreter::new(session());
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            vxml_interp::run(&mut interp, platform, fetcher, url),
        )
        .await
        .expect("session ends in time")
    })
}

/// Serves documents from memory as `http://app.test/<name>`, recording requests.
pub(crate) struct Docs {
    pub(crate) docs: std::collections::HashMap<String, (String, &'static str)>,
    pub(crate) requests: RefCell<Vec<FetchRequest>>,
}

impl Docs {
    pub(crate) fn new(docs: &[(&str, &str)]) -> Self {
        Self {
            docs: docs
                .iter()
                .map(|(n, d)| {
                    (
                        (*n).to_owned(),
                        ((*d).to_owned(), "application/voicexml+xml"),
                    )
                })
                .collect(),
            requests: RefCell::new(Vec::new()),
        }
    }

    pub(crate) fn with(mut self, name: &str, body: &str, content_type: &'static str) -> Self {
        self.docs
            .insert(name.to_owned(), (body.to_owned(), content_type));
        self
    }

    /// Runs `start` with `platform`, bounded in time.
    pub(crate) fn run(&self, start: &str, platform: &mut SimPlatform) -> ExitInfo {
        block_on(platform, self, url(start))
    }
}

impl Fetcher for Docs {
    async fn fetch(&self, req: FetchRequest) -> Result<Fetched, FetchError> {
        self.requests.borrow_mut().push(req.clone());
        let name = req.url.path().trim_start_matches('/');
        match self.docs.get(name) {
            Some((body, ct)) => Ok(Fetched {
                url: req.url.clone(),
                status: 200,
                content_type: Some((*ct).to_owned()),
                body: body.clone().into_bytes(),
            }),
            None => Err(FetchError::Status {
                url: req.url.to_string(),
                status: 404,
            }),
        }
    }
}
