//! The command line: `heartwire [serve]` runs the agent, `heartwire send` emits lines,
//! `heartwire run` wraps a command as a monitored job.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::cmd::send::Target;

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
    /// Run a command as a monitored job: report its start, then its end with the duration and
    /// the exit code or signal, and exit with the command's code.
    ///
    /// On a unix:// target one connection, opened with `hello`, stays up for the whole run: if
    /// the wrapper is killed (SIGKILL, out of memory), the agent sees the run crash. Other
    /// targets get the start and the end as plain lines. An unreachable agent never stops the
    /// command: one warning goes to stderr and the command runs.
    ///
    /// The command inherits standard input, output and error, the environment and the working
    /// directory; the wrapper writes nothing to stdout and only its own warnings to stderr.
    /// SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 are forwarded to the command. The
    /// command stays in the wrapper's process group, so a Ctrl-C typed in a terminal reaches it
    /// directly as well as through the wrapper.
    ///
    /// Exit status: the command's own; 128 + N if signal N killed it; 127 if it was not found,
    /// 126 if it could not be executed (both reported as `job.error ... reason=spawn_failed`).
    #[command(verbatim_doc_comment)]
    Run(RunArgs),
    /// Print Prometheus alert rules derived from the config: stale, failing, hung, crashed and
    /// stalled jobs, workers down (both still alerting for a while after the agent vanished),
    /// the agent dropping input, not seen (not scraped, or its textfile not written) or not
    /// running its config file, and the config's `alerts:`. Regenerate them whenever the config
    /// changes.
    Rules(RulesArgs),
    /// Print a Grafana dashboard (JSON, importable as is) for the families the config names:
    /// jobs, outbound calls, workers and the agent's own health.
    Dashboard(DashboardArgs),
    /// Check a configuration file and print what the agent would run: listeners, every job's
    /// schedule with its computed thresholds, workers. Exit 0 when valid, 64 when not.
    Check(CheckArgs),
    /// Configuration helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// Options of `heartwire check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// YAML configuration file; the embedded default when left out.
    #[arg(long, short, value_name = "FILE", env = "HEARTWIRE_CONFIG")]
    pub config: Option<PathBuf>,
}

/// `heartwire config …`.
#[derive(Debug, Clone, Subcommand)]
pub enum ConfigCommand {
    /// Print the embedded default configuration: every key, its default and what it does.
    PrintDefault,
    /// Print a `jobs:` block for every job a running agent has seen, read from its `/status`:
    /// configured and learned schedules filled in, jobs without one yet commented out. The
    /// block is a config `heartwire check` accepts as it is.
    Suggest(SuggestArgs),
    /// Print the JSON Schema (draft 2020-12) of the configuration file, for editors (the
    /// `# yaml-language-server: $schema=` modeline) and validators. `heartwire check` stays the
    /// final judge: the schema does not say what spans keys, such as one schedule per job.
    Schema(SchemaArgs),
}

/// Options of `heartwire config schema`.
#[derive(Debug, Clone, Args)]
pub struct SchemaArgs {
    /// Print the Helm chart's variant instead, the `properties.config` node of
    /// `helm/heartwire/values.schema.json`: definitions inside, `http` left to the chart.
    #[arg(long)]
    pub chart: bool,
}

/// Options of `heartwire config suggest`.
#[derive(Debug, Clone, Args)]
pub struct SuggestArgs {
    /// The running agent's `/status` (its read-only listener, `http.address`); a URL without a
    /// path gets `/status`.
    #[arg(long, value_name = "URL", default_value = crate::cmd::suggest::DEFAULT_URL)]
    pub from: String,
}

/// Options of `heartwire serve`.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// YAML configuration file. Without one, the embedded default runs (UDP and TCP on
    /// 127.0.0.1:8125, the Unix stream socket at its default location, /metrics on
    /// 0.0.0.0:8127, POST /ingest on 127.0.0.1:8128).
    #[arg(long, short, value_name = "FILE", env = "HEARTWIRE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Once every listener is bound, write one `NAME ADDRESS` line per listener to FILE
    /// (replaced atomically): how supervisors and tests find ports chosen by the OS (port 0).
    #[arg(long, value_name = "FILE")]
    pub ready_file: Option<PathBuf>,
    /// What to do when the config file is invalid (or unreadable) at start: `exit` with status
    /// 64 (the default), or serve with the embedded `default` config (keeping the file's
    /// `http.address` if it can be read) and report `heartwire_config_last_reload_successful 0`
    /// until the file is fixed, so that a sidecar never keeps its app from starting.
    #[arg(
        long,
        value_enum,
        value_name = "WHAT",
        env = "HEARTWIRE_ON_INVALID_CONFIG",
        default_value_t = OnInvalidConfig::Exit
    )]
    pub on_invalid_config: OnInvalidConfig,
}

/// `heartwire serve --on-invalid-config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OnInvalidConfig {
    /// Exit with status 64, naming the file, line and key.
    #[default]
    Exit,
    /// Serve with the embedded default and report the failed load.
    Default,
}

