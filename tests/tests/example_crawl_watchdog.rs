//! Seed 002, the crawl watchdog (`examples/crawl-watchdog/`): the example's Python sender
//! replays a crawl campaign (crawl progress, watchdog runs and their outcomes) against a real
//! agent running the example's config, with its thresholds shortened. The textfile heartwire
//! writes for node_exporter, and `/metrics`, hold the seed's freshness timestamps, progress,
//! the stalled flag (0, then 1 after the quiet period) and the one-hot last result; the file is
//! replaced atomically and passes `promtool check metrics`; a real node_exporter serves it; and
//! the seed's alerts fire on it through the example's recording rules (`promtool test rules`).
//!
//! Needs Python 3.9+ (`.ci/install-crawl-example.sh`), promtool (`.ci/install-peers.sh`) and
//! node_exporter (`.ci/install-crawl-example.sh`); without them the test skips loudly, or fails
//! when `HEARTWIRE_REQUIRE_PEERS=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use heartwire_tests::agent::{Agent, DEADLINE, Scrape, all_listeners};
use heartwire_tests::expect::{Expect, assert_all, exact, mismatches, settle, unix_now, within};
use heartwire_tests::{peers, prometheus};

// The test crate's root resolves modules beside it, so the helpers' folder is named.
#[path = "example_crawl_watchdog/campaign.rs"]
mod campaign;
#[path = "example_crawl_watchdog/node_exporter.rs"]
mod node_exporter;

use campaign::{WORKER_AUTO_START, one_hot, replay_stamps, replayed, stalled_running, task};
use node_exporter::NodeExporter;

/// The crawls' stall_after in the test (an hour in the example).
const STALL_AFTER: f64 = 3.0;
const FILE_NAME: &str = "healtharchive_heartwire.prom";
const POLL: Duration = Duration::from_millis(20);

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/crawl-watchdog")
}

/// Finds `program` on `PATH`; if missing, a loud skip, or a panic when peers are required.
#[track_caller]
fn tool_or_skip(programs: &[&str], install: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = programs.iter().find_map(|program| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        let error = format!("no {} on PATH; run {install}", programs.join(" or "));
        assert!(
            !peers::peers_required(),
            "{error} ({}=1)",
            peers::REQUIRE_PEERS
        );
        let notice = format!("\n********** SKIPPED: {error} **********\n\n");
        let _ = std::io::stderr().write_all(notice.as_bytes());
    }
    found
}

/// Python 3.9 or newer, as the sender needs.
#[track_caller]
fn python_or_skip() -> Option<PathBuf> {
    let python = tool_or_skip(&["python3"], ".ci/install-crawl-example.sh")?;
    let recent = Command::new(&python)
        .args(["-c", "import sys; sys.exit(sys.version_info < (3, 9))"])
        .status()
        .is_ok_and(|status| status.success());
    assert!(recent, "{} is older than Python 3.9", python.display());
    Some(python)
}

/// Replaces `from` in `text`, which must hold it exactly `count` times: a test whose edits no
/// longer apply to the example fails instead of testing the unshortened thresholds.
#[track_caller]
fn replace(text: &str, from: &str, to: &str, count: usize) -> String {
    assert_eq!(text.matches(from).count(), count, "`{from}` in the example");
    text.replace(from, to)
}

/// The example's config, writing its textfile into `out` every 100 ms, with the crawls stalled
/// after STALL_AFTER and storage-hotpath-auto-recover (which the replay never runs) stale
/// after 2 s.
fn agent_for(out: &Path) -> Agent {
    let mut config = std::fs::read_to_string(example_dir().join("heartwire.yaml")).unwrap();
    let directory = format!("\"{}\"", out.display());
    config = replace(
        &config,
        "/var/lib/node_exporter/textfile_collector",
        &directory,
        1,
    );
    config = replace(&config, "interval: 15s", "interval: 100ms", 1);
    config = replace(
        &config,
        "stall_after: 1h",
        &format!("stall_after: {STALL_AFTER}s"),
        3,
    );
    config = replace(
        &config,
        "storage-hotpath-auto-recover: { every: 1m, alert_after: 10m,",
        "storage-hotpath-auto-recover: { every: 1s, alert_after: 2s,",
        1,
    );
    Agent::start_config(|dir| format!("{}{config}", all_listeners(dir)))
}

