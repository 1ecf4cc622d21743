//! The check of `alerts:` and `alert_guards:` against the config's families, run when a config
//! is loaded: every guard and every generated expression parses and names only known families,
//! every guard an alert names is defined, and counters' functions are not applied to gauges.

use super::custom::guarded;
use crate::aggregate::Kind;
use crate::config::AlertKind;
use crate::rules::{Known, Source};

/// The config key at fault and what is wrong, or `Ok`.
pub(crate) fn check(source: &Source, known: &Known) -> Result<(), (String, String)> {
    for (name, guard) in &source.guards.0 {
        known
            .check(&guard.expr)
            .map_err(|message| (format!("alert_guards.{name}"), message))?;
    }
    for (name, alert) in &source.alerts.0 {
        let at = |key: &str| format!("alerts.{name}.{key}");
        for (key, names) in [("unless", &alert.unless), ("and", &alert.and)] {
            if let Some(missing) = names
                .iter()
                .find(|guard| !source.guards.0.contains_key(*guard))
            {
                let defined: Vec<&str> = source.guards.0.keys().map(String::as_str).collect();
                let defined = if defined.is_empty() {
                    "none is defined".to_owned()
                } else {
                    format!("defined: {}", defined.join(", "))
                };
                return Err((
                    at(key),
                    format!(
                        "`{missing}` is no guard of `alert_guards:` ({defined}): define it there, e.g. `alert_guards: {{ {missing}: \"deploy_lock_present == 1\" }}`"
                    ),
                ));
            }
        }
        if let Some((key, family)) = family(&alert.kind) {
            known.check(family).map_err(|message| (at(&key), message))?;
            if matches!(alert.kind, AlertKind::Increase(_) | AlertKind::Rate(..))
                && known.kind(family) == Some(Kind::Gauge)
            {
                return Err((
                    at(&key),
                    format!(
                        "`{family}` is a gauge: `{}` reads every drop of a gauge as a counter reset; use `delta` for the change of a gauge",
                        alert.kind.key()
                    ),
                ));
            }
        }
        known
            .check(&guarded(alert, &source.guards))
            .map_err(|message| (at(alert.kind.key()), message))?;
    }
    Ok(())
}

/// The key naming the family a kind measures, and the family; `None` for `expr`.
fn family(kind: &AlertKind) -> Option<(String, &str)> {
    let key = kind.key();
    match kind {
        AlertKind::Threshold(selection)
        | AlertKind::Increase(crate::config::Windowed { selection, .. })
        | AlertKind::Rate(crate::config::Windowed { selection, .. }, _)
        | AlertKind::Delta(crate::config::Windowed { selection, .. }) => {
            Some((format!("{key}.family"), &selection.family))
        }
        AlertKind::NotUpdated(not_updated) => {
            let field = match not_updated.of {
                crate::config::Updated::Timestamp => "timestamp",
                crate::config::Updated::Value => "series",
            };
            Some((format!("{key}.{field}"), &not_updated.selection.family))
        }
        AlertKind::Absent(absent) => Some((format!("{key}.family"), &absent.family)),
        AlertKind::FailureRatio(ratio) => Some((format!("{key}.counter"), &ratio.counter)),
        AlertKind::Expr(_) => None,
    }
}
