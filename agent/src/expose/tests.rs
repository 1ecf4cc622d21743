//! The rendered exposition: exact lines, escaping, validity under hostile input, promtool.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;

use futures_util::StreamExt;
use proptest::prelude::*;

use super::*;
use crate::aggregate::snapshot::{
    Families, Family, FamilyMeta, HistogramSnapshot, Kind, Series, Value,
};
use crate::aggregate::{Aggregator, FamilyNames, Settings};
use std::time::Duration;

use crate::clock::Now;
use crate::health::job::JobSpec;
use crate::health::schedule::Schedule;
use crate::ingest::batch::{Batch, Transport};

const T0: f64 = 1_700_000_000.0;

fn render_lines(settings: Settings, lines: &str) -> String {
    let (exposition, _telemetry) = Exposition::new().unwrap();
    let mut aggregator = Aggregator::new(settings);
    let now = Now::at_unix_seconds(T0);
    aggregator.ingest(&Batch::new(Transport::Udp, lines.as_bytes().to_vec()), now);
    let mut out = Vec::new();
    exposition
        .render(&aggregator.snapshot(now), now, &mut out)
        .unwrap();
    String::from_utf8(out).unwrap()
}

fn render(lines: &str) -> String {
    render_lines(Settings::default(), lines)
}

#[track_caller]
fn assert_lines(text: &str, expected: &[&str]) {
    for line in expected {
        assert!(
            text.lines().any(|l| l == *line),
            "missing line {line:?} in:\n{text}"
        );
    }
}

/// One sample of the text format, parsed strictly: name, unescaped labels, value.
#[derive(Debug, PartialEq)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// Parses a whole exposition the way a strict scraper would, failing on anything that does not
/// follow the 0.0.4 grammar, a family typed twice, or a sample without a TYPE line.
fn parse(text: &str) -> Result<Vec<Sample>, String> {
    let mut typed: Vec<String> = Vec::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').ok_or(format!("bad TYPE {line:?}"))?;
            if !["counter", "gauge", "histogram"].contains(&kind) || !valid_name(name) {
                return Err(format!("bad TYPE {line:?}"));
            }
            if typed.iter().any(|t| t == name) {
                return Err(format!("{name} typed twice"));
            }
            typed.push(name.to_owned());
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or("");
            if !valid_name(name) {
                return Err(format!("bad HELP {line:?}"));
            }
        } else {
            let sample = parse_sample(line)?;
            let family = typed
                .last()
                .ok_or(format!("sample before TYPE: {line:?}"))?;
            let suffixes = ["", "_total", "_bucket", "_count", "_sum"];
            if !suffixes
                .iter()
                .any(|suffix| sample.name == format!("{family}{suffix}"))
            {
                return Err(format!("{} is outside its family {family}", sample.name));
            }
            samples.push(sample);
        }
    }
    Ok(samples)
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let bad = || format!("bad sample {line:?}");
    let name_end = line.find(['{', ' ']).ok_or_else(bad)?;
    let name = &line[..name_end];
    if !valid_name(name) {
        return Err(bad());
    }
    let (labels, rest) = match line[name_end..].strip_prefix('{') {
        Some(body) => parse_labels(body).ok_or_else(bad)?,
        None => (Vec::new(), &line[name_end..]),
    };
    let value_text = rest.strip_prefix(' ').ok_or_else(bad)?;
    let value = match value_text {
        // As Go's strconv.ParseFloat, which Prometheus uses, reads them.
        text if ["+inf", "inf"]
            .iter()
            .any(|inf| text.eq_ignore_ascii_case(inf)) =>
        {
            f64::INFINITY
        }
        text if text.eq_ignore_ascii_case("-inf") => f64::NEG_INFINITY,
        text if text.eq_ignore_ascii_case("nan") => f64::NAN,
        text if text
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.e".contains(&b)) =>
        {
            text.parse::<f64>().map_err(|_| bad())?
        }
        _ => return Err(bad()),
    };
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Label pairs after `{`, unescaped; returns them and the text after `}`.
fn parse_labels(body: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    let mut rest = body;
    if let Some(after) = rest.strip_prefix('}') {
        return Some((labels, after));
    }
    loop {
        let eq = rest.find('=')?;
        let label = &rest[..eq];
        if !valid_name(label) || label.contains(':') {
            return None;
        }
        rest = rest[eq + 1..].strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    _ => return None,
                },
                (_, '\n') => return None,
                (_, c) => value.push(c),
            }
        };
        labels.push((label.to_owned(), value));
        rest = &rest[end + 1..];
        match rest.strip_prefix(',') {
            Some(after) => rest = after,
            None => return Some((labels, rest.strip_prefix('}')?)),
        }
    }
}

