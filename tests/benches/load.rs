//! The load benchmark: drives the real agent over UDP and a Unix datagram socket with 1400-byte
//! multi-line datagrams at fixed offered rates and at maximum, then reads `/metrics` to count
//! what arrived. Also reports agent CPU at 100 k lines/s, RSS idle, with 10 k series (5 k tagged
//! counters and 5 k tagged timers) and with 100 k more of distinct names (read between
//! scrapes, once a scrape's page is freed), the time of a `/metrics` scrape of each (plain and
//! gzip) and the peak RSS while scraping, gzip (Prometheus) and plain apart. The `threads`
//! case compares one and two UDP receive threads, each without and with parsing on them. The `readers` case sends UDP at
//! 1 M lines/s to an agent holding a 10 k-series page (5 k counters, 5 k tagged timers with 11
//! buckets each) while 0, then 16, threads scrape `/metrics` in a loop as Prometheus does
//! (`Accept-Encoding: gzip`), and compares the loss (issue 11).
//!
//! ```sh
//! cargo bench -p heartwire-tests --bench load            # the full run (about six minutes)
//! HEARTWIRE_LOAD_SECONDS=1 cargo bench -p heartwire-tests --bench load   # a quick one
//! HEARTWIRE_LOAD_ONLY=readers cargo bench -p heartwire-tests --bench load   # one case
//! HEARTWIRE_LOAD_ONLY=udp HEARTWIRE_LOAD_RATES=4500000,max cargo bench -p heartwire-tests --bench load
//! ```
//!
//! `HEARTWIRE_LOAD_ONLY` takes a comma-separated list of the cases `udp`, `unix`, `memory`,
//! `readers` and `threads`; without it every case runs. The first three share one agent,
//! `readers` and `threads` have their own.
//!
//! As in the comparison with other receivers (INGEST.md section 0), the agent is pinned to one
//! core and the generator to the other, so the figures say what one core of agent does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)] // a benchmark stops at its first surprise

use std::io::ErrorKind;
use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use heartwire_tests::agent::{Agent, Scrape};
use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;

/// Tagged lines spread over this many series (`shard` tag values).
const SHARDS: usize = 64;
/// The families the benchmark's lines land in: their sum is the count of accepted lines.
const FAMILIES: [&str; 2] = ["loadgen_plain_total", "loadgen_hits_total"];
const HEADER: &str = "| offered lines/s | sent lines/s | accepted lines | loss | kernel drops (datagrams) | queue drops (datagrams) | agent CPU (1 core) |\n|---|---|---|---|---|---|---|";
/// The cases `HEARTWIRE_LOAD_ONLY` may name.
const CASES: [&str; 5] = ["udp", "unix", "memory", "readers", "threads"];
/// Limits high enough for every case's series.
const LIMITS: &str = "limits:\n  max_series: 300000\n  max_series_per_family: 200000\n";

fn main() {
    // `cargo bench` passes `--bench`; any other argument filters nothing here.
    let seconds: f64 = std::env::var("HEARTWIRE_LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let only: Option<Vec<String>> = std::env::var("HEARTWIRE_LOAD_ONLY").ok().map(|list| {
        list.split(',')
            .map(|case| case.trim().to_owned())
            .filter(|case| !case.is_empty())
            .collect()
    });
    if let Some(unknown) = only
        .iter()
        .flatten()
        .find(|case| !CASES.contains(&case.as_str()))
    {
        panic!("HEARTWIRE_LOAD_ONLY: no case `{unknown}`; the cases are {CASES:?}");
    }
    let wanted = |case: &str| {
        only.as_ref()
            .is_none_or(|only| only.iter().any(|c| c == case))
    };
    let period = Duration::from_secs_f64(seconds);
    let (datagram, lines_per_datagram) = datagram();
    println!(
        "heartwire load benchmark: {}-byte datagrams of {lines_per_datagram} lines, {seconds} s per step",
        datagram.len()
    );
    let everywhere = sched_getaffinity(Pid::from_raw(0)).expect("the benchmark's CPUs");
    if wanted("udp") || wanted("unix") || wanted("memory") {
        let agent = start_pinned(&everywhere);
        one_agent(&agent, period, &datagram, lines_per_datagram, &wanted);
    }
    if wanted("readers") {
        let agent = start_pinned(&everywhere);
        readers(&agent, period, &datagram, lines_per_datagram);
    }
    if wanted("threads") {
        receive_threads(&everywhere, period, &datagram, lines_per_datagram);
    }
}

