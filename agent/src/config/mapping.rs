//! The `statsd:` section: mapping rules in prometheus/statsd_exporter's format, and how long
//! idle StatsD series live.
//!
//! The rules come either inline (`statsd.mapping`, the same document as a statsd_exporter
//! `--statsd.mapping-config` file) or from such a file, unchanged (`statsd.mapping_file`, read by
//! the loader; a relative path is read from the config file's directory). Not both: one list
//! keeps "the first matching rule wins" readable.
//!
//! Every statsd_exporter key is either honoured or refused with what heartwire does instead:
//! none is silently ignored. Keys whose value matches what heartwire always does are accepted
//! (`observer_type: histogram`, `honor_labels: false`, `glob_disable_ordering: false`).

use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::bounds::SERIES_TTL;
use super::limits::check_buckets;
use crate::aggregate::Expiry;
use crate::aggregate::mapping::{
    DefaultsSpec, Mapping, MappingError, MatchType, MetricType, RuleSpec,
};

/// StatsD mapping and expiry.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Statsd {
    /// A statsd_exporter mapping file, loaded unchanged (default: none). A relative path is read
    /// from the config file's directory.
    pub mapping_file: Option<PathBuf>,
    /// Mapping rules inline, in the same format (default: none).
    pub mapping: MappingDocument,
    /// Gauges and sets without samples for this long are removed; default `0s`, never; else 1s
    /// to 1y. A mapping rule's `ttl` (or its document's `defaults.ttl`) takes precedence.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::config::schema::HumanDuration")]
    pub gauge_ttl: Duration,
    /// Counters and histograms without samples for this long are removed; default `0s`, never.
    /// Otherwise `1h` to `1y`: one that comes back restarts from 0.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::config::schema::HumanDuration")]
    pub counter_ttl: Duration,
    /// The document of `mapping_file`, once the loader has read it.
    #[serde(skip)]
    pub loaded_file: Option<MappingDocument>,
}

/// A statsd_exporter mapping document: `defaults:` and `mappings:`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MappingDocument {
    /// Defaults for every rule.
    pub defaults: MappingDefaults,
    /// The rules: globs in order, then regexes in order; the first match wins.
    #[serde(deserialize_with = "rules")]
    pub mappings: Vec<MappingRule>,
}

/// `defaults:` of a mapping document.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(try_from = "RawDefaults")]
pub struct MappingDefaults(pub DefaultsSpec);

/// One entry of `mappings:`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MappingRule(pub RuleSpec);

/// A mapping problem found after parsing: in the inline rules or in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// The config key.
    pub key: String,
    /// What is wrong, naming the mapping file and the rule's key.
    pub message: String,
}

impl Statsd {
    /// The compiled rules and default ttls.
    pub fn settings(&self) -> Result<(Mapping, Expiry), Problem> {
        for (key, ttl) in [
            ("statsd.gauge_ttl", self.gauge_ttl),
            ("statsd.counter_ttl", self.counter_ttl),
        ] {
            SERIES_TTL.check(ttl).map_err(|message| Problem {
                key: key.to_owned(),
                message,
            })?;
        }
        let expiry = Expiry {
            gauges: self.gauge_ttl,
            counters: self.counter_ttl,
        };
        expiry.validate().map_err(|message| Problem {
            key: "statsd.counter_ttl".to_owned(),
            message,
        })?;
        let inline = &self.mapping;
        let Some(file) = &self.mapping_file else {
            bounded(inline).map_err(|(key, message)| Problem {
                key: format!("statsd.mapping.{key}"),
                message,
            })?;
            let mapping = compile(inline).map_err(|error| Problem {
                key: format!("statsd.mapping.{}", error.key),
                message: error.message,
            })?;
            return Ok((mapping, expiry));
        };
        if *inline != MappingDocument::default() {
            return Err(Problem {
                key: "statsd.mapping_file".to_owned(),
                message: "give the rules inline in `statsd.mapping` or in a mapping file, not \
                          both"
                    .to_owned(),
            });
        }
        let document = self.loaded_file.clone().unwrap_or_default();
        bounded(&document).map_err(|(key, message)| Problem {
            key: "statsd.mapping_file".to_owned(),
            message: format!("{}: `{key}`: {message}", file.display()),
        })?;
        let mapping = compile(&document).map_err(|error| Problem {
            key: "statsd.mapping_file".to_owned(),
            message: format!("{}: `{}`: {}", file.display(), error.key, error.message),
        })?;
        Ok((mapping, expiry))
    }
}

