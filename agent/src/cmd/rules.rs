//! `heartwire rules` and `heartwire dashboard`: what [`crate::rules`] derives from a config, on
//! standard output.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use crate::cmd::cli::{AgentDown, DashboardArgs, RulesArgs, RulesFormat};
use crate::config;
use crate::rules::prometheus::{self, Scrape};
use crate::rules::{self, ScrapeTarget, Source};

/// Exit status for a configuration that does not load (as `serve` uses; sysexits' EX_USAGE).
const EXIT_CONFIG: u8 = 64;

/// Runs `heartwire rules`: the rules on stdout, or the config error on stderr and exit 64.
pub fn rules_main(args: &RulesArgs) -> ExitCode {
    let Some(source) = load(args.config.as_deref()) else {
        return ExitCode::from(EXIT_CONFIG);
    };
    let Some(target) = target(args, &source) else {
        return ExitCode::from(EXIT_CONFIG);
    };
    let scrape = Scrape {
        target,
        honor_labels: args.honor_labels,
    };
    let groups = prometheus::groups(&source, &scrape);
    let header = prometheus::header(&source.names, &scrape);
    let text = match args.format {
        RulesFormat::Prometheus => prometheus::rule_file(&header, &groups),
        RulesFormat::PrometheusOperator => {
            prometheus::prometheus_rule(&header, &groups, &args.name)
        }
    };
    print_out(&text)
}

/// How `HeartwireDown` finds heartwire: `--agent-down`, `auto` deciding by `textfile.enabled`.
fn target(args: &RulesArgs, source: &Source) -> Option<ScrapeTarget> {
    let textfile = match args.agent_down {
        AgentDown::Auto => source.textfile.enabled,
        AgentDown::Up => false,
        AgentDown::Textfile if source.textfile.enabled => true,
        AgentDown::Textfile => {
            complain(
                "--agent-down textfile: the config writes no textfile (`textfile.enabled` is false); enable `textfile:` or use --agent-down up",
            );
            return None;
        }
    };
    Some(match &args.scrape_container {
        _ if textfile => ScrapeTarget::textfile(&source.textfile),
        Some(container) => ScrapeTarget::Container(container.clone()),
        None => ScrapeTarget::Job(args.scrape_job.clone()),
    })
}

/// Runs `heartwire dashboard`: the dashboard JSON on stdout.
pub fn dashboard_main(args: &DashboardArgs) -> ExitCode {
    let Some(source) = load(args.config.as_deref()) else {
        return ExitCode::from(EXIT_CONFIG);
    };
    print_out(&rules::dashboard::json(&source))
}

fn load(path: Option<&Path>) -> Option<Source> {
    let loaded = match path {
        Some(path) => config::from_file(path),
        None => config::from_str(config::DEFAULT_YAML, "<embedded default>"),
    };
    match loaded {
        Ok(config) => Some(Source::from_config(&config)),
        Err(error) => {
            complain(&format!("invalid configuration: {error}"));
            None
        }
    }
}

fn print_out(text: &str) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`| head`) is the reader's choice, not a failure to report.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            complain(&format!("cannot write to standard output: {error}"));
            ExitCode::FAILURE
        }
    }
}

#[allow(clippy::print_stderr)] // the command's own message, not a log line
fn complain(message: &str) {
    eprintln!("{message}");
}
