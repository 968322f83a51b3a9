"""Sloth's integration-test command lines, with `sloth generate` replaced by `nova slo rules
--min-bad-events 0`, give Sloth's rules rule for rule; Sloth's validation cases hold for `nova slo check`.

"Rule for rule": every rule of Sloth's expected output is in ours, in the group of the same
name, with the same name, the same labels (but `sloth_version`, the generator's own), Sloth's
annotations, and an expression equal up to spelling: whitespace, exact decimals for Sloth's
floats (`0.001` for `0.0009999999999999432`, `vector(0.001)` for `vector(1-0.999...)`) and the
`> 0` guard on denominators. The suite's additions (the exhaustion forecast) are extra rules.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from nova.cli import app

ROOT = Path(__file__).resolve().parents[2]
SLOTH = ROOT / "tests" / "slo" / "fixtures" / "sloth"
_NUMBER = r"\d+(?:\.\d+)?(?:e[-+]?\d+)?"


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str


def nova(*args: str | Path) -> Run:
    """`nova` run in this process from Sloth's test folder, as Sloth's tests run `sloth` (fast: no start-up)."""
    with contextlib.chdir(SLOTH):
        result = CliRunner().invoke(app, [str(arg) for arg in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Run(result.exit_code, result.stdout, result.stderr)


def test_the_real_command_line_runs_sloths_generate_options() -> None:
    """Once through a real process, so the in-process runs above stand for what users run."""
    result = subprocess.run(
        [sys.executable, "-m", "nova", "slo", "rules", "-i", "in-base.yaml", "-o", "-", "--min-bad-events", "0"],
        cwd=SLOTH, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert assert_sloths_rules_are_ours(expected("out-base.yaml"), yaml.safe_load(result.stdout)["groups"]) == 32


def canonical(expr: str) -> str:
    """An expression with spelling differences removed (see the module docstring)."""
    text = re.sub(r"\s+", "", expr)
    text = re.sub(r"/\(\((.*)\)>0\)$", r"/(\1)", text)  # our guard on the denominator
    text = re.sub(r"\((\d+)/(\d+)\)", lambda m: repr(int(m[1]) / int(m[2])), text)  # exact fractions
    text = re.sub(rf"\(({_NUMBER})\*({_NUMBER})\)", lambda m: f"({float(m[1]) * float(m[2]):.12g})", text)
    text = re.sub(rf"vector\(({_NUMBER})-({_NUMBER})\)", lambda m: f"vector({float(m[1]) - float(m[2]):.12g})", text)
    return re.sub(rf"(?<![\w.:\"]){_NUMBER}(?![\w.])", lambda m: f"{float(m[0]):.12g}", text)


def _key(rule: dict[str, Any]) -> tuple[str, str, str]:
    labels = rule.get("labels") or {}
    return (rule.get("record") or rule["alert"], labels.get("sloth_window", ""), labels.get("sloth_severity", ""))


def rules_by_group(groups: Sequence[dict[str, Any]]) -> dict[str, dict[tuple[str, str, str], dict[str, Any]]]:
    return {group["name"]: {_key(rule): rule for rule in group["rules"]} for group in groups}


def assert_sloths_rules_are_ours(expected: Sequence[dict[str, Any]], ours: Sequence[dict[str, Any]]) -> int:
    """Each of Sloth's rules is one of ours, as the module docstring says; the number compared."""
    mine, compared = rules_by_group(ours), 0
    assert [g["name"] for g in expected] == [g["name"] for g in ours if g["name"] in {e["name"] for e in expected}]
    for group in expected:
        assert group["name"] in mine, f"group {group['name']} missing"
        for rule in group["rules"]:
            key = _key(rule)
            assert key in mine[group["name"]], f"{group['name']}: {key} missing"
            our = mine[group["name"]][key]
            drop = {"sloth_version"}
            assert {k: v for k, v in (our.get("labels") or {}).items() if k not in drop} == {
                k: v for k, v in (rule.get("labels") or {}).items() if k not in drop
            }, key
            assert canonical(our["expr"]) == canonical(rule["expr"]), (key, our["expr"], rule["expr"])
            assert (rule.get("annotations") or {}).items() <= (our.get("annotations") or {}).items(), key
            compared += 1
    return compared


def expected(name: str, change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] = list) -> list[Any]:
    groups: list[dict[str, Any]] = yaml.safe_load((SLOTH / name).read_text())["groups"]
    return change(groups)


