//! The rows of the config's `dashboard:` section: each panel's queries, drawn as it asks, and
//! the check that they parse and read only families the config knows, with the type the query
//! needs (a rate of a counter, quantiles of a histogram).

use serde_json::{Value, json};

use super::{Board, legend, stat, state_timeline, target, timeseries};
use crate::aggregate::Kind;
use crate::config::{
    Display, LabelMatcher, Measure, Named, Panel, Query, Shape, Side, Thresholds, Window,
};
use crate::rules::promql::{self, by, number, quote};
use crate::rules::{Known, Source};

/// Draws the config's rows and their panels.
pub(super) fn config_rows(board: &mut Board, source: &Source) {
    for row in &source.dashboard.rows {
        board.row(&row.title);
        for panel in &row.panels {
            board.add(panel.width, panel.height, draw(panel));
        }
    }
}

/// Checks every panel of `dashboard:` against the families `known`: each family exists and
/// has the type its query needs, and each query is PromQL that reads known families only. The
/// error is the key at fault (`dashboard.rows[0].panels[2].rate`) and what is wrong.
pub(crate) fn check(source: &Source, known: &Known) -> Result<(), (String, String)> {
    for panel in source.dashboard.rows.iter().flat_map(|row| &row.panels) {
        for (family, wants) in families(&panel.query) {
            fits(known, &family.name, wants)
                .map_err(|message| (format!("{}.{}", panel.key, family.key), message))?;
        }
        let key = match panel.query {
            Query::Expr(_) => format!("{}.expr", panel.key),
            _ => panel.key.clone(),
        };
        for (expr, _) in queries(panel) {
            known
                .check(&promql::with_grafana_variables_set(&expr))
                .map_err(|message| (key.clone(), message))?;
        }
    }
    Ok(())
}

/// The families a query names, each with what is read of it (`None`: a histogram's buckets).
fn families(query: &Query) -> Vec<(&Named, Option<Measure>)> {
    match query {
        Query::Series {
            measure, families, ..
        } => families
            .iter()
            .map(|family| (family, Some(*measure)))
            .collect(),
        Query::Quantile { family, .. } => vec![(family, None)],
        Query::Ratio {
            numerator,
            denominator,
            ..
        } => [numerator, denominator]
            .into_iter()
            .map(|side| (&side.family, Some(side.measure)))
            .collect(),
        Query::Expr(_) => Vec::new(),
    }
}

/// Whether `name` is known and can be read as `wants` says.
fn fits(known: &Known, name: &str, wants: Option<Measure>) -> Result<(), String> {
    let Some(measure) = wants else {
        let bucket = format!("{name}_bucket");
        if known.has(&bucket) {
            return Ok(());
        }
        if known.has(name) {
            return Err(format!(
                "`{name}` is not a histogram (there is no `{bucket}`): `quantile` reads a histogram's buckets; draw a gauge with `value`"
            ));
        }
        return known.check(name);
    };
    known.check(name)?;
    let kind = known.kind(name);
    let sample = ["_bucket", "_sum", "_count"]
        .iter()
        .any(|suffix| name.ends_with(suffix));
    match (kind, measure) {
        (Some(Kind::Histogram), _) if !sample => Err(format!(
            "`{name}` is a histogram: draw its quantiles with `quantile: {name}`, or the rate of `{name}_count` for observations per second"
        )),
        (Some(Kind::Gauge), Measure::Rate | Measure::Increase) => Err(format!(
            "`{name}` is a gauge: its {} means nothing; draw it with `value: {name}`",
            measure.key()
        )),
        _ => Ok(()),
    }
}

/// A panel's queries, each with its legend, in the order they are drawn.
pub(crate) fn queries(panel: &Panel) -> Vec<(String, String)> {
    let legend = |shape: &Shape, prefix: &str, parts: &[&str]| {
        legend_of(panel.legend.as_deref(), shape, prefix, parts)
    };
    let mut out = Vec::new();
    match &panel.query {
        Query::Series {
            measure,
            families,
            matchers,
            shape,
        } => {
            let parts = distinct_parts(families);
            for (family, part) in families.iter().zip(&parts) {
                for window in &shape.windows {
                    let selected = select(&family.name, matchers);
                    out.push((
                        series(*measure, &selected, *window, shape),
                        legend(shape, "", &[part, &window_word(*window, shape)]),
                    ));
                }
            }
        }
        Query::Quantile {
            family,
            quantiles,
            matchers,
            shape,
        } => {
            let buckets = select(&format!("{}_bucket", family.name), matchers);
            for quantile in quantiles {
                for window in &shape.windows {
                    let name = format!("p{}", number((quantile * 1e6).round() / 1e4));
                    out.push((
                        quantile_of(*quantile, &buckets, *window, shape),
                        legend(shape, &name, &[&window_word(*window, shape)]),
                    ));
                }
            }
        }
        Query::Ratio {
            numerator,
            denominator,
            shape,
        } => {
            for window in &shape.windows {
                // A group with no numerator series (a site that never answered 2xx) reads 0,
                // not nothing: `or 0 * denominator` fills it in.
                let denominator = side_of(denominator, *window, shape);
                let over = format!(
                    "({} or 0 * {denominator}) / {denominator}",
                    side_of(numerator, *window, shape),
                );
                out.push((
                    scaled(shape.scale, over, true),
                    legend(shape, "", &[&window_word(*window, shape)]),
                ));
            }
        }
        Query::Expr(expr) => out.push((
            expr.clone(),
            panel.legend.clone().unwrap_or_else(|| "__auto".to_owned()),
        )),
    }
    out
}