// --- exact values -------------------------------------------------------------------------

#[test]
fn job_families_render_exactly() {
    let text = render(
        "job.start export id=1\njob.ok export 0.3 id=1\njob.error export 2\njob.skip export\njob.progress export 5\n",
    );
    assert_lines(
        &text,
        &[
            "# TYPE heartwire_job_runs_total counter",
            "heartwire_job_runs_total{job=\"export\",result=\"ok\"} 1",
            "heartwire_job_runs_total{job=\"export\",result=\"error\"} 1",
            "heartwire_job_runs_total{job=\"export\",result=\"skipped\"} 1",
            "# TYPE heartwire_job_duration_seconds histogram",
            "heartwire_job_duration_seconds_bucket{job=\"export\",le=\"0.25\"} 0",
            "heartwire_job_duration_seconds_bucket{job=\"export\",le=\"0.5\"} 1",
            "heartwire_job_duration_seconds_bucket{job=\"export\",le=\"2.5\"} 2",
            "heartwire_job_duration_seconds_bucket{job=\"export\",le=\"+Inf\"} 2",
            "heartwire_job_duration_seconds_sum{job=\"export\"} 2.3",
            "heartwire_job_duration_seconds_count{job=\"export\"} 2",
            "heartwire_job_last_success_timestamp_seconds{job=\"export\"} 1700000000",
            "heartwire_job_last_run_timestamp_seconds{job=\"export\"} 1700000000",
            "heartwire_job_running{job=\"export\"} 0",
            "# TYPE heartwire_job_progress_total counter",
            "heartwire_job_progress_total{job=\"export\"} 5",
            "heartwire_job_last_progress_timestamp_seconds{job=\"export\"} 1700000000",
        ],
    );
}

#[test]
fn call_worker_check_and_event_families_render_exactly() {
    let text =
        render("http kick oauth/token 401 0.2\nhb mailer\n_sc|db|1\n_e{1,1}:a|b|t:warning\n");
    assert_lines(
        &text,
        &[
            "heartwire_external_http_total{service=\"kick\",endpoint=\"oauth/token\",status_code=\"401\"} 1",
            "heartwire_external_http_duration_seconds_count{service=\"kick\",endpoint=\"oauth/token\"} 1",
            "heartwire_external_http_duration_seconds_bucket{service=\"kick\",endpoint=\"oauth/token\",le=\"0.25\"} 1",
            "heartwire_worker_last_heartbeat_timestamp_seconds{worker=\"mailer\"} 1700000000",
            "# TYPE heartwire_service_check_status gauge",
            "heartwire_service_check_status{check=\"db\"} 1",
            "heartwire_service_check_last_timestamp_seconds{check=\"db\"} 1700000000",
            "# TYPE heartwire_events_total counter",
            "heartwire_events_total{alert_type=\"warning\"} 1",
        ],
    );
}

#[test]
fn seed_000_names_render_with_the_constant_service_label() {
    let settings = Settings {
        names: FamilyNames::seed_000(),
        ..Settings::default()
    };
    let text = render_lines(
        settings,
        "job.ok viewer-poll 0.3\nhttp kick channels network\n",
    );
    assert_lines(
        &text,
        &[
            "vf_worker_poll_runs_total{service=\"worker\",job=\"viewer-poll\",result=\"ok\"} 1",
            "vf_worker_poll_runs_total{service=\"worker\",job=\"viewer-poll\",result=\"error\"} 0",
            "vf_worker_poll_duration_seconds_count{service=\"worker\",job=\"viewer-poll\"} 1",
            "vf_worker_poll_last_success_timestamp_seconds{service=\"worker\",job=\"viewer-poll\"} 1700000000",
            "vf_external_http_total{service=\"kick\",endpoint=\"channels\",status_code=\"network\"} 1",
        ],
    );
}

