#!/usr/bin/env bash
# Installs the browser that the status page test renders with, on a fresh Debian machine, as
# root: Debian's `chromium` (/usr/bin/chromium). Safe to run again: a working install is left as
# it is.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

say() { printf '==> %s\n' "$*"; }
die() { printf 'install-browser: %s\n' "$*" >&2; exit 1; }

chromium_works() { /usr/bin/chromium --version >/dev/null 2>&1; }

if ! chromium_works; then
    say "apt-get install chromium"
    apt-get update
    # Fonts come with chromium's dependencies; without recommends the image stays small.
    apt-get install -y --no-install-recommends chromium
fi
chromium_works || die "/usr/bin/chromium does not run after installing Debian's chromium"
say "browser ready: $(/usr/bin/chromium --version 2>/dev/null | head -n 1)"
