"""An uptime worker that reports to its heartwire sidecar.

It consumes monitoring jobs ({websiteId, url}) from the Redis stream `uptime:jobs` in the
consumer group `uptime-group`, GETs each job's URL, and tells heartwire how the check went, in
one line per check:

    http <websiteId> check <status> <seconds>

where status is the HTTP status code, `timeout` or `network` (DNS, refused, reset). A site is Up
when it answered 2xx, Down otherwise; the response time is measured for both, as the hand-built
worker stored it. With every check and every empty read it also sends `hb <worker> ttl=<s>`: when
the worker dies or hangs, its sidecar turns the worker's status to 0.

Run as many as you like, each with its own sidecar: the consumer group hands every job to
exactly one of them, and Prometheus adds their sidecars' series up.

Settings (environment):
    REDIS_URL              redis://localhost:6379
    WORKER_NAME            uptime-worker-<hostname> (the pod's name in Kubernetes)
    HEARTWIRE_ADDR         127.0.0.1:8125, the sidecar's UDP listener
    CHECK_TIMEOUT_SECONDS  10
    BATCH_SIZE             10, jobs per read
    BLOCK_MS               5000, how long a read waits for new jobs
"""

import http.client
import os
import re
import signal
import socket
import sys
import time
import urllib.error
import urllib.request

import redis

STREAM = "uptime:jobs"
GROUP = "uptime-group"

# heartwire's rule for names (proto/PROTOCOL.md): a websiteId outside it could not be reported.
NAME = re.compile(r"[A-Za-z0-9_.:/-]{1,128}")


class Sidecar:
    """Fire-and-forget lines to heartwire over UDP: reporting never slows or breaks a check."""

    def __init__(self, address):
        host, _, port = address.rpartition(":")
        self.address = (host, int(port))
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def send(self, *lines):
        try:
            self.socket.sendto("".join(f"{line}\n" for line in lines).encode(), self.address)
        except OSError as error:
            log(f"heartwire unreachable at {self.address[0]}:{self.address[1]}: {error}")


def log(message):
    print(message, flush=True)


def check(url, timeout):
    """GETs url; returns (status, seconds): the HTTP status code, or `timeout` or `network`."""
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read()
            status = str(response.status)
    except urllib.error.HTTPError as error:
        status = str(error.code)
    except urllib.error.URLError as error:
        status = "timeout" if isinstance(error.reason, TimeoutError) else "network"
    except TimeoutError:
        status = "timeout"
    except (OSError, http.client.HTTPException):
        status = "network"
    return status, time.monotonic() - started


def invalid(job):
    """Why a job cannot be checked, as (reason label, message), or None."""
    website, url = job.get("websiteId", ""), job.get("url", "")
    if not NAME.fullmatch(website):
        return "invalid_website_id", f"websiteId {website!r} is not 1-128 characters of [A-Za-z0-9_.:/-]"
    if not url.startswith(("http://", "https://")):
        return "invalid_url", f"url {url!r} is not an http(s) URL"
    return None


class Worker:
    def __init__(self):
        self.name = os.environ.get("WORKER_NAME") or f"uptime-worker-{socket.gethostname()}"
        self.timeout = float(os.environ.get("CHECK_TIMEOUT_SECONDS", "10"))
        self.batch = int(os.environ.get("BATCH_SIZE", "10"))
        self.block_ms = int(os.environ.get("BLOCK_MS", "5000"))
        # Three missed heartbeats: the longest quiet spell is one check or one empty read.
        self.ttl = 3 * max(self.timeout, self.block_ms / 1000)
        self.sidecar = Sidecar(os.environ.get("HEARTWIRE_ADDR", "127.0.0.1:8125"))
        self.redis = redis.Redis.from_url(
            os.environ.get("REDIS_URL", "redis://localhost:6379"),
            decode_responses=True,
            # Longer than a blocking read, so that only a Redis that went silent times out.
            socket_timeout=self.block_ms / 1000 + 10,
        )
        self.stopping = False

    def heartbeat(self):
        return f"hb {self.name} ttl={self.ttl:g}"

    def run(self):
        try:
            self.redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        log(f"Worker {self.name} started")
        while not self.stopping:
            try:
                self.read_batch()
            except (redis.ConnectionError, redis.TimeoutError) as error:
                # No heartbeat while Redis is away: a worker that cannot work shows as down.
                log(f"Redis unreachable: {error}")
                time.sleep(1)
        self.sidecar.send(f"worker.stop {self.name}")
        log(f"Worker {self.name} stopped")

    def read_batch(self):
        entries = self.redis.xreadgroup(
            GROUP, self.name, {STREAM: ">"}, count=self.batch, block=self.block_ms
        )
        if not entries:
            self.sidecar.send(self.heartbeat())
            return
        for _stream, messages in entries:
            for message_id, job in messages:
                self.process(message_id, job)

    def process(self, message_id, job):
        rejected = invalid(job)
        if rejected:
            # Acknowledged, so that no consumer retries it for ever, and counted, so that the
            # sender's bug shows: uptime_jobs_rejected_total{reason}.
            reason, message = rejected
            self.redis.xack(STREAM, GROUP, message_id)
            log(f"Job rejected: {message_id} ({message})")
            self.sidecar.send(f"uptime.jobs.rejected:1|c|#reason:{reason}", self.heartbeat())
            return
        status, seconds = check(job["url"], self.timeout)
        self.sidecar.send(
            f"http {job['websiteId']} check {status} {seconds:.6f}", self.heartbeat()
        )
        self.redis.xack(STREAM, GROUP, message_id)
        state = "Up" if status.startswith("2") else "Down"
        log(f"Job processed: {message_id} {job['websiteId']} {state} {status} {seconds:.6f}")


def main():
    worker = Worker()

    def stop(_signal, _frame):
        worker.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    worker.run()


if __name__ == "__main__":
    sys.exit(main())
