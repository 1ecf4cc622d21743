//! `heartwire config suggest`: a `jobs:` block for every job a running agent has seen, read from
//! its `/status`, ready to paste into the config (`heartwire check` accepts it as it is).
//!
//! A job with a schedule gets it, as the config writes it: `every: 1m`, or `cron: "0 * * * *"`
//! with its `tz` when not UTC. A comment after each says where it came from: the config (whose
//! other keys, thresholds and readiness, are not repeated), or learned from the job's steady
//! successes. A job that reported without a schedule yet is listed commented out, with how many
//! successes were seen towards learning one.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;

use crate::cmd::cli::SuggestArgs;

/// Where `--from` points by default: the embedded default's read-only listener.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8127/status";

/// How long the agent may take to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Why no block could be printed.
#[derive(Debug, thiserror::Error)]
pub enum SuggestError {
    /// `--from` is not a URL.
    #[error("--from {url:?} is not a URL: write http://HOST:PORT/status")]
    Url {
        /// What was given.
        url: String,
    },
    /// The agent could not be reached, or answered with an error.
    #[error(
        "cannot read {url}: {reason}; is the agent running, and does --from name its read-only listener (http.address)?"
    )]
    Fetch {
        /// The URL asked.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The answer is not heartwire's `/status` document.
    #[error("{url} did not answer heartwire's /status JSON ({reason}): point --from at /status")]
    Document {
        /// The URL asked.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl SuggestError {
    fn exit_code(&self) -> ExitCode {
        match self {
            // EX_USAGE, EX_UNAVAILABLE, EX_DATAERR.
            SuggestError::Url { .. } => ExitCode::from(64),
            SuggestError::Fetch { .. } => ExitCode::from(69),
            SuggestError::Document { .. } => ExitCode::from(65),
        }
    }
}

/// Runs `heartwire config suggest`: the block on stdout, or the error on stderr.
pub fn main(args: &SuggestArgs) -> ExitCode {
    let result = status_url(&args.from).and_then(|url| {
        let body = fetch(&url)?;
        let document: Value =
            serde_json::from_str(&body).map_err(|error| SuggestError::Document {
                url: url.to_string(),
                reason: error.to_string(),
            })?;
        suggest(&document, url.as_str())
    });
    match result {
        Ok(block) => {
            let _ = std::io::stdout().lock().write_all(block.as_bytes());
            ExitCode::SUCCESS
        }
        Err(error) => {
            let _ = writeln!(
                std::io::stderr().lock(),
                "heartwire config suggest: {error}"
            );
            error.exit_code()
        }
    }
}

/// `--from` as a URL; one without a path asks for `/status`.
fn status_url(text: &str) -> Result<reqwest::Url, SuggestError> {
    let mut url = reqwest::Url::parse(text).map_err(|_| SuggestError::Url {
        url: text.to_owned(),
    })?;
    if url.path() == "/" {
        url.set_path("/status");
    }
    Ok(url)
}

/// The body `url` answers with, on a runtime of its own.
fn fetch(url: &reqwest::Url) -> Result<String, SuggestError> {
    let failed = |reason: String| SuggestError::Fetch {
        url: url.to_string(),
        reason,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| failed(format!("no runtime: {error}")))?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(TIMEOUT)
            .build()
            .map_err(|error| failed(error.to_string()))?;
        let response = client
            .get(url.clone())
            .send()
            .await
            .map_err(|error| failed(error.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(failed(format!("HTTP {status}")));
        }
        response
            .text()
            .await
            .map_err(|error| failed(error.to_string()))
    })
}

