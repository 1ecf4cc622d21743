//! The JSON Schema (draft 2020-12) of the config file, derived from the config types with
//! `schemars`: `heartwire config schema` prints it, `docs/heartwire.schema.json` is a copy
//! editors read through the examples' `# yaml-language-server: $schema=` modeline, and the Helm
//! chart's `values.schema.json` embeds [`chart_config`] under `properties.config`.
//!
//! The descriptions are the types' doc comments. Types read by hand-written `Deserialize` impls
//! get hand-written schemas here that accept what the loader accepts. The schema may be looser
//! than the loader, never stricter: a config `heartwire check` accepts always validates, and the
//! loader stays the judge of what the types cannot say (one schedule per job, ranges across
//! keys, PromQL, regexes). `alerts:`, `alert_guards:`, `dashboard:` and the inline StatsD
//! mapping are checked by the schema only for their outline (maps and lists of objects).
//! The types follow YAML as the loader reads it: an empty key is an empty section, and a plain
//! scalar is a string where a string is expected ([`loosen_to_yaml`]); unknown keys, numbers,
//! booleans, enums and durations are checked as written.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, generate::SchemaSettings, json_schema};
use serde_json::Value;

use super::Document;
use super::bounds::{self, Counts};

/// The schema of the config file.
pub fn document() -> Value {
    let generator = SchemaSettings::draft2020_12()
        .for_deserialize()
        .into_generator();
    let mut root = generator.into_root_schema_for::<Document>().to_value();
    if let Value::Object(map) = &mut root {
        map.insert("title".to_owned(), Value::from("heartwire configuration"));
    }
    bound_counts(&mut root);
    loosen_to_yaml(&mut root);
    root
}

/// The counts whose range `heartwire check` enforces key by key (`bounds`), by definition and
/// property; durations keep only their pattern (a range of durations is no JSON number).
const COUNTS: [(&str, &str, Counts); 23] = [
    ("Udp", "receive_buffer_bytes", bounds::RECEIVE_BUFFER),
    ("Udp", "max_datagram_bytes", bounds::DATAGRAM),
    ("Udp", "batch_datagrams", bounds::BATCH),
    ("Tcp", "max_connections", bounds::CONNECTIONS),
    ("Tcp", "max_line_bytes", bounds::LINE),
    (
        "UnixDatagram",
        "receive_buffer_bytes",
        bounds::RECEIVE_BUFFER,
    ),
    ("UnixDatagram", "max_datagram_bytes", bounds::DATAGRAM),
    ("UnixDatagram", "batch_datagrams", bounds::BATCH),
    ("UnixStream", "max_connections", bounds::CONNECTIONS),
    ("UnixStream", "max_line_bytes", bounds::LINE),
    ("UnixStream", "max_frame_bytes", bounds::FRAME),
    ("IngestHttp", "max_body_bytes", bounds::BODY),
    ("Pipeline", "queue_batches", bounds::QUEUE),
    ("Limits", "max_series", bounds::MEMORY_CAP),
    ("Limits", "max_series_per_family", bounds::MEMORY_CAP),
    ("Limits", "max_family_labels", bounds::MEMORY_CAP),
    ("Limits", "max_open_starts_per_job", bounds::MEMORY_CAP),
    ("Limits", "max_open_starts", bounds::MEMORY_CAP),
    ("Limits", "max_set_members", bounds::MEMORY_CAP),
    ("Limits", "max_set_members_total", bounds::MEMORY_CAP),
    ("Limits", "max_cached_keys", bounds::MEMORY_CAP),
    ("Job", "failure_threshold", bounds::FAILURES),
    ("Buckets", "statsd", bounds::BUCKETS),
];

/// Adds the ranges of [`COUNTS`] (and the length of every bucket list) to the schema.
fn bound_counts(root: &mut Value) {
    let mut set = |definition: &str, property: &str, keys: [&str; 2], range: Counts| {
        if let Some(Value::Object(schema)) =
            root.pointer_mut(&format!("/$defs/{definition}/properties/{property}"))
        {
            schema.insert(keys[0].to_owned(), Value::from(range.min));
            schema.insert(keys[1].to_owned(), Value::from(range.max));
        }
    };
    for (definition, property, range) in COUNTS {
        if definition == "Buckets" {
            continue;
        }
        set(definition, property, ["minimum", "maximum"], range);
    }
    for list in ["statsd", "job_duration", "http_duration"] {
        set("Buckets", list, ["minItems", "maxItems"], bounds::BUCKETS);
    }
}

