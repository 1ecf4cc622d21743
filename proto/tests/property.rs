//! Property tests: invariants that must hold for every input, not just the case tables.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use heartwire_proto::{
    AlertType, CheckStatus, Event, Heartbeat, Hello, Http, HttpStatus, JobEnd, JobProgress,
    JobSkip, JobStart, Line, Metric, MetricKind, ServiceCheck, Tags, Value, Values, WorkerStop,
    encode, is_name, is_statsd_name, lines, parse_line, raw_lines,
};
use proptest::prelude::*;

const NAME: &str = "[A-Za-z0-9_.:/-]{1,128}";
// Printable, without the characters the statsd-name rule forbids; a little non-ASCII too.
const STATSD_NAME: &str = "[A-Za-z0-9_./\\-!$%&*+<>?^~'\"()\\\\é€]{1,60}";
// A tag value may hold blanks, but not at its end: blanks at the end of a line are not part of it.
const TAG: &str =
    "[A-Za-z0-9_.\\-/]{1,20}(:([A-Za-z0-9_.:/ \\-\"\\\\]{0,30}[A-Za-z0-9_.:/\\-\"\\\\])?)?";

fn seconds() -> impl Strategy<Value = f64> {
    prop_oneof![
        0.0..1e6f64,
        (0u32..100_000).prop_map(f64::from),
        Just(0.0),
        Just(1e-9),
        Just(f64::MAX)
    ]
}

fn finite() -> impl Strategy<Value = f64> {
    prop_oneof![
        -1e9..1e9f64,
        any::<f64>().prop_filter("finite", |v| v.is_finite()),
        Just(0.0)
    ]
}

fn token() -> impl Strategy<Value = String> {
    proptest::string::string_regex(NAME).unwrap()
}

fn opt_token() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(token())
}

/// Owned material for a `Line`, so that the strategy can hand out borrowed lines.
#[derive(Debug, Clone)]
struct Material {
    names: [String; 3],
    tokens: [Option<String>; 3],
    numbers: [f64; 2],
    flags: u32,
    tags: Vec<String>,
}

fn material() -> impl Strategy<Value = Material> {
    (
        (
            token(),
            token(),
            proptest::string::string_regex(STATSD_NAME).unwrap(),
        ),
        (opt_token(), opt_token(), opt_token()),
        (seconds(), finite()),
        any::<u32>(),
        proptest::collection::vec(proptest::string::string_regex(TAG).unwrap(), 0..6),
    )
        .prop_map(|((a, b, c), (t1, t2, t3), (s, n), flags, tags)| Material {
            names: [a, b, c],
            tokens: [t1, t2, t3],
            numbers: [s, n],
            flags,
            tags,
        })
}

