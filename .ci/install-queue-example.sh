#!/usr/bin/env bash
# Installs what the queue-broker example (seed 004) runs on, on a fresh Debian machine, as root:
# a Go toolchain (Debian's `golang-go` when the machine has no `go`). The example uses only Go's
# standard library, so nothing else is downloaded. Safe to run again: a machine that already has
# a Go new enough for the example's go.mod keeps it.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
example="$root/examples/queue-broker"
export DEBIAN_FRONTEND=noninteractive

say() { printf '==> %s\n' "$*"; }
die() { printf 'install-queue-example: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

# The example's go.mod says `go 1.19`, Debian 12's golang-go.
go_ok() { have go && go version | grep -Eq 'go1\.(19|[2-9][0-9])(\.|[^0-9]|$)'; }
if ! go_ok; then
    say "apt-get install golang-go"
    apt-get update
    apt-get install -y --no-install-recommends golang-go
    go_ok || die "go $(go version 2>/dev/null || echo missing) is older than 1.19"
fi

say "go vet and go build in examples/queue-broker"
build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT
# The module proxy off proves the example needs nothing beyond the standard library; cgo off
# lets Go 1.19 build without a C compiler (golang-go only recommends gcc).
export GOPROXY=off GOFLAGS=-mod=readonly GOTOOLCHAIN=local CGO_ENABLED=0
(cd "$example" && go vet ./... && go build -o "$build/queue-broker" .) \
    || die "examples/queue-broker does not build"
"$build/queue-broker" -help >/dev/null 2>&1 || die "examples/queue-broker does not start"
say "queue example ready: $(go version)"
