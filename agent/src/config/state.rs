//! The `state:` section: where the agent keeps what it knows of its jobs and workers across a
//! restart (the state file, `crate::state`).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// The state file. Off unless `path` is set.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct State {
    /// The file; default none: nothing is kept across a restart. Its directory must exist and
    /// be writable by the agent (a temporary file is written beside it and renamed over it).
    pub path: Option<PathBuf>,
    /// Time between writes; default 10s, 1s to 1d. It is also written once more on shutdown.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::config::schema::HumanDuration")]
    pub interval: Duration,
}

/// The interval when the config gives none.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

impl Default for State {
    fn default() -> State {
        State {
            path: None,
            interval: DEFAULT_INTERVAL,
        }
    }
}
