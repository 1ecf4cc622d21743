//! The small YAML forms of `alerts:`: label matchers, thresholds, guards. Each reads what a
//! person writes (a number where a label value is expected, one value where a list could be)
//! and refuses the rest with the form that works.

use std::fmt;

use indexmap::IndexMap;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use super::AlertGuard;

/// How a label is matched: `=`, `!=`, `=~`, `!~`.
#[derive(Debug, Clone, PartialEq)]
pub enum LabelMatch {
    /// `label: value`: equal to the value.
    Is(String),
    /// `label: [a, b]`: equal to any of the values (matched literally).
    AnyOf(Vec<String>),
    /// `label: { not: value }`: not equal to the value.
    Not(String),
    /// `label: { not: [a, b] }`: equal to none of the values (matched literally).
    NoneOf(Vec<String>),
    /// `label: { regex: "5.." }`: the whole value matches the RE2 regex.
    Regex(String),
    /// `label: { not_regex: "2.." }`: the whole value does not match the RE2 regex.
    NotRegex(String),
}

/// What a comparison compares with.
#[derive(Debug, Clone, PartialEq)]
pub enum Threshold {
    /// One number for every series.
    Value(f64),
    /// `{ label: { value: number, … } }`: a number per value of one label; series with another
    /// value never fire.
    PerLabel {
        /// The label.
        label: String,
        /// Its values and their thresholds, in config order.
        values: IndexMap<String, f64>,
    },
}

/// A label value as YAML writes it: a string, or a number or boolean taken as its text
/// (`errno: 107`).
pub(super) struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Text, D::Error> {
        deserializer.deserialize_any(TextVisitor).map(Text)
    }
}

struct TextVisitor;

impl Visitor<'_> for TextVisitor {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a label value (a string or a number)")
    }
    fn visit_str<E: de::Error>(self, value: &str) -> Result<String, E> {
        Ok(value.to_owned())
    }
    fn visit_i64<E: de::Error>(self, value: i64) -> Result<String, E> {
        Ok(value.to_string())
    }
    fn visit_u64<E: de::Error>(self, value: u64) -> Result<String, E> {
        Ok(value.to_string())
    }
    fn visit_f64<E: de::Error>(self, value: f64) -> Result<String, E> {
        Ok(value.to_string())
    }
    fn visit_bool<E: de::Error>(self, value: bool) -> Result<String, E> {
        Ok(value.to_string())
    }
}

/// One value or a list of values.
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<OneOrMany, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a label value or a list of label values")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<OneOrMany, E> {
                TextVisitor.visit_str(value).map(OneOrMany::One)
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<OneOrMany, E> {
                TextVisitor.visit_i64(value).map(OneOrMany::One)
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<OneOrMany, E> {
                TextVisitor.visit_u64(value).map(OneOrMany::One)
            }
            fn visit_f64<E: de::Error>(self, value: f64) -> Result<OneOrMany, E> {
                TextVisitor.visit_f64(value).map(OneOrMany::One)
            }
            fn visit_bool<E: de::Error>(self, value: bool) -> Result<OneOrMany, E> {
                TextVisitor.visit_bool(value).map(OneOrMany::One)
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<OneOrMany, S::Error> {
                let mut values = Vec::new();
                while let Some(Text(value)) = seq.next_element()? {
                    values.push(value);
                }
                Ok(OneOrMany::Many(values))
            }
        }
        deserializer.deserialize_any(Visit)
    }
}

const MATCH_FORMS: &str = "write `value` (=), `[a, b]` (any of), `{ not: value }` (!=), `{ not: [a, b] }` (none of), `{ regex: \"5..\" }` (=~) or `{ not_regex: \"2..\" }` (!~)";

impl<'de> Deserialize<'de> for LabelMatch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<LabelMatch, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = LabelMatch;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a label matcher: {MATCH_FORMS}")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<LabelMatch, E> {
                Ok(LabelMatch::Is(value.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<LabelMatch, E> {
                Ok(LabelMatch::Is(value.to_string()))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<LabelMatch, E> {
                Ok(LabelMatch::Is(value.to_string()))
            }
            fn visit_f64<E: de::Error>(self, value: f64) -> Result<LabelMatch, E> {
                Ok(LabelMatch::Is(value.to_string()))
            }
            fn visit_bool<E: de::Error>(self, value: bool) -> Result<LabelMatch, E> {
                Ok(LabelMatch::Is(value.to_string()))
            }
            fn visit_seq<S: SeqAccess<'de>>(self, seq: S) -> Result<LabelMatch, S::Error> {
                match OneOrMany::deserialize(de::value::SeqAccessDeserializer::new(seq))? {
                    OneOrMany::Many(values) => Ok(LabelMatch::AnyOf(values)),
                    OneOrMany::One(value) => Ok(LabelMatch::AnyOf(vec![value])),
                }
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<LabelMatch, M::Error> {
                let Some(key) = map.next_key::<String>()? else {
                    return Err(de::Error::custom(format_args!(
                        "an empty matcher: {MATCH_FORMS}"
                    )));
                };
                let matcher = match key.as_str() {
                    "not" => match map.next_value::<OneOrMany>()? {
                        OneOrMany::One(value) => LabelMatch::Not(value),
                        OneOrMany::Many(values) => LabelMatch::NoneOf(values),
                    },
                    "regex" => LabelMatch::Regex(map.next_value::<Text>()?.0),
                    "not_regex" => LabelMatch::NotRegex(map.next_value::<Text>()?.0),
                    other => {
                        return Err(de::Error::custom(format_args!(
                            "unknown matcher `{other}`: {MATCH_FORMS}"
                        )));
                    }
                };
                if map.next_key::<String>()?.is_some() {
                    return Err(de::Error::custom(format_args!(
                        "one matcher per label: {MATCH_FORMS}"
                    )));
                }
                Ok(matcher)
            }
        }
        deserializer.deserialize_any(Visit)
    }
}