#[test]
fn statsd_types_render_exactly() {
    let text = render(
        "page.views:1|c|#env:prod\npage.views:3|c|@0.5|#env:prod\nqueue:4|g\nqueue:-1|g\nq.time:320|ms\nusers:a|s\nusers:b|s\n",
    );
    assert_lines(
        &text,
        &[
            "# HELP page_views_total StatsD counter page.views.",
            "# TYPE page_views_total counter",
            "page_views_total{env=\"prod\"} 7",
            "# TYPE queue gauge",
            "queue 3",
            "# TYPE q_time histogram",
            "q_time_bucket{le=\"0.25\"} 0",
            "q_time_bucket{le=\"0.5\"} 1",
            "q_time_bucket{le=\"+Inf\"} 1",
            "q_time_sum 0.32",
            "q_time_count 1",
            "# TYPE users gauge",
            "users 2",
        ],
    );
}

#[test]
fn weighted_histogram_counts_are_rounded_once_at_render() {
    let text = render("lat:0.1|h|@0.3\nlat:0.1|h|@0.3\nlat:0.1|h|@0.3\n");
    assert_lines(
        &text,
        &["lat_bucket{le=\"0.1\"} 10", "lat_count 10", "lat_sum 1"],
    );
}

#[test]
fn self_metrics_are_in_the_same_exposition() {
    let text = render("job.ok a 1\nbad\nc:1|c\nc:1|g\n");
    assert_lines(
        &text,
        &[
            "heartwire_lines_received_total{transport=\"udp\"} 4",
            "heartwire_lines_rejected_total{reason=\"malformed\"} 1",
            "heartwire_lines_rejected_total{reason=\"too_long\"} 0",
            "heartwire_series{family=\"heartwire_job_runs_total\"} 1",
            "heartwire_series{family=\"c_total\"} 1",
            "heartwire_series_conflicts_total{family=\"c_total\"} 1",
            "heartwire_series_dropped_total{family=\"c_total\"} 0",
            &format!(
                "heartwire_build_info{{version=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION")
            ),
        ],
    );
    assert!(
        text.contains("\nprocess_resident_memory_bytes "),
        "process collector missing:\n{text}"
    );
}

#[test]
fn every_rejection_reason_and_listening_transport_shows_zero_before_any_traffic() {
    let (exposition, telemetry) = Exposition::new().unwrap();
    telemetry.listening(Transport::Udp);
    telemetry.listening(Transport::Tcp);
    let now = Now::at_unix_seconds(T0);
    let mut out = Vec::new();
    exposition
        .render(
            &Aggregator::new(Settings::default()).snapshot(now),
            now,
            &mut out,
        )
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    for kind in heartwire_proto::ErrorKind::ALL {
        assert_lines(
            &text,
            &[&format!(
                "heartwire_lines_rejected_total{{reason=\"{}\"}} 0",
                kind.as_str()
            )],
        );
    }
    assert_lines(
        &text,
        &[
            "heartwire_lines_received_total{transport=\"udp\"} 0",
            "heartwire_lines_received_total{transport=\"tcp\"} 0",
            "heartwire_bytes_received_total{transport=\"udp\"} 0",
            "heartwire_bytes_received_total{transport=\"tcp\"} 0",
            "heartwire_datagrams_received_total{transport=\"udp\"} 0",
            "heartwire_datagrams_dropped_total{transport=\"udp\"} 0",
            "heartwire_bytes_dropped_total{transport=\"udp\"} 0",
            "heartwire_connections_opened_total{transport=\"tcp\"} 0",
            "heartwire_connections_closed_total{reason=\"idle\",transport=\"tcp\"} 0",
            "heartwire_connections{transport=\"tcp\"} 0",
        ],
    );
    // Transports that are off, and combinations that cannot change, have no series.
    for absent in [
        "transport=\"unixgram\"",
        "transport=\"unix\"",
        "transport=\"http\"",
        "heartwire_datagrams_received_total{transport=\"tcp\"}",
        "heartwire_datagrams_dropped_total{transport=\"tcp\"}",
        "heartwire_bytes_dropped_total{transport=\"tcp\"}",
        "heartwire_connections{transport=\"udp\"}",
        "heartwire_connections_opened_total{transport=\"udp\"}",
    ] {
        assert!(!text.contains(absent), "{absent} in:\n{text}");
    }
    assert!(
        !text.lines().any(
            |line| line.starts_with("heartwire_connections_closed_total")
                && line.contains("transport=\"udp\"")
        ),
        "closed connections on UDP in:\n{text}"
    );
}

