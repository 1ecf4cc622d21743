#!/usr/bin/env bash
# Installs what the crawl-watchdog example (seed 002) and its test run on, on a fresh Debian
# machine, as root: Python 3.9 or newer (the sender uses the standard library only), promtool
# (Debian's `prometheus`) and node_exporter (Debian's `prometheus-node-exporter`), whose
# textfile collector reads the file heartwire writes. Safe to run again: what is already there
# is left as it is. Where policy-rc.d forbids it (containers), apt starts no service; on a VM
# with systemd, node_exporter starts as a service on :9100, as it would in the seed's setup.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

say() { printf '==> %s\n' "$*"; }
die() { printf 'install-crawl-example: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

python_ok() { have python3 && python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))'; }

packages=()
python_ok || packages+=(python3)
have promtool || packages+=(prometheus)
have prometheus-node-exporter || have node_exporter || packages+=(prometheus-node-exporter)
if [ "${#packages[@]}" -gt 0 ]; then
    say "apt-get install ${packages[*]}"
    apt-get update
    apt-get install -y --no-install-recommends "${packages[@]}"
fi
python_ok || die "python3 is missing or older than 3.9"
have promtool || die "promtool is missing after installing prometheus"
have prometheus-node-exporter || have node_exporter || die "node_exporter is missing after installing prometheus-node-exporter"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python3 "$root/examples/crawl-watchdog/crawl_watchdog.py" --help >/dev/null \
    || die "examples/crawl-watchdog/crawl_watchdog.py does not start"
exporter="$(command -v prometheus-node-exporter || command -v node_exporter)"
say "crawl example ready: $(python3 --version), $("$exporter" --version 2>&1 | head -n 1)"
