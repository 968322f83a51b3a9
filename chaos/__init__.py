"""The Chaos Toolkit extension of the suite: actions and probes as plain functions, experiments, journals.

Experiments name providers as `{"type": "python", "module": "chaos.actions", "func": ...}` or
`chaos.probes`. Nothing here imports the services: they are reached over HTTP (the admin fault
API, `/readyz`, `/v1/ledger/verify`), by the database's own controls (`pg_ctlcluster`), and by
starting `nova load` as an operator would.
"""

from __future__ import annotations

from chaos.errors import ChaosError, PlatformError, ProbeError
from chaos.journal import Outcome, experiment_outcome

__all__ = ["ChaosError", "Outcome", "PlatformError", "ProbeError", "experiment_outcome"]
