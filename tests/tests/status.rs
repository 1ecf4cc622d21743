//! `/readyz`, `/status` and the status page `/` end to end: the real agent, lines over its real
//! sockets, answers over real HTTP, and the page rendered by headless Chromium.
//!
//! The jobs here run every second (the shortest period) with thresholds of a second or two, so
//! that every state is reached within a few seconds; waiting is polling with a deadline.

// Test helpers: a failure to set up is the calling test's failure, reported where it happened.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use heartwire_tests::agent::{Agent, DEADLINE};
use heartwire_tests::peers::{REQUIRE_PEERS, peers_required};
use serde_json::Value;

const POLL: Duration = Duration::from_millis(10);
/// Debian's `chromium`, which `.ci/install-browser.sh` installs.
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long one Chromium run may take: a large program on a shared 2-core machine.
const BROWSER_DEADLINE: Duration = Duration::from_secs(90);

/// An answer: status code, `Content-Type`, body.
struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

fn get(agent: &Agent, path: &str) -> Answer {
    let url = format!("http://{}{path}", agent.address("http"));
    let response = agent
        .http()
        .get(&url)
        .send()
        .unwrap_or_else(|error| panic!("GET {url}: {error}"));
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    Answer {
        status: response.status().as_u16(),
        content_type,
        body: response.text().expect("a text body"),
    }
}

/// Polls `GET path` until `condition` holds; returns that answer.
#[track_caller]
fn wait_for(agent: &Agent, path: &str, what: &str, condition: impl Fn(&Answer) -> bool) -> Answer {
    let started = Instant::now();
    loop {
        let answer = get(agent, path);
        if condition(&answer) {
            return answer;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "timed out waiting for {what}; GET {path} answered {}:\n{}\nagent log:\n{}",
            answer.status,
            answer.body,
            agent.log()
        );
        thread::sleep(POLL);
    }
}

/// Polls `/status` until `condition` holds on the parsed document; returns it.
#[track_caller]
fn wait_for_status(agent: &Agent, what: &str, condition: impl Fn(&Value) -> bool) -> Value {
    let answer = wait_for(agent, "/status", what, |answer| {
        answer.status == 200 && condition(&parse(&answer.body))
    });
    assert_eq!(answer.content_type, "application/json");
    parse(&answer.body)
}

fn parse(body: &str) -> Value {
    serde_json::from_str(body)
        .unwrap_or_else(|error| panic!("/status is not JSON ({error}):\n{body}"))
}

/// The entry named `name` in the `/status` list `list` (`jobs` or `workers`, keyed by `key`).
#[track_caller]
fn entry<'a>(status: &'a Value, list: &str, key: &str, name: &str) -> &'a Value {
    status[list]
        .as_array()
        .unwrap_or_else(|| panic!("/status has no `{list}` list: {status}"))
        .iter()
        .find(|entry| entry[key] == name)
        .unwrap_or_else(|| panic!("/status lists no {key} `{name}`: {status}"))
}

fn job<'a>(status: &'a Value, name: &str) -> &'a Value {
    entry(status, "jobs", "job", name)
}

fn worker<'a>(status: &'a Value, name: &str) -> &'a Value {
    entry(status, "workers", "worker", name)
}