/// `listen.udp.receive_threads` and `listen.udp.parse_on_receive`: the agent on both cores with
/// one, then two receive sockets and threads, each without then with parsing on the receive
/// threads, fed at the most the generator sends from two client sockets (the kernel spreads
/// senders over the sockets by address and port). On this machine the generator shares a core
/// with the agent, so the figures show the spread and its overhead, not the scaling a machine
/// with spare cores would show.
fn receive_threads(
    everywhere: &CpuSet,
    period: Duration,
    datagram: &[u8],
    lines_per_datagram: u64,
) {
    println!(
        "\n## UDP receive threads: agent on both cores, generator on core 1, two sending sockets"
    );
    println!(
        "{}",
        HEADER
            .replacen(
                "| offered",
                "| receive threads | parse on receive | offered",
                1
            )
            .replacen("|---", "|---|---|---", 1)
    );
    for (threads, parse) in [(1, false), (1, true), (2, false), (2, true)] {
        set_affinity(std::process::id(), everywhere);
        let agent = Agent::start_config(|dir| {
            let listeners = heartwire_tests::agent::all_listeners(dir).replace(
                "udp: { address: \"127.0.0.1:0\" }",
                &format!(
                    "udp: {{ address: \"127.0.0.1:0\", receive_threads: {threads}, \
                     parse_on_receive: {parse} }}"
                ),
            );
            format!("{listeners}{LIMITS}")
        });
        pin(std::process::id(), 1);
        let senders: Vec<UdpSocket> = (0..2)
            .map(|_| {
                let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
                socket.connect(agent.udp()).unwrap();
                socket
            })
            .collect();
        let mut next = 0;
        for rate in [2_000_000.0, 3_000_000.0, f64::INFINITY] {
            let step = run_step(&agent, period, rate, lines_per_datagram, || {
                next = (next + 1) % senders.len();
                send_udp(&senders[next], datagram)
            });
            let parse = if parse { "yes" } else { "no" };
            println!("| {threads} | {parse} |{}", &step.row(rate)[1..]);
        }
    }
}

/// Starts an agent on every CPU the benchmark may use, so that its runtime sizes itself as it
/// would in production, then pins the agent to CPU 0 and the benchmark to CPU 1.
fn start_pinned(everywhere: &CpuSet) -> Agent {
    set_affinity(std::process::id(), everywhere);
    let agent = Agent::start_with(LIMITS);
    pin(agent.pid(), 0);
    pin(std::process::id(), 1);
    agent
}

/// The cases that share one agent: UDP and Unix datagram rates, then memory and scrape time as
/// the series grow.
fn one_agent(
    agent: &Agent,
    period: Duration,
    datagram: &[u8],
    lines_per_datagram: u64,
    wanted: &dyn Fn(&str) -> bool,
) {
    let idle_rss = rss_kib(agent.pid());
    if wanted("udp") {
        udp_rates(agent, period, datagram, lines_per_datagram);
    }
    if wanted("unix") {
        unix_rates(agent, period, datagram, lines_per_datagram);
    }
    if wanted("memory") {
        memory(agent, idle_rss);
    }
}

