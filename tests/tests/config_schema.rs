//! `heartwire config schema` against an independent validator (Python `jsonschema`, installed
//! in `tests/peers/.venv` by `.ci/install-peers.sh`): the embedded default, every example config
//! and the README's config snippets validate; invalid configs are refused by the schema and by
//! `heartwire check` alike. The checked-in copies (`docs/heartwire.schema.json`, the chart's
//! `properties.config`) are what the command prints.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use heartwire_tests::agent::heartwire;
use heartwire_tests::peers::{REQUIRE_PEERS, peers_dir, peers_required};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// What `heartwire config schema [ARGS]` prints.
fn schema_output(args: &[&str]) -> String {
    let output = heartwire()
        .args(["config", "schema"])
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// The venv's python, if it can import `jsonschema`; `None` (after a notice on stderr) when it
/// cannot, unless `HEARTWIRE_REQUIRE_PEERS=1` makes that a failure.
#[track_caller]
fn validator_or_skip() -> Option<PathBuf> {
    let python = peers_dir().join(".venv/bin/python3");
    let importable = Command::new(&python)
        .args(["-c", "import jsonschema"])
        .output()
        .is_ok_and(|output| output.status.success());
    if importable {
        return Some(python);
    }
    let reason = format!(
        "{} cannot import jsonschema: run .ci/install-peers.sh",
        python.display()
    );
    assert!(!peers_required(), "{reason} ({REQUIRE_PEERS}=1)");
    // Straight to stderr: the harness captures the output of a passing test.
    let notice = format!("\n********** SKIPPED: {reason} **********\n\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr(), notice.as_bytes());
    None
}

/// The errors Python's validator finds in each config, by name.
fn validate(python: &Path, configs: &BTreeMap<String, Value>) -> BTreeMap<String, Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("schema.json");
    let instances = dir.path().join("instances.json");
    std::fs::write(&schema, schema_output(&[])).unwrap();
    std::fs::write(&instances, serde_json::to_vec(configs).unwrap()).unwrap();
    let output = Command::new(python)
        .arg(peers_dir().join("python/validate_config_schema.py"))
        .args([&schema, &instances])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the validator failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A config as the loader reads it (YAML 1.2), as JSON.
fn read_yaml(text: &str) -> Value {
    serde_yaml::from_str(text).unwrap()
}

/// The README's ```yaml blocks that are configs: mappings whose keys are all config sections.
fn readme_configs(sections: &[String]) -> Vec<(String, Value)> {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let mut configs = Vec::new();
    for (index, block) in readme.split("```yaml\n").skip(1).enumerate() {
        let text = block.split("```").next().unwrap_or_default();
        let Ok(Value::Object(map)) = serde_yaml::from_str::<Value>(text) else {
            continue;
        };
        if map.keys().all(|key| sections.contains(key)) {
            configs.push((format!("README.md yaml block {index}"), Value::Object(map)));
        }
    }
    configs
}

#[test]
fn the_default_every_example_and_the_readme_snippets_validate() {
    let Some(python) = validator_or_skip() else {
        return;
    };
    let schema: Value = serde_json::from_str(&schema_output(&[])).unwrap();
    let sections: Vec<String> = schema["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let mut configs = BTreeMap::new();
    let default = repo().join("agent/src/config/default.yaml");
    configs.insert(
        "default.yaml".to_owned(),
        read_yaml(&std::fs::read_to_string(default).unwrap()),
    );
    let mut examples = 0;
    for entry in std::fs::read_dir(repo().join("examples")).unwrap() {
        let path = entry.unwrap().path().join("heartwire.yaml");
        if let Ok(text) = std::fs::read_to_string(&path) {
            configs.insert(path.display().to_string(), read_yaml(&text));
            examples += 1;
        }
    }
    assert!(examples >= 5, "only {examples} example configs found");
    let snippets = readme_configs(&sections);
    assert!(!snippets.is_empty(), "no config snippet found in README.md");
    configs.extend(snippets);
    let report = validate(&python, &configs);
    assert_eq!(report.len(), configs.len());
    let failures: Vec<_> = report
        .iter()
        .filter(|(_, errors)| !errors.is_empty())
        .collect();
    assert!(failures.is_empty(), "refused by the schema: {failures:#?}");
}

/// Invalid configs: each is refused by the schema and by `heartwire check`.
const INVALID: [(&str, &str); 6] = [
    ("an unknown key", "listen:\n  udp:\n    port: 8125\n"),
    ("an unknown section", "job:\n  nightly: { every: 1d }\n"),
    ("a wrong type", "pipeline:\n  queue_batches: many\n"),
    (
        "a bad readiness word",
        "jobs:\n  nightly: { every: 1d, readiness: sometimes }\n",
    ),
    (
        "a duration without a unit",
        "shutdown:\n  drain_timeout: 5\n",
    ),
    ("a count out of range", "pipeline:\n  queue_batches: 0\n"),
];

/// `heartwire check` of `text`, written to a file in `dir`.
fn check(dir: &Path, text: &str) -> std::process::Output {
    let path = dir.join("heartwire.yaml");
    std::fs::write(&path, text).unwrap();
    heartwire()
        .arg("check")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap()
}

#[test]
fn invalid_configs_are_refused_by_the_schema_and_by_check() {
    let dir = tempfile::tempdir().unwrap();
    for (what, text) in INVALID {
        let check = check(dir.path(), text);
        assert_eq!(check.status.code(), Some(64), "{what}: {check:?}");
    }
    let Some(python) = validator_or_skip() else {
        return;
    };
    let configs: BTreeMap<String, Value> = INVALID
        .iter()
        .map(|(what, text)| ((*what).to_owned(), read_yaml(text)))
        .collect();
    for (what, errors) in validate(&python, &configs) {
        assert!(!errors.is_empty(), "the schema accepts {what}");
    }
}

/// What the loader's YAML reader makes of a config, which the schema must not refuse: an empty
/// file, empty keys, plain scalars where strings are expected, unquoted modes and hex numbers.
const LENIENT: [(&str, &str); 6] = [
    ("an empty file", "# nothing but a comment\n"),
    ("empty sections", "listen:\nalerts:\nworkers:\n  api:\n"),
    ("an empty listener", "listen:\n  udp:\n"),
    (
        "a numeric header value",
        "otlp:\n  headers:\n    x-tenant: 123\n",
    ),
    (
        "an unquoted mode",
        "listen:\n  unix_stream:\n    mode: 0660\n",
    ),
    ("a hex count", "pipeline:\n  queue_batches: 0x100\n"),
];

#[test]
fn what_check_accepts_the_schema_accepts() {
    let dir = tempfile::tempdir().unwrap();
    for (what, text) in LENIENT {
        let check = check(dir.path(), text);
        assert!(check.status.success(), "{what}: {check:?}");
    }
    let Some(python) = validator_or_skip() else {
        return;
    };
    let configs: BTreeMap<String, Value> = LENIENT
        .iter()
        .map(|(what, text)| ((*what).to_owned(), read_yaml(text)))
        .collect();
    for (what, errors) in validate(&python, &configs) {
        assert!(errors.is_empty(), "the schema refuses {what}: {errors:?}");
    }
}

#[test]
fn the_checked_in_schema_is_what_the_command_prints() {
    let file = repo().join("docs/heartwire.schema.json");
    let checked_in = std::fs::read_to_string(&file).unwrap();
    assert!(
        checked_in == schema_output(&[]),
        "{} is stale: run `heartwire config schema > docs/heartwire.schema.json`",
        file.display()
    );
}

#[test]
fn every_example_config_names_the_schema_in_its_modeline() {
    for entry in std::fs::read_dir(repo().join("examples")).unwrap() {
        let path = entry.unwrap().path().join("heartwire.yaml");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let first = text.lines().next().unwrap_or_default();
        assert_eq!(
            first,
            "# yaml-language-server: $schema=../../docs/heartwire.schema.json",
            "{}",
            path.display()
        );
    }
}

#[test]
fn the_chart_embeds_the_config_schema() {
    let file = repo().join("helm/heartwire/values.schema.json");
    let values: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let generated: Value = serde_json::from_str(&schema_output(&["--chart"])).unwrap();
    assert!(
        values["properties"]["config"] == generated,
        "properties.config of {} is stale: regenerate it with the command in README.md (Configuration)",
        file.display()
    );
}