fn state_is(entry: &Value, state: &str) -> bool {
    entry["state"] == state
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A number field, or a panic naming it.
#[track_caller]
fn number(entry: &Value, field: &str) -> f64 {
    entry[field]
        .as_f64()
        .unwrap_or_else(|| panic!("`{field}` is not a number in {entry}"))
}

/// `field` is a Unix time within a minute of now, and `field_rfc3339` an RFC 3339 UTC stamp.
#[track_caller]
fn assert_recent_time(entry: &Value, field: &str) {
    let at = number(entry, field);
    assert!(
        (at - unix_now()).abs() < 60.0,
        "`{field}` = {at} is not about now, in {entry}"
    );
    let stamp = entry[format!("{field}_rfc3339")]
        .as_str()
        .unwrap_or_else(|| panic!("no `{field}_rfc3339` string in {entry}"));
    let bytes = stamp.as_bytes();
    assert!(
        stamp.len() == 24 && bytes[4] == b'-' && bytes[10] == b'T' && stamp.ends_with('Z'),
        "`{field}_rfc3339` = {stamp} is not YYYY-MM-DDTHH:MM:SS.mmmZ"
    );
}

#[test]
fn readyz_turns_503_listing_stale_readiness_jobs_and_200_after_a_success() {
    let agent = Agent::start_with(
        "jobs:
  viewer-poll: { every: 1s, alert_after: 2s, readiness: true }
  other: { every: 1s, alert_after: 2s }
",
    );
    let stale = wait_for(&agent, "/readyz", "/readyz to answer 503", |answer| {
        answer.status == 503
    });
    assert!(
        stale.body.contains("viewer-poll: stale, no success for"),
        "{}",
        stale.body
    );
    assert!(stale.body.contains("deadline"), "{}", stale.body);
    assert!(
        !stale.body.contains("other"),
        "`other` is not marked readiness:\n{}",
        stale.body
    );

    agent.send_udp(b"job.ok viewer-poll 0.1\n");
    let ready = wait_for(&agent, "/readyz", "/readyz to answer 200", |answer| {
        answer.status == 200
    });
    assert_eq!(ready.body, "ok\n");
    let status = parse(&get(&agent, "/status").body);
    assert!(
        state_is(job(&status, "other"), "stale"),
        "ready although `other` is stale: only readiness jobs count; {status}"
    );

    let again = wait_for(
        &agent,
        "/readyz",
        "/readyz to answer 503 once 2 s pass without another success",
        |answer| answer.status == 503,
    );
    assert!(
        again.body.contains("viewer-poll: stale, no success for"),
        "{}",
        again.body
    );
    assert!(
        !again.body.contains("none since heartwire started"),
        "viewer-poll succeeded once:\n{}",
        again.body
    );
}

/// Seed 000's `/_readiness`, "has viewer-poll completed in the last 5 minutes": with
/// `readiness: completed` an error loop keeps the pod ready, and silence does not.
#[test]
fn readyz_with_readiness_completed_counts_failed_runs_but_not_silence() {
    let agent = Agent::start_with(
        "jobs:
  viewer-poll: { every: 1s, alert_after: 2s, readiness: completed }
",
    );
    let silent = wait_for(&agent, "/readyz", "/readyz to answer 503", |answer| {
        answer.status == 503
    });
    assert!(
        silent
            .body
            .contains("viewer-poll: no run ended (ok or error) since heartwire started"),
        "{}",
        silent.body
    );
    // Failing runs, one every half second, for three seconds: the job goes stale (no success)
    // and the pod stays ready, since the poll completes.
    let began = Instant::now();
    agent.send_udp(b"job.error viewer-poll 0.1 reason=http_5xx\n");
    wait_for(&agent, "/readyz", "/readyz to answer 200", |answer| {
        answer.status == 200
    });
    while began.elapsed() < Duration::from_secs(3) {
        agent.send_udp(b"job.error viewer-poll 0.1 reason=http_5xx\n");
        thread::sleep(Duration::from_millis(500));
        let status = parse(&get(&agent, "/status").body);
        let poll = job(&status, "viewer-poll");
        assert_eq!(poll["readiness_on"], "completed", "{poll}");
        let answer = get(&agent, "/readyz");
        assert_eq!(
            answer.status, 200,
            "a failing poll still completes: {}",
            answer.body
        );
    }
    let status = parse(&get(&agent, "/status").body);
    assert!(
        state_is(job(&status, "viewer-poll"), "stale"),
        "no success for 3 s: {status}"
    );
    // Silence: no run ends for 2 s.
    let quiet = wait_for(&agent, "/readyz", "/readyz to answer 503 again", |answer| {
        answer.status == 503
    });
    assert!(
        quiet
            .body
            .contains("viewer-poll: no run ended (ok or error) for"),
        "{}",
        quiet.body
    );
}

/// Jobs and workers that reach every state within two seconds of the agent's start.
const EVERY_STATE: &str = "jobs:
  fresh: { every: 1h }
  broken: { every: 1h }
  never: { every: 1h }
  gone: { every: 1s, alert_after: 1s, readiness: true }
  behind: { every: 1s, late_after: 1s, alert_after: 1h }
  crawl: { every: 1h, stall_after: 1s }
  queued: { every: 1h, stall_after: 1s }
  history: { every: 1h }
workers:
  w: { ttl: 1s }
  steady: { ttl: 1h }
  idle: { ttl: 1h }
";

/// What [`EVERY_STATE`] needs sent: a success then a run still open, a failure, a crawl that
/// starts and never reports progress (`queued` never starts: not stalled), two heartbeats.
const EVERY_STATE_LINES: &[u8] =
    b"job.ok fresh 0.2\njob.start fresh\njob.error broken 0.1\njob.start crawl\nhb w\nhb steady\n";

/// `history`'s runs, in order on one session: ok (its start seen), error with exit code 3,
/// skipped, cancelled by TERM, and a run open when the session closes: crashed.
const HISTORY_SESSION: &[u8] = b"hello app=history
job.start history id=r1
job.ok history 0.25 id=r1
job.error history 1.5 reason=timeout exit=3
job.skip history reason=not_leader
job.error history 0.5 signal=TERM
job.start history id=r5
";

/// The results of [`HISTORY_SESSION`]'s runs, oldest first.
const HISTORY_RESULTS: [&str; 5] = ["ok", "error", "skipped", "cancelled", "crashed"];

/// Starts an agent with [`EVERY_STATE`], sends its lines, and waits until every verdict is in.
fn agent_in_every_state() -> (Agent, Value) {
    let agent = Agent::start_with(EVERY_STATE);
    agent.send_udp(EVERY_STATE_LINES);
    // Written, then closed: the run still open crashes.
    agent.send_unix_stream(HISTORY_SESSION);
    let status = wait_for_status(
        &agent,
        "every job and worker to reach its state",
        |status| {
            state_is(job(status, "gone"), "stale")
                && state_is(job(status, "behind"), "late")
                && job(status, "crawl")["stalled"] == true
                && state_is(worker(status, "w"), "ttl_expired")
                && state_is(worker(status, "steady"), "up")
                && job(status, "fresh")["running"] == 1
                && state_is(job(status, "broken"), "failing")
                && recent_runs(job(status, "history")).len() == HISTORY_RESULTS.len()
        },
    );
    (agent, status)
}

/// An hourly job that succeeded at the start and has a run open since.
#[track_caller]
fn assert_fresh(fresh: &Value) {
    assert_eq!(fresh["state"], "ok");
    assert_eq!(fresh["stale"], false);
    assert_eq!(fresh["schedule"], "every 1h");
    assert_eq!(fresh["zone"], "UTC");
    assert_eq!(fresh["readiness"], false);
    assert_recent_time(fresh, "last_success");
    let last_success = number(fresh, "last_success");
    let deadline = number(fresh, "deadline");
    assert!(
        (deadline - last_success - 2.0 * 3600.0).abs() < 1.0,
        "an hourly job is stale 2 h after its last success (seed 000's table): {fresh}"
    );
    assert!(
        (number(fresh, "next_expected") - last_success - 3600.0).abs() < 1.0,
        "the next run is due an hour after the last: {fresh}"
    );
    assert!(fresh["deadline_rfc3339"].is_string());
    assert!(fresh["next_expected_rfc3339"].is_string());
    assert!(number(fresh, "seconds_since_success") < 60.0, "{fresh}");
    assert_eq!(fresh["running"], 1, "the `job.start` after the success");
    assert_eq!(fresh["overrun"], 0);
    assert_eq!(fresh["consecutive_failures"], 0);
    assert_eq!(fresh["crashes"], 0);
    assert!(fresh["stalled"].is_null(), "not a progress job: {fresh}");
}

#[test]
fn status_json_reports_every_job_and_worker_state() {
    let (_agent, status) = agent_in_every_state();
    assert_recent_time(&status, "generated_at");
    assert_eq!(
        status["ready"], false,
        "`gone` is stale and marked readiness"
    );

    assert_fresh(job(&status, "fresh"));

    let broken = job(&status, "broken");
    assert_eq!(broken["state"], "failing");
    assert_eq!(broken["consecutive_failures"], 1);
    assert!(broken["last_success"].is_null());
    assert!(broken["last_success_rfc3339"].is_null());

    let never = job(&status, "never");
    assert_eq!(never["state"], "warming");
    assert!(never["last_success"].is_null());
    assert_eq!(never["running"], 0);
    assert_eq!(never["recent_runs"], serde_json::json!([]), "no run yet");

    let gone = job(&status, "gone");
    assert_eq!(gone["state"], "stale");
    assert_eq!(gone["stale"], true);
    assert_eq!(gone["readiness"], true);
    assert_eq!(gone["readiness_on"], "success");
    assert!(number(gone, "seconds_since_success") >= 1.0, "{gone}");
    assert!(number(gone, "deadline") <= number(&status, "generated_at"));

    let behind = job(&status, "behind");
    assert_eq!(behind["state"], "late");
    assert_eq!(behind["stale"], false, "late is not yet stale: {behind}");
    assert!(number(behind, "next_expected") < number(&status, "generated_at"));

    assert_recent_runs(job(&status, "history"));
    assert_eq!(job(&status, "crawl")["stalled"], true);
    assert_eq!(job(&status, "crawl")["progress"], "stalled");
    let queued = job(&status, "queued");
    assert_eq!(
        queued["stalled"], false,
        "never started is not stalled: {queued}"
    );
    assert_eq!(queued["progress"], "not_started");
    assert_workers(&status);
}

/// A job's `recent_runs`, newest first.
#[track_caller]
fn recent_runs(job: &Value) -> &[Value] {
    job["recent_runs"]
        .as_array()
        .unwrap_or_else(|| panic!("no `recent_runs` list in {job}"))
}

/// `history` lists the runs of [`HISTORY_SESSION`] newest first: each with its times, duration,
/// result, reason, exit code and signal.
#[track_caller]
fn assert_recent_runs(history: &Value) {
    let runs = recent_runs(history);
    let results: Vec<&Value> = runs.iter().map(|run| &run["result"]).collect();
    let mut expected = HISTORY_RESULTS;
    expected.reverse();
    assert_eq!(results, expected, "newest first: {history}");
    let [crashed, cancelled, skipped, error, ok] = runs else {
        unreachable!("five runs")
    };
    for run in runs {
        assert_recent_time(run, "ended");
    }
    assert_recent_time(ok, "started");
    assert_eq!(ok["duration_seconds"], 0.25, "as reported: {ok}");
    assert!(ok["reason"].is_null() && ok["exit_code"].is_null(), "{ok}");
    let expected = serde_json::json!({
        "started": null, "started_rfc3339": null,
        "ended": error["ended"], "ended_rfc3339": error["ended_rfc3339"],
        "duration_seconds": 1.5, "result": "error", "reason": "timeout", "exit_code": 3,
        "signal": null,
    });
    assert_eq!(error, &expected);
    assert_eq!(skipped["reason"], "not_leader");
    assert!(skipped["duration_seconds"].is_null(), "{skipped}");
    assert_eq!(cancelled["signal"], "TERM");
    assert!(cancelled["reason"].is_null(), "{cancelled}");
    assert_recent_time(crashed, "started");
    assert!(number(crashed, "duration_seconds") >= 0.0, "{crashed}");
    assert!(
        number(crashed, "ended") >= number(crashed, "started"),
        "{crashed}"
    );
    assert!(crashed["exit_code"].is_null() && crashed["signal"].is_null());
    assert_eq!(history["crashes"], 1);
    assert_eq!(
        history["state"], "failing",
        "the crash is the last failure: {history}"
    );
}

/// The workers of [`EVERY_STATE`]: one up, one whose ttl expired, one never seen.
#[track_caller]
fn assert_workers(status: &Value) {
    let steady = worker(status, "steady");
    assert_eq!(steady["state"], "up");
    assert_eq!(steady["up"], true);
    assert_recent_time(steady, "last_heartbeat");
    assert_eq!(steady["ttl_seconds"], 3600.0);

    let w = worker(status, "w");
    assert_eq!(w["state"], "ttl_expired");
    assert_eq!(w["up"], false);
    assert_recent_time(w, "last_heartbeat");
    assert!(number(w, "seconds_since_heartbeat") >= 1.0, "{w}");
    assert_eq!(w["ttl_seconds"], 1.0);

    let idle = worker(status, "idle");
    assert_eq!(idle["state"], "never_seen");
    assert_eq!(idle["up"], false);
    assert!(idle["last_heartbeat"].is_null());
    assert!(idle["seconds_since_heartbeat"].is_null());
}

#[test]
fn status_endpoints_answer_get_only_and_only_on_the_read_only_listener() {
    let agent = Agent::start_with(EVERY_STATE);
    for path in ["/", "/status", "/readyz"] {
        let url = format!("http://{}{path}", agent.address("http"));
        let post = agent.http().post(&url).body("x").send().unwrap();
        assert_eq!(post.status().as_u16(), 405, "POST {path}");
        let ingest = format!("http://{}{path}", agent.address("http_ingest"));
        let on_ingest = agent.http().get(&ingest).send().unwrap();
        assert_eq!(
            on_ingest.status().as_u16(),
            404,
            "GET {path} on the ingest listener"
        );
    }
    let page = get(&agent, "/");
    assert_eq!(page.status, 200);
    assert_eq!(page.content_type, "text/html; charset=utf-8");
    assert!(page.body.contains("data-job=\"fresh\""));
}

/// Finds Chromium, or skips loudly (fails when `HEARTWIRE_REQUIRE_PEERS=1`).
#[track_caller]
fn chromium_or_skip() -> Option<PathBuf> {
    let chromium = PathBuf::from(CHROMIUM);
    if chromium.is_file() {
        return Some(chromium);
    }
    let missing = format!("no {CHROMIUM} (Debian package `chromium`); run .ci/install-browser.sh");
    if peers_required() {
        panic!("{missing} ({REQUIRE_PEERS}=1)");
    }
    // Straight to stderr: the harness captures the output of a passing test.
    let _ = io::stderr()
        .write_all(format!("\n********** SKIPPED: {missing} **********\n\n").as_bytes());
    None
}

/// Runs headless Chromium with `args` and a fresh profile; returns what it printed on stdout.
fn chromium(program: &Path, args: &[OsString]) -> String {
    let profile = tempfile::tempdir().expect("a profile directory");
    let stdout_path = profile.path().join("stdout");
    let stderr_path = profile.path().join("stderr");
    let mut user_data_dir = OsString::from("--user-data-dir=");
    user_data_dir.push(profile.path().join("profile"));
    // Files, not pipes: Chromium's output is read only after it exits, and a full pipe would
    // stall it.
    let mut child = Command::new(program)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(user_data_dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path).unwrap())
        .stderr(File::create(&stderr_path).unwrap())
        .spawn()
        .expect("chromium starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > BROWSER_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium did not finish within {BROWSER_DEADLINE:?}; it said:\n{}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "chromium failed ({status}):\n{}",
        std::fs::read_to_string(&stderr_path).unwrap_or_default()
    );
    std::fs::read_to_string(&stdout_path).unwrap()
}