/// Builds one of every line shape from the material; `flags` picks the shape and options.
fn line_from<'a>(m: &'a Material, tags: &'a str) -> Line<'a> {
    let [a, b, statsd] = &m.names;
    let [t1, t2, t3] = [
        m.tokens[0].as_deref(),
        m.tokens[1].as_deref(),
        m.tokens[2].as_deref(),
    ];
    let [secs, number] = m.numbers;
    let opt_secs = (m.flags & 0x100 != 0).then_some(secs);
    let tags = Tags::parse(tags).unwrap();
    match m.flags % 12 {
        0 => Line::JobStart(JobStart {
            job: a,
            id: t1,
            unknown_fields: 0,
        }),
        1 => Line::JobOk(JobEnd {
            job: a,
            seconds: opt_secs,
            id: t1,
            exit: (m.flags & 0x200 != 0).then_some(0),
            ..Default::default()
        }),
        2 => Line::JobError(JobEnd {
            job: a,
            seconds: opt_secs,
            reason: t1,
            id: t2,
            exit: (m.flags & 0x200 != 0).then_some((m.flags >> 16) as i32 - 32768),
            signal: t3,
            unknown_fields: 0,
        }),
        3 => Line::JobSkip(JobSkip {
            job: a,
            reason: t1,
            id: t2,
            unknown_fields: 0,
        }),
        4 => Line::JobProgress(JobProgress {
            job: a,
            amount: opt_secs,
            id: t1,
            unknown_fields: 0,
        }),
        5 => Line::Heartbeat(Heartbeat {
            worker: a,
            ttl: opt_secs.map(|s| s + 0.5),
            unknown_fields: 0,
        }),
        6 => Line::WorkerStop(WorkerStop {
            worker: a,
            unknown_fields: 0,
        }),
        7 => {
            let status = match (m.flags >> 12) % 3 {
                0 => HttpStatus::Code(100 + ((m.flags >> 16) % 500) as u16),
                1 => HttpStatus::Network,
                _ => HttpStatus::Timeout,
            };
            Line::Http(Http {
                service: a,
                endpoint: b,
                status,
                seconds: opt_secs,
                unknown_fields: 0,
            })
        }
        8 => Line::Hello(Hello {
            app: a,
            pid: (m.flags & 0x200 != 0).then_some(m.flags >> 10),
            unknown_fields: 0,
        }),
        9 => {
            let kinds = [
                MetricKind::Counter,
                MetricKind::Gauge,
                MetricKind::Timer,
                MetricKind::Histogram,
                MetricKind::Distribution,
            ];
            let kind = kinds[((m.flags >> 12) % 5) as usize];
            let value = match kind {
                MetricKind::Counter => Value::absolute(number.abs()),
                MetricKind::Gauge if m.flags & 0x400 != 0 => Value::delta(number),
                MetricKind::Gauge => Value::absolute(number.abs()),
                _ => Value::absolute(number),
            };
            let rate = if m.flags & 0x800 != 0 {
                ((m.flags >> 20) as f64 + 1.0) / 4096.0
            } else {
                1.0
            };
            Line::Metric(Metric {
                name: statsd,
                kind,
                values: Values::One(value),
                rate,
                rate_clamped: false,
                tags,
                timestamp: (m.flags & 0x1000 != 0).then_some(u64::from(m.flags)),
                container: t1,
                unknown_fields: 0,
            })
        }
        10 => Line::Event(Event {
            title: statsd,
            text: b,
            timestamp: (m.flags & 0x200 != 0).then_some(u64::from(m.flags)),
            hostname: t1,
            aggregation_key: t2,
            priority: t3,
            source_type: t1,
            alert_type: [
                None,
                Some(AlertType::Error),
                Some(AlertType::Warning),
                Some(AlertType::Info),
                Some(AlertType::Success),
            ][((m.flags >> 12) % 5) as usize],
            tags,
            unknown_fields: 0,
        }),
        _ => Line::ServiceCheck(ServiceCheck {
            name: statsd,
            status: [
                CheckStatus::Ok,
                CheckStatus::Warning,
                CheckStatus::Critical,
                CheckStatus::Unknown,
            ][((m.flags >> 12) % 4) as usize],
            timestamp: (m.flags & 0x200 != 0).then_some(u64::from(m.flags)),
            hostname: t1,
            tags,
            message: t2,
            unknown_fields: 0,
        }),
    }
}

/// Every name a parsed line carries.
fn names_of<'a>(line: &Line<'a>) -> (Vec<&'a str>, Vec<&'a str>) {
    match line {
        Line::JobStart(l) => (vec![l.job], vec![]),
        Line::JobOk(l) | Line::JobError(l) => (vec![l.job], vec![]),
        Line::JobSkip(l) => (vec![l.job], vec![]),
        Line::JobProgress(l) => (vec![l.job], vec![]),
        Line::Heartbeat(l) => (vec![l.worker], vec![]),
        Line::WorkerStop(l) => (vec![l.worker], vec![]),
        Line::Http(l) => (vec![l.service, l.endpoint], vec![]),
        Line::Hello(l) => (vec![l.app], vec![]),
        Line::Metric(l) => (vec![], vec![l.name]),
        Line::Event(_) => (vec![], vec![]),
        Line::ServiceCheck(l) => (vec![], vec![l.name]),
    }
}

