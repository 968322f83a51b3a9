"""Golden files: each input spec renders byte for byte to the rules beside it, and promtool accepts them all.

When a change to the generator is meant, run `.venv/bin/python -m tests.slo.golden.regenerate`
and review the diff of `tests/slo/golden/*.rules.yml`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.slo.golden.regenerate import CASES, GOLDEN, HERE, ROOT, GoldenCase, regenerate, stale
from tests.slo.promtool import promtool

IDS = [case.name for case in CASES]


def _diff_hint(case: GoldenCase) -> str:
    return f"{case.expected.name} is stale: review the change, then run .venv/bin/python -m tests.slo.golden.regenerate"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_each_input_renders_byte_for_byte_to_its_expected_file(case: GoldenCase) -> None:
    assert case.expected.exists(), _diff_hint(case)
    assert case.render() == case.expected.read_text(), _diff_hint(case)


def _rule_file(case: GoldenCase, scratch: Path) -> Path:
    """The expected file as promtool reads it: itself, or the groups of its PrometheusRules."""
    documents = list(yaml.safe_load_all(case.expected.read_text()))
    if not any(isinstance(d, dict) and d.get("kind") == "PrometheusRule" for d in documents):
        return case.expected
    groups = [group for d in documents if d and d.get("kind") == "PrometheusRule" for group in d["spec"]["groups"]]
    path = scratch / case.expected.name
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return path


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_every_expected_file_passes_promtool_check_rules(case: GoldenCase, tmp_path: Path) -> None:
    result = subprocess.run(
        [promtool(), "check", "rules", str(_rule_file(case, tmp_path))], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_rendering_twice_gives_identical_text(case: GoldenCase) -> None:
    assert case.render() == case.render()


def test_rendering_does_not_depend_on_the_hash_seed() -> None:
    """Set and dict order must never leak into the output: other processes render the same bytes."""
    for seed in ("0", "1", "4242"):
        result = subprocess.run(
            [sys.executable, "-m", "tests.slo.golden.regenerate", "--check"],
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr


def test_the_regeneration_script_writes_exactly_the_expected_files(tmp_path: Path) -> None:
    written = regenerate(CASES, tmp_path)
    assert [path.name for path in written] == [case.expected.name for case in CASES]
    for case, path in zip(CASES, written, strict=True):
        assert path.read_bytes() == case.expected.read_bytes(), _diff_hint(case)


def test_a_case_whose_expected_file_differs_or_is_missing_is_stale() -> None:
    basic = next(case for case in CASES if case.name == "sloth-basic")
    wrong_input = GoldenCase("sloth-basic", (f"{HERE}/sloth-raw.yaml",))
    missing = GoldenCase("no-such-case", basic.specs)
    assert stale([basic, wrong_input, missing]) == [wrong_input, missing]


def test_the_regeneration_script_refuses_unknown_arguments() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.slo.golden.regenerate", "--bogus"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "usage:" in result.stderr


def test_every_file_in_the_golden_folder_belongs_to_a_case() -> None:
    used = {case.expected for case in CASES} | {path for case in CASES for path in case.inputs}
    present = {path for path in GOLDEN.iterdir() if path.suffix in (".yaml", ".yml")}
    assert present - used == set(), "a golden file no case renders or reads"
    assert {case.expected for case in CASES} <= present


def test_case_names_are_unique() -> None:
    assert len(IDS) == len(set(IDS))


def test_the_cases_cover_every_kind_of_input() -> None:
    """Sloth events/raw/latency, OpenSLO inline and by reference, 28d, custom windows, the suite's own specs."""
    texts = {case.name: "".join(path.read_text() for path in case.inputs) for case in CASES}
    everything = "".join(texts.values())
    markers = ("events:", "raw:", "latency:", "indicator:", "indicatorRef:", "disable: true", "kind: SLI")
    other_tools = (
        "kind: PrometheusServiceLevel", "apiVersion: openslo/v1alpha", "budgetingMethod: Timeslices",
        "budgetingMethod: RatioTimeslices", "thresholdMetric:", "kind: AlertPolicy", "kind: DataSource",
        "calendar:", "kind: ServiceLevelObjective", "latencyNative:", "bool_gauge:", "grouping:",
    )  # fmt: skip
    for marker in (*markers, *other_tools):
        assert marker in everything, marker
    assert any(case.period == "28d" for case in CASES)
    assert any("duration: 28d" in text for text in texts.values())
    windows = [yaml.safe_load(path.read_text()) for case in CASES for path in case.inputs if ".windows." in path.name]
    assert {"sloth.slok.dev/v1", "alertWindows/v1"} <= {w.get("apiVersion") or w.get("version") for w in windows}
    own = {spec for case in CASES for spec in case.specs if spec.startswith("slo/specs/")}
    assert own == {path.relative_to(ROOT).as_posix() for path in (ROOT / "slo" / "specs").glob("*.yaml")}


def test_both_alert_windows_file_forms_render_the_same_rules() -> None:
    by_name = {case.name: case for case in CASES}
    assert by_name["alert-windows-7d"].render() == by_name["alert-windows-7d-flat"].render()


def test_the_header_names_the_specs_as_given() -> None:
    for case in CASES:
        first_line = case.expected.read_text().splitlines()[0]
        assert first_line == f"# Code generated by `nova slo rules` (nova-slo/1) from {', '.join(case.specs)}."


def test_a_kubernetes_service_level_golden_file_is_its_prometheus_rule() -> None:
    case = next(case for case in CASES if case.name == "sloth-kubernetes")
    (document,) = list(yaml.safe_load_all(case.expected.read_text()))
    assert (document["kind"], document["metadata"]["name"], document["metadata"]["namespace"]) == (
        "PrometheusRule", "svc", "test-ns",
    )  # fmt: skip
