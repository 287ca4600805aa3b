//! `parley vxml run`: one application on the text platform. The same interpreter and fetcher as
//! a real call, with prompts printed and DTMF typed, so authors can test an app without a phone.

use anyhow::Context;
use vxml_interp::platform::text::TextPlatform;
use vxml_interp::{HttpFetcher, Interpreter, SessionInfo};

/// Runs the app; returns the process exit code (0 = the app ended normally, 1 = it ended on an
/// error event such as error.badfetch).
pub(crate) fn run(target: &str, input: Vec<String>) -> anyhow::Result<std::process::ExitCode> {
    let url = resolve_target(target)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    let exit = rt.block_on(async {
        let fetcher = HttpFetcher::new();
        let mut platform = if input.is_empty() {
            TextPlatform::interactive()
        } else {
            TextPlatform::scripted(input)
        };
        let mut interp = Interpreter::new(SessionInfo {
            call_id: "console".into(),
            local_uri: "sip:console@localhost".into(),
            remote_uri: "sip:caller@localhost".into(),
            protocol_name: "sip".into(),
            redirect: Vec::new(),
        });
        vxml_interp::run(&mut interp, &mut platform, &fetcher, url).await
    });
    match &exit.value {
        Some(v) => println!("[exit] {} {v}", exit.reason),
        None => println!("[exit] {}", exit.reason),
    }
    Ok(if exit.reason.starts_with("error") {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    })
}

/// A URL as given, or a file path made absolute and turned into a file:// URL.
fn resolve_target(target: &str) -> anyhow::Result<url::Url> {
    if let Ok(u) = url::Url::parse(target)
        && matches!(u.scheme(), "http" | "https" | "file")
    {
        return Ok(u);
    }
    let path = std::fs::canonicalize(target)
        .with_context(|| format!("{target}: not a URL and not a readable file"))?;
    url::Url::from_file_path(&path)
        .map_err(|()| anyhow::anyhow!("{}: cannot make a file URL", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_resolve() {
        assert_eq!(
            resolve_target("http://127.0.0.1:8080/demo/hello.vxml")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:8080/demo/hello.vxml"
        );
        let u = resolve_target("Cargo.toml").unwrap();
        assert_eq!(u.scheme(), "file");
        assert!(u.path().ends_with("/Cargo.toml"));
        assert!(resolve_target("/no/such/file.vxml").is_err());
    }
}