/// Lines made of the grammar's own pieces, so that random inputs often get deep into the parser.
fn grammar_soup() -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop_oneof![
        Just("job.ok ".to_string()),
        Just("job.start ".to_string()),
        Just("hb ".to_string()),
        Just("http ".to_string()),
        Just("hello app=".to_string()),
        Just("_e{".to_string()),
        Just("_sc|".to_string()),
        Just("|#".to_string()),
        Just("|@".to_string()),
        Just("|c".to_string()),
        Just("|g".to_string()),
        Just("|T".to_string()),
        Just(":".to_string()),
        Just(",".to_string()),
        Just("=".to_string()),
        Just(" ".to_string()),
        Just("\n".to_string()),
        Just("\r".to_string()),
        Just("}:".to_string()),
        "[a-z0-9.:_-]{0,8}".prop_map(|s| s),
        "[+-]?[0-9]{0,4}(\\.[0-9]{0,3})?(e[+-]?[0-9]{1,3})?".prop_map(|s| s),
        Just("NaN".to_string()),
        Just("\u{e9}".to_string()),
        Just("\u{0}".to_string()),
    ];
    proptest::collection::vec(pieces, 0..24).prop_map(|parts| parts.concat().into_bytes())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn encoding_then_parsing_gives_back_the_same_line(m in material()) {
        let tags = m.tags.join(",");
        let line = line_from(&m, &tags);
        let mut out = Vec::new();
        encode(&line, &mut out).map_err(|e| TestCaseError::fail(format!("{line:?} did not encode: {e}")))?;
        prop_assert_eq!(out.last(), Some(&b'\n'));
        let parsed = parse_line(&out).map_err(|e| TestCaseError::fail(format!("{:?} did not parse: {e}", String::from_utf8_lossy(&out))))?;
        prop_assert_eq!(parsed, line);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut results = 0;
        for result in lines(&bytes) {
            results += 1;
            match result {
                Ok(line) => {
                    let (native, statsd) = names_of(&line);
                    prop_assert!(native.iter().all(|n| is_name(n)) && statsd.iter().all(|n| is_statsd_name(n)));
                }
                Err(error) => prop_assert!(heartwire_proto::ErrorKind::ALL.contains(&error.kind())),
            }
        }
        prop_assert_eq!(results, raw_lines(&bytes).count());
    }

    #[test]
    fn grammar_soup_never_panics_and_accepted_names_obey_the_rules(bytes in grammar_soup()) {
        for line in lines(&bytes).flatten() {
            let (native, statsd) = names_of(&line);
            for name in native {
                prop_assert!(is_name(name), "native name {:?} breaks the name rule", name);
            }
            for name in statsd {
                prop_assert!(is_statsd_name(name), "statsd name {:?} breaks the statsd-name rule", name);
            }
            if let Line::Metric(metric) = &line {
                prop_assert!(metric.rate > 0.0 && metric.rate <= 1.0);
                for value in metric.values.iter(metric.kind) {
                    prop_assert!(value.number.is_finite());
                }
                for tag in metric.tags.iter() {
                    prop_assert!(!tag.key.is_empty());
                }
            }
        }
    }

    #[test]
    fn every_non_blank_line_yields_exactly_one_result(bytes in grammar_soup()) {
        prop_assert_eq!(lines(&bytes).count(), raw_lines(&bytes).count());
        let expected = bytes.split(|&b| b == b'\n').filter(|l| l.iter().any(|b| !matches!(b, b' ' | b'\t' | b'\r'))).count();
        prop_assert_eq!(lines(&bytes).count(), expected);
    }

    /// `lines` checks UTF-8 once for the whole text when it can: the results are those of each
    /// line parsed on its own, valid text or not.
    #[test]
    fn lines_parse_as_each_line_alone(bytes in prop_oneof![grammar_soup(), proptest::collection::vec(any::<u8>(), 0..600)]) {
        let alone: Vec<_> = raw_lines(&bytes).map(parse_line).collect();
        prop_assert_eq!(lines(&bytes).collect::<Vec<_>>(), alone);
    }

    #[test]
    fn a_bad_line_does_not_change_how_its_neighbours_parse(m in material(), junk in proptest::collection::vec(any::<u8>(), 0..80)) {
        let tags = m.tags.join(",");
        let line = line_from(&m, &tags);
        let good = heartwire_proto::encode_line(&line).unwrap();
        let junk: Vec<u8> = junk.into_iter().filter(|&b| b != b'\n').collect();
        let datagram = [&good[..], &junk, b"\n", &good[..]].concat();
        let parsed: Vec<_> = lines(&datagram).collect();
        prop_assert_eq!(parsed.first().cloned(), Some(Ok(line.clone())));
        prop_assert_eq!(parsed.last().cloned(), Some(Ok(line)));
    }
}
