#!/usr/bin/env bash
# Installs what the uptime-worker example runs on, on a fresh Debian machine, as root: Redis
# (.ci/install-redis.sh) and the worker's Python dependencies, pinned in
# examples/uptime-worker/requirements.txt, in the venv examples/uptime-worker/.venv. Safe to run
# again: a venv that already has the pinned versions is left as it is.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
example="$root/examples/uptime-worker"
venv="$example/.venv"
export DEBIAN_FRONTEND=noninteractive

say() { printf '==> %s\n' "$*"; }
die() { printf 'install-uptime-example: %s\n' "$*" >&2; exit 1; }

bash "$root/.ci/install-redis.sh"

python_ok() { python3 -c 'import sys, ensurepip, venv; sys.exit(sys.version_info < (3, 9))' >/dev/null 2>&1; }
if ! python_ok; then
    say "apt-get install python3 python3-venv"
    apt-get update
    apt-get install -y --no-install-recommends python3 python3-venv
    python_ok || die "python3 is older than 3.9 or has no venv module"
fi

if ! "$venv/bin/python3" -c 'import sys' >/dev/null 2>&1; then
    say "creating $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
fi
say "pip install -r examples/uptime-worker/requirements.txt"
"$venv/bin/python3" -m pip install --quiet --disable-pip-version-check -r "$example/requirements.txt"
"$venv/bin/python3" -c 'import redis' || die "the venv cannot import redis"
say "uptime example ready: redis-py $("$venv/bin/python3" -c 'import redis; print(redis.__version__)')"