fn udp_rates(agent: &Agent, period: Duration, datagram: &[u8], lines_per_datagram: u64) {
    println!("\n## UDP: offered rate vs accepted");
    println!("{HEADER}");
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.connect(agent.udp()).unwrap();
    let mut best_lossless = 0.0f64;
    for rate in rates([
        100_000.0,
        250_000.0,
        500_000.0,
        750_000.0,
        1_000_000.0,
        1_250_000.0,
        1_500_000.0,
        2_000_000.0,
        2_500_000.0,
        3_000_000.0,
        3_500_000.0,
        4_000_000.0,
        4_500_000.0,
        5_000_000.0,
        6_000_000.0,
        7_000_000.0,
        8_000_000.0,
        9_000_000.0,
        10_000_000.0,
        f64::INFINITY,
    ]) {
        let step = run_step(agent, period, rate, lines_per_datagram, || {
            send_udp(&udp, datagram)
        });
        if step.loss() < 0.001 {
            best_lossless = best_lossless.max(step.sent_rate);
        }
        println!("{}", step.row(rate));
    }
    println!("\nmaximum UDP lines/s with < 0.1 % loss: {best_lossless:.0}");
}

/// The UDP case's offered rates: `steps`, or those of `HEARTWIRE_LOAD_RATES` (lines/s,
/// comma-separated, `max` for as fast as the generator sends) to look at a few steps closely.
fn rates<const N: usize>(steps: [f64; N]) -> Vec<f64> {
    let Ok(list) = std::env::var("HEARTWIRE_LOAD_RATES") else {
        return steps.to_vec();
    };
    list.split(',')
        .map(str::trim)
        .filter(|rate| !rate.is_empty())
        .map(|rate| match rate {
            "max" => f64::INFINITY,
            rate => rate
                .parse()
                .unwrap_or_else(|_| panic!("HEARTWIRE_LOAD_RATES: `{rate}` is not a rate")),
        })
        .collect()
}

fn unix_rates(agent: &Agent, period: Duration, datagram: &[u8], lines_per_datagram: u64) {
    println!(
        "\n## Unix datagram: offered rate vs accepted (a full socket blocks the sender instead of dropping)"
    );
    println!("{HEADER}");
    let unix = UnixDatagram::unbound().unwrap();
    unix.connect(agent.unix_datagram()).unwrap();
    for rate in [100_000.0, 500_000.0, 1_000_000.0, f64::INFINITY] {
        let step = run_step(agent, period, rate, lines_per_datagram, || {
            send_unix(&unix, datagram)
        });
        println!("{}", step.row(rate));
    }
}

fn memory(agent: &Agent, idle_rss: u64) {
    println!("\n## Memory and scrape time");
    println!("idle RSS: {:.1} MiB", idle_rss as f64 / 1024.0);
    grow_page(agent);
    let rss_10k = settled_rss_kib(agent.pid());
    println!(
        "RSS with 10 k series ({PAGE_SERIES} tagged counters + {PAGE_SERIES} tagged timers, histograms of 11 buckets): {:.1} MiB",
        rss_10k as f64 / 1024.0
    );
    report_scrapes(agent, "10 k series", 21);
    let rss_100k = grow_distinct(agent, DISTINCT);
    println!(
        "RSS with {} k more series of distinct names (one family each, half counters, half gauges): {:.1} MiB",
        DISTINCT / 1000,
        rss_100k as f64 / 1024.0
    );
    // Prometheus asks for gzip: its scrapes' peak apart from that of plain ones (curl).
    for (gzip, who) in [(true, "gzip, as Prometheus"), (false, "plain")] {
        reset_peak_rss(agent.pid());
        report_scrapes_of(agent, "10 k + 100 k series", 7, gzip);
        println!(
            "peak RSS while scraping ({who}): {:.1} MiB",
            peak_rss_kib(agent.pid()) as f64 / 1024.0
        );
        thread::sleep(PAGE_KEPT);
    }
}

/// Series of distinct names the memory case adds after the 10 k page.
const DISTINCT: usize = 100_000;

/// Prints the median and 90th percentile of `n` scrapes, plain and gzip, with the page size:
/// of a page whose state changed since the last scrape (as between two Prometheus scrapes: the
/// agent renders the stored part again), then of an unchanged page (a gzip reader reuses the
/// compressed render; a plain reader renders its own page in either case).
fn report_scrapes(agent: &Agent, what: &str, n: usize) {
    report_scrapes_of(agent, what, n, false);
    report_scrapes_of(agent, what, n, true);
}

