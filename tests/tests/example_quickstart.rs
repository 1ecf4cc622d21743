//! The quickstart (`examples/quickstart/README.md`) works as written: every ```` ```sh ````
//! block runs, in order, in one bash session against the real agent, and every line of the
//! ```` ```text ```` block that follows it appears in what it printed, in order (`…` in an
//! expected line stands for any text).
//!
//! Two things differ from a newcomer's terminal, and nothing else: the first block, the release
//! build, is not run (the test puts the `heartwire` that cargo built for it first on `PATH`
//! instead), and the session runs in a temporary directory, so that the `heartwire.yaml` it
//! writes stays out of the repository. The agent runs on its default ports, as the README says:
//! when one is taken the test skips loudly, or fails with `HEARTWIRE_REQUIRE_PEERS=1`.
//!
//! The agent applies lines a moment after they arrive, so a block that only reads (`curl` and
//! `sleep`) is run again until its output appears; a block that sends is run once.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use heartwire_tests::agent;
use heartwire_tests::peers::{self, REQUIRE_PEERS};

/// What the README's first block must be: the build, which the test does not run.
const BUILD: &str = "cargo build --release -p heartwire\nexport PATH=\"$PWD/target/release:$PATH\"";
/// How long one block may run (the readiness block sleeps 11 s; curl retries for 10 s).
const BLOCK_DEADLINE: Duration = Duration::from_secs(60);
/// How long a read-only block is retried until its output appears.
const RETRY_DEADLINE: Duration = Duration::from_secs(30);
/// The line the session prints after each block, with the block's exit status.
const DONE: &str = "@@quickstart-block-done ";

/// One ```` ```sh ```` block and the output its ```` ```text ```` block promises.
#[derive(Debug)]
struct Block {
    /// The README line the block starts on, for failure messages.
    line: usize,
    code: String,
    expected: Vec<String>,
}

/// The README's shell blocks, each with the text block that follows it (if any).
fn blocks(markdown: &str) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::new();
    let mut lines = markdown.lines().enumerate();
    while let Some((number, line)) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let body: Vec<&str> = lines
            .by_ref()
            .map(|(_, line)| line)
            .take_while(|line| *line != "```")
            .collect();
        match info.trim() {
            "sh" => blocks.push(Block {
                line: number + 1,
                code: body.join("\n"),
                expected: Vec::new(),
            }),
            "text" => {
                let block = blocks.last_mut().expect("a text block follows a sh block");
                assert!(
                    block.expected.is_empty(),
                    "two text blocks after line {}",
                    block.line
                );
                block.expected = body.iter().map(|line| (*line).to_owned()).collect();
            }
            other => panic!(
                "README line {}: a ```{other} block; write sh or text",
                number + 1
            ),
        }
    }
    blocks
}

