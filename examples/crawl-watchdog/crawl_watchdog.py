"""What the crawl campaign's scripts tell heartwire, instead of writing textfiles themselves.

The hand-built setup had a metrics script parse crawl logs every minute and three watchdog
scripts each write a node_exporter textfile with their last run time, a one-hot last result and
counters. Here the crawl and the watchdogs send one line per event to the heartwire agent on the
same VM, and heartwire writes the textfile:

    job.start crawl-hc id=101           a crawl began
    job.progress crawl-hc 25 id=101     25 more pages crawled: stall detection
    job.error crawl-hc reason=…         the crawl ended (job.ok when it completed)
    job.start worker-auto-start         a watchdog run began
    job.ok worker-auto-start 0.4        …and ended, or job.error … reason=start_failed

With every watchdog run go StatsD lines for what heartwire does not derive from job lines: the
seed's one-hot `healtharchive_<watchdog>_last_result{result,reason}` (the current outcome 1,
every other known outcome 0) and its counters and gauges. What is left of the seed's crawl
metrics script, the probes heartwire cannot make itself (output dirs, restarts, temp dirs, the
worker unit, the database's counts), is one `crawl-metrics` run a minute sending their findings
as gauges. mapping.yml declares every gauge with the seed's name and help text; the alerts of
heartwire.yaml read them. Standard library only.

    python3 crawl_watchdog.py replay                         the scripted campaign (tests)
    python3 crawl_watchdog.py watchdog worker-auto-start ok started
    python3 crawl_watchdog.py watchdog crawl-auto-recover ok healthy --gauge deploy_lock_present=0
    python3 crawl_watchdog.py crawl hc --pages 100 --stall-at 60
    python3 crawl_watchdog.py probe < findings.json          one crawl-metrics run
    python3 crawl_watchdog.py indexed hc 5120                indexing of crawl-hc's pages ended

HEARTWIRE_ADDR (or --target) says where heartwire listens: `127.0.0.1:8125` or
`udp://127.0.0.1:8125` for UDP, `unix:///run/heartwire/dgram.sock` for its Unix datagram socket.
"""

import argparse
import json
import os
import socket
import sys
import time
from contextlib import contextmanager

DEFAULT_TARGET = "127.0.0.1:8125"

# Every outcome each watchdog may report, as (result, reason). The one-hot gauge needs the whole
# set: each run sets its own outcome to 1 and every other one to 0, so the family always holds
# exactly one 1, like the file the hand-built script rewrote. `ok` runs end with job.ok (the
# watchdog ran, even when there was nothing to do), `error` runs with job.error.
OUTCOMES = {
    "worker-auto-start": (
        ("ok", "started"),
        ("ok", "already_running"),
        ("ok", "no_pending_jobs"),
        ("ok", "deploy_lock"),
        ("error", "start_failed"),
        ("error", "storage_unreadable"),
        ("error", "exception"),
    ),
    "crawl-auto-recover": (
        ("ok", "healthy"),
        ("ok", "recovered"),
        ("ok", "deploy_lock"),
        ("error", "recover_failed"),
        ("error", "exception"),
    ),
    "storage-hotpath-auto-recover": (
        ("ok", "healthy"),
        ("ok", "remounted"),
        ("error", "remount_failed"),
        ("error", "exception"),
    ),
}

# Reasons for which worker-auto-start tried to start the worker: its start counters.
START_ATTEMPTED = {"started": "start_success", "start_failed": "start_failed"}

# The crawl-metrics probe's findings (`probe_lines`): global gauges, per running crawl (by
# source) and per queued or retryable annual job.
PROBE_GLOBAL = (
    "worker_active",
    "worker_should_be_running",
    "jobs_pending_crawl",
    "crawl_annual_output_dir_probe_user_ok",
)
PROBE_RUNNING = (
    "output_dir_ok",
    "output_dir_errno",
    "container_restarts_done",
    "temp_dirs",
    "new_crawl_phases",
    "resume_crawls",
)


class Sidecar:
    """One datagram per report to heartwire. Reporting never breaks the caller: a failed send is
    logged and counted in `failures`, and the caller decides whether that matters."""

    def __init__(self, target):
        self.failures = 0
        if target.startswith("unix://"):
            self.address = target[len("unix://"):]
            self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        else:
            host, _, port = target.removeprefix("udp://").rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"target {target!r}: write host:port or unix:///path")
            self.address = (host, int(port))
            self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def send(self, *lines):
        payload = "".join(f"{line}\n" for line in lines).encode()
        try:
            self.socket.sendto(payload, self.address)
        except OSError as error:
            self.failures += 1
            print(f"heartwire unreachable at {self.address}: {error}", file=sys.stderr)


