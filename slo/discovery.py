"""Spec files found as Sloth finds them: a file as given, or a directory searched recursively.

In a directory, files ending in `.yaml`, `.yml` or `.json` are specs; `--fs-exclude` and
`--fs-include` are regular expressions searched in each file's path, and exclude wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from slo.errors import SLOError

SPEC_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Discovered:
    """One spec file and its path relative to the directory it was found in (its output name)."""

    path: Path
    relative: Path


def _pattern(flag: str, text: str | None) -> re.Pattern[str] | None:
    if text is None:
        return None
    try:
        return re.compile(text)
    except re.error as exc:
        raise SLOError(f"{flag}: not a regular expression: {exc}") from None


def discover(root: Path, include: str | None = None, exclude: str | None = None) -> list[Discovered]:
    """The spec files under `root` (or `root` itself), in path order; none found is an error."""
    included, excluded = _pattern("--fs-include", include), _pattern("--fs-exclude", exclude)
    if not root.exists():
        raise SLOError(f"{root}: no such file or directory")
    if root.is_file():
        return [Discovered(root, Path(root.name))]
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in SPEC_SUFFIXES):
        text = str(path)
        if excluded is not None and excluded.search(text):
            continue
        if included is not None and not included.search(text):
            continue
        found.append(Discovered(path, path.relative_to(root)))
    if not found:
        raise SLOError(f"{root}: no spec files found (.yaml, .yml or .json, after --fs-include/--fs-exclude)")
    return found