/// Widens the types to what the loader's YAML reader accepts, so that the schema is never
/// stricter than `heartwire check`: a key left empty (`listen:`, read as null) is an empty
/// section, list or map; a plain scalar (`x-tenant: 123`, `path: 2024`) is read as a string
/// where a string is expected. Strings with a pattern or a list of words (durations, modes,
/// enums) keep their type: the loader reads those only from strings.
fn loosen_to_yaml(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let constrained = ["pattern", "enum", "const"]
                .iter()
                .any(|key| map.contains_key(*key));
            if let Some(kind) = map.get_mut("type") {
                let mut kinds: Vec<Value> = match &*kind {
                    Value::Array(kinds) => kinds.clone(),
                    single => vec![single.clone()],
                };
                let has = |kinds: &[Value], name: &str| kinds.iter().any(|kind| kind == name);
                let mut extra = Vec::new();
                if has(&kinds, "object") || has(&kinds, "array") {
                    extra.push("null");
                }
                if has(&kinds, "string") && !constrained {
                    extra.extend(["number", "boolean", "null"]);
                }
                for name in extra {
                    if !has(&kinds, name) {
                        kinds.push(Value::from(name));
                    }
                }
                *kind = match <[Value; 1]>::try_from(kinds) {
                    Ok([single]) => single,
                    Err(kinds) => Value::Array(kinds),
                };
            }
            map.values_mut().for_each(loosen_to_yaml);
        }
        Value::Array(items) => items.iter_mut().for_each(loosen_to_yaml),
        _ => {}
    }
}

/// The schema as `heartwire config schema` prints it, ending in a newline.
pub fn document_text() -> String {
    pretty(&document())
}

/// The schema of the Helm chart's `config` value: the config file's, with its definitions
/// inside (Helm's validator follows no external reference) and `http` left to the chart, which
/// sets `http.address` from `metrics.port`.
pub fn chart_config() -> Value {
    let mut schema = document();
    let Value::Object(map) = &mut schema else {
        return schema;
    };
    for key in ["$schema", "title"] {
        map.remove(key);
    }
    // Helm drops a null value before validating, so only a map is meaningful here.
    map.insert("type".to_owned(), Value::from("object"));
    map.insert(
        "description".to_owned(),
        Value::from(
            "The agent's heartwire.yaml (`heartwire config schema`), checked at install; the agent checks it again at startup.",
        ),
    );
    if let Some(Value::Object(properties)) = map.get_mut("properties") {
        properties.insert(
            "http".to_owned(),
            serde_json::json!({
                "description": "Set by the chart: `http.address` comes from `metrics.port`.",
                "type": "object",
                "properties": {},
                "additionalProperties": false,
            }),
        );
    }
    retarget_refs(&mut schema, "#/$defs/", "#/properties/config/$defs/");
    schema
}

/// The chart's `config` schema as written into `values.schema.json`.
pub fn chart_config_text() -> String {
    pretty(&chart_config())
}

fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// Points every local `$ref` at the definitions' new place.
fn retarget_refs(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                match inner {
                    Value::String(target) if key == "$ref" => {
                        if let Some(name) = target.strip_prefix(from) {
                            *target = format!("{to}{name}");
                        }
                    }
                    _ => retarget_refs(inner, from, to),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                retarget_refs(item, from, to);
            }
        }
        _ => {}
    }
}

/// The humantime units `humantime_serde` reads, longest first.
const DURATION_UNITS: &str = "nanos|nsec|ns|usec|us|µs|millis|msec|ms|seconds|second|secs|sec|s|minutes|minute|mins|min|m|hours|hour|hrs|hr|h|days|day|d|weeks|week|wks|wk|w|months|month|M|years|year|yrs|yr|y";

/// A duration as `humantime_serde` reads it: `90s`, `10m`, `1h 30m`, `1.5h`.
#[derive(Debug)]
pub(crate) struct HumanDuration;

impl JsonSchema for HumanDuration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let number = r"[0-9][0-9\s]*(\.[0-9][0-9\s]*)?";
        json_schema!({
            "description": "A duration: numbers with units, such as `90s`, `10m`, `1h 30m` or `1.5h` (ns, us, ms, s, m, h, d, w, M, y and their long names).",
            "type": "string",
            "pattern": format!(r"^\s*({number}({DURATION_UNITS})\s*)+$"),
        })
    }
}

/// A map whose values are objects the loader checks one by one (`alerts:`, rows of
/// `dashboard:`, mapping rules): the schema says only that much.
fn map_of_objects(description: &str) -> Schema {
    json_schema!({
        "description": description,
        "type": "object",
        "additionalProperties": { "type": "object" },
    })
}

impl JsonSchema for super::FileMode {
    fn schema_name() -> Cow<'static, str> {
        "FileMode".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Unix permission bits in octal, such as \"0660\" (quoted, or YAML may read another number); `0o660` too.",
            "anyOf": [
                { "type": "string", "pattern": "^(0o)?[0-7]{1,4}$" },
                { "type": "integer", "minimum": 0 },
            ],
        })
    }
}

impl JsonSchema for super::health::ReadinessSetting {
    fn schema_name() -> Cow<'static, str> {
        "Readiness".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "`success` (or `true`): not ready while the job is stale; `completed`: not ready while no run ended in time; `false`: no effect.",
            "anyOf": [
                { "type": "boolean" },
                { "enum": ["success", "completed"] },
            ],
        })
    }
}

