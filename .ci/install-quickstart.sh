#!/usr/bin/env bash
# Installs what the quickstart's commands use (examples/quickstart/README.md), on a fresh Debian
# machine, as root: curl and OpenBSD netcat (`nc -u -w0`, `nc -q0`). Safe to run again: tools
# already there are left as they are.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

say() { printf '==> %s\n' "$*"; }
die() { printf 'install-quickstart: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

packages=()
have curl || packages+=(curl)
have nc || packages+=(netcat-openbsd)
if [ "${#packages[@]}" -gt 0 ]; then
    say "apt-get install ${packages[*]}"
    apt-get update
    apt-get install -y --no-install-recommends "${packages[@]}"
fi
have curl || die "curl is missing after installing it"
have nc || die "nc is missing after installing netcat-openbsd"
# The quickstart's flags are OpenBSD netcat's: -q0 quits after sending over TCP.
nc -h 2>&1 | grep -q -- '-q' || die "this nc has no -q flag: install netcat-openbsd"
say "quickstart tools ready: $(curl --version | head -n 1 | cut -d' ' -f1-2), nc (netcat-openbsd)"
