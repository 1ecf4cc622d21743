//! StatsD mapping rules and series expiry, driven with explicit time.

use super::*;
use crate::aggregate::snapshot::FamilyAccount;

/// A harness whose settings come from a config document, as the agent gets them.
fn harness(yaml: &str) -> Harness {
    let config = crate::config::from_str(yaml, "test.yaml").unwrap();
    Harness::with(config.aggregate_settings())
}

impl Harness {
    /// One tick of the aggregating task's expiry timer, at the harness's `now`.
    fn expire(&mut self) -> u64 {
        self.aggregator.expire(self.now)
    }

    fn expired(&self, family: &str) -> u64 {
        self.full_account(family)
            .map_or(0, |account| account.expired)
    }

    fn full_account(&self, family: &str) -> Option<FamilyAccount> {
        self.snapshot()
            .accounts
            .into_iter()
            .find(|account| &*account.family == family)
    }

    fn help(&self, family: &str) -> String {
        self.snapshot().family(family).unwrap().help.to_string()
    }
}

/// The example of statsd_exporter's documentation, extended with the other rule kinds.
const EXAMPLE: &str = r#"
statsd:
  mapping:
    mappings:
      - match: test.dispatcher.*.*.*
        name: dispatcher_events_total
        labels:
          processor: $1
          action: $2
          outcome: $3
          job: test_dispatcher
      - match: "*.signup.*.*"
        name: signup_events_total
        labels:
          provider: $2
          outcome: $3
          job: ${1}_server
      - match: 'client\.(?P<service>[a-z]+)\.(\w+)\.latency'
        match_type: regex
        name: client_${2}_latency_seconds
        labels: { service: "${service}" }
      - match: debug.*.*
        action: drop
      - match: queue.*.size
        match_metric_type: gauge
        name: queue_size
        labels: { queue: $1 }
      - match: queue.*.size
        match_metric_type: counter
        name: queue_resizes
        labels: { queue: $1 }
      - match: test.*.*.*.*
        name: never_reached_total
"#;

#[test]
fn globs_capture_components_into_the_name_and_labels() {
    let mut h = harness(EXAMPLE);
    h.send(
        "test.dispatcher.FooProcessor.send.success:1|c\nfoo_product.signup.facebook.failure:2|c\n",
    );
    assert_eq!(
        h.number(
            "dispatcher_events_total",
            &[
                ("processor", "FooProcessor"),
                ("action", "send"),
                ("outcome", "success"),
                ("job", "test_dispatcher")
            ]
        ),
        1.0
    );
    assert_eq!(
        h.number(
            "signup_events_total",
            &[
                ("provider", "facebook"),
                ("outcome", "failure"),
                ("job", "foo_product_server")
            ]
        ),
        2.0
    );
    // The first matching glob wins: the catch-all listed last never sees these names.
    assert!(h.snapshot().family("never_reached_total").is_none());
}

#[test]
fn a_regex_rule_expands_numbered_and_named_groups() {
    let mut h = harness(EXAMPLE);
    h.send("client.billing.charge.latency:250|ms\nclient.billing.charge.latency:20|ms\n");
    let histogram = h.histogram("client_charge_latency_seconds", &[("service", "billing")]);
    assert_eq!(histogram.count, 2.0);
    assert_eq!(histogram.sum, 0.27);
}

#[test]
fn a_drop_rule_discards_the_line_and_counts_it() {
    let mut h = harness(EXAMPLE);
    h.send("debug.cache.hits:1|c\ndebug.cache.size:3|g\n");
    let snapshot = h.snapshot();
    assert!(
        snapshot
            .families
            .iter()
            .all(|f| !f.name.starts_with("debug"))
    );
    assert_eq!(snapshot.series_count(), 0);
    assert_eq!(
        h.telemetry("heartwire_lines_dropped_by_mapping_total", None),
        2.0
    );
    // A drop is not a cap: nothing is counted as dropped at a series cap.
    assert!(snapshot.accounts.iter().all(|a| a.dropped == 0));
}