/// The label matchers of `where:` (and `failure_ratio.failures`), in config order: a map of
/// labels to [`LabelMatch`] forms, or PromQL's own text between braces, as `dashboard:` panels
/// take it (`'source="hc", errno!="107"'`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Matchers(pub Vec<(String, LabelMatch)>);

impl Matchers {
    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de> Deserialize<'de> for Matchers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Matchers, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = Matchers;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    "label matchers: a map of labels to matchers ({MATCH_FORMS}), or PromQL matchers such as `source=\"hc\", errno!=\"107\"`"
                )
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Matchers, E> {
                promql_matchers(text).map(Matchers).map_err(E::custom)
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Matchers, M::Error> {
                let mut out: Vec<(String, LabelMatch)> = Vec::new();
                while let Some(label) = map.next_key::<String>()? {
                    if out.iter().any(|(seen, _)| *seen == label) {
                        return Err(de::Error::custom(format_args!(
                            "`{label}` is matched twice: give one matcher per label, or write PromQL matchers as text"
                        )));
                    }
                    let matcher = map.next_value::<LabelMatch>()?;
                    out.push((label, matcher));
                }
                Ok(Matchers(out))
            }
        }
        deserializer.deserialize_any(Visit)
    }
}

/// `a="x", b=~"y"` read by the PromQL parser as the braces of a selector.
fn promql_matchers(text: &str) -> Result<Vec<(String, LabelMatch)>, String> {
    use promql_parser::label::MatchOp;
    use promql_parser::parser::{self, Expr};
    let refused = |why: String| {
        format!(
            "{why}: write label matchers as PromQL writes them between braces, e.g. `status_code=~\"5..\", errno!=\"107\"`, or as a map ({MATCH_FORMS})"
        )
    };
    let parsed = parser::parse(&format!("selected{{{text}}}")).map_err(refused)?;
    let selector = match parsed {
        Expr::VectorSelector(selector)
            if selector.name.as_deref() == Some("selected")
                && selector.offset.is_none()
                && selector.at.is_none()
                && selector.matchers.or_matchers.is_empty() =>
        {
            selector
        }
        _ => return Err(refused("not label matchers alone".to_owned())),
    };
    let mut out = Vec::new();
    for matcher in selector.matchers.matchers {
        if matcher.name == "__name__" {
            if matcher.value == "selected" && matches!(matcher.op, MatchOp::Equal) {
                continue;
            }
            return Err(refused(
                "`__name__` is the family: name it with `family`".to_owned(),
            ));
        }
        let value = matcher.value;
        let matcher_form = match matcher.op {
            MatchOp::Equal => LabelMatch::Is(value),
            MatchOp::NotEqual => LabelMatch::Not(value),
            MatchOp::Re(_) => LabelMatch::Regex(value),
            MatchOp::NotRe(_) => LabelMatch::NotRegex(value),
        };
        out.push((matcher.name, matcher_form));
    }
    Ok(out)
}

const THRESHOLD_FORMS: &str =
    "write a number, or one per value of a label: `{ source: { hc: 19, phac: 24 } }`";

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Threshold, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = Threshold;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a threshold: {THRESHOLD_FORMS}")
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Threshold, E> {
                Ok(Threshold::Value(value as f64))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Threshold, E> {
                Ok(Threshold::Value(value as f64))
            }
            fn visit_f64<E: de::Error>(self, value: f64) -> Result<Threshold, E> {
                Ok(Threshold::Value(value))
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Threshold, M::Error> {
                let Some(label) = map.next_key::<String>()? else {
                    return Err(de::Error::custom(format_args!(
                        "an empty threshold: {THRESHOLD_FORMS}"
                    )));
                };
                let values: IndexMap<Text, f64> = map.next_value()?;
                if map.next_key::<String>()?.is_some() {
                    return Err(de::Error::custom(format_args!(
                        "thresholds per value of one label only: {THRESHOLD_FORMS}"
                    )));
                }
                let values = values.into_iter().map(|(k, v)| (k.0, v)).collect();
                Ok(Threshold::PerLabel { label, values })
            }
        }
        deserializer.deserialize_any(Visit)
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        self.0 == other.0
    }
}
impl Eq for Text {}
impl std::hash::Hash for Text {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

/// A guard as written: its PromQL, or `{ expr, on }`.
pub(super) struct RawGuard {
    expr: String,
    on: Vec<String>,
}

impl<'de> Deserialize<'de> for RawGuard {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RawGuard, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Full {
            expr: String,
            #[serde(default)]
            on: Vec<String>,
        }
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = RawGuard;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a PromQL condition, or `{ expr: <PromQL>, on: [labels] }`")
            }
            fn visit_str<E: de::Error>(self, expr: &str) -> Result<RawGuard, E> {
                Ok(RawGuard {
                    expr: expr.to_owned(),
                    on: Vec::new(),
                })
            }
            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<RawGuard, M::Error> {
                let full = Full::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RawGuard {
                    expr: full.expr,
                    on: full.on,
                })
            }
        }
        deserializer.deserialize_any(Visit)
    }
}

impl TryFrom<RawGuard> for AlertGuard {
    type Error = String;

    fn try_from(raw: RawGuard) -> Result<AlertGuard, String> {
        if raw.expr.trim().is_empty() {
            return Err(
                "a guard is a PromQL condition, e.g. `deploy_lock_present == 1`".to_owned(),
            );
        }
        for label in &raw.on {
            super::raw::label_name("on", label)?;
        }
        Ok(AlertGuard {
            expr: raw.expr,
            on: raw.on,
        })
    }
}