def _no_alerts(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [g for g in groups if not g["name"].startswith("sloth-slo-alerts-")]


def _only_alerts(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [g for g in groups if g["name"].startswith("sloth-slo-alerts-")]


def _extra_labels(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for group in _no_alerts(groups):
        for rule in group["rules"]:
            rule["labels"] = {**rule["labels"], "exk1": "exv1", "exk2": "exv2"}
    return groups


@dataclass(frozen=True)
class Case:
    """One of Sloth's generate tests: its command line (after `sloth generate`) and expected rules."""

    name: str
    args: tuple[str, ...]
    expected: str
    change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] = list
    rules: int = 32  # Sloth's rule count for the case


CASES = [
    Case("base", ("--input", "in-base.yaml"), "out-base.yaml"),
    Case("no-alerts", ("--input", "in-base.yaml", "--disable-alerts"), "out-base.yaml", _no_alerts, 30),
    Case("no-recordings", ("--input", "in-base.yaml", "--disable-recordings"), "out-base.yaml", _only_alerts, 2),
    Case("extra-labels", ("--input", "in-base.yaml", "-l", "exk1=exv1", "-l", "exk2=exv2"), "out-base.yaml",
         _extra_labels),
    Case("28d", ("--default-slo-period", "28d", "--input", "in-base.yaml"), "out-base-28d.yaml"),
    Case("custom-windows-7d", ("--default-slo-period", "7d", "--input", "in-base.yaml", "--slo-period-windows-path",
                               "./windows"), "out-base-custom-windows-7d.yaml"),
    Case("openslo", ("--input", "in-openslo.yaml"), "out-openslo.yaml", rules=15),
]  # fmt: skip


@pytest.fixture(scope="module")
def generated() -> Iterator[dict[str, Run]]:
    yield {case.name: nova("slo", "rules", "--min-bad-events", "0", *case.args) for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_sloths_command_line_gives_sloths_rules_rule_for_rule(generated: dict[str, Run], case: Case) -> None:
    run = generated[case.name]
    assert run.returncode == 0, run.stderr
    ours = yaml.safe_load(run.stdout)["groups"]
    assert assert_sloths_rules_are_ours(expected(case.expected, case.change), ours) == case.rules


def test_disabled_alerts_give_no_alert_group_and_disabled_recordings_no_recording_group(
    generated: dict[str, Run],
) -> None:
    no_alerts = yaml.safe_load(generated["no-alerts"].stdout)["groups"]
    no_recordings = yaml.safe_load(generated["no-recordings"].stdout)["groups"]
    assert all("alert" not in rule for group in no_alerts for rule in group["rules"])
    assert all("record" not in rule for group in no_recordings for rule in group["rules"])


def test_the_kubernetes_service_level_gives_a_prometheus_rule_with_sloths_groups(tmp_path: Path) -> None:
    run = nova("slo", "rules", "--min-bad-events", "0", "-i", "in-base-k8s.yaml", "-o", tmp_path / "out.yaml")
    assert run.returncode == 0, run.stderr
    (document,) = list(yaml.safe_load_all((tmp_path / "out.yaml").read_text()))
    assert (document["apiVersion"], document["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    assert (document["metadata"]["name"], document["metadata"]["namespace"]) == ("svc", "test-ns")
    assert document["metadata"]["labels"]["app.kubernetes.io/component"] == "SLO"

    def as_kubernetes(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for group in groups:
            for rule in group["rules"]:
                if rule.get("record") == "sloth_slo_info":
                    rule["labels"] |= {"sloth_mode": "cli-gen-k8s", "sloth_spec": "sloth.slok.dev/v1"}
        return groups

    assert assert_sloths_rules_are_ours(expected("out-base.yaml", as_kubernetes), document["spec"]["groups"]) == 32


def test_the_canonical_form_keeps_real_differences() -> None:
    assert canonical("vector(1-0.9990000000000001)") == canonical("vector(0.001)")
    assert canonical("(0.9333333333333333 * 0.0009999999999999432)") == canonical("((14 / 15) * 0.001)")
    assert canonical("(a)\n/\n((b) > 0)\n") == canonical("(a)\n/\n(b)")
    assert canonical("vector(0.001)") != canonical("vector(0.002)")
    assert canonical("x[5m]") != canonical("x[30m]")


# -- sloth validate's cases ----------------------------------------------------------------------


@pytest.mark.parametrize("spec", sorted((SLOTH / "validate" / "good").iterdir()), ids=lambda p: p.name)
def test_each_of_sloths_good_specs_passes_check(spec: Path) -> None:
    run = nova("slo", "check", "-i", spec)
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("bad-ab.yaml", "objective: must be above 0 and below 100, got 101"),
        ("bad-label.yaml", "labels.global03-k1: is not a valid label name"),
        ("bad-no-window.yaml", "error_query: has no {{.window}} placeholder"),
        ("bad-k8s.yaml", "spec.service: is required"),
        ("bad-multi.yaml", "sli: needs exactly one of events, raw or latency"),
    ],
)
def test_each_of_sloths_bad_specs_fails_check_in_one_line(spec: str, reason: str) -> None:
    run = nova("slo", "check", "-i", SLOTH / "validate" / "bad" / spec)
    assert run.returncode != 0
    assert run.stderr.count("\n") == 1 and run.stderr.startswith("nova: "), run.stderr
    assert reason in run.stderr


@pytest.mark.parametrize(
    ("args", "ok"),
    [
        (("--input", "./validate/good", "--ignore-slo-duplicates"), True),
        (("--input", "./validate/bad", "--ignore-slo-duplicates"), False),
        (("--input", "./validate"), False),
        (("--input", "./validate", "--fs-exclude", "bad", "--ignore-slo-duplicates"), True),
        (("--input", "./validate", "--fs-include", "good", "--ignore-slo-duplicates"), True),
        (("--input", "./validate", "--fs-exclude", ".*"), False),
        (("--input", "./validate", "--fs-exclude", "bad", "--fs-include", ".*-aa.*", "--ignore-slo-duplicates"), True),
        (("--input", "./duplicates"), False),
        (("--input", "./duplicates", "--ignore-slo-duplicates"), True),
        (("--input", "./validate/good/good-multi.yaml"), True),
        (("--input", "./validate/good/good-multi-k8s.yaml"), True),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else str(value),
)
def test_sloths_validate_command_lines_pass_or_fail_as_in_sloth(args: tuple[str, ...], ok: bool) -> None:
    run = nova("slo", "check", *args)
    assert (run.returncode == 0) == ok, run.stdout + run.stderr
    if not ok:
        assert run.stderr.startswith("nova: ") and run.stderr.count("\n") == 1, run.stderr


def test_a_duplicate_is_named_with_where_it_was_first() -> None:
    run = nova("slo", "check", "--input", "./duplicates")
    assert "duplicate SLO" in run.stderr and "bad-prom-1-original.yaml" in run.stderr


def test_an_unknown_field_is_one_warning_naming_field_and_file_and_strict_refuses_it() -> None:
    spec = SLOTH / "validate" / "good" / "good-ab.yaml"
    run = nova("slo", "check", "-i", spec)
    assert run.returncode == 0
    warnings = [line for line in run.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 2
    assert f"{spec}:21: SLO 'slo1': slos[0].alerting.pageAlert: unknown field" in warnings[0]
    strict = nova("slo", "check", "-i", spec, "--strict")
    assert strict.returncode != 0 and "slos[0].alerting.pageAlert: unknown field" in strict.stderr


def test_a_directory_in_and_a_directory_out_give_one_rule_file_per_spec_file(tmp_path: Path) -> None:
    run = nova("slo", "rules", "-i", "./validate/good", "-o", tmp_path / "out", "--fs-exclude", "openslo")
    assert run.returncode == 0, run.stderr
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.yaml"))
    assert written == sorted(p.name for p in (SLOTH / "validate" / "good").iterdir() if "openslo" not in p.name)
    k8s = list(yaml.safe_load_all((tmp_path / "out" / "good-multi-k8s.yaml").read_text()))
    assert [(d["kind"], d["metadata"]["name"]) for d in k8s] == [("PrometheusRule", "svc"), ("PrometheusRule", "svc-2")]


def test_a_go_plugin_is_refused_in_one_line_naming_it(tmp_path: Path) -> None:
    spec = tmp_path / "plugin.yaml"
    spec.write_text(
        (SLOTH / "in-base.yaml")
        .read_text()
        .replace("      events:\n", "      plugin:\n        id: sloth-common/availability\n      events:\n", 1)
    )
    run = nova("slo", "rules", "-i", spec)
    assert run.returncode != 0 and run.stderr.count("\n") == 1
    assert "Sloth Go plugin 'sloth-common/availability' is not supported" in run.stderr


def test_bad_extra_labels_are_refused_in_one_line() -> None:
    run = nova("slo", "rules", "-i", "in-base.yaml", "-l", "not a label")
    assert run.returncode != 0 and "--extra-labels must be name=value" in run.stderr


def test_a_service_level_kubernetes_would_refuse_is_one_line(tmp_path: Path) -> None:
    spec = tmp_path / "bad-name.yaml"
    spec.write_text((SLOTH / "in-base-k8s.yaml").read_text().replace("  name: svc\n", "  name: Svc_Bad\n", 1))
    run = nova("slo", "rules", "-i", spec)
    assert run.returncode != 0 and run.stderr.count("\n") == 1
    assert "name 'Svc_Bad' is not a Kubernetes resource name" in run.stderr


def test_service_levels_and_plain_specs_in_one_output_are_refused_in_one_line() -> None:
    run = nova("slo", "rules", "in-base-k8s.yaml", "in-openslo.yaml")
    assert run.returncode != 0 and run.stderr.count("\n") == 1
    assert "PrometheusServiceLevel specs are written as PrometheusRules" in run.stderr
