//! The textfile writer: every `interval`, the exposition of `/metrics` replaces
//! `directory/file_name` for node_exporter's textfile collector.
//!
//! node_exporter reads `*.prom` files whenever it is scraped, with no locking, so a file must
//! never be seen half-written. Each write goes to a temporary file in the same directory (same
//! file system, so the rename is atomic; its name does not end in `.prom`, so node_exporter
//! skips it), is synced to disk, made world-readable (node_exporter usually runs as another
//! user) and renamed over the old file; the directory is synced too, so that the rename
//! survives a crash. The file is replaced, never truncated: a reader holding the old one keeps
//! reading a complete old file.

use std::fs::{File, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use prometheus::Registry;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use super::{ExportError, Source};
use crate::clock::Now;
use crate::config::Textfile;
use crate::telemetry::export::TextfileCounters;

/// Name prefix of the temporary files.
const TEMPORARY_PREFIX: &str = ".heartwire-";
const TEMPORARY_SUFFIX: &str = ".tmp";

/// Writes the exposition to one file, periodically.
#[derive(Debug)]
pub struct TextfileWriter {
    directory: PathBuf,
    path: PathBuf,
    interval: Duration,
    source: Source,
    counters: TextfileCounters,
    failing: bool,
}

impl TextfileWriter {
    /// A writer for `config`. Fails, naming the directory, if a file cannot be created there:
    /// better at startup than as a silent gap in node_exporter. Registers its self-metrics on
    /// `registry`.
    pub fn new(
        config: &Textfile,
        source: Source,
        registry: &Registry,
    ) -> Result<TextfileWriter, ExportError> {
        let directory = config.directory.clone();
        check_directory(&directory).map_err(|source| ExportError::Textfile {
            directory: directory.clone(),
            source,
        })?;
        let counters = TextfileCounters::register(registry)?;
        Ok(TextfileWriter {
            path: directory.join(config.file_name.as_str()),
            directory,
            interval: config.interval,
            source,
            counters,
            failing: false,
        })
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes at once, then every `interval` until `stop` is set, then once more with the state
    /// at shutdown.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => self.write().await,
                _ = crate::ingest::stopped(&mut stop) => break,
            }
        }
        self.write().await;
    }

    async fn write(&mut self) {
        let mut body = Vec::with_capacity(64 * 1024);
        match self
            .source
            .exposition
            .textfile(&self.source.handle, &mut body)
        {
            None => return,
            Some(Err(error)) => {
                self.failed(&error);
                return;
            }
            Some(Ok(())) => {}
        }
        let (directory, path) = (self.directory.clone(), self.path.clone());
        let written = tokio::task::spawn_blocking(move || replace(&directory, &path, &body)).await;
        match written {
            Ok(Ok(())) => {
                self.counters.success.inc();
                self.counters.last_success.set(Now::read().unix_seconds());
                if std::mem::take(&mut self.failing) {
                    tracing::info!(path = %self.path.display(), "the textfile is written again");
                }
            }
            Ok(Err(error)) => self.failed(&error),
            Err(error) => self.failed(&io::Error::other(error)),
        }
    }

    fn failed(&mut self, error: &io::Error) {
        self.counters.failure.inc();
        if !std::mem::replace(&mut self.failing, true) {
            tracing::warn!(path = %self.path.display(), %error, "cannot write the textfile; node_exporter keeps the previous one");
        }
    }
}

/// Replaces `path` (in `directory`) with `body`: temporary file, sync, chmod 0644, rename,
/// directory sync. On any error the temporary file is removed and `path` is untouched.
pub fn replace(directory: &Path, path: &Path, body: &[u8]) -> io::Result<()> {
    let mut temporary = tempfile::Builder::new()
        .prefix(TEMPORARY_PREFIX)
        .suffix(TEMPORARY_SUFFIX)
        .tempfile_in(directory)?;
    temporary.write_all(body)?;
    temporary
        .as_file()
        .set_permissions(Permissions::from_mode(0o644))?;
    temporary.as_file().sync_all()?;
    temporary.persist(path).map_err(|error| error.error)?;
    File::open(directory)?.sync_all()
}

/// Checks that files can be created in `directory`, as [`replace`] does.
fn check_directory(directory: &Path) -> io::Result<()> {
    if !directory.is_dir() {
        return Err(io::Error::new(io::ErrorKind::NotFound, "no such directory"));
    }
    tempfile::Builder::new()
        .prefix(TEMPORARY_PREFIX)
        .suffix(TEMPORARY_SUFFIX)
        .tempfile_in(directory)
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_leaves_only_the_complete_file_readable_by_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("heartwire.prom");
        replace(dir.path(), &path, b"# first\n").unwrap();
        replace(dir.path(), &path, b"# second\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"# second\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["heartwire.prom"], "temporary files are gone");
    }

    #[test]
    fn a_missing_directory_is_reported_before_any_write() {
        let dir = tempfile::tempdir().unwrap();
        let error = check_directory(&dir.path().join("missing")).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        assert!(check_directory(dir.path()).is_ok());
    }

    #[test]
    fn a_failed_replace_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("heartwire.prom");
        replace(dir.path(), &path, b"# old\n").unwrap();
        // A directory in the way makes the rename fail.
        let blocked = dir.path().join("blocked.prom");
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("inside"), b"x").unwrap();
        assert!(replace(dir.path(), &blocked, b"# new\n").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"# old\n");
        let leftovers = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|entry| {
                let name = entry.as_ref().unwrap().file_name();
                name.to_string_lossy().starts_with(TEMPORARY_PREFIX)
            })
            .count();
        assert_eq!(leftovers, 0);
    }
}