/// Options of `heartwire send`.
#[derive(Debug, Clone, Args)]
pub struct SendArgs {
    /// Where the agent listens: udp://HOST:PORT, tcp://HOST:PORT, unix:///PATH (stream) or
    /// unixgram:///PATH (datagram). `HEARTWIRE_TO` sets it for a whole pod, as for `run`.
    /// Without either: the agent's Unix stream socket at its default location
    /// ($XDG_RUNTIME_DIR/heartwire/stream.sock, /run/heartwire/stream.sock as root, else
    /// /tmp/heartwire-UID/stream.sock), else tcp://127.0.0.1:8125.
    #[arg(long, value_name = "URL", env = "HEARTWIRE_TO")]
    pub to: Option<Target>,
    /// Lines to send, e.g. 'job.ok viewer-poll 0.3' or 'page.views:1|c'. `-` reads lines from
    /// standard input.
    #[arg(value_name = "LINE", required = true)]
    pub lines: Vec<String>,
}

/// Options of `heartwire run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The job's name, as in `job.ok NAME`.
    #[arg(long, value_name = "NAME", value_parser = crate::cmd::run::parse_name)]
    pub job: String,
    /// Where the agent listens: unix:///PATH (a session for the whole run), udp://HOST:PORT,
    /// tcp://HOST:PORT or unixgram:///PATH. Without it (or `HEARTWIRE_TO`): a session on the
    /// agent's Unix stream socket at its default location ($XDG_RUNTIME_DIR/heartwire/stream.sock,
    /// /run/heartwire/stream.sock as root, else /tmp/heartwire-UID/stream.sock), else plain
    /// lines to tcp://127.0.0.1:8125, said once on stderr, since a killed run is then not seen
    /// as crashed.
    #[arg(long, value_name = "URL", env = "HEARTWIRE_TO")]
    pub to: Option<Target>,
    /// The app name in the session's `hello` line; the job name if left out.
    #[arg(long, value_name = "NAME", value_parser = crate::cmd::run::parse_name)]
    pub app: Option<String>,
    /// The command and its arguments, after `--`.
    #[arg(value_name = "COMMAND", required = true, last = true)]
    pub command: Vec<OsString>,
}

/// Options of `heartwire rules`.
#[derive(Debug, Clone, Args)]
pub struct RulesArgs {
    /// The agent's YAML configuration file; the embedded default when left out.
    #[arg(long, short, value_name = "FILE", env = "HEARTWIRE_CONFIG")]
    pub config: Option<PathBuf>,
    /// `prometheus`: a rule file for `rule_files:`; `prometheus-operator`: a PrometheusRule
    /// object (monitoring.coreos.com/v1).
    #[arg(long, value_enum, default_value_t = RulesFormat::Prometheus)]
    pub format: RulesFormat,
    /// The scrape job that scrapes heartwire, for the rule that fires when it cannot be scraped
    /// (`up{job="NAME"}`).
    #[arg(long, value_name = "NAME", default_value = "heartwire")]
    pub scrape_job: String,
    /// With prometheus-operator: match heartwire's scrape targets by the sidecar's container
    /// name instead (`up{container="NAME"}`), which holds whatever the monitor is called.
    #[arg(long, value_name = "NAME", conflicts_with = "scrape_job")]
    pub scrape_container: Option<String>,
    /// How HeartwireDown tells that heartwire is not seen: `up` (the scrape of heartwire fails
    /// or has no target), `textfile` (node_exporter reports heartwire's textfile too old, or
    /// none: for a heartwire nobody scrapes), or `auto`: `textfile` when the config enables
    /// `textfile:`, else `up`.
    #[arg(long, value_enum, default_value_t = AgentDown::Auto)]
    pub agent_down: AgentDown,
    /// Whether Prometheus scrapes heartwire with `honor_labels: true` (as the Helm chart's
    /// monitor does), keeping its `job` label, or without, renaming it `exported_job`: the rules
    /// read the job label under that name. Only a job label called `job` is renamed.
    #[arg(
        long,
        value_name = "BOOL",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub honor_labels: bool,
    /// `metadata.name` of the PrometheusRule object.
    #[arg(long, value_name = "NAME", default_value = "heartwire")]
    pub name: String,
}

/// How `HeartwireDown` watches heartwire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AgentDown {
    /// `textfile` when the config enables `textfile:`, else `up`.
    Auto,
    /// The scrape of heartwire: `up == 0 or absent(up)`.
    Up,
    /// The age of heartwire's textfile as node_exporter reports it.
    Textfile,
}

/// What `heartwire rules` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RulesFormat {
    /// A Prometheus rule file.
    Prometheus,
    /// A prometheus-operator PrometheusRule object.
    PrometheusOperator,
}