#[test]
fn match_metric_type_picks_the_rule_by_statsd_type() {
    let mut h = harness(EXAMPLE);
    h.send("queue.mail.size:5|g\nqueue.mail.size:1|c\nqueue.mail.size:7|ms\n");
    assert_eq!(h.number("queue_size", &[("queue", "mail")]), 5.0);
    assert_eq!(h.number("queue_resizes_total", &[("queue", "mail")]), 1.0);
    // No rule takes a timer of that name, so it stays unmapped.
    assert_eq!(h.histogram("queue_mail_size", &[]).count, 1.0);
}

#[test]
fn unmapped_names_keep_the_default_naming() {
    let mut h = harness(EXAMPLE);
    h.send("page.views:1|c|#env:prod\n");
    assert_eq!(h.number("page_views_total", &[("env", "prod")]), 1.0);
}

#[test]
fn tags_stay_labels_and_the_rule_wins_a_clash() {
    let mut h = harness(EXAMPLE);
    h.send("test.dispatcher.Foo.send.success:1|c|#outcome:from_tag,region:eu\n");
    assert_eq!(
        h.number(
            "dispatcher_events_total",
            &[
                ("processor", "Foo"),
                ("action", "send"),
                ("outcome", "success"),
                ("job", "test_dispatcher"),
                ("region", "eu")
            ]
        ),
        1.0
    );
}

#[test]
fn globs_are_tried_before_regexes_whatever_their_order() {
    let mut h = harness(
        r#"
statsd:
  mapping:
    mappings:
      - match: 'api\..*'
        match_type: regex
        name: by_regex
      - match: api.*
        name: by_glob
"#,
    );
    h.send("api.calls:1|c\napi.calls.extra:1|c\n");
    assert_eq!(h.number("by_glob_total", &[]), 1.0);
    // One component too many for the glob: the regex takes it.
    assert_eq!(h.number("by_regex_total", &[]), 1.0);
}

#[test]
fn per_rule_buckets_and_help_shape_the_family() {
    let mut h = harness(
        r#"
statsd:
  mapping:
    defaults:
      histogram_options: { buckets: [1, 2] }
    mappings:
      - match: render.*
        name: render_seconds
        help: Time to render a page, by template.
        labels: { template: $1 }
        histogram_options: { buckets: [0.05, 0.5] }
      - match: upload.size
        name: upload_bytes
        buckets: [1000, 1000000]
"#,
    );
    h.send("render.home:100|ms\nupload.size:5000|h\nother.size:1.5|h\n");
    let render = h.histogram("render_seconds", &[("template", "home")]);
    assert_eq!(
        render.cumulative().collect::<Vec<_>>(),
        vec![(0.05, 0.0), (0.5, 1.0)]
    );
    assert_eq!(
        h.help("render_seconds"),
        "Time to render a page, by template."
    );
    let upload = h.histogram("upload_bytes", &[]);
    assert_eq!(
        upload.cumulative().collect::<Vec<_>>(),
        vec![(1000.0, 0.0), (1_000_000.0, 1.0)]
    );
    // The document's default buckets apply to unmapped histograms too.
    let other = h.histogram("other_size", &[]);
    assert_eq!(
        other.cumulative().collect::<Vec<_>>(),
        vec![(1.0, 0.0), (2.0, 1.0)]
    );
}

const GAUGE_TTL: &str = r#"
statsd:
  mapping:
    mappings:
      - match: depth.*
        match_metric_type: gauge
        name: queue_depth
        labels: { queue: $1 }
        ttl: 10s
"#;

