//! Templates in a rule's `name` and label values: text with `$1`, `${1}`, `${name}` references
//! to the captures of its match, read like Go's `regexp.Expand` and parsed once.

use std::ops::Range;

/// Text with capture references, parsed once.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Template(pub(super) Box<[Piece]>);

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Piece {
    Text(Box<str>),
    Capture(usize),
}

impl Template {
    /// Parses `text`; `resolve` turns a reference's name into a capture index, or says why not.
    pub(super) fn parse(
        text: &str,
        resolve: &dyn Fn(&str) -> Result<usize, String>,
    ) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            literal.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let Some((name, consumed, braced)) = reference(after) else {
                // `$$` is a dollar sign; a `$` that starts no reference stays as written.
                literal.push('$');
                rest = after.strip_prefix('$').unwrap_or(after);
                continue;
            };
            let index = resolve(name).map_err(|why| explain(name, braced, &why))?;
            if !literal.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut literal).into()));
            }
            pieces.push(Piece::Capture(index));
            rest = &after[consumed..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal.into()));
        }
        Ok(Template(pieces.into()))
    }

    pub(super) fn expand(&self, name: &str, captures: &[Option<Range<usize>>]) -> String {
        let mut out = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Capture(index) => {
                    let range = captures.get(*index).cloned().flatten();
                    out.push_str(range.and_then(|r| name.get(r)).unwrap_or(""));
                }
            }
        }
        out
    }

    /// The literal text, for name checks.
    pub(super) fn texts(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|piece| match piece {
            Piece::Text(text) => Some(&**text),
            Piece::Capture(_) => None,
        })
    }
}

/// The reference after a `$`: its name, the bytes it spans, and whether it was braced.
fn reference(after: &str) -> Option<(&str, usize, bool)> {
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    if let Some(inner) = after.strip_prefix('{') {
        let end = inner.find('}')?;
        let name = &inner[..end];
        (!name.is_empty() && name.bytes().all(|b| word(&b))).then_some((name, end + 2, true))
    } else {
        let length = after.bytes().take_while(word).count();
        (length > 0).then(|| (&after[..length], length, false))
    }
}

fn explain(name: &str, braced: bool, why: &str) -> String {
    let digits = name.bytes().take_while(u8::is_ascii_digit).count();
    if !braced && digits > 0 && digits < name.len() {
        let (number, rest) = name.split_at(digits);
        return format!(
            "`${name}` refers to a capture named `{name}` (a reference takes every letter, digit \
             and `_` after the `$`): write `${{{number}}}{rest}`"
        );
    }
    format!("`${name}` refers to no capture: {why}")
}
