//! Expectations about one `/metrics` scrape, written out by a test and checked all at once.
//!
//! The agent publishes its counters and its aggregated state separately, so a scrape taken
//! while lines are still being applied may hold some of the expected values and not others.
//! [`settle`] polls until every expectation holds in the same scrape, and otherwise fails with
//! a table of what was expected and what the last scrape said, line by line.

use std::fmt;
use std::thread;
use std::time::{Duration, Instant};

use crate::agent::{Agent, DEADLINE, Scrape};

/// How often [`settle`] scrapes again.
const POLL: Duration = Duration::from_millis(20);

/// The upper bounds of the default histogram buckets, as the exposition writes them in `le`.
pub const DEFAULT_LE: [&str; 12] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
];

/// What a sample should be.
#[derive(Debug, Clone, PartialEq)]
enum Want {
    /// Exactly this value.
    Exact(f64),
    /// This value up to float rounding (a sum of converted or weighted samples).
    Near(f64),
    /// A value in `[low, high]` (a timestamp taken by the agent).
    Within(f64, f64),
    /// No sample of this name with these labels.
    Absent,
    /// Exactly this many samples of this name, whatever their labels.
    SeriesCount(usize),
    /// Every expectation of at least one of these sets (outcomes that depend on an order the
    /// agent does not promise, such as between two connections).
    AnyOf(Vec<Vec<Expect>>),
}

/// One expectation: a sample name, its exact label set and what it should be.
#[derive(Debug, Clone, PartialEq)]
pub struct Expect {
    name: String,
    labels: Vec<(String, String)>,
    want: Want,
}

fn expect(name: &str, labels: &[(&str, &str)], want: Want) -> Expect {
    Expect {
        name: name.to_owned(),
        labels: labels
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect(),
        want,
    }
}

/// `name{labels}` is exactly `value`.
pub fn exact(name: &str, labels: &[(&str, &str)], value: f64) -> Expect {
    expect(name, labels, Want::Exact(value))
}

/// `name{labels}` is `value` up to a relative error of 1e-12.
pub fn near(name: &str, labels: &[(&str, &str)], value: f64) -> Expect {
    expect(name, labels, Want::Near(value))
}

/// `name{labels}` lies in `[low, high]`.
pub fn within(name: &str, labels: &[(&str, &str)], low: f64, high: f64) -> Expect {
    expect(name, labels, Want::Within(low, high))
}

/// No sample `name{labels}`.
pub fn absent(name: &str, labels: &[(&str, &str)]) -> Expect {
    expect(name, labels, Want::Absent)
}

/// Exactly `count` samples are named `name`.
pub fn series_count(name: &str, count: usize) -> Expect {
    expect(name, &[], Want::SeriesCount(count))
}

/// Every expectation of one of `options`, described by `what` in failure messages.
pub fn any_of(what: &str, options: Vec<Vec<Expect>>) -> Expect {
    expect(what, &[], Want::AnyOf(options))
}

/// A histogram with the default buckets: `cumulative` holds the count of every bucket in
/// [`DEFAULT_LE`] order (the last, `+Inf`, is also `_count`); `sum` is checked up to rounding.
pub fn histogram(
    name: &str,
    labels: &[(&str, &str)],
    cumulative: [f64; 12],
    sum: f64,
) -> Vec<Expect> {
    let mut expects: Vec<Expect> = DEFAULT_LE
        .iter()
        .zip(cumulative)
        .map(|(le, count)| {
            let mut with_le = labels.to_vec();
            with_le.push(("le", le));
            exact(&format!("{name}_bucket"), &with_le, count)
        })
        .collect();
    expects.push(exact(&format!("{name}_count"), labels, cumulative[11]));
    expects.push(near(&format!("{name}_sum"), labels, sum));
    expects
}

