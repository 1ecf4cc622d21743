//! StatsD mapping rules in prometheus/statsd_exporter's format, compiled once.
//!
//! A rule turns a StatsD name into a family name and labels taken from parts of the name, or
//! drops it. Rules run only when a raw (type, name, tags) key is first seen: the series layer
//! caches the outcome, so a known key never matches again.
//!
//! Matching, as statsd_exporter does it:
//! - Glob rules first, in file order, the first match wins; then regex rules, in file order.
//! - A glob `*` stands for one whole dot-separated component (possibly empty) and captures it as
//!   `$1`, `$2`…. Globs compile to a list of components per rule: no regex runs for them.
//! - A regex (`match_type: regex`, RE2 syntax like Go's) is searched, not anchored; `$0` is the
//!   whole match, `$1`… and `${name}` its groups.
//! - `match_metric_type`: `counter` (`c`), `gauge` (`g`) or `observer` (`ms`, `h`, `d`). A rule
//!   without it matches every type; sets (which statsd_exporter lacks) only match such rules.
//! - Templates in `name` and label values read like Go's `regexp.Expand`: `$1`, `${1}`,
//!   `${name}`, `$$` for a dollar sign. `$name` takes the longest run of letters, digits and `_`,
//!   so `$1_total` names a group `1_total`: statsd_exporter silently writes nothing for it,
//!   heartwire refuses such a reference when the rule is compiled (write `${1}_total`).
//!
//! What the series layer does with a match: the expanded name is sanitised like an unmapped one
//! and a counter's gets `_total` unless it ends in it; the rule's labels join the line's tags,
//! the rule's value winning on a clash; the rule's `help`, buckets and `ttl` go to the family it
//! creates.

mod template;

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use heartwire_proto::MetricKind;
use regex::Regex;

use self::template::{Piece, Template};

use super::expiry::check_counter_ttl;
use super::histogram::Bounds;
use crate::naming::is_label_name;

/// The StatsD types a rule matches (`match_metric_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// `c`.
    Counter,
    /// `g`.
    Gauge,
    /// `ms`, `h` and `d`.
    Observer,
}

impl MetricType {
    /// The type a StatsD kind matches as; `None` for sets.
    fn of(kind: MetricKind) -> Option<MetricType> {
        match kind {
            MetricKind::Counter => Some(MetricType::Counter),
            MetricKind::Gauge => Some(MetricType::Gauge),
            MetricKind::Timer | MetricKind::Histogram | MetricKind::Distribution => {
                Some(MetricType::Observer)
            }
            MetricKind::Set => None,
        }
    }
}

/// How a rule's `match` is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MatchType {
    /// Dot-separated components, `*` for any one.
    #[default]
    Glob,
    /// A regular expression.
    Regex,
}

/// One rule as written, before it is checked and compiled.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RuleSpec {
    /// `match`: the glob or regex.
    pub pattern: String,
    /// `match_type`; `None` takes the defaults'.
    pub match_type: Option<MatchType>,
    /// `match_metric_type`; `None` matches every type.
    pub metric_type: Option<MetricType>,
    /// `action: drop`: matching lines are discarded.
    pub drop: bool,
    /// `name`, a template (unused by drop rules).
    pub name: String,
    /// `labels`: label name and value template.
    pub labels: Vec<(String, String)>,
    /// `help`: the family's HELP text.
    pub help: Option<String>,
    /// `histogram_options.buckets` (or the older `buckets`).
    pub buckets: Option<Vec<f64>>,
    /// `ttl`; `None` (or zero, as statsd_exporter reads it) takes the defaults'.
    pub ttl: Option<Duration>,
}

/// The `defaults:` of a mapping document.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DefaultsSpec {
    /// `match_type` of rules without one.
    pub match_type: MatchType,
    /// Buckets of every histogram without its own, mapped or not.
    pub buckets: Option<Vec<f64>>,
    /// The ttl of every series without one of its own, mapped or not (zero: none).
    pub ttl: Option<Duration>,
}

/// Why a mapping document cannot be used. `key` is the path in the document, e.g.
/// `mappings[2].name`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{key}`: {message}")]
pub struct MappingError {
    /// The key, e.g. `mappings[2].name`.
    pub key: String,
    /// What is wrong and what would be valid.
    pub message: String,
}

