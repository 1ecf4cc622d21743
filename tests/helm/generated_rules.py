"""The chart's PrometheusRule is `heartwire rules` output for the chart's config.

files/rules.yaml is the chart's comment block followed by `heartwire rules --config <the agent
config the chart renders with its default values> --scrape-job HEARTWIRE_SCRAPE_JOB`, byte for
byte (`check_chart.py rules-file --heartwire BIN` prints it); the chart puts the release's scrape
job `<namespace>/<fullname>` in place of the placeholder. A config of one's own goes through
`prometheusRule.ruleFile`: its rendered PrometheusRule must equal what `heartwire rules --format
prometheus-operator --scrape-job <namespace>/<fullname>` prints for the config the chart renders.
"""

import subprocess
import tempfile
from pathlib import Path

import yaml

import chartlib as c
from chartlib import check, say
from pods import fullname, merged

RULES_FILE = c.CHART / "files" / "rules.yaml"
OWN_CONFIG = c.GOOD_VALUES / "rules-for-own-config.yaml"
RENAMED_SIDECAR = c.GOOD_VALUES / "renamed-sidecar.yaml"

CHART_COMMENT = """\
# The PrometheusRule's rule groups when neither `prometheusRule.groups` nor
# `prometheusRule.ruleFile` is set, in Prometheus rule file form (`promtool check rules` reads it).
#
# This is `heartwire rules --scrape-job HEARTWIRE_SCRAPE_JOB` for the agent config the chart
# renders with its default values; the chart tests fail when it differs. Regenerate it with
#   tests/helm/.venv/bin/python3 tests/helm/check_chart.py rules-file \\
#     --heartwire target/debug/heartwire > helm/heartwire/files/rules.yaml
# The chart replaces HEARTWIRE_SCRAPE_JOB with the release's scrape job, `<namespace>/<fullname>`,
# which its monitor sets as the targets' `job` label. The chart refuses this file when `config`
# names jobs, workers or alerts: pass `heartwire rules` output as prometheusRule.ruleFile then.
#
"""


def scrape_job(effective):
    """The release's scrape job, `<namespace>/<fullname>` (heartwire.scrapeJob)."""
    return f"{c.NAMESPACE}/{fullname(effective)}"


def heartwire_rules(binary, values, output_format, scratch, job=None):
    """`heartwire rules` for the agent config the chart renders with `values`, as the chart's
    docs say to run it: `--scrape-job <namespace>/<fullname>` (or `job`)."""
    effective, _ = merged(values)
    _, config = c.config_of(c.render(values))
    path = Path(scratch) / "heartwire.yaml"
    path.write_text(yaml.safe_dump(config))
    command = [binary, "rules", "--config", str(path), "--format", output_format,
               "--scrape-job", job or scrape_job(effective)]
    if not effective["monitor"]["honorLabels"]:
        command += ["--honor-labels", "false"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    check(result.returncode == 0, f"{' '.join(command)}: exit {result.returncode}\n{result.stderr}")
    return result.stdout


def expected_rules_file(binary):
    with tempfile.TemporaryDirectory(prefix="heartwire-rules") as scratch:
        return CHART_COMMENT + heartwire_rules(binary, {}, "prometheus", scratch,
                                               job="HEARTWIRE_SCRAPE_JOB")


def check_generated(args):
    check(args.heartwire, "this group needs --heartwire")
    expected = expected_rules_file(args.heartwire)
    check(RULES_FILE.read_text() == expected,
          "files/rules.yaml is not `heartwire rules` output for the chart's config: regenerate it "
          "with `check_chart.py rules-file --heartwire BIN > helm/heartwire/files/rules.yaml`")
    say("files/rules.yaml is `heartwire rules` output for the chart's default config")
    with tempfile.TemporaryDirectory(prefix="heartwire-rules") as scratch:
        values = {"prometheusRule": {"enabled": True}}
        operator = yaml.safe_load(heartwire_rules(args.heartwire, values, "prometheus-operator",
                                                  scratch))
        rendered = c.find(c.render(values), "PrometheusRule")
        check(rendered["spec"] == operator["spec"],
              "the default PrometheusRule differs from `heartwire rules --format "
              "prometheus-operator` for the chart's config")
        say(f"the default PrometheusRule's spec is `heartwire rules --format prometheus-operator` "
            f"for the chart's config ({len(operator['spec']['groups'])} groups)")
        renamed = c.load_values(RENAMED_SIDECAR)
        operator = yaml.safe_load(heartwire_rules(args.heartwire, renamed, "prometheus-operator",
                                                  scratch))
        rendered = c.find(c.render(renamed), "PrometheusRule")
        check(rendered["spec"] == operator["spec"],
              f"{RENAMED_SIDECAR.name}: the PrometheusRule differs from `heartwire rules --format "
              "prometheus-operator --scrape-job <namespace>/<fullname>`")
        say(f"{RENAMED_SIDECAR.name}: the PrometheusRule of a renamed sidecar is still `heartwire "
            "rules` output for the release's scrape job")
        check_own_config(args.heartwire, scratch)


def check_own_config(binary, scratch):
    values = c.load_values(OWN_CONFIG)
    rule_file = heartwire_rules(binary, values, "prometheus", scratch)
    operator = yaml.safe_load(heartwire_rules(binary, values, "prometheus-operator", scratch))
    for job in values["config"]["jobs"]:
        check(f'job="{job}"' in rule_file, f"no rule about job {job}:\n{rule_file}")
    with_file = dict(values, prometheusRule=dict(values["prometheusRule"], enabled=True,
                                                 ruleFile=rule_file))
    rendered = c.find(c.render(with_file), "PrometheusRule")
    check(rendered["spec"] == operator["spec"],
          f"{OWN_CONFIG.name}: the PrometheusRule rendered with ruleFile differs from "
          "`heartwire rules --format prometheus-operator` for the same config")
    alerts = sum(len(group["rules"]) for group in rendered["spec"]["groups"])
    for job in values["config"]["jobs"]:
        about = [rule["alert"] for group in rendered["spec"]["groups"] for rule in group["rules"]
                 if f'job="{job}"' in str(rule["expr"])]
        check(about, f"{OWN_CONFIG.name}: no alert about job {job} in the PrometheusRule")
        say(f"{OWN_CONFIG.name}: job {job} has its alerts: {', '.join(about)}")
    say(f"{OWN_CONFIG.name}: `heartwire rules` output as prometheusRule.ruleFile renders the "
        f"PrometheusRule `heartwire rules --format prometheus-operator` prints ({alerts} rules)")
    both = dict(with_file, prometheusRule=dict(with_file["prometheusRule"],
                                               groups=operator["spec"]["groups"]))
    message = c.render_error(both)
    check(message is not None and "set groups or ruleFile, not both" in message,
          f"groups and ruleFile together: {message}")
    broken = dict(values, prometheusRule=dict(values["prometheusRule"], enabled=True,
                                              ruleFile="rules: [oops"))
    message = c.render_error(broken)
    check(message is not None and "prometheusRule.ruleFile is not valid YAML" in message,
          f"a broken ruleFile: {message}")
    say("groups and ruleFile together, or a ruleFile that is not YAML, are refused by name")
