#!/usr/bin/env bash
# Installs Redis for the uptime-worker example's test on a fresh Debian machine, as root:
# Debian's `redis-server` (which brings `redis-cli`). The test starts its own redis-server on a
# free loopback port with its data in a temporary directory and stops it at the end, so nothing
# here starts a service. Safe to run again: an installed redis-server is left as it is.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

say() { printf '==> %s\n' "$*"; }
die() { printf 'install-redis: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

if ! have redis-server || ! have redis-cli; then
    say "apt-get install redis-server"
    apt-get update
    apt-get install -y --no-install-recommends redis-server
fi
have redis-server || die "redis-server is missing after installing Debian's redis-server"
have redis-cli || die "redis-cli is missing after installing Debian's redis-server"
say "redis ready: $(redis-server --version)"