/// Whether `actual` is `expected`, where `…` in `expected` stands for any text.
fn line_matches(expected: &str, actual: &str) -> bool {
    let mut parts = expected.split('…');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = actual.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The expected lines missing from `output` (they must appear in order).
fn missing(expected: &[String], output: &[String]) -> Vec<String> {
    let mut output = output.iter();
    expected
        .iter()
        .filter(|want| !output.any(|line| line_matches(want, line)))
        .cloned()
        .collect()
}

/// A block that only reads, so that running it again changes nothing.
fn read_only(code: &str) -> bool {
    code.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .all(|line| {
            (line.starts_with("curl ") && !line.contains(" -X") && !line.contains(" -d"))
                || line.starts_with("sleep ")
        })
}

/// One bash session fed block by block, in its own process group, so that the agents it starts
/// in the background end with it.
struct Session {
    child: Child,
    stdin: ChildStdin,
    stdout: Receiver<String>,
    stderr: PathBuf,
}

impl Session {
    fn start(dir: &Path, bin: &Path) -> Session {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![bin.to_path_buf()];
        paths.extend(std::env::split_paths(&path));
        let stderr = dir.join("session.stderr");
        let mut child = Command::new("bash")
            .args(["--noprofile", "--norc"])
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::join_paths(paths).expect("a PATH"))
            .env("HOME", dir)
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("the session's stderr"))
            .spawn()
            .expect("bash starts");
        let stdin = child.stdin.take().expect("bash's stdin");
        let stdout = BufReader::new(child.stdout.take().expect("bash's stdout"));
        let (sender, receiver) = mpsc::channel();
        thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        Session {
            child,
            stdin,
            stdout: receiver,
            stderr,
        }
    }

    /// Runs `code`; its exit status and the lines it printed.
    fn run(&mut self, code: &str) -> (i32, Vec<String>) {
        // The leading newline ends a last output line that has none (curl's `ok`).
        let script = format!("{code}\nprintf '\\n{DONE}%s\\n' \"$?\"\n");
        self.stdin
            .write_all(script.as_bytes())
            .expect("the block is written to bash");
        let started = Instant::now();
        let mut output = Vec::new();
        loop {
            let left = BLOCK_DEADLINE.saturating_sub(started.elapsed());
            match self.stdout.recv_timeout(left) {
                Ok(line) => match line.strip_prefix(DONE) {
                    Some(status) => return (status.parse().expect("a status"), output),
                    None => output.push(line.trim_end().to_owned()),
                },
                Err(RecvTimeoutError::Timeout) => panic!(
                    "the block did not finish in {BLOCK_DEADLINE:?}:\n{code}\nit printed:\n{}\nstderr:\n{}",
                    output.join("\n"),
                    self.stderr()
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "bash exited during the block:\n{code}\nstderr:\n{}",
                    self.stderr()
                ),
            }
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // The whole group: bash and the agents it left running.
        let group = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).expect("a pid"));
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Runs `block`, again while it only reads and its output has not appeared yet, and asserts
/// that it succeeded and printed what the README says.
#[track_caller]
fn run_block(session: &mut Session, block: &Block) {
    let started = Instant::now();
    loop {
        let (status, output) = session.run(&block.code);
        let lacking = missing(&block.expected, &output);
        if status == 0 && lacking.is_empty() {
            return;
        }
        if !read_only(&block.code) || started.elapsed() > RETRY_DEADLINE {
            panic!(
                "README line {}: the block\n{}\nexited {status} and printed\n{}\nwithout\n{}\nsession stderr:\n{}",
                block.line,
                block.code,
                output.join("\n"),
                lacking.join("\n"),
                session.stderr()
            );
        }
        thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_quickstart_readme_runs_as_written_and_prints_what_it_shows() {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart/README.md");
    let readme =
        std::fs::read_to_string(&readme).unwrap_or_else(|e| panic!("{}: {e}", readme.display()));
    let blocks = blocks(&readme);
    let (build, blocks) = blocks.split_first().expect("the README has shell blocks");
    assert_eq!(build.code, BUILD, "the first block builds heartwire");
    assert!(
        blocks.iter().any(|block| !block.expected.is_empty()),
        "the README shows outputs"
    );

    if let Some(unmet) = heartwire_tests::peers::default_ports_unusable("the quickstart") {
        assert!(!peers::peers_required(), "{unmet} ({REQUIRE_PEERS}=1)");
        let notice = format!("\n********** SKIPPED: {unmet} **********\n\n");
        let _ = std::io::stderr().write_all(notice.as_bytes());
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("hw-quickstart")
        .tempdir()
        .expect("a temporary directory");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("the bin directory");
    std::os::unix::fs::symlink(agent::binary(), bin.join("heartwire")).expect("heartwire on PATH");
    let work = dir.path().join("work");
    std::fs::create_dir(&work).expect("the working directory");

    let mut session = Session::start(&work, &bin);
    for block in blocks {
        run_block(&mut session, block);
    }
}

#[test]
fn a_line_matches_with_ellipses_standing_for_any_text() {
    assert!(line_matches("ok", "ok"));
    assert!(!line_matches("ok", "ok!"));
    assert!(line_matches(
        "hello: stale, no success for … s",
        "hello: stale, no success for 11 s"
    ));
    assert!(line_matches("a … b … c", "a 1 b 2 c"));
    assert!(!line_matches("a … b … c", "a 1 c 2 b"));
    assert!(line_matches("…", "anything"));
    assert!(!line_matches("ab…ba", "aba"));
}

#[test]
fn expected_lines_must_appear_in_order() {
    let output: Vec<String> = ["one", "two", "three"].map(String::from).to_vec();
    assert!(missing(&["one".into(), "three".into()], &output).is_empty());
    assert_eq!(missing(&["three".into(), "one".into()], &output), ["one"]);
}

#[test]
fn only_curl_and_sleep_blocks_count_as_read_only() {
    assert!(read_only(
        "curl -s localhost:8127/metrics | grep x\n# a comment\nsleep 1"
    ));
    assert!(!read_only("echo 'job.ok a' | nc -u -w0 127.0.0.1 8125"));
    assert!(!read_only("curl -s -X POST localhost:8128/-/reload"));
}
