"""The chart README's promises: its include snippets work in another chart, and its values table
covers every value."""

import re
import shutil
import tempfile
from pathlib import Path

import yaml

import chartlib as c
from chartlib import check
from pods import check_native_sidecar, merged, mount_of, volume_of

README = c.CHART / "README.md"


def snippet(name):
    """The fenced block right after `<!-- snippet: NAME -->` in the README."""
    match = re.search(rf"<!-- snippet: {name} -->\n```\w*\n(.*?)\n```", README.read_text(), re.S)
    check(match, f"README.md has no snippet {name}")
    return match.group(1) + "\n"


def parent_chart(scratch):
    """A chart `shop` made of the README's snippets, with heartwire vendored in charts/ as
    `helm dependency build` leaves it."""
    parent = Path(scratch) / "shop"
    (parent / "templates").mkdir(parents=True)
    (parent / "Chart.yaml").write_text(snippet("parent-chart"))
    (parent / "values.yaml").write_text(snippet("parent-values"))
    (parent / "templates" / "deployment.yaml").write_text(snippet("parent-deployment"))
    shutil.copytree(c.CHART, parent / "charts" / "heartwire")
    return parent


def check_include():
    with tempfile.TemporaryDirectory(prefix="heartwire-parent") as scratch:
        parent = parent_chart(scratch)
        findings = c.lint({}, chart=parent)
        check(not findings, f"helm lint --strict of the README's parent chart: {findings}")
        yield "the README's parent chart passes helm lint --strict"
        rendered = c.render({}, chart=parent)
    docs = c.documents(rendered)
    check(c.kinds(rendered) == ["ConfigMap", "Deployment", "PodMonitor", "Service"],
          f"the parent chart renders {c.kinds(rendered)}")
    core, crds = c.kubernetes_validate(docs, "parent"), c.crd_validate(docs, "parent")
    yield f"it renders {core} manifests that pass kubernetes-validate --strict and {crds} PodMonitor"

    values, metadata = merged({})
    values = dict(values, example=dict(values["example"], enabled=False))
    spec = c.pod_spec(rendered, f"{c.RELEASE}-shop")
    sidecar = check_native_sidecar(spec, values, metadata, "parent")
    configmap = c.find(rendered, "ConfigMap")
    config_volume = volume_of(spec, values["volumes"]["config"]["name"], "parent")
    check(config_volume["configMap"]["name"] == configmap["metadata"]["name"],
          f"the pod mounts ConfigMap {config_volume['configMap']['name']}, "
          f"the subchart renders {configmap['metadata']['name']}")
    yield f"the included sidecar mounts the ConfigMap {configmap['metadata']['name']} the subchart renders"
    sockets = values["volumes"]["sockets"]
    app, = spec["containers"]
    for container in [sidecar, app]:
        check(mount_of(container, sockets["name"], "parent")["mountPath"] == sockets["mountPath"],
              f"{container['name']} does not mount the sockets at {sockets['mountPath']}")
    socket_env = next(e["value"] for e in app["env"] if e["name"] == "HEARTWIRE_SOCKET")
    _, config = c.config_of(rendered)
    check(socket_env == config["listen"]["unix_datagram"]["path"],
          f"the README's app sends to {socket_env}, the agent listens on {config['listen']['unix_datagram']['path']}")
    yield "the app container shares the socket directory and sends where the agent listens"
    shop = {"app.kubernetes.io/name": "shop"}
    service = c.find(rendered, "Service")
    monitor = c.find(rendered, "PodMonitor")
    check(service["spec"]["selector"] == shop, f"Service selector {service['spec']['selector']}")
    check(monitor["spec"]["selector"]["matchLabels"] == shop, f"PodMonitor selector {monitor['spec']}")
    yield "the Service and the PodMonitor select the app's pods"
    annotations = c.find(rendered, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    checksum = annotations.get("checksum/config", "")
    check(re.fullmatch(r"[0-9a-f]{64}", checksum), f"the parent pod's checksum/config {checksum!r}")
    yield "the parent pod carries checksum/config from heartwire.configChecksum"


def value_keys(values, prefix=""):
    """Dotted keys of the values a user sets: the leaves, but maps of free-form content
    (resources, labels, the agent's config) as one key."""
    free_form = {"config", "resources", "podLabels", "podAnnotations", "nodeSelector",
                 "affinity", "labels", "annotations", "selector", "resourceAttributes",
                 "securityContext", "podSecurityContext", "commonLabels", "commonAnnotations",
                 "namespaceSelector", "extraLabels", "alertLabels"}
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and not (key in free_form and prefix != "volumes."):
            yield from value_keys(value, f"{path}.")
        else:
            yield path


def check_values_table():
    values = yaml.safe_load((c.CHART / "values.yaml").read_text())
    table = set(re.findall(r"^\| `([^`]+)` \|", README.read_text(), re.M))
    keys = list(value_keys(values))
    probes = [k for k in keys if k.startswith("probes.")]
    wanted = {k for k in keys if k not in probes} | {k.rsplit(".", 1)[0] + ".*" for k in probes}
    missing = sorted(wanted - table)
    check(not missing, f"values missing from the README's table: {missing}")
    unknown = sorted(k for k in table - wanted if not k.startswith("heartwire."))
    check(not unknown, f"the README's table lists values that do not exist: {unknown}")
    schema = yaml.safe_load((c.CHART / "values.schema.json").read_text())
    check(sorted(schema["properties"]) == sorted({"global", *values}),
          f"top-level keys: schema {sorted(schema['properties'])}, values {sorted(values)}")
    yield f"the README's values table covers all {len(wanted)} values, and the schema every top-level key"