/// Runs the example's sender with `args` and waits for it to succeed.
#[track_caller]
fn sender(python: &Path, args: &[&str]) {
    let mut child = Command::new(python)
        .arg(example_dir().join("crawl_watchdog.py"))
        .args(args)
        .env_remove("HEARTWIRE_ADDR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the sender starts");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > DEADLINE {
            child.kill().unwrap();
            panic!("the sender did not finish within {DEADLINE:?}");
        }
        thread::sleep(POLL);
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "crawl_watchdog.py {args:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// No line of the sender was rejected.
#[track_caller]
fn assert_nothing_rejected(scrape: &Scrape) {
    let rejected: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.name == "heartwire_lines_rejected_total" && s.value != 0.0)
        .collect();
    assert!(rejected.is_empty(), "rejected lines: {rejected:?}");
}

/// Reads the textfile until every expectation holds in one read. Every read must be a whole
/// exposition: the agent replaces the file, it never rewrites it in place.
#[track_caller]
fn settle_file(path: &Path, expects: &[Expect]) -> Scrape {
    let started = Instant::now();
    loop {
        let file = read_whole(path);
        let missed = mismatches(&file, expects);
        if missed.is_empty() {
            return file;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "the textfile never held what was expected:\n  {}",
            missed.join("\n  ")
        );
        thread::sleep(POLL);
    }
}

#[track_caller]
fn read_whole(path: &Path) -> Scrape {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    assert!(text.starts_with("# HELP "), "a read began mid-file");
    assert!(text.ends_with('\n'), "a read ended mid-line");
    // Panics on any line that is not a whole sample.
    Scrape::parse(text)
}

/// Polls until crawl-hc is stalled, which must not happen before STALL_AFTER has passed since
/// its last progress in `replayed`; the textfile is read whole on every poll.
#[track_caller]
fn wait_for_stall(agent: &Agent, path: &Path, replayed: &Scrape) -> Scrape {
    let last_progress = replayed
        .value(
            "healtharchive_crawl_last_progress_timestamp_seconds",
            &task("crawl-hc"),
        )
        .unwrap();
    let started = Instant::now();
    loop {
        let file = read_whole(path);
        let scrape = agent.scrape();
        let scraped_by = unix_now();
        if scrape.value("healtharchive_crawl_running_job_stalled", &task("crawl-hc")) == Some(1.0) {
            assert!(
                scraped_by >= last_progress + STALL_AFTER - 0.05,
                "stalled {}s after the last progress, before its stall_after",
                scraped_by - last_progress
            );
            return scrape;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "crawl-hc never stalled:\n{file}"
        );
        thread::sleep(POLL);
    }
}

/// Stops the agent: it exits cleanly and leaves its textfile and no temporary file.
#[track_caller]
fn assert_only_the_file_is_left(agent: Agent, out: &Path) {
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
    let names: Vec<String> = std::fs::read_dir(out)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, [FILE_NAME], "no temporary file is left behind");
}

#[test]
fn the_replayed_campaign_reaches_the_textfile_and_metrics_with_the_seed_families() {
    let Some(python) = python_or_skip() else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join(FILE_NAME);
    let agent = agent_for(out.path());
    let sent_from = unix_now();
    sender(&python, &["--target", &agent.udp().to_string(), "replay"]);

    // Read at once: crawl-hc progressed with the replay's last line.
    let mut expects = replayed(sent_from);
    expects.push(exact(
        "healtharchive_crawl_running_job_stalled",
        &task("crawl-hc"),
        0.0,
    ));
    let scrape = settle(&agent, &expects);
    assert_all(&scrape, &replay_stamps(sent_from, unix_now()));
    assert_nothing_rejected(&scrape);
    let file = settle_file(&path, &expects);
    if let Some(promtool) = prometheus::tool_or_skip("promtool") {
        prometheus::check_metrics(&promtool, &file.text)
            .unwrap_or_else(|complaint| panic!("{complaint}\n{}", file.text));
    }
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o644, "node_exporter runs as another user");

    // The quiet period: no progress from now on.
    let stalled = wait_for_stall(&agent, &path, &scrape);
    let quiet = [
        exact(
            "healtharchive_crawl_running_job_stalled",
            &task("crawl-hc"),
            1.0,
        ),
        exact(
            "healtharchive_task_stale",
            &task("storage-hotpath-auto-recover"),
            1.0,
        ),
        exact("healtharchive_task_stale", &task("worker-auto-start"), 0.0),
        exact("healtharchive_task_stale", &task("crawl-auto-recover"), 0.0),
        exact(
            "healtharchive_crawl_pages_crawled_total",
            &task("crawl-hc"),
            250.0,
        ),
    ];
    assert_all(&stalled, &quiet);
    assert_eq!(stalled_running(&stalled), ["crawl-hc"], "{stalled}");
    let file = settle_file(&path, &quiet);
    assert_eq!(stalled_running(&file), ["crawl-hc"], "{file}");

    assert_only_the_file_is_left(agent, out.path());
}