#[test]
fn lines_cut_by_the_receive_buffer_are_counted_as_read_and_too_long() {
    let (exposition, _telemetry) = Exposition::new().unwrap();
    let mut aggregator = Aggregator::new(Settings::default());
    let now = Now::at_unix_seconds(T0);
    let mut batch = Batch::new(Transport::UnixDatagram, b"a:1|c\n".to_vec());
    batch.cut = 2;
    aggregator.ingest(&batch, now);
    let mut out = Vec::new();
    exposition
        .render(&aggregator.snapshot(now), now, &mut out)
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_lines(
        &text,
        &[
            "heartwire_lines_received_total{transport=\"unixgram\"} 3",
            "heartwire_lines_rejected_total{reason=\"too_long\"} 2",
        ],
    );
}

// --- validity under hostile input ---------------------------------------------------------

#[test]
fn a_malicious_corpus_keeps_the_exposition_valid_and_the_series_bounded() {
    let mut settings = Settings::default();
    settings.limits.max_series_per_family = 1_000;
    let mut corpus = String::new();
    corpus.push_str(
        "q:1|c|#v:say \"hi\"\nq:1|c|#v:back\\slash\\\nq:1|c|#v:lit\\nnewline\nq:1|c|#v:\\\"}\n",
    );
    corpus.push_str("job.ok a\"b 1\nq:1|c|#v:nul\0byte\nq\0:1|c\nq:1|c|#v:\u{2028}é\n_sc|c\"k|0\n");
    corpus.push_str("x.y-z/w\\q\"r:1|g\nhttp svc \"x\" 200\n");
    corpus.push_str(&"A".repeat(10_000));
    corpus.push('\n');
    corpus.extend((0..10_000).map(|i| format!("flood:1|c|#user:u{i}\n")));
    let text = render_lines(settings, &corpus);
    let samples = parse(&text).unwrap_or_else(|error| panic!("{error}\n{text}"));
    let values: Vec<&str> = samples
        .iter()
        .filter(|s| s.name == "q_total")
        .flat_map(|s| s.labels.iter().map(|(_, v)| v.as_str()))
        .collect();
    assert!(values.contains(&"say \"hi\""), "{values:?}");
    assert!(values.contains(&"back\\slash\\"));
    assert!(values.contains(&"lit\\nnewline"));
    assert!(values.contains(&"\\\"}"));
    let flood = samples.iter().filter(|s| s.name == "flood_total").count();
    assert_eq!(flood, 1_000);
    assert_lines(
        &text,
        &["heartwire_series_dropped_total{family=\"flood_total\"} 9000"],
    );
    assert_lines(&text, &["x_y_z_w_q_r 1"]);
}

fn snapshot_with_label(value: &str) -> Snapshot {
    let family = Family {
        meta: Arc::new(FamilyMeta {
            name: "probe".into(),
            help: Arc::from(format!("help with {value}").as_str()),
            kind: Kind::Gauge,
            const_labels: Arc::from(vec![]),
            label_names: Arc::from(vec![Arc::from("v")]),
        }),
        series: smallvec::smallvec![Series {
            labels: Arc::from(vec![Arc::from(value)]),
            value: Value::Number(1.0),
        }],
    };
    Snapshot {
        taken_at: T0,
        families: vec![family].into(),
        ..Snapshot::empty()
    }
}

