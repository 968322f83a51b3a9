"""A runbook file read into its parts: front matter, H2 sections, and the diagnostic steps it declares.

The format (runbooks/README.md): YAML front matter between `---` lines, then Markdown whose
`## ` headings are the sections. A diagnostic step is a fenced code block in the Diagnosis or
Verify recovery section whose language is `promql` or `nova-check`, with `key="value"` pairs
after the language (`title` required; `embedded` and `attention` optional on `promql`, `causes` on
either: the causes a finding of the step points to, `runbooks.causes`). Other fenced blocks
(shell, log and trace searches) are for people and are not run.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from runbooks.causes import Attention, parse_attention, parse_causes
from runbooks.errors import RunbookError

REQUIRED_SECTIONS = (
    "Customer impact",
    "First five minutes",
    "Diagnosis",
    "Mitigation",
    "Escalation",
    "Verify recovery",
)
DIAGNOSTIC_SECTIONS = ("Diagnosis", "Verify recovery")
REQUIRED_FRONT_MATTER = ("alerts", "severity", "service", "owner", "dashboards")
SEVERITIES = ("page", "ticket")

PROMQL = "promql"
NOVA_CHECK = "nova-check"
STEP_LANGUAGES = (PROMQL, NOVA_CHECK)
CHECKS = ("readyz", "ledger", "faults", "workers")
# What the embedded scraper can stand in for, from one read of each service's /metrics.
EMBEDDED_MEASURES = ("error_ratio", "slow_ratio", "p99_ms", "requests", "pool_share", "up")
SERVICES = ("payments", "portfolio")

_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})\s*(?P<info>.*)$")
_H2 = re.compile(r"^##\s+(?P<title>.+?)\s*#*\s*$")


@dataclass(frozen=True)
class Step:
    """One diagnostic a runbook declares: a PromQL query or a check of the running platform."""

    kind: str  # "promql" or "nova-check"
    title: str
    body: str  # the query, or the check (`readyz`, `readyz payments`, `ledger`, `faults`, `workers`)
    section: str
    line: int  # of the opening fence, 1-based
    attributes: dict[str, str] = field(default_factory=dict)

    @property
    def embedded(self) -> str:
        """The embedded scraper's stand-in (`error_ratio payments`), or "" when the step needs Prometheus."""
        return self.attributes.get("embedded", "")

    @property
    def causes(self) -> tuple[str, ...]:
        """The causes a finding of this step points to (`causes="..."`); () when it declares none."""
        try:
            return parse_causes(self.attributes.get("causes", ""))
        except ValueError:
            return ()  # `nova runbooks check` reports it; a run names nothing it cannot spell

    @property
    def attention(self) -> Attention | None:
        """When a PromQL answer is a finding (`attention="> 0"`), or None: the step only reports."""
        text = self.attributes.get("attention", "")
        try:
            return parse_attention(text) if text else None
        except ValueError:
            return None


@dataclass(frozen=True)
class Runbook:
    path: Path
    front_matter: dict[str, Any]
    sections: dict[str, str]  # H2 title -> its text, in file order
    steps: tuple[Step, ...]
    problems: tuple[str, ...]  # what the parser could not make sense of (check reports them)

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def alerts(self) -> tuple[str, ...]:
        alerts = self.front_matter.get("alerts")
        if isinstance(alerts, list):
            return tuple(str(alert) for alert in alerts)
        return ()

    @property
    def severity(self) -> str:
        return str(self.front_matter.get("severity", ""))


