//! The example's `worker.py` as a child process, and what it logged.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use heartwire_tests::agent::Agent;
use heartwire_tests::peers::{self, REQUIRE_PEERS};

use super::CHECK_TIMEOUT;
use super::redis::Redis;

/// `examples/uptime-worker/`: the worker, `enqueue.py`, the config and the venv.
pub fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/uptime-worker")
}

/// Whether `program` is on `PATH`.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// The example venv's Python, or `None` after a loud skip notice (a panic when peers are
/// required).
#[track_caller]
pub fn python_or_skip() -> Option<PathBuf> {
    let python = example_dir().join(".venv/bin/python3");
    let importable = Command::new(&python)
        .args(["-c", "import redis"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if importable && on_path("redis-server") && on_path("redis-cli") {
        return Some(python);
    }
    let missing = format!(
        "the uptime-worker example needs redis-server, redis-cli and {} with `redis`; run .ci/install-uptime-example.sh",
        python.display()
    );
    assert!(!peers::peers_required(), "{missing} ({REQUIRE_PEERS}=1)");
    // Straight to stderr: the harness captures the output of a passing test.
    let notice = format!("\n********** SKIPPED: {missing} **********\n\n");
    let _ = std::io::stderr().write_all(notice.as_bytes());
    None
}

/// One check as a worker logged it: `Job processed: <id> <site> <Up|Down> <status> <seconds>`.
#[derive(Debug, Clone)]
pub struct Check {
    pub id: String,
    pub site: String,
    pub status: String,
    pub seconds: f64,
}

/// A running `worker.py`, its stdout in a file. Killed when dropped, if still running.
pub struct Worker {
    pub name: String,
    pub child: Child,
    log: PathBuf,
}

impl Worker {
    pub fn start(python: &Path, number: usize, redis: &Redis, agent: &Agent) -> Worker {
        let name = format!("uptime-worker-{number}");
        let log = agent.dir().join(format!("{name}.log"));
        let output = std::fs::File::create(&log).expect("the worker's log");
        let child = Command::new(python)
            .arg(example_dir().join("worker.py"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("REDIS_URL", redis.url())
            .env("WORKER_NAME", &name)
            .env("HEARTWIRE_ADDR", agent.udp().to_string())
            .env("CHECK_TIMEOUT_SECONDS", CHECK_TIMEOUT)
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("the log, twice"))
            .stderr(output)
            .spawn()
            .expect("the worker starts");
        Worker { name, child, log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Every check the worker logged.
    pub fn checks(&self) -> Vec<Check> {
        self.log()
            .lines()
            .filter_map(|line| line.strip_prefix("Job processed: "))
            .map(|fields| {
                let fields: Vec<&str> = fields.split(' ').collect();
                let [id, site, state, status, seconds] = fields[..] else {
                    panic!("a processed job's log line has 5 fields: {fields:?}");
                };
                assert_eq!(state == "Up", status.starts_with('2'), "{fields:?}");
                let seconds = seconds.parse().expect("the seconds");
                Check {
                    id: id.into(),
                    site: site.into(),
                    status: status.into(),
                    seconds,
                }
            })
            .collect()
    }

    #[track_caller]
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited ({status}):\n{}", self.name, self.log());
        }
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).expect("a pid"));
        nix::sys::signal::kill(pid, signal).expect("the signal is delivered");
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
