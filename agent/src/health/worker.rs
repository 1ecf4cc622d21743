//! A long-running worker's liveness, from heartbeats, clean stops and its session connection.
//!
//! This is what an app cannot do for itself: a crashed worker never sets its own status to 0.
//! heartwire does, when heartbeats stop for the worker's ttl, or at once when the Unix stream
//! session the worker heartbeats on closes.

use std::time::Duration;

use crate::clock::Now;

/// Why a worker is not up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkerState {
    /// A heartbeat arrived within its ttl.
    Up,
    /// No heartbeat since heartwire started watching.
    NeverSeen,
    /// Heartbeats stopped for longer than the ttl.
    Expired,
    /// The session connection it heartbeated on closed without `worker.stop`: a crash.
    Disconnected,
    /// It said `worker.stop`: a clean stop, not an outage.
    Stopped,
}

impl WorkerState {
    /// 1 when up, else 0: the `status` gauge.
    pub fn status(&self) -> u8 {
        u8::from(*self == WorkerState::Up)
    }

    /// The `reason`/`state` label value.
    pub fn as_str(&self) -> &'static str {
        match self {
            WorkerState::Up => "up",
            WorkerState::NeverSeen => "never_seen",
            WorkerState::Expired => "ttl_expired",
            WorkerState::Disconnected => "disconnected",
            WorkerState::Stopped => "stopped",
        }
    }
}

/// What a worker's health keeps across a restart of the agent (the state file).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WorkerMemory {
    /// The last heartbeat, in Unix seconds.
    pub last_heartbeat: Option<f64>,
    /// The ttl that heartbeat asked for (`ttl=`), in seconds.
    pub heartbeat_ttl: Option<f64>,
    /// `stopped` or `disconnected` when the worker ended so; none while heartbeats decide.
    pub ended: Option<String>,
}

/// What heartwire remembers of a worker.
#[derive(Debug, Clone)]
pub struct WorkerHealth {
    last_beat: Option<Now>,
    /// The ttl the last heartbeat asked for (`ttl=`), else the configured one applies.
    beat_ttl: Option<Duration>,
    ended: Option<WorkerState>,
}

impl Default for WorkerHealth {
    fn default() -> Self {
        WorkerHealth::new()
    }
}

impl WorkerHealth {
    /// A worker heartwire watches but has not heard from.
    pub fn new() -> WorkerHealth {
        WorkerHealth {
            last_beat: None,
            beat_ttl: None,
            ended: None,
        }
    }

    /// `hb <worker> [ttl=]`.
    pub fn beat(&mut self, now: Now, ttl: Option<Duration>) {
        self.last_beat = Some(now);
        self.beat_ttl = ttl;
        self.ended = None;
    }

    /// `worker.stop <worker>`.
    pub fn stop(&mut self) {
        self.ended = Some(WorkerState::Stopped);
    }

    /// What to keep across a restart.
    pub fn remember(&self) -> WorkerMemory {
        WorkerMemory {
            last_heartbeat: self.last_beat(),
            heartbeat_ttl: self.beat_ttl.map(|ttl| ttl.as_secs_f64()),
            ended: self.ended.map(|state| state.as_str().to_owned()),
        }
    }

    /// The health a previous run of the agent remembered, on this process's clocks at `now`:
    /// a worker is up again until its last heartbeat is older than its ttl, and a stopped or
    /// disconnected worker stays so.
    pub fn recall(memory: &WorkerMemory, now: Now) -> WorkerHealth {
        let ended = match memory.ended.as_deref() {
            Some("stopped") => Some(WorkerState::Stopped),
            Some("disconnected") => Some(WorkerState::Disconnected),
            _ => None,
        };
        WorkerHealth {
            last_beat: memory.last_heartbeat.map(|unix| now.earlier_at(unix)),
            beat_ttl: memory
                .heartbeat_ttl
                .and_then(|ttl| Duration::try_from_secs_f64(ttl).ok()),
            ended,
        }
    }

    /// The session the worker heartbeated on closed. A stopped worker stays stopped.
    pub fn disconnect(&mut self) {
        if self.ended.is_none() {
            self.ended = Some(WorkerState::Disconnected);
        }
    }

    /// When the last heartbeat arrived, as a unix timestamp.
    pub fn last_beat(&self) -> Option<f64> {
        self.last_beat.map(|beat| beat.unix_seconds())
    }

    /// The state at `now` for a worker configured with `ttl`.
    pub fn state(&self, ttl: Duration, now: Now) -> WorkerState {
        if let Some(ended) = self.ended {
            return ended;
        }
        match self.last_beat {
            None => WorkerState::NeverSeen,
            Some(beat)
                if now.mono.saturating_duration_since(beat.mono) < self.beat_ttl.unwrap_or(ttl) =>
            {
                WorkerState::Up
            }
            Some(_) => WorkerState::Expired,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(30);

    #[test]
    fn a_worker_is_up_while_heartbeats_arrive_within_the_ttl() {
        let t0 = Now::at_unix_seconds(1_700_000_000.0);
        let mut worker = WorkerHealth::new();
        assert_eq!(worker.state(TTL, t0), WorkerState::NeverSeen);
        worker.beat(t0, None);
        assert_eq!(
            worker.state(TTL, t0.advance(Duration::from_secs(29))),
            WorkerState::Up
        );
        assert_eq!(
            worker.state(TTL, t0.advance(TTL)),
            WorkerState::Expired,
            "a crashed worker goes to 0 by itself"
        );
        assert_eq!(worker.state(TTL, t0.advance(TTL)).status(), 0);
        worker.beat(t0.advance(TTL), None);
        assert_eq!(worker.state(TTL, t0.advance(TTL)).status(), 1);
        assert_eq!(worker.last_beat(), Some(1_700_000_030.0));
    }

    #[test]
    fn a_heartbeat_ttl_overrides_the_configured_one() {
        let t0 = Now::at_unix_seconds(1_700_000_000.0);
        let mut worker = WorkerHealth::new();
        worker.beat(t0, Some(Duration::from_secs(120)));
        assert_eq!(
            worker.state(TTL, t0.advance(Duration::from_secs(100))),
            WorkerState::Up
        );
    }

    #[test]
    fn a_closed_session_is_a_crash_but_a_stop_is_not() {
        let t0 = Now::at_unix_seconds(1_700_000_000.0);
        let mut crashed = WorkerHealth::new();
        crashed.beat(t0, None);
        crashed.disconnect();
        assert_eq!(
            crashed.state(TTL, t0),
            WorkerState::Disconnected,
            "down at once, not after the ttl"
        );
        let mut stopped = WorkerHealth::new();
        stopped.beat(t0, None);
        stopped.stop();
        stopped.disconnect();
        assert_eq!(stopped.state(TTL, t0), WorkerState::Stopped);
        assert_eq!(stopped.state(TTL, t0).status(), 0);
        stopped.beat(t0.advance(TTL), None);
        assert_eq!(
            stopped.state(TTL, t0.advance(TTL)),
            WorkerState::Up,
            "a restarted worker is up again"
        );
    }
}
