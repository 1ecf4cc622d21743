# heartwire demo app: reports a job run, a worker heartbeat, outbound HTTP calls and a StatsD
# counter over the Unix datagram socket that the heartwire sidecar shares with it. Standard
# library only, so that any python3 image runs it.
import os
import random
import socket
import sys
import time

SOCKET = os.environ.get("HEARTWIRE_SOCKET", "/run/heartwire/dgram.sock")
INTERVAL = float(os.environ.get("DEMO_INTERVAL_SECONDS", "5"))


def round_of_events(number):
    """One round: what a small app with a periodic job and one API dependency would report."""
    took = round(random.uniform(0.05, 0.8), 3)
    if random.random() < 0.9:
        end = f"job.ok demo-report {took} id={number}"
    else:
        end = f"job.error demo-report {took} reason=upstream id={number}"
    status = random.choice(["200"] * 8 + ["502", "timeout"])
    return [
        f"job.start demo-report id={number}",
        end,
        "hb demo-worker ttl=30",
        f"http payments charge {status} {round(random.uniform(0.02, 0.3), 3)}",
        "demo.requests:1|c|#route:/home",
    ]


def main():
    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    number = 0
    while True:
        number += 1
        datagram = "\n".join(round_of_events(number)).encode()
        try:
            sender.sendto(datagram, SOCKET)
        except OSError as error:
            # The sidecar restarting is no reason for the app to stop: report and go on.
            print(f"demo: cannot send to {SOCKET}: {error}", file=sys.stderr, flush=True)
        time.sleep(INTERVAL)


main()
