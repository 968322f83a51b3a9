"""The runbook link and the first things to do, for the page.

The first steps come from the runbook itself when it is on disk (the bullets of its
"First five minutes" section), otherwise from what every alert of that kind needs first.
Either way the page ends with the command that runs the runbook's diagnostics.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from alerts.pager.subject import Subject

MAX_STEPS = 5
_SECTION = re.compile(r"^\s{0,3}#{1,6}\s*first five minutes\b", re.IGNORECASE)
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s")
_BULLET = re.compile(r"^\s{0,3}(?:[-*+]|\d+[.)])\s+(.*\S)")


@dataclass(frozen=True)
class RunbookSteps:
    url: str  # as the alert's runbook_url annotation says; "" when it has none
    local_path: Path | None  # the runbook file the steps were read from
    steps: tuple[str, ...]
    command: str  # runs the runbook's diagnostics


def runbook_steps(runbook_url: str, subject: Subject, root: Path, dashboard: str = "") -> RunbookSteps:
    path = _local_runbook(runbook_url, root)
    steps = first_five_minutes(path.read_text(errors="replace")) if path is not None else ()
    return RunbookSteps(
        url=runbook_url,
        local_path=path if steps else None,
        steps=steps or generic_steps(subject, dashboard),
        # A burn alert fires as page and as ticket, each with its own runbook.
        command=f"nova runbooks run {subject.alertname}"
        + (" --severity ticket" if subject.severity == "ticket" else ""),
    )


def first_five_minutes(markdown: str) -> tuple[str, ...]:
    """The first bullets (a few words each, continuation lines joined) of the "First five minutes" section."""
    steps: list[str] = []
    inside = False
    for line in markdown.splitlines():
        if _SECTION.match(line):
            inside = True
            continue
        if not inside:
            continue
        if _HEADING.match(line):
            break
        bullet = _BULLET.match(line)
        if bullet:
            if len(steps) == MAX_STEPS:
                break
            steps.append(bullet.group(1))
        elif steps and line.startswith((" ", "\t")) and line.strip():
            steps[-1] += " " + line.strip()
    return tuple(steps)


def generic_steps(subject: Subject, dashboard: str = "") -> tuple[str, ...]:
    """What to look at first when the runbook is not at hand, by what the alert is about."""
    where = f"the SLO dashboard ({dashboard})" if dashboard else "the SLO dashboard"
    service = subject.service or "the service"
    if subject.kind == "exhaustion":
        return (
            f"Not an emergency: open {where} and see which days spent the budget.",
            f"Hold risky {service} releases until the budget recovers; file the reliability work.",
        )
    if subject.kind == "predictive":
        return (
            f"Confirm the forecast on {where}: is the burn rate rising now?",
            "If it is, work it as the burn-rate page it predicts; if not, note why it fired.",
        )
    if "latency" in subject.slo or "latency" in subject.alertname.lower():
        return (
            f"Open {where}: p99 by route, and whether one route or all are slow.",
            f"Check {service} CPU and database connection pool use; a full pool queues every request.",
            "Open the slowest traces below in Jaeger: which span holds the time?",
            "Any deploy, config change or game day in the last hour? Roll it back first.",
        )
    return (
        f"Open {where}: 5xx rate by route, and whether one route or all fail.",
        f"Check {service} readiness (/readyz) and its database; a 503 with Retry-After means the database is down.",
        "Open the failed traces below in Jaeger: which span fails first?",
        "Any deploy, config change or game day in the last hour? Roll it back first.",
    )


def _local_runbook(runbook_url: str, root: Path) -> Path | None:
    if not runbook_url:
        return None
    parts = urlsplit(runbook_url)
    if parts.scheme in ("http", "https"):
        # A runbook published from this repository: the same file under runbooks/.
        candidates = [root / "runbooks" / Path(parts.path).name]
    elif parts.scheme in ("", "file"):
        candidates = [root / parts.path.lstrip("/") if not Path(parts.path).is_absolute() else Path(parts.path)]
        candidates.append(root / "runbooks" / Path(parts.path).name)
    else:
        return None
    for candidate in candidates:
        if candidate.suffix == ".md" and candidate.is_file():
            return candidate
    return None