/// [`report_scrapes`], plain or gzip only.
fn report_scrapes_of(agent: &Agent, what: &str, n: usize, gzip: bool) {
    for changed in [true, false] {
        let (p50, p90, bytes) = scrape_times(agent, n, changed, gzip);
        println!(
            "/metrics with {what}, {}{}: p50 {:.2} ms, p90 {:.2} ms ({:.1} MB)",
            if changed { "changed" } else { "unchanged" },
            if gzip { ", gzip" } else { "" },
            p50 * 1e3,
            p90 * 1e3,
            bytes as f64 / 1e6
        );
    }
}

/// `/metrics` readers scraping in a loop in the readers case: none (the baseline), then 16.
const READER_COUNTS: [usize; 2] = [0, 16];
/// The readers case's offered UDP rate, lines/s.
const READERS_RATE: f64 = 1_000_000.0;
/// Counters on the readers case's page, and as many tagged timers (histograms of 11 buckets).
const PAGE_SERIES: usize = 5_000;
const READERS_HEADER: &str = "| readers | offered lines/s | sent lines/s | accepted lines | loss | kernel drops (datagrams) | queue drops (datagrams) | agent CPU (1 core) | scrape p50 | scrape p99 | scrapes completed | scrape errors |\n|---|---|---|---|---|---|---|---|---|---|---|---|";

/// Issue 11's situation: UDP at 1 M lines/s of the usual datagrams while `/metrics` readers
/// scrape a 10 k-series page in a loop, against the same without readers.
fn readers(agent: &Agent, period: Duration, datagram: &[u8], lines_per_datagram: u64) {
    println!(
        "\n## UDP at 1 M lines/s while /metrics readers scrape a 10 k-series page in a loop (gzip)"
    );
    grow_page(agent);
    let page = agent.scrape();
    let gzipped = agent
        .http()
        .get(agent.metrics_url())
        .header(reqwest::header::ACCEPT_ENCODING, "gzip")
        .send()
        .unwrap();
    let encoding = gzipped
        .headers()
        .get(reqwest::header::CONTENT_ENCODING)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("none")
        .to_owned();
    let compressed = gzipped.bytes().unwrap().len();
    println!(
        "the page: {} samples, {:.1} MiB, {:.2} MiB as sent with Accept-Encoding: gzip (Content-Encoding: {encoding})",
        page.samples.len(),
        page.text.len() as f64 / (1024.0 * 1024.0),
        compressed as f64 / (1024.0 * 1024.0),
    );
    println!("{READERS_HEADER}");
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.connect(agent.udp()).unwrap();
    let url = agent.metrics_url();
    for readers in READER_COUNTS {
        let stop = AtomicBool::new(false);
        let mut scrapes = Scrapes::default();
        thread::scope(|scope| {
            let threads: Vec<_> = (0..readers)
                .map(|_| scope.spawn(|| read_in_a_loop(&url, &stop)))
                .collect();
            let step = run_step_with(
                agent,
                period,
                READERS_RATE,
                lines_per_datagram,
                || send_udp(&udp, datagram),
                // The readers stop with the sending, before the counting.
                || {
                    stop.store(true, Ordering::Relaxed);
                    for thread in threads {
                        scrapes.add(thread.join().unwrap());
                    }
                },
            );
            println!(
                "| {readers} {}{}",
                step.row(READERS_RATE),
                scrapes.columns()
            );
        });
    }
}

/// What the readers of one step saw: each completed scrape's latency, and the failures.
#[derive(Default)]
struct Scrapes {
    latencies: Vec<f64>,
    errors: u64,
}