#[test]
fn a_gauge_with_a_ttl_is_gone_once_the_ttl_passes_without_samples() {
    let mut h = harness(GAUGE_TTL);
    h.send("depth.mail:4|g\n");
    h.advance(6.0);
    h.send("depth.mail:5|g\n");
    h.advance(9.9);
    assert_eq!(h.expire(), 0);
    assert_eq!(h.number("queue_depth", &[("queue", "mail")]), 5.0);
    h.advance(0.1);
    assert_eq!(h.expire(), 1);
    assert!(h.snapshot().family("queue_depth").is_none());
    let account = h.full_account("queue_depth").unwrap();
    assert_eq!((account.series, account.expired), (0, 1));
    // It comes back with its new value only.
    h.send("depth.mail:+2|g\n");
    assert_eq!(h.number("queue_depth", &[("queue", "mail")]), 2.0);
}

#[test]
fn a_counter_with_a_long_ttl_expires_and_comes_back_from_zero() {
    let mut h = harness(
        "statsd:\n  mapping:\n    mappings:\n      - match: jobs.*\n        name: jobs_${1}_total\n        ttl: 2h\n",
    );
    h.send("jobs.done:5|c\n");
    h.advance(2.0 * 3600.0 - 1.0);
    assert_eq!(h.expire(), 0);
    assert_eq!(h.number("jobs_done_total", &[]), 5.0);
    h.advance(1.0);
    assert_eq!(h.expire(), 1);
    assert!(h.value("jobs_done_total", &[]).is_none());
    h.send("jobs.done:1|c\n");
    assert_eq!(h.number("jobs_done_total", &[]), 1.0);
    assert_eq!(h.expired("jobs_done_total"), 1);
}

#[test]
fn the_default_gauge_ttl_expires_unmapped_gauges_and_sets_but_not_counters() {
    let mut h = harness("statsd:\n  gauge_ttl: 30s\n");
    h.send("temp:21|g\nvisitors:alice|s\nhits:1|c\nlatency:5|ms\n");
    h.advance(30.0);
    assert_eq!(h.expire(), 2);
    let snapshot = h.snapshot();
    assert!(snapshot.family("temp").is_none());
    assert!(snapshot.family("visitors").is_none());
    assert_eq!(h.number("hits_total", &[]), 1.0);
    assert_eq!(h.histogram("latency", &[]).count, 1.0);
}

#[test]
fn the_key_cache_still_finds_the_series_kept_when_others_expire() {
    let mut h = harness(GAUGE_TTL);
    h.send("depth.a:1|g\ndepth.b:2|g\ndepth.c:3|g\n");
    h.advance(5.0);
    h.send("depth.b:+10|g\ndepth.c:+10|g\n");
    h.advance(5.0);
    assert_eq!(h.expire(), 1);
    // `a` went before `b` and `c`; their cached keys must still find them.
    h.send("depth.b:+1|g\ndepth.c:+1|g\ndepth.a:7|g\n");
    assert_eq!(h.number("queue_depth", &[("queue", "a")]), 7.0);
    assert_eq!(h.number("queue_depth", &[("queue", "b")]), 13.0);
    assert_eq!(h.number("queue_depth", &[("queue", "c")]), 14.0);
    assert_eq!(h.snapshot().family("queue_depth").unwrap().series.len(), 3);
}

#[test]
fn expiry_keeps_the_order_families_and_series_are_listed_in() {
    let mut h = harness("statsd:\n  gauge_ttl: 10s\n");
    h.send("a:1|g\nb:1|g\nc:1|g\nd:1|g\nq:1|g|#n:1\nq:1|g|#n:2\nq:1|g|#n:3\n");
    h.advance(5.0);
    h.send("a:2|g\nd:2|g\nq:2|g|#n:1\nq:2|g|#n:3\n");
    h.advance(5.0);
    assert_eq!(h.expire(), 3, "b, c and the series n=2 of q");
    h.send("e:1|g\nf:1|g\ng:1|g\nq:1|g|#n:4\nq:1|g|#n:2\n");
    let snapshot = h.snapshot();
    let families: Vec<&str> = snapshot.families.iter().map(|f| &*f.name).collect();
    // A new family takes the place the latest removed one left, else goes last.
    assert_eq!(families, ["a", "f", "e", "d", "q", "g"]);
    let q = snapshot.family("q").unwrap();
    let series: Vec<&str> = q.series.iter().map(|s| &*s.labels[0]).collect();
    // Series keep their creation order; a new one goes last.
    assert_eq!(series, ["1", "3", "4", "2"]);
}

