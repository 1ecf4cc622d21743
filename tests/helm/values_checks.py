"""The chart's behaviour beyond one pod: the config checksum, agent-down detection that follows
the release, OpenShift-style security contexts, and the values a mature chart has."""

import chartlib as c
from chartlib import check
from pods import derived_memory_mi, fullname, merged

# The restart-only (`Fixed`) sections of the agent's config, and a change to each; and the live
# sections, which the agent reloads in place.
RESTART_ONLY = {
    "listen": {"udp": {"enabled": True}},
    "pipeline": {"queue_batches": 128},
    "shutdown": {"drain_timeout": "9s"},
    "limits": {"max_series": 5000},
    "buckets": {"http_duration": [0.1, 1.0]},
    "families": {"workers": {"status": "worker_status"}},
    "otlp": {"headers": {"x-tenant": "shop"}},
    "textfile": {"interval": "30s"},
    "state": {"interval": "30s"},
}
LIVE = {
    "jobs": {"nightly": {"cron": "0 3 * * *"}},
    "workers": {"mailer": {"ttl": "60s"}},
    "defaults": {"worker_ttl": "60s"},
    "statsd": {"mapping": {"mappings": []}},
}


def check_values():
    yield from check_checksum()
    yield from check_agent_down_follows_the_release()
    yield from check_openshift()
    yield from check_mature()
    yield from check_memory_arithmetic()


def checksum_and_config(values):
    rendered = c.render(values)
    pod = c.find(rendered, "Deployment")["spec"]["template"]["metadata"]
    return pod["annotations"]["checksum/config"], c.config_of(rendered)[0]["data"]["heartwire.yaml"]


def check_checksum():
    base, base_config = checksum_and_config({})
    check(len(base) == 64, f"checksum/config {base!r} is not a sha256")
    check(checksum_and_config({})[0] == base, "the checksum is not stable")
    for section, change in RESTART_ONLY.items():
        checksum, config = checksum_and_config({"config": {section: change}})
        check(config != base_config, f"config.{section} did not change heartwire.yaml")
        check(checksum != base, f"a change to config.{section} (restart-only) keeps checksum/config")
    checksum, _ = checksum_and_config({"metrics": {"port": 9127}})
    check(checksum != base, "a new metrics.port (http.address) keeps checksum/config")
    yield (f"checksum/config changes with each restart-only section "
           f"({', '.join(RESTART_ONLY)}, and metrics.port through http)")
    for section, change in LIVE.items():
        checksum, config = checksum_and_config({"config": {section: change}})
        check(config != base_config, f"config.{section} did not change heartwire.yaml")
        check(checksum == base, f"a change to config.{section} (live) changes checksum/config")
    yield f"checksum/config stays when only live sections change ({', '.join(LIVE)}): no roll"


def heartwire_down(rule):
    alert = next(r for g in rule["spec"]["groups"] for r in g["rules"]
                 if r.get("alert") == "HeartwireDown")
    return alert["expr"]


