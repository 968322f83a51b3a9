"""`nova runbooks check`: every alert has a runbook with every section, and every runbook has an alert.

Judged, one problem per line:

- each alert (SLO rules, platform rules, predictive catalog) carries a `runbook_url` whose file
  name exists in the runbooks folder, and that runbook's front matter lists the alert at the
  alert's severity;
- each runbook has the front matter fields, every required section with text in it, at least one
  diagnostic step in Diagnosis, well-formed steps, and PromQL that Prometheus parses (`promtool
  check rules` on a scratch rule file built from the queries, when promtool is on PATH);
- each runbook belongs to at least one alert, and lists no alert the suite cannot fire.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from runbooks.catalog import Alert, runbook_file_name
from runbooks.document import (
    PROMQL,
    REQUIRED_FRONT_MATTER,
    REQUIRED_SECTIONS,
    SEVERITIES,
    Runbook,
    Step,
    read_runbook,
)
from runbooks.errors import RunbookError

PROMTOOL_TIMEOUT_SECONDS = 60.0
# `queries.yml: 7:11: group "runbook-queries", rule 2, "runbook:query_1:check": could not parse expression: ...`
_PROMTOOL_RULE = re.compile(r'rule (?P<rule>\d+), "[^"]*": (?P<why>.*)$')


@dataclass(frozen=True, order=True)
class Problem:
    where: str  # the runbook file, or the alert
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


def runbook_files(folder: Path) -> list[Path]:
    """The runbooks in `folder`: every `*.md` but its README."""
    if not folder.is_dir():
        raise RunbookError(f"{folder}: not a folder")
    return sorted(path for path in folder.glob("*.md") if path.name.lower() != "readme.md")


def check_runbooks(alerts: Sequence[Alert], folder: Path, promtool: str | None = None) -> list[Problem]:
    """Every problem found, sorted; empty when alerts and runbooks match and every runbook is complete.

    `promtool` is the binary that judges the PromQL steps (None: only their presence is checked).
    """
    runbooks = {path.name: read_runbook(path) for path in runbook_files(folder)}
    problems: list[Problem] = []
    unique = list({(a.name, a.severity, a.runbook_url): a for a in alerts}.values())
    fired = {alert.name for alert in unique}
    linked: set[str] = set()
    for alert in unique:
        name, severity, url, source, labels = alert.name, alert.severity, alert.runbook_url, alert.source, alert.labels
        where = f"alert {name} ({severity or 'no severity'})"
        if not url:
            problems.append(Problem(where, f"no runbook_url annotation ({source})"))
            continue
        file_name = runbook_file_name(url)
        linked.add(file_name)
        runbook = runbooks.get(file_name)
        if runbook is None:
            problems.append(Problem(where, f"runbook_url {url}: no runbook {folder / file_name}"))
            continue
        if name not in runbook.alerts:
            problems.append(Problem(where, f"{file_name} does not list {name} in its front matter 'alerts'"))
        if severity and runbook.severity and runbook.severity != severity:
            problems.append(Problem(where, f"{file_name} is a {runbook.severity} runbook, the alert a {severity}"))
        if alert.dashboard and alert.dashboard not in _dashboard_uids(runbook):
            problems.append(Problem(where, f"{file_name} does not name the SLO's dashboard (uid {alert.dashboard})"))
        owner = labels.get("owner")
        if owner and runbook.front_matter.get("owner") not in (None, owner):
            problems.append(
                Problem(where, f"{file_name} names owner {runbook.front_matter['owner']!r}, the alert {owner!r}")
            )
    for file_name, runbook in runbooks.items():
        problems += [Problem(file_name, what) for what in _runbook_problems(runbook)]
        if file_name not in linked:
            problems.append(Problem(file_name, "belongs to no alert (no alert's runbook_url points at it)"))
        for listed in runbook.alerts:
            if listed not in fired:
                problems.append(Problem(file_name, f"lists alert {listed}, which the suite does not fire"))
    if promtool:
        problems += _promql_problems(list(runbooks.values()), promtool)
    return sorted(set(problems))


def _dashboard_uids(runbook: Runbook) -> set[str]:
    dashboards = runbook.front_matter.get("dashboards")
    if not isinstance(dashboards, list):
        return set()
    return {str(entry.get("uid")) if isinstance(entry, dict) else str(entry) for entry in dashboards}


def _runbook_problems(runbook: Runbook) -> list[str]:
    problems = list(runbook.problems)
    front = runbook.front_matter
    if front:
        missing = [key for key in REQUIRED_FRONT_MATTER if key not in front]
        if missing:
            problems.append(f"front matter lacks {', '.join(missing)}")
        if "alerts" in front and (not isinstance(front["alerts"], list) or not front["alerts"]):
            problems.append("front matter 'alerts' must be a non-empty list of alert names")
        if "severity" in front and front["severity"] not in SEVERITIES:
            problems.append(
                f"front matter 'severity' must be one of {', '.join(SEVERITIES)}, not {front['severity']!r}"
            )
        if "dashboards" in front and (not isinstance(front["dashboards"], list) or not front["dashboards"]):
            problems.append("front matter 'dashboards' must be a non-empty list")
        for key in ("service", "owner"):
            if key in front and not str(front[key] or "").strip():
                problems.append(f"front matter '{key}' is empty")
    for section in REQUIRED_SECTIONS:
        if section not in runbook.sections:
            problems.append(f"no '## {section}' section")
        elif not runbook.sections[section]:
            problems.append(f"section '## {section}' is empty")
    if "Diagnosis" in runbook.sections and not any(step.section == "Diagnosis" for step in runbook.steps):
        problems.append("'## Diagnosis' has no step `nova runbooks run` can execute (a promql or nova-check block)")
    return problems


def _promql_problems(runbooks: Sequence[Runbook], promtool: str) -> list[Problem]:
    """Each PromQL step Prometheus's parser refuses, from one promtool run over all of them."""
    queries = [(runbook, step) for runbook in runbooks for step in runbook.steps if step.kind == PROMQL and step.body]
    if not queries:
        return []
    refusals = _promtool_refusals([step for _, step in queries], promtool)
    problems = []
    for index, refusal in refusals.items():
        if index is None:
            problems.append(Problem("promtool", refusal))
            continue
        runbook, step = queries[index]
        problems.append(Problem(runbook.path.name, f"line {step.line}: promql {step.title!r}: {refusal}"))
    return problems