impl Scrapes {
    fn add(&mut self, other: Scrapes) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
    }

    /// p50, p99, completed, errors, as table cells.
    fn columns(&mut self) -> String {
        if self.latencies.is_empty() {
            return format!(" – | – | 0 | {} |", self.errors);
        }
        self.latencies.sort_by(f64::total_cmp);
        let at = |q: f64| self.latencies[((self.latencies.len() - 1) as f64 * q).round() as usize];
        format!(
            " {:.1} ms | {:.1} ms | {} | {} |",
            at(0.5) * 1e3,
            at(0.99) * 1e3,
            self.latencies.len(),
            self.errors
        )
    }
}

/// Scrapes `url` as Prometheus does (`Accept-Encoding: gzip`, one kept-alive connection) until
/// `stop`; a scrape counts once its whole body has arrived.
fn read_in_a_loop(url: &str, stop: &AtomicBool) -> Scrapes {
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut scrapes = Scrapes::default();
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let body = client
            .get(url)
            .header(reqwest::header::ACCEPT_ENCODING, "gzip")
            .send()
            .and_then(reqwest::blocking::Response::error_for_status)
            .and_then(reqwest::blocking::Response::bytes);
        match body {
            Ok(body) if !body.is_empty() => {
                scrapes.latencies.push(started.elapsed().as_secs_f64());
            }
            _ => scrapes.errors += 1,
        }
    }
    scrapes
}

/// Puts the readers case's page in place: [`PAGE_SERIES`] counters and as many tagged timers,
/// paced and sent again until all are there (a counter or timer sent twice is one series).
fn grow_page(agent: &Agent) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(agent.udp()).unwrap();
    let held =
        |scrape: &Scrape, name: &str| scrape.samples.iter().filter(|s| s.name == name).count();
    let complete = |scrape: &Scrape| {
        held(scrape, "readers_requests_total") >= PAGE_SERIES
            && held(scrape, "readers_latency_count") >= PAGE_SERIES
    };
    for _ in 0..5 {
        let mut datagram = Vec::with_capacity(1400);
        for id in 0..PAGE_SERIES {
            let lines = format!(
                "readers.requests:1|c|#id:{id},env:bench\nreaders.latency:{}|ms|#id:{id},env:bench\n",
                1 + id % 900
            );
            if datagram.len() + lines.len() > 1400 {
                socket.send(&datagram).unwrap();
                datagram.clear();
                if id.is_multiple_of(1_000) {
                    thread::sleep(Duration::from_millis(5));
                }
            }
            datagram.extend_from_slice(lines.as_bytes());
        }
        socket.send(&datagram).unwrap();
        thread::sleep(Duration::from_millis(500));
        if complete(&agent.scrape()) {
            return;
        }
    }
    let scrape = agent.scrape();
    panic!(
        "the agent holds {} counters and {} timers of {PAGE_SERIES} each after five rounds",
        held(&scrape, "readers_requests_total"),
        held(&scrape, "readers_latency_count")
    );
}

/// One datagram of at most 1400 bytes: half plain StatsD counter lines, half DogStatsD lines
/// with three tags.
fn datagram() -> (Vec<u8>, u64) {
    let mut out = Vec::with_capacity(1400);
    let mut lines = 0u64;
    loop {
        let shard = lines as usize % SHARDS;
        let line = if lines.is_multiple_of(2) {
            "loadgen.plain:1|c\n".to_string()
        } else {
            format!("loadgen.hits:1|c|#shard:{shard},env:bench,region:eu-west-1\n")
        };
        if out.len() + line.len() > 1400 {
            return (out, lines);
        }
        out.extend_from_slice(line.as_bytes());
        lines += 1;
    }
}

struct Step {
    sent_lines: u64,
    sent_rate: f64,
    accepted: u64,
    kernel_drops: f64,
    queue_drops: f64,
    cpu: f64,
}

impl Step {
    fn loss(&self) -> f64 {
        1.0 - self.accepted as f64 / self.sent_lines.max(1) as f64
    }

    fn row(&self, offered: f64) -> String {
        let offered = if offered.is_finite() {
            format!("{offered:.0}")
        } else {
            "max".to_string()
        };
        format!(
            "| {offered} | {:.0} | {} of {} | {:.3} % | {:.0} | {:.0} | {:.0} % |",
            self.sent_rate,
            self.accepted,
            self.sent_lines,
            self.loss() * 100.0,
            self.kernel_drops,
            self.queue_drops,
            self.cpu * 100.0
        )
    }
}

