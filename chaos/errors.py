"""Typed errors of the chaos extension; `str()` of each is the one-line reason an operator reads.

Chaos Toolkit records an exception raised by an action or probe in the journal (`status: failed`,
`exception`), so the message must say what was refused and why.
"""

from __future__ import annotations


class ChaosError(Exception):
    """Anything the chaos extension refuses to do."""


class PlatformError(ChaosError):
    """No running platform was found, or it cannot be driven as asked (faults off, not on PostgreSQL...)."""


class FaultAPIError(ChaosError):
    """The admin fault API refused a call or could not be reached."""


class ProbeError(ChaosError):
    """A probe could not read what it measures (service unreachable, Prometheus refused, no results)."""


class LoadError(ChaosError):
    """Background load could not be started or stopped."""


class DatabaseControlError(ChaosError):
    """The database's own controls (`pg_ctlcluster`) failed or do not apply."""
