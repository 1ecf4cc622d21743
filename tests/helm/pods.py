"""What the example Deployment's pod must look like, derived from the values it was rendered
with (merged with the chart's defaults the way `helm install` merges them)."""

import re

import helm_python

import chartlib as c
from chartlib import check

HARDENED_SIDECAR = {
    "runAsNonRoot": True,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
DOWNWARD_API = {
    "K8S_POD_NAME": "metadata.name",
    "K8S_POD_UID": "metadata.uid",
    "K8S_NAMESPACE_NAME": "metadata.namespace",
    "K8S_NODE_NAME": "spec.nodeName",
}
POD_IDENTITY = {
    "k8s.pod.name": "$(K8S_POD_NAME)",
    "k8s.pod.uid": "$(K8S_POD_UID)",
    "k8s.namespace.name": "$(K8S_NAMESPACE_NAME)",
    "k8s.node.name": "$(K8S_NODE_NAME)",
}


def merged(values):
    chart = helm_python.Chart.load(str(c.CHART))
    try:
        return chart.merge_values(values), chart.metadata
    finally:
        chart.close()


def fullname(values):
    return values["fullnameOverride"] or f"{c.RELEASE}-heartwire"


def check_pods(values, label):
    """Checks the example pod rendered with `values`; yields what it showed."""
    effective, metadata = merged(values)
    rendered = c.render(values)
    spec = c.pod_spec(rendered, f"{fullname(effective)}-example")
    sidecar = check_native_sidecar(spec, effective, metadata, label)
    yield f"{label}: the sidecar is an init container with restartPolicy Always, image {sidecar['image']}"
    config = check_config_directory(rendered, spec, sidecar, effective, label)
    yield f"{label}: the ConfigMap is mounted as a directory at {effective['volumes']['config']['mountPath']}"
    check_shared_sockets(spec, sidecar, config, effective, label)
    yield f"{label}: the socket emptyDir is mounted by the sidecar and every app container"
    check_security(spec, sidecar, effective, label)
    uid = sidecar["securityContext"].get("runAsUser", "assigned by the platform")
    yield f"{label}: non-root (uid {uid}), read-only root, no capabilities, RuntimeDefault seccomp"
    check_invalid_config_behaviour(sidecar, effective, label)
    yield f"{label}: HEARTWIRE_ON_INVALID_CONFIG={effective['sidecar']['onInvalidConfig']}"
    check_downward_api(sidecar, effective, label)
    yield f"{label}: downward-API pod identity in OTEL_RESOURCE_ATTRIBUTES"
    check_ports_and_probes(rendered, sidecar, config, effective, label)
    yield f"{label}: port {effective['metrics']['port']} agrees in config, container, probes and Service"


def check_native_sidecar(spec, values, metadata, label):
    name = values["sidecar"]["name"]
    sidecars = [ct for ct in spec.get("initContainers", []) if ct["name"] == name]
    check(len(sidecars) == 1, f"{label}: init containers {spec.get('initContainers')}")
    check(all(ct["name"] != name for ct in spec["containers"]), f"{label}: {name} is also an app container")
    sidecar = sidecars[0]
    check(sidecar.get("restartPolicy") == "Always", f"{label}: restartPolicy {sidecar.get('restartPolicy')}")
    version = c.workspace_version()
    check(metadata["appVersion"] == version, f"appVersion {metadata['appVersion']} != workspace {version}")
    image = values["image"]
    registry = (values.get("global") or {}).get("imageRegistry") or ""
    repository = f"{registry.rstrip('/')}/{image['repository']}" if registry else image["repository"]
    expected = (f"{repository}@{image['digest']}" if image["digest"]
                else f"{repository}:{image['tag'] or version}")
    check(sidecar["image"] == expected, f"{label}: image {sidecar['image']} != {expected}")
    check(sidecar["resources"] == expected_resources(values),
          f"{label}: resources {sidecar['resources']} != {expected_resources(values)}")
    return sidecar


def derived_memory_mi(config):
    """The README's memory arithmetic ("Memory"), computed here from the rendered config:
    32 MiB + queue_batches × the largest datagram batch + queue_batches × 16 KiB + the receive
    buffers of the UDP receive threads past the first + queue_batches × the UDP batch with
    parse_on_receive + max_series × 1 KiB, rounded up to MiB;
    the agent's defaults for keys the config leaves out."""
    queue = (config.get("pipeline") or {}).get("queue_batches", 256)
    listen = config.get("listen") or {}
    batch = max((listen.get(key) or {}).get("batch_datagrams", 64)
                * (listen.get(key) or {}).get("max_datagram_bytes", 8192)
                for key in ["udp", "unix_datagram"])
    udp = listen.get("udp") or {}
    receive = (udp.get("receive_threads", 1) - 1) * udp.get("batch_datagrams", 64) * udp.get(
        "max_datagram_bytes", 8192)
    parsed = queue * udp.get("batch_datagrams", 64) * udp.get("max_datagram_bytes", 8192) if udp.get(
        "parse_on_receive", False) else 0
    series = (config.get("limits") or {}).get("max_series", 100_000)
    total = 32 * 2**20 + queue * batch + queue * 16 * 2**10 + receive + parsed + series * 2**10
    return -(-total // 2**20)


def expected_resources(values):
    sidecar = values["sidecar"]
    preset = sidecar.get("resourcesPreset") or ""
    if not preset:
        return sidecar["resources"]
    _, config = c.config_of(c.render(values))
    limits = {"cpu": sidecar["presetCpu"], "memory": f"{derived_memory_mi(config)}Mi"}
    requests = limits if preset == "guaranteed" else sidecar["resources"]["requests"]
    return {"requests": requests, "limits": limits}



def check_config_directory(rendered, spec, sidecar, values, label):
    configmap, config = c.config_of(rendered)
    volume_name = values["volumes"]["config"]["name"]
    mount_path = values["volumes"]["config"]["mountPath"]
    volume = volume_of(spec, volume_name, label)
    check(volume.get("configMap", {}).get("name") == configmap["metadata"]["name"],
          f"{label}: volume {volume} does not hold ConfigMap {configmap['metadata']['name']}")
    mount = mount_of(sidecar, volume_name, label)
    check("subPath" not in mount and "subPathExpr" not in mount,
          f"{label}: the config is mounted with a subPath; hot reload would never see updates")
    check(mount["mountPath"] == mount_path and mount.get("readOnly") is True, f"{label}: mount {mount}")
    check(sidecar["args"] == ["serve", "--config", f"{mount_path}/heartwire.yaml"],
          f"{label}: args {sidecar['args']}")
    check_subset(values["config"], config, label, "config")
    return config


def check_subset(wanted, got, label, key):
    """Every value set in `wanted` (the values' `config`) reaches the rendered agent config."""
    if isinstance(wanted, dict):
        check(isinstance(got, dict), f"{label}: {key} is {got!r}")
        for name, value in wanted.items():
            if value is not None:
                check(name in got, f"{label}: {key}.{name} is missing from heartwire.yaml")
                check_subset(value, got[name], label, f"{key}.{name}")
    else:
        check(got == wanted, f"{label}: {key} is {got!r}, not {wanted!r}")


def check_shared_sockets(spec, sidecar, config, values, label):
    sockets = values["volumes"]["sockets"]
    volume = volume_of(spec, sockets["name"], label)
    empty_dir = volume.get("emptyDir")
    check(empty_dir is not None, f"{label}: the socket volume is not an emptyDir: {volume}")
    check(str(empty_dir.get("sizeLimit")) == str(sockets["sizeLimit"]), f"{label}: emptyDir {empty_dir}")
    check(empty_dir.get("medium", "") == sockets["medium"], f"{label}: emptyDir {empty_dir}")
    for container in [sidecar, *spec["containers"]]:
        mount = mount_of(container, sockets["name"], label)
        check(mount["mountPath"] == sockets["mountPath"], f"{label}: {container['name']} mounts {mount}")
    for key in ["unix_datagram", "unix_stream"]:
        socket = config["listen"].get(key, {})
        if socket.get("enabled"):
            check(socket["path"].startswith(sockets["mountPath"] + "/"),
                  f"{label}: {key} path {socket['path']} is outside {sockets['mountPath']}")
    demo = next(ct for ct in spec["containers"] if ct["name"] == "demo")
    env = {e["name"]: e.get("value") for e in demo["env"]}
    check(env["HEARTWIRE_SOCKET"] == config["listen"]["unix_datagram"]["path"],
          f"{label}: the demo sends to {env['HEARTWIRE_SOCKET']}")


def check_security(spec, sidecar, values, label):
    context = sidecar["securityContext"]
    wanted = values["sidecar"]["securityContext"]
    expected = dict(HARDENED_SIDECAR, **{key: wanted[key] for key in ["runAsUser", "runAsGroup"]
                                         if wanted.get(key) is not None})
    check(context == expected, f"{label}: sidecar securityContext {context}")
    check(context.get("runAsUser", 1) > 0, f"{label}: uid {context.get('runAsUser')} is root")
    for container in spec["containers"]:
        app = container["securityContext"]
        for key, value in HARDENED_SIDECAR.items():
            check(app.get(key) == value, f"{label}: {container['name']} securityContext.{key} = {app.get(key)}")
    pod = spec["securityContext"]
    check(pod["runAsNonRoot"] is True and pod["seccompProfile"] == {"type": "RuntimeDefault"},
          f"{label}: pod securityContext {pod}")
    wanted = {k: v for k, v in values["podSecurityContext"].items() if v is not None}
    check(pod == wanted, f"{label}: pod securityContext {pod} != podSecurityContext {wanted}")
    check(spec["automountServiceAccountToken"] is False, f"{label}: the service account token is mounted")


def check_invalid_config_behaviour(sidecar, values, label):
    env = {e["name"]: e.get("value") for e in sidecar["env"]}
    wanted = values["sidecar"]["onInvalidConfig"]
    check(env.get("HEARTWIRE_ON_INVALID_CONFIG") == wanted,
          f"{label}: HEARTWIRE_ON_INVALID_CONFIG {env.get('HEARTWIRE_ON_INVALID_CONFIG')} != {wanted}")


def check_downward_api(sidecar, values, label):
    env = sidecar["env"]
    names = [e["name"] for e in env]
    for name, field in DOWNWARD_API.items():
        entry = next((e for e in env if e["name"] == name), None)
        check(entry is not None and entry.get("valueFrom") == {"fieldRef": {"fieldPath": field}},
              f"{label}: {name} is {entry}")
    attributes_entry = next(e for e in env if e["name"] == "OTEL_RESOURCE_ATTRIBUTES")
    # Kubernetes expands $(VAR) only for variables defined earlier in the list.
    for reference in re.findall(r"\$\((\w+)\)", attributes_entry["value"]):
        check(reference in names[: names.index("OTEL_RESOURCE_ATTRIBUTES")],
              f"{label}: $({reference}) is not defined before OTEL_RESOURCE_ATTRIBUTES")
    attributes = dict(pair.split("=", 1) for pair in attributes_entry["value"].split(","))
    expected = dict(POD_IDENTITY, **{"k8s.container.name": values["sidecar"]["name"]},
                    **{k: str(v) for k, v in values["otel"]["resourceAttributes"].items()})
    check(attributes == expected, f"{label}: OTEL_RESOURCE_ATTRIBUTES {attributes} != {expected}")
    service = next(e["value"] for e in env if e["name"] == "OTEL_SERVICE_NAME")
    check(service == (values["otel"]["serviceName"] or fullname(values)), f"{label}: OTEL_SERVICE_NAME {service}")
    for extra in values["sidecar"]["extraEnv"]:
        check(extra in env, f"{label}: extraEnv {extra} missing")


def check_ports_and_probes(rendered, sidecar, config, values, label):
    port = values["metrics"]["port"]
    check(config["http"]["address"] == f"0.0.0.0:{port}", f"{label}: http.address {config['http']}")
    check(sidecar["ports"] == [{"name": values["metrics"]["portName"], "containerPort": port, "protocol": "TCP"}],
          f"{label}: ports {sidecar['ports']}")
    for kind in ["startup", "liveness", "readiness"]:
        probe = sidecar[f"{kind}Probe"]
        wanted = values["probes"][kind]
        check(probe["httpGet"] == {"path": wanted["path"], "port": port}, f"{label}: {kind} probe {probe}")
        for key in ["periodSeconds", "timeoutSeconds", "failureThreshold"]:
            check(probe[key] == wanted[key], f"{label}: {kind} probe {key} {probe[key]}")
    service = c.find(rendered, "Service")
    if values["service"]["enabled"]:
        ports = service["spec"]["ports"]
        check(ports == [{"name": values["metrics"]["portName"], "port": port, "targetPort": port, "protocol": "TCP"}],
              f"{label}: Service ports {ports}")
    else:
        check(service is None, f"{label}: a Service although service.enabled=false")


def volume_of(spec, name, label):
    found = [v for v in spec["volumes"] if v["name"] == name]
    check(len(found) == 1, f"{label}: volumes named {name}: {found}")
    return found[0]


def mount_of(container, name, label):
    found = [m for m in container.get("volumeMounts") or [] if m["name"] == name]
    check(len(found) == 1, f"{label}: {container['name']} mounts of {name}: {found}")
    return found[0]

