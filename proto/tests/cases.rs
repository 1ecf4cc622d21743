//! Case tables: one or more cases for every rule of PROTOCOL.md, named by the rule's tag.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use heartwire_proto::{
    AlertType, CheckStatus, Dialect, ErrorKind, Event, Heartbeat, Hello, Http, HttpStatus, JobEnd,
    JobProgress, JobSkip, JobStart, Line, Metric, MetricKind, ServiceCheck, Tag, Tags, Value,
    Values, WorkerStop, lines, parse_line,
};

#[track_caller]
fn accepts(rule: &str, input: &[u8], expected: Line<'_>) {
    match parse_line(input) {
        Ok(line) => assert_eq!(
            line,
            expected,
            "[{rule}] {:?}",
            String::from_utf8_lossy(input)
        ),
        Err(error) => panic!(
            "[{rule}] {:?} was rejected: {error}",
            String::from_utf8_lossy(input)
        ),
    }
}

#[track_caller]
fn rejects(rule: &str, input: &[u8], kind: ErrorKind) {
    match parse_line(input) {
        Ok(line) => panic!(
            "[{rule}] {:?} was accepted as {line:?}",
            String::from_utf8_lossy(input)
        ),
        Err(error) => assert_eq!(
            error.kind(),
            kind,
            "[{rule}] {:?}: {error}",
            String::from_utf8_lossy(input)
        ),
    }
}

fn metric<'a>(name: &'a str, kind: MetricKind, number: f64) -> Metric<'a> {
    Metric::new(name, kind, number)
}

fn tags(raw: &str) -> Tags<'_> {
    Tags::parse(raw).unwrap()
}

