"""Typed errors of the SLO engine; the command line prints each as one line."""

from __future__ import annotations


class SLOError(Exception):
    """Anything the SLO engine refuses to do; `str()` is the one-line reason."""


class SpecError(SLOError):
    """A spec that cannot be turned into rules, located as precisely as the input allows."""

    def __init__(self, message: str, *, file: str, line: int | None = None, slo: str | None = None, field: str = ""):
        self.file, self.line, self.slo, self.field, self.reason = file, line, slo, field, message
        where = f"{file}:{line}" if line is not None else file
        parts = [where]
        if slo:
            parts.append(f"SLO {slo!r}")
        if field:
            parts.append(field)
        super().__init__(": ".join([*parts, message]))


class SourceError(SLOError):
    """Prometheus or a scenario folder could not give the series a status or report needs."""
