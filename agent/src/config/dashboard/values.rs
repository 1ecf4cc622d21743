//! The values of a panel of `dashboard:`, each checked against its bound: texts, family and
//! label names, matchers, windows, quantiles, the scale and the colour steps.

use super::{
    FamilyList, Invalid, LabelMatcher, MatchOp, Measure, Named, Side, SideDocument,
    ThresholdDocument, Thresholds, Window,
};
use crate::config::bounds::{
    Counts, DASHBOARD_FAMILIES, DASHBOARD_LABELS, DASHBOARD_QUANTILES, DASHBOARD_THRESHOLDS,
    DASHBOARD_WINDOWS, PANEL_WINDOW,
};
use crate::config::{LabelMatch, Matchers};
use crate::naming::{is_label_name, is_metric_name};

const COLOR_CHARS: usize = 32;
/// The largest factor `scale` takes, and the smallest in absolute value.
const MOST_SCALE: f64 = 1e12;
const LEAST_SCALE: f64 = 1e-12;

/// Text of at most `most` characters, not blank, without control characters.
pub(super) fn text(key: &str, value: &str, most: usize) -> Result<(), Invalid> {
    let problem = if value.trim().is_empty() {
        "is empty: write some text".to_owned()
    } else if value.chars().count() > most {
        format!("is longer than {most} characters")
    } else if value.chars().any(char::is_control) {
        "holds a control character (a line break?): write it on one line".to_owned()
    } else {
        return Ok(());
    };
    Err((key.to_owned(), problem))
}

pub(super) fn bounded(key: &str, value: u64, range: Counts) -> Result<u32, Invalid> {
    range
        .check(value)
        .map(|value| u32::try_from(value).unwrap_or(u32::MAX))
        .map_err(|message| (key.to_owned(), message))
}

fn count(key: &str, length: usize, range: Counts) -> Result<(), Invalid> {
    bounded(key, length as u64, range).map(drop)
}

/// The families of `rate`, `increase` or `value`, each with its key.
pub(super) fn named(
    panel: &str,
    field: &str,
    families: &FamilyList,
) -> Result<Vec<Named>, Invalid> {
    count(
        &format!("{panel}.{field}"),
        families.names.len(),
        DASHBOARD_FAMILIES,
    )?;
    let mut out: Vec<Named> = Vec::with_capacity(families.names.len());
    for (index, name) in families.names.iter().enumerate() {
        let key = if families.listed {
            format!("{field}[{index}]")
        } else {
            field.to_owned()
        };
        family_name(&format!("{panel}.{key}"), name)?;
        if out.iter().any(|named| named.name == *name) {
            return Err((
                format!("{panel}.{key}"),
                format!("`{name}` is listed twice"),
            ));
        }
        out.push(Named {
            name: name.clone(),
            key,
        });
    }
    Ok(out)
}

fn family_name(key: &str, name: &str) -> Result<(), Invalid> {
    if is_metric_name(name) {
        Ok(())
    } else {
        Err((
            key.to_owned(),
            format!(
                "{name:?} is not a family name: write it as /metrics shows it, e.g. `relay_jobs_processed_total`"
            ),
        ))
    }
}

/// A histogram's family name, written with or without `_bucket`.
pub(super) fn histogram(key: &str, name: &str) -> Result<Named, Invalid> {
    family_name(key, name)?;
    let base = name.strip_suffix("_bucket").unwrap_or(name);
    Ok(Named {
        name: base.to_owned(),
        key: "quantile".to_owned(),
    })
}

pub(super) fn side(key: &str, side: &SideDocument) -> Result<Side, Invalid> {
    let given: Vec<(Measure, &String)> = [
        (Measure::Rate, &side.rate),
        (Measure::Increase, &side.increase),
        (Measure::Value, &side.value),
    ]
    .into_iter()
    .filter_map(|(measure, family)| family.as_ref().map(|family| (measure, family)))
    .collect();
    let [(measure, family)] = given[..] else {
        return Err((
            key.to_owned(),
            "gives exactly one of rate, increase and value, e.g. `{ rate: relay_jobs_dead_total }`"
                .to_owned(),
        ));
    };
    let field = measure.key();
    family_name(&format!("{key}.{field}"), family)?;
    let relative = key.rsplit_once(".ratio.").map_or("", |(_, side)| side);
    Ok(Side {
        measure,
        family: Named {
            name: family.clone(),
            key: format!("ratio.{relative}.{field}"),
        },
        matchers: matchers(&format!("{key}.where"), side.matchers.as_ref())?,
    })
}

