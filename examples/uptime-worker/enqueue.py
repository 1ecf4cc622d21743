"""Adds monitoring jobs to the Redis stream `uptime:jobs`, as the API does.

Usage: enqueue.py [--rounds N] WEBSITE_ID=URL [WEBSITE_ID=URL ...]

Each round adds one job per site, in the order given; REDIS_URL (default
redis://localhost:6379) says where Redis is.
"""

import argparse
import os

import redis

STREAM = "uptime:jobs"


def site(text):
    website, sep, url = text.partition("=")
    if not sep or not website or not url:
        raise argparse.ArgumentTypeError(f"{text!r} is not WEBSITE_ID=URL")
    return website, url


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="jobs per site (default 1)")
    parser.add_argument("sites", nargs="+", type=site, metavar="WEBSITE_ID=URL")
    args = parser.parse_args()
    client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://localhost:6379"))
    added = 0
    for _ in range(args.rounds):
        for website, url in args.sites:
            client.xadd(STREAM, {"websiteId": website, "url": url})
            added += 1
    print(f"{added} jobs added to {STREAM}")


if __name__ == "__main__":
    main()