/// The `<tr>` that starts with `start`, up to its `</tr>`.
#[track_caller]
fn row<'a>(dom: &'a str, start: &str) -> &'a str {
    let from = dom
        .find(start)
        .unwrap_or_else(|| panic!("the page has no `{start}`:\n{dom}"));
    let rest = &dom[from..];
    &rest[..rest.find("</tr>").expect("the row ends")]
}

/// The screenshot's pixels as RGB(A) tuples.
fn pixels(png_bytes: &[u8]) -> (u32, u32, Vec<[u8; 4]>) {
    let mut decoder = png::Decoder::new(io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("a PNG header");
    let mut buffer = vec![0; reader.output_buffer_size().expect("a sane size")];
    let frame = reader.next_frame(&mut buffer).expect("a PNG frame");
    let channels = frame.color_type.samples();
    let pixels = buffer[..frame.buffer_size()]
        .chunks_exact(channels)
        .map(|pixel| match *pixel {
            [r, g, b, a] => [r, g, b, a],
            [r, g, b] => [r, g, b, 255],
            [l, a] => [l, l, l, a],
            [l] => [l, l, l, 255],
            _ => unreachable!("1 to 4 samples a pixel"),
        })
        .collect();
    (frame.width, frame.height, pixels)
}

/// Whether some pixel is within 3 of `rgb` on every channel.
fn shows_colour(pixels: &[[u8; 4]], rgb: [u8; 3]) -> bool {
    pixels
        .iter()
        .any(|pixel| (0..3).all(|channel| pixel[channel].abs_diff(rgb[channel]) <= 3))
}

#[test]
fn the_status_page_renders_in_headless_chromium_with_every_row_and_state() {
    let Some(program) = chromium_or_skip() else {
        return;
    };
    let (agent, _) = agent_in_every_state();
    let url = format!("http://{}/", agent.address("http"));

    let dom = chromium(&program, &["--dump-dom".into(), url.clone().into()]);
    assert_page_rows(&dom);

    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    let _ = std::fs::remove_file(&screenshot);
    let mut target = OsString::from("--screenshot=");
    target.push(&screenshot);
    chromium(
        &program,
        &[target, "--window-size=1200,800".into(), url.into()],
    );
    assert_screenshot(&screenshot);
}

/// Every job and worker of [`EVERY_STATE`] has its row, its state and its ages in words.
#[track_caller]
fn assert_page_rows(dom: &str) {
    assert!(dom.contains("<title>heartwire: "), "{dom}");
    assert!(dom.contains("Not ready: gone stale"), "{dom}");
    for (name, state) in [
        ("fresh", "ok"),
        ("broken", "failing"),
        ("never", "warming"),
        ("gone", "stale"),
        ("behind", "late"),
    ] {
        let row = row(
            dom,
            &format!("<tr data-job=\"{name}\" data-state=\"{state}\">"),
        );
        assert!(
            row.contains(&format!("<span class=\"state {state}\">{state}</span>")),
            "{row}"
        );
    }
    let fresh = row(dom, "<tr data-job=\"fresh\"");
    assert!(
        fresh.contains("just now</time>") || fresh.contains(" s ago</time>"),
        "the last success as an age in words: {fresh}"
    );
    assert!(
        fresh.contains(">in 2 h</time>"),
        "the deadline ahead: {fresh}"
    );
    assert!(row(dom, "<tr data-job=\"crawl\"").contains("stalled"));
    assert_strip(dom);
    for (name, state, words) in [
        ("steady", "up", "up"),
        ("w", "ttl_expired", "ttl expired"),
        ("idle", "never_seen", "never seen"),
    ] {
        let row = row(
            dom,
            &format!("<tr data-worker=\"{name}\" data-state=\"{state}\">"),
        );
        assert!(
            row.contains(&format!("<span class=\"state {state}\">{words}</span>")),
            "{row}"
        );
    }
}

/// `history`'s run strip: one cell a run, oldest left, its result in its class and the run told
/// in its tooltip; `never` has none.
#[track_caller]
fn assert_strip(dom: &str) {
    let history = row(dom, "<tr data-job=\"history\"");
    let strip_at = history
        .find("<ol class=\"runs\"")
        .unwrap_or_else(|| panic!("no run strip: {history}"));
    let strip = &history[strip_at..history.find("</ol>").expect("the strip ends")];
    let cells: Vec<(&str, &str)> = strip
        .split("<li ")
        .skip(1)
        .map(|cell| {
            let class = between(cell, "class=\"", "\"");
            let title = between(cell, "title=\"", "\"");
            (class, title)
        })
        .collect();
    let classes: Vec<String> = cells.iter().map(|(class, _)| class.to_string()).collect();
    let expected: Vec<String> = HISTORY_RESULTS
        .iter()
        .map(|result| format!("run-{result}"))
        .collect();
    assert_eq!(classes, expected, "oldest left: {strip}");
    for ((_, title), result) in cells.iter().zip(HISTORY_RESULTS) {
        assert!(title.starts_with(result), "{title}");
        assert!(
            title.contains("T") && title.contains("Z ("),
            "a time: {title}"
        );
    }
    let title = |index: usize| cells[index].1;
    assert!(title(0).contains("took 0.25 s, started 20"), "{}", title(0));
    assert!(
        title(1).starts_with("error: timeout · exit code 3") && title(1).contains("took 1.5 s"),
        "{}",
        title(1)
    );
    assert!(title(2).starts_with("skipped: not_leader"), "{}", title(2));
    assert!(
        title(3).starts_with("cancelled · signal TERM"),
        "{}",
        title(3)
    );
    assert!(title(4).contains("session closed 20"), "{}", title(4));
    assert!(
        title(0).contains('\n'),
        "one line each, as the tooltip shows it: {:?}",
        title(0)
    );
    assert!(
        row(dom, "<tr data-job=\"never\"").contains("none yet"),
        "a job without runs says so"
    );
}

/// The text of `haystack` between `open` and the next `close`.
#[track_caller]
fn between<'a>(haystack: &'a str, open: &str, close: &str) -> &'a str {
    let from = haystack
        .find(open)
        .unwrap_or_else(|| panic!("no `{open}` in {haystack}"))
        + open.len();
    let rest = &haystack[from..];
    &rest[..rest.find(close).expect("closed")]
}