impl Expect {
    /// Why `scrape` does not meet this expectation, or `None` if it does.
    pub fn mismatch(&self, scrape: &Scrape) -> Option<String> {
        match &self.want {
            Want::AnyOf(options) => return any_mismatch(&self.name, options, scrape),
            Want::SeriesCount(count) => {
                let got = scrape
                    .samples
                    .iter()
                    .filter(|s| s.name == self.name)
                    .count();
                return (got != *count).then(|| format!("{self}: {got} series"));
            }
            _ => {}
        }
        let labels: Vec<(&str, &str)> = self
            .labels
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect();
        let actual = scrape.value(&self.name, &labels);
        let holds = match (&self.want, actual) {
            (Want::Exact(want), Some(got)) => got == *want,
            (Want::Near(want), Some(got)) => (got - want).abs() <= 1e-12 * want.abs().max(1.0),
            (Want::Within(low, high), Some(got)) => (*low..=*high).contains(&got),
            (Want::Absent, got) => got.is_none(),
            _ => false,
        };
        if holds {
            return None;
        }
        Some(match actual {
            Some(got) => format!("{self}: got {got}"),
            None => format!("{self}: no such sample"),
        })
    }
}

/// `None` if one option holds in `scrape`, else what each option missed.
fn any_mismatch(what: &str, options: &[Vec<Expect>], scrape: &Scrape) -> Option<String> {
    let mut missed = Vec::new();
    for (index, option) in options.iter().enumerate() {
        let option_missed = mismatches(scrape, option);
        if option_missed.is_empty() {
            return None;
        }
        missed.push(format!(
            "option {}: {}",
            index + 1,
            option_missed.join("; ")
        ));
    }
    Some(format!("{what}: no option holds; {}", missed.join(" | ")))
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{{", self.name)?;
        for (index, (key, value)) in self.labels.iter().enumerate() {
            let comma = if index == 0 { "" } else { "," };
            write!(f, "{comma}{key}={value:?}")?;
        }
        write!(f, "}} ")?;
        match &self.want {
            Want::Exact(value) => write!(f, "== {value}"),
            Want::Near(value) => write!(f, "≈ {value}"),
            Want::Within(low, high) => write!(f, "in [{low}, {high}]"),
            Want::Absent => write!(f, "absent"),
            Want::SeriesCount(count) => write!(f, "has {count} series"),
            Want::AnyOf(options) => write!(f, "one of {} options", options.len()),
        }
    }
}

/// Every expectation that `scrape` does not meet, one line each.
pub fn mismatches(scrape: &Scrape, expects: &[Expect]) -> Vec<String> {
    expects
        .iter()
        .filter_map(|expect| expect.mismatch(scrape))
        .collect()
}

/// Polls `/metrics` until every expectation holds in one scrape, and returns that scrape.
/// After [`DEADLINE`] it panics with every expectation the last scrape missed and the agent's
/// log.
#[track_caller]
pub fn settle(agent: &Agent, expects: &[Expect]) -> Scrape {
    let started = Instant::now();
    loop {
        let scrape = agent.scrape();
        let missed = mismatches(&scrape, expects);
        if missed.is_empty() {
            return scrape;
        }
        if started.elapsed() > DEADLINE {
            panic!(
                "after {DEADLINE:?}, {} of {} expectations do not hold:\n  {}\nagent log:\n{}",
                missed.len(),
                expects.len(),
                missed.join("\n  "),
                agent.log()
            );
        }
        thread::sleep(POLL);
    }
}

/// Asserts that `scrape` meets every expectation, listing every one it misses.
#[track_caller]
pub fn assert_all(scrape: &Scrape, expects: &[Expect]) {
    let missed = mismatches(scrape, expects);
    assert!(
        missed.is_empty(),
        "{} of {} expectations do not hold:\n  {}",
        missed.len(),
        expects.len(),
        missed.join("\n  ")
    );
}

/// The current Unix time in seconds, to bound the timestamps the agent takes.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}
