//! `heartwire check`: validates a configuration and says what the agent would run with, and
//! `heartwire config print-default`: the embedded default, documented.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use crate::aggregate::Family;
use crate::config::{self, Config};
use crate::health::job::Readiness;
use crate::rules;

/// Exit status for a configuration that does not load (as `serve` uses; sysexits' EX_USAGE).
pub const EXIT_INVALID: u8 = 64;

/// Runs `heartwire check`: the summary on stdout and exit 0, or the error on stderr and exit 64.
pub fn main(path: Option<&Path>) -> ExitCode {
    match load(path) {
        Ok((origin, config)) => {
            print!("{}", summary(&origin, &config));
            ExitCode::SUCCESS
        }
        Err(error) => {
            #[allow(clippy::print_stderr)] // the command's own output, not a log line
            {
                eprintln!("invalid configuration: {error}");
            }
            ExitCode::from(EXIT_INVALID)
        }
    }
}

/// Prints the embedded default configuration.
pub fn print_default() -> ExitCode {
    print!("{}", config::DEFAULT_YAML);
    ExitCode::SUCCESS
}

/// Prints the JSON Schema of the configuration file, or (`chart`) the Helm chart's variant.
pub fn print_schema(chart: bool) -> ExitCode {
    if chart {
        print!("{}", config::schema::chart_config_text());
    } else {
        print!("{}", config::schema::document_text());
    }
    ExitCode::SUCCESS
}

fn load(path: Option<&Path>) -> Result<(String, Config), config::ConfigError> {
    match path {
        Some(path) => Ok((path.display().to_string(), config::from_file(path)?)),
        None => Ok((
            "<embedded default>".to_owned(),
            config::from_str(config::DEFAULT_YAML, "<embedded default>")?,
        )),
    }
}

/// What a valid configuration runs: listeners, jobs with their computed thresholds, workers.
pub fn summary(origin: &str, config: &Config) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{origin}: valid");
    let listen = &config.fixed.listen;
    let _ = writeln!(out, "\nlisteners:");
    let mut listener = |on: bool, what: &str, place: String| {
        if on {
            let _ = writeln!(out, "  {what:<14} {place}");
        }
    };
    listener(listen.udp.enabled, "udp", listen.udp.address.to_string());
    listener(listen.tcp.enabled, "tcp", listen.tcp.address.to_string());
    let gram = &listen.unix_datagram;
    listener(
        gram.enabled,
        "unix datagram",
        format!("{} (mode {:04o})", gram.path.display(), gram.mode.0),
    );
    let stream = &listen.unix_stream;
    listener(
        stream.enabled,
        "unix stream",
        format!(
            "{} (mode {:04o}){}",
            stream.socket_path().display(),
            stream.mode.0,
            if stream.path.is_none() {
                ", default location"
            } else {
                ""
            }
        ),
    );
    listener(
        listen.http.enabled,
        "POST /ingest",
        format!("http://{}/ingest", listen.http.address),
    );
    listener(
        true,
        "GET /metrics",
        format!("http://{}/metrics", config.fixed.http.address),
    );

    let live = &config.live;
    let _ = writeln!(out, "\njobs ({}):", live.jobs.len());
    for (name, spec) in &live.jobs {
        let schedule = match spec.schedule.zone() {
            "UTC" if spec.schedule.describe().starts_with("every") => spec.schedule.describe(),
            zone => format!("cron \"{}\" in {zone}", spec.schedule.describe()),
        };
        let _ = write!(
            out,
            "  {name}: {schedule}; period {}, stale after {}, late after {}, hung after {}",
            words(spec.schedule.period()),
            words(spec.alert_after),
            words(spec.late_after),
            words(spec.max_runtime),
        );
        if let Some(quiet) = spec.stall_after {
            let _ = write!(out, ", stalled after {}", words(quiet));
        }
        if spec.failure_threshold > 1 {
            let _ = write!(out, ", failing after {} failures", spec.failure_threshold);
        }
        let _ = writeln!(
            out,
            "{}",
            match spec.readiness {
                Readiness::Off => "",
                Readiness::Success => "; gates /readyz",
                Readiness::Completed => "; gates /readyz (any run end counts)",
            }
        );
    }
    let _ = writeln!(out, "\nworkers ({}):", live.workers.len());
    for (name, ttl) in &live.workers {
        let _ = writeln!(
            out,
            "  {name}: down after {} without a heartbeat",
            words(*ttl)
        );
    }
    let statsd = &live.statsd;
    let rules = statsd.mapping.len();
    match &statsd.mapping_file {
        Some(file) => {
            let _ = writeln!(
                out,
                "\nstatsd mapping: {rules} rules from {}",
                file.display()
            );
        }
        None if rules > 0 => {
            let _ = writeln!(out, "\nstatsd mapping: {rules} rules");
        }
        None => {}
    }
    if !live.alerts.0.is_empty() {
        let names: Vec<&str> = live.alerts.0.keys().map(String::as_str).collect();
        let _ = writeln!(out, "\nalerts: {}", names.join(", "));
    }
    if !live.dashboard.rows.is_empty() {
        let rows: Vec<String> = live
            .dashboard
            .rows
            .iter()
            .map(|row| format!("{} ({} panels)", row.title, row.panels.len()))
            .collect();
        let _ = writeln!(out, "\ndashboard rows: {}", rows.join(", "));
    }
    let names = &config.fixed.families;
    let _ = writeln!(
        out,
        "\nfamilies: {}, {}, {}, {}",
        names.name(Family::JobRuns),
        names.name(Family::JobLastSuccess),
        names.name(Family::HttpRequests),
        names.name(Family::WorkerStatus)
    );
    let _ = writeln!(out, "{}", rules::prometheus::honor_labels_line(names));
    out
}

