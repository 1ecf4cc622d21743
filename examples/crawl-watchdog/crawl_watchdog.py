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
every other known outcome 0) and its counters and gauges. Standard library only.

    python3 crawl_watchdog.py replay                         the scripted campaign (tests)
    python3 crawl_watchdog.py watchdog worker-auto-start ok started
    python3 crawl_watchdog.py crawl hc --pages 100 --stall-at 60

HEARTWIRE_ADDR (or --target) says where heartwire listens: `127.0.0.1:8125` or
`udp://127.0.0.1:8125` for UDP, `unix:///run/heartwire/dgram.sock` for its Unix datagram socket.
"""

import argparse
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


class Run:
    """The outcome of a watchdog run, set by the watchdog's own logic; the watchdog's first
    outcome until then."""

    def __init__(self, watchdog):
        self.result, self.reason = OUTCOMES[watchdog][0]

    def outcome(self, result, reason):
        self.result, self.reason = result, reason


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
        sidecar.send(*outcome_lines(watchdog, run.result, run.reason, seconds))


def replay(sidecar):
    """The scripted campaign: fixed events, in a fixed order, for tests and demos.

    crawl-hc runs and crawls 250 pages; crawl-phac crawls 40 pages and fails with its restart
    budget spent; worker-auto-start runs three times (started, deploy lock, start failed);
    crawl-auto-recover twice (healthy, recovered); storage-hotpath-auto-recover never runs, as
    if its timer had stopped; crawl-cihr is queued and never starts. The last line is progress
    of crawl-hc, so its stall clock starts when the replay ends.
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
        sidecar.send(*outcome_lines("crawl-auto-recover", "ok", reason, seconds))
    sidecar.send("job.progress crawl-hc 50 id=101")


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
    sidecar.send(f"job.ok {job}")


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
            with watchdog_run(sidecar, args.name) as run:
                run.outcome(args.result, args.reason)
        else:
            crawl(sidecar, args.source, args.pages, args.batch, args.interval, args.stall_at)
    except ValueError as error:
        parser.error(str(error))
    except KeyboardInterrupt:
        return 130
    return 1 if sidecar.failures else 0


if __name__ == "__main__":
    sys.exit(main())