/// Checks the ttls and bucket lists of a mapping document against their ranges; an error names
/// the key in the document (`mappings[2].ttl`).
fn bounded(document: &MappingDocument) -> Result<(), (String, String)> {
    let defaults = &document.defaults.0;
    let rules = document
        .mappings
        .iter()
        .enumerate()
        .map(|(index, rule)| (format!("mappings[{index}]."), &rule.0.ttl, &rule.0.buckets));
    let all = std::iter::once(("defaults.".to_owned(), &defaults.ttl, &defaults.buckets));
    for (at, ttl, buckets) in all.chain(rules) {
        if let Some(ttl) = ttl {
            SERIES_TTL
                .check(*ttl)
                .map_err(|message| (format!("{at}ttl"), message))?;
        }
        if let Some(buckets) = buckets {
            check_buckets(buckets).map_err(|message| (format!("{at}buckets"), message))?;
        }
    }
    Ok(())
}

fn compile(document: &MappingDocument) -> Result<Mapping, MappingError> {
    let rules: Vec<RuleSpec> = document.mappings.iter().map(|r| r.0.clone()).collect();
    Mapping::compile(&document.defaults.0, &rules)
}

/// The rules, each checked as it is read; a refused one is named by its position and `match`
/// (the YAML reader places errors of a list element at the list).
fn rules<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<MappingRule>, D::Error> {
    struct Rules;
    impl<'de> serde::de::Visitor<'de> for Rules {
        type Value = Vec<MappingRule>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of mapping rules")
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut rules = Vec::new();
            while let Some(raw) = seq.next_element::<RawRule>()? {
                let at = format!("rule [{}] (match `{}`)", rules.len(), raw.pattern);
                let rule = MappingRule::try_from(raw)
                    .map_err(|message| serde::de::Error::custom(format!("{at}: {message}")))?;
                rules.push(rule);
            }
            Ok(rules)
        }
    }
    deserializer.deserialize_seq(Rules)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    observer_type: Option<String>,
    timer_type: Option<String>,
    match_type: Option<String>,
    glob_disable_ordering: Option<bool>,
    ttl: Option<GoDuration>,
    histogram_options: Option<RawHistogramOptions>,
    buckets: Option<Vec<f64>>,
    summary_options: Option<IgnoredAny>,
    quantiles: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHistogramOptions {
    buckets: Option<Vec<f64>>,
    native_histogram_bucket_factor: Option<IgnoredAny>,
    native_histogram_max_buckets: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(rename = "match")]
    pattern: String,
    match_type: Option<String>,
    match_metric_type: Option<String>,
    action: Option<String>,
    name: Option<String>,
    #[serde(default)]
    labels: IndexMap<String, Scalar>,
    help: Option<String>,
    ttl: Option<GoDuration>,
    observer_type: Option<String>,
    timer_type: Option<String>,
    histogram_options: Option<RawHistogramOptions>,
    buckets: Option<Vec<f64>>,
    honor_labels: Option<bool>,
    summary_options: Option<IgnoredAny>,
    quantiles: Option<IgnoredAny>,
    scale: Option<IgnoredAny>,
}

impl TryFrom<RawDefaults> for MappingDefaults {
    type Error = String;

    fn try_from(raw: RawDefaults) -> Result<MappingDefaults, String> {
        defaults(raw).map_err(|message| format!("defaults: {message}"))
    }
}