/// Compiled rules; the default maps nothing.
#[derive(Debug, Clone, Default)]
pub struct Mapping {
    globs: Vec<Rule>,
    regexes: Vec<Rule>,
    default_buckets: Option<Bounds>,
    default_ttl: Option<Duration>,
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    matcher: Matcher,
    metric_type: Option<MetricType>,
    /// `None` for a drop rule.
    target: Option<Target>,
    pub(crate) help: Option<Arc<str>>,
    pub(crate) buckets: Option<Bounds>,
    pub(crate) ttl: Option<Duration>,
}

#[derive(Debug, Clone)]
enum Matcher {
    Glob(Box<[Part]>),
    Regex(Regex),
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(Box<str>),
    Any,
}

#[derive(Debug, Clone)]
struct Target {
    name: Template,
    labels: Vec<(Arc<str>, Template)>,
}

/// What a StatsD name maps to.
#[derive(Debug)]
pub(crate) enum Mapped<'m> {
    /// No rule matched: the name is used as sent.
    Unmapped,
    /// A drop rule matched.
    Dropped,
    /// A rule matched: the family name before sanitising, and the rule's labels.
    Named {
        name: String,
        labels: Vec<(Arc<str>, String)>,
        rule: &'m Rule,
    },
}

impl Mapping {
    /// Checks and compiles a mapping document's rules.
    pub fn compile(defaults: &DefaultsSpec, rules: &[RuleSpec]) -> Result<Mapping, MappingError> {
        let default_ttl = defaults.ttl.filter(|ttl| !ttl.is_zero());
        if let Some(ttl) = default_ttl {
            check_counter_ttl(ttl, "every counter and histogram, mapped or not")
                .map_err(|message| error("defaults.ttl", message))?;
        }
        let default_buckets = match &defaults.buckets {
            Some(list) => Some(bounds(list).map_err(|m| error("defaults.buckets", m))?),
            None => None,
        };
        let mut mapping = Mapping {
            default_buckets,
            default_ttl,
            ..Mapping::default()
        };
        for (index, spec) in rules.iter().enumerate() {
            let at = |field: &str| format!("mappings[{index}].{field}");
            let rule = compile_rule(spec, defaults, at)?;
            match rule.matcher {
                Matcher::Glob(_) => mapping.globs.push(rule),
                Matcher::Regex(_) => mapping.regexes.push(rule),
            }
        }
        Ok(mapping)
    }

    /// How many rules there are.
    pub fn len(&self) -> usize {
        self.globs.len() + self.regexes.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The families the rules can name, as anchored regexes over exposed sample names: a
    /// capture in a rule's name stands for any run of name characters, a counter's name may take
    /// `_total`, an observer's the histogram's `_bucket`, `_sum` and `_count`. Drop rules name
    /// nothing.
    pub fn family_patterns(&self) -> Vec<Regex> {
        self.globs
            .iter()
            .chain(&self.regexes)
            .filter_map(|rule| {
                let target = rule.target.as_ref()?;
                let mut stem = String::from("^");
                for piece in target.name.0.iter() {
                    match piece {
                        Piece::Text(text) => {
                            let sanitised: String = text
                                .chars()
                                .map(|c| {
                                    if c.is_ascii_alphanumeric() || c == '_' {
                                        c
                                    } else {
                                        '_'
                                    }
                                })
                                .collect();
                            stem.push_str(&regex::escape(&sanitised));
                        }
                        Piece::Capture(_) => stem.push_str("[a-zA-Z0-9_]*"),
                    }
                }
                let suffixes = match rule.metric_type {
                    Some(MetricType::Counter) => "(_total)?",
                    Some(MetricType::Gauge) => "",
                    Some(MetricType::Observer) => "(_bucket|_sum|_count)?",
                    None => "(_total|_bucket|_sum|_count)?",
                };
                Regex::new(&format!("{stem}{suffixes}$")).ok()
            })
            .collect()
    }

    /// Buckets for histograms no rule gives any.
    pub(crate) fn default_buckets(&self) -> Option<&Bounds> {
        self.default_buckets.as_ref()
    }

    /// The ttl of series no rule gives one.
    pub(crate) fn default_ttl(&self) -> Option<Duration> {
        self.default_ttl
    }

    /// The first rule that matches `name` as `kind`, applied.
    pub(crate) fn map(&self, kind: MetricKind, name: &str) -> Mapped<'_> {
        if self.is_empty() {
            return Mapped::Unmapped;
        }
        let metric_type = MetricType::of(kind);
        let fields = name.bytes().filter(|b| *b == b'.').count() + 1;
        let mut captures = Vec::new();
        for rule in self.globs.iter().chain(&self.regexes) {
            let type_matches = rule.metric_type.is_none() || rule.metric_type == metric_type;
            if type_matches && rule.matcher.captures(name, fields, &mut captures) {
                return match &rule.target {
                    None => Mapped::Dropped,
                    Some(target) => Mapped::Named {
                        name: target.name.expand(name, &captures),
                        labels: target
                            .labels
                            .iter()
                            .map(|(label, value)| (label.clone(), value.expand(name, &captures)))
                            .collect(),
                        rule,
                    },
                };
            }
        }
        Mapped::Unmapped
    }
}

