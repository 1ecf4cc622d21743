//! The Helm chart (`helm/heartwire`): linted and rendered with the Helm SDK, every manifest
//! validated against the Kubernetes schemas, the pod's properties, the README's include snippets,
//! bad values refused, the alert rules through promtool and equal to `heartwire rules` output for
//! the chart's config, the config checksum, agent-down detection and the mature-chart values, the
//! chart's own agent config and demo app run against the real agent, and what the sidecar does
//! with an invalid config at start.
//!
//! The checks are `tests/helm/check_chart.py`, run with the venv `.ci/install-helm-tools.sh`
//! makes. Without it (or without promtool) a test skips with a loud notice, or fails when
//! `HEARTWIRE_REQUIRE_PEERS=1`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use heartwire_tests::agent::Agent;
use heartwire_tests::peers::{REQUIRE_PEERS, peers_required};

/// The script that installs the chart tests' venv.
const INSTALL_HELM_TOOLS: &str = ".ci/install-helm-tools.sh";
/// Where the chart's socket directory is mounted in the pod (values.yaml `volumes.sockets`).
const CHART_SOCKET_DIR: &str = "/run/heartwire/";

fn helm_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("helm")
}

/// The venv's python, if it can load the Helm SDK and kubernetes-validate.
fn helm_python() -> Result<PathBuf, String> {
    let python = helm_dir().join(".venv/bin/python3");
    if !python.is_file() {
        return Err(format!("no {}", python.display()));
    }
    let probe = Command::new(&python)
        .args([
            "-c",
            "import helm_python, kubernetes_validate, jsonschema, yaml",
        ])
        .output()
        .map_err(|error| format!("cannot run {}: {error}", python.display()))?;
    if !probe.status.success() {
        return Err(format!(
            "{} cannot import the Helm SDK: {}",
            python.display(),
            String::from_utf8_lossy(&probe.stderr)
        ));
    }
    Ok(python)
}

fn promtool() -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("promtool"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| "no `promtool` on PATH".to_owned())
}

/// The skip policy of `heartwire_tests::peers`: a missing tool skips the test with a notice on
/// stderr (not captured by the harness), or fails it when `HEARTWIRE_REQUIRE_PEERS=1`.
#[track_caller]
fn tool_or_skip(tool: Result<PathBuf, String>, install: &str) -> Option<PathBuf> {
    match tool {
        Ok(path) => Some(path),
        Err(missing) if peers_required() => panic!("{missing}; run {install} ({REQUIRE_PEERS}=1)"),
        Err(missing) => {
            let notice = format!("\n********** SKIPPED: {missing}; run {install} **********\n\n");
            let _ = std::io::stderr().write_all(notice.as_bytes());
            None
        }
    }
}

#[track_caller]
fn check_chart(python: &Path, args: &[&str]) -> Output {
    let script = helm_dir().join("check_chart.py");
    Command::new(python)
        .arg(&script)
        .args(args)
        // No __pycache__ in the source tree.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", script.display()))
}

/// Runs one group of `check_chart.py`; panics with its report unless every check passed.
#[track_caller]
fn run_group(group: &str, extra: &[&str]) {
    let Some(python) = tool_or_skip(helm_python(), INSTALL_HELM_TOOLS) else {
        return;
    };
    let output = check_chart(&python, &[&[group], extra].concat());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = format!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "check_chart.py {group} failed:\n{report}"
    );
    let passed = stdout
        .lines()
        .filter(|line| line.starts_with("ok: "))
        .count();
    assert!(
        passed > 0,
        "check_chart.py {group} checked nothing:\n{report}"
    );
    println!("{report}");
}

#[test]
fn the_chart_passes_helm_lint_with_every_values_file() {
    run_group("lint", &[]);
}

#[test]
fn every_rendered_manifest_passes_kubernetes_validate_strict() {
    run_group("validate", &[]);
}

#[test]
fn the_example_pod_runs_heartwire_as_a_hardened_native_sidecar() {
    run_group("pods", &[]);
}

#[test]
fn monitors_and_rules_render_as_their_values_say() {
    run_group("monitoring", &[]);
}

