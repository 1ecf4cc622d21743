//! Job health: schedules, staleness verdicts, runs, workers and progress.
//!
//! Everything here is a pure function of (config, state, now): no I/O, no clock reads. The
//! aggregating task feeds events in and asks for verdicts at read time.

pub mod history;
pub mod job;
pub mod learn;
pub mod missed;
pub mod runs;
pub mod schedule;
pub mod worker;
mod zone;

#[cfg(test)]
mod proptests;
