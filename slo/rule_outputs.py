"""What one run of `nova slo rules` writes for a set of SLOs, whatever format they came in.

A plain rule file; the Prometheus Operator manifest (`--format prometheus-operator`); or, for
SLOs from Sloth's Kubernetes `PrometheusServiceLevel`s, one `PrometheusRule` per service level,
of the same name and namespace, as Sloth writes them. The command line and the golden files use
this one function, so both write the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

from slo.errors import SLOError
from slo.model import SLO
from slo.prometheus_operator import OperatorError, OperatorOptions, render_operator, render_service_levels
from slo.rules import RuleOptions, generate, render_groups
from slo.spec import SpecSet


def render_output(
    found: SpecSet,
    slos: Sequence[SLO],
    options: RuleOptions,
    operator: OperatorOptions | None = None,
    sources: Sequence[str] = (),
) -> str:
    """The text for `slos` (all of `found`'s, or one file's), or why they cannot share one output."""
    by_source = {slo.source: slo for slo in slos}
    resources = [(resource, [s for s in owned if s in by_source]) for resource, owned in found.kubernetes]
    resources = [(resource, owned) for resource, owned in resources if owned]
    if not resources:
        groups = generate(slos, options)
        return render_groups(groups, sources) if operator is None else render_operator(groups, operator, sources)
    if operator is not None or sum(len(owned) for _, owned in resources) != len(slos):
        raise SLOError(
            "PrometheusServiceLevel specs are written as PrometheusRules: give them apart from other specs, "
            "without --format"
        )
    try:
        return render_service_levels(
            [
                (r.name, r.namespace, r.labels, generate([by_source[s] for s in owned], options))
                for r, owned in resources
            ],
            sources,
        )
    except OperatorError as exc:  # a PrometheusServiceLevel whose name or labels Kubernetes would refuse
        raise SLOError(f"PrometheusServiceLevel: {exc}") from None