/// `family{matchers}`, values quoted as PromQL reads them.
fn select(family: &str, matchers: &[LabelMatcher]) -> String {
    if matchers.is_empty() {
        return family.to_owned();
    }
    let all: Vec<String> = matchers
        .iter()
        .map(|m| format!("{}{}{}", m.label, m.op.as_str(), quote(&m.value)))
        .collect();
    format!("{family}{{{}}}", all.join(","))
}

fn window_text(window: Window) -> String {
    match window {
        Window::Auto => "$__rate_interval".to_owned(),
        Window::Over(duration) => promql::duration(duration),
    }
}

/// The rate, increase, value or age of the series `selected` selects, aggregated and scaled.
fn series(measure: Measure, selected: &str, window: Window, shape: &Shape) -> String {
    let range = format!("{selected}[{}]", window_text(window));
    let read = match (measure, window) {
        (Measure::Rate, _) => format!("rate({range})"),
        (Measure::Increase, _) => format!("increase({range})"),
        (Measure::Value | Measure::Age, Window::Auto) => selected.to_owned(),
        (Measure::Value | Measure::Age, Window::Over(_)) => format!("avg_over_time({range})"),
    };
    let combined = aggregated(shape, read);
    match measure {
        Measure::Age => scaled(shape.scale, format!("time() - {combined}"), true),
        _ => scaled(shape.scale, combined, false),
    }
}

fn quantile_of(quantile: f64, buckets: &str, window: Window, shape: &Shape) -> String {
    let rate = format!("rate({buckets}[{}])", window_text(window));
    let summed = match &shape.by {
        None => rate,
        Some(labels) => {
            let with_le: Vec<&str> = std::iter::once("le")
                .chain(labels.iter().map(String::as_str))
                .collect();
            format!("sum{} ({rate})", by(&with_le))
        }
    };
    scaled(
        shape.scale,
        format!("histogram_quantile({}, {summed})", number(quantile)),
        false,
    )
}

fn side_of(side: &Side, window: Window, shape: &Shape) -> String {
    let plain = Shape {
        scale: None,
        ..shape.clone()
    };
    series(
        side.measure,
        &select(&side.family.name, &side.matchers),
        window,
        &plain,
    )
}

fn aggregated(shape: &Shape, read: String) -> String {
    match &shape.by {
        None => read,
        Some(labels) => format!("{}{} ({read})", shape.aggregate.as_str(), by(labels)),
    }
}

/// `expr` times the scale; `compound` expressions (a difference, a ratio) in parentheses.
fn scaled(scale: Option<f64>, expr: String, compound: bool) -> String {
    match scale {
        None => expr,
        Some(scale) if compound => format!("{} * ({expr})", number(scale)),
        Some(scale) => format!("{} * {expr}", number(scale)),
    }
}

/// What tells a window's series apart when a panel has several: `(30m)`; nothing for `auto`.
fn window_word(window: Window, shape: &Shape) -> String {
    match window {
        _ if shape.windows.len() < 2 => String::new(),
        Window::Auto => String::new(),
        Window::Over(duration) => format!("({})", promql::duration(duration)),
    }
}

/// The part of each family's name that tells it from the others of the list
/// (`relay_jobs_enqueued_total`, `relay_jobs_dead_total` → `enqueued`, `dead`); nothing for one.
fn distinct_parts(families: &[Named]) -> Vec<String> {
    if families.len() < 2 {
        return vec![String::new(); families.len()];
    }
    let words: Vec<Vec<&str>> = families
        .iter()
        .map(|f| f.name.split('_').collect())
        .collect();
    let shortest = words.iter().map(Vec::len).min().unwrap_or(0);
    // Words in the same place (counted from the front, or from the back) in every name.
    let same_front = |at: usize| words.iter().all(|w| w[at] == words[0][at]);
    let same_back = |at: usize| {
        let first = &words[0];
        words
            .iter()
            .all(|w| w[w.len() - 1 - at] == first[first.len() - 1 - at])
    };
    let mut front = 0;
    while front + 1 < shortest && same_front(front) {
        front += 1;
    }
    let mut back = 0;
    while front + back + 1 < shortest && same_back(back) {
        back += 1;
    }
    words
        .iter()
        .zip(families)
        .map(|(w, family)| {
            let part = w[front..w.len() - back].join("_");
            if part.is_empty() {
                family.name.clone()
            } else {
                part
            }
        })
        .collect()
}

