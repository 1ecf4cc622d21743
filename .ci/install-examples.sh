#!/usr/bin/env bash
# Installs what the examples of seeds 000 and 001 run on, on a fresh Debian machine, as root:
#   - examples/vf-worker: Node.js 18.3 or newer (Debian's `nodejs` when the machine has none) and
#     the example's package.json, installed with `npm ci` from its lockfile;
#   - examples/background-workers: nothing beyond the Rust toolchain, it is a workspace member.
# Safe to run again: a machine that already has a recent enough Node keeps it, and `npm ci`
# reinstalls exactly the lockfile.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DEBIAN_FRONTEND=noninteractive

say() { printf '==> %s\n' "$*"; }
die() { printf 'install-examples: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

# worker.js reads its options with node:util's parseArgs (Node 18.3).
node_ok() { have node && have npm && node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 18 || (a === 18 && b >= 3) ? 0 : 1)'; }
if ! node_ok; then
    say "apt-get install nodejs npm"
    apt-get update
    apt-get install -y --no-install-recommends nodejs npm
    node_ok || die "node $(node --version 2>/dev/null || echo missing) is older than 18.3"
fi

say "npm ci in examples/vf-worker"
cd "$root/examples/vf-worker"
npm ci --no-audit --no-fund
node worker.js --help >/dev/null || die "examples/vf-worker/worker.js does not start"
say "examples ready: node $(node --version)"
