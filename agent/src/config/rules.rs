//! The `alerts:` section: alert rules that `heartwire rules` prints beside the ones it derives
//! from `jobs:` and `workers:`. The agent itself does not evaluate them.
//!
//! Only what the config cannot say otherwise lives here: the failure ratio of a StatsD counter
//! whose label tells failed requests from the rest (seed 000's scraper providers).
//!
//! ```yaml
//! alerts:
//!   ScraperProviderHighFailureRate:
//!     failure_ratio:
//!       counter: vf_scraper_requests_total          # the family as /metrics names it
//!       failures: { outcome: [http_5xx, cf_block, timeout, network] }
//!       by: [provider]                              # one ratio per provider
//!     above: 0.2                                    # fires above 20 %
//!     for: 10m
//!     severity: warning
//! ```

use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;

use super::bounds::{ALERT_FOR, ALERT_WINDOW};
use crate::naming::{is_label_name, is_metric_name};

/// The `alerts:` map, by alert name, in config order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Alerts(pub IndexMap<String, Alert>);

/// One alert of `alerts:`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawAlert")]
pub struct Alert {
    /// What is measured: the share of failed requests.
    pub failure_ratio: FailureRatio,
    /// The alert fires while the ratio is above this, between 0 and 1 (`0.2` is 20 %).
    pub above: f64,
    /// How long the ratio must stay above before the alert fires; default `5m`, 0s to 1y.
    pub for_: Duration,
    /// The `severity` label; default `warning`.
    pub severity: String,
    /// The `summary` annotation; default: one generated from the ratio and the threshold.
    pub summary: Option<String>,
    /// The `description` annotation; default: one generated from the ratio and the threshold.
    pub description: Option<String>,
    /// The `runbook` annotation: what to look at first; default: none.
    pub runbook: Option<String>,
}

