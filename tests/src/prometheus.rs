//! Prometheus itself as a test peer: `promtool check metrics` as the judge of an exposition, and
//! a real Prometheus server that scrapes the agent and answers queries.
//!
//! Both come from Debian's `prometheus` package, which `.ci/install-peers.sh` installs. A missing
//! binary skips the test with a loud notice, or fails it when `HEARTWIRE_REQUIRE_PEERS=1`, the
//! same policy as [`crate::peers`].

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::peers::{self, PeerError};

/// How long Prometheus may take to start, scrape and answer: it is a large Go program and the
/// machine is shared, so more than the agent's deadline.
pub const PROMETHEUS_DEADLINE: Duration = Duration::from_secs(60);
/// How often a query is repeated while waiting.
const POLL: Duration = Duration::from_millis(100);
/// Attempts at starting Prometheus on a free port (another process may take the port between
/// the probe and Prometheus binding it).
const START_ATTEMPTS: usize = 3;

/// Finds `program` on `PATH`; if it is missing, announces the skip (or panics when peers are
/// required) and returns `None`.
#[track_caller]
pub fn tool_or_skip(program: &'static str) -> Option<PathBuf> {
    if let Some(found) = on_path(program) {
        return Some(found);
    }
    let error = PeerError::Missing {
        client: program,
        missing: format!("no `{program}` on PATH (Debian package `prometheus`)"),
    };
    if peers::peers_required() {
        panic!("{error} ({}=1)", peers::REQUIRE_PEERS);
    }
    // Straight to stderr: the harness captures the output of a passing test.
    let _ =
        io::stderr().write_all(format!("\n********** SKIPPED: {error} **********\n\n").as_bytes());
    None
}

fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Runs `promtool check metrics` on `exposition`: `Ok` if it passes, else what promtool said.
pub fn check_metrics(promtool: &Path, exposition: &str) -> Result<(), String> {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("could not run {}: {error}", promtool.display()))?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| "promtool has no stdin".to_owned())?;
    // Written from a thread: promtool may answer before reading everything, and a full pipe
    // must not block the test.
    let input = exposition.to_owned();
    let writer = thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child
        .wait_with_output()
        .map_err(|error| format!("promtool did not finish: {error}"))?;
    let written = writer
        .join()
        .map_err(|_| "the thread feeding promtool panicked".to_owned())?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    match (output.status.success(), written) {
        (true, Ok(())) => Ok(()),
        (true, Err(error)) => Err(format!("promtool passed without reading it all: {error}")),
        (false, _) => Err(format!("promtool check metrics: {}\n{said}", output.status)),
    }
}

/// One element of an instant-vector query result.
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySample {
    /// The series' labels, `__name__` included when the result keeps it.
    pub labels: BTreeMap<String, String>,
    /// The value (`NaN` and `±Inf` as Prometheus writes them).
    pub value: f64,
}

impl fmt::Display for QuerySample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} {}", self.labels, self.value)
    }
}

/// A Prometheus server scraping its targets every second, with its data in a temporary
/// directory. Killed when dropped.
#[derive(Debug)]
pub struct Prometheus {
    child: Child,
    dir: tempfile::TempDir,
    address: String,
    http: reqwest::blocking::Client,
}

impl Prometheus {
    /// Starts Prometheus on `127.0.0.1:<free port>`, scraping `http://<target>/metrics` every
    /// second, and waits until it is ready. `None` if Prometheus is not installed (see
    /// [`tool_or_skip`]); panics with its log if it does not start.
    #[track_caller]
    pub fn start(target: &str) -> Option<Prometheus> {
        Prometheus::start_all(&[target])
    }

