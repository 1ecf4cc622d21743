//! A parsed `/metrics` response: the samples of the Prometheus text format, looked up by name
//! and exact label set.

use std::fmt;

/// One sample line: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric name.
    pub name: String,
    /// The labels, sorted by name.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

/// Every sample of one scrape, and the text it came from.
#[derive(Debug, Clone)]
pub struct Scrape {
    /// The exposition as received.
    pub text: String,
    /// Its samples, in order.
    pub samples: Vec<Sample>,
}

impl Scrape {
    /// Parses an exposition in the Prometheus text format.
    ///
    /// # Panics
    /// On a line that is not a comment, blank or a well-formed sample: the exposition must
    /// always be valid.
    pub fn parse(text: String) -> Scrape {
        let samples = text
            .lines()
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| {
                parse_sample(line)
                    .unwrap_or_else(|| panic!("malformed sample line: {line:?}\n{text}"))
            })
            .collect();
        Scrape { text, samples }
    }

    /// The value of the sample `name` whose labels are exactly `labels` (in any order).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut wanted: Vec<(String, String)> = labels
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        wanted.sort();
        self.samples
            .iter()
            .find(|sample| sample.name == name && sample.labels == wanted)
            .map(|sample| sample.value)
    }

    /// The sum of the samples of `name` that carry every label in `labels` (and maybe others);
    /// 0 if there are none.
    pub fn total(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|sample| sample.name == name)
            .filter(|sample| {
                labels
                    .iter()
                    .all(|(key, value)| sample.labels.iter().any(|(k, v)| k == key && v == value))
            })
            .map(|sample| sample.value)
            .sum()
    }

    /// The lines of the exposition that mention `name`, for failure messages.
    pub fn lines_about(&self, name: &str) -> String {
        self.text
            .lines()
            .filter(|line| line.contains(name))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl fmt::Display for Scrape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_owned();
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(inner)?;
        labels = parsed;
        rest = after;
    }
    let mut fields = rest.split_whitespace();
    let value = parse_value(fields.next()?)?;
    labels.sort();
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// Parses `k="v",...}` and returns the labels and what follows the `}`.
fn parse_labels(mut text: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        text = text.trim_start_matches(',');
        if let Some(after) = text.strip_prefix('}') {
            return Some((labels, after));
        }
        let (key, after_key) = text.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after_key.char_indices();
        let end = loop {
            match chars.next()? {
                (index, '"') => break index,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (_, other) => value.push(other),
            }
        };
        labels.push((key.to_owned(), value));
        text = &after_key[end + 1..];
    }
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_found_by_name_and_exact_labels() {
        let scrape = Scrape::parse(
            "# HELP x_total X.\n# TYPE x_total counter\nx_total{b=\"2\",a=\"1\"} 7\nx_total{a=\"1\"} 3\ny 1.5e3\n".to_owned(),
        );
        assert_eq!(
            scrape.value("x_total", &[("a", "1"), ("b", "2")]),
            Some(7.0)
        );
        assert_eq!(scrape.value("x_total", &[("a", "1")]), Some(3.0));
        assert_eq!(scrape.value("y", &[]), Some(1500.0));
        assert_eq!(scrape.value("x_total", &[]), None);
    }

    #[test]
    fn escaped_label_values_are_unescaped() {
        let scrape = Scrape::parse("m{v=\"a\\\"b\\\\c\\nd,}\"} +Inf\n".to_owned());
        assert_eq!(
            scrape.value("m", &[("v", "a\"b\\c\nd,}")]),
            Some(f64::INFINITY)
        );
    }
}