def check_agent_down_follows_the_release():
    values = c.load_values(c.GOOD_VALUES / "renamed-sidecar.yaml")
    effective, _ = merged(values)
    rendered = c.render(values)
    job = f"{c.NAMESPACE}/{fullname(effective)}"
    sidecar, = c.pod_spec(rendered, f"{fullname(effective)}-example")["initContainers"]
    check(sidecar["name"] == "agent", f"the sidecar is {sidecar['name']}")
    expr = heartwire_down(c.find(rendered, "PrometheusRule"))
    check(expr == f'up{{job="{job}"}} == 0 or absent(up{{job="{job}"}})', f"HeartwireDown: {expr}")
    check("container" not in expr, f"HeartwireDown still reads the container name: {expr}")
    monitor = c.find(rendered, "PodMonitor")
    endpoint, = monitor["spec"]["podMetricsEndpoints"]
    check({"targetLabel": "job", "replacement": job} in endpoint["relabelings"],
          f"the monitor does not set job={job}: {endpoint}")
    pod_labels = c.find(rendered, "Deployment")["spec"]["template"]["metadata"]["labels"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    check(selector.items() <= pod_labels.items(), f"{selector} does not select {pod_labels}")
    check(selector["app.kubernetes.io/instance"] == c.RELEASE, f"selector {selector}")
    yield (f"renamed-sidecar.yaml: sidecar `agent`; the monitor selects this release's pods and "
           f"sets job={job}, which HeartwireDown matches per pod (up == 0) and as a whole (absent)")
    other = c.render(dict(values, fullnameOverride="billing-heartwire"))
    other_expr = heartwire_down(c.find(other, "PrometheusRule"))
    check(other_expr != expr and f'job="{c.NAMESPACE}/billing-heartwire"' in other_expr,
          f"another release's HeartwireDown: {other_expr}")
    yield "another release gets its own scrape job: its targets neither mask nor trip this one's"


def check_openshift():
    values = c.load_values(c.GOOD_VALUES / "openshift.yaml")
    spec = c.pod_spec(c.render(values), f"{c.RELEASE}-heartwire-example")
    ids = {"runAsUser", "runAsGroup", "fsGroup"}
    contexts = [spec["securityContext"]] + [
        ct.get("securityContext", {}) for ct in spec["initContainers"] + spec["containers"]]
    for context in contexts:
        check(not ids & context.keys(), f"openshift.yaml: a fixed id in {context}")
        check(context.get("runAsNonRoot") is True, f"openshift.yaml: not runAsNonRoot: {context}")
    yield "openshift.yaml: no runAsUser, runAsGroup or fsGroup in the pod; still runAsNonRoot"


def check_mature():
    values = c.load_values(c.GOOD_VALUES / "mature.yaml")
    rendered = c.render(values)
    for doc in c.documents(rendered):
        name = f"{doc['kind']} {doc['metadata']['name']}"
        check(doc["metadata"]["labels"].get("team") == "platform", f"{name}: no commonLabels")
        check((doc["metadata"].get("annotations") or {}).get("example.com/owner") == "platform",
              f"{name}: no commonAnnotations")
    pod = c.find(rendered, "Deployment")["spec"]["template"]
    check(pod["metadata"]["labels"].get("team") == "platform", "the pods lack commonLabels")
    spec = pod["spec"]
    sidecar, = spec["initContainers"]
    check(sidecar["image"] == "mirror.example.com/heartwire/heartwire:0.1.0", sidecar["image"])
    check(spec["imagePullSecrets"] == [{"name": "mirror-credentials"},
                                       {"name": "registry-credentials"}],
          f"imagePullSecrets {spec.get('imagePullSecrets')}")
    yield ("mature.yaml: commonLabels and commonAnnotations on every resource, the image from "
           "global.imageRegistry, global and chart pull secrets")
    resources = sidecar["resources"]
    check(resources["requests"] == resources["limits"], f"requests != limits: {resources}")
    memory = derived_memory_mi(c.config_of(rendered)[1])
    check(resources["limits"] == {"cpu": "100m", "memory": f"{memory}Mi"}, f"resources {resources}")
    yield f"mature.yaml: resourcesPreset guaranteed: requests = limits = 100m, {memory}Mi (from the caps)"
    monitor = c.find(rendered, "ServiceMonitor")["spec"]
    endpoint, = monitor["endpoints"]
    check(monitor["namespaceSelector"] == {"matchNames": ["apps"]}, f"{monitor}")
    check(monitor["sampleLimit"] == 50000, f"sampleLimit {monitor.get('sampleLimit')}")
    check(endpoint["relabelings"][1:] == values["monitor"]["relabelings"], f"{endpoint}")
    check(endpoint["metricRelabelings"] == values["monitor"]["metricRelabelings"], f"{endpoint}")
    yield "mature.yaml: the monitor's namespaceSelector, sampleLimit, relabelings and metricRelabelings"
    rules = {r["alert"]: r for g in c.find(rendered, "PrometheusRule")["spec"]["groups"]
             for r in g["rules"]}
    for disabled in values["prometheusRule"]["disabled"]:
        check(disabled not in rules, f"{disabled} is still in the PrometheusRule")
    check(all(r["labels"]["team"] == "platform" for r in rules.values()), "extraLabels missing")
    check(rules["HeartwireDown"]["labels"]["severity"] == "page", "alertLabels not applied")
    check(rules["HeartwireDroppingInput"]["labels"]["severity"] == "warning", "severity lost")
    yield (f"mature.yaml: {', '.join(values['prometheusRule']['disabled'])} left out, team on every "
           f"alert, HeartwireDown routed with severity page ({len(rules)} alerts)")


def check_memory_arithmetic():
    def memory(values):
        rendered = c.render(values)
        return c.find(rendered, "Deployment")["spec"]["template"]["spec"]["initContainers"][0][
            "resources"]["limits"]["memory"]

    preset = {"sidecar": {"resourcesPreset": "guaranteed"}}
    # 32 MiB + 256 × 64 × 8 KiB (128 MiB) + 256 × 16 KiB (4 MiB) + 100 000 × 1 KiB (97.66 MiB)
    check(memory(preset) == "262Mi", f"the default caps give {memory(preset)}")
    bigger = dict(preset, config={"listen": {"udp": {"batch_datagrams": 128}}})
    check(memory(bigger) == "390Mi", f"a udp batch of 128 datagrams gives {memory(bigger)}")
    # Three receive threads: two more sets of 64 × 8 KiB receive buffers (1 MiB).
    threads = dict(preset, config={"listen": {"udp": {"receive_threads": 3}}})
    check(memory(threads) == "263Mi", f"three udp receive threads give {memory(threads)}")
    # Parsing on receive: the parsed lines in flight may take as much again as the udp batches.
    parsing = dict(preset, config={"listen": {"udp": {"parse_on_receive": True}}})
    check(memory(parsing) == "390Mi", f"parse_on_receive gives {memory(parsing)}")
    yield ("the derived memory limit: 262Mi with the default caps, 390Mi with udp batches of 128, "
           "263Mi with three udp receive threads, 390Mi parsing on receive")
    derived = c.render({"sidecar": {"resourcesPreset": "derived"}})
    resources = c.find(derived, "Deployment")["spec"]["template"]["spec"]["initContainers"][0][
        "resources"]
    check(resources == {"requests": {"cpu": "10m", "memory": "32Mi"},
                        "limits": {"cpu": "250m", "memory": "262Mi"}}, f"{resources}")
    yield "resourcesPreset derived keeps the requests and derives the memory limit"