def read_runbook(path: Path) -> Runbook:
    """Parse `path`; RunbookError only when it cannot be read at all (problems inside are collected)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise RunbookError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return parse_runbook(path, text)


def parse_runbook(path: Path, text: str) -> Runbook:
    problems: list[str] = []
    lines = text.splitlines()
    front_matter, body_start = _front_matter(lines, problems)
    sections: dict[str, list[str]] = {}
    steps: list[Step] = []
    current: str | None = None
    fence: str | None = None
    block: list[str] = []
    block_info = ""
    block_line = 0
    for number, line in enumerate(lines[body_start:], start=body_start + 1):
        if fence is not None:
            if line.strip().startswith(fence[0] * len(fence)) and not line.strip().strip(fence[0]):
                fence = None
                if current is not None:
                    sections[current].append(line)
                    step = _step(block_info, block, current, block_line, problems)
                    if step is not None:
                        steps.append(step)
                continue
            block.append(line)
            if current is not None:
                sections[current].append(line)
            continue
        opening = _FENCE.match(line.strip())
        if opening:
            fence, block_info, block, block_line = opening.group("fence"), opening.group("info"), [], number
            if current is not None:
                sections[current].append(line)
            continue
        heading = _H2.match(line)
        if heading:
            current = heading.group("title")
            if current in sections:
                problems.append(f"line {number}: section '## {current}' appears twice")
            sections.setdefault(current, [])
            continue
        if current is not None:
            sections[current].append(line)
    if fence is not None:
        problems.append(f"line {block_line}: code block never closed")
    return Runbook(
        path=path,
        front_matter=front_matter,
        sections={title: "\n".join(body).strip() for title, body in sections.items()},
        steps=tuple(steps),
        problems=tuple(problems),
    )


def parse_info(info: str) -> tuple[str, dict[str, str]]:
    """A fence's info string: the language and its `key="value"` attributes."""
    try:
        words = shlex.split(info)
    except ValueError as exc:
        raise RunbookError(f"cannot read the block's attributes {info!r}: {exc}") from None
    if not words:
        return "", {}
    language, attributes = words[0], {}
    for word in words[1:]:
        key, equals, value = word.partition("=")
        if not equals or not key:
            raise RunbookError(f'attribute {word!r} is not key="value"')
        attributes[key] = value
    return language, attributes


def _front_matter(lines: list[str], problems: list[str]) -> tuple[dict[str, Any], int]:
    if not lines or lines[0].strip() != "---":
        problems.append("no front matter (the file must start with a '---' line)")
        return {}, 0
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        problems.append("front matter never closed by a '---' line")
        return {}, 0
    try:
        loaded = yaml.safe_load("\n".join(lines[1:end]))
    except yaml.YAMLError as exc:
        problems.append(f"front matter is not YAML: {str(exc).splitlines()[0]}")
        return {}, end + 1
    if not isinstance(loaded, dict):
        problems.append("front matter is not a mapping")
        return {}, end + 1
    return loaded, end + 1


def _step(info: str, block: list[str], section: str, line: int, problems: list[str]) -> Step | None:
    """The block as a step, if it is one (a promql or nova-check block in a diagnostic section)."""
    try:
        language, attributes = parse_info(info)
    except RunbookError as exc:
        if info.split()[:1] and info.split()[0] in STEP_LANGUAGES:
            problems.append(f"line {line}: {exc}")
        return None
    if language not in STEP_LANGUAGES:
        return None
    if section not in DIAGNOSTIC_SECTIONS:
        problems.append(
            f"line {line}: {language} block in '## {section}' (steps belong in Diagnosis or Verify recovery)"
        )
        return None
    body = "\n".join(block).strip()
    title = attributes.get("title", "").strip()
    where = f"line {line}: {language} block"
    if not title:
        problems.append(f'{where} has no title="..."')
    if not body:
        problems.append(f"{where} is empty")
    known = {"title", "causes", "embedded", "attention"} if language == PROMQL else {"title", "causes"}
    unknown = sorted(set(attributes) - known)
    if unknown:
        problems.append(f"{where}: unknown attribute(s) {', '.join(unknown)}")
    if language == NOVA_CHECK and body:
        words = body.split()
        if words[0] not in CHECKS or len(words) > 2 or (len(words) == 2 and words[1] not in SERVICES):
            problems.append(f"{where}: {body!r} is not one of {', '.join(CHECKS)} (optionally followed by a service)")
    for key, parse in (("causes", parse_causes), ("attention", parse_attention)):
        if key in attributes and key in known:
            try:
                parse(attributes[key])
            except ValueError as exc:
                problems.append(f"{where}: {key}={attributes[key]!r}: {exc}")
    if language == PROMQL and attributes.get("causes") and not attributes.get("attention"):
        problems.append(f'{where}: causes without attention="..." (when does its answer point to them?)')
    if language == PROMQL and attributes.get("embedded"):
        problem = embedded_problem(attributes["embedded"])
        if problem:
            problems.append(f"{where}: embedded={attributes['embedded']!r}: {problem}")
    return Step(language, title, body, section, line, attributes)


def embedded_problem(spec: str) -> str:
    """Why an `embedded="<measure> <service>"` fallback is malformed, or ""."""
    words = spec.split()
    if len(words) != 2:
        return "must be '<measure> <service>'"
    measure, service = words
    if measure not in EMBEDDED_MEASURES:
        return f"measure must be one of {', '.join(EMBEDDED_MEASURES)}"
    if service not in SERVICES:
        return f"service must be one of {', '.join(SERVICES)}"
    return ""