/// Sends at `rate` lines/s for `period`, waits until the agent has counted everything it will
/// count, and compares.
fn run_step(
    agent: &Agent,
    period: Duration,
    rate: f64,
    lines_per_datagram: u64,
    send: impl FnMut() -> bool,
) -> Step {
    run_step_with(agent, period, rate, lines_per_datagram, send, || {})
}

/// Like [`run_step`], calling `sent` once the sending stops, before the counting.
fn run_step_with(
    agent: &Agent,
    period: Duration,
    rate: f64,
    lines_per_datagram: u64,
    mut send: impl FnMut() -> bool,
    sent: impl FnOnce(),
) -> Step {
    let before = scrape_counts(agent);
    let cpu_before = cpu_seconds(agent.pid());
    let started = Instant::now();
    let mut datagrams = 0u64;
    while started.elapsed() < period {
        let due = if rate.is_finite() {
            (started.elapsed().as_secs_f64() * rate / lines_per_datagram as f64) as u64
        } else {
            u64::MAX
        };
        if datagrams < due {
            if send() {
                datagrams += 1;
            }
        } else {
            thread::sleep(Duration::from_micros(200));
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = (cpu_seconds(agent.pid()) - cpu_before) / elapsed;
    sent();
    let sent_lines = datagrams * lines_per_datagram;
    let after = settle(agent);
    Step {
        sent_lines,
        sent_rate: sent_lines as f64 / elapsed,
        accepted: (after.0 - before.0) as u64,
        kernel_drops: after.1 - before.1,
        queue_drops: after.2 - before.2,
        cpu,
    }
}

fn send_udp(socket: &UdpSocket, datagram: &[u8]) -> bool {
    match socket.send(datagram) {
        Ok(_) => true,
        // The loopback interface reports a full receive queue as ECONNREFUSED or ENOBUFS at times.
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::ConnectionRefused | ErrorKind::WouldBlock
            ) =>
        {
            true
        }
        Err(e) => panic!("sending over UDP: {e}"),
    }
}

fn send_unix(socket: &UnixDatagram, datagram: &[u8]) -> bool {
    socket
        .send(datagram)
        .map(|_| true)
        .unwrap_or_else(|e| panic!("sending over the Unix datagram socket: {e}"))
}

/// (accepted lines of the benchmark families, kernel drops, queue drops) now, drops in datagrams.
fn scrape_counts(agent: &Agent) -> (f64, f64, f64) {
    let scrape = agent.scrape();
    let accepted = FAMILIES.iter().map(|family| sum(&scrape, family)).sum();
    let drops = sum(&scrape, "heartwire_kernel_drops_total");
    (
        accepted,
        drops,
        sum(&scrape, "heartwire_datagrams_dropped_total"),
    )
}

fn sum(scrape: &Scrape, name: &str) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.name == name)
        .map(|s| s.value)
        .sum()
}

/// Waits until the counted lines stop growing for half a second: the queues have drained.
fn settle(agent: &Agent) -> (f64, f64, f64) {
    let mut last = scrape_counts(agent);
    let mut still_since = Instant::now();
    loop {
        thread::sleep(Duration::from_millis(100));
        let now = scrape_counts(agent);
        if now.0 != last.0 {
            last = now;
            still_since = Instant::now();
        } else if still_since.elapsed() >= Duration::from_millis(500) {
            return now;
        }
    }
}