def _promtool_refusals(steps: Sequence[Step], promtool: str) -> dict[int | None, str]:
    """promtool's complaint per query (by index), or under None what it said that names no query."""
    rules = [{"record": f"runbook:query_{i}:check", "expr": step.body} for i, step in enumerate(steps)]
    with tempfile.TemporaryDirectory(prefix="nova-runbooks-") as scratch:
        path = Path(scratch) / "queries.yml"
        path.write_text(yaml.safe_dump({"groups": [{"name": "runbook-queries", "rules": rules}]}, sort_keys=False))
        try:
            result = subprocess.run(
                [promtool, "check", "rules", str(path)],
                capture_output=True,
                text=True,
                timeout=PROMTOOL_TIMEOUT_SECONDS,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RunbookError(f"cannot run {promtool}: {exc}") from None
    if result.returncode == 0:
        return {}
    refusals: dict[int | None, str] = {}
    for line in (result.stderr + "\n" + result.stdout).splitlines():
        found = _PROMTOOL_RULE.search(line)
        if found and 0 < int(found.group("rule")) <= len(steps):
            refusals[int(found.group("rule")) - 1] = found.group("why").strip()
    if not refusals:
        refusals[None] = " ".join((result.stderr + " " + result.stdout).split()).replace(str(path), "queries")[:400]
    return refusals


def find_promtool() -> str | None:
    return shutil.which("promtool")