/// The failed share of a counter's increase: `rate(failed) / rate(all)` over `window`.
#[derive(Debug, Clone, PartialEq)]
pub struct FailureRatio {
    /// The counter's family name as `/metrics` shows it, e.g. `vf_scraper_requests_total` for
    /// the StatsD counter `vf.scraper.requests`.
    pub counter: String,
    /// Which series count as failures: label name → the values that mean failure (all labels
    /// must match).
    pub failures: IndexMap<String, Vec<String>>,
    /// One ratio per value of these labels; default none: one ratio over all series.
    pub by: Vec<String>,
    /// The rate window; default `5m`, 1s to 1y.
    pub window: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlert {
    failure_ratio: RawFailureRatio,
    above: f64,
    #[serde(default, rename = "for", with = "humantime_serde")]
    for_: Option<Duration>,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    runbook: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFailureRatio {
    counter: String,
    failures: IndexMap<String, Vec<String>>,
    #[serde(default)]
    by: Vec<String>,
    #[serde(default, with = "humantime_serde")]
    window: Option<Duration>,
}

/// The rate window and `for:` when the config gives none.
const DEFAULT_WINDOW: Duration = Duration::from_secs(300);

impl TryFrom<RawAlert> for Alert {
    type Error = String;

    fn try_from(raw: RawAlert) -> Result<Alert, String> {
        let ratio = raw.failure_ratio;
        if !is_metric_name(&ratio.counter) {
            return Err(format!(
                "`failure_ratio.counter` {:?} is not a metric name: write the family as /metrics shows it, e.g. `vf_scraper_requests_total`",
                ratio.counter
            ));
        }
        if ratio.failures.is_empty() {
            return Err("`failure_ratio.failures` names at least one label and its failure values, e.g. `{ outcome: [http_5xx, timeout] }`".to_owned());
        }
        for (label, values) in &ratio.failures {
            label_name("failure_ratio.failures", label)?;
            if values.is_empty() || values.iter().any(String::is_empty) {
                return Err(format!(
                    "`failure_ratio.failures.{label}` lists one or more non-empty values"
                ));
            }
        }
        for label in &ratio.by {
            label_name("failure_ratio.by", label)?;
        }
        if !(0.0..1.0).contains(&raw.above) {
            return Err(format!(
                "`above` ({}) is a ratio from 0 up to (not including) 1: write 0.2 for 20 %",
                raw.above
            ));
        }
        let window = ALERT_WINDOW
            .check(ratio.window.unwrap_or(DEFAULT_WINDOW))
            .map_err(|message| format!("`failure_ratio.window`: {message}"))?;
        let for_ = ALERT_FOR
            .check(raw.for_.unwrap_or(DEFAULT_WINDOW))
            .map_err(|message| format!("`for`: {message}"))?;
        let severity = raw.severity.unwrap_or_else(|| "warning".to_owned());
        if severity.trim().is_empty() {
            return Err("`severity` is a word such as `warning` or `critical`".to_owned());
        }
        Ok(Alert {
            failure_ratio: FailureRatio {
                counter: ratio.counter,
                failures: ratio.failures,
                by: ratio.by,
                window,
            },
            above: raw.above,
            for_,
            severity,
            summary: raw.summary,
            description: raw.description,
            runbook: raw.runbook,
        })
    }
}

fn label_name(key: &str, label: &str) -> Result<(), String> {
    if is_label_name(label) {
        Ok(())
    } else {
        Err(format!(
            "`{key}`: {label:?} is not a label name (letters, digits and '_', not starting with a digit or '__')"
        ))
    }
}

/// Whether `name` can name an alert: the metric name grammar, which every tool accepts.
fn is_alert_name(name: &str) -> bool {
    is_metric_name(name)
}

impl<'de> Deserialize<'de> for Alerts {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Alerts, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Alerts;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of alert names to their definitions")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> Result<Alerts, M::Error> {
                let mut alerts = IndexMap::new();
                while let Some(name) = map.next_key::<String>()? {
                    if !is_alert_name(&name) {
                        return Err(serde::de::Error::custom(format_args!(
                            "alert name {name:?} is not usable: use letters, digits and '_', e.g. ScraperProviderHighFailureRate"
                        )));
                    }
                    let alert = map.next_value::<Alert>().map_err(|error| {
                        if error.to_string().contains(&format!("alerts.{name}")) {
                            error
                        } else {
                            serde::de::Error::custom(format_args!("{name}: {error}"))
                        }
                    })?;
                    alerts.insert(name, alert);
                }
                Ok(Alerts(alerts))
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

#[cfg(test)]
mod tests {
    use super::super::from_str;
    use super::*;

    const SCRAPER: &str = "statsd:\n  mapping:\n    mappings:\n      - { match: vf.scraper.requests, name: vf_scraper_requests_total }\nalerts:\n  ScraperAllProvidersDown:\n    failure_ratio:\n      counter: vf_scraper_requests_total\n      failures: { outcome: [http_5xx, cf_block] }\n    above: 0.5\n    severity: critical\n";

    #[track_caller]
    fn refused(yaml: &str) -> String {
        from_str(yaml, "agent.yaml").unwrap_err().to_string()
    }

    #[test]
    fn a_failure_ratio_alert_takes_its_defaults() {
        let config = from_str(SCRAPER, "agent.yaml").unwrap();
        let alert = &config.live.alerts.0["ScraperAllProvidersDown"];
        assert_eq!(alert.failure_ratio.counter, "vf_scraper_requests_total");
        assert_eq!(
            alert.failure_ratio.failures["outcome"],
            ["http_5xx", "cf_block"]
        );
        assert!(alert.failure_ratio.by.is_empty());
        assert_eq!(alert.failure_ratio.window, Duration::from_secs(300));
        assert_eq!(alert.for_, Duration::from_secs(300));
        assert_eq!((alert.above, alert.severity.as_str()), (0.5, "critical"));
        assert_eq!(alert.summary, None);
    }

    #[test]
    fn bad_alerts_name_the_alert_the_key_and_the_fix() {
        let message = refused(&SCRAPER.replace("0.5", "20"));
        assert!(message.contains("ScraperAllProvidersDown"), "{message}");
        assert!(message.contains("write 0.2 for 20 %"), "{message}");
        let message = refused(&SCRAPER.replace("counter: vf_", "counter: vf."));
        assert!(message.contains("is not a metric name"), "{message}");
        let message = refused(&SCRAPER.replace("outcome:", "__outcome:"));
        assert!(message.contains("is not a label name"), "{message}");
        let message = refused(&SCRAPER.replace("[http_5xx, cf_block]", "[]"));
        assert!(
            message.contains("one or more non-empty values"),
            "{message}"
        );
        let message = refused(&SCRAPER.replace("severity:", "severty:"));
        assert!(message.contains("unknown field `severty`"), "{message}");
        let message = refused(&SCRAPER.replace("ScraperAllProvidersDown", "scraper down"));
        assert!(message.contains("alert name \"scraper down\""), "{message}");
        let message = refused(&SCRAPER.replace("    above: 0.5\n", ""));
        assert!(message.contains("missing field `above`"), "{message}");
    }
}