/// The screenshot is a PNG of a rendered page, with the state colours on it.
#[track_caller]
fn assert_screenshot(screenshot: &Path) {
    let bytes = std::fs::read(screenshot).expect("chromium wrote the screenshot");
    // Straight to stderr, so that a person can look at it after a passing run too.
    let _ = io::stderr()
        .write_all(format!("status page screenshot: {}\n", screenshot.display()).as_bytes());
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let (width, height, pixels) = pixels(&bytes);
    assert!(width >= 800 && height >= 600, "{width}×{height}");
    let mut distinct = pixels.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(
        distinct.len() > 16,
        "{} distinct colours: the page did not render",
        distinct.len()
    );
    for (state, rgb) in [
        ("ok", [0xda, 0xfb, 0xe1]),
        ("late", [0xff, 0xf1, 0xc2]),
        ("stale", [0xff, 0xeb, 0xe9]),
        ("run-ok", [0x1a, 0x7f, 0x37]),
        ("run-error", [0xcf, 0x22, 0x2e]),
        ("run-crashed", [0x82, 0x07, 0x1e]),
        ("run-skipped", [0xaf, 0xb8, 0xc1]),
        ("run-cancelled", [0xd4, 0xa7, 0x2c]),
    ] {
        assert!(
            shows_colour(&pixels, rgb),
            "no pixel of the `{state}` colour #{:02x}{:02x}{:02x} in {}",
            rgb[0],
            rgb[1],
            rgb[2],
            screenshot.display()
        );
    }
}
