//! `parley`: the one binary. Parses the CLI, loads the configuration and starts the roles.
//! The roles themselves live in the workspace crates; this crate only wires them together.

mod config;
mod conformance;
mod edge_http;
mod logging;
mod serve;
mod users_cli;
mod vxml_cli;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Parley: a VoiceXML-first programmable IVR/media server and small IP PBX.
///
/// `parley serve` runs the SIP edge, the media server and the apps HTTP service in one process
/// with embedded defaults (data in ./data, prompts from ./prompts, SIP on 0.0.0.0:5060,
/// media server SIP on 127.0.0.1:5070, RTP 20000-29999, HTTP on 127.0.0.1:8080). Call 600 to
/// reach the demo application. Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=debug) to change
/// the level.
#[derive(Debug, Parser)]
#[command(name = "parley", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run Parley's roles (all three by default) until Ctrl-C or SIGTERM.
    Serve {
        /// TOML configuration file; any key it sets overrides the embedded default
        /// (see parley.example.toml for every key).
        #[arg(long, short = 'c', value_name = "FILE")]
        config: Option<PathBuf>,
        /// Run only these roles (repeat or comma-separate); default: all.
        #[arg(long, value_enum, value_delimiter = ',', value_name = "ROLE")]
        role: Vec<Role>,
    },
    /// Users: extensions, names, aliases, email, voicemail PIN and SIP password (stored as
    /// hashes only).
    Users {
        #[command(subcommand)]
        command: UsersCommand,
        /// The configuration whose data_dir holds the users and whose edge.domain is the
        /// digest realm.
        #[arg(long, short = 'c', value_name = "FILE", global = true)]
        config: Option<PathBuf>,
    },
    /// VoiceXML tools.
    Vxml {
        #[command(subcommand)]
        command: VxmlCommand,
    },
    /// Run a VoiceXML conformance suite: a folder with manifest.tsv (id, category, start,
    /// features) and one folder per test, as ../shared/conformance/vxml-ir. Each test is
    /// served over HTTP on a loopback port and run against a simulated caller that follows
    /// the prompts ("Press '1'", "Say 'Chicago'", "Say nothing", "Hang up now"). Prints
    /// `PASS id` or `FAIL id: reason` per test and `N passed, N failed`.
    Conformance {
        /// The suite folder.
        dir: PathBuf,
        /// Run only this test (repeatable).
        #[arg(long, value_name = "ID")]
        only: Vec<String>,
        /// Seconds a test may run before it fails.
        #[arg(long, default_value_t = 30, value_name = "SECS")]
        timeout: u64,
        /// Lines of `id  reason`: the exit status is non-zero when a test fails that is not
        /// listed, or a listed one passes.
        #[arg(long, value_name = "FILE")]
        known_failures: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Add or update users from a CSV file whose header row names the columns, in any order:
    /// `user,pin,sip_password,first_name,last_name,aliases,email` (only `user` is required;
    /// aliases are separated by spaces or `;`). Prints one line per row (added, updated,
    /// unchanged or the error). If any row is bad, nothing is written. An empty pin or
    /// sip_password cell keeps the stored one, so re-running a file changes nothing. Works
    /// while `parley serve` runs (through the edge's loopback HTTP endpoint).
    Import {
        /// The CSV file.
        file: PathBuf,
        /// Check and report, write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// List users (never their secrets).
    List,
}

#[derive(Debug, Subcommand)]
enum VxmlCommand {
    /// Run a VoiceXML application on the text platform: prompts are printed
    /// (`[audio] URL`, `[tts] text`), DTMF is typed on stdin or given with --input.
    Run {
        /// The application: an http(s):// or file:// URL, or a path to a .vxml file.
        target: String,
        /// Scripted caller inputs, one per collection, recording or transfer, in order:
        /// `dtmf:123#` (or bare keys `123#`), `say:new york`, `silence` (or ""), `hangup`,
        /// `record:3s`, `transfer:busy|noanswer|network_busy|far_end_disconnect|...`.
        /// Once they are used up the caller is silent. With --input, stdin is not read.
        #[arg(long, short = 'i', value_name = "INPUT")]
        input: Vec<String>,
    },
}

/// One of the roles `parley serve` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Role {
    /// SIP edge: transports, proxy and dial plan.
    Edge,
    /// Media server: answers calls, runs VXML apps, plays and hears RTP.
    Media,
    /// Apps: the HTTP service with the demo app, prompts and (later) voicemail.
    Apps,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // One readable line with the whole cause chain, not a debug dump.
            eprintln!("parley: error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    // reqwest is built without a bundled TLS provider: choose ring once for the process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli.command {
        Command::Serve { config, role } => {
            let cfg = config::Config::load(config.as_deref())?;
            logging::init(&cfg.log);
            let roles = if role.is_empty() {
                vec![Role::Edge, Role::Media, Role::Apps]
            } else {
                role
            };
            serve::run(cfg, roles)?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Users { command, config } => {
            let cfg = config::Config::load(config.as_deref())?;
            logging::init("warn");
            match command {
                UsersCommand::Import { file, dry_run } => users_cli::import(&cfg, &file, dry_run),
                UsersCommand::List => users_cli::list(&cfg),
            }
        }
        Command::Conformance {
            dir,
            only,
            timeout,
            known_failures,
        } => {
            logging::init("error");
            conformance::run(conformance::Options {
                dir,
                only,
                timeout: std::time::Duration::from_secs(timeout.max(1)),
                known_failures,
            })
        }
        Command::Vxml {
            command: VxmlCommand::Run { target, input },
        } => {
            // The transcript: session start and end, each fetch, events and <log> lines.
            logging::init("warn,vxml_interp=info");
            vxml_cli::run(&target, input)
        }
    }
}