impl Matcher {
    /// Whether `name` (of `fields` dot-separated components) matches; on a match `out` holds
    /// the byte ranges of `$0`, `$1`…
    fn captures(&self, name: &str, fields: usize, out: &mut Vec<Option<Range<usize>>>) -> bool {
        out.clear();
        match self {
            Matcher::Glob(parts) => {
                if parts.len() != fields {
                    return false;
                }
                out.push(Some(0..name.len()));
                let mut start = 0;
                for (field, part) in name.split('.').zip(parts.iter()) {
                    let end = start + field.len();
                    match part {
                        Part::Any => out.push(Some(start..end)),
                        Part::Literal(literal) if **literal == *field => {}
                        Part::Literal(_) => return false,
                    }
                    start = end + 1;
                }
                true
            }
            Matcher::Regex(regex) => match regex.captures(name) {
                Some(groups) => {
                    out.extend(groups.iter().map(|group| group.map(|m| m.range())));
                    true
                }
                None => false,
            },
        }
    }
}

fn compile_rule(
    spec: &RuleSpec,
    defaults: &DefaultsSpec,
    at: impl Fn(&str) -> String,
) -> Result<Rule, MappingError> {
    let match_type = spec.match_type.unwrap_or(defaults.match_type);
    let (matcher, resolve) = match match_type {
        MatchType::Glob => glob(&spec.pattern).map_err(|m| error(&at("match"), m))?,
        MatchType::Regex => regex(&spec.pattern).map_err(|m| error(&at("match"), m))?,
    };
    let mut rule = Rule {
        matcher,
        metric_type: spec.metric_type,
        target: None,
        help: None,
        buckets: None,
        ttl: None,
    };
    if spec.drop {
        return Ok(rule);
    }
    let name = Template::parse(&spec.name, &resolve).map_err(|m| error(&at("name"), m))?;
    check_name(&spec.name, &name).map_err(|m| error(&at("name"), m))?;
    let mut labels = Vec::with_capacity(spec.labels.len());
    for (label, value) in &spec.labels {
        let key = at(&format!("labels.{label}"));
        if !is_label_name(label) {
            return Err(error(
                &key,
                format!(
                    "`{label}` is not a usable label name: use letters, digits and `_`, not \
                     starting with a digit, and not `le`, `quantile` or a name starting with `__`"
                ),
            ));
        }
        let value = Template::parse(value, &resolve).map_err(|m| error(&key, m))?;
        labels.push((Arc::from(label.as_str()), value));
    }
    rule.target = Some(Target { name, labels });
    rule.help = spec.help.as_deref().map(Arc::from);
    if let Some(list) = &spec.buckets {
        rule.buckets = Some(bounds(list).map_err(|m| error(&at("buckets"), m))?);
    }
    rule.ttl = spec.ttl.filter(|ttl| !ttl.is_zero());
    if let Some(ttl) = rule.ttl
        && spec.metric_type != Some(MetricType::Gauge)
    {
        check_counter_ttl(ttl, "the counters and histograms this rule matches")
            .map_err(|m| error(&at("ttl"), m))?;
    }
    rule.ttl = rule.ttl.or(defaults.ttl.filter(|ttl| !ttl.is_zero()));
    Ok(rule)
}

