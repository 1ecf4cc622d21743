use std::collections::BTreeMap;
use std::time::Duration;

use std::path::Path;

use super::*;
use crate::aggregate::memory::{HealthMemory, JobMemory, OpenRun, WorkerMemory};

fn keeper(dir: &Path) -> (StateKeeper, Registry) {
    let registry = Registry::new();
    let config = State {
        path: Some(dir.join("state.json")),
        interval: Duration::from_secs(10),
    };
    let keeper = StateKeeper::new(&config, &registry).unwrap().unwrap();
    (keeper, registry)
}

fn memory() -> Memory {
    let job = JobMemory {
        health: HealthMemory {
            watched_since: 1_700_000_000.0,
            last_success: Some(1_700_000_100.0),
            // Not every f64 survives serde_json's default parser: this one needs float_roundtrip.
            last_end: Some(1_796_456_533.574_072_1),
            last_signal: Some(1_700_000_300.0),
            consecutive_failures: 2,
        },
        last_result: Some(("error".to_owned(), "timeout".to_owned())),
        last_progress: None,
        ever_started: true,
        open_runs: vec![OpenRun {
            started: 1_700_000_300.0,
            id: Some("r1".to_owned()),
        }],
        recent_runs: Vec::new(),
        learner: Default::default(),
        missed_through: Some(1_700_000_060.0),
    };
    let worker = WorkerMemory {
        last_heartbeat: Some(1_700_000_250.0),
        heartbeat_ttl: Some(45.0),
        ended: None,
    };
    Memory {
        version: VERSION,
        taken_at: 1_700_000_400.0,
        jobs: BTreeMap::from([("nightly".to_owned(), job)]),
        workers: BTreeMap::from([("mailer".to_owned(), worker)]),
    }
}

fn failures(registry: &Registry, reason: &str) -> f64 {
    registry
        .gather()
        .iter()
        .filter(|family| family.name() == names::STATE_LOAD_FAILURES)
        .flat_map(|family| family.get_metric())
        .filter(|metric| metric.get_label()[0].value() == reason)
        .map(|metric| metric.get_counter().get_value())
        .sum()
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_written_state_reads_back_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let (keeper, registry) = keeper(dir.path());
    assert_eq!(keeper.load(), None, "a missing file is a first start");
    assert_eq!(failures(&registry, "corrupt"), 0.0);
    keeper.write(&memory(), &mut false).await;
    assert_eq!(keeper.load(), Some(memory()));
    assert_eq!(
        names_in(dir.path()),
        ["state.json"],
        "no temporary file is left"
    );
}

#[test]
fn a_corrupt_truncated_or_future_file_is_set_aside_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (keeper, registry) = keeper(dir.path());
    let path = dir.path().join("state.json");
    let whole = serde_json::to_string(&memory()).unwrap();
    for (text, reason) in [
        ("garbage{".to_owned(), "corrupt"),
        (whole[..whole.len() / 2].to_owned(), "corrupt"),
        (
            whole.replacen("\"version\":1", "\"version\":99", 1),
            "version",
        ),
        (whole.replacen("\"jobs\"", "\"jobz\"", 1), "corrupt"),
    ] {
        std::fs::write(&path, &text).unwrap();
        let before = failures(&registry, reason);
        assert_eq!(keeper.load(), None, "{text}");
        assert_eq!(
            failures(&registry, reason),
            before + 1.0,
            "{reason}: {text}"
        );
        assert!(!path.exists(), "set aside: {:?}", names_in(dir.path()));
    }
    let aside = names_in(dir.path());
    assert!(
        aside
            .iter()
            .all(|name| name.starts_with("state.json.corrupt-")
                || name.starts_with("state.json.version-")),
        "{aside:?}"
    );
}