/// The `jobs:` block for the `/status` document `status`, read from `from`.
pub fn suggest(status: &Value, from: &str) -> Result<String, SuggestError> {
    let malformed = |reason: &str| SuggestError::Document {
        url: from.to_owned(),
        reason: reason.to_owned(),
    };
    let list = |key: &str| -> Result<&[Value], SuggestError> {
        match &status[key] {
            Value::Array(items) => Ok(items),
            // An agent older than learned schedules lists no unscheduled jobs.
            Value::Null if key == "unscheduled_jobs" => Ok(&[]),
            _ => Err(malformed(&format!("no `{key}` list"))),
        }
    };
    let mut entries = Vec::new();
    for job in list("jobs")? {
        entries.push(scheduled(job).ok_or_else(|| malformed("a job without a name or schedule"))?);
    }
    let mut unscheduled = Vec::new();
    for job in list("unscheduled_jobs")? {
        let name = job["job"]
            .as_str()
            .ok_or_else(|| malformed("a job without a name"))?;
        let seen = job["successes_seen"].as_u64().unwrap_or(0);
        unscheduled.push(format!(
            "  # {}: {{ every: ? }}    # no steady cadence yet ({seen} of {} successes seen): give it every: or cron:",
            key(name),
            crate::health::learn::RUNS_TO_LEARN,
        ));
    }
    let mut out = String::new();
    let generated = status["generated_at_rfc3339"].as_str().unwrap_or("unknown");
    let _ = writeln!(out, "# The jobs {from} had seen at {generated}.");
    let _ = writeln!(
        out,
        "# Learned schedules come from each job's steady successes (every: the median gap; cron, in\n\
         # UTC, when runs start at one minute of every hour or one time of every day): check them.\n\
         # Configured jobs show their schedule only; keep the rest of their keys from your config."
    );
    if entries.is_empty() {
        out.push_str("jobs: {}\n");
    } else {
        out.push_str("jobs:\n");
    }
    let width = entries
        .iter()
        .map(|(entry, _)| entry.len())
        .max()
        .unwrap_or(0);
    for (entry, comment) in &entries {
        let _ = writeln!(out, "{entry:<width$}  # {comment}");
    }
    for line in &unscheduled {
        let _ = writeln!(out, "{line}");
    }
    if entries.is_empty() && unscheduled.is_empty() {
        out.push_str("# (the agent has seen no jobs yet)\n");
    }
    Ok(out)
}

/// `  name: { every: 1m }` and its comment, for a job of `/status`'s `jobs` list.
fn scheduled(job: &Value) -> Option<(String, String)> {
    let name = job["job"].as_str()?;
    let schedule = job["schedule"].as_str()?;
    let zone = job["zone"].as_str().unwrap_or("UTC");
    let value = match schedule.strip_prefix("every ") {
        Some(period) if period.contains(' ') => format!("every: {}", quoted(period)),
        Some(period) => format!("every: {period}"),
        None if zone == "UTC" => format!("cron: {}", quoted(schedule)),
        None => format!("cron: {}, tz: {}", quoted(schedule), quoted(zone)),
    };
    let comment = match job["schedule_source"].as_str() {
        Some("learned") => "learned",
        _ => "in the config",
    };
    Some((
        format!("  {}: {{ {value} }}", key(name)),
        comment.to_owned(),
    ))
}

/// A job name as a YAML key: as it is when YAML reads it back as the same string, else
/// double-quoted (`ns:job`, `2fa-sweep`, `yes`).
fn key(name: &str) -> String {
    let keyword = ["true", "false", "null", "yes", "no", "on", "off", "y", "n"]
        .iter()
        .any(|word| name.eq_ignore_ascii_case(word));
    let plain = !keyword
        && name
            .chars()
            .next()
            .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'));
    if plain { name.to_owned() } else { quoted(name) }
}