impl JsonSchema for super::Jobs {
    fn schema_name() -> Cow<'static, str> {
        "Jobs".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let job = generator.subschema_for::<super::Job>();
        json_schema!({
            "description": "The watched jobs by name.",
            "type": "object",
            "additionalProperties": job,
        })
    }
}

impl JsonSchema for super::Endpoint {
    fn schema_name() -> Cow<'static, str> {
        "Endpoint".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "An OTLP collector URL, `http://host:port[/path]` (plain http; `http://` is assumed when left out).",
            "type": "string",
            "minLength": 1,
        })
    }
}

impl JsonSchema for super::PromFileName {
    fn schema_name() -> Cow<'static, str> {
        "PromFileName".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A plain file name ending in `.prom` (no `/`, not hidden).",
            "type": "string",
            "pattern": r"^[^/.][^/]*\.prom$",
            "maxLength": 200,
        })
    }
}

impl JsonSchema for super::Alerts {
    fn schema_name() -> Cow<'static, str> {
        "Alerts".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        map_of_objects(
            "Extra alert rules by name; each is one kind of rule with its options (`heartwire check` checks them).",
        )
    }
}

impl JsonSchema for super::AlertGuards {
    fn schema_name() -> Cow<'static, str> {
        "AlertGuards".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Named PromQL conditions by name (`heartwire check` checks them).",
            "type": "object",
        })
    }
}

impl JsonSchema for super::DashboardDocument {
    fn schema_name() -> Cow<'static, str> {
        "Dashboard".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Extra rows of panels for `heartwire dashboard` (`heartwire check` checks the panels).",
            "type": "object",
            "properties": {
                "rows": {
                    "description": "Rows of panels, drawn after the rows heartwire derives; default none.",
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "title": { "type": "string" },
                            "panels": { "type": "array", "items": { "type": "object" } },
                        },
                        "required": ["title", "panels"],
                        "additionalProperties": false,
                    },
                },
            },
            "additionalProperties": false,
        })
    }
}

impl JsonSchema for super::MappingDocument {
    fn schema_name() -> Cow<'static, str> {
        "MappingDocument".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A statsd_exporter mapping document (`heartwire check` checks the rules).",
            "type": "object",
            "properties": {
                "defaults": { "description": "Defaults for every rule.", "type": "object" },
                "mappings": {
                    "description": "The rules: globs in order, then regexes in order; the first match wins.",
                    "type": "array",
                    "items": { "type": "object" },
                },
            },
            "additionalProperties": false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECTIONS: [&str; 17] = [
        "listen",
        "http",
        "pipeline",
        "shutdown",
        "limits",
        "buckets",
        "jobs",
        "workers",
        "defaults",
        "families",
        "alerts",
        "alert_guards",
        "dashboard",
        "otlp",
        "textfile",
        "state",
        "statsd",
    ];

    #[test]
    fn the_schema_is_draft_2020_12_json_naming_every_section() {
        let schema: Value = serde_json::from_str(&document_text()).unwrap();
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        assert_eq!(schema["additionalProperties"], false);
        let properties = schema["properties"].as_object().unwrap();
        let mut named: Vec<&str> = properties.keys().map(String::as_str).collect();
        let mut expected: Vec<&str> = SECTIONS.to_vec();
        named.sort_unstable();
        expected.sort_unstable();
        assert_eq!(named, expected);
        for (section, schema) in properties {
            assert!(
                schema.get("description").is_some(),
                "{section} has no description"
            );
        }
    }

    #[test]
    fn every_bounded_count_has_its_range() {
        let schema = document();
        for (definition, property, range) in COUNTS {
            let keys = if definition == "Buckets" {
                ["minItems", "maxItems"]
            } else {
                ["minimum", "maximum"]
            };
            let node = &schema["$defs"][definition]["properties"][property];
            assert_eq!(node[keys[0]], range.min, "{definition}.{property}");
            assert_eq!(node[keys[1]], range.max, "{definition}.{property}");
        }
    }

    #[test]
    fn durations_are_humantime_strings() {
        let pattern = document()["$defs"]["Duration"]["pattern"]
            .as_str()
            .unwrap()
            .to_owned();
        let regex = regex::Regex::new(&pattern).unwrap();
        for good in ["90s", "10m", "1h 30m", "1.5h", "7d", "250ms"] {
            assert!(humantime::parse_duration(good).is_ok(), "{good}");
            assert!(regex.is_match(good), "{good}");
        }
        for bad in ["", "90", "s", "10 minutes ago!", "-1s"] {
            assert!(!regex.is_match(bad), "{bad}");
        }
    }

    #[test]
    fn the_chart_variant_is_self_contained_and_leaves_http_to_the_chart() {
        let schema = chart_config();
        let text = schema.to_string();
        assert!(!text.contains("\"#/$defs/"), "a reference outside the node");
        assert!(text.contains("#/properties/config/$defs/"));
        assert_eq!(schema["properties"]["http"]["additionalProperties"], false);
        assert!(schema.get("$schema").is_none());
        assert_eq!(schema["type"], "object");
    }
}