fn words(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 11: `every: 300000y` passed `check`, then the agent panicked on a date overflow.
    /// `check`, `serve` and the reload all load through `config::from_file[_text]`.
    #[test]
    fn check_refuses_an_out_of_range_schedule_naming_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.yaml");
        std::fs::write(&path, "jobs: { forever: { every: 300000y } }\n").unwrap();
        let error = load(Some(&path)).unwrap_err().to_string();
        assert_eq!(
            error,
            format!(
                "{}:1:27: jobs.forever.every: 300000y is out of range: use 1s to 10y",
                path.display()
            )
        );
        assert_eq!(main(Some(&path)), ExitCode::from(EXIT_INVALID));
    }

    #[test]
    fn the_summary_shows_listeners_and_each_jobs_computed_thresholds() {
        let config = config::from_str(
            "jobs:\n  viewer-poll: { cron: \"* * * * *\", readiness: true }\n  daily: { cron: \"22 4 * * *\", tz: Europe/Berlin }\n  crawl: { every: 15m, stall_after: 10m }\nworkers:\n  mailer: { ttl: 45s }\n",
            "agent.yaml",
        )
        .unwrap();
        let text = summary("agent.yaml", &config);
        assert!(text.starts_with("agent.yaml: valid\n"), "{text}");
        assert!(text.contains("  udp            127.0.0.1:8125\n"), "{text}");
        assert!(
            text.contains("  GET /metrics   http://0.0.0.0:8127/metrics\n"),
            "{text}"
        );
        assert!(text.contains("  viewer-poll: cron \"* * * * *\" in UTC; period 1m, stale after 5m, late after 15s, hung after 1m; gates /readyz\n"), "{text}");
        assert!(
            text.contains(
                "  daily: cron \"22 4 * * *\" in Europe/Berlin; period 1day, stale after 1day 6h,"
            ),
            "{text}"
        );
        assert!(text.contains("  crawl: every 15m; period 15m, stale after 1h 15m, late after 3m 45s, hung after 15m, stalled after 10m\n"), "{text}");
        assert!(
            text.contains("  mailer: down after 45s without a heartbeat\n"),
            "{text}"
        );
        assert!(
            text.contains("\nrules: `heartwire rules` assumes honor_labels: true (the Helm chart's monitor); `--honor-labels false` reads the job label as exported_job\n"),
            "{text}"
        );
    }
}