/// A YAML double-quoted scalar (a JSON string is one).
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| format!("\"{text}\""))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config;

    fn status() -> Value {
        json!({
            "generated_at_rfc3339": "2026-01-01T00:00:00.000Z",
            "jobs": [
                { "job": "viewer-poll", "schedule": "* * * * *", "zone": "UTC",
                  "schedule_source": "config" },
                { "job": "report", "schedule": "0 9 * * 1-5", "zone": "Europe/Berlin",
                  "schedule_source": "config" },
                { "job": "sync", "schedule": "every 1s", "zone": "UTC",
                  "schedule_source": "learned" },
                { "job": "slow", "schedule": "every 1h 1m 30s", "zone": "UTC",
                  "schedule_source": "learned" },
                { "job": "nightly", "schedule": "45 3 * * *", "zone": "UTC",
                  "schedule_source": "learned" },
                { "job": "ns:odd", "schedule": "every 5m", "zone": "UTC",
                  "schedule_source": "learned" },
                { "job": "2fa", "schedule": "every 5m", "zone": "UTC",
                  "schedule_source": "learned" },
            ],
            "unscheduled_jobs": [
                { "job": "adhoc", "schedule_source": null, "schedule": null, "successes_seen": 2 },
            ],
            "workers": [],
        })
    }

    #[test]
    fn suggests_every_job_with_its_schedule_and_comments_out_the_rest() {
        let block = suggest(&status(), DEFAULT_URL).unwrap();
        let lines: Vec<&str> = block.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(lines[0], "jobs:");
        let entry = |name: &str| {
            lines
                .iter()
                .find(|line| line.trim_start().starts_with(name))
                .unwrap_or_else(|| panic!("no {name} in\n{block}"))
                .to_string()
        };
        assert!(entry("sync:").starts_with("  sync: { every: 1s }"));
        assert!(entry("sync:").ends_with("# learned"));
        assert!(entry("slow:").contains("{ every: \"1h 1m 30s\" }"));
        assert!(entry("nightly:").contains("{ cron: \"45 3 * * *\" }"));
        assert!(entry("report:").contains("cron: \"0 9 * * 1-5\", tz: \"Europe/Berlin\""));
        assert!(entry("report:").ends_with("# in the config"));
        assert!(entry("\"ns:odd\":").contains("every: 5m"));
        assert!(entry("# adhoc:").contains("2 of 5 successes seen"));
    }

    #[test]
    fn the_suggested_block_is_a_valid_config_with_those_schedules() {
        let block = suggest(&status(), DEFAULT_URL).unwrap();
        let config = config::from_str(&block, "suggested.yaml")
            .unwrap_or_else(|error| panic!("{error}\n{block}"));
        let jobs: Vec<(&str, String)> = config
            .live
            .jobs
            .iter()
            .map(|(name, spec)| (name.as_str(), spec.schedule.describe()))
            .collect();
        assert_eq!(
            jobs,
            [
                ("viewer-poll", "* * * * *".to_owned()),
                ("report", "0 9 * * 1-5".to_owned()),
                ("sync", "every 1s".to_owned()),
                ("slow", "every 1h 1m 30s".to_owned()),
                ("nightly", "45 3 * * *".to_owned()),
                ("ns:odd", "every 5m".to_owned()),
                ("2fa", "every 5m".to_owned()),
            ]
        );
        let report = &config.live.jobs[1].1;
        assert_eq!(report.schedule.zone(), "Europe/Berlin");
    }

    #[test]
    fn an_agent_that_saw_no_job_gives_an_empty_valid_block() {
        let empty = json!({ "jobs": [], "workers": [] });
        let block = suggest(&empty, DEFAULT_URL).unwrap();
        assert!(block.contains("jobs: {}\n"));
        assert!(config::from_str(&block, "suggested.yaml").is_ok());
        let only_unscheduled = json!({ "jobs": [], "unscheduled_jobs": [{ "job": "x" }] });
        let block = suggest(&only_unscheduled, DEFAULT_URL).unwrap();
        assert!(block.contains("jobs: {}\n  # x: { every: ? }"), "{block}");
        assert!(config::from_str(&block, "suggested.yaml").is_ok());
    }

    #[test]
    fn refuses_what_is_not_a_status_document_and_completes_a_bare_address() {
        let error = suggest(&json!({ "status": "ok" }), DEFAULT_URL).unwrap_err();
        assert!(error.to_string().contains("no `jobs` list"), "{error}");
        assert_eq!(
            status_url("http://127.0.0.1:9").unwrap().as_str(),
            "http://127.0.0.1:9/status"
        );
        assert!(matches!(
            status_url("not a url"),
            Err(SuggestError::Url { .. })
        ));
    }
}