def statsd_prefix(watchdog):
    """`worker-auto-start` → `healtharchive.worker_auto_start`, the seed's family prefix."""
    return "healtharchive." + watchdog.replace("-", "_")


def outcome_lines(watchdog, result, reason, seconds):
    """The lines that end one watchdog run: its job line and the one-hot last-result gauge."""
    outcomes = OUTCOMES[watchdog]
    if (result, reason) not in outcomes:
        known = ", ".join(f"{r}/{why}" for r, why in outcomes)
        raise ValueError(f"{watchdog}: unknown outcome {result}/{reason}; known: {known}")
    end = f"job.ok {watchdog} {seconds:.3f}"
    if result == "error":
        end = f"job.error {watchdog} {seconds:.3f} reason={reason}"
    prefix = statsd_prefix(watchdog)
    lines = [end]
    for known_result, known_reason in outcomes:
        hot = int((known_result, known_reason) == (result, reason))
        lines.append(
            f"{prefix}.last_result:{hot}|g|#result:{known_result},reason:{known_reason}"
        )
    if watchdog == "worker-auto-start":
        # Sent as 0 too, so that the counters exist from the first run, as in the seed's file.
        attempted = reason in START_ATTEMPTED
        lines.append(f"{prefix}.start_attempts:{int(attempted)}|c")
        for counter in START_ATTEMPTED.values():
            lines.append(f"{prefix}.{counter}:{int(START_ATTEMPTED.get(reason) == counter)}|c")
    return lines


def gauge_line(name, value, **tags):
    """`healtharchive.<name>:<value>|g|#tag:value,…`."""
    tagged = ",".join(f"{key}:{tag}" for key, tag in tags.items())
    return f"healtharchive.{name}:{value}|g" + (f"|#{tagged}" if tagged else "")


def probe_lines(findings):
    """The gauges of one crawl-metrics run, from what the probes found (a dict, as JSON):

        {"worker_active": 0, "worker_should_be_running": 1, "jobs_pending_crawl": 2,
         "crawl_annual_output_dir_probe_user_ok": 1,
         "infra_error_recent": {"10m": 0},                   jobs with infra errors, per window
         "automation_enabled": {"worker-auto-start": 1, "crawl-auto-recover": 1,
                                "storage-hotpath-auto-recover": 1},
         "running": {"hc": {"output_dir_ok": 1, "output_dir_errno": 0,
                            "container_restarts_done": 2, "temp_dirs": 12,
                            "new_crawl_phases": 1, "resume_crawls": 0}},
         "annual_pending": [{"source": "cihr", "job_id": 103, "status": "queued",
                             "year": 2026, "writable": 1, "errno": 0}]}

    Keys left out are not sent. A running crawl's gauges carry its source; they expire in
    heartwire 5 minutes after the last probe that saw the crawl (mapping.yml's ttl).
    """
    lines = [gauge_line(name, findings[name]) for name in PROBE_GLOBAL if name in findings]
    for window, count in findings.get("infra_error_recent", {}).items():
        lines.append(gauge_line("jobs_infra_error_recent", count, window=window))
    for watchdog, enabled in findings.get("automation_enabled", {}).items():
        if watchdog not in OUTCOMES:
            raise ValueError(f"automation_enabled: unknown watchdog {watchdog!r}")
        lines.append(f"{statsd_prefix(watchdog)}.enabled:{int(enabled)}|g")
    for source, probes in findings.get("running", {}).items():
        for name in PROBE_RUNNING:
            if name in probes:
                lines.append(gauge_line(f"crawl_running_job_{name}", probes[name], source=source))
    for job in findings.get("annual_pending", ()):
        try:
            tags = {key: job[key] for key in ("source", "job_id", "status", "year")}
            writable = int(job["writable"])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"annual_pending: {job!r} lacks {error}") from None
        prefix = "crawl_annual_pending_job_output_dir_writable"
        lines.append(gauge_line(prefix, writable, **tags))
        lines.append(gauge_line(f"{prefix}_errno", job.get("errno", 0), **tags))
    return lines


def probe_run(sidecar, findings):
    """One crawl-metrics run: `job.start crawl-metrics`, then its gauges with `job.ok`, so that
    heartwire knows when the probes last ran (stale after 10 minutes without a run)."""
    lines = probe_lines(findings)  # refuses bad findings before the run starts
    sidecar.send("job.start crawl-metrics")
    sidecar.send(*lines, "job.ok crawl-metrics")


