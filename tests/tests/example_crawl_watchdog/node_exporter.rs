//! node_exporter as a test peer: only its textfile collector, on a free loopback port.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use heartwire_tests::agent::{DEADLINE, Scrape};

const POLL: Duration = Duration::from_millis(20);

/// node_exporter with only its textfile collector, reading `directory`. Killed when dropped.
pub struct NodeExporter {
    child: Child,
    url: String,
    log: PathBuf,
}

impl NodeExporter {
    #[track_caller]
    pub fn start(binary: &Path, directory: &Path, log: PathBuf) -> NodeExporter {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(binary)
            .args(["--collector.disable-defaults", "--collector.textfile"])
            .arg(format!(
                "--collector.textfile.directory={}",
                directory.display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("node_exporter starts");
        NodeExporter {
            child,
            url: format!("http://127.0.0.1:{port}/metrics"),
            log,
        }
    }

    /// Its `/metrics`, once it answers.
    #[track_caller]
    pub fn scrape(&mut self, http: &reqwest::blocking::Client) -> Scrape {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("node_exporter exited ({status}):\n{}", self.log());
            }
            if let Ok(response) = http.get(&self.url).send()
                && response.status().is_success()
            {
                return Scrape::parse(response.text().unwrap());
            }
            assert!(
                started.elapsed() < DEADLINE,
                "node_exporter never answered:\n{}",
                self.log()
            );
            thread::sleep(POLL);
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NodeExporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
