"""Checks of the heartwire Helm chart, run by tests/tests/helm.rs (or by hand):

    tests/helm/.venv/bin/python3 tests/helm/check_chart.py GROUP [--promtool PATH]
    tests/helm/.venv/bin/python3 tests/helm/check_chart.py export DIR [--values FILE]

    tests/helm/.venv/bin/python3 tests/helm/check_chart.py rules-file --heartwire BIN

Each GROUP prints one `ok:` line per property and exits 1 naming the first that fails. `export`
writes the agent config the chart renders (addresses moved to ephemeral loopback ports, sockets
to DIR/sockets), the sidecar's HEARTWIRE_* environment and the example's demo app, for a run
against the real agent. `rules-file`
prints what files/rules.yaml must hold: `heartwire rules` output for the chart's config.
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

import chartlib as c
from chartlib import check, say
from generated_rules import check_generated, expected_rules_file
from pods import check_pods, fullname, merged
from readme import check_include, check_values_table
from values_checks import check_values


def group_lint(_args):
    for path in c.good_values_files():
        findings = c.lint(c.load_values(path))
        check(not findings, f"helm lint --strict -f {path.name}: {findings}")
        say(f"helm lint --strict passes with {path.name}")


def group_validate(_args):
    for path in c.good_values_files():
        docs = c.documents(c.render(c.load_values(path)))
        core = c.kubernetes_validate(docs, path.stem)
        crds = c.crd_validate(docs, path.stem)
        say(f"{path.name}: {core} manifests pass kubernetes-validate --strict "
            f"({', '.join(c.KUBE_VERSIONS)}), {crds} monitoring.coreos.com objects their schemas")


def group_pods(_args):
    for path in c.good_values_files():
        values = c.load_values(path)
        if values.get("example", {}).get("enabled", True):
            for message in check_pods(values, path.name):
                say(message)


def group_monitoring(_args):
    check_optional_kinds()
    for name, kind, endpoints in [("podmonitor.yaml", "PodMonitor", "podMetricsEndpoints"),
                                  ("servicemonitor.yaml", "ServiceMonitor", "endpoints")]:
        check_monitor(name, kind, endpoints)
    check_rule_groups()


def check_optional_kinds():
    def rendered_kinds(name):
        return c.kinds(c.render(c.load_values(c.GOOD_VALUES / name)))

    check(rendered_kinds("default.yaml") == ["ConfigMap", "Deployment", "Service"],
          f"defaults render {rendered_kinds('default.yaml')}")
    say("by default: ConfigMap, example Deployment and Service; no monitor, no rule")
    check(rendered_kinds("example-off.yaml") == ["ConfigMap", "Service"],
          f"example off renders {rendered_kinds('example-off.yaml')}")
    say("example.enabled=false leaves the ConfigMap and the Service")


def check_monitor(name, kind, endpoints):
    values = c.load_values(c.GOOD_VALUES / name)
    rendered = c.render(values)
    monitor = c.find(rendered, kind)
    check(monitor is not None, f"{name}: no {kind} in {c.kinds(rendered)}")
    other = "ServiceMonitor" if kind == "PodMonitor" else "PodMonitor"
    check(c.find(rendered, other) is None, f"{name}: a {other} too")
    endpoint, = monitor["spec"][endpoints]
    expected = {"port": "hw-metrics", "path": "/metrics",
                "interval": values["monitor"].get("interval", "30s"),
                "scrapeTimeout": values["monitor"].get("scrapeTimeout", "10s"),
                "honorLabels": values["monitor"].get("honorLabels", True),
                "relabelings": [{"targetLabel": "job", "replacement": f"{c.NAMESPACE}/{c.RELEASE}-heartwire"}]}
    check(endpoint == expected, f"{name}: endpoint {endpoint} != {expected}")
    selector = monitor["spec"]["selector"]["matchLabels"]
    check(selector == {"app.kubernetes.io/name": "heartwire",
                       "app.kubernetes.io/instance": c.RELEASE}, f"{name}: selector {selector}")
    for key, value in values["monitor"].get("labels", {}).items():
        check(monitor["metadata"]["labels"].get(key) == value, f"{name}: label {key} missing")
    if kind == "PodMonitor":
        selected = c.find(rendered, "Deployment")["spec"]["template"]["metadata"]["labels"]
    else:
        selected = c.find(rendered, "Service")["metadata"]["labels"]
    check(selector.items() <= selected.items(), f"{name}: {selector} does not select {selected}")
    say(f"{name}: one {kind} scraping port hw-metrics /metrics of this release's "
        f"{'pods' if kind == 'PodMonitor' else 'Service'}")


def check_rule_groups():
    from_file = c.find(c.render(c.load_values(c.GOOD_VALUES / "rules-from-file.yaml")),
                       "PrometheusRule")
    text = (c.CHART / "files" / "rules.yaml").read_text()
    expected = yaml.safe_load(text.replace("HEARTWIRE_SCRAPE_JOB", f"{c.NAMESPACE}/{c.RELEASE}-heartwire"))["groups"]
    check(from_file["spec"]["groups"] == expected,
          "the PrometheusRule differs from files/rules.yaml with the release's scrape job")
    check(from_file["metadata"]["labels"]["release"] == "kube-prometheus-stack", "rule labels")
    say(f"prometheusRule without groups carries files/rules.yaml ({len(expected)} groups)")
    values = c.load_values(c.GOOD_VALUES / "rules-from-values.yaml")
    from_values = c.find(c.render(values), "PrometheusRule")
    check(from_values["spec"]["groups"] == values["prometheusRule"]["groups"],
          "the PrometheusRule differs from prometheusRule.groups")
    say("prometheusRule.groups replaces files/rules.yaml")


def group_bad_values(_args):
    """Every file in bad-values/ is refused at install time with the message its `# expect:`
    lines name."""
    files = sorted(c.BAD_VALUES.glob("*.yaml"))
    check(len(files) >= 10, f"only {len(files)} bad values files")
    for path in files:
        text = path.read_text()
        expected = [line.split(":", 1)[1].strip() for line in text.splitlines()
                    if line.startswith("# expect:")]
        check(expected, f"{path.name} has no `# expect:` line")
        message = c.render_error(yaml.safe_load(text) or {})
        check(message is not None, f"{path.name} was accepted")
        missing = [fragment for fragment in expected if fragment not in message]
        check(not missing, f"{path.name}: the message lacks {missing}:\n{message}")
        reason = next(line for line in message.splitlines() if "at '" in line or "error" in line)
        say(f"{path.name} is refused: {reason.strip()}")


def group_rules(args):
    check(args.promtool, "the rules group needs --promtool")
    sources = {"files/rules.yaml": c.CHART / "files" / "rules.yaml"}
    with tempfile.TemporaryDirectory(prefix="heartwire-rules") as scratch:
        for name in ["rules-from-file.yaml", "rules-from-values.yaml"]:
            rule = c.find(c.render(c.load_values(c.GOOD_VALUES / name)), "PrometheusRule")
            path = Path(scratch) / name
            path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
            sources[f"the PrometheusRule rendered with {name}"] = path
        for label, path in sources.items():
            result = subprocess.run([args.promtool, "check", "rules", str(path)],
                                    capture_output=True, text=True, check=False)
            check(result.returncode == 0 and "SUCCESS" in result.stdout,
                  f"promtool check rules, {label}:\n{result.stdout}{result.stderr}")
            say(f"promtool check rules accepts {label}")


def group_readme(_args):
    for message in [*check_include(), *check_values_table()]:
        say(message)


def export(args):
    """A render's agent config, made runnable on this machine, and its demo app."""
    out = Path(args.dir)
    sockets = out / "sockets"
    sockets.mkdir(parents=True, exist_ok=True)
    values = c.load_values(args.values) if args.values else {}
    effective, _ = merged(values)
    rendered = c.render(values)
    _, config = c.config_of(rendered)
    chart_dir = effective["volumes"]["sockets"]["mountPath"].rstrip("/") + "/"
    listen = config.setdefault("listen", {})
    for key in ["udp", "tcp", "http"]:
        listen.setdefault(key, {})["address"] = "127.0.0.1:0"
    for key in ["unix_datagram", "unix_stream"]:
        socket = listen.setdefault(key, {})
        if socket.get("enabled"):
            check(socket["path"].startswith(chart_dir), f"{key} path {socket['path']} is outside {chart_dir}")
            socket["path"] = str(sockets / socket["path"].removeprefix(chart_dir))
    config["http"]["address"] = "127.0.0.1:0"
    (out / "heartwire.yaml").write_text(yaml.safe_dump(config))
    if not effective["example"]["enabled"]:
        return
    spec = c.pod_spec(rendered, f"{fullname(effective)}-example")
    sidecar = next(ct for ct in spec["initContainers"] if ct["name"] == effective["sidecar"]["name"])
    (out / "sidecar.env").write_text("".join(f"{e['name']}={e['value']}\n" for e in sidecar["env"]
                                             if e["name"].startswith("HEARTWIRE_")))
    demo = next(ct for ct in c.pod_spec(rendered, f"{fullname(effective)}-example")["containers"]
                if ct["name"] == "demo")
    check(demo["command"][:3] == ["python3", "-u", "-c"], f"demo command {demo['command'][:3]}")
    (out / "demo.py").write_text(demo["command"][3])
    (out / "demo.env").write_text("".join(f"{e['name']}={e['value']}\n" for e in demo["env"]))


GROUPS = {
    "lint": group_lint,
    "validate": group_validate,
    "pods": group_pods,
    "monitoring": group_monitoring,
    "bad-values": group_bad_values,
    "readme": group_readme,
    "values": lambda _args: [say(message) for message in check_values()],
    "rules": group_rules,
    "generated-rules": check_generated,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("group", choices=[*GROUPS, "export", "rules-file"])
    parser.add_argument("dir", nargs="?", help="export: where to write")
    parser.add_argument("--promtool", help="rules: the promtool binary")
    parser.add_argument("--heartwire", help="generated-rules, rules-file: the heartwire binary")
    parser.add_argument("--values", help="export: a values file (default: the chart's defaults)")
    args = parser.parse_args()
    try:
        if args.group == "export":
            check(args.dir, "export needs a directory")
            export(args)
        elif args.group == "rules-file":
            check(args.heartwire, "rules-file needs --heartwire")
            sys.stdout.write(expected_rules_file(args.heartwire))
        else:
            GROUPS[args.group](args)
    except c.CheckFailed as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