/// A series' legend: the config's, or the `by` labels; with what tells the panel's series
/// apart (a quantile in front, a family part or a window after).
fn legend_of(given: Option<&str>, shape: &Shape, prefix: &str, parts: &[&str]) -> String {
    let base = match (given, &shape.by) {
        (Some(given), _) => given.to_owned(),
        (None, Some(labels)) => {
            let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
            legend(&labels)
        }
        (None, None) => String::new(),
    };
    let pieces: Vec<&str> = std::iter::once(prefix)
        .chain(std::iter::once(base.as_str()))
        .chain(parts.iter().copied())
        .filter(|piece| !piece.is_empty())
        .collect();
    match (pieces.is_empty(), &shape.by) {
        (false, _) => pieces.join(" "),
        (true, None) => "__auto".to_owned(),
        (true, Some(_)) => "total".to_owned(),
    }
}

/// The panel as Grafana reads it.
fn draw(panel: &Panel) -> Value {
    let targets: Vec<Value> = queries(panel)
        .into_iter()
        .map(|(expr, legend)| target(expr, &legend))
        .collect();
    let description = panel
        .description
        .clone()
        .unwrap_or_else(|| described(&panel.query));
    let (title, unit) = (panel.title.as_str(), panel.unit.as_str());
    let mut drawn = match panel.display {
        Display::Timeseries => timeseries(title, &description, unit, targets),
        Display::Stat => stat(title, &description, unit, targets),
        Display::StateTimeline => state_timeline(title, &description, unit, targets, json!([])),
    };
    let defaults = &mut drawn["fieldConfig"]["defaults"];
    if !from_zero(&panel.query)
        && let Some(defaults) = defaults.as_object_mut()
    {
        defaults.remove("min");
    }
    if let Some(thresholds) = &panel.thresholds {
        defaults["thresholds"] = steps(thresholds);
        defaults["color"] = json!({ "mode": "thresholds" });
        match panel.display {
            Display::Timeseries => {
                defaults["custom"]["thresholdsStyle"] = json!({ "mode": "line" });
                defaults["color"] = json!({ "mode": "palette-classic" });
            }
            Display::Stat => drawn["options"]["colorMode"] = json!("background"),
            Display::StateTimeline => {}
        }
    }
    drawn
}

/// Whether every value of the query is 0 or more (a rate, an age, a quantile…), so that the
/// axis starts at 0.
fn from_zero(query: &Query) -> bool {
    let positive = |shape: &Shape| shape.scale.is_none_or(|scale| scale > 0.0);
    match query {
        Query::Series { measure, shape, .. } => *measure != Measure::Value && positive(shape),
        Query::Quantile { shape, .. } | Query::Ratio { shape, .. } => positive(shape),
        Query::Expr(_) => false,
    }
}

fn steps(thresholds: &Thresholds) -> Value {
    let mut steps = vec![json!({ "color": thresholds.base, "value": null })];
    steps.extend(
        thresholds
            .steps
            .iter()
            .map(|(value, color)| json!({ "color": color, "value": value })),
    );
    json!({ "mode": "absolute", "steps": steps })
}

/// A description said from the query, for panels the config gives none.
fn described(query: &Query) -> String {
    let list = |families: &[Named]| {
        let names: Vec<&str> = families.iter().map(|f| f.name.as_str()).collect();
        names.join(", ")
    };
    let (what, shape) = match query {
        Query::Series {
            measure,
            families,
            shape,
            ..
        } => {
            let what = match measure {
                Measure::Rate => format!("Per-second rate of {}", list(families)),
                Measure::Increase => format!("Increase of {}", list(families)),
                Measure::Value => format!("{} as reported", list(families)),
                Measure::Age => format!("Seconds since the time {} holds", list(families)),
            };
            (what, shape)
        }
        Query::Quantile {
            family,
            quantiles,
            shape,
            ..
        } => {
            let names: Vec<String> = quantiles.iter().map(|q| number(*q)).collect();
            let what = format!("Quantiles {} of {}", names.join(", "), family.name);
            (what, shape)
        }
        Query::Ratio {
            numerator,
            denominator,
            shape,
        } => {
            let side = |side: &Side| format!("{} of {}", side.measure.key(), side.family.name);
            let what = format!("The {} over the {}", side(numerator), side(denominator));
            (what, shape)
        }
        Query::Expr(_) => return "From `dashboard:` in heartwire's config.".to_owned(),
    };
    let grouped = match shape.by.as_deref() {
        None => String::new(),
        Some([]) => ", in total".to_owned(),
        Some(labels) => format!(", by {}", labels.join(", ")),
    };
    let scale = shape
        .scale
        .map(|scale| format!(", times {}", number(scale)))
        .unwrap_or_default();
    format!("{what}{grouped}{scale}. From `dashboard:` in heartwire's config.")
}