def indexed_line(source, pages):
    """The indexer's report: pages indexed from crawl-<source>'s last completed crawl."""
    return f"healtharchive.job.indexed_pages:{int(pages)}|g|#task:crawl-{source}"


class Run:
    """The outcome of a watchdog run, set by the watchdog's own logic; the watchdog's first
    outcome until then. Gauges and counts the run adds go with its outcome lines, under the
    watchdog's prefix (`run.gauge("deploy_lock_present", 1)` from crawl-auto-recover is
    healtharchive_crawl_auto_recover_deploy_lock_present)."""

    def __init__(self, watchdog):
        self.result, self.reason = OUTCOMES[watchdog][0]
        self.prefix = statsd_prefix(watchdog)
        self.extra = []

    def outcome(self, result, reason):
        self.result, self.reason = result, reason

    def gauge(self, name, value):
        self.extra.append(f"{self.prefix}.{name}:{value}|g")

    def count(self, name, increment=1):
        self.extra.append(f"{self.prefix}.{name}:{increment}|c")


@contextmanager
def watchdog_run(sidecar, watchdog):
    """Reports one watchdog run: `job.start` now, the outcome lines when the block ends. An
    exception (or ctrl-C) escaping the block is the outcome error/exception, and is raised on.

        with watchdog_run(sidecar, "worker-auto-start") as run:
            if deploy_lock_held():
                run.outcome("ok", "deploy_lock")
    """
    outcome_lines(watchdog, *OUTCOMES[watchdog][0], 0.0)  # an unknown watchdog fails here
    sidecar.send(f"job.start {watchdog}")
    started = time.monotonic()
    run = Run(watchdog)
    try:
        yield run
    except BaseException:
        run.outcome("error", "exception")
        raise
    finally:
        seconds = time.monotonic() - started
        sidecar.send(*run.extra, *outcome_lines(watchdog, run.result, run.reason, seconds))


def replay(sidecar):
    """The scripted campaign: fixed events, in a fixed order, for tests and demos.

    crawl-hc runs and crawls 250 pages; crawl-phac crawls 40 pages and fails with its restart
    budget spent; worker-auto-start runs three times (started, deploy lock, start failed);
    crawl-auto-recover twice (healthy, recovered); storage-hotpath-auto-recover never runs, as
    if its timer had stopped; crawl-cihr is queued and never starts. One crawl-metrics probe run
    sees crawl-hc running, the worker down with work pending and cihr's annual output dir
    writable. The last line is progress of crawl-hc, so its stall clock starts when the replay
    ends.
    """
    sidecar.send("job.start crawl-hc id=101")
    for pages in (120, 80):
        sidecar.send(f"job.progress crawl-hc {pages} id=101")
    sidecar.send(
        "job.start crawl-phac id=102",
        "job.progress crawl-phac 40 id=102",
        "healtharchive.crawl_running_job_container_restarts_done:30|g|#source:phac",
        "job.error crawl-phac reason=restart_budget_exhausted id=102",
        "healtharchive.crawl_running_job_container_restarts_done:2|g|#source:hc",
    )
    worker_runs = (
        ("ok", "started", 1.25),
        ("ok", "deploy_lock", 0.05),
        ("error", "start_failed", 2.5),
    )
    for result, reason, seconds in worker_runs:
        # What the watchdog saw: work pending, storage readable, the worker down.
        sidecar.send("job.start worker-auto-start")
        sidecar.send(
            *outcome_lines("worker-auto-start", result, reason, seconds),
            "healtharchive.jobs_pending_crawl:2|g",
            "healtharchive.worker_should_be_running:1|g",
            "healtharchive.worker_active:0|g",
        )
    for reason, seconds in (("healthy", 0.5), ("recovered", 3.0)):
        sidecar.send("job.start crawl-auto-recover")
        sidecar.send(
            "healtharchive.crawl_auto_recover.deploy_lock_present:0|g",
            *outcome_lines("crawl-auto-recover", "ok", reason, seconds),
        )
    probe_run(sidecar, REPLAY_FINDINGS)
    sidecar.send("job.progress crawl-hc 50 id=101")


# What the replay's crawl-metrics run finds.
REPLAY_FINDINGS = {
    "worker_active": 0,
    "worker_should_be_running": 1,
    "jobs_pending_crawl": 2,
    "crawl_annual_output_dir_probe_user_ok": 1,
    "infra_error_recent": {"10m": 0},
    "automation_enabled": {watchdog: 1 for watchdog in OUTCOMES},
    "running": {
        "hc": {
            "output_dir_ok": 1,
            "output_dir_errno": 0,
            "container_restarts_done": 2,
            "temp_dirs": 12,
            "new_crawl_phases": 1,
            "resume_crawls": 0,
        }
    },
    "annual_pending": [
        {"source": "cihr", "job_id": 103, "status": "queued", "year": 2026, "writable": 1}
    ],
}


