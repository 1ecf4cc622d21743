//! A real `redis-server` for the test, on a free loopback port.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Instant;

use super::{POLL, WORK_DEADLINE};

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    let probe = TcpListener::bind("127.0.0.1:0").expect("a free port");
    probe.local_addr().expect("its address").port()
}

/// A real `redis-server` on a free loopback port, its data in a temporary directory. Killed
/// when dropped.
pub struct Redis {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Redis {
    pub fn start() -> Redis {
        let mut failures = Vec::new();
        // Another process may take the port between the probe and Redis binding it.
        for _ in 0..3 {
            match Redis::try_start() {
                Ok(redis) => return redis,
                Err(failure) => failures.push(failure),
            }
        }
        panic!("redis-server did not start:\n{}", failures.join("\n---\n"));
    }

    fn try_start() -> Result<Redis, String> {
        let dir = tempfile::Builder::new()
            .prefix("hw-redis")
            .tempdir()
            .expect("a temporary directory");
        let port = free_port();
        let config = dir.path().join("redis.conf");
        let settings = format!(
            "port {port}\nbind 127.0.0.1\ndir {}\nlogfile {}\nsave \"\"\nappendonly no\n",
            dir.path().display(),
            dir.path().join("redis.log").display()
        );
        std::fs::write(&config, settings).expect("redis.conf is written");
        let child = Command::new("redis-server")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs");
        let mut redis = Redis { child, port, dir };
        let started = Instant::now();
        while redis.cli(&["PING"]) != "PONG" {
            if let Ok(Some(status)) = redis.child.try_wait() {
                return Err(format!("redis-server exited ({status}): {}", redis.log()));
            }
            if started.elapsed() > WORK_DEADLINE {
                return Err(format!("redis-server did not answer PING: {}", redis.log()));
            }
            thread::sleep(POLL);
        }
        Ok(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    /// `redis-cli COMMAND…`: its output, one reply element a line.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// Waits until `count` clients wait in XREADGROUP: every worker joined the group and blocks
    /// for jobs, so the first jobs go one to each.
    pub fn wait_for_blocked_readers(&self, count: usize) {
        let started = Instant::now();
        loop {
            let clients = self.cli(&["CLIENT", "LIST"]);
            let blocked = clients
                .lines()
                .filter(|client| {
                    client.contains(" flags=b ") && client.contains(" cmd=xreadgroup ")
                })
                .count();
            if blocked == count {
                return;
            }
            assert!(
                started.elapsed() < WORK_DEADLINE,
                "{blocked} of {count} workers wait for jobs:\n{clients}"
            );
            thread::sleep(POLL);
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
