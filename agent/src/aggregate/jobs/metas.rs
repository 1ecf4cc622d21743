//! The fixed parts of the job families, from the family table: built once, shared by every
//! snapshot. The verdict families are apart, since readers evaluate them.

use std::sync::Arc;

use crate::aggregate::builtin::Meta;
use crate::aggregate::families::{self, FamilyNames};

/// The families of the jobs' own state.
#[derive(Debug)]
pub(super) struct Metas {
    pub(super) runs: Meta,
    pub(super) duration: Meta,
    pub(super) last_success: Meta,
    pub(super) last_run: Meta,
    pub(super) running: Meta,
    pub(super) progress: Meta,
    pub(super) last_progress: Meta,
    pub(super) crashes: Meta,
    pub(super) last_result: Meta,
    pub(super) missed_runs: Meta,
    pub(super) schedule_info: Meta,
    pub(super) verdicts: Arc<VerdictMetas>,
}

/// The families computed at read time from a published state: they depend on `now`.
#[derive(Debug)]
pub(crate) struct VerdictMetas {
    pub(super) seconds_since_success: Meta,
    pub(super) stale: Meta,
    pub(super) deadline: Meta,
    pub(super) next_expected: Meta,
    pub(super) state: Meta,
    pub(super) consecutive_failures: Meta,
    pub(super) overrun_runs: Meta,
    pub(super) stalled: Meta,
}

impl Metas {
    pub(super) fn new(names: &FamilyNames) -> Metas {
        let meta = |family| Meta::of(names, family);
        Metas {
            runs: meta(families::Family::JobRuns),
            duration: meta(families::Family::JobDuration),
            last_success: meta(families::Family::JobLastSuccess),
            last_run: meta(families::Family::JobLastRun),
            running: meta(families::Family::JobRunning),
            progress: meta(families::Family::JobProgress),
            last_progress: meta(families::Family::JobLastProgress),
            crashes: meta(families::Family::JobCrashes),
            last_result: meta(families::Family::JobLastResult),
            missed_runs: meta(families::Family::JobMissedRuns),
            schedule_info: meta(families::Family::JobScheduleInfo),
            verdicts: Arc::new(VerdictMetas {
                seconds_since_success: meta(families::Family::JobSecondsSinceSuccess),
                stale: meta(families::Family::JobStale),
                deadline: meta(families::Family::JobDeadline),
                next_expected: meta(families::Family::JobNextExpected),
                state: meta(families::Family::JobState),
                consecutive_failures: meta(families::Family::JobConsecutiveFailures),
                overrun_runs: meta(families::Family::JobOverrunRuns),
                stalled: meta(families::Family::JobStalled),
            }),
        }
    }
}