/// Options of `heartwire dashboard`.
#[derive(Debug, Clone, Args)]
pub struct DashboardArgs {
    /// The agent's YAML configuration file; the embedded default when left out.
    #[arg(long, short, value_name = "FILE", env = "HEARTWIRE_CONFIG")]
    pub config: Option<PathBuf>,
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
                assert_eq!(
                    args.to,
                    Some("tcp://127.0.0.1:9".parse::<Target>().unwrap())
                );
                assert_eq!(args.lines, ["a:1|c", "-"]);
            }
            other => panic!("expected send, got {other:?}"),
        }
    }

    #[test]
    fn rules_take_a_format_and_one_way_to_find_the_scrape_target() {
        let cli = Cli::try_parse_from([
            "heartwire",
            "rules",
            "--format",
            "prometheus-operator",
            "--scrape-container",
            "agent",
        ])
        .unwrap();
        match cli.into_command() {
            Command::Rules(args) => {
                assert_eq!(args.agent_down, AgentDown::Auto);
                assert_eq!(args.format, RulesFormat::PrometheusOperator);
                assert_eq!(args.scrape_container.as_deref(), Some("agent"));
                assert_eq!(
                    (args.scrape_job.as_str(), args.name.as_str()),
                    ("heartwire", "heartwire")
                );
            }
            other => panic!("expected rules, got {other:?}"),
        }
        let both = [
            "heartwire",
            "rules",
            "--scrape-job",
            "hw",
            "--scrape-container",
            "hw",
        ];
        assert!(Cli::try_parse_from(both).is_err());
        let unknown = ["heartwire", "rules", "--format", "grafana"];
        assert!(Cli::try_parse_from(unknown).is_err());
        let cli = Cli::try_parse_from(["heartwire", "rules", "--agent-down", "textfile"]).unwrap();
        match cli.into_command() {
            Command::Rules(args) => assert_eq!(args.agent_down, AgentDown::Textfile),
            other => panic!("expected rules, got {other:?}"),
        }
    }

    #[test]
    fn rules_assume_honor_labels_unless_told_false() {
        let honor = |arguments: &[&str]| {
            let cli = Cli::try_parse_from(["heartwire", "rules"].iter().chain(arguments)).unwrap();
            match cli.into_command() {
                Command::Rules(args) => args.honor_labels,
                other => panic!("expected rules, got {other:?}"),
            }
        };
        assert!(honor(&[]));
        assert!(honor(&["--honor-labels", "true"]));
        assert!(!honor(&["--honor-labels", "false"]));
        for wrong in [&["--honor-labels"][..], &["--honor-labels", "no"]] {
            let arguments = ["heartwire", "rules"].iter().chain(wrong);
            assert!(Cli::try_parse_from(arguments).is_err(), "{wrong:?} parsed");
        }
    }

    #[test]
    fn send_without_lines_is_a_usage_error() {
        assert!(Cli::try_parse_from(["heartwire", "send"]).is_err());
    }

    fn run_args(arguments: &[&str]) -> RunArgs {
        let cli = Cli::try_parse_from(["heartwire", "run"].iter().chain(arguments)).unwrap();
        match cli.into_command() {
            Command::Run(args) => args,
            other => panic!("expected run, got {other:?}"),
        }
    }

    #[test]
    fn run_takes_a_job_and_the_command_after_the_double_dash() {
        let args = run_args(&["--job", "nightly", "--", "sh", "-c", "exit 3"]);
        assert_eq!(args.job, "nightly");
        assert_eq!(args.app, None);
        assert_eq!(args.command, ["sh", "-c", "exit 3"]);
    }

    #[test]
    fn run_reports_to_the_default_place_unless_told_otherwise() {
        // Only when HEARTWIRE_TO is unset: the environment of the test run decides the default.
        if std::env::var_os("HEARTWIRE_TO").is_none() {
            let args = run_args(&["--job", "j", "--", "true"]);
            assert_eq!(args.to, None);
        }
        let args = run_args(&[
            "--job",
            "j",
            "--to",
            "udp://127.0.0.1:9",
            "--app",
            "a",
            "--",
            "true",
        ]);
        assert_eq!(args.to, Some(Target::Udp("127.0.0.1:9".into())));
        assert_eq!(args.app.as_deref(), Some("a"));
    }

    #[test]
    fn run_options_after_the_double_dash_belong_to_the_command() {
        let args = run_args(&["--job", "j", "--", "tool", "--job", "other", "--to"]);
        assert_eq!(args.command, ["tool", "--job", "other", "--to"]);
    }

    #[test]
    fn run_without_a_command_job_or_double_dash_is_a_usage_error() {
        for arguments in [
            &["run", "--job", "j"][..],
            &["run", "--job", "j", "--"],
            &["run", "--", "true"],
            &["run", "--job", "j", "true"],
            &["run", "--job", "two words", "--", "true"],
        ] {
            let result = Cli::try_parse_from(["heartwire"].iter().chain(arguments));
            assert!(result.is_err(), "{arguments:?} parsed");
        }
    }
}
