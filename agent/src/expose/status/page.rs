//! The human status page at `/`: one table of jobs and one of workers, coloured by state, with
//! ages in words. Each job has a strip of its recent runs, oldest left and newest right, one
//! coloured cell a run with the run told in its tooltip, as a cron monitor shows its history.
//!
//! Self-contained on purpose: inline CSS, no script, no image, no web font, so that it renders
//! the same inside a locked-down cluster as on a laptop ([`CONTENT_SECURITY_POLICY`] holds the
//! page to that). Plain `write!` with an escaping wrapper is enough for one page of two tables;
//! a template engine would add a dependency and a second language for no gain.

use std::fmt::{self, Display, Write as _};
use std::time::Duration;

use super::unready_jobs;
use super::words::{relative, rfc3339, took};
use crate::aggregate::snapshot::{
    Health, JobState, JobStatus, ScheduleSource, WorkerState, WorkerStatus,
};
use crate::health::history::{PastRun, RecentRuns, RunResult};
use crate::health::job::{Progress, Readiness};

/// The page loads nothing but its own inline styles.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'";

/// How often the page reloads itself, in seconds.
const REFRESH_SECONDS: u32 = 10;

const STYLE: &str = "
:root { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif;
  color: #1f2328; background: #f6f8fa; }
body { max-width: 78rem; margin: 1.5rem auto; padding: 0 1rem; }
header { display: flex; align-items: baseline; gap: 1rem; flex-wrap: wrap; margin-bottom: 1rem; }
h1 { font-size: 1.4rem; margin: 0; }
.verdict { font-weight: 600; padding: .2rem .8rem; border-radius: 6px; }
.counts { color: #59636e; }
section { background: #fff; border: 1px solid #d1d9e0; border-radius: 8px; overflow: auto;
  margin-bottom: 1.25rem; }
h2 { font-size: 1rem; margin: 0; padding: .6rem 1rem; background: #f6f8fa;
  border-bottom: 1px solid #d1d9e0; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .5rem .75rem; border-bottom: 1px solid #eaeef2;
  vertical-align: middle; white-space: nowrap; }
tr:last-child > * { border-bottom: none; }
thead th { font-size: .75rem; color: #59636e; text-transform: uppercase; letter-spacing: .04em; }
tbody th { font-weight: 600; font-family: ui-monospace, 'DejaVu Sans Mono', monospace; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
.state { display: inline-block; min-width: 4.5rem; text-align: center; padding: .15rem .6rem;
  border-radius: 999px; font-weight: 600; font-size: .85rem; }
.tag { font-family: system-ui, sans-serif; font-weight: 500; font-size: .7rem; color: #59636e;
  border: 1px solid #d1d9e0; border-radius: 4px; padding: 0 .3rem; margin-left: .4rem; }
.muted, .empty { color: #818b98; }
.bad { color: #a40e26; font-weight: 600; }
.warn { color: #7d4e00; font-weight: 600; }
.ok, .up, .ready { background: #dafbe1; color: #116329; }
.late { background: #fff1c2; color: #7d4e00; }
.warming, .never_seen, .stopped { background: #eaeef2; color: #424a53; }
.stale, .failing, .ttl_expired, .disconnected, .stalled, .unready { background: #ffebe9;
  color: #a40e26; }
th.strip, td.strip { text-align: right; }
.runs { display: inline-flex; justify-content: flex-end; gap: 2px; min-width: 9.9rem; margin: 0;
  padding: 0; list-style: none; vertical-align: middle; }
.runs li { flex: none; width: .375rem; height: 1.1rem; border-radius: 1px; }
.runs li:hover { outline: 2px solid #1f2328; outline-offset: 1px; }
.run-ok { background: #1a7f37; }
.run-error { background: #cf222e; }
.run-crashed { background: #82071e; }
.run-skipped { background: #afb8c1; }
.run-cancelled { background: #d4a72c; }
footer { color: #59636e; font-size: .85rem; }
footer a { color: #0969da; }
";

/// The page for `health`.
pub fn render(health: &Health) -> String {
    let mut html = String::with_capacity(4096 + 512 * health.jobs.len());
    // Writing to a String cannot fail.
    let _ = write_page(&mut html, health);
    html
}

fn write_page(out: &mut String, health: &Health) -> fmt::Result {
    let now = health.taken_at;
    let attention = health
        .jobs
        .iter()
        .filter(|job| needs_attention(job))
        .count()
        + health
            .workers
            .iter()
            .filter(|worker| is_down(worker.state))
            .count();
    let title = match attention {
        0 => "all ok".to_owned(),
        n => format!("{n} need attention"),
    };
    write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">\
         <title>heartwire: {title}</title><style>{STYLE}</style></head><body>\n"
    )?;
    write_header(out, health)?;
    write_jobs(out, &health.jobs, now)?;
    write_workers(out, &health.workers, now)?;
    write!(
        out,
        "<footer>Computed {when} · reloads every {REFRESH_SECONDS} s · \
         <a href=\"status\">JSON</a> · <a href=\"readyz\">readiness</a> · \
         <a href=\"metrics\">metrics</a></footer>\n</body></html>\n",
        when = Time(Some(now), now, "unknown"),
    )
}

fn write_header(out: &mut String, health: &Health) -> fmt::Result {
    out.push_str("<header><h1>heartwire</h1>");
    let stale: Vec<String> = unready_jobs(health)
        .map(|job| match job.readiness {
            Readiness::Completed => format!("{} has no run end", job.job),
            _ => format!("{} stale", job.job),
        })
        .collect();
    if stale.is_empty() {
        out.push_str("<span class=\"verdict ready\" id=\"readiness\">Ready</span>");
    } else {
        write!(
            out,
            "<span class=\"verdict unready\" id=\"readiness\">Not ready: {}</span>",
            Escaped(&stale.join(", "))
        )?;
    }
    // JobState is declared worst first.
    let jobs = count(health.jobs.iter().map(|job| job.state), |state| {
        state.as_str()
    });
    let workers = count(
        health
            .workers
            .iter()
            .map(|worker| (worker_rank(worker.state), worker.state.as_str())),
        |(_, name)| name,
    );
    writeln!(
        out,
        "<span class=\"counts\">{} · {}</span></header>",
        counted(health.jobs.len(), "job", &jobs),
        counted(health.workers.len(), "worker", &workers),
    )
}

fn write_jobs(out: &mut String, jobs: &[JobStatus], now: f64) -> fmt::Result {
    out.push_str(
        "<section><h2>Jobs</h2><table id=\"jobs\"><thead><tr><th>Job</th><th>State</th>\
         <th class=\"strip\" title=\"oldest left, newest right; hover a run for its details\">\
         Recent runs</th>\
         <th>Schedule</th><th>Last success</th><th>Deadline</th><th>Next run</th>\
         <th class=\"num\">Running</th><th class=\"num\">Failures</th></tr></thead><tbody>\n",
    );
    if jobs.is_empty() {
        out.push_str(
            "<tr><td colspan=\"9\" class=\"empty\">No jobs configured: add a \
             <code>jobs:</code> section to the config.</td></tr>\n",
        );
    }
    for job in jobs {
        write_job(out, job, now)?;
    }
    out.push_str("</tbody></table></section>\n");
    Ok(())
}

fn write_job(out: &mut String, job: &JobStatus, now: f64) -> fmt::Result {
    let name = Escaped(&job.job);
    let state = job.state.as_str();
    write!(
        out,
        "<tr data-job=\"{name}\" data-state=\"{state}\"><th>{name}"
    )?;
    match job.readiness {
        Readiness::Off => {}
        Readiness::Success => {
            out.push_str("<span class=\"tag\" title=\"stale fails /readyz\">readiness</span>");
        }
        Readiness::Completed => out.push_str(
            "<span class=\"tag\" title=\"no run ended in time fails /readyz\">readiness</span>",
        ),
    }
    write!(out, "</th><td><span class=\"state {state}\">{state}</span>")?;
    match job.progress {
        Some(Progress::Stalled) => out.push_str(" <span class=\"state stalled\">stalled</span>"),
        Some(Progress::NotStarted) => {
            out.push_str(" <span class=\"muted\" title=\"no job.start or job.progress since heartwire started\">not started</span>");
        }
        _ => {}
    }
    out.push_str("</td>");
    write_runs(out, &job.recent_runs, now)?;
    write!(out, "<td>{}", Escaped(&job.schedule))?;
    if job.zone != "UTC" {
        write!(out, " <span class=\"muted\">{}</span>", Escaped(&job.zone))?;
    }
    if job.schedule_source == ScheduleSource::Learned {
        out.push_str(" <span class=\"muted\" title=\"learned from its steady successes; not in the config\">learned</span>");
    }
    // The time that explains the state stands out: a passed deadline, an overdue run.
    let (deadline_class, next_class) = match job.state {
        JobState::Stale => ("bad", ""),
        JobState::Late => ("", "warn"),
        _ => ("", ""),
    };
    write!(
        out,
        "</td><td>{}</td><td class=\"{deadline_class}\">{}</td><td class=\"{next_class}\">{}</td>",
        Time(job.last_success, now, "never"),
        Time(Some(job.deadline), now, "unknown"),
        Due(job.next_expected, now),
    )?;
    write!(out, "<td class=\"num\">{}", Quiet(job.running))?;
    if job.overrun > 0 {
        write!(out, " <span class=\"bad\">({} overrun)</span>", job.overrun)?;
    }
    write!(
        out,
        "</td><td class=\"num\">{}",
        Quiet(job.consecutive_failures)
    )?;
    if job.crashes > 0 {
        let plural = if job.crashes == 1 { "" } else { "es" };
        write!(
            out,
            " <span class=\"bad\">({} crash{plural})</span>",
            job.crashes
        )?;
    }
    out.push_str("</td></tr>\n");
    Ok(())
}

/// The job's recent runs as a strip of cells, oldest left: each cell's class is its result and
/// its tooltip tells the run.
fn write_runs(out: &mut String, recent: &RecentRuns, now: f64) -> fmt::Result {
    if recent.is_empty() {
        out.push_str("<td class=\"strip\"><span class=\"muted\">none yet</span></td>");
        return Ok(());
    }
    write!(
        out,
        "<td class=\"strip\"><ol class=\"runs\" aria-label=\"last {} runs, oldest first\">",
        recent.len()
    )?;
    for run in recent.oldest_first() {
        write!(
            out,
            "<li class=\"run-{}\" title=\"{}\"></li>",
            run.result.as_str(),
            RunTitle(run, now)
        )?;
    }
    out.push_str("</ol></td>");
    Ok(())
}

fn write_workers(out: &mut String, workers: &[WorkerStatus], now: f64) -> fmt::Result {
    out.push_str(
        "<section><h2>Workers</h2><table id=\"workers\"><thead><tr><th>Worker</th>\
         <th>State</th><th>Last heartbeat</th><th>TTL</th></tr></thead><tbody>\n",
    );
    if workers.is_empty() {
        out.push_str(
            "<tr><td colspan=\"4\" class=\"empty\">No workers yet: configure them under \
             <code>workers:</code> or send <code>hb NAME</code>.</td></tr>\n",
        );
    }
    for worker in workers {
        let name = Escaped(&worker.worker);
        let state = worker.state.as_str();
        writeln!(
            out,
            "<tr data-worker=\"{name}\" data-state=\"{state}\"><th>{name}</th>\
             <td><span class=\"state {state}\">{words}</span></td><td>{beat}</td>\
             <td>{ttl}</td></tr>",
            words = state.replace('_', " "),
            beat = Time(worker.last_heartbeat, now, "never"),
            ttl = configured(worker.ttl_seconds),
        )?;
    }
    out.push_str("</tbody></table></section>\n");
    Ok(())
}

/// Stale, failing and late jobs, and stalled progress: what an operator should look at.
fn needs_attention(job: &JobStatus) -> bool {
    matches!(
        job.state,
        JobState::Stale | JobState::Failing | JobState::Late
    ) || job.progress == Some(Progress::Stalled)
        || job.overrun > 0
}

/// Down without having said so: a clean stop or a worker never seen is not an outage.
fn is_down(state: WorkerState) -> bool {
    matches!(state, WorkerState::Expired | WorkerState::Disconnected)
}

/// `state → count`, in the order of `T`: worst first.
fn count<T: Copy + Ord>(
    states: impl Iterator<Item = T>,
    name: impl Fn(T) -> &'static str,
) -> Vec<(&'static str, usize)> {
    let mut states: Vec<T> = states.collect();
    states.sort_unstable();
    let mut counts: Vec<(&'static str, usize)> = Vec::new();
    for state in states {
        match counts.last_mut() {
            Some((last, n)) if *last == name(state) => *n += 1,
            _ => counts.push((name(state), 1)),
        }
    }
    counts
}

/// Worst first, like the declaration order of [`JobState`].
fn worker_rank(state: WorkerState) -> u8 {
    match state {
        WorkerState::Disconnected => 0,
        WorkerState::Expired => 1,
        WorkerState::NeverSeen => 2,
        WorkerState::Stopped => 3,
        WorkerState::Up => 4,
    }
}

/// `3 jobs: 2 ok, 1 stale`.
fn counted(total: usize, noun: &str, states: &[(&str, usize)]) -> String {
    let plural = if total == 1 { "" } else { "s" };
    let parts: Vec<String> = states
        .iter()
        .map(|(state, n)| format!("{n} {}", state.replace('_', " ")))
        .collect();
    if parts.is_empty() {
        format!("{total} {noun}{plural}")
    } else {
        format!("{total} {noun}{plural}: {}", parts.join(", "))
    }
}

/// A configured duration as written in the config (`1m 30s`), not rounded like an age.
fn configured(seconds: f64) -> String {
    match Duration::try_from_secs_f64(seconds) {
        Ok(duration) => humantime::format_duration(duration).to_string(),
        Err(_) => format!("{seconds} s"),
    }
}

/// Text with `&`, `<`, `>`, `"` and `'` escaped, for element content and quoted attributes.
struct Escaped<'a>(&'a str);

impl Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..at])?;
            f.write_str(match rest.as_bytes()[at] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[at + 1..];
        }
        f.write_str(rest)
    }
}

/// A time as an age in words, its exact RFC 3339 stamp in a tooltip; `.2` when there is none.
struct Time(Option<f64>, f64, &'static str);

impl Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Time(at, now, missing) = *self;
        match at.and_then(|at| Some((at, rfc3339(at)?))) {
            Some((at, stamp)) => write!(
                f,
                "<time datetime=\"{stamp}\" title=\"{stamp}\">{}</time>",
                relative(at, now)
            ),
            None => write!(f, "<span class=\"muted\">{missing}</span>"),
        }
    }
}

/// When the next run is due: `in 5 min`, or `due 5 s ago` once the slot has passed.
struct Due(f64, f64);

impl Display for Due {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Due(at, now) = *self;
        if at < now {
            f.write_str("due ")?;
        }
        Time(Some(at), now, "unknown").fmt(f)
    }
}

/// A run's tooltip, one line each (`&#10;`): the result with its reason, exit code and signal;
/// when it ended; how long it took and when it started.
struct RunTitle<'a>(&'a PastRun, f64);

impl Display for RunTitle<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let RunTitle(run, now) = *self;
        f.write_str(run.result.as_str())?;
        if let Some(reason) = &run.reason {
            write!(f, ": {}", Escaped(reason))?;
        }
        if let Some(code) = run.exit_code {
            write!(f, " · exit code {code}")?;
        }
        if let Some(signal) = &run.signal {
            write!(f, " · signal {}", Escaped(signal))?;
        }
        let verb = match run.result {
            RunResult::Crashed => "session closed",
            RunResult::Skipped => "skipped",
            _ => "ended",
        };
        let stamp = rfc3339(run.ended);
        write!(
            f,
            "&#10;{verb} {} ({})",
            stamp.as_deref().unwrap_or("at an unknown time"),
            relative(run.ended, now)
        )?;
        if run.result == RunResult::Skipped {
            return Ok(());
        }
        match run.duration_seconds {
            Some(seconds) => write!(f, "&#10;took {}", took(seconds))?,
            None => f.write_str("&#10;duration unknown")?,
        }
        if let Some(stamp) = run.started.and_then(rfc3339) {
            write!(f, ", started {stamp}")?;
        }
        Ok(())
    }
}

/// A count, greyed out when it is 0 so that the numbers that matter stand out.
struct Quiet<T>(T);

impl<T: Display + Default + PartialEq> Display for Quiet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == T::default() {
            write!(f, "<span class=\"muted\">{}</span>", self.0)
        } else {
            write!(f, "{}", self.0)
        }
    }
}
