#!/usr/bin/env bash
# Installs the chart tests' tools on a fresh Debian machine, as root: the Helm SDK
# (helm-python-sdk: Helm v4 as a shared library, no helm binary), kubernetes-validate (the
# Kubernetes schemas, offline) and their dependencies, pinned in tests/helm/requirements.txt,
# into the venv tests/helm/.venv. Safe to run again: a venv that already has the pinned
# versions is left as it is.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
requirements="$root/tests/helm/requirements.txt"
venv="$root/tests/helm/.venv"
export DEBIAN_FRONTEND=noninteractive

say() { printf '==> %s\n' "$*"; }
die() { printf 'install-helm-tools: %s\n' "$*" >&2; exit 1; }

# helm-python-sdk needs Python 3.10 or later; the chart tests read Cargo.toml with tomllib (3.11).
python_ok() { python3 -c 'import sys, ensurepip, venv; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; }
if ! python_ok; then
    say "apt-get install python3 python3-venv"
    apt-get update
    apt-get install -y --no-install-recommends python3 python3-venv
    python_ok || die "python3 is older than 3.11 or has no venv module"
fi

if ! "$venv/bin/python3" -c 'import sys' >/dev/null 2>&1; then
    say "creating $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
fi
say "pip install -r tests/helm/requirements.txt"
"$venv/bin/python3" -m pip install --quiet --disable-pip-version-check -r "$requirements"

# The SDK loads its bundled libhelm at import; a wheel for the wrong platform fails here, not
# in the tests.
"$venv/bin/python3" -c 'import helm_python, kubernetes_validate, jsonschema, yaml; helm_python.helm_sdk_version()' \
    || die "the venv cannot load the Helm SDK"
[ -x "$venv/bin/kubernetes-validate" ] || die "no kubernetes-validate in $venv/bin"
say "helm tools ready: Helm SDK $("$venv/bin/python3" -c 'import helm_python; print(helm_python.helm_sdk_version())'), kubernetes-validate $("$venv/bin/kubernetes-validate" --version 2>&1 | tail -n 1)"