def crawl(sidecar, source, pages, batch, interval, stall_at):
    """A stand-in crawl: `batch` pages every `interval` seconds until `pages`, or a hang at
    `stall_at` pages (heartwire then flags it stalled after the job's stall_after)."""
    job = f"crawl-{source}"
    sidecar.send(f"job.start {job}")
    crawled = 0
    while crawled < pages:
        if stall_at is not None and crawled >= stall_at:
            print(f"{job}: stuck at {crawled} pages (ctrl-C to stop)", file=sys.stderr)
            while True:
                time.sleep(3600)
        time.sleep(interval)
        step = min(batch, pages - crawled)
        crawled += step
        sidecar.send(f"job.progress {job} {step}")
    # Completed: nothing indexed yet, until the indexer reports (`indexed`).
    sidecar.send(f"job.ok {job}", indexed_line(source, 0))


def pairs(items, kind):
    """`["a=1", "b=2"]` as `[("a", kind("1")), ("b", kind("2"))]`."""
    out = []
    for item in items:
        name, equals, value = item.partition("=")
        if not equals or not name.replace("_", "").isalnum():
            raise ValueError(f"{item!r}: write NAME=VALUE, e.g. deploy_lock_present=1")
        try:
            out.append((name, kind(value)))
        except ValueError:
            raise ValueError(f"{item!r}: {value!r} is not a number") from None
    return out


def read_findings(path):
    """The probe's findings: a JSON object, from `path` or stdin (`-`)."""
    try:
        if path == "-":
            findings = json.load(sys.stdin)
        else:
            with open(path, encoding="utf-8") as file:
                findings = json.load(file)
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"findings {path}: {error}") from None
    if not isinstance(findings, dict):
        raise ValueError(f"findings {path}: a JSON object, as probe_lines documents")
    return findings


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--target",
        default=os.environ.get("HEARTWIRE_ADDR", DEFAULT_TARGET),
        help="host:port (UDP) or unix:///path (default: $HEARTWIRE_ADDR or %(default)s)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("replay", help="send the scripted campaign")
    one = commands.add_parser("watchdog", help="report one watchdog run")
    one.add_argument("name", choices=sorted(OUTCOMES))
    one.add_argument("result", choices=("ok", "error"))
    one.add_argument("reason")
    one.add_argument(
        "--gauge",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a gauge of the run, under the watchdog's prefix (deploy_lock_present=1)",
    )
    one.add_argument(
        "--count",
        action="append",
        default=[],
        metavar="NAME=N",
        help="a counter increment of the run, under the watchdog's prefix (apply_attempts=1)",
    )
    probe = commands.add_parser("probe", help="report one crawl-metrics run")
    probe.add_argument(
        "findings", nargs="?", default="-", help="JSON file of the findings (default: stdin)"
    )
    indexed = commands.add_parser("indexed", help="report a crawl's indexed page count")
    indexed.add_argument("source", help="hc, phac or cihr")
    indexed.add_argument("pages", type=int)
    run = commands.add_parser("crawl", help="a stand-in crawl that reports its progress")
    run.add_argument("source", help="hc, phac or cihr")
    run.add_argument("--pages", type=int, default=100)
    run.add_argument("--batch", type=int, default=10)
    run.add_argument("--interval", type=float, default=1.0, help="seconds between batches")
    run.add_argument("--stall-at", type=int, help="hang once this many pages are crawled")
    args = parser.parse_args(argv)

    try:
        sidecar = Sidecar(args.target)
        if args.command == "replay":
            replay(sidecar)
        elif args.command == "watchdog":
            outcome_lines(args.name, args.result, args.reason, 0.0)  # refuses unknown outcomes
            gauges, counts = pairs(args.gauge, float), pairs(args.count, int)
            with watchdog_run(sidecar, args.name) as run:
                for name, value in gauges:
                    run.gauge(name, value)
                for name, value in counts:
                    run.count(name, value)
                run.outcome(args.result, args.reason)
        elif args.command == "probe":
            probe_run(sidecar, read_findings(args.findings))
        elif args.command == "indexed":
            sidecar.send(indexed_line(args.source, args.pages))
        else:
            crawl(sidecar, args.source, args.pages, args.batch, args.interval, args.stall_at)
    except ValueError as error:
        parser.error(str(error))
    except KeyboardInterrupt:
        return 130
    return 1 if sidecar.failures else 0


if __name__ == "__main__":
    sys.exit(main())