fn defaults(raw: RawDefaults) -> Result<MappingDefaults, String> {
    observer(raw.observer_type.as_deref(), raw.timer_type.as_deref())?;
    no_summaries(raw.summary_options.is_some(), raw.quantiles.is_some())?;
    if raw.glob_disable_ordering == Some(true) {
        return Err(
            "`glob_disable_ordering: true` is not supported: heartwire always applies the first \
             matching glob in file order (its glob matching costs the same either way); remove \
             the key or set it to false"
                .to_owned(),
        );
    }
    Ok(MappingDefaults(DefaultsSpec {
        match_type: match_type(raw.match_type.as_deref())?.unwrap_or_default(),
        buckets: buckets(raw.histogram_options, raw.buckets)?,
        ttl: raw.ttl.map(|ttl| ttl.0),
    }))
}

impl TryFrom<RawRule> for MappingRule {
    type Error = String;

    fn try_from(raw: RawRule) -> Result<MappingRule, String> {
        observer(raw.observer_type.as_deref(), raw.timer_type.as_deref())?;
        no_summaries(raw.summary_options.is_some(), raw.quantiles.is_some())?;
        if raw.scale.is_some() {
            return Err(
                "`scale` is not supported: heartwire converts `ms` timers to seconds itself and \
                 keeps `h` and `d` values as sent; remove the key and send values in the unit \
                 the metric's name says"
                    .to_owned(),
            );
        }
        if raw.honor_labels == Some(true) {
            return Err(
                "`honor_labels: true` is not supported: a rule's labels always win over the \
                 line's tags of the same name (statsd_exporter's `honor_labels: false`); remove \
                 the key, or give the rule's label another name"
                    .to_owned(),
            );
        }
        let drop = match raw.action.as_deref() {
            None | Some("") | Some("map") => false,
            Some("drop") => true,
            Some(other) => {
                return Err(format!(
                    "`action: {other}` is not an action: use map or drop"
                ));
            }
        };
        Ok(MappingRule(RuleSpec {
            pattern: raw.pattern,
            match_type: match_type(raw.match_type.as_deref())?,
            metric_type: metric_type(raw.match_metric_type.as_deref())?,
            drop,
            name: raw.name.unwrap_or_default(),
            labels: raw.labels.into_iter().map(|(k, v)| (k, v.0)).collect(),
            help: raw.help,
            buckets: buckets(raw.histogram_options, raw.buckets)?,
            ttl: raw.ttl.map(|ttl| ttl.0),
        }))
    }
}

/// `observer_type` (or the older `timer_type`): heartwire only builds histograms.
fn observer(observer_type: Option<&str>, timer_type: Option<&str>) -> Result<(), String> {
    for (key, value) in [("observer_type", observer_type), ("timer_type", timer_type)] {
        match value {
            None | Some("") | Some("histogram") => {}
            Some("summary") => {
                return Err(format!(
                    "`{key}: summary` is not supported: heartwire exposes every timer, \
                     histogram and distribution as a histogram (buckets from \
                     `histogram_options.buckets`; quantiles with histogram_quantile()); remove \
                     the key or set `{key}: histogram`"
                ));
            }
            Some(other) => {
                return Err(format!(
                    "`{key}: {other}` is not an observer type: use histogram (heartwire builds \
                     no summaries)"
                ));
            }
        }
    }
    Ok(())
}

fn no_summaries(summary_options: bool, quantiles: bool) -> Result<(), String> {
    let key = match (summary_options, quantiles) {
        (true, _) => "summary_options",
        (_, true) => "quantiles",
        _ => return Ok(()),
    };
    Err(format!(
        "`{key}` is not supported: heartwire builds no summaries, it exposes histograms \
         (quantiles come from histogram_quantile() in PromQL); remove the key and choose \
         buckets with `histogram_options.buckets`"
    ))
}

