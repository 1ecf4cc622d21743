//! Finds where a dotted key (`jobs.forever.every`, `statsd.mapping.mappings[2].ttl`) is written
//! in a YAML text, so that an error found after parsing names its line and column as a syntax
//! error does.
//!
//! The text is read again as YAML events with their places (saphyr-parser), in block and flow
//! style alike, with quoted keys and comments handled by the YAML reader rather than by guesswork.
//! A key may itself hold dots (job names such as `crawl.daily` do): every way of splitting the
//! path along the keys present is tried, longest key first.

use saphyr_parser::{Event, Parser, Span};

/// A line and column, both counted from 1 (as serde_yaml places syntax errors).
pub type Mark = (usize, usize);

/// One node of the document, with only what locating needs.
#[derive(Debug)]
enum Node {
    Scalar(Mark),
    Sequence(Mark, Vec<Node>),
    Mapping(Mark, Vec<Entry>),
}

#[derive(Debug)]
struct Entry {
    key: String,
    at: Mark,
    value: Node,
}

/// Where `path` is in `text`: the value when it is a scalar (what is wrong is the value), else the
/// key. `None` when the text does not hold that key.
pub fn locate(text: &str, path: &str) -> Option<Mark> {
    let root = document(text)?;
    find(&root, path)
}

fn mark(span: &Span) -> Mark {
    (span.start.line(), span.start.col() + 1)
}

/// The first document's root node; `None` for an empty or unreadable text.
fn document(text: &str) -> Option<Node> {
    let mut events = Parser::new_from_str(text).map_while(Result::ok);
    loop {
        let (event, span) = events.next()?;
        match event {
            Event::StreamStart | Event::DocumentStart(_) | Event::Nothing => {}
            Event::StreamEnd | Event::DocumentEnd => return None,
            _ => return node(event, span, &mut events),
        }
    }
}

fn node<'a>(
    first: Event<'a>,
    span: Span,
    events: &mut impl Iterator<Item = (Event<'a>, Span)>,
) -> Option<Node> {
    let at = mark(&span);
    match first {
        Event::MappingStart(..) => {
            let mut entries = Vec::new();
            loop {
                let (event, span) = events.next()?;
                if event == Event::MappingEnd {
                    return Some(Node::Mapping(at, entries));
                }
                let key = match &event {
                    Event::Scalar(text, ..) => text.to_string(),
                    _ => String::new(),
                };
                let key_at = mark(&span);
                // A complex key (a mapping or list as a key) is read and never matches.
                node(event, span, events)?;
                let (event, span) = events.next()?;
                let value = node(event, span, events)?;
                entries.push(Entry {
                    key,
                    at: key_at,
                    value,
                });
            }
        }
        Event::SequenceStart(..) => {
            let mut items = Vec::new();
            loop {
                let (event, span) = events.next()?;
                if event == Event::SequenceEnd {
                    return Some(Node::Sequence(at, items));
                }
                items.push(node(event, span, events)?);
            }
        }
        Event::Scalar(..) | Event::Alias(_) => Some(Node::Scalar(at)),
        _ => None,
    }
}

/// Resolves `path` below `node`.
fn find(node: &Node, path: &str) -> Option<Mark> {
    match node {
        Node::Mapping(_, entries) => {
            let mut candidates: Vec<&Entry> = entries
                .iter()
                .filter(|entry| !entry.key.is_empty() && path.starts_with(entry.key.as_str()))
                .collect();
            candidates.sort_by_key(|entry| std::cmp::Reverse(entry.key.len()));
            candidates.into_iter().find_map(|entry| {
                let rest = &path[entry.key.len()..];
                if rest.is_empty() {
                    return Some(match entry.value {
                        Node::Scalar(at) => at,
                        _ => entry.at,
                    });
                }
                let rest = rest
                    .strip_prefix('.')
                    .or(rest.starts_with('[').then_some(rest))?;
                find(&entry.value, rest)
            })
        }
        Node::Sequence(_, items) => {
            // `[2]` or `2`, then the end, `.more` or `[more]`.
            let (digits, after) = match path.strip_prefix('[') {
                Some(inner) => inner.split_once(']')?,
                None => path.split_at(path.find(['.', '[']).unwrap_or(path.len())),
            };
            let item = items.get(digits.parse::<usize>().ok()?)?;
            match after.strip_prefix('.').unwrap_or(after) {
                "" => Some(at_of(item)),
                rest => find(item, rest),
            }
        }
        Node::Scalar(_) => None,
    }
}

fn at_of(node: &Node) -> Mark {
    match node {
        Node::Scalar(at) | Node::Sequence(at, _) | Node::Mapping(at, _) => *at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn at(text: &str, path: &str) -> Option<Mark> {
        locate(text, path)
    }

    #[test]
    fn finds_a_scalar_value_in_block_style() {
        let text = "# jobs\njobs:\n  forever:\n    every: 300000y   # too long\n";
        assert_eq!(at(text, "jobs.forever.every"), Some((4, 12)));
        assert_eq!(at(text, "jobs.forever"), Some((3, 3)), "a mapping: its key");
        assert_eq!(at(text, "jobs"), Some((2, 1)));
    }

    #[test]
    fn finds_a_scalar_value_in_flow_style() {
        let text = "jobs: { forever: { every: 300000y } }\n";
        assert_eq!(at(text, "jobs.forever.every"), Some((1, 27)));
        assert_eq!(at(text, "jobs.forever"), Some((1, 9)));
    }

    #[test]
    fn quoted_keys_and_keys_with_dots_are_found() {
        let text = "jobs:\n  \"bad name\": { every: 1m }\n  'crawl.daily':\n    every: 1d\n  crawl: { every: 2d }\n";
        assert_eq!(at(text, "jobs.bad name"), Some((2, 3)));
        assert_eq!(at(text, "jobs.crawl.daily.every"), Some((4, 12)));
        assert_eq!(at(text, "jobs.crawl.every"), Some((5, 19)));
    }

    #[test]
    fn list_items_are_found_by_index() {
        let text = "statsd:\n  mapping:\n    mappings:\n      - match: a.*\n        name: a\n      - match: b.*\n        ttl: 2y\n";
        assert_eq!(at(text, "statsd.mapping.mappings[1].ttl"), Some((7, 14)));
        assert_eq!(at(text, "statsd.mapping.mappings.1.ttl"), Some((7, 14)));
        assert_eq!(at(text, "statsd.mapping.mappings[0]"), Some((4, 9)));
        assert_eq!(at(text, "statsd.mapping.mappings[2].ttl"), None);
    }

    #[test]
    fn absent_keys_and_empty_texts_have_no_place() {
        assert_eq!(at("jobs: {}\n", "jobs.a.every"), None);
        assert_eq!(at("", "jobs"), None);
        assert_eq!(at("# only a comment\n", "jobs"), None);
        assert_eq!(at("jobs: [unclosed\n", "jobs"), None, "unreadable YAML");
    }
}
