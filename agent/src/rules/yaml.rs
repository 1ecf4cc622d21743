//! A YAML writer for the fixed shape of rule files: maps, lists and strings, in block style.
//!
//! Only the config loader may parse YAML; writing this small shape needs no library. A string is
//! written plain when no YAML 1.1 or 1.2 reader can take it for anything but a string, single-quoted
//! when it is printable (PromQL reads best that way), and double-quoted with escapes otherwise.

use std::fmt::Write as _;

/// A YAML value: the shape rule files and PrometheusRule objects need.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    /// A string.
    Text(String),
    /// A sequence.
    List(Vec<Node>),
    /// A mapping, in writing order.
    Map(Vec<(String, Node)>),
}

impl Node {
    /// A string node.
    pub(crate) fn text(value: impl Into<String>) -> Node {
        Node::Text(value.into())
    }

    /// A mapping from `(key, value)` pairs.
    pub(crate) fn map<K: Into<String>>(entries: impl IntoIterator<Item = (K, Node)>) -> Node {
        Node::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
}

/// `node` as a YAML document body (a mapping or a list at the top level).
pub(crate) fn to_string(node: &Node) -> String {
    let mut out = String::new();
    write_block(&mut out, node, 0);
    out
}

fn write_block(out: &mut String, node: &Node, indent: usize) {
    match node {
        Node::Text(text) => {
            out.push_str(&scalar(text));
            out.push('\n');
        }
        Node::List(items) => {
            for item in items {
                pad(out, indent);
                out.push_str("- ");
                write_inline_start(out, item, indent + 2);
            }
        }
        Node::Map(entries) => {
            for (key, value) in entries {
                pad(out, indent);
                write_entry(out, key, value, indent);
            }
        }
    }
}

/// Writes `item` after a `- ` that already stands at `indent - 2`.
fn write_inline_start(out: &mut String, item: &Node, indent: usize) {
    match item {
        Node::Map(entries) if !entries.is_empty() => {
            for (index, (key, value)) in entries.iter().enumerate() {
                if index > 0 {
                    pad(out, indent);
                }
                write_entry(out, key, value, indent);
            }
        }
        Node::List(items) if !items.is_empty() => {
            out.push('\n');
            write_block(out, item, indent);
        }
        other => write_flow(out, other),
    }
}

fn write_entry(out: &mut String, key: &str, value: &Node, indent: usize) {
    out.push_str(&scalar(key));
    out.push(':');
    match value {
        Node::Map(entries) if !entries.is_empty() => {
            out.push('\n');
            write_block(out, value, indent + 2);
        }
        Node::List(items) if !items.is_empty() => {
            out.push('\n');
            write_block(out, value, indent + 2);
        }
        other => {
            out.push(' ');
            write_flow(out, other);
        }
    }
}

/// A scalar or an empty collection, on the current line.
fn write_flow(out: &mut String, node: &Node) {
    match node {
        Node::Text(text) => out.push_str(&scalar(text)),
        Node::List(_) => out.push_str("[]"),
        Node::Map(_) => out.push_str("{}"),
    }
    out.push('\n');
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// A string as a YAML scalar.
pub(crate) fn scalar(text: &str) -> String {
    if is_plain(text) {
        text.to_owned()
    } else if text.chars().all(is_printable) {
        format!("'{}'", text.replace('\'', "''"))
    } else {
        double_quoted(text)
    }
}

/// Words every reader takes as strings: a letter, then letters, digits, `_`, `-`, `.` or `/`
/// (so `monitoring.coreos.com/v1` stays plain), but none of the YAML 1.1 booleans or nulls; and
/// Prometheus durations such as `5m`, which no YAML schema reads as a number.
fn is_plain(text: &str) -> bool {
    const RESERVED: [&str; 11] = [
        "y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf",
    ];
    let mut chars = text.chars();
    let word = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c))
        && !RESERVED.contains(&text.to_ascii_lowercase().as_str());
    word || is_duration(text)
}

fn is_duration(text: &str) -> bool {
    let unit_at = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    unit_at > 0 && ["ms", "s", "m", "h", "d", "w"].contains(&&text[unit_at..])
}

/// Characters a single-quoted scalar may hold as they are. Line breaks, tabs and the characters
/// YAML 1.1 treats as line breaks (NEL, LS, PS) or excludes (BOM) need escapes.
fn is_printable(c: char) -> bool {
    !c.is_control() && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

fn double_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if !is_printable(c) => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_nested_maps_and_lists_in_block_style() {
        let node = Node::map([(
            "groups",
            Node::List(vec![Node::map([
                ("name", Node::text("heartwire-jobs")),
                (
                    "rules",
                    Node::List(vec![Node::map([
                        ("alert", Node::text("JobStale")),
                        ("expr", Node::text("up{job=\"a\"} == 0")),
                        ("for", Node::text("1m")),
                        ("labels", Node::map([("severity", Node::text("critical"))])),
                    ])]),
                ),
                ("empty", Node::List(Vec::new())),
            ])]),
        )]);
        assert_eq!(
            to_string(&node),
            "groups:\n  - name: heartwire-jobs\n    rules:\n      - alert: JobStale\n        expr: 'up{job=\"a\"} == 0'\n        for: 1m\n        labels:\n          severity: critical\n    empty: []\n"
        );
    }

    #[test]
    fn strings_a_reader_could_take_for_something_else_are_quoted() {
        for (text, written) in [
            ("critical", "critical"),
            ("monitoring.coreos.com/v1", "monitoring.coreos.com/v1"),
            ("90s", "90s"),
            ("yes", "'yes'"),
            ("Off", "'Off'"),
            ("0.2", "'0.2'"),
            ("1e3", "'1e3'"),
            ("", "''"),
            ("it's {{ $value }}", "'it''s {{ $value }}'"),
            ("- a", "'- a'"),
            ("two\nlines", "\"two\\nlines\""),
            ("tab\there \"q\" \\", "\"tab\\there \\\"q\\\" \\\\\""),
            ("bell\u{7}", "\"bell\\u0007\""),
            ("nel\u{85}", "\"nel\\u0085\""),
        ] {
            assert_eq!(scalar(text), written, "{text:?}");
        }
    }
}
