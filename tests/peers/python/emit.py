"""Sends heartwire's fixed script of metrics through a real Python StatsD client.

Usage: emit.py CLIENT TRANSPORT ADDRESS

  CLIENT     statsd (the `statsd` package) or datadog (the `datadog` DogStatsd client)
  TRANSPORT  udp         ADDRESS is HOST:PORT
             unixgram    ADDRESS is a Unix datagram socket path (datadog only)
             unixstream  ADDRESS is a Unix stream socket path

Every run sends the same bytes: client telemetry, buffering, aggregation and origin detection
are off, sampled calls are always kept, and timestamps are fixed. The receiving test knows the
script line by line, so any change here must be mirrored there.
"""

import os
import random
import sys
from datetime import timedelta

# The clients draw random() and drop a sampled call when the draw exceeds the rate; a draw of 0
# keeps every sampled call, so the `|@rate` lines reach the wire on every run. This must happen
# before the clients are imported: datadog binds `random` at import time.
random.random = lambda: 0.0

# DD_* variables add tags, change the transport or turn the client off: none may leak in.
for _name in list(os.environ):
    if _name.startswith(("DD_", "DATADOG_")):
        del os.environ[_name]

import statsd  # noqa: E402
from datadog.dogstatsd import DogStatsd  # noqa: E402

# 2026-01-01T00:00:00Z: a fixed client timestamp (DogStatsD `|T`, event and check `d:`).
TIMESTAMP = 1767225600


def host_port(address):
    host, _, port = address.rpartition(":")
    return host, int(port)


def statsd_client(transport, address):
    if transport == "udp":
        host, port = host_port(address)
        return statsd.StatsClient(host, port)
    if transport == "unixstream":
        return statsd.UnixSocketStatsClient(address)
    raise SystemExit("statsd supports udp and unixstream, not %s" % transport)


def statsd_script(client):
    client.incr("jobs.runs")
    client.incr("jobs.rows", 25)
    client.incr("jobs.sampled", 1, rate=0.5)
    client.decr("jobs.pending")
    client.decr("jobs.pending", 3)
    client.gauge("queue.depth", 42)
    client.gauge("queue.depth", 5, delta=True)
    client.gauge("queue.depth", -2, delta=True)
    client.gauge("queue.load", 0.75)
    # A negative absolute gauge: the client sends "0" then the delta, in one datagram or write.
    client.gauge("temperature", -3.5)
    client.timing("poll.duration", 312.5)
    client.timing("poll.duration", timedelta(seconds=1.25))
    client.timing("poll.duration", 20, rate=0.25)
    client.set("users.unique", "alice")
    # A pipeline packs several lines into one datagram (one write on a stream).
    with client.pipeline() as pipe:
        pipe.incr("batch.items", 2)
        pipe.timing("batch.duration", 7)
        pipe.set("batch.owner", "worker-3")
    client.close()


def datadog_clients(transport, address):
    options = dict(
        disable_telemetry=True,
        disable_buffering=True,
        disable_aggregation=True,
        origin_detection_enabled=False,
        # Block while the receiver's queue is full (a Unix datagram socket holds 10 datagrams)
        # instead of dropping the payload, which the default non-blocking socket does.
        socket_timeout=5,
    )
    if transport == "udp":
        host, port = host_port(address)
        options.update(host=host, port=port)
    elif transport == "unixgram":
        options.update(socket_path=address)
    elif transport == "unixstream":
        options.update(socket_path="unixstream://" + address)
    else:
        raise SystemExit("datadog supports udp, unixgram and unixstream, not %s" % transport)
    plain = DogStatsd(**options)
    # What a client in a Kubernetes pod sends: its container id (read from cgroups when origin
    # detection is on) and the external data the admission controller injects.
    os.environ["DD_EXTERNAL_ENV"] = "it-false,cn-app,pu-4f1c"
    in_pod = DogStatsd(container_id="3f9a1c2b", **options)
    del os.environ["DD_EXTERNAL_ENV"]
    return plain, in_pod


def datadog_script(client, in_pod):
    client.increment("page.views")
    client.increment("page.views", 3, tags=["env:prod", "canary"])
    client.increment("page.views", 1, sample_rate=0.5, tags=["env:prod"])
    client.decrement("jobs.pending")
    client.count("files.moved", 7)
    client.count_with_timestamp("files.moved", 2, timestamp=TIMESTAMP)
    client.gauge("queue.depth", 42, tags=["queue:mail"])
    client.gauge("temperature", -3.5)
    client.gauge_with_timestamp("queue.depth", 40, TIMESTAMP, tags=["queue:mail"])
    client.histogram("request.size", 512, tags=["route:/api/v1"])
    client.distribution("request.latency", 0.25, tags=["region:eu-west-1"])
    client.timing("db.query", 12.5)
    client.timing("db.query", 3, sample_rate=0.1)
    client.set("users.unique", "bob")
    client.increment("page.views", cardinality="low")
    client.event(
        "Deploy finished",
        "v1.2.3 rolled out\nall green",
        alert_type="success",
        aggregation_key="deploy-42",
        source_type_name="heartwire",
        date_happened=TIMESTAMP,
        priority="low",
        tags=["env:prod"],
        hostname="web-1",
    )
    # Lengths in the event header are bytes, not characters.
    client.event("Déploiement ✓", "terminé")
    client.service_check("db.reachable", DogStatsd.OK)
    client.service_check(
        "db.reachable",
        DogStatsd.CRITICAL,
        tags=["db:primary"],
        timestamp=TIMESTAMP,
        hostname="web-1",
        message="connection refused\nm: retrying",
    )
    client.service_check("cache.reachable", DogStatsd.WARNING, message="slow")
    client.service_check("queue.reachable", DogStatsd.UNKNOWN)
    in_pod.increment("page.views", tags=["env:prod"])
    in_pod.event("Pod restarted", "exit 137")
    in_pod.service_check("db.reachable", DogStatsd.OK, message="ok")
    client.close_socket()
    in_pod.close_socket()


def main(argv):
    if len(argv) != 4:
        raise SystemExit(__doc__)
    _, client, transport, address = argv
    if client == "statsd":
        statsd_script(statsd_client(transport, address))
    elif client == "datadog":
        datadog_script(*datadog_clients(transport, address))
    else:
        raise SystemExit("unknown client %r: statsd or datadog" % client)


if __name__ == "__main__":
    main(sys.argv)
