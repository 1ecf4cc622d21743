//! Checking one panel of `dashboard:`: its kind, the options that kind takes, and every bound.

use super::values::{
    bounded, histogram, label_list, matchers, named, quantiles, scale_factor, side, text,
    thresholds, window_list,
};
use super::{Aggregate, FamilyList, Invalid, Measure, Panel, PanelDocument, Query, Shape, Window};
use crate::config::bounds::{PANEL_HEIGHT, PANEL_WIDTH};

/// The longest title of a row or a panel.
pub(super) const TITLE_CHARS: usize = 200;
/// The longest description, legend, unit and `expr`.
const DESCRIPTION_CHARS: usize = 2000;
const LEGEND_CHARS: usize = 200;
const UNIT_CHARS: usize = 64;
const EXPR_CHARS: usize = 8000;
/// A panel's queries get refIds A to Z.
const MOST_QUERIES: usize = 26;

/// The kinds of panel, as keys.
const KINDS: [&str; 6] = ["rate", "increase", "value", "quantile", "ratio", "expr"];

impl PanelDocument {
    pub(super) fn resolve(&self, key: &str) -> Result<Panel, Invalid> {
        let at = |field: &str| format!("{key}.{field}");
        text(&at("title"), &self.title, TITLE_CHARS)?;
        if let Some(description) = &self.description {
            text(&at("description"), description, DESCRIPTION_CHARS)?;
        }
        if let Some(legend) = &self.legend {
            text(&at("legend"), legend, LEGEND_CHARS)?;
        }
        let query = self.query(key)?;
        let queries = query.count();
        if queries > MOST_QUERIES {
            return Err((
                key.to_owned(),
                format!(
                    "makes {queries} queries (families × windows × quantiles); a panel holds at most {MOST_QUERIES}: split it"
                ),
            ));
        }
        let unit = match &self.unit {
            Some(unit) => {
                text(&at("unit"), unit, UNIT_CHARS)?;
                unit.clone()
            }
            None => query.default_unit().to_owned(),
        };
        let width = bounded(&at("width"), self.width.unwrap_or(12), PANEL_WIDTH)?;
        let height = bounded(&at("height"), self.height.unwrap_or(8), PANEL_HEIGHT)?;
        Ok(Panel {
            key: key.to_owned(),
            title: self.title.clone(),
            description: self.description.clone(),
            query,
            unit,
            display: self.display,
            thresholds: thresholds(&at("thresholds"), &self.thresholds)?,
            legend: self.legend.clone(),
            width,
            height,
        })
    }

    /// The query of the one kind the panel gives, with the options that kind takes.
    fn query(&self, key: &str) -> Result<Query, Invalid> {
        let given: Vec<&str> = KINDS
            .into_iter()
            .zip([
                self.rate.is_some(),
                self.increase.is_some(),
                self.value.is_some(),
                self.quantile.is_some(),
                self.ratio.is_some(),
                self.expr.is_some(),
            ])
            .filter_map(|(kind, given)| given.then_some(kind))
            .collect();
        let [kind] = given[..] else {
            let said = if given.is_empty() {
                "none".to_owned()
            } else {
                given.join(" and ")
            };
            return Err((
                key.to_owned(),
                format!(
                    "a panel gives exactly one of rate, increase, value, quantile, ratio and expr; this one gives {said}"
                ),
            ));
        };
        self.options_fit(key, kind)?;
        let at = |field: &str| format!("{key}.{field}");
        let matchers = || matchers(&at("where"), self.matchers.as_ref());
        let series = |measure: Measure, families: &FamilyList| -> Result<Query, Invalid> {
            Ok(Query::Series {
                measure,
                families: named(key, measure.key(), families)?,
                matchers: matchers()?,
                shape: self.shape(key, measure, false)?,
            })
        };
        match (kind, &self.rate, &self.increase, &self.value) {
            ("rate", Some(families), _, _) => series(Measure::Rate, families),
            ("increase", _, Some(families), _) => series(Measure::Increase, families),
            ("value", _, _, Some(families)) if self.age => series(Measure::Age, families),
            ("value", _, _, Some(families)) => series(Measure::Value, families),
            _ => match (&self.quantile, &self.ratio, &self.expr) {
                (Some(family), _, _) => Ok(Query::Quantile {
                    family: histogram(&at("quantile"), family)?,
                    quantiles: quantiles(&at("quantiles"), self.quantiles.as_deref())?,
                    matchers: matchers()?,
                    shape: self.shape(key, Measure::Rate, false)?,
                }),
                (_, Some(ratio), _) => Ok(Query::Ratio {
                    numerator: side(&at("ratio.numerator"), &ratio.numerator)?,
                    denominator: side(&at("ratio.denominator"), &ratio.denominator)?,
                    shape: self.shape(key, Measure::Rate, true)?,
                }),
                (_, _, Some(expr)) => {
                    text(&at("expr"), expr, EXPR_CHARS)?;
                    Ok(Query::Expr(expr.clone()))
                }
                _ => Err((key.to_owned(), "no query".to_owned())),
            },
        }
    }

