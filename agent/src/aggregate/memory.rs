//! What the aggregator keeps across a restart of the agent ([`Memory`]), and how it takes it
//! back. The state file (`crate::state`) writes and reads it; only the aggregator's thread
//! makes one ([`crate::aggregate::Handle::remember`]) or applies one (at start, before any line).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Aggregator;
pub use super::jobs::{JobMemory, OpenRun};
use crate::clock::Now;
pub use crate::health::job::HealthMemory;
pub use crate::health::worker::WorkerMemory;

/// The version of [`Memory`] this build writes and reads. A file of another version is set
/// aside, never guessed at.
pub const VERSION: u32 = 1;

/// Everything the agent remembers of its jobs and workers, in wall-clock Unix seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Memory {
    /// [`VERSION`] when written.
    pub version: u32,
    /// When it was taken, in Unix seconds.
    pub taken_at: f64,
    /// By job name.
    pub jobs: BTreeMap<String, JobMemory>,
    /// By worker name.
    pub workers: BTreeMap<String, WorkerMemory>,
}

impl Aggregator {
    /// What to keep of the jobs and workers at `now`.
    pub fn remember(&self, now: Now) -> Memory {
        Memory {
            version: VERSION,
            taken_at: now.unix_seconds(),
            jobs: self.jobs.remember(),
            workers: self.workers.remember(),
        }
    }

    /// Takes back what a previous run of the agent remembered, at `now`: before any line is
    /// applied, so that the first snapshot already holds the verdicts it left with.
    pub fn recall(&mut self, memory: &Memory, now: Now) {
        let mut tally = std::mem::take(&mut self.tally);
        self.jobs
            .recall(&memory.jobs, now, &mut self.accounting, &mut tally);
        self.tally = tally;
        self.workers
            .recall(&memory.workers, now, &mut self.accounting);
    }
}