fn ok<'a>(job: &'a str, seconds: Option<f64>) -> JobEnd<'a> {
    JobEnd {
        job,
        seconds,
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Datagrams and lines
// ---------------------------------------------------------------------------------------------

#[test]
fn l1_splits_a_datagram_on_newlines_with_or_without_a_final_one() {
    for datagram in [&b"hb a\nhb b"[..], b"hb a\nhb b\n"] {
        let parsed: Vec<_> = lines(datagram).map(Result::unwrap).collect();
        assert_eq!(parsed.len(), 2, "[L1]");
        assert!(
            matches!(&parsed[1], Line::Heartbeat(hb) if hb.worker == "b"),
            "[L1]"
        );
    }
}

#[test]
fn l2_accepts_crlf_line_endings() {
    let parsed: Vec<_> = lines(b"hb a\r\nx:1|c\r\n").map(Result::unwrap).collect();
    assert_eq!(
        parsed,
        vec![
            Line::Heartbeat(Heartbeat {
                worker: "a",
                ..Default::default()
            }),
            Line::Metric(metric("x", MetricKind::Counter, 1.0))
        ],
        "[L2]"
    );
    accepts("L2", b"job.ok a 1\r\n", Line::JobOk(ok("a", Some(1.0))));
}

#[test]
fn l3_ignores_blanks_around_a_line() {
    accepts("L3", b"  \tjob.ok a 1 \t", Line::JobOk(ok("a", Some(1.0))));
    accepts(
        "L3",
        b" x:1|c ",
        Line::Metric(metric("x", MetricKind::Counter, 1.0)),
    );
}

#[test]
fn l4_skips_blank_lines_without_counting_them() {
    let parsed: Vec<_> = lines(b"\n\n  \n\r\nhb a\n\t\n").collect();
    assert_eq!(parsed.len(), 1, "[L4]");
    assert_eq!(lines(b"").count(), 0, "[L4]");
    assert_eq!(lines(b"\n").count(), 0, "[L4]");
}

#[test]
fn l5_rejects_invalid_utf8_and_keeps_reading() {
    rejects("L5", b"job.ok \xff\xfe 1", ErrorKind::InvalidUtf8);
    rejects("L5", b"x\xc3:1|c", ErrorKind::InvalidUtf8);
    let parsed: Vec<_> = lines(b"hb a\n\xff\nhb b").collect();
    assert_eq!(
        parsed[1].as_ref().unwrap_err().kind(),
        ErrorKind::InvalidUtf8,
        "[L5]"
    );
    assert!(parsed[0].is_ok() && parsed[2].is_ok(), "[L5]");
}

#[test]
fn l6_rejects_lines_longer_than_the_limit() {
    let long = format!("x:1|c|#{}", "a".repeat(9000));
    rejects("L6", long.as_bytes(), ErrorKind::TooLong);
    let tags: Vec<String> = (0..32)
        .map(|i| format!("k{i:02}:{}", "v".repeat(246)))
        .collect();
    let just_fits = format!("x:1|c|#{},pad:", tags.join(","));
    let just_fits = format!("{just_fits}{}", "p".repeat(8192 - just_fits.len()));
    assert_eq!(just_fits.len(), 8192);
    assert!(
        parse_line(just_fits.as_bytes()).is_ok(),
        "[L6] a line of exactly 8192 bytes is accepted"
    );
}

#[test]
fn l7_one_bad_line_never_affects_the_others() {
    let datagram = b"job.ok a 1\nnot a line at all\nx:1|q\nx:1|c\n\xff\nhb w\n";
    let kinds: Vec<_> = lines(datagram)
        .map(|r| r.map(|l| l.dialect()).map_err(|e| e.kind()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            Ok(Dialect::Native),
            Err(ErrorKind::UnknownVerb),
            Err(ErrorKind::InvalidType),
            Ok(Dialect::Statsd),
            Err(ErrorKind::InvalidUtf8),
            Ok(Dialect::Native),
        ],
        "[L7]"
    );
}

#[test]
fn l8_rejects_control_characters_in_every_part() {
    rejects("L8", b"job.ok a\0b 1", ErrorKind::InvalidName);
    rejects("L8", b"x\0y:1|c", ErrorKind::InvalidName);
    rejects("L8", b"x:1|c|#a:\0", ErrorKind::InvalidTag);
    rejects("L8", b"x:\x01|s", ErrorKind::InvalidValue);
    rejects("L8", b"job.ok a 1 id=\x07", ErrorKind::InvalidField);
}

// ---------------------------------------------------------------------------------------------
// 2. Telling the dialects apart
// ---------------------------------------------------------------------------------------------

#[test]
fn d1_d2_recognise_events_and_service_checks() {
    assert_eq!(
        parse_line(b"_e{1,1}:a|b").unwrap().dialect(),
        Dialect::DogStatsd,
        "[D1]"
    );
    assert_eq!(
        parse_line(b"_sc|a|0").unwrap().dialect(),
        Dialect::DogStatsd,
        "[D2]"
    );
}

#[test]
fn d3_reads_a_line_as_native_only_when_its_first_word_is_a_verb() {
    assert_eq!(
        parse_line(b"hb a").unwrap().dialect(),
        Dialect::Native,
        "[D3]"
    );
    // A metric named like a verb is still a metric: its first word holds ':'.
    accepts(
        "D3",
        b"hb:1|c",
        Line::Metric(metric("hb", MetricKind::Counter, 1.0)),
    );
    accepts(
        "D3",
        b"job.ok:2|g",
        Line::Metric(metric("job.ok", MetricKind::Gauge, 2.0)),
    );
    // A blank inside tags does not make a statsd line native.
    let line = parse_line(b"x:1|c|#team:data eng").unwrap();
    assert_eq!(line.dialect(), Dialect::Statsd, "[D3]");
}

#[test]
fn d4_rejects_unknown_verbs_loudly() {
    rejects("D4", b"job.finish a", ErrorKind::UnknownVerb);
    rejects("D4", b"heartbeat a", ErrorKind::UnknownVerb);
    rejects("D4", b"Job.Ok a", ErrorKind::Malformed);
    rejects("D4", b"hello world", ErrorKind::Malformed);
}

#[test]
fn d5_reads_everything_else_as_statsd() {
    rejects("D5", b"justaword", ErrorKind::Malformed);
    rejects("D5", b"x|c", ErrorKind::Malformed);
    rejects("D5", b"x:1", ErrorKind::MissingField);
}

// ---------------------------------------------------------------------------------------------
// 3. Native verbs
// ---------------------------------------------------------------------------------------------

#[test]
fn native_verbs_parse_to_their_events() {
    accepts(
        "N",
        b"job.start export",
        Line::JobStart(JobStart {
            job: "export",
            ..Default::default()
        }),
    );
    accepts(
        "N",
        b"job.start export id=7f3a",
        Line::JobStart(JobStart {
            job: "export",
            id: Some("7f3a"),
            unknown_fields: 0,
        }),
    );
    accepts(
        "N",
        b"job.ok viewer-poll 0.3",
        Line::JobOk(ok("viewer-poll", Some(0.3))),
    );
    accepts(
        "N",
        b"job.ok viewer-poll",
        Line::JobOk(ok("viewer-poll", None)),
    );
    accepts(
        "N",
        b"job.ok export 12.5 id=run-1 exit=0",
        Line::JobOk(JobEnd {
            job: "export",
            seconds: Some(12.5),
            id: Some("run-1"),
            exit: Some(0),
            ..Default::default()
        }),
    );
    accepts(
        "N",
        b"job.error export 3 reason=http_5xx id=r1 exit=2 signal=TERM",
        Line::JobError(JobEnd {
            job: "export",
            seconds: Some(3.0),
            reason: Some("http_5xx"),
            id: Some("r1"),
            exit: Some(2),
            signal: Some("TERM"),
            unknown_fields: 0,
        }),
    );
    accepts("N", b"job.error export", Line::JobError(ok("export", None)));
    accepts(
        "N",
        b"job.skip export reason=not_leader",
        Line::JobSkip(JobSkip {
            job: "export",
            reason: Some("not_leader"),
            ..Default::default()
        }),
    );
    accepts(
        "N",
        b"job.progress crawl 250",
        Line::JobProgress(JobProgress {
            job: "crawl",
            amount: Some(250.0),
            ..Default::default()
        }),
    );
    accepts(
        "N",
        b"job.progress crawl",
        Line::JobProgress(JobProgress {
            job: "crawl",
            ..Default::default()
        }),
    );
    accepts(
        "N",
        b"hb mailer ttl=30",
        Line::Heartbeat(Heartbeat {
            worker: "mailer",
            ttl: Some(30.0),
            unknown_fields: 0,
        }),
    );
    accepts(
        "N",
        b"hb mailer",
        Line::Heartbeat(Heartbeat {
            worker: "mailer",
            ..Default::default()
        }),
    );
    accepts(
        "N",
        b"worker.stop mailer",
        Line::WorkerStop(WorkerStop {
            worker: "mailer",
            unknown_fields: 0,
        }),
    );
    accepts(
        "N",
        b"http kick oauth/token 401 0.21",
        Line::Http(Http {
            service: "kick",
            endpoint: "oauth/token",
            status: HttpStatus::Code(401),
            seconds: Some(0.21),
            unknown_fields: 0,
        }),
    );
    accepts(
        "N",
        b"http kick channels network",
        Line::Http(Http {
            service: "kick",
            endpoint: "channels",
            status: HttpStatus::Network,
            seconds: None,
            unknown_fields: 0,
        }),
    );
    accepts(
        "N",
        b"http x users/me timeout 30",
        Line::Http(Http {
            service: "x",
            endpoint: "users/me",
            status: HttpStatus::Timeout,
            seconds: Some(30.0),
            unknown_fields: 0,
        }),
    );
    accepts(
        "N",
        b"hello app=worker pid=4242",
        Line::Hello(Hello {
            app: "worker",
            pid: Some(4242),
            unknown_fields: 0,
        }),
    );
    accepts(
        "N",
        b"hello app=worker",
        Line::Hello(Hello {
            app: "worker",
            ..Default::default()
        }),
    );
}

#[test]
fn n1_separates_arguments_by_runs_of_blanks() {
    accepts(
        "N1",
        b"job.ok  a \t 1   id=x",
        Line::JobOk(JobEnd {
            job: "a",
            seconds: Some(1.0),
            id: Some("x"),
            ..Default::default()
        }),
    );
}

#[test]
fn n2_fields_come_after_positional_arguments() {
    rejects("N2", b"job.ok a id=x 1", ErrorKind::Malformed);
    accepts(
        "N2",
        b"job.ok a id=x exit=1",
        Line::JobOk(JobEnd {
            job: "a",
            id: Some("x"),
            exit: Some(1),
            ..Default::default()
        }),
    );
}

#[test]
fn n3_counts_missing_and_extra_arguments() {
    rejects("N3", b"job.ok", ErrorKind::Malformed); // no blank: not native, and no ':' for statsd
    rejects("N3", b"job.ok ", ErrorKind::Malformed);
    rejects("N3", b"job.start id=x", ErrorKind::MissingField);
    rejects("N3", b"http kick 200", ErrorKind::MissingField); // "200" is the endpoint; the status is missing
    rejects("N3", b"http kick", ErrorKind::MissingField);
    rejects("N3", b"hb a b", ErrorKind::Malformed);
    rejects("N3", b"job.ok a 1 2", ErrorKind::Malformed);
    rejects("N3", b"http a b 200 1 2", ErrorKind::Malformed);
}

#[test]
fn n4_names_obey_the_name_rule() {
    accepts(
        "N4",
        b"job.ok A-z_0.9:/x 1",
        Line::JobOk(ok("A-z_0.9:/x", Some(1.0))),
    );
    let longest = format!("hb {}", "w".repeat(128));
    assert!(
        parse_line(longest.as_bytes()).is_ok(),
        "[N4] 128 characters is allowed"
    );
    rejects(
        "N4",
        format!("hb {}", "w".repeat(129)).as_bytes(),
        ErrorKind::InvalidName,
    );
    rejects("N4", b"job.ok caf\xc3\xa9 1", ErrorKind::InvalidName);
    rejects("N4", b"job.ok a,b 1", ErrorKind::InvalidName);
    rejects("N4", b"job.ok a\"b 1", ErrorKind::InvalidName);
    rejects("N4", b"hello app=a|b", ErrorKind::InvalidName);
}

#[test]
fn n5_seconds_are_finite_and_not_negative() {
    accepts("N5", b"job.ok a 0", Line::JobOk(ok("a", Some(0.0))));
    accepts("N5", b"job.ok a 1e3", Line::JobOk(ok("a", Some(1000.0))));
    accepts("N5", b"job.ok a .5", Line::JobOk(ok("a", Some(0.5))));
    for bad in [
        "-1", "NaN", "nan", "inf", "-inf", "Infinity", "1e400", "fast", "0x10", "1,5",
    ] {
        rejects(
            "N5",
            format!("job.ok a {bad}").as_bytes(),
            ErrorKind::InvalidValue,
        );
    }
    rejects("N5", b"job.progress a -3", ErrorKind::InvalidValue);
    rejects("N5", b"http a b 200 -0.5", ErrorKind::InvalidValue);
}

#[test]
fn n6_known_fields_with_bad_values_are_invalid_fields() {
    rejects("N6", b"job.start a id=", ErrorKind::InvalidField);
    rejects(
        "N6",
        format!("job.start a id={}", "i".repeat(129)).as_bytes(),
        ErrorKind::InvalidField,
    );
    rejects("N6", b"job.ok a exit=zero", ErrorKind::InvalidField);
    rejects("N6", b"job.ok a exit=1.5", ErrorKind::InvalidField);
    rejects("N6", b"hb a ttl=0", ErrorKind::InvalidField);
    rejects("N6", b"hb a ttl=-5", ErrorKind::InvalidField);
    rejects("N6", b"hb a ttl=30s", ErrorKind::InvalidField);
    rejects("N6", b"hello app=a pid=-1", ErrorKind::InvalidField);
    rejects(
        "N6",
        b"job.error a reason=bad|reason",
        ErrorKind::InvalidField,
    );
}

#[test]
fn n7_unknown_fields_are_ignored_and_reported() {
    let line = parse_line(b"job.ok a 1 shard=3 region=eu").unwrap();
    assert_eq!(
        line,
        Line::JobOk(JobEnd {
            job: "a",
            seconds: Some(1.0),
            unknown_fields: 2,
            ..Default::default()
        }),
        "[N7]"
    );
    assert!(line.has_unknown_fields(), "[N7]");
    // A field known to another verb is unknown here.
    let line = parse_line(b"job.ok a ttl=5 signal=TERM reason=nothing_to_do").unwrap();
    assert_eq!(
        line,
        Line::JobOk(JobEnd {
            job: "a",
            reason: Some("nothing_to_do"),
            unknown_fields: 2,
            ..Default::default()
        }),
        "[N7] signal= only on job.error; reason= on both ends"
    );
    assert!(
        !parse_line(b"job.ok a 1").unwrap().has_unknown_fields(),
        "[N7]"
    );
    let line = parse_line(b"worker.stop w why=deploy").unwrap();
    assert!(line.has_unknown_fields(), "[N7]");
}

#[test]
fn n8_the_last_repeated_field_wins() {
    accepts(
        "N8",
        b"job.start a id=1 id=2",
        Line::JobStart(JobStart {
            job: "a",
            id: Some("2"),
            unknown_fields: 0,
        }),
    );
}

#[test]
fn n9_http_statuses_are_three_digits_or_a_word() {
    for (status, expected) in [
        ("100", HttpStatus::Code(100)),
        ("599", HttpStatus::Code(599)),
        ("network", HttpStatus::Network),
        ("timeout", HttpStatus::Timeout),
    ] {
        let line = format!("http s e {status}");
        accepts(
            "N9",
            line.as_bytes(),
            Line::Http(Http {
                service: "s",
                endpoint: "e",
                status: expected,
                seconds: None,
                unknown_fields: 0,
            }),
        );
    }
    for bad in ["99", "600", "0200", "2xx", "Network", "+200", "abort"] {
        rejects(
            "N9",
            format!("http s e {bad}").as_bytes(),
            ErrorKind::InvalidValue,
        );
    }
}

#[test]
fn n10_signals_are_taken_as_written() {
    for signal in ["TERM", "SIGKILL", "9"] {
        let line = format!("job.error a signal={signal}");
        accepts(
            "N10",
            line.as_bytes(),
            Line::JobError(JobEnd {
                job: "a",
                signal: Some(signal),
                ..Default::default()
            }),
        );
    }
}

#[test]
fn n11_hello_needs_an_app_and_no_arguments() {
    rejects("N11", b"hello pid=3", ErrorKind::MissingField);
    rejects("N11", b"hello worker app=x", ErrorKind::Malformed);
}

// ---------------------------------------------------------------------------------------------
// 4. StatsD and DogStatsD metrics
// ---------------------------------------------------------------------------------------------

#[test]
fn s1_reads_every_type() {
    for (text, kind) in [
        ("c", MetricKind::Counter),
        ("g", MetricKind::Gauge),
        ("ms", MetricKind::Timer),
        ("h", MetricKind::Histogram),
        ("d", MetricKind::Distribution),
    ] {
        let line = format!("x:2|{text}");
        accepts("S1", line.as_bytes(), Line::Metric(metric("x", kind, 2.0)));
    }
    let mut set = metric("users", MetricKind::Set, 0.0);
    set.values = Values::Member("alice");
    accepts("S1", b"users:alice|s", Line::Metric(set));
    rejects("S1", b"x:1|q", ErrorKind::InvalidType);
    rejects("S1", b"x:1|C", ErrorKind::InvalidType);
    rejects("S1", b"x:1|", ErrorKind::MissingField);
    rejects("S1", b"x:1", ErrorKind::MissingField);
    rejects("S1", b"x|1|c", ErrorKind::Malformed);
}

#[test]
fn s2_signed_gauge_values_are_deltas() {
    let mut gauge = metric("depth", MetricKind::Gauge, 0.0);
    gauge.values = Values::One(Value::delta(5.0));
    accepts("S2", b"depth:+5|g", Line::Metric(gauge.clone()));
    gauge.values = Values::One(Value::delta(-3.0));
    accepts("S2", b"depth:-3|g", Line::Metric(gauge));
    accepts(
        "S2",
        b"depth:7|g",
        Line::Metric(metric("depth", MetricKind::Gauge, 7.0)),
    );
    // The sign means nothing for other types.
    accepts(
        "S2",
        b"lat:+5|h",
        Line::Metric(metric("lat", MetricKind::Histogram, 5.0)),
    );
    accepts(
        "S2",
        b"lat:-5|h",
        Line::Metric(metric("lat", MetricKind::Histogram, -5.0)),
    );
}

#[test]
fn s3_negative_counters_parse_so_the_agent_can_count_them() {
    // What python statsd's decr() and every DogStatsD client's decrement() send.
    let Line::Metric(m) = parse_line(b"x:-1|c").unwrap() else {
        panic!("[S3]")
    };
    assert_eq!(
        (m.kind, m.values),
        (MetricKind::Counter, Values::One(Value::absolute(-1.0))),
        "[S3]"
    );
    let Line::Metric(m) = parse_line(b"x:1:-1|c").unwrap() else {
        panic!("[S3]")
    };
    assert_eq!(
        m.values.iter(m.kind).map(|v| v.number).collect::<Vec<_>>(),
        vec![1.0, -1.0],
        "[S3]"
    );
    accepts(
        "S3",
        b"x:0|c",
        Line::Metric(metric("x", MetricKind::Counter, 0.0)),
    );
}

#[test]
fn s4_values_are_finite_numbers() {
    for bad in [
        "NaN",
        "nan",
        "inf",
        "+inf",
        "-Infinity",
        "",
        "1e999",
        "one",
        "1_000",
        "0x1",
    ] {
        rejects(
            "S4",
            format!("x:{bad}|g").as_bytes(),
            ErrorKind::InvalidValue,
        );
        rejects(
            "S4",
            format!("x:{bad}|h").as_bytes(),
            ErrorKind::InvalidValue,
        );
    }
    accepts(
        "S4",
        b"x:1.5e-3|ms",
        Line::Metric(metric("x", MetricKind::Timer, 0.0015)),
    );
}

#[test]
fn s5_packed_values_are_each_one_sample() {
    let line = parse_line(b"lat:1.2:0.9:3.4|h|@0.5|#a:b").unwrap();
    let Line::Metric(m) = line else {
        panic!("[S5] not a metric")
    };
    assert_eq!(m.values, Values::Packed("1.2:0.9:3.4"), "[S5]");
    assert_eq!(m.values.len(), 3, "[S5]");
    let numbers: Vec<f64> = m.values.iter(m.kind).map(|v| v.number).collect();
    assert_eq!(numbers, vec![1.2, 0.9, 3.4], "[S5]");
    assert_eq!(
        (m.rate, m.tags.as_str()),
        (0.5, "a:b"),
        "[S5] rate and tags apply to all"
    );
    let Line::Metric(g) = parse_line(b"g:1:+2:-3|g").unwrap() else {
        panic!("[S5]")
    };
    let values: Vec<Value> = g.values.iter(g.kind).collect();
    assert_eq!(
        values,
        vec![Value::absolute(1.0), Value::delta(2.0), Value::delta(-3.0)],
        "[S5]"
    );
    rejects("S5", b"lat:1:x:3|h", ErrorKind::InvalidValue);
    rejects("S5", b"lat:1::3|h", ErrorKind::InvalidValue);
    rejects("S5", b"lat:1:|h", ErrorKind::InvalidValue);
}

#[test]
fn s6_a_set_member_is_taken_as_written() {
    let Line::Metric(m) = parse_line(b"ips:10.0.0.1:8080|s|#a").unwrap() else {
        panic!("[S6]")
    };
    assert_eq!(m.values, Values::Member("10.0.0.1:8080"), "[S6]");
    assert_eq!(
        m.values.iter(m.kind).count(),
        0,
        "[S6] a member has no numeric values"
    );
    rejects("S6", b"ips:|s", ErrorKind::InvalidValue);
}

#[test]
fn s7_s8_sample_rates_are_weights_with_a_floor() {
    let rate = |line: &[u8]| match parse_line(line).unwrap() {
        Line::Metric(m) => (m.rate, m.rate_clamped, m.weight()),
        other => panic!("[S7] {other:?}"),
    };
    assert_eq!(rate(b"x:1|c|@0.1"), (0.1, false, 10.0), "[S7]");
    assert_eq!(rate(b"x:1|ms|@0.25"), (0.25, false, 4.0), "[S7] every type");
    assert_eq!(rate(b"x:1|c"), (1.0, false, 1.0), "[S7] default");
    assert_eq!(rate(b"x:1|c|@1"), (1.0, false, 1.0), "[S8]");
    assert_eq!(
        rate(b"x:1|c|@2"),
        (1.0, true, 1.0),
        "[S8] above 1 counts as 1"
    );
    assert_eq!(rate(b"x:1|c|@1e-9").0, 1e-6, "[S8] floor");
    assert!(rate(b"x:1|c|@1e-9").1, "[S8] floor is reported");
    for bad in ["0", "-0.5", "x", "", "nan", "inf"] {
        rejects(
            "S8",
            format!("x:1|c|@{bad}").as_bytes(),
            ErrorKind::InvalidSampleRate,
        );
    }
}

#[test]
fn s9_tags_are_bounded() {
    let Line::Metric(m) =
        parse_line(b"x:1|c|#env:prod,url:http://a:80/b,canary,,region:eu").unwrap()
    else {
        panic!("[S9]")
    };
    let tags: Vec<Tag<'_>> = m.tags.iter().collect();
    assert_eq!(
        tags,
        vec![
            Tag {
                key: "env",
                value: Some("prod")
            },
            Tag {
                key: "url",
                value: Some("http://a:80/b")
            },
            Tag {
                key: "canary",
                value: None
            },
            Tag {
                key: "region",
                value: Some("eu")
            },
        ],
        "[S9] empty entries skipped, values may hold ':'"
    );
    let many: Vec<String> = (0..64).map(|i| format!("k{i}:v")).collect();
    assert!(
        parse_line(format!("x:1|c|#{}", many.join(",")).as_bytes()).is_ok(),
        "[S9] 64 tags"
    );
    let too_many: Vec<String> = (0..65).map(|i| format!("k{i}:v")).collect();
    rejects(
        "S9",
        format!("x:1|c|#{}", too_many.join(",")).as_bytes(),
        ErrorKind::InvalidTag,
    );
    rejects(
        "S9",
        format!("x:1|c|#k:{}", "v".repeat(255)).as_bytes(),
        ErrorKind::InvalidTag,
    );
    assert!(
        parse_line(format!("x:1|c|#k:{}", "v".repeat(254)).as_bytes()).is_ok(),
        "[S9] 256 bytes"
    );
    rejects("S9", b"x:1|c|#:v", ErrorKind::InvalidTag);
    rejects("S9", b"x:1|c|#a\tb", ErrorKind::InvalidTag);
    rejects("S9", b"x:1|c|#a:b|#c:d", ErrorKind::InvalidTag);
}

#[test]
fn s10_s11_bare_and_duplicate_tags_are_kept_in_order() {
    let Line::Metric(m) = parse_line(b"x:1|c|#env:a,flag,env:b").unwrap() else {
        panic!("[S10]")
    };
    let tags: Vec<_> = m.tags.iter().map(|t| (t.key, t.value)).collect();
    assert_eq!(
        tags,
        vec![("env", Some("a")), ("flag", None), ("env", Some("b"))],
        "[S10] [S11]"
    );
}

#[test]
fn s12_client_timestamps_are_whole_seconds() {
    let Line::Metric(m) = parse_line(b"x:1|g|T1700000000").unwrap() else {
        panic!("[S12]")
    };
    assert_eq!(m.timestamp, Some(1_700_000_000), "[S12]");
    for bad in ["T", "T-1", "T1.5", "Tnow", "T99999999999999999999999"] {
        rejects(
            "S12",
            format!("x:1|g|{bad}").as_bytes(),
            ErrorKind::InvalidField,
        );
    }
}

#[test]
fn s13_s14_container_ids_and_newer_fields_are_read_but_not_labels() {
    let Line::Metric(m) = parse_line(b"x:1|c|c:ci-abc123|e:it-false,cn-web|card:high").unwrap()
    else {
        panic!("[S13]")
    };
    assert_eq!(m.container, Some("ci-abc123"), "[S13]");
    assert_eq!(m.unknown_fields, 0, "[S14] e: and card: are known");
    assert!(m.tags.is_empty(), "[S13] no label from the container");
    rejects("S13", b"x:1|c|c:", ErrorKind::InvalidField);
}

#[test]
fn s15_unknown_extensions_are_ignored_and_reported() {
    let Line::Metric(m) = parse_line(b"x:1|c|#a|x:new|zz||@0.5").unwrap() else {
        panic!("[S15]")
    };
    assert_eq!(
        (m.unknown_fields, m.rate, m.tags.as_str()),
        (2, 0.5, "a"),
        "[S15]"
    );
    assert!(Line::Metric(m).has_unknown_fields(), "[S15]");
}

#[test]
fn s16_the_last_repeated_rate_or_timestamp_wins() {
    let Line::Metric(m) = parse_line(b"x:1|c|@0.5|@0.25|T1|T2").unwrap() else {
        panic!("[S16]")
    };
    assert_eq!((m.rate, m.timestamp), (0.25, Some(2)), "[S16]");
}

#[test]
fn s17_name_embedded_tag_styles_are_rejected() {
    for line in [
        "x,env=prod:1|c",
        "x#env=prod:1|c",
        "x[env=prod]:1|c",
        "x;env=prod:1|c",
        "x@y:1|c",
    ] {
        rejects("S17", line.as_bytes(), ErrorKind::InvalidName);
    }
    // A blank in a name: the first word holds no ':', so the line reads as a (bad) native verb.
    rejects("S17", b"my metric:1|c", ErrorKind::UnknownVerb);
    accepts(
        "S17",
        "größe.ü:1|c".as_bytes(),
        Line::Metric(metric("größe.ü", MetricKind::Counter, 1.0)),
    );
    rejects(
        "S17",
        format!("{}:1|c", "n".repeat(256)).as_bytes(),
        ErrorKind::InvalidName,
    );
    rejects("S17", b":1|c", ErrorKind::InvalidName);
}

// ---------------------------------------------------------------------------------------------
// 5. DogStatsD events and service checks
// ---------------------------------------------------------------------------------------------

#[test]
fn e1_event_lengths_must_match() {
    accepts(
        "E1",
        b"_e{5,11}:Build|It\\nworked!|t:success|#env:ci",
        Line::Event(Event {
            title: "Build",
            text: "It\\nworked!",
            alert_type: Some(AlertType::Success),
            tags: tags("env:ci"),
            ..Default::default()
        }),
    );
    accepts(
        "E1",
        "_e{7,0}:Déploy|".as_bytes(),
        Line::Event(Event {
            title: "Déploy",
            text: "",
            ..Default::default()
        }),
    );
    rejects("E1", b"_e{5,3}:Build|abcd", ErrorKind::Malformed);
    rejects("E1", b"_e{9,3}:Build|abc", ErrorKind::Malformed);
    rejects("E1", b"_e{x,3}:Build|abc", ErrorKind::Malformed);
    rejects("E1", b"_e{5}:Build|abc", ErrorKind::Malformed);
    rejects("E1", b"_e{0,3}:|abc", ErrorKind::MissingField);
    // A length that cuts a character in two is malformed, not a panic.
    rejects("E1", "_e{1,1}:é|a".as_bytes(), ErrorKind::Malformed);
}

#[test]
fn e2_event_fields() {
    accepts(
        "E2",
        b"_e{1,1}:a|b|d:1700000000|h:web-1|k:deploy|p:low|s:jenkins|t:error|#a,b:c|zz:new",
        Line::Event(Event {
            title: "a",
            text: "b",
            timestamp: Some(1_700_000_000),
            hostname: Some("web-1"),
            aggregation_key: Some("deploy"),
            priority: Some("low"),
            source_type: Some("jenkins"),
            alert_type: Some(AlertType::Error),
            tags: tags("a,b:c"),
            unknown_fields: 1,
        }),
    );
    rejects("E2", b"_e{1,1}:a|b|t:fatal", ErrorKind::InvalidField);
    rejects("E2", b"_e{1,1}:a|b|d:soon", ErrorKind::InvalidField);
}

#[test]
fn c1_c2_service_checks() {
    accepts(
        "C1",
        b"_sc|db.ping|2|d:1700000000|h:web-1|#env:prod|m:connection refused|c:3f9a|e:it-false",
        Line::ServiceCheck(ServiceCheck {
            name: "db.ping",
            status: CheckStatus::Critical,
            timestamp: Some(1_700_000_000),
            hostname: Some("web-1"),
            tags: tags("env:prod"),
            message: Some("connection refused"),
            unknown_fields: 0,
        }),
    );
    for (code, status) in [
        ("0", CheckStatus::Ok),
        ("1", CheckStatus::Warning),
        ("3", CheckStatus::Unknown),
    ] {
        let line = format!("_sc|x|{code}");
        let parsed = parse_line(line.as_bytes()).unwrap();
        assert!(
            matches!(parsed, Line::ServiceCheck(ref c) if c.status == status),
            "[C1] {line}"
        );
    }
    rejects("C1", b"_sc|x|4", ErrorKind::InvalidValue);
    rejects("C1", b"_sc|x|ok", ErrorKind::InvalidValue);
    rejects("C1", b"_sc|x", ErrorKind::MissingField);
    rejects("C1", b"_sc|x|", ErrorKind::MissingField);
    rejects("C1", b"_sc||0", ErrorKind::InvalidName);
    let Line::ServiceCheck(c) = parse_line(b"_sc|x|0|zz:1|q").unwrap() else {
        panic!("[C2]")
    };
    assert_eq!(c.unknown_fields, 2, "[C2] unknown check fields are counted");
    // What datadog-py sends from a pod: the container id after the message.
    let Line::ServiceCheck(c) = parse_line(b"_sc|db.reachable|0|m:ok|c:3f9a1c2b").unwrap() else {
        panic!("[C2]")
    };
    assert_eq!(
        (c.message, c.unknown_fields),
        (Some("ok"), 0),
        "[C2] the message ends at the next '|'"
    );
}

#[test]
fn s13_s14_origin_fields_are_known_on_events_and_checks_too() {
    let Line::Event(e) =
        parse_line(b"_e{13,8}:Pod restarted|exit 137|c:3f9a1c2b|e:it-false,cn-app|card:low")
            .unwrap()
    else {
        panic!("[S14]")
    };
    assert_eq!(e.unknown_fields, 0, "[S13] [S14]");
}

// ---------------------------------------------------------------------------------------------
// 6. Every reason is reachable, and its label is stable
// ---------------------------------------------------------------------------------------------

#[test]
fn every_rejection_reason_has_a_stable_label() {
    let labels: Vec<&str> = ErrorKind::ALL.iter().map(ErrorKind::as_str).collect();
    assert_eq!(
        labels,
        [
            "too_long",
            "invalid_utf8",
            "unknown_verb",
            "missing_field",
            "invalid_name",
            "invalid_value",
            "negative_counter",
            "invalid_type",
            "invalid_sample_rate",
            "invalid_tag",
            "invalid_field",
            "malformed"
        ]
    );
    for (index, kind) in ErrorKind::ALL.iter().enumerate() {
        assert_eq!(kind.index(), index);
    }
}

#[test]
fn an_empty_line_given_alone_is_malformed() {
    rejects("L4", b"", ErrorKind::Malformed);
    rejects("L4", b"  \r\n", ErrorKind::Malformed);
}

// ---------------------------------------------------------------------------------------------
// 8. Encoding
// ---------------------------------------------------------------------------------------------

#[track_caller]
fn encodes_to(line: Line<'_>, expected: &str) {
    assert_eq!(
        String::from_utf8(heartwire_proto::encode_line(&line).unwrap()).unwrap(),
        expected
    );
}

#[test]
fn encodes_every_shape_in_its_canonical_form() {
    encodes_to(
        Line::JobStart(JobStart {
            job: "a",
            id: Some("r1"),
            unknown_fields: 0,
        }),
        "job.start a id=r1\n",
    );
    encodes_to(
        Line::JobOk(ok("viewer-poll", Some(0.3))),
        "job.ok viewer-poll 0.3\n",
    );
    encodes_to(
        Line::JobError(JobEnd {
            job: "a",
            seconds: Some(2.0),
            reason: Some("cf_block"),
            exit: Some(3),
            signal: Some("TERM"),
            ..Default::default()
        }),
        "job.error a 2 reason=cf_block exit=3 signal=TERM\n",
    );
    encodes_to(
        Line::Http(Http {
            service: "kick",
            endpoint: "channels",
            status: HttpStatus::Network,
            seconds: None,
            unknown_fields: 0,
        }),
        "http kick channels network\n",
    );
    encodes_to(
        Line::Hello(Hello {
            app: "w",
            pid: Some(7),
            unknown_fields: 0,
        }),
        "hello app=w pid=7\n",
    );
    let mut m = metric("q.depth", MetricKind::Gauge, 0.0);
    m.values = Values::One(Value::delta(4.0));
    m.tags = tags("queue:emails");
    encodes_to(Line::Metric(m), "q.depth:+4|g|#queue:emails\n");
    let mut m = metric("lat", MetricKind::Timer, 12.5);
    m.rate = 0.1;
    m.timestamp = Some(1_700_000_000);
    encodes_to(Line::Metric(m), "lat:12.5|ms|@0.1|T1700000000\n");
    encodes_to(
        Line::ServiceCheck(ServiceCheck {
            name: "db",
            status: CheckStatus::Critical,
            timestamp: None,
            hostname: None,
            tags: Tags::EMPTY,
            message: Some("down"),
            unknown_fields: 0,
        }),
        "_sc|db|2|m:down\n",
    );
    encodes_to(
        Line::Event(Event {
            title: "Déploy",
            text: "ok",
            alert_type: Some(AlertType::Info),
            ..Default::default()
        }),
        "_e{7,2}:Déploy|ok|t:info\n",
    );
}

#[test]
fn refuses_to_encode_what_would_not_read_back() {
    let refused = |line: Line<'_>| {
        let mut out = b"kept\n".to_vec();
        let error = heartwire_proto::encode(&line, &mut out).unwrap_err();
        assert_eq!(out, b"kept\n", "nothing is appended on error");
        error.kind()
    };
    assert_eq!(
        refused(Line::Metric(metric("g", MetricKind::Gauge, -1.0))),
        ErrorKind::InvalidValue,
        "[S2] no negative absolute gauge"
    );
    assert_eq!(
        refused(Line::Metric(metric("c", MetricKind::Counter, -1.0))),
        ErrorKind::NegativeCounter,
        "[S3] valid StatsD, but the agent would reject it"
    );
    assert_eq!(
        refused(Line::Metric(metric("bad name", MetricKind::Counter, 1.0))),
        ErrorKind::UnknownVerb
    );
    assert_eq!(
        refused(Line::JobOk(ok("bad/näme", None))),
        ErrorKind::InvalidName
    );
    assert_eq!(
        refused(Line::JobOk(ok("a", Some(f64::NAN)))),
        ErrorKind::InvalidValue
    );
    let mut m = metric("x", MetricKind::Counter, 1.0);
    m.tags = tags("note:trailing ");
    assert_eq!(
        refused(Line::Metric(m)),
        ErrorKind::Malformed,
        "[L3] a blank at the end would be lost"
    );
    let mut m = metric("x", MetricKind::Counter, 1.0);
    m.rate = 0.0;
    assert_eq!(refused(Line::Metric(m)), ErrorKind::InvalidSampleRate);
}

#[test]
fn re_encoding_a_parsed_line_drops_unknown_fields_but_keeps_the_event() {
    let parsed = parse_line(b"job.ok a 1 shard=3").unwrap();
    assert_eq!(
        heartwire_proto::encode_line(&parsed).unwrap(),
        b"job.ok a 1\n"
    );
    let parsed = parse_line(b"x:1|c|@5|zz").unwrap();
    assert_eq!(
        heartwire_proto::encode_line(&parsed).unwrap(),
        b"x:1|c\n",
        "a clamped rate is written clamped"
    );
}