/// The matchers of `where` as PromQL writes them: a list of values becomes a regex of the
/// values escaped; regexes must compile.
pub(super) fn matchers(key: &str, given: Option<&Matchers>) -> Result<Vec<LabelMatcher>, Invalid> {
    let Some(given) = given else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(given.0.len());
    for (label, matcher) in &given.0 {
        let at = format!("{key}.{label}");
        if !is_label_name(label) {
            return Err((
                key.to_owned(),
                format!(
                    "{label:?} is not a label name (letters, digits and '_', not starting with a digit or '__')"
                ),
            ));
        }
        let alternatives = |values: &[String]| -> Result<String, Invalid> {
            if values.is_empty() || values.iter().any(String::is_empty) {
                return Err((at.clone(), "lists one or more non-empty values".to_owned()));
            }
            let escaped: Vec<String> = values
                .iter()
                .map(|v| crate::rules::promql::regex_escape(v))
                .collect();
            Ok(escaped.join("|"))
        };
        let (op, value) = match matcher {
            LabelMatch::Is(value) => (MatchOp::Equal, value.clone()),
            LabelMatch::Not(value) => (MatchOp::NotEqual, value.clone()),
            LabelMatch::AnyOf(values) if values.len() == 1 && !values[0].is_empty() => {
                (MatchOp::Equal, values[0].clone())
            }
            LabelMatch::AnyOf(values) => (MatchOp::Regex, alternatives(values)?),
            LabelMatch::NoneOf(values) => (MatchOp::NotRegex, alternatives(values)?),
            LabelMatch::Regex(regex) | LabelMatch::NotRegex(regex) => {
                regex::Regex::new(&format!("^(?:{regex})$")).map_err(|error| {
                    (
                        at.clone(),
                        format!("{regex:?} is not a regex Prometheus reads (RE2): {error}"),
                    )
                })?;
                let op = if matches!(matcher, LabelMatch::Regex(_)) {
                    MatchOp::Regex
                } else {
                    MatchOp::NotRegex
                };
                (op, regex.clone())
            }
        };
        out.push(LabelMatcher {
            label: label.clone(),
            op,
            value,
        });
    }
    Ok(out)
}

pub(super) fn label_list(key: &str, labels: &[String]) -> Result<Vec<String>, Invalid> {
    count(key, labels.len(), DASHBOARD_LABELS)?;
    for (index, label) in labels.iter().enumerate() {
        if !is_label_name(label) {
            return Err((
                format!("{key}[{index}]"),
                format!(
                    "{label:?} is not a label name (letters, digits and '_', not starting with a digit or '__'; not le or quantile)"
                ),
            ));
        }
        if labels[..index].contains(label) {
            return Err((
                format!("{key}[{index}]"),
                format!("`{label}` is listed twice"),
            ));
        }
    }
    Ok(labels.to_vec())
}

pub(super) fn window_list(key: &str, windows: &[String]) -> Result<Vec<Window>, Invalid> {
    count(key, windows.len(), DASHBOARD_WINDOWS)?;
    let mut out = Vec::with_capacity(windows.len());
    for (index, text) in windows.iter().enumerate() {
        let at = format!("{key}[{index}]");
        let window = if text == "auto" {
            Window::Auto
        } else {
            let duration = humantime::parse_duration(text).map_err(|error| {
                (
                    at.clone(),
                    format!("{text:?} is neither `auto` nor a duration ({error}): write e.g. 30m"),
                )
            })?;
            Window::Over(
                PANEL_WINDOW
                    .check(duration)
                    .map_err(|message| (at.clone(), message))?,
            )
        };
        if out.contains(&window) {
            return Err((at, format!("{text:?} is listed twice")));
        }
        out.push(window);
    }
    Ok(out)
}

pub(super) fn quantiles(key: &str, quantiles: Option<&[f64]>) -> Result<Vec<f64>, Invalid> {
    let Some(quantiles) = quantiles else {
        return Ok(vec![0.5, 0.95, 0.99]);
    };
    count(key, quantiles.len(), DASHBOARD_QUANTILES)?;
    for (index, quantile) in quantiles.iter().enumerate() {
        if !(*quantile > 0.0 && *quantile < 1.0) || quantiles[..index].contains(quantile) {
            return Err((
                format!("{key}[{index}]"),
                format!(
                    "{quantile} is not a new quantile between 0 and 1 (exclusive): write 0.95 for p95"
                ),
            ));
        }
    }
    Ok(quantiles.to_vec())
}

pub(super) fn scale_factor(key: &str, scale: f64) -> Result<f64, Invalid> {
    if scale.is_finite() && (LEAST_SCALE..=MOST_SCALE).contains(&scale.abs()) {
        Ok(scale)
    } else {
        Err((
            key.to_owned(),
            format!(
                "{scale} is out of range: a factor from {LEAST_SCALE:e} to {MOST_SCALE:e} in absolute value, e.g. 60 for a rate per minute"
            ),
        ))
    }
}

pub(super) fn thresholds(
    key: &str,
    steps: &[ThresholdDocument],
) -> Result<Option<Thresholds>, Invalid> {
    if steps.is_empty() {
        return Ok(None);
    }
    count(key, steps.len(), DASHBOARD_THRESHOLDS)?;
    let mut base = "green".to_owned();
    let mut out: Vec<(f64, String)> = Vec::with_capacity(steps.len());
    for (index, step) in steps.iter().enumerate() {
        let at = format!("{key}[{index}]");
        let color = &step.color;
        let usable = |c: char| c.is_ascii_alphanumeric() || c == '#' || c == '-';
        if color.is_empty() || color.len() > COLOR_CHARS || !color.chars().all(usable) {
            return Err((
                format!("{at}.color"),
                format!(
                    "{color:?} is not a colour: write a Grafana colour name such as `red` or `#e02f44`"
                ),
            ));
        }
        match step.value {
            None if index == 0 => base.clone_from(color),
            None => {
                return Err((
                    format!("{at}.value"),
                    "only the first step may leave out `value` (it is the base colour)".to_owned(),
                ));
            }
            Some(value)
                if value.is_finite() && out.last().is_none_or(|(last, _)| value > *last) =>
            {
                out.push((value, color.clone()));
            }
            Some(value) => {
                return Err((
                    format!("{at}.value"),
                    format!("{value} is not a finite value above the step before it"),
                ));
            }
        }
    }
    Ok(Some(Thresholds { base, steps: out }))
}
