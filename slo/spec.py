"""SLO specs in every format the suite reads, loaded into the one model (`slo.model`).

Sloth `prometheus/v1` and Sloth's Kubernetes `PrometheusServiceLevel`, OpenSLO `v1alpha` (as
Sloth reads it) and `v1`, Pyrra's `ServiceLevelObjective`, and the suite's latency SLI (in
the Sloth format). `READERS` is the table of which reader takes which document. Every file is
checked completely before anything is generated; the first problem found is one line with its
file, line, SLO and field path. Unknown fields are one warning line each, errors when strict.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from slo.errors import SpecError
from slo.formats import openslo, pyrra, sloth
from slo.formats.document import Document, ReadContext, read_documents
from slo.formats.sloth import KubernetesServiceLevel
from slo.model import (
    OPENSLO_ALPHA_VERSION,
    OPENSLO_VERSION,
    PYRRA_VERSION,
    RESERVED_LABELS,
    SLI,
    SLO,
    SLOTH_KUBERNETES_VERSION,
    SLOTH_VERSION,
    SUITE_SPECS,
    WINDOW,
    Alerting,
    AlertSpec,
    EventsSLI,
    LatencySLI,
    RawSLI,
    TimesliceSLI,
    UncompilableSLI,
)


@dataclass
class SpecSet:
    """What a load found: the SLOs in input order, the warnings, and, per Kubernetes
    `PrometheusServiceLevel`, the SLOs (by `source`, unique even among duplicate ids) whose rules
    go into its `PrometheusRule`."""

    slos: list[SLO] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    kubernetes: list[tuple[KubernetesServiceLevel, list[str]]] = field(default_factory=list)

    def files(self) -> list[str]:
        """The files that gave SLOs, in input order."""
        return list(dict.fromkeys(slo.source.rpartition(":")[0] or slo.source for slo in self.slos))


_Reader = Callable[[Document, openslo.Catalogue, SpecSet], list[SLO]]


def _kubernetes(doc: Document, _: openslo.Catalogue, found: SpecSet) -> list[SLO]:
    resource, slos = sloth.read_kubernetes(doc)
    found.kubernetes.append((resource, [slo.source for slo in slos]))
    return slos


# (version key, version, kind or None for any) -> reader. Documents of OpenSLO kinds other than
# SLO are checked by the catalogue and give no SLO themselves.
READERS: Mapping[tuple[str, str, str | None], _Reader] = {
    ("version", SLOTH_VERSION, None): lambda doc, _, __: sloth.read_prometheus_v1(doc),
    ("apiVersion", SLOTH_KUBERNETES_VERSION, "PrometheusServiceLevel"): _kubernetes,
    ("apiVersion", OPENSLO_VERSION, "SLO"): lambda doc, catalogue, _: openslo.read_v1_slo(doc, catalogue),
    ("apiVersion", OPENSLO_ALPHA_VERSION, "SLO"): lambda doc, _, __: openslo.read_v1alpha_slo(doc),
    ("apiVersion", PYRRA_VERSION, "ServiceLevelObjective"): lambda doc, _, __: [
        pyrra.read_service_level_objective(doc)
    ],
}
_NO_SLO_KINDS = {OPENSLO_VERSION: set(openslo.KIND_CHECKS), OPENSLO_ALPHA_VERSION: {"Service"}}


def load_spec_set(paths: Iterable[Path], *, strict: bool = False, ignore_duplicates: bool = False) -> SpecSet:
    """Every SLO in `paths`, with the warnings met, or the first problem with any of them."""
    context = ReadContext(strict=strict)
    documents = [doc for path in paths for doc in read_documents(path, context)]
    catalogue = openslo.catalogue(documents)
    found = SpecSet()
    for doc in documents:
        found.slos.extend(_read(doc, catalogue, found))
    if not ignore_duplicates:
        _check_unique(found.slos)
    found.warnings = list(context.warnings)
    return found


def load_specs(paths: Iterable[Path], *, strict: bool = False) -> list[SLO]:
    """Every SLO in `paths`, or the first problem with any of them (duplicates included)."""
    return load_spec_set(paths, strict=strict).slos


def _read(doc: Document, catalogue: openslo.Catalogue, found: SpecSet) -> list[SLO]:
    data = doc.data
    if not isinstance(data, dict):
        raise doc.error((), "expected a mapping (a Sloth, OpenSLO or Pyrra document)")
    key = "version" if "version" in data else "apiVersion" if "apiVersion" in data else None
    if key is None:
        raise doc.error(
            (), f"not an SLO spec: expected 'version: {SLOTH_VERSION}' or an apiVersion (OpenSLO, Sloth, Pyrra)"
        )
    version, kind = data[key], data.get("kind")
    reader = READERS.get((key, version, None)) or READERS.get((key, version, kind))
    if reader is not None:
        return reader(doc, catalogue, found)
    if kind in _NO_SLO_KINDS.get(version, ()):
        return []
    versions = sorted({v for k, v, _ in READERS if k == key})
    if version not in versions:
        raise doc.error((key,), f"unknown {key} {version!r} (expected {' or '.join(repr(v) for v in versions)})")
    kinds = sorted({str(k) for _, v, k in READERS if v == version and k} | _NO_SLO_KINDS.get(version, set()))
    raise doc.error(("kind",), f"unsupported kind {kind!r} ({', '.join(kinds)} are read)")


def _check_unique(slos: Sequence[SLO]) -> None:
    seen: dict[str, SLO] = {}
    for slo in slos:
        if slo.sloth_id in seen:
            file, _, line = slo.source.rpartition(":")
            raise SpecError(
                f"duplicate SLO (service {slo.service!r} already has it, at {seen[slo.sloth_id].source})",
                file=file or slo.source, line=int(line) if line.isdigit() else None, slo=slo.name, field="name",
            )  # fmt: skip
        seen[slo.sloth_id] = slo


__all__ = [
    "OPENSLO_ALPHA_VERSION",
    "OPENSLO_VERSION",
    "PYRRA_VERSION",
    "RESERVED_LABELS",
    "SLI",
    "SLO",
    "SLOTH_KUBERNETES_VERSION",
    "SLOTH_VERSION",
    "SUITE_SPECS",
    "WINDOW",
    "AlertSpec",
    "Alerting",
    "EventsSLI",
    "LatencySLI",
    "RawSLI",
    "SpecSet",
    "TimesliceSLI",
    "UncompilableSLI",
    "load_spec_set",
    "load_specs",
]