    /// Refuses an option the panel's kind does not take, saying what to do instead.
    fn options_fit(&self, key: &str, kind: &str) -> Result<(), Invalid> {
        let options = [
            ("where", self.matchers.is_some()),
            ("by", self.by.is_some()),
            ("aggregate", self.aggregate.is_some()),
            ("windows", self.windows.is_some()),
            ("quantiles", self.quantiles.is_some()),
            ("age", self.age),
            ("scale", self.scale.is_some()),
        ];
        let takes: &[&str] = match kind {
            "rate" | "increase" => &["where", "by", "aggregate", "windows", "scale"],
            "value" if self.age => &["where", "by", "aggregate", "age", "scale"],
            "value" => &["where", "by", "aggregate", "windows", "age", "scale"],
            "quantile" => &["where", "by", "windows", "quantiles", "scale"],
            "ratio" => &["by", "aggregate", "windows", "scale"],
            _ => &[],
        };
        let Some((option, _)) = options
            .iter()
            .find(|(option, given)| *given && !takes.contains(option))
        else {
            return Ok(());
        };
        let instead = match (kind, *option) {
            ("expr", _) => "; write it into the expression",
            ("ratio", "where") => "; give `where` to the numerator or the denominator",
            ("value", "windows") => "; an age is read as it is",
            ("quantile", "aggregate") => "; the buckets are always summed",
            _ => "",
        };
        let article = if matches!(kind, "increase" | "expr") {
            "an"
        } else {
            "a"
        };
        Err((
            format!("{key}.{option}"),
            format!("`{option}` does not apply to {article} `{kind}` panel{instead}"),
        ))
    }

    /// `by`, `aggregate`, `windows` and `scale`; `total` makes a missing `by` one total.
    fn shape(&self, key: &str, measure: Measure, total: bool) -> Result<Shape, Invalid> {
        let by = match &self.by {
            Some(labels) => Some(label_list(&format!("{key}.by"), labels)?),
            None if total => Some(Vec::new()),
            None => None,
        };
        let windows = match &self.windows {
            Some(windows) => window_list(&format!("{key}.windows"), windows)?,
            None => vec![Window::Auto],
        };
        let scale = self
            .scale
            .map(|scale| scale_factor(&format!("{key}.scale"), scale))
            .transpose()?;
        let aggregate = match (self.aggregate, measure) {
            (Some(aggregate), _) => aggregate,
            (None, Measure::Age) => Aggregate::Max,
            (None, _) => Aggregate::Sum,
        };
        Ok(Shape {
            by,
            aggregate,
            windows,
            scale,
        })
    }
}

impl Query {
    /// How many queries the panel makes: one per family, window and quantile.
    fn count(&self) -> usize {
        match self {
            Query::Series {
                families, shape, ..
            } => families.len() * shape.windows.len(),
            Query::Quantile {
                quantiles, shape, ..
            } => quantiles.len() * shape.windows.len(),
            Query::Ratio { shape, .. } => shape.windows.len(),
            Query::Expr(_) => 1,
        }
    }

    /// The unit when the config gives none.
    fn default_unit(&self) -> &'static str {
        match self {
            Query::Series {
                measure: Measure::Age,
                shape: Shape { scale: None, .. },
                ..
            } => "s",
            Query::Quantile {
                family,
                shape: Shape { scale: None, .. },
                ..
            } if family.name.ends_with("_seconds") => "s",
            Query::Ratio {
                shape: Shape { scale: None, .. },
                ..
            } => "percentunit",
            _ => "short",
        }
    }
}