#[test]
fn an_expired_family_gives_back_its_names_and_series_budget() {
    let mut settings = crate::config::from_str("statsd:\n  gauge_ttl: 1s\n", "t.yaml")
        .unwrap()
        .aggregate_settings();
    settings.limits.max_series = 3;
    let mut h = Harness::with(settings);
    h.send("x:1|g\ny:1|g\nz:1|g\nw:1|g\n");
    assert!(h.snapshot().family("w").is_none());
    h.advance(1.0);
    assert_eq!(h.expire(), 3);
    // `x` is free for a counter now (a gauge `x` claimed it), and the cap has room again.
    h.send("x:2|c\nw:1|g\n");
    assert_eq!(h.number("x_total", &[]), 2.0);
    assert_eq!(h.number("w", &[]), 1.0);
    assert_eq!(h.account("x").conflicts, 0);
}

#[test]
fn expired_sets_give_their_members_back_to_the_budget() {
    let mut settings = crate::config::from_str("statsd:\n  gauge_ttl: 1s\n", "t.yaml")
        .unwrap()
        .aggregate_settings();
    settings.limits.max_set_members_total = 3;
    let mut h = Harness::with(settings);
    h.send("a:1|s\na:2|s\na:3|s\n");
    h.advance(1.0);
    assert_eq!(h.expire(), 1);
    h.send("b:1|s\nb:2|s\nb:3|s\n");
    assert_eq!(h.number("b", &[]), 3.0);
    assert_eq!(
        h.telemetry("heartwire_set_members_dropped_total", None),
        0.0
    );
}

#[test]
fn remap_keeps_existing_series_and_maps_new_samples_with_the_new_rules() {
    let mut h = harness(GAUGE_TTL);
    h.send("depth.mail:4|g\n");
    let renamed = crate::config::from_str(
        "statsd:\n  mapping:\n    mappings:\n      - match: depth.*\n        name: backlog\n        labels: { queue: $1 }\n",
        "t.yaml",
    )
    .unwrap()
    .aggregate_settings();
    h.aggregator.reconfigure(&renamed, h.now);
    assert_eq!(h.number("queue_depth", &[("queue", "mail")]), 4.0);
    h.send("depth.mail:6|g\n");
    assert_eq!(h.number("backlog", &[("queue", "mail")]), 6.0);
    assert_eq!(h.number("queue_depth", &[("queue", "mail")]), 4.0);
}

#[test]
fn remap_applies_a_new_ttl_to_a_family_on_its_next_sample() {
    let mut h = harness("statsd:\n  gauge_ttl: 0s\n");
    h.send("temp:21|g\n");
    let short = crate::config::from_str("statsd:\n  gauge_ttl: 5s\n", "t.yaml")
        .unwrap()
        .aggregate_settings();
    h.aggregator.reconfigure(&short, h.now);
    h.send("temp:22|g\n");
    h.advance(5.0);
    assert_eq!(h.expire(), 1);
    assert!(h.snapshot().family("temp").is_none());
}

#[test]
fn a_new_help_shows_even_when_the_sample_that_brought_it_conflicts() {
    let mut h = harness("statsd:\n  gauge_ttl: 0s\n");
    h.send("temp:21|g\n");
    let helped = crate::config::from_str(
        "statsd:\n  mapping:\n    mappings:\n      - match: temp\n        name: temp\n        help: Room temperature.\n",
        "t.yaml",
    )
    .unwrap()
    .aggregate_settings();
    h.aggregator.reconfigure(&helped, h.now);
    // Resolved into `temp` (which takes the rule's help), then refused: its labels differ.
    h.send("temp:22|g|#room:hall\n");
    assert_eq!(h.help("temp"), "Room temperature.");
    assert_eq!(h.number("temp", &[]), 21.0);
}