    /// Like [`Prometheus::start`], scraping every one of `targets` (one sidecar per worker,
    /// their series added up in PromQL); each target's series carry its `instance` label.
    #[track_caller]
    pub fn start_all(targets: &[&str]) -> Option<Prometheus> {
        let binary = tool_or_skip("prometheus")?;
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            match Prometheus::try_start(&binary, targets) {
                Ok(prometheus) => return Some(prometheus),
                Err(failure) => failures.push(failure),
            }
        }
        panic!("Prometheus did not start:\n{}", failures.join("\n---\n"));
    }

    fn try_start(binary: &Path, targets: &[&str]) -> Result<Prometheus, String> {
        let dir = tempfile::Builder::new()
            .prefix("hw-prom")
            .tempdir()
            .map_err(|error| format!("a temporary directory: {error}"))?;
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, scrape_config(targets))
            .map_err(|error| format!("writing {}: {error}", config.display()))?;
        let address = free_address()?;
        let log = std::fs::File::create(dir.path().join("prometheus.log"))
            .map_err(|error| format!("the log file: {error}"))?;
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|error| format!("could not run {}: {error}", binary.display()))?;
        let http = reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|error| format!("an HTTP client: {error}"))?;
        let mut prometheus = Prometheus {
            child,
            dir,
            address,
            http,
        };
        prometheus.wait_ready()?;
        Ok(prometheus)
    }

    /// Polls `/-/ready`; an error holds Prometheus' log if it exited or never got ready.
    fn wait_ready(&mut self) -> Result<(), String> {
        let started = Instant::now();
        let ready = format!("http://{}/-/ready", self.address);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "Prometheus exited ({status}); its log:\n{}",
                    self.log()
                ));
            }
            let answer = self.http.get(&ready).send();
            if answer.is_ok_and(|response| response.status().is_success()) {
                return Ok(());
            }
            if started.elapsed() > PROMETHEUS_DEADLINE {
                return Err(format!(
                    "Prometheus was not ready after {PROMETHEUS_DEADLINE:?}; its log:\n{}",
                    self.log()
                ));
            }
            thread::sleep(POLL);
        }
    }

    /// What Prometheus has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// Runs an instant query through `GET /api/v1/query`; the result must be a vector.
    pub fn query(&self, expression: &str) -> Result<Vec<QuerySample>, String> {
        let mut url = reqwest::Url::parse(&format!("http://{}/api/v1/query", self.address))
            .map_err(|error| format!("the query URL: {error}"))?;
        url.query_pairs_mut().append_pair("query", expression);
        let response = self
            .http
            .get(url)
            .send()
            .map_err(|error| format!("query {expression:?}: {error}"))?;
        let status = response.status();
        let body = response
            .text()
            .map_err(|error| format!("query {expression:?}: reading the answer: {error}"))?;
        if !status.is_success() {
            return Err(format!("query {expression:?}: {status}: {body}"));
        }
        parse_vector(&body).map_err(|error| format!("query {expression:?}: {error}: {body}"))
    }

    /// Repeats `expression` until `holds` accepts its result, and returns that result. Panics
    /// after [`PROMETHEUS_DEADLINE`] with the last result, the scrape target's health and the
    /// server's log.
    #[track_caller]
    pub fn wait_for(
        &self,
        expression: &str,
        what: &str,
        holds: impl Fn(&[QuerySample]) -> bool,
    ) -> Vec<QuerySample> {
        let started = Instant::now();
        loop {
            let last = self.query(expression);
            if let Ok(samples) = &last
                && holds(samples)
            {
                return samples.clone();
            }
            if started.elapsed() > PROMETHEUS_DEADLINE {
                let shown = match &last {
                    Ok(samples) => samples
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("\n  "),
                    Err(error) => error.clone(),
                };
                panic!(
                    "after {PROMETHEUS_DEADLINE:?}, {expression} is not {what}; it says:\n  {shown}\ntargets: {}\nPrometheus log:\n{}",
                    self.targets(),
                    self.log()
                );
            }
            thread::sleep(POLL);
        }
    }

    /// `GET /api/v1/targets` as text, for failure messages (scrape errors show there).
    pub fn targets(&self) -> String {
        let url = format!("http://{}/api/v1/targets", self.address);
        match self
            .http
            .get(url)
            .send()
            .and_then(|response| response.text())
        {
            Ok(text) => text,
            Err(error) => format!("(unavailable: {error})"),
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn scrape_config(targets: &[&str]) -> String {
    let target = targets.join("\", \"");
    format!(
        "global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: heartwire
    # As the chart's monitor does: a series' own `job` label names heartwire's job and is kept,
    # instead of being renamed `exported_job` in favour of the scrape job's name.
    honor_labels: true
    static_configs:
      - targets: [\"{target}\"]
"
    )
}

/// A loopback address whose port was free a moment ago.
fn free_address() -> Result<String, String> {
    let probe = TcpListener::bind("127.0.0.1:0")
        .map_err(|error| format!("probing for a free port: {error}"))?;
    let address = probe
        .local_addr()
        .map_err(|error| format!("probing for a free port: {error}"))?;
    Ok(address.to_string())
}

/// Reads `{"status":"success","data":{"resultType":"vector","result":[…]}}`.
fn parse_vector(body: &str) -> Result<Vec<QuerySample>, String> {
    let answer: serde_json::Value =
        serde_json::from_str(body).map_err(|error| format!("not JSON: {error}"))?;
    if answer["status"] != "success" {
        return Err("the query failed".to_owned());
    }
    if answer["data"]["resultType"] != "vector" {
        return Err("the result is not an instant vector".to_owned());
    }
    let results = answer["data"]["result"]
        .as_array()
        .ok_or_else(|| "no result array".to_owned())?;
    results
        .iter()
        .map(|result| {
            let labels = result["metric"]
                .as_object()
                .ok_or_else(|| "a result without labels".to_owned())?
                .iter()
                .map(|(name, value)| (name.clone(), value.as_str().unwrap_or_default().to_owned()))
                .collect();
            let value = result["value"][1]
                .as_str()
                .ok_or_else(|| "a result without a value".to_owned())?;
            let value = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                "NaN" => f64::NAN,
                number => number
                    .parse()
                    .map_err(|error| format!("value {number:?}: {error}"))?,
            };
            Ok(QuerySample { labels, value })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_instant_vector_answer() {
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"__name__":"hits_total","job":"heartwire"},"value":[1767225600.5,"42"]},
            {"metric":{},"value":[1767225600.5,"NaN"]}]}}"#;
        let samples = parse_vector(body).unwrap();
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].labels["__name__"], "hits_total");
        assert_eq!(samples[0].value, 42.0);
        assert!(samples[1].value.is_nan());
    }

    #[test]
    fn refuses_an_error_answer() {
        let body = r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        assert!(parse_vector(body).is_err());
    }
}