proptest! {
    #[test]
    fn property_any_label_value_renders_to_a_line_that_parses_back_to_it(value in any::<String>()) {
        let (exposition, _telemetry) = Exposition::new().unwrap();
        let mut out = Vec::new();
        exposition.render(&snapshot_with_label(&value), Now::at_unix_seconds(T0), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let samples = parse(&text).map_err(|error| TestCaseError::fail(format!("{error}\n{text}")))?;
        let probe = samples.iter().find(|s| s.name == "probe").unwrap();
        prop_assert_eq!(&probe.labels, &vec![("v".to_owned(), value)]);
    }

    #[test]
    fn property_any_statsd_line_leaves_a_valid_exposition(name in "[ -~]{1,40}", tag in "[ -~]{0,40}") {
        let text = render(&format!("{name}:1|c|#{tag}\n{name}:2|g\n{name}:3|h|#{tag}\n"));
        parse(&text).map_err(|error| TestCaseError::fail(format!("{error}\n{text}")))?;
    }
}

// --- the fast writer against the prometheus crate's encoder ----------------------------------

/// `text` parsed, with its HELP and TYPE lines apart.
fn parsed(text: &str) -> Result<(Vec<String>, Vec<Sample>), String> {
    let headers = text
        .lines()
        .filter(|line| line.starts_with('#'))
        .map(str::to_owned)
        .collect();
    Ok((headers, parse(text)?))
}

/// Two expositions hold the same samples, in the same order; NaN equals NaN.
fn same_samples(fast: &[Sample], oracle: &[Sample]) -> Result<(), String> {
    if fast.len() != oracle.len() {
        return Err(format!(
            "{} samples, the encoder wrote {}",
            fast.len(),
            oracle.len()
        ));
    }
    for (a, b) in fast.iter().zip(oracle) {
        let same_value = a.value == b.value || (a.value.is_nan() && b.value.is_nan());
        if a.name != b.name || a.labels != b.labels || !same_value {
            return Err(format!("{a:?} where the encoder wrote {b:?}"));
        }
    }
    Ok(())
}

fn any_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        (0u32..1_000_000).prop_map(f64::from),
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        (-1e-9f64..1e-9),
        Just(9_007_199_254_740_993.0),
    ]
}

fn any_histogram() -> impl Strategy<Value = Value> {
    (
        proptest::collection::btree_set(0u32..100_000, 0..12),
        proptest::collection::vec(0.0f64..1e6, 13),
        any_value(),
    )
        .prop_map(|(bounds, counts, sum)| {
            let bounds: Vec<f64> = bounds.into_iter().map(|b| f64::from(b) / 1000.0).collect();
            let counts: Box<[f64]> = counts[..bounds.len() + 1].into();
            let count = counts.iter().sum();
            Value::Histogram(Box::new(HistogramSnapshot {
                bounds: Arc::from(bounds),
                counts,
                sum,
                count,
            }))
        })
}

