//! The textfile output for node_exporter: the file is the exposition of `/metrics`, passes
//! `promtool check metrics`, and is replaced atomically, so a reader never sees half of it.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// a test fails by panicking
// The figures measured during a fault are printed for `--nocapture` runs; nothing asserts them.
#![allow(clippy::print_stderr)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use heartwire_tests::agent::{Agent, DEADLINE, Scrape, all_listeners};
use heartwire_tests::prometheus;

/// A textfile section writing `heartwire.prom` in `dir` every `interval`.
fn textfile_section(dir: &Path, interval: &str) -> String {
    format!(
        "textfile:\n  enabled: true\n  directory: \"{}\"\n  interval: {interval}\n",
        dir.display()
    )
}

/// The file's text once `condition` holds on it.
#[track_caller]
fn wait_for_file(path: &Path, condition: impl Fn(&Scrape) -> bool) -> Scrape {
    let started = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            let scrape = Scrape::parse(text);
            if condition(&scrape) {
                return scrape;
            }
        }
        assert!(
            started.elapsed() < DEADLINE,
            "the textfile never held what was expected"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// Family names of an exposition, in order.
fn families(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|declared| declared.split(' ').next())
        .collect()
}

#[test]
fn the_textfile_is_the_exposition_and_passes_promtool() {
    let out = tempfile::tempdir().unwrap();
    let agent = Agent::start_with(&format!(
        "jobs:\n  crawl:\n    every: 1h\n{}",
        textfile_section(out.path(), "100ms")
    ));
    agent.send_udp(b"crawl.pages:12|c|#site:a\njob.ok crawl 2.5\nqueue.depth:3|g\n");
    agent.wait_for("crawl_pages_total", &[("site", "a")], 12.0);
    let path = out.path().join("heartwire.prom");
    let file = wait_for_file(&path, |file| {
        file.value("crawl_pages_total", &[("site", "a")]) == Some(12.0)
            && file.value("heartwire_textfile_writes_total", &[("result", "success")]) >= Some(1.0)
    });
    let scrape = agent.scrape();
    // node_exporter exports process_* about itself: the file leaves them out, so that no family
    // is collected twice there.
    let mut expected = families(&scrape.text);
    assert!(expected.iter().any(|name| name.starts_with("process_")));
    expected.retain(|name| !name.starts_with("process_"));
    assert_eq!(
        families(&file.text),
        expected,
        "the file lists the families of /metrics, less process_*"
    );
    for (name, labels) in [
        ("crawl_pages_total", &[("site", "a")][..]),
        ("queue_depth", &[]),
        (
            "heartwire_job_runs_total",
            &[("job", "crawl"), ("result", "ok")],
        ),
        ("heartwire_job_stale", &[("job", "crawl")]),
    ] {
        assert_eq!(
            file.value(name, labels),
            scrape.value(name, labels),
            "{name}"
        );
    }
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o644, "node_exporter runs as another user");
    if let Some(promtool) = prometheus::tool_or_skip("promtool") {
        prometheus::check_metrics(&promtool, &file.text).unwrap_or_else(|complaint| {
            panic!("promtool check metrics: {complaint}\n{}", file.text)
        });
    }
}

#[test]
fn a_reader_in_a_tight_loop_never_sees_a_partial_file() {
    let out = tempfile::tempdir().unwrap();
    let agent = Agent::start_with(&textfile_section(out.path(), "5ms"));
    // Some hundred kilobytes, so that a write takes many system calls.
    let mut lines = String::new();
    for series in 0..1500 {
        lines.push_str(&format!("bulk.series:1|c|#id:{series}\n"));
        if lines.len() > 1200 {
            agent.send_udp(lines.as_bytes());
            lines.clear();
        }
    }
    agent.send_udp(lines.as_bytes());
    agent.wait_until("1500 bulk series", |scrape| {
        scrape.value("heartwire_series", &[("family", "bulk_series_total")]) == Some(1500.0)
    });
    let path = out.path().join("heartwire.prom");
    let first = wait_for_file(&path, |file| {
        file.value("bulk_series_total", &[("id", "1499")]) == Some(1.0)
    });
    let header = first.text.lines().next().unwrap().to_owned();
    let size = first.text.len();

    // A sender keeps the content changing while the reader reads.
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let stop = Arc::clone(&stop);
        let udp = agent.udp();
        thread::spawn(move || {
            let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut sent = 0u64;
            while !stop.load(Ordering::SeqCst) {
                socket.send_to(b"churn:1|c\n", udp).unwrap();
                sent += 1;
                thread::sleep(Duration::from_millis(1));
            }
            sent
        })
    };
    let started = Instant::now();
    let (mut reads, mut versions, mut last) = (0u64, 0u64, String::new());
    while started.elapsed() < Duration::from_secs(3) {
        let text = std::fs::read_to_string(&path).expect("the file is always there");
        reads += 1;
        assert!(
            text.ends_with('\n'),
            "read {reads} ends mid-line: {} bytes",
            text.len()
        );
        assert_eq!(
            text.lines().next(),
            Some(header.as_str()),
            "read {reads} lost the first header"
        );
        // Parses completely, and holds the last family's series too.
        let scrape = Scrape::parse(text);
        assert_eq!(
            scrape.value("bulk_series_total", &[("id", "1499")]),
            Some(1.0),
            "read {reads}"
        );
        if scrape.text != last {
            versions += 1;
            last = scrape.text;
        }
    }
    stop.store(true, Ordering::SeqCst);
    let sent = sender.join().unwrap();
    eprintln!(
        "{reads} reads of a {size}-byte file saw {versions} versions while {sent} lines arrived"
    );
    assert!(
        versions >= 10,
        "only {versions} versions seen: the file was hardly rewritten"
    );

    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
    let names: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["heartwire.prom"],
        "no temporary file is left behind"
    );
}

#[test]
fn sigterm_writes_the_final_state() {
    let out = tempfile::tempdir().unwrap();
    // The first write happens at start; the next one is never due in this test.
    let agent = Agent::start_with(&textfile_section(out.path(), "1h"));
    let path = out.path().join("heartwire.prom");
    wait_for_file(&path, |file| {
        file.value("heartwire_build_info", &[("version", "0.1.0")]) == Some(1.0)
    });
    agent.send_udp(b"last.words:5|c\n");
    agent.wait_for("last_words_total", &[], 5.0);
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
    let file = Scrape::parse(std::fs::read_to_string(&path).unwrap());
    assert_eq!(
        file.value("last_words_total", &[]),
        Some(5.0),
        "{}",
        file.text
    );
}

#[test]
fn a_missing_directory_stops_the_agent_at_startup_naming_the_key() {
    let out = tempfile::tempdir().unwrap();
    let missing = out.path().join("not-there");
    let failure = Agent::try_start(|dir| {
        format!(
            "{}{}",
            all_listeners(dir),
            textfile_section(&missing, "15s")
        )
    })
    .expect_err("the agent cannot write there");
    assert!(
        failure.log.contains("textfile.directory"),
        "{}",
        failure.log
    );
    assert!(failure.log.contains("not-there"), "{}", failure.log);
}