#[test]
fn a_watchdog_run_over_the_unix_socket_moves_the_one_hot_result() {
    let Some(python) = python_or_skip() else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let agent = agent_for(out.path());
    sender(&python, &["--target", &agent.udp().to_string(), "replay"]);
    settle(&agent, &replayed(0.0));
    let socket = format!("unix://{}", agent.unix_datagram().display());
    let before = unix_now();
    sender(
        &python,
        &[
            "--target",
            &socket,
            "watchdog",
            "worker-auto-start",
            "ok",
            "started",
        ],
    );
    let runs = "healtharchive_task_runs_total";
    let mut expects = vec![
        exact(
            runs,
            &[("task", "worker-auto-start"), ("result", "ok")],
            3.0,
        ),
        exact(
            "healtharchive_task_consecutive_failures",
            &task("worker-auto-start"),
            0.0,
        ),
        exact(
            "healtharchive_task_duration_seconds_count",
            &task("worker-auto-start"),
            4.0,
        ),
        exact(
            "healtharchive_worker_auto_start_start_attempts_total",
            &[],
            3.0,
        ),
        exact(
            "healtharchive_worker_auto_start_start_success_total",
            &[],
            2.0,
        ),
    ];
    expects.extend(one_hot(
        "healtharchive_worker_auto_start_last_result",
        &WORKER_AUTO_START,
        ("ok", "started"),
    ));
    let last_success = |by| {
        within(
            "healtharchive_task_last_success_timestamp_seconds",
            &task("worker-auto-start"),
            before,
            by,
        )
    };
    expects.push(last_success(f64::MAX));
    let scrape = settle(&agent, &expects);
    assert_all(&scrape, &[last_success(unix_now())]);
    assert_nothing_rejected(&scrape);
    settle_file(&out.path().join(FILE_NAME), &expects);
}

/// The replay, then node_exporter reading the agent's textfile: its scrape, and its log.
fn node_exporter_after_replay() -> Option<(Scrape, String, PathBuf)> {
    let python = python_or_skip()?;
    let binary = tool_or_skip(
        &["prometheus-node-exporter", "node_exporter"],
        ".ci/install-crawl-example.sh",
    )?;
    let out = tempfile::tempdir().unwrap();
    let agent = agent_for(out.path());
    sender(&python, &["--target", &agent.udp().to_string(), "replay"]);
    let expects = replayed(0.0);
    settle(&agent, &expects);
    let path = out.path().join(FILE_NAME);
    settle_file(&path, &expects);
    let logs = tempfile::tempdir().unwrap();
    let mut exporter =
        NodeExporter::start(&binary, out.path(), logs.path().join("node_exporter.log"));
    let scrape = exporter.scrape(agent.http());
    Some((scrape, exporter.log(), path))
}

#[test]
fn node_exporter_serves_the_textfile_with_the_seed_families() {
    let Some((scrape, log, path)) = node_exporter_after_replay() else {
        return;
    };
    let file = path.display().to_string();
    let mut expects = vec![
        exact("node_textfile_scrape_error", &[], 0.0),
        within(
            "node_textfile_mtime_seconds",
            &[("file", &file)],
            unix_now() - 60.0,
            unix_now(),
        ),
    ];
    expects.extend(replayed(0.0));
    let missed = mismatches(&scrape, &expects);
    assert!(
        missed.is_empty(),
        "{}\nnode_exporter's log:\n{log}",
        missed.join("\n")
    );
}

/// node_exporter exports its own `process_*` families, and the agent's textfile repeats them
/// (the agent's own): node_exporter then logs "collected before" on every scrape and drops one
/// of the two. Pins the agent gap described in the example's README.
#[test]
fn node_exporter_finds_no_family_twice() {
    let Some((_, log, _)) = node_exporter_after_replay() else {
        return;
    };
    assert!(!log.contains("was collected before"), "{log}");
}

#[test]
fn the_seed_alerts_fire_on_the_recorded_heartwire_families() {
    let Some(promtool) = prometheus::tool_or_skip("promtool") else {
        return;
    };
    let rules = example_dir().join("rules");
    for args in [
        &["check", "rules", "recording.yml", "seed-alerts.yml"][..],
        &["test", "rules", "seed-alerts.test.yml"],
    ] {
        let output = Command::new(&promtool)
            .args(args)
            .current_dir(&rules)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "promtool {args:?}: {}\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
