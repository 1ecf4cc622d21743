//! DogStatsD events (`_e{…}`) and service checks (`_sc|…`) (PROTOCOL.md section 5).

use super::statsd::{statsd_name, tags};
use super::{err, is_origin_field, printable, unix_seconds};
use crate::error::{ErrorKind, ParseError};
use crate::line::{AlertType, CheckStatus, Event, ServiceCheck, Tags};

/// Splits `d:123` into `("d:", "123")`; a field shorter than two bytes (or whose second byte is
/// inside a multi-byte character) has no key.
fn split_key(field: &str) -> (&str, &str) {
    match field.get(..2) {
        Some(key) => (key, &field[2..]),
        None => ("", field),
    }
}

/// `_e{<title length>,<text length>}:<title>|<text>[|field…]`; lengths are in bytes.
pub(super) fn event(rest: &str) -> Result<Event<'_>, ParseError> {
    const BAD: ParseError = err(
        ErrorKind::Malformed,
        "an event is _e{<title bytes>,<text bytes>}:<title>|<text>",
    );
    let (lengths, rest) = rest.split_once("}:").ok_or(BAD)?;
    let (title_len, text_len) = lengths.split_once(',').ok_or(BAD)?;
    let title_len: usize = title_len.parse().map_err(|_| BAD)?;
    let text_len: usize = text_len.parse().map_err(|_| BAD)?;
    let title = rest.get(..title_len).ok_or(BAD)?;
    let rest = rest
        .get(title_len..)
        .ok_or(BAD)?
        .strip_prefix('|')
        .ok_or(BAD)?;
    let text = rest.get(..text_len).ok_or(BAD)?;
    let rest = rest.get(text_len..).ok_or(BAD)?;
    if title.is_empty() {
        return Err(err(ErrorKind::MissingField, "an event needs a title"));
    }
    let mut event = Event {
        title,
        text,
        ..Default::default()
    };
    let fields = match rest.strip_prefix('|') {
        Some(fields) => fields,
        None if rest.is_empty() => "",
        None => return Err(BAD),
    };
    let mut tagged = false;
    for field in fields.split('|').filter(|f| !f.is_empty()) {
        match split_key(field) {
            ("d:", ts) => event.timestamp = Some(unix_seconds(ts)?),
            ("h:", host) => event.hostname = Some(printable(host, "h: needs a hostname")?),
            ("k:", key) => {
                event.aggregation_key = Some(printable(key, "k: needs an aggregation key")?)
            }
            ("p:", priority) => event.priority = Some(printable(priority, "p: is normal or low")?),
            ("s:", source) => {
                event.source_type = Some(printable(source, "s: needs a source type")?)
            }
            ("t:", alert) => event.alert_type = Some(alert_type(alert)?),
            _ if field.starts_with('#') => {
                if tagged {
                    return Err(err(ErrorKind::InvalidTag, "tags given twice"));
                }
                tagged = true;
                event.tags = tags(&field[1..])?;
            }
            _ if is_origin_field(field) => {}
            _ => event.unknown_fields = event.unknown_fields.saturating_add(1),
        }
    }
    Ok(event)
}

fn alert_type(text: &str) -> Result<AlertType, ParseError> {
    Ok(match text {
        "error" => AlertType::Error,
        "warning" => AlertType::Warning,
        "info" => AlertType::Info,
        "success" => AlertType::Success,
        _ => {
            return Err(err(
                ErrorKind::InvalidField,
                "t: is error, warning, info or success",
            ));
        }
    })
}

/// `_sc|<name>|<status>[|d:<unix>][|h:<host>][|#tags][|m:<message>]`; the message ends at the
/// next `|`, as the Datadog agent reads it (clients append `|c:` after it).
pub(super) fn service_check(rest: &str) -> Result<ServiceCheck<'_>, ParseError> {
    let mut parts = rest.splitn(3, '|');
    let name = statsd_name(parts.next().unwrap_or(""))?;
    let status = match parts.next() {
        Some("0") => CheckStatus::Ok,
        Some("1") => CheckStatus::Warning,
        Some("2") => CheckStatus::Critical,
        Some("3") => CheckStatus::Unknown,
        Some("") | None => {
            return Err(err(
                ErrorKind::MissingField,
                "a service check needs a status",
            ));
        }
        Some(_) => {
            return Err(err(
                ErrorKind::InvalidValue,
                "a service check status is 0, 1, 2 or 3",
            ));
        }
    };
    let mut check = ServiceCheck {
        name,
        status,
        timestamp: None,
        hostname: None,
        tags: Tags::EMPTY,
        message: None,
        unknown_fields: 0,
    };
    let mut tagged = false;
    for field in parts
        .next()
        .unwrap_or("")
        .split('|')
        .filter(|f| !f.is_empty())
    {
        match split_key(field) {
            ("d:", ts) => check.timestamp = Some(unix_seconds(ts)?),
            ("h:", host) => check.hostname = Some(printable(host, "h: needs a hostname")?),
            ("m:", message) => check.message = Some(message),
            _ if field.starts_with('#') => {
                if tagged {
                    return Err(err(ErrorKind::InvalidTag, "tags given twice"));
                }
                tagged = true;
                check.tags = tags(&field[1..])?;
            }
            _ if is_origin_field(field) => {}
            _ => check.unknown_fields = check.unknown_fields.saturating_add(1),
        }
    }
    Ok(check)
}