fn any_family() -> impl Strategy<Value = Family> {
    (
        "[a-z_][a-z0-9_:]{0,20}",
        any::<String>(),
        0..3usize,
        proptest::collection::vec("[a-z_][a-z0-9_]{0,8}", 0..3),
        proptest::collection::vec(any::<String>(), 0..2),
        1..6usize,
    )
        .prop_flat_map(|(name, help, kind, names, constant, count)| {
            let kind = [Kind::Counter, Kind::Gauge, Kind::Histogram][kind];
            let mut names = names;
            names.sort();
            names.dedup();
            names.retain(|name| name != "le" && !name.starts_with("c_"));
            let width = names.len();
            let value = match kind {
                Kind::Histogram => any_histogram().boxed(),
                _ => any_value().prop_map(Value::Number).boxed(),
            };
            let series = proptest::collection::vec(
                (proptest::collection::vec(any::<String>(), width), value),
                count,
            );
            series.prop_map(move |series| {
                Family::of_strings(&name, &help, kind, &constant, &names, series)
            })
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// For any families, the writer's page and the `prometheus` crate's `TextEncoder` page hold
    /// the same HELP and TYPE lines and the same samples.
    #[test]
    fn property_the_fast_writer_writes_what_the_encoder_writes(mut families in proptest::collection::vec(any_family(), 1..5)) {
        // Family names are unique on a page (the aggregator sees to it).
        for (index, family) in families.iter_mut().enumerate() {
            let name = Arc::from(format!("f{index}_{}", family.name).as_str());
            Arc::make_mut(&mut family.meta).name = name;
        }
        let mut fast = Vec::new();
        let mut writer = text::TextWriter::default();
        for family in &families {
            writer.family(family, &mut fast);
        }
        let mut oracle = Vec::new();
        TextEncoder::new().encode(&collector::families(&families), &mut oracle).unwrap();
        let (fast, oracle) = (String::from_utf8(fast).unwrap(), String::from_utf8(oracle).unwrap());
        let fail = |error: String| TestCaseError::fail(format!("{error}\n--- fast\n{fast}\n--- encoder\n{oracle}"));
        let (fast_headers, fast_samples) = parsed(&fast).map_err(fail)?;
        let (oracle_headers, oracle_samples) = parsed(&oracle).map_err(fail)?;
        prop_assert_eq!(fast_headers, oracle_headers);
        same_samples(&fast_samples, &oracle_samples).map_err(fail)?;
    }

    /// A stored part written a piece at a time, whatever the piece size, is the stored part
    /// written whole.
    #[test]
    fn property_a_render_in_pieces_is_the_whole_render(
        families in proptest::collection::vec(any_family(), 1..6),
        per_part in 1..4usize,
        limit in 1..4096usize,
    ) {
        let parts = families.chunks(per_part).map(|part| Arc::from(part.to_vec()));
        let snapshot = Snapshot { families: Families::new(parts), ..Snapshot::empty() };
        let taken: HashSet<&str> = HashSet::new();
        let listening = Listening::default();
        let mut whole = Vec::new();
        write_stored(&snapshot, listening, &taken, &mut whole);
        let mut cursor = StoredCursor::default();
        let mut pieces = Vec::new();
        loop {
            let mut piece = Vec::new();
            let done = cursor.write(&snapshot, listening, &taken, limit, &mut piece);
            prop_assert!(done || !piece.is_empty());
            pieces.extend(piece);
            if done {
                break;
            }
        }
        prop_assert_eq!(String::from_utf8(pieces).unwrap(), String::from_utf8(whole).unwrap());
    }
}

/// The whole page, as `/metrics` serves it, against the same families through the encoder:
/// every kind of line, the bookkeeping and the verdicts.
#[test]
fn a_whole_page_matches_the_encoder() {
    let settings = Settings {
        names: FamilyNames::seed_000(),
        jobs: vec![(
            "sweep".to_owned(),
            JobSpec::new(Schedule::every(Duration::from_secs(60)).unwrap()),
        )],
        workers: vec![("poller".to_owned(), Duration::from_secs(30))],
        ..Settings::default()
    };
    let (exposition, _telemetry) = Exposition::new().unwrap();
    let mut aggregator = Aggregator::new(settings);
    let now = Now::at_unix_seconds(T0);
    let lines = "job.ok sweep 0.5\njob.error sweep 1.5 reason=timeout\nworker.beat poller\n\
        call api 200 0.02\nweird\npage.views:3|c|#env:prod,q:\"x\"\nqueue.depth:-2.5|g\n\
        render.ms:320|ms|@0.3|#route:/a\\b\nusers:alice|s\n";
    aggregator.ingest(&Batch::new(Transport::Udp, lines.as_bytes().to_vec()), now);
    let snapshot = aggregator.snapshot(now);
    let mut fast = Vec::new();
    exposition.render(&snapshot, now, &mut fast).unwrap();
    let mut oracle = Vec::new();
    TextEncoder::new()
        .encode(&exposition.families(&snapshot, now), &mut oracle)
        .unwrap();
    let (fast, oracle) = (
        String::from_utf8(fast).unwrap(),
        String::from_utf8(oracle).unwrap(),
    );
    let without_process = |samples: Vec<Sample>| -> Vec<Sample> {
        samples
            .into_iter()
            .filter(|s| !s.name.starts_with("process_"))
            .collect()
    };
    let (fast_headers, fast_samples) = parsed(&fast).unwrap();
    let (oracle_headers, oracle_samples) = parsed(&oracle).unwrap();
    assert_eq!(fast_headers, oracle_headers);
    let (fast_samples, oracle_samples) = (
        without_process(fast_samples),
        without_process(oracle_samples),
    );
    same_samples(&fast_samples, &oracle_samples).unwrap_or_else(|error| panic!("{error}\n{fast}"));
    for name in [
        "page_views_total",
        "render_ms_bucket",
        "vf_worker_poll_runs_total",
        "heartwire_lines_received_total",
    ] {
        assert!(
            fast_samples.iter().any(|s| s.name == name),
            "{name} missing:\n{fast}"
        );
    }
}

// --- pages sent as they are rendered ---------------------------------------------------------

/// A real aggregator thread serving some lines, and the stored part of its page as rendered
/// whole.
struct Served {
    exposition: Exposition,
    handle: Handle,
    stored: Vec<u8>,
    /// The queues' senders: while they are open, the aggregator publishes nothing new.
    _queues: [tokio::sync::mpsc::Sender<Batch>; 2],
}

fn serve(lines: &str) -> Served {
    let (exposition, _telemetry) = Exposition::new().unwrap();
    let mut aggregator = Aggregator::new(Settings::default());
    aggregator.ingest(
        &Batch::new(Transport::Udp, lines.as_bytes().to_vec()),
        Now::read(),
    );
    let (datagrams, datagram_batches) = tokio::sync::mpsc::channel(1);
    let (streams, stream_batches) = tokio::sync::mpsc::channel(1);
    let queues = crate::aggregate::task::Queues {
        datagrams: datagram_batches,
        streams: stream_batches,
    };
    let (handle, _finished) =
        crate::aggregate::task::spawn(aggregator, queues, &crate::supervise::Supervisor::new())
            .unwrap();
    let snapshot = handle.snapshot().unwrap();
    let own = exposition.registry.gather();
    let mut stored = Vec::new();
    write_stored(
        &snapshot,
        exposition.telemetry.listening_on(),
        &names_of(&own),
        &mut stored,
    );
    Served {
        exposition,
        handle,
        stored,
        _queues: [datagrams, streams],
    }
}

/// The pieces of a `/metrics` body, as the HTTP layer sends them.
async fn pieces(exposition: &Exposition, handle: &Handle, gzip: bool) -> Vec<Bytes> {
    let body = exposition.page(handle, gzip).await.unwrap().unwrap();
    assert_eq!(body.gzip, gzip);
    match body.content {
        Content::Whole(chunks) => chunks,
        Content::Stream(stream) => stream.map(Result::unwrap).collect().await,
    }
}

/// 4 000 histograms and 4 000 counters of distinct names: a page of many [`page::CHUNK`]s.
fn many_series() -> String {
    (0..4_000)
        .map(|i| {
            format!(
                "render.ms:{}|ms|#route:/r{i},env:prod\ndistinct_{i}.hits:{i}|c\n",
                i % 700
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_plain_page_is_sent_a_chunk_at_a_time_and_reads_as_the_whole_page() {
    let served = serve(&many_series());
    let (exposition, handle, stored) = (&served.exposition, &served.handle, &served.stored);
    assert!(stored.len() > 8 * page::CHUNK, "{} bytes", stored.len());
    let pieces = pieces(exposition, handle, false).await;
    assert!(pieces.len() > 8, "{} pieces", pieces.len());
    for piece in &pieces {
        // Series are never cut: a piece ends a line, and is a chunk and at most one series more.
        assert!(piece.ends_with(b"\n"));
    }
    for piece in &pieces[..pieces.len() - 2] {
        assert!(piece.len() < page::CHUNK + 4096, "{} bytes", piece.len());
    }
    let page = pieces.concat();
    let differ = page.iter().zip(stored).position(|(a, b)| a != b);
    if let Some(at) = differ {
        panic!(
            "differs at {at}: {:?} vs {:?}",
            String::from_utf8_lossy(&page[at.saturating_sub(200)..at + 100]),
            String::from_utf8_lossy(&stored[at.saturating_sub(200)..at + 100])
        );
    }
    assert!(
        page.starts_with(stored),
        "the stored part, then the live part"
    );
    let page = String::from_utf8(page).unwrap();
    let samples = parse(&page).unwrap();
    assert!(
        samples
            .iter()
            .any(|s| s.name == "distinct_3999_hits_total" && s.value == 3999.0)
    );
    assert!(
        samples
            .iter()
            .any(|s| s.name == "heartwire_lines_received_total")
    );
    assert!(
        samples
            .iter()
            .any(|s| s.name == "process_resident_memory_bytes")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn gzip_readers_of_a_large_page_share_its_compressed_pieces() {
    let served = serve(&many_series());
    let (exposition, handle, stored) = (&served.exposition, &served.handle, &served.stored);
    let (first, second) = tokio::join!(
        pieces(exposition, handle, true),
        pieces(exposition, handle, true)
    );
    assert!(first.len() > 2, "{} pieces", first.len());
    assert_eq!(first.len(), second.len());
    // Every piece but the tail (each reader's live part) is the same bytes, compressed once.
    for (one, other) in first.iter().zip(&second).take(first.len() - 1) {
        assert_eq!(one.as_ptr(), other.as_ptr());
    }
    for body in [first, second] {
        let mut text = Vec::new();
        // One gzip member: GzDecoder reads one only.
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&body.concat()[..]),
            &mut text,
        )
        .unwrap();
        assert!(text.starts_with(stored));
        let text = String::from_utf8(text).unwrap();
        assert!(
            parse(&text)
                .unwrap()
                .iter()
                .any(|s| s.name == "process_resident_memory_bytes")
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_small_plain_page_is_sent_whole_with_its_length() {
    let served = serve("small.hits:1|c\n");
    let (exposition, handle, stored) = (&served.exposition, &served.handle, &served.stored);
    let body = exposition.page(handle, false).await.unwrap().unwrap();
    let Content::Whole(chunks) = body.content else {
        panic!("a page of one chunk is sent whole");
    };
    assert!(chunks.concat().starts_with(stored));
}

// --- promtool -----------------------------------------------------------------------------

#[test]
fn promtool_accepts_a_render_with_every_family() {
    let Some(promtool) = which("promtool") else {
        let required = std::env::var("HEARTWIRE_REQUIRE_PEERS").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "promtool is required (HEARTWIRE_REQUIRE_PEERS=1) but not installed"
        );
        #[allow(clippy::print_stderr)]
        {
            eprintln!(
                "SKIPPED promtool_accepts_a_render_with_every_family: promtool not installed"
            );
        }
        return;
    };
    let text = render(
        "job.start a\njob.ok a 1\njob.error a\njob.skip a\njob.progress a 3\nhttp svc ep 500 0.1\nhb w\n\
         _sc|chk|0\n_e{1,1}:t|x\nreqs:1|c|#env:prod\ndepth:1|g\nwait:1|ms\nsize:1|h\nusers:u|s\nbad line\n",
    );
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    for family in [
        "heartwire_job_runs_total",
        "heartwire_job_duration_seconds",
        "heartwire_job_last_success_timestamp_seconds",
        "heartwire_job_last_run_timestamp_seconds",
        "heartwire_job_running",
        "heartwire_job_progress_total",
        "heartwire_job_last_progress_timestamp_seconds",
        "heartwire_external_http_total",
        "heartwire_external_http_duration_seconds",
        "heartwire_worker_last_heartbeat_timestamp_seconds",
        "heartwire_service_check_status",
        "heartwire_service_check_last_timestamp_seconds",
        "heartwire_events_total",
        "reqs_total",
        "depth",
        "wait",
        "size",
        "users",
        "heartwire_series",
        "heartwire_build_info",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} missing"
        );
    }
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}
