"""`nova slo rules` and `nova slo check`, run as the real command: files written, one-line refusals, promtool."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from slo.errors import SpecError
from slo.spec import load_specs
from tests.slo.golden.regenerate import CASES, ROOT, GoldenCase
from tests.slo.promtool import promtool
from tests.slo.test_spec import BAD_SPECS, ERROR_QUERY, SLOTH, BadSpec

OWN_SPECS = ["slo/specs/payments.yaml", "slo/specs/portfolio.yaml"]
OLD_RULES = b"# rules an earlier run wrote; a refused run must leave them as they are\ngroups: []\n"

# The bad specs of the issue: each must be refused on the command line just as the library refuses it.
CLI_BAD = [
    "unknown-version",
    "objective-zero",
    "objective-negative",
    "objective-100",
    "objective-101",
    "openslo-target-1",
    "openslo-target-over-1",
    "no-error-query",
    "no-total-query",
    "error-query-without-window",
    "total-query-without-window",
    "duplicate-slo-in-one-file",
    "yaml-syntax",
    "unknown-top-field",
    "unknown-slo-field",
    "unknown-sli-field",
    "unknown-alerting-field",
    "openslo-missing-sli",
    "openslo-unsupported-kind",
    "openslo-calendar-window",
]
BAD = {bad.id: bad for bad in BAD_SPECS}
assert set(CLI_BAD) <= set(BAD), set(CLI_BAD) - set(BAD)


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str


def nova(*args: str | Path, cwd: Path = ROOT, env: dict[str, str] | None = None) -> Run:
    """The real `nova` command line, as a user runs it (from the repository root unless told)."""
    result = subprocess.run(
        [sys.executable, "-m", "nova", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    return Run(result.returncode, result.stdout, result.stderr)


def one_line_refusal(run: Run) -> str:
    """The reason of a refused run, after checking it is a refusal of exactly one `nova: ` line."""
    assert run.code != 0, run
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("nova: "), run.stderr
    return lines[0].removeprefix("nova: ")


def library_error(paths: Sequence[Path]) -> str:
    """What the SLO engine says about these specs: the command line must say the same."""
    with pytest.raises(SpecError) as caught:
        load_specs(paths, strict=True)
    return str(caught.value)


def files_in(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


# -- bad specs, run concurrently once per module: ~40 runs of a second each ------------------------


@dataclass(frozen=True)
class BadRun:
    folder: Path
    spec: Path
    output: Path
    run: Run


def _run_bad(folder: Path, bad: BadSpec, existing_output: bool) -> BadRun:
    folder.mkdir(parents=True)
    spec = folder / "spec.yaml"
    spec.write_text(bad.text)
    output = folder / "rules.yml"
    if existing_output:
        output.write_bytes(OLD_RULES)
    # --strict: unknown fields are warnings otherwise (as in Sloth); every other case is refused anyway.
    return BadRun(folder, spec, output, nova("slo", "rules", spec, "-o", output, "--strict"))


@pytest.fixture(scope="module")
def bad_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[tuple[str, bool], BadRun]]:
    root = tmp_path_factory.mktemp("bad-specs")
    jobs = [(case, existing) for case in CLI_BAD for existing in (False, True)]
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        runs = pool.map(lambda job: _run_bad(root / f"{job[0]}-{job[1]}", BAD[job[0]], job[1]), jobs)
        yield dict(zip(jobs, runs, strict=True))


@pytest.mark.parametrize("case", CLI_BAD)
def test_rules_refuses_a_bad_spec_with_the_engines_one_line_reason(
    bad_runs: dict[tuple[str, bool], BadRun], case: str
) -> None:
    bad = bad_runs[(case, False)]
    assert one_line_refusal(bad.run) == library_error([bad.spec])
    assert bad.run.code == 2
    assert bad.run.stdout == ""


@pytest.mark.parametrize("case", CLI_BAD)
def test_rules_writes_no_file_for_a_bad_spec(bad_runs: dict[tuple[str, bool], BadRun], case: str) -> None:
    bad = bad_runs[(case, False)]
    assert files_in(bad.folder) == ["spec.yaml"]  # no rules.yml, and no scratch file beside it


@pytest.mark.parametrize("case", CLI_BAD)
def test_rules_leaves_an_existing_output_byte_identical_for_a_bad_spec(
    bad_runs: dict[tuple[str, bool], BadRun], case: str
) -> None:
    bad = bad_runs[(case, True)]
    one_line_refusal(bad.run)
    assert bad.output.read_bytes() == OLD_RULES
    assert files_in(bad.folder) == ["rules.yml", "spec.yaml"]


def test_rules_refuses_the_same_slo_in_two_files(tmp_path: Path) -> None:
    first, second = tmp_path / "first.yaml", tmp_path / "second.yaml"
    first.write_text(SLOTH)
    second.write_text(SLOTH)
    output = tmp_path / "rules.yml"
    run = nova("slo", "rules", first, second, "-o", output)
    reason = one_line_refusal(run)
    assert reason == library_error([first, second])
    assert reason.startswith(f"{second}:6: SLO 'availability': name: duplicate SLO")
    assert not output.exists()


# -- good specs ------------------------------------------------------------------------------------


def _case(name: str) -> GoldenCase:
    return next(case for case in CASES if case.name == name)


@pytest.mark.parametrize("name", ["alert-windows-7d", "sloth-basic-options", "own-specs"])
def test_rules_writes_the_golden_rules_for_a_golden_case(tmp_path: Path, name: str) -> None:
    case = _case(name)
    output = tmp_path / "rules.yml"
    run = nova("slo", "rules", *case.cli_args(), "-o", output)
    assert run.code == 0, run.stderr
    assert output.read_bytes() == case.expected.read_bytes()
    assert run.stdout == run.stderr == ""


def test_rules_without_output_prints_the_rules_on_stdout() -> None:
    case = _case("sloth-basic")
    run = nova("slo", "rules", *case.specs)
    assert run.code == 0, run.stderr
    assert run.stdout == case.expected.read_text()


def test_rules_creates_the_output_folder(tmp_path: Path) -> None:
    output = tmp_path / "deploy" / "prometheus" / "slo.rules.yml"
    assert nova("slo", "rules", *OWN_SPECS, "-o", output).code == 0
    assert output.read_bytes() == _case("own-specs").expected.read_bytes()


def test_rules_replaces_an_existing_output_and_leaves_no_scratch_file(tmp_path: Path) -> None:
    output = tmp_path / "rules.yml"
    output.write_bytes(OLD_RULES)
    assert nova("slo", "rules", *OWN_SPECS, "-o", output).code == 0
    assert output.read_bytes() == _case("own-specs").expected.read_bytes()
    assert files_in(tmp_path) == ["rules.yml"]


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--period", "a month"], "--period: 'a month' is not a duration like 5m, 1h, 30d or 1w"),
        (["--period", "1d"], "the SLO period 1d must be longer than the longest alert window (3d)"),
        (["--exhaustion-horizon", "1.5d"], "--exhaustion-horizon: '1.5d' is not a duration"),
        (["--min-bad-events", "-1"], "Invalid value for '--min-bad-events'"),
        (["--min-bad-events", "many"], "Invalid value for '--min-bad-events'"),
        (["--alert-windows", "missing.windows.yaml"], "missing.windows.yaml: cannot read: No such file or directory"),
        (["--bogus"], "No such option: --bogus"),
    ],
    ids=["period", "period-too-short", "horizon", "min-bad-events-negative", "min-bad-events-text", "windows", "bogus"],
)
def test_rules_refuses_bad_options_with_one_line_and_no_file(tmp_path: Path, args: list[str], reason: str) -> None:
    output = tmp_path / "rules.yml"
    run = nova("slo", "rules", *OWN_SPECS, *args, "-o", output)
    assert reason in one_line_refusal(run)
    assert files_in(tmp_path) == []


def test_rules_refuses_a_bad_alert_windows_file_with_its_line(tmp_path: Path) -> None:
    windows = tmp_path / "windows.yaml"
    text = (ROOT / "tests/slo/golden/alert-windows-7d.windows.yaml").read_text()
    windows.write_text(text.replace("longWindow: 3d", "longWindow: 8d"))
    output = tmp_path / "rules.yml"
    run = nova("slo", "rules", *OWN_SPECS, "--period", "7d", "--alert-windows", windows, "-o", output)
    assert one_line_refusal(run) == f"{windows}:23: spec.ticket.slow.longWindow: must be shorter than sloPeriod (1w)"
    assert not output.exists()


def test_rules_refuses_a_missing_spec_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    run = nova("slo", "rules", missing, "-o", tmp_path / "rules.yml")
    assert one_line_refusal(run) == f"{missing}: cannot read: No such file or directory"
    assert files_in(tmp_path) == []


def test_rules_refuses_to_run_without_specs() -> None:
    assert "give at least one spec file (or -i FILE|DIR)" in one_line_refusal(nova("slo", "rules"))


def test_rules_refuses_an_output_that_is_a_folder(tmp_path: Path) -> None:
    run = nova("slo", "rules", *OWN_SPECS, "-o", tmp_path)
    assert one_line_refusal(run) == f"cannot write {tmp_path}: Is a directory"
    assert files_in(tmp_path) == []


def test_rules_has_help() -> None:
    run = nova("slo", "rules", "--help")
    assert run.code == 0
    for option in ("--output", "--period", "--alert-windows", "--min-bad-events", "--exhaustion-horizon"):
        assert option in run.stdout


# -- nova slo check ------------------------------------------------------------------------------------


def test_check_passes_the_suites_own_specs_through_promtool() -> None:
    promtool()
    run = nova("slo", "check", *OWN_SPECS)
    assert run.code == 0, run.stderr
    assert "4 SLOs valid in 2 files" in run.stdout
    assert "promtool check rules: SUCCESS" in run.stdout
    assert run.stderr == ""


def test_check_fails_with_one_line_when_promtool_rejects_a_rule(tmp_path: Path) -> None:
    """A query that still has its {{.window}} but is no PromQL passes the spec checks; promtool is the judge."""
    promtool()
    spec = tmp_path / "spec.yaml"
    broken = 'error_query: sum(rate(http_server_requests_total{service="payments"[{{.window}}]))'
    spec.write_text(SLOTH.replace(ERROR_QUERY, broken))
    load_specs([spec])  # the spec itself is valid
    run = nova("slo", "check", spec)
    assert run.code == 1
    reason = one_line_refusal(run)
    assert reason.startswith("promtool check rules failed: ")
    assert 'group "sloth-slo-sli-recordings-payments-availability"' in reason
    assert "parse error" in reason
    assert "nova-slo-check-" not in reason  # the scratch file is gone; its name would help no one


@pytest.mark.parametrize("case", ["objective-101", "yaml-syntax", "openslo-missing-sli"])
def test_check_refuses_a_bad_spec_with_the_engines_one_line_reason(tmp_path: Path, case: str) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(BAD[case].text)
    run = nova("slo", "check", spec)
    assert one_line_refusal(run) == library_error([spec])
    assert run.code == 2


def test_check_without_promtool_validates_the_specs_and_says_promtool_did_not_run(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}  # a PATH with no promtool on it
    run = nova("slo", "check", *OWN_SPECS, env=env)
    assert run.code == 0, run.stderr
    assert "promtool not installed" in run.stdout
    assert "SUCCESS" not in run.stdout
