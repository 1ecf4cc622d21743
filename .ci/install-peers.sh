#!/usr/bin/env bash
# Installs the real peers that heartwire's tests talk to, on a fresh Debian machine, as root:
#   - Prometheus and promtool (Debian's package);
#   - the Python StatsD clients `statsd` and `datadog`, `jsonschema` (the config schema's
#     independent validator), and `grpcio` with `opentelemetry-proto` (the independent OTLP
#     receiver, tests/peers/python/otlp_receiver.py), in the venv tests/peers/.venv;
#   - the Node client `hot-shots` and its native `unix-dgram` module, in tests/peers/node.
# Safe to run again: each step leaves an existing, working install as it is.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
peers="$root/tests/peers"
venv="$peers/.venv"
export DEBIAN_FRONTEND=noninteractive

say() { printf '==> %s\n' "$*"; }
die() { printf 'install-peers: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

# faketime: libfaketime moves the wall and monotonic clocks of the agent in the restart tests.
debian_packages=(prometheus faketime)
# Only what the machine lacks: the image may bring its own Python and Node.
have python3 || debian_packages+=(python3)
if ! have python3 || ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    debian_packages+=(python3-venv)
fi
have node || debian_packages+=(nodejs)
have npm || debian_packages+=(npm)
# unix-dgram is a C++ addon built by node-gyp at install time.
have make || debian_packages+=(make)
have g++ || debian_packages+=(g++)

say "apt-get install ${debian_packages[*]}"
apt-get update
apt-get install -y --no-install-recommends "${debian_packages[@]}"
have promtool || die "promtool is missing after installing prometheus"
have faketime || die "faketime is missing after installing it"

say "Python clients in $venv"
if ! "$venv/bin/python3" -c 'import sys' >/dev/null 2>&1; then
    rm -rf "$venv"
    python3 -m venv "$venv"
fi
"$venv/bin/python3" -m pip install --quiet --disable-pip-version-check -r "$peers/python/requirements.txt"
"$venv/bin/python3" -c 'import statsd, datadog, jsonschema, grpc, opentelemetry.proto.collector.metrics.v1.metrics_service_pb2_grpc' \
    || die "the venv cannot import statsd, datadog, jsonschema, grpc and opentelemetry.proto"

say "Node client in $peers/node"
cd "$peers/node"
# package.json approves unix-dgram's install script (npm 11 blocks unapproved ones; older npm
# runs them all), so `npm ci` normally builds it.
npm ci --no-audit --no-fund
if ! node -e "require('unix-dgram')" >/dev/null 2>&1; then
    say "building unix-dgram"
    if npm help install-scripts >/dev/null 2>&1; then
        npm install-scripts approve unix-dgram
    fi
    npm rebuild unix-dgram
fi
node -e "require('hot-shots'); require('unix-dgram')" || die "node cannot load hot-shots with unix-dgram"

say "peers ready: $(promtool --version 2>&1 | head -n 1); $("$venv/bin/python3" -m pip list --format=freeze 2>/dev/null | grep -E '^(statsd|datadog|jsonschema|grpcio|opentelemetry-proto)==' | tr '\n' ' ')hot-shots $(node -p "require('hot-shots/package.json').version")"
