//! End to end over every transport: the real `heartwire` binary on ephemeral ports and temporary
//! socket paths, real sockets in, `/metrics` over HTTP out, exact values asserted.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use heartwire_tests::agent::{Agent, Expected, Scrape, closed_by_peer, heartwire};

fn transport(name: &str) -> [(&'static str, &str); 1] {
    [("transport", name)]
}

fn length_prefixed(payload: &[u8]) -> Vec<u8> {
    let mut frame = (payload.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(payload);
    frame
}

#[test]
fn udp_datagrams_of_many_lines_are_counted_exactly() {
    let agent = Agent::start();
    for _ in 0..100 {
        agent.send_udp(b"udp.hits:1|c|#env:dev\nudp.hits:2|c|#env:prod\nudp.hits:1|c|#env:dev\n");
    }
    agent.wait_for("udp_hits_total", &[("env", "dev")], 200.0);
    let scrape = agent.wait_for("udp_hits_total", &[("env", "prod")], 200.0);
    assert_eq!(
        scrape.value("heartwire_lines_received_total", &transport("udp")),
        Some(300.0)
    );
    assert_eq!(
        scrape.value("heartwire_datagrams_received_total", &transport("udp")),
        Some(100.0)
    );
    assert_eq!(
        scrape.value("heartwire_datagrams_dropped_total", &transport("udp")),
        Some(0.0)
    );
}

/// `receive_threads: 4`: four sockets share the port, each read by its own thread; senders on
/// many sockets are spread over them by the kernel and every line is counted once.
#[test]
fn udp_receive_threads_share_the_port_and_count_every_line_once() {
    let agent = Agent::start_config(|dir| {
        heartwire_tests::agent::all_listeners(dir).replace(
            "udp: { address: \"127.0.0.1:0\" }",
            "udp: { address: \"127.0.0.1:0\", receive_threads: 4 }",
        )
    });
    let threads = std::fs::read_dir(format!("/proc/{}/task", agent.pid()))
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "heartwire-udp")
        .count();
    assert_eq!(threads, 4, "one receive thread per socket");
    let senders: Vec<UdpSocket> = (0..32)
        .map(|_| {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            socket.connect(agent.udp()).unwrap();
            socket
        })
        .collect();
    for round in 0..25 {
        for (index, socket) in senders.iter().enumerate() {
            let line = format!("spread.hits:1|c|#sender:{}\n", (index + round) % 4);
            socket.send(line.repeat(2).as_bytes()).unwrap();
        }
    }
    let scrape = agent.wait_for_all(&[
        ("spread_hits_total", &[("sender", "0")], 400.0),
        ("spread_hits_total", &[("sender", "1")], 400.0),
        ("spread_hits_total", &[("sender", "2")], 400.0),
        ("spread_hits_total", &[("sender", "3")], 400.0),
    ]);
    assert_eq!(
        scrape.value("heartwire_lines_received_total", &transport("udp")),
        Some(1600.0)
    );
    assert_eq!(
        scrape.value("heartwire_datagrams_received_total", &transport("udp")),
        Some(800.0)
    );
}

/// `parse_on_receive: true` with two receive threads: the threads parse, the aggregator applies,
/// and every count is what it is without the option: lines by transport, rejections by reason
/// (a cut last line as `too_long`), unknown fields, clamped rates, and the order of a datagram's
/// lines (a gauge set, then moved).
#[test]
fn udp_lines_parsed_on_the_receive_threads_are_counted_as_without_it() {
    let agent = Agent::start_config(|dir| {
        heartwire_tests::agent::all_listeners(dir).replace(
            "udp: { address: \"127.0.0.1:0\" }",
            "udp: { address: \"127.0.0.1:0\", receive_threads: 2, parse_on_receive: true, \
             max_datagram_bytes: 512 }",
        )
    });
    let senders: Vec<UdpSocket> = (0..8)
        .map(|_| {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            socket.connect(agent.udp()).unwrap();
            socket
        })
        .collect();
    for (index, socket) in senders.iter().enumerate() {
        let sender = format!("#sender:{index}");
        let lines = [
            format!("parsed.depth:10|g|{sender}\nparsed.depth:-3|g|{sender}\nparsed.hits:1|c\n")
                .as_bytes(),
            b"job.okk nightly\nparsed.hits:-1|c\nbad.value:NaN|g\n\xff\xfe:1|c\n",
            b"parsed.hits:1|c|@2\nparsed.hits:1|c|x:new\n",
        ]
        .concat();
        for _ in 0..10 {
            socket.send(&lines).unwrap();
        }
        // Longer than the 512-byte buffer: its first line arrives, its cut last line is too long.
        let long = format!("parsed.hits:1|c\nparsed.long:{}|g\n", "1".repeat(600));
        socket.send(long.as_bytes()).unwrap();
    }
    let senders: Vec<String> = (0..8).map(|index| index.to_string()).collect();
    let labels: Vec<[(&str, &str); 1]> = senders.iter().map(|s| [("sender", s.as_str())]).collect();
    let mut expected: Vec<Expected<'_>> = labels
        .iter()
        .map(|labels| ("parsed_depth", &labels[..], 7.0))
        .collect();
    // Per sender: 3 counted in each of 10 datagrams (the negative one is rejected), 1 in the long one.
    expected.push(("parsed_hits_total", &[], 8.0 * 31.0));
    let scrape = agent.wait_for_all(&expected);
    let count = |name: &str, labels: &[(&str, &str)]| scrape.value(name, labels);
    // 8 senders × (10 datagrams of 9 lines + 1 of 2 lines).
    assert_eq!(
        count("heartwire_lines_received_total", &transport("udp")),
        Some(8.0 * (10.0 * 9.0 + 2.0))
    );
    let rejected = |reason: &str| count("heartwire_lines_rejected_total", &[("reason", reason)]);
    assert_eq!(rejected("unknown_verb"), Some(80.0));
    assert_eq!(rejected("negative_counter"), Some(80.0));
    assert_eq!(rejected("invalid_value"), Some(80.0));
    assert_eq!(rejected("invalid_utf8"), Some(80.0));
    assert_eq!(rejected("too_long"), Some(8.0));
    assert_eq!(
        count("heartwire_lines_unknown_fields_total", &[]),
        Some(80.0)
    );
    assert_eq!(
        count("heartwire_sample_rates_clamped_total", &[]),
        Some(80.0)
    );
    assert_eq!(
        count("heartwire_datagrams_received_total", &transport("udp")),
        Some(88.0)
    );
    assert_eq!(
        count("heartwire_datagrams_dropped_total", &transport("udp")),
        Some(0.0)
    );
    // Shown from 0 with the option; this little traffic never spends the parse budget.
    assert_eq!(
        count(
            "heartwire_receive_parse_deferred_total",
            &[("listener", "udp")]
        ),
        Some(0.0)
    );
}

#[test]
fn a_bad_line_is_counted_by_reason_while_the_good_lines_of_its_datagram_arrive() {
    let agent = Agent::start();
    agent.send_udp(
        b"good.one:1|c\njob.okk nightly\ngood.one:2|c\nbad.value:NaN|g\n\xff\xfe:1|c\ngood.one:4|c",
    );
    let scrape = agent.wait_for("good_one_total", &[], 7.0);
    assert_eq!(
        scrape.value("heartwire_lines_received_total", &transport("udp")),
        Some(6.0)
    );
    assert_eq!(
        scrape.value(
            "heartwire_lines_rejected_total",
            &[("reason", "unknown_verb")]
        ),
        Some(1.0)
    );
    assert_eq!(
        scrape.value(
            "heartwire_lines_rejected_total",
            &[("reason", "invalid_value")]
        ),
        Some(1.0)
    );
    assert_eq!(
        scrape.value(
            "heartwire_lines_rejected_total",
            &[("reason", "invalid_utf8")]
        ),
        Some(1.0)
    );
    assert_eq!(scrape.value("bad_value", &[]), None);
}

#[test]
fn unix_datagrams_are_counted_exactly() {
    let agent = Agent::start();
    for _ in 0..50 {
        agent.send_unix_datagram(b"job.ok nightly 0.3\ngram.hits:1|c");
    }
    let scrape = agent.wait_for("gram_hits_total", &[], 50.0);
    assert_eq!(
        scrape.value(
            "heartwire_job_runs_total",
            &[("job", "nightly"), ("result", "ok")]
        ),
        Some(50.0)
    );
    assert_eq!(
        scrape.value("heartwire_lines_received_total", &transport("unixgram")),
        Some(100.0)
    );
    assert_eq!(
        scrape.value("heartwire_datagrams_received_total", &transport("unixgram")),
        Some(50.0)
    );
}

#[test]
fn unix_stream_reads_newline_framing_across_write_boundaries() {
    let agent = Agent::start();
    // Python `statsd`'s stream client: newline-terminated lines, written as they come.
    let mut stream = UnixStream::connect(agent.unix_stream()).unwrap();
    for piece in [&b"nl.hits:1|c\nnl.hi"[..], b"ts:2|c\n", b"nl.hits:3|c\n"] {
        stream.write_all(piece).unwrap();
        stream.flush().unwrap();
    }
    let scrape = agent.wait_for("nl_hits_total", &[], 6.0);
    assert_eq!(
        scrape.value("heartwire_lines_received_total", &transport("unix")),
        Some(3.0)
    );
    drop(stream);
    agent.wait_for(
        "heartwire_connections_closed_total",
        &[("transport", "unix"), ("reason", "eof")],
        1.0,
    );
}

#[test]
fn unix_stream_reads_dogstatsd_length_prefixed_frames() {
    let agent = Agent::start();
    // The `datadog` client's `unixstream://`: a 4-byte little-endian length before each payload.
    let mut wire = length_prefixed(b"lp.hits:1|c|#k:v\nlp.hits:2|c|#k:v\n");
    wire.extend(length_prefixed(b"lp.hits:4|c|#k:v"));
    let mut stream = UnixStream::connect(agent.unix_stream()).unwrap();
    let (first, second) = wire.split_at(7);
    stream.write_all(first).unwrap();
    stream.flush().unwrap();
    stream.write_all(second).unwrap();
    let scrape = agent.wait_for("lp_hits_total", &[("k", "v")], 7.0);
    assert_eq!(
        scrape.value("heartwire_lines_received_total", &transport("unix")),
        Some(3.0)
    );
    // A stream counts its bytes (both frames, prefixes included), not datagrams.
    assert_eq!(
        scrape.value("heartwire_bytes_received_total", &transport("unix")),
        Some(wire.len() as f64)
    );
    assert_eq!(
        scrape.value("heartwire_datagrams_received_total", &transport("unix")),
        None
    );
}

#[test]
fn tcp_reads_newline_framing_and_a_last_line_without_newline() {
    let agent = Agent::start();
    agent.send_tcp(b"tcp.hits:1|c\ntcp.hits:2|c\ntcp.hits:4|c");
    agent.send_tcp(b"hb worker-1\n");
    // The counters can run a batch ahead of the aggregated state within one scrape, so the
    // heartbeat is waited for, not assumed once the lines are counted.
    let scrape = agent.wait_until("every TCP line counted and applied", |scrape| {
        scrape.value("tcp_hits_total", &[]) == Some(7.0)
            && scrape.value("heartwire_lines_received_total", &transport("tcp")) == Some(4.0)
            && scrape
                .value(
                    "heartwire_worker_last_heartbeat_timestamp_seconds",
                    &[("worker", "worker-1")],
                )
                .is_some()
    });
    assert_eq!(
        scrape.value("heartwire_lines_rejected_total", &[("reason", "malformed")]),
        Some(0.0)
    );
}

#[test]
fn post_ingest_accepts_lines_on_the_loopback_listener_only() {
    let agent = Agent::start();
    assert_eq!(agent.post_ingest("http.hits:1|c\nhttp.hits:2|c\n"), 202);
    assert_eq!(
        agent.post_ingest("http external-api /v1/users 503 0.2"),
        202
    );
    let scrape = agent.wait_for_all(&[
        ("http_hits_total", &[], 3.0),
        ("heartwire_lines_received_total", &transport("http"), 3.0),
    ]);
    let call = [
        ("service", "external-api"),
        ("endpoint", "/v1/users"),
        ("status_code", "503"),
    ];
    assert_eq!(
        scrape.value("heartwire_external_http_total", &call),
        Some(1.0)
    );
    // The read-only listener has no /ingest, and /ingest takes no GET.
    let on_metrics_listener = format!("http://{}/ingest", agent.address("http"));
    let response = agent
        .http()
        .post(on_metrics_listener)
        .body("x:1|c")
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    assert_eq!(
        agent
            .http()
            .get(agent.ingest_url())
            .send()
            .unwrap()
            .status()
            .as_u16(),
        405
    );
}

#[test]
fn post_ingest_refuses_a_body_over_the_limit() {
    let agent = Agent::start_config(|dir| {
        heartwire_tests::agent::all_listeners(dir).replace(
            "  http: { address: \"127.0.0.1:0\" }\n",
            "  http: { address: \"127.0.0.1:0\", max_body_bytes: 64 }\n",
        )
    });
    assert_eq!(agent.post_ingest(vec![b'x'; 65]), 413);
    assert_eq!(agent.post_ingest("small.hits:1|c\n"), 202);
    let scrape = agent.wait_for("small_hits_total", &[], 1.0);
    assert_eq!(
        scrape.value("heartwire_lines_received_total", &transport("http")),
        Some(1.0)
    );
}

#[test]
fn a_garbage_stream_connection_is_closed_and_others_keep_working() {
    let agent = Agent::start();
    let mut good = UnixStream::connect(agent.unix_stream()).unwrap();
    good.write_all(b"steady.hits:1|c\n").unwrap();
    agent.wait_for("steady_hits_total", &[], 1.0);

    // A length prefix announcing 16 MiB, far over max_frame_bytes.
    let mut frame_bomb = UnixStream::connect(agent.unix_stream()).unwrap();
    frame_bomb
        .write_all(&[0xff, 0xff, 0xff, 0x00, b'x'])
        .unwrap();
    frame_bomb
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    assert!(
        closed_by_peer(&mut frame_bomb),
        "the agent kept a connection that announced a 16 MiB frame"
    );

    // A TCP line that never ends.
    let mut endless = TcpStream::connect(agent.tcp()).unwrap();
    let _ = endless.write_all(&vec![b'x'; 40 * 1024]);
    endless
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    assert!(
        closed_by_peer(&mut endless),
        "the agent kept a connection whose line never ended"
    );

    good.write_all(b"steady.hits:2|c\n").unwrap();
    let scrape = agent.wait_for("steady_hits_total", &[], 3.0);
    assert_eq!(
        scrape.value(
            "heartwire_connections_closed_total",
            &[("transport", "unix"), ("reason", "garbage")]
        ),
        Some(1.0)
    );
    assert_eq!(
        scrape.value(
            "heartwire_connections_closed_total",
            &[("transport", "tcp"), ("reason", "garbage")]
        ),
        Some(1.0)
    );
    assert_eq!(
        scrape.value("heartwire_connections", &transport("unix")),
        Some(1.0)
    );
}

#[test]
fn connections_over_the_limit_wait_for_a_slot_and_lose_nothing() {
    let agent = Agent::start_config(|dir| {
        heartwire_tests::agent::all_listeners(dir).replace(
            "  tcp: { address: \"127.0.0.1:0\" }\n",
            "  tcp: { address: \"127.0.0.1:0\", max_connections: 2 }\n",
        )
    });
    let mut first = TcpStream::connect(agent.tcp()).unwrap();
    let mut second = TcpStream::connect(agent.tcp()).unwrap();
    first.write_all(b"held.hits:1|c\n").unwrap();
    second.write_all(b"held.hits:1|c\n").unwrap();
    agent.wait_for("heartwire_connections", &transport("tcp"), 2.0);
    agent.wait_for("held_hits_total", &[], 2.0);

    // A third connection at the cap waits in the backlog, with what it wrote, and is not closed.
    let mut third = TcpStream::connect(agent.tcp()).unwrap();
    third.write_all(b"held.hits:1|c\n").unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buffer = [0u8; 16];
    assert!(
        matches!(third.read(&mut buffer), Err(error) if error.kind() == std::io::ErrorKind::WouldBlock),
        "the waiting connection must stay open"
    );
    let scrape = agent.scrape();
    assert_eq!(
        scrape.value("held_hits_total", &[]),
        Some(2.0),
        "not read yet"
    );
    assert_eq!(
        scrape.value("heartwire_connections_opened_total", &transport("tcp")),
        Some(2.0)
    );

    // A slot frees: the waiting connection is accepted and its line is counted.
    drop(first);
    let scrape = agent.wait_for("held_hits_total", &[], 3.0);
    assert_eq!(
        scrape.value("heartwire_connections_opened_total", &transport("tcp")),
        Some(3.0)
    );
    second.write_all(b"held.hits:1|c\n").unwrap();
    agent.wait_for("held_hits_total", &[], 4.0);
}

#[test]
fn sigterm_drains_removes_the_socket_files_and_exits_zero() {
    let agent = Agent::start_config(|dir| {
        heartwire_tests::agent::all_listeners(dir)
            .replace("enabled: true, path", "enabled: true, mode: \"0600\", path")
    });
    let (dgram, stream) = (agent.unix_datagram(), agent.unix_stream());
    for path in [&dgram, &stream] {
        let mode = std::fs::metadata(path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", path.display());
    }
    let mut open = UnixStream::connect(&stream).unwrap();
    open.write_all(b"last.hits:1|c\n").unwrap();
    agent.wait_for("last_hits_total", &[], 1.0);

    let (status, log) = agent.terminate();
    assert!(status.success(), "exit status {status}; log:\n{log}");
    assert!(!dgram.exists(), "{} was left behind", dgram.display());
    assert!(!stream.exists(), "{} was left behind", stream.display());
    assert!(log.contains("queue drained"), "{log}");
    drop(open);
}

#[test]
fn a_stalled_upload_cannot_keep_the_agent_from_stopping() {
    let agent = Agent::start_with("shutdown:\n  drain_timeout: 300ms\n");
    let mut upload = TcpStream::connect(agent.address("http_ingest")).unwrap();
    upload
        .write_all(
            b"POST /ingest HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\nstalled.hits:1|c\n",
        )
        .unwrap();
    agent.send_udp(b"other.hits:1|c\n");
    agent.wait_for("other_hits_total", &[], 1.0);
    let (status, log) = agent.terminate();
    assert!(status.success(), "exit status {status}; log:\n{log}");
    assert!(
        log.contains("requests still in flight at the deadline were cut off"),
        "{log}"
    );
}

#[test]
fn a_stale_socket_file_is_replaced_but_any_other_file_is_refused() {
    let agent = Agent::start_config(|dir| {
        // What a crashed run leaves: a socket file nobody serves.
        drop(std::os::unix::net::UnixListener::bind(dir.join("stream.sock")).unwrap());
        drop(std::os::unix::net::UnixDatagram::bind(dir.join("dgram.sock")).unwrap());
        heartwire_tests::agent::all_listeners(dir)
    });
    agent.send_unix_stream(b"fresh.hits:1|c\n");
    agent.send_unix_datagram(b"fresh.hits:1|c\n");
    agent.wait_for("fresh_hits_total", &[], 2.0);

    let failure = Agent::try_start(|dir| {
        std::fs::write(dir.join("dgram.sock"), "keep me").unwrap();
        heartwire_tests::agent::all_listeners(dir)
    })
    .unwrap_err();
    assert_eq!(
        failure.status.and_then(|status| status.code()),
        Some(1),
        "{failure}"
    );
    assert!(
        failure
            .log
            .contains("dgram.sock: the path exists and is not a socket"),
        "{failure}"
    );
    assert!(
        failure.log.contains("listen.unix_datagram.path"),
        "{failure}"
    );
}

#[test]
fn a_busy_port_fails_startup_naming_the_address_and_the_key() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = busy.local_addr().unwrap();
    let sockets = tempfile::tempdir().unwrap();
    let failure = Agent::try_start(|dir| {
        heartwire_tests::agent::all_listeners(dir)
            .replace(
                &dir.display().to_string(),
                &sockets.path().display().to_string(),
            )
            .replace(
                "  tcp: { address: \"127.0.0.1:0\" }\n",
                &format!("  tcp: {{ address: \"{address}\" }}\n"),
            )
    })
    .unwrap_err();
    assert_eq!(
        failure.status.and_then(|status| status.code()),
        Some(1),
        "{failure}"
    );
    assert!(
        failure
            .log
            .contains(&format!("cannot listen for TCP on {address}")),
        "{failure}"
    );
    assert!(failure.log.contains("`listen.tcp.address`"), "{failure}");
    // The Unix datagram socket was bound before TCP failed; its file is gone with it.
    let left: Vec<_> = std::fs::read_dir(sockets.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn an_invalid_config_exits_64_naming_file_line_and_key() {
    let failure =
        Agent::try_start(|_| "listen:\n  udp:\n    adress: 127.0.0.1:0\n".to_owned()).unwrap_err();
    assert_eq!(
        failure.status.and_then(|status| status.code()),
        Some(64),
        "{failure}"
    );
    assert!(
        failure
            .log
            .contains("agent.yaml:3:5: listen.udp: unknown field `adress`"),
        "{failure}"
    );
}

/// A plain page of one piece is sent as chunks (the stored part, then the live part), with the
/// exact `Content-Length` a single buffer would have (a larger page is sent as it is rendered).
#[test]
fn a_plain_metrics_page_carries_its_exact_length() {
    let agent = Agent::start();
    agent.send_udp(b"sized.hits:3|c\n");
    agent.wait_for("sized_hits_total", &[], 3.0);
    for _ in 0..2 {
        let response = agent.http().get(agent.metrics_url()).send().unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert!(response.headers().get("transfer-encoding").is_none());
        let length: usize = response.headers()["content-length"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let body = response.text().unwrap();
        assert_eq!(body.len(), length);
        assert!(body.ends_with('\n'));
        assert_eq!(
            Scrape::parse(body).value("sized_hits_total", &[]),
            Some(3.0)
        );
    }
}

#[test]
fn metrics_are_gzipped_when_the_client_asks() {
    let agent = Agent::start();
    agent.send_udp(b"zip.hits:5|c\n");
    agent.wait_for("zip_hits_total", &[], 5.0);
    let response = agent
        .http()
        .get(agent.metrics_url())
        .header("Accept-Encoding", "gzip")
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response
            .headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap()),
        Some("gzip")
    );
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let compressed = response.bytes().unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_string(&mut text)
        .unwrap();
    assert!(compressed.len() < text.len());
    assert_eq!(Scrape::parse(text).value("zip_hits_total", &[]), Some(5.0));

    let health = agent
        .http()
        .get(format!("http://{}/healthz", agent.address("http")))
        .send()
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(health.text().unwrap(), "ok\n");
}

#[test]
fn heartwire_send_reaches_every_transport() {
    let agent = Agent::start();
    let targets = [
        format!("udp://{}", agent.udp()),
        format!("tcp://{}", agent.tcp()),
        format!("unix://{}", agent.unix_stream().display()),
        format!("unixgram://{}", agent.unix_datagram().display()),
    ];
    for target in &targets {
        let output = heartwire()
            .args([
                "send",
                "--to",
                target,
                "sent.hits:1|c",
                "job.ok send-test 0.5",
            ])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{target}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // Lines from standard input too.
    let mut child = heartwire()
        .args(["send", "--to", &targets[0], "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"sent.hits:10|c\nsent.hits:10|c\n")
        .unwrap();
    assert!(child.wait().unwrap().success());

    let scrape = agent.wait_for_all(&[
        ("sent_hits_total", &[], 24.0),
        (
            "heartwire_job_runs_total",
            &[("job", "send-test"), ("result", "ok")],
            4.0,
        ),
    ]);
    for name in ["udp", "tcp", "unix", "unixgram"] {
        let expected = if name == "udp" { 4.0 } else { 2.0 };
        assert_eq!(
            scrape.value("heartwire_lines_received_total", &transport(name)),
            Some(expected),
            "{name}"
        );
    }
}

#[test]
fn heartwire_send_refuses_invalid_lines_and_reports_unreachable_agents() {
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = format!("udp://{}", receiver.local_addr().unwrap());
    let output = heartwire()
        .args(["send", "--to", &to, "ok.line:1|c", "job.okk x"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(65));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("line 2 `job.okk x` is invalid (unknown_verb"),
        "{stderr}"
    );
    receiver.set_nonblocking(true).unwrap();
    assert!(
        receiver.recv(&mut [0u8; 64]).is_err(),
        "a datagram was sent despite the invalid line"
    );

    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let output = heartwire()
        .args(["send", "--to", &format!("tcp://{free}"), "x:1|c"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot send to tcp://{free}")),
        "{stderr}"
    );
}

#[test]
fn every_udp_datagram_is_either_received_or_counted_as_a_kernel_drop() {
    // The smallest receive buffer the kernel grants (a couple of datagrams), so a burst overflows.
    let agent = Agent::start_config(|dir| {
        heartwire_tests::agent::all_listeners(dir).replace(
            "  udp: { address: \"127.0.0.1:0\" }\n",
            "  udp: { address: \"127.0.0.1:0\", receive_buffer_bytes: 1 }\n",
        )
    });
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let burst = "burst.hits:1|c\n".repeat(90);
    let mut sent = 0u32;
    for _ in 0..20_000 {
        sent += u32::from(sender.send_to(burst.as_bytes(), agent.udp()).is_ok());
    }
    // The kernel reports its drop counter on the next datagram it queues: send probes until one
    // arrives. Everything sent before it has then been read or dropped.
    let probe_arrived = |scrape: &Scrape| {
        scrape
            .value("probe_hits_total", &[])
            .is_some_and(|hits| hits >= 1.0)
    };
    let scrape = loop {
        sent += u32::from(sender.send_to(b"probe.hits:1|c", agent.udp()).is_ok());
        let deadline = std::time::Instant::now() + Duration::from_millis(500);
        let mut scrape = agent.scrape();
        while !probe_arrived(&scrape) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            scrape = agent.scrape();
        }
        if probe_arrived(&scrape) {
            break scrape;
        }
    };
    let received = scrape
        .value("heartwire_datagrams_received_total", &transport("udp"))
        .unwrap();
    let dropped = scrape
        .value("heartwire_kernel_drops_total", &[("listener", "udp")])
        .unwrap_or(0.0);
    assert!(
        dropped > 0.0,
        "no kernel drops counted for a {sent}-datagram burst into a minimal buffer"
    );
    assert_eq!(
        received + dropped,
        f64::from(sent),
        "received {received} + dropped {dropped} != sent {sent}"
    );
    assert_eq!(
        scrape.value("heartwire_receive_buffer_bytes", &[("listener", "udp")]),
        Some(kernel_receive_buffer_for(1).unwrap() as f64),
        "the reported buffer is not what the kernel grants for the same request"
    );
}

/// What the kernel grants a fresh UDP socket that asks for `bytes` the way the agent does.
fn kernel_receive_buffer_for(bytes: usize) -> Result<usize, Box<dyn std::error::Error>> {
    use nix::sys::socket::{getsockopt, setsockopt, sockopt};
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    if setsockopt(&socket, sockopt::RcvBufForce, &bytes).is_err() {
        setsockopt(&socket, sockopt::RcvBuf, &bytes)?;
    }
    Ok(getsockopt(&socket, sockopt::RcvBuf)?)
}
