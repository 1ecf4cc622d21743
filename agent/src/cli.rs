//! The command line: `heartwire [serve]` runs the agent, `heartwire send` emits lines.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::send::Target;

/// A sidecar agent that turns one-line job, heartbeat and outbound-call reports into health
/// metrics. Without a subcommand it runs the agent (`serve`).
#[derive(Debug, Parser)]
#[command(name = "heartwire", version, about, long_about = None, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to do; `serve` when left out.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `serve`'s options, accepted without the word `serve`.
    #[command(flatten)]
    pub serve: ServeArgs,
}

impl Cli {
    /// The subcommand to run, `serve` when none was given.
    pub fn into_command(self) -> Command {
        self.command.unwrap_or(Command::Serve(self.serve))
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent: listen for lines, serve /metrics. Stops cleanly on SIGTERM or SIGINT.
    Serve(ServeArgs),
    /// Send lines to a running agent, without nc. Lines are checked first; nothing is sent if
    /// one is invalid.
    Send(SendArgs),
}

/// Options of `heartwire serve`.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// YAML configuration file. Without one, the embedded default runs (UDP and TCP on
    /// 127.0.0.1:8125, /metrics on 0.0.0.0:8127, POST /ingest on 127.0.0.1:8128).
    #[arg(long, short, value_name = "FILE", env = "HEARTWIRE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Once every listener is bound, write one `NAME ADDRESS` line per listener to FILE
    /// (replaced atomically): how supervisors and tests find ports chosen by the OS (port 0).
    #[arg(long, value_name = "FILE")]
    pub ready_file: Option<PathBuf>,
}

/// Options of `heartwire send`.
#[derive(Debug, Clone, Args)]
pub struct SendArgs {
    /// Where the agent listens: udp://HOST:PORT, tcp://HOST:PORT, unix:///PATH (stream) or
    /// unixgram:///PATH (datagram).
    #[arg(long, value_name = "URL", default_value = "udp://127.0.0.1:8125")]
    pub to: Target,
    /// Lines to send, e.g. 'job.ok viewer-poll 0.3' or 'page.views:1|c'. `-` reads lines from
    /// standard input.
    #[arg(value_name = "LINE", required = true)]
    pub lines: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_subcommand_means_serve_with_its_options() {
        let cli = Cli::try_parse_from(["heartwire", "--config", "agent.yaml"]).unwrap();
        match cli.into_command() {
            Command::Serve(args) => assert_eq!(args.config, Some(PathBuf::from("agent.yaml"))),
            other => panic!("expected serve, got {other:?}"),
        }
    }

    #[test]
    fn send_takes_a_target_and_lines() {
        let cli = Cli::try_parse_from([
            "heartwire",
            "send",
            "--to",
            "tcp://127.0.0.1:9",
            "a:1|c",
            "-",
        ])
        .unwrap();
        match cli.into_command() {
            Command::Send(args) => {
                assert_eq!(args.to, "tcp://127.0.0.1:9".parse::<Target>().unwrap());
                assert_eq!(args.lines, ["a:1|c", "-"]);
            }
            other => panic!("expected send, got {other:?}"),
        }
    }

    #[test]
    fn send_without_lines_is_a_usage_error() {
        assert!(Cli::try_parse_from(["heartwire", "send"]).is_err());
    }
}
