use super::*;

#[test]
fn every_row_sits_at_its_familys_place() {
    for (index, row) in TABLE.iter().enumerate() {
        assert_eq!(row.family as usize, index, "{}", row.key);
    }
    for (index, row) in SETTINGS.iter().enumerate() {
        assert_eq!(row.setting as usize, index, "{}", row.key);
    }
    for (index, group) in Group::ALL.iter().enumerate() {
        assert_eq!(*group as usize, index);
    }
}

#[test]
fn the_defaults_are_valid() {
    assert_eq!(FamilyNames::default().check(), Ok(()));
}

#[test]
fn a_group_label_renames_the_label_of_its_families() {
    let mut names = FamilyNames::default();
    assert!(names.set(Group::Workers, "label", "name"));
    assert_eq!(names.label_names(Family::WorkerStatus), ["name"]);
    assert_eq!(
        names.label_names(Family::JobLastResult),
        ["job", "result", "reason"]
    );
    assert!(!names.set(Group::Http, "label", "x"));
}

#[test]
fn rejects_names_that_collide_and_names_and_labels_that_are_invalid() {
    let renamed = |family, name| {
        let mut names = FamilyNames::default();
        names.rename(family, name);
        names.check().unwrap_err()
    };
    let duplicate = |name: &str| NameError::DuplicateFamilyName { name: name.into() };
    // A histogram's sample name, a self-metric's name.
    let count = "heartwire_job_duration_seconds_count";
    assert_eq!(renamed(Family::JobLastRun, count), duplicate(count));
    let series = "heartwire_series";
    assert_eq!(
        renamed(Family::WorkerLastHeartbeat, series),
        duplicate(series)
    );
    assert!(matches!(
        renamed(Family::HttpRequests, "external.http"),
        NameError::InvalidFamilyName { .. }
    ));
    let mut names = FamilyNames::default();
    names.set_labels(Group::Jobs, vec![("job".into(), "x".into())]);
    assert!(matches!(
        names.check(),
        Err(NameError::InvalidConstLabel { .. })
    ));
}

#[test]
fn seed_000_names_with_a_constant_service_label_are_valid() {
    assert_eq!(FamilyNames::seed_000().check(), Ok(()));
}
