"""Rendering and validating the heartwire chart with the Helm SDK and kubernetes-validate.

`helm_python` is Helm v4's Go SDK behind a C ABI: `Chart.render` is `helm template` (it checks
the values against values.schema.json first, as `helm install` does) and `lint` is `helm lint`.
"""

import json
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import helm_python
import jsonschema
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CHART = REPO / "helm" / "heartwire"
GOOD_VALUES = HERE / "values"
BAD_VALUES = HERE / "bad-values"
CRD_SCHEMAS = HERE / "schemas" / "monitoring.coreos.com_v1.json"

RELEASE = "shop"
NAMESPACE = "apps"
# The oldest Kubernetes the chart supports (native sidecars on by default) and the newest schema
# kubernetes-validate bundles.
KUBE_VERSIONS = ("1.29.0", "1.37.0")
CRD_GROUP = "monitoring.coreos.com/"


class CheckFailed(Exception):
    """A property of the chart does not hold."""


def check(condition, message):
    if not condition:
        raise CheckFailed(message)


def workspace_version():
    with open(REPO / "Cargo.toml", "rb") as manifest:
        return tomllib.load(manifest)["workspace"]["package"]["version"]


def load_values(path):
    with open(path) as file:
        return yaml.safe_load(file) or {}


def good_values_files():
    files = sorted(GOOD_VALUES.glob("*.yaml"))
    check(files, f"no values files in {GOOD_VALUES}")
    return files


def render(values, chart=None):
    """Renders like `helm template RELEASE CHART -n NAMESPACE -f values`: {template: [docs]}."""
    loaded = helm_python.Chart.load(str(chart or CHART))
    try:
        manifests = loaded.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    finally:
        loaded.close()
    rendered = {}
    for template, text in manifests.items():
        if template.endswith("NOTES.txt"):
            continue
        docs = [doc for doc in yaml.safe_load_all(text) if doc is not None]
        if docs:
            rendered[template] = docs
    return rendered


def documents(rendered):
    return [doc for docs in rendered.values() for doc in docs]


def find(rendered, kind, name=None):
    """The one rendered object of `kind` (and `name`), or None."""
    matches = [
        doc
        for doc in documents(rendered)
        if doc["kind"] == kind and (name is None or doc["metadata"]["name"] == name)
    ]
    check(len(matches) <= 1, f"{len(matches)} objects of kind {kind} named {name}")
    return matches[0] if matches else None


def kinds(rendered):
    return sorted(doc["kind"] for doc in documents(rendered))


def lint(values, chart=None):
    """`helm lint --strict`: the findings worse than info (icon is recommended)."""
    report = helm_python.lint(str(chart or CHART), values, strict=True, namespace=NAMESPACE)
    return [m for m in report["messages"] if m["severity"] >= 2] + [
        {"severity": 3, "path": "", "error": error}
        for error in report["errors"]
        if not any(error in m["error"] for m in report["messages"])
    ]


def kubernetes_validate(docs, label):
    """Runs `kubernetes-validate --strict` on the core (non-CRD) docs for every supported
    Kubernetes version; returns the number of docs checked."""
    core = [doc for doc in docs if not doc["apiVersion"].startswith(CRD_GROUP)]
    check(core, f"{label}: nothing to validate")
    binary = Path(sys.executable).parent / "kubernetes-validate"
    with tempfile.TemporaryDirectory(prefix="heartwire-chart") as scratch:
        path = Path(scratch) / f"{label}.yaml"
        path.write_text(yaml.safe_dump_all(core, sort_keys=False))
        for version in KUBE_VERSIONS:
            result = subprocess.run(
                [str(binary), "--strict", "-k", version, str(path)],
                capture_output=True,
                text=True,
                check=False,
            )
            output = result.stdout + result.stderr
            passed = len(re.findall(r"^INFO .* passed for resource", output, re.M))
            check(
                result.returncode == 0 and passed == len(core),
                f"{label}: kubernetes-validate --strict -k {version} "
                f"(exit {result.returncode}, {passed}/{len(core)} passed):\n{output}",
            )
    return len(core)


def crd_validate(docs, label):
    """Checks the monitoring.coreos.com objects against the chart tests' own schemas (the
    fields the chart renders, with the CRDs' names and types): kubernetes-validate bundles only
    the core Kubernetes schemas. Returns the number of docs checked."""
    schemas = json.loads(CRD_SCHEMAS.read_text())
    checked = 0
    for doc in docs:
        if not doc["apiVersion"].startswith(CRD_GROUP):
            continue
        check(doc["apiVersion"] == "monitoring.coreos.com/v1", f"{label}: {doc['apiVersion']}")
        schema = dict(schemas["kinds"][doc["kind"]], definitions=schemas["definitions"])
        errors = sorted(
            jsonschema.Draft7Validator(schema).iter_errors(doc), key=lambda e: list(e.path)
        )
        check(
            not errors,
            f"{label}: {doc['kind']} {doc['metadata']['name']}: "
            + "; ".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors),
        )
        checked += 1
    return checked


def render_error(values, chart=None):
    """The message Helm gives for values it refuses, or None if they render."""
    try:
        render(values, chart)
    except (helm_python.HelmValuesError, helm_python.HelmRenderError) as error:
        return str(error)
    return None


def pod_spec(rendered, deployment):
    found = find(rendered, "Deployment", deployment)
    check(found is not None, f"no Deployment {deployment} in {kinds(rendered)}")
    return found["spec"]["template"]["spec"]


def config_of(rendered):
    configmap = find(rendered, "ConfigMap")
    check(configmap is not None, "no ConfigMap rendered")
    check("heartwire.yaml" in configmap["data"], f"ConfigMap keys: {list(configmap['data'])}")
    return configmap, yaml.safe_load(configmap["data"]["heartwire.yaml"])


def say(message):
    print(f"ok: {message}", flush=True)