type Resolver = Box<dyn Fn(&str) -> Result<usize, String>>;

/// A glob's components, and how its templates resolve references (`$1` to `$n`).
fn glob(pattern: &str) -> Result<(Matcher, Resolver), String> {
    if pattern.is_empty() {
        return Err("is empty: write a dot-separated StatsD name, `*` for any component".into());
    }
    let mut parts = Vec::new();
    for field in pattern.split('.') {
        parts.push(match field {
            "*" => Part::Any,
            _ if field.contains('*') => {
                return Err(format!(
                    "`{pattern}`: a `*` stands for a whole dot-separated component (`a.*.c`); \
                     for part of a component use `match_type: regex`"
                ));
            }
            _ => Part::Literal(field.into()),
        });
    }
    let stars = parts.iter().filter(|part| **part == Part::Any).count();
    let resolve = move |name: &str| match name.parse::<usize>() {
        Ok(index) if (1..=stars).contains(&index) => Ok(index),
        Ok(_) => Err(format!(
            "the glob has {stars} `*`, captured as `$1` to `${stars}`"
        )),
        Err(_) => Err("a glob has no named captures, only `$1`, `$2`…".to_owned()),
    };
    Ok((Matcher::Glob(parts.into()), Box::new(resolve)))
}

/// A regex, and how its templates resolve references (`$0`, `$n`, `${name}`).
fn regex(pattern: &str) -> Result<(Matcher, Resolver), String> {
    let regex = Regex::new(pattern).map_err(|error| {
        // The parser's message draws a caret under the pattern; its last line says what is wrong.
        let text = error.to_string();
        let what = text.lines().last().unwrap_or_default();
        format!(
            "`{pattern}` is not a valid regex: {}",
            what.trim_start_matches("error: ")
        )
    })?;
    let groups = regex.captures_len();
    let names: Vec<(String, usize)> = regex
        .capture_names()
        .enumerate()
        .filter_map(|(index, name)| Some((name?.to_owned(), index)))
        .collect();
    let resolve = move |name: &str| match name.parse::<usize>() {
        Ok(index) if index < groups => Ok(index),
        Ok(_) => Err(format!(
            "the regex has {} group(s) (`$0` is the whole match)",
            groups - 1
        )),
        Err(_) => names
            .iter()
            .find(|(group, _)| group == name)
            .map(|(_, index)| *index)
            .ok_or_else(|| format!("the regex has no group named `{name}`")),
    };
    Ok((Matcher::Regex(regex), Box::new(resolve)))
}

/// statsd_exporter's rule for names: letters, digits and `_` around the captures, not starting
/// with a digit.
fn check_name(text: &str, name: &Template) -> Result<(), String> {
    let invalid = || {
        Err(format!(
            "`{text}` is not a metric name: use letters, digits and `_` (not starting with a \
             digit), with captures such as `${{1}}` mixed in"
        ))
    };
    if text.is_empty() {
        return Err("is missing: give the family name (captures such as `${1}` allowed)".into());
    }
    if let Some(Piece::Text(first)) = name.0.first()
        && first.starts_with(|c: char| c.is_ascii_digit())
    {
        return invalid();
    }
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '_';
    if name.texts().any(|text| !text.chars().all(valid)) {
        return invalid();
    }
    Ok(())
}

fn bounds(list: &[f64]) -> Result<Bounds, String> {
    let increasing = list.windows(2).all(|pair| pair[0] < pair[1]);
    if list.is_empty() || !increasing || list.iter().any(|b| !b.is_finite()) {
        return Err(
            "buckets must be a non-empty list of finite, strictly increasing numbers".into(),
        );
    }
    Ok(Arc::from(list))
}

fn error(key: &str, message: String) -> MappingError {
    MappingError {
        key: key.to_owned(),
        message,
    }
}