/// Adds `total` series of distinct names, each its own family (`loadgen_distinct<N>_total`
/// counters and `loadgen_distinct<N>` gauges, half and half), then reads RSS. The lines are
/// paced well below the loss-free rate and sent again until all arrived: this step measures
/// memory, not speed.
fn grow_distinct(agent: &Agent, total: usize) -> u64 {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(agent.udp()).unwrap();
    let held = |scrape: &Scrape| {
        scrape
            .samples
            .iter()
            .filter(|s| s.name.starts_with("loadgen_distinct"))
            .count()
    };
    for _ in 0..5 {
        let mut datagram = Vec::with_capacity(1400);
        for id in 0..total {
            let kind = if id.is_multiple_of(2) { "c" } else { "g" };
            let line = format!("loadgen.distinct{id}:1|{kind}\n");
            if datagram.len() + line.len() > 1400 {
                socket.send(&datagram).unwrap();
                datagram.clear();
                if id.is_multiple_of(2_000) {
                    thread::sleep(Duration::from_millis(5));
                }
            }
            datagram.extend_from_slice(line.as_bytes());
        }
        socket.send(&datagram).unwrap();
        thread::sleep(Duration::from_millis(500));
        if held(&agent.scrape()) >= total {
            return settled_rss_kib(agent.pid());
        }
    }
    panic!(
        "the agent holds {} of {total} loadgen_distinct series after five rounds",
        held(&agent.scrape())
    );
}

/// Median and 90th percentile of `n` full scrapes, in seconds, measured by the client, and the
/// body's size as sent. When `changed`, a gauge is set before each scrape and the scrape waits
/// for the agent to publish it (the page is then rendered again); otherwise each scrape reads
/// a page already rendered for the snapshot plus its live part.
fn scrape_times(agent: &Agent, n: usize, changed: bool, gzip: bool) -> (f64, f64, usize) {
    // The client (without reqwest's gzip feature) does not decompress: the figure is the
    // agent's and the wire's.
    let client = reqwest::blocking::Client::new();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut size = 0;
    let mut times: Vec<f64> = (0..n)
        .map(|round| {
            if changed {
                socket
                    .send_to(format!("loadgen.tick:{round}|g").as_bytes(), agent.udp())
                    .unwrap();
                // Three publish intervals: the new state is published, not yet rendered.
                thread::sleep(Duration::from_millis(300));
            }
            let started = Instant::now();
            let mut request = client.get(agent.metrics_url());
            if gzip {
                request = request.header("Accept-Encoding", "gzip");
            }
            let body = request.send().unwrap().bytes().unwrap();
            assert!(!body.is_empty());
            size = body.len();
            started.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[n / 2], times[(n * 9) / 10], size)
}

fn pin(pid: u32, cpu: usize) {
    let mut set = CpuSet::new();
    if set.set(cpu).is_err() {
        return;
    }
    set_affinity(pid, &set);
}

/// Restricts every thread of `pid` to the CPUs of `set`.
fn set_affinity(pid: u32, set: &CpuSet) {
    // Every thread of the process: /proc/<pid>/task lists them.
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    for tid in tasks {
        if let Err(error) = sched_setaffinity(Pid::from_raw(tid), set) {
            eprintln!("could not set the CPUs of thread {tid}: {error}");
        }
    }
}

fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// How long the agent keeps a rendered page after a scrape (2 s), and a little more.
const PAGE_KEPT: Duration = Duration::from_secs(3);

/// How often the agent gives the allocator's free memory back (10 s), and a little more.
const GIVEN_BACK: Duration = Duration::from_secs(11);

/// The RSS between two scrapes (Prometheus scrapes every 15 s or more), as it is most of the
/// time: read once the page of the last scrape is freed and the memory freed since (the UDP
/// steps' queued batches) is given back. The scrape itself is in the peak.
fn settled_rss_kib(pid: u32) -> u64 {
    thread::sleep(GIVEN_BACK);
    rss_kib(pid)
}

/// The most RSS since the last [`reset_peak_rss`].
fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM:")
}

/// Resets the kernel's peak RSS of `pid` to its current RSS (proc(5), `clear_refs`).
fn reset_peak_rss(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// User plus system CPU seconds the process has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name may hold blanks; the fields after its closing parenthesis are fixed.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / clock_ticks_per_second()
}

fn clock_ticks_per_second() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100.0, |t| t as f64)
}