#[test]
fn bad_values_are_refused_at_install_with_a_clear_message() {
    run_group("bad-values", &[]);
}

#[test]
fn checksum_agent_down_openshift_and_mature_chart_values_render_as_documented() {
    run_group("values", &[]);
}

#[test]
fn the_readme_snippets_add_the_sidecar_to_another_chart() {
    run_group("readme", &[]);
}

#[test]
fn promtool_accepts_the_chart_alert_rules() {
    let Some(promtool) = tool_or_skip(promtool(), ".ci/install-peers.sh") else {
        return;
    };
    let promtool = promtool.to_str().expect("a UTF-8 path");
    run_group("rules", &["--promtool", promtool]);
}

#[test]
fn the_chart_prometheus_rule_is_heartwire_rules_output_for_its_config() {
    let heartwire = heartwire_tests::agent::binary()
        .to_str()
        .expect("a UTF-8 path");
    run_group("generated-rules", &["--heartwire", heartwire]);
}

/// Exports the agent config the chart renders with `values` (or its defaults) into `dir`, made
/// runnable here; returns it.
#[track_caller]
fn export_config(python: &Path, dir: &Path, values: Option<&Path>) -> String {
    let mut args = vec!["export".to_owned(), dir.display().to_string()];
    if let Some(values) = values {
        args.extend(["--values".to_owned(), values.display().to_string()]);
    }
    let output = check_chart(python, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        output.status.success(),
        "check_chart.py {}:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    let config = dir.join("heartwire.yaml");
    std::fs::read_to_string(&config)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", config.display()))
}

#[test]
fn the_agent_starts_with_the_config_of_every_values_file() {
    let Some(python) = tool_or_skip(helm_python(), INSTALL_HELM_TOOLS) else {
        return;
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(helm_dir().join("values"))
        .expect("tests/helm/values")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "values files: {files:?}");
    for values in &files {
        let agent = Agent::try_start(|dir| export_config(&python, dir, Some(values)))
            .unwrap_or_else(|failure| panic!("with {}: {failure}", values.display()));
        let (status, log) = agent.terminate();
        assert!(
            status.success(),
            "with {}: {status}\n{log}",
            values.display()
        );
    }
}

/// Kills the demo app when the test ends, passing or not.
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_real_agent_runs_the_chart_config_and_counts_the_demo_apps_events() {
    let Some(python) = tool_or_skip(helm_python(), INSTALL_HELM_TOOLS) else {
        return;
    };
    // The default render's config, with its addresses on ephemeral loopback ports and its socket
    // directory moved into the agent's temporary directory; everything else as the chart wrote it.
    let mut exported = PathBuf::new();
    let agent = Agent::start_config(|dir| {
        exported = dir.to_path_buf();
        export_config(&python, dir, None)
    });
    let env: BTreeMap<String, String> = std::fs::read_to_string(exported.join("demo.env"))
        .expect("the demo's env")
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    let chart_socket = &env["HEARTWIRE_SOCKET"];
    let relative = chart_socket
        .strip_prefix(CHART_SOCKET_DIR)
        .expect("the demo's socket is in the chart's socket directory");
    assert_eq!(
        exported.join("sockets").join(relative),
        agent.unix_datagram(),
        "the demo app sends where the chart's config makes the agent listen"
    );

    let demo = Command::new(&python)
        .arg(exported.join("demo.py"))
        .env_clear()
        .env("HEARTWIRE_SOCKET", agent.unix_datagram())
        .env("DEMO_INTERVAL_SECONDS", "0.05")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the demo app starts");
    let _demo = Demo(demo);

    let scrape = agent.wait_until("five demo rounds", |scrape| {
        scrape.total("heartwire_job_runs_total", &[("job", "demo-report")]) >= 5.0
    });
    assert!(
        scrape
            .value(
                "heartwire_worker_last_heartbeat_timestamp_seconds",
                &[("worker", "demo-worker")]
            )
            .is_some_and(|seconds| seconds > 1.0e9),
        "no demo-worker heartbeat:\n{}",
        scrape.lines_about("heartwire_worker")
    );
    let payments = [("service", "payments"), ("endpoint", "charge")];
    assert!(
        scrape.total("heartwire_external_http_total", &payments) >= 5.0,
        "too few payments calls:\n{}",
        scrape.lines_about("heartwire_external_http_total")
    );
    assert!(
        scrape
            .value("demo_requests_total", &[("route", "/home")])
            .is_some_and(|count| count >= 5.0),
        "no demo StatsD counter:\n{}",
        scrape.lines_about("demo_requests_total")
    );
    assert_eq!(
        scrape.total("heartwire_lines_rejected_total", &[]),
        0.0,
        "the agent rejected demo lines:\n{}",
        scrape.lines_about("heartwire_lines_rejected_total")
    );
}

/// The sidecar's `HEARTWIRE_*` environment as the chart renders it with `values`.
fn sidecar_env(python: &Path, values: Option<&Path>) -> Vec<(String, String)> {
    let scratch =
        tempfile::tempdir().unwrap_or_else(|error| panic!("a temporary directory: {error}"));
    export_config(python, scratch.path(), values);
    std::fs::read_to_string(scratch.path().join("sidecar.env"))
        .unwrap_or_else(|error| panic!("the sidecar's env: {error}"))
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

/// A key the agent does not know, appended to the chart's config: what a typo in `config` does
/// to a new pod once it is past the chart's schema.
const TYPO: &str = "\nnot_a_section: true\n";

// With `--on-invalid-config default` the agent serves the embedded default with the file's own
// `listen:` and `http:` sections (each valid on its own), so the sockets and ports are the pod's.
#[test]
fn an_invalid_config_at_start_keeps_the_app_running_and_the_reload_alert_firing() {
    let Some(python) = tool_or_skip(helm_python(), INSTALL_HELM_TOOLS) else {
        return;
    };
    // The chart's default (sidecar.onInvalidConfig=default), as the pod would start it.
    let env = sidecar_env(&python, None);
    assert!(
        env.contains(&(
            "HEARTWIRE_ON_INVALID_CONFIG".to_owned(),
            "default".to_owned()
        )),
        "the chart's default sidecar env: {env:?}"
    );
    let env: Vec<(&str, &str)> = env.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let agent = Agent::try_start_env(|dir| export_config(&python, dir, None) + TYPO, &env)
        .unwrap_or_else(|failure| panic!("the sidecar did not start: {failure}"));
    // The startup probe passes, so the app's containers start.
    let health = agent
        .http()
        .get(agent.http_url("/healthz"))
        .send()
        .expect("GET /healthz");
    assert_eq!(health.status().as_u16(), 200, "/healthz");
    // HeartwireConfigReloadFailed (`heartwire_config_last_reload_successful == 0`) fires.
    let scrape = agent.scrape();
    assert_eq!(
        scrape.value("heartwire_config_last_reload_successful", &[]),
        Some(0.0),
        "{}",
        scrape.lines_about("heartwire_config")
    );
    let (status, log) = agent.terminate();
    assert!(status.success(), "{status}\n{log}");
    assert!(
        log.contains("not_a_section"),
        "the log names the key:\n{log}"
    );
}

#[test]
fn an_invalid_config_at_start_stops_the_sidecar_when_on_invalid_config_is_exit() {
    let Some(python) = tool_or_skip(helm_python(), INSTALL_HELM_TOOLS) else {
        return;
    };
    // sidecar.onInvalidConfig=exit (mature.yaml): the sidecar exits 64.
    let mature = helm_dir().join("values/mature.yaml");
    let env = sidecar_env(&python, Some(&mature));
    assert!(
        env.contains(&("HEARTWIRE_ON_INVALID_CONFIG".to_owned(), "exit".to_owned())),
        "mature.yaml's sidecar env: {env:?}"
    );
    let env: Vec<(&str, &str)> = env.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let failure = Agent::try_start_env(
        |dir| export_config(&python, dir, Some(&mature)) + TYPO,
        &env,
    )
    .map(|agent| agent.terminate())
    .expect_err("the sidecar refuses an invalid config with onInvalidConfig=exit");
    assert_eq!(
        failure.status.and_then(|status| status.code()),
        Some(64),
        "{}",
        failure.log
    );
}