fn match_type(value: Option<&str>) -> Result<Option<MatchType>, String> {
    match value {
        None | Some("") => Ok(None),
        Some("glob") => Ok(Some(MatchType::Glob)),
        Some("regex") => Ok(Some(MatchType::Regex)),
        Some(other) => Err(format!(
            "`match_type: {other}` is not a match type: use glob or regex"
        )),
    }
}

fn metric_type(value: Option<&str>) -> Result<Option<MetricType>, String> {
    match value {
        None | Some("") => Ok(None),
        Some("counter") => Ok(Some(MetricType::Counter)),
        Some("gauge") => Ok(Some(MetricType::Gauge)),
        Some("observer") => Ok(Some(MetricType::Observer)),
        Some(other) => Err(format!(
            "`match_metric_type: {other}` is not a metric type: use counter, gauge or observer \
             (observer matches ms, h and d)"
        )),
    }
}

/// `histogram_options.buckets`, or the older top-level `buckets`, not both.
fn buckets(
    options: Option<RawHistogramOptions>,
    legacy: Option<Vec<f64>>,
) -> Result<Option<Vec<f64>>, String> {
    let Some(options) = options else {
        return Ok(legacy);
    };
    for (key, present) in [
        (
            "native_histogram_bucket_factor",
            options.native_histogram_bucket_factor.is_some(),
        ),
        (
            "native_histogram_max_buckets",
            options.native_histogram_max_buckets.is_some(),
        ),
    ] {
        if present {
            return Err(format!(
                "`histogram_options.{key}` is not supported: heartwire exposes classic \
                 histograms with explicit buckets; remove the key and list \
                 `histogram_options.buckets`"
            ));
        }
    }
    match (options.buckets, legacy) {
        (Some(_), Some(_)) => Err(
            "buckets are given twice: keep `histogram_options.buckets` and remove the top-level \
             `buckets`"
                .to_owned(),
        ),
        (buckets, legacy) => Ok(buckets.or(legacy)),
    }
}

/// A label value: YAML writes `code: 200` as a number, statsd_exporter reads it as text.
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Scalar, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Integer(i64),
            Float(f64),
            Flag(bool),
        }
        match Raw::deserialize(deserializer) {
            Ok(Raw::Text(text)) => Ok(Scalar(text)),
            Ok(Raw::Integer(n)) => Ok(Scalar(n.to_string())),
            Ok(Raw::Float(x)) => Ok(Scalar(x.to_string())),
            Ok(Raw::Flag(flag)) => Ok(Scalar(flag.to_string())),
            Err(_) => Err(serde::de::Error::custom(
                "a label value is text (captures such as `$1` allowed)",
            )),
        }
    }
}

/// A duration as statsd_exporter's YAML reads one: a string such as `10s`, `1h30m`, `0`, or the
/// integer 0. Any other integer is refused (Go would read it as nanoseconds).
struct GoDuration(Duration);

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<GoDuration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        let unit = |shown: &str| {
            format!(
                "ttl `{shown}` is not a duration: give a number with a unit, e.g. 90s, 10m, \
                 1h30m (0 for none)"
            )
        };
        match Raw::deserialize(deserializer) {
            Ok(Raw::Number(0)) => Ok(GoDuration(Duration::ZERO)),
            Ok(Raw::Number(n)) => Err(serde::de::Error::custom(unit(&n.to_string()))),
            Ok(Raw::Text(text)) if text.trim() == "0" => Ok(GoDuration(Duration::ZERO)),
            Ok(Raw::Text(text)) => humantime::parse_duration(text.trim())
                .map(GoDuration)
                .map_err(|_| serde::de::Error::custom(unit(&text))),
            Err(_) => Err(serde::de::Error::custom(
                "a ttl is a number with a unit, e.g. 90s, 10m, 1h30m (0 for none)",
            )),
        }
    }
}

#[cfg(test)]
mod tests;
