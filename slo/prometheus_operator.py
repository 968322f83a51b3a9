"""The SLO rules as Prometheus Operator resources: a `PrometheusRule` and a `ServiceMonitor`.

`PrometheusRule` (monitoring.coreos.com/v1) carries exactly the rule groups `nova slo rules`
writes for a plain Prometheus, under `spec.groups`, written by the same deterministic writer
(indented two spaces), so the two outputs never drift apart and both are byte-stable.

The `ServiceMonitor` scrapes every Service labelled `app.kubernetes.io/part-of: nova` in the
services' namespace (`nova`, wherever the resources themselves go) on its port named `http`,
path `/metrics`, every 15 s. `honorLabels: true` is what keeps the rules working: the services
export their own `service` label (`service="payments"`), and without it the Operator's target
label `service` (the Kubernetes Service's name) would replace it and the scraped one would
become `exported_service`.

Both documents carry the same labels (by default `release: prometheus`, what the
kube-prometheus-stack chart's Prometheus selects rules and monitors by), plus
`app.kubernetes.io/part-of: nova`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from slo.rule_yaml import dump_rule_groups, scalar
from slo.rules import GENERATOR

API_VERSION = "monitoring.coreos.com/v1"
PART_OF = {"app.kubernetes.io/part-of": "nova"}
DEFAULT_LABELS: Mapping[str, str] = {"release": "prometheus"}
DEFAULT_RULE_NAME = "nova-slos"
DEFAULT_MONITOR_NAME = "nova-services"
DEFAULT_NAMESPACE = "nova"
SERVICES_NAMESPACE = "nova"  # where core_services/deploy/ puts the services, whatever namespace the resources go to
SCRAPE_PORT = "http"
SCRAPE_PATH = "/metrics"
SCRAPE_INTERVAL = "15s"

# Kubernetes names: DNS-1123 subdomains (resource names) and labels (namespaces); label keys and values.
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


class OperatorError(ValueError):
    """A name, namespace or label Kubernetes would refuse; the message is one line."""


@dataclass(frozen=True)
class OperatorOptions:
    name: str = DEFAULT_RULE_NAME
    namespace: str = DEFAULT_NAMESPACE
    labels: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_LABELS))
    service_monitor: bool = True
    monitor_name: str = DEFAULT_MONITOR_NAME
    services_namespace: str = SERVICES_NAMESPACE

    def __post_init__(self) -> None:
        for what, value in (("name", self.name), ("service monitor name", self.monitor_name)):
            if len(value) > 253 or not _SUBDOMAIN.match(value):
                raise OperatorError(f"{what} {value!r} is not a Kubernetes resource name (lower-case DNS subdomain)")
        for namespace in (self.namespace, self.services_namespace):
            if len(namespace) > 63 or not _DNS_LABEL.match(namespace):
                raise OperatorError(f"namespace {namespace!r} is not a Kubernetes namespace (lower-case DNS label)")
        for key, value in self.labels.items():
            check_label(key, value)

    def all_labels(self) -> dict[str, str]:
        return dict(sorted({**PART_OF, **self.labels}.items()))


def check_label(key: str, value: str) -> None:
    prefix, _, name = key.rpartition("/")
    if (
        not name
        or len(name) > 63
        or not _LABEL_NAME.match(name)
        or (prefix and (len(prefix) > 253 or not _SUBDOMAIN.match(prefix)))
    ):
        raise OperatorError(f"label key {key!r} is not a Kubernetes label name")
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        raise OperatorError(f"label {key}: value {value!r} is not a Kubernetes label value")


def parse_labels(items: Sequence[str]) -> dict[str, str]:
    """`k=v` items (from `--label`) as a mapping; a later key wins."""
    labels: dict[str, str] = {}
    for item in items:
        key, separator, value = item.partition("=")
        if not separator or not key.strip():
            raise OperatorError(f"--label must be key=value, not {item!r}")
        labels[key.strip()] = value.strip()
    for key, value in labels.items():
        check_label(key, value)
    return labels


def _metadata(name: str, options: OperatorOptions) -> list[str]:
    lines = ["metadata:\n", f"  name: {scalar(name)}\n", f"  namespace: {scalar(options.namespace)}\n", "  labels:\n"]
    lines += [f"    {scalar(key)}: {scalar(value)}\n" for key, value in options.all_labels().items()]
    return lines


def prometheus_rule(groups: Sequence[Mapping[str, Any]], options: OperatorOptions) -> str:
    """One `PrometheusRule` document (no header, no `---`) holding `groups` under `spec.groups`."""
    rules = dump_rule_groups(groups)
    indented = "".join(f"  {line}" if line.strip() else line for line in rules.splitlines(keepends=True))
    lines = [f"apiVersion: {API_VERSION}\n", "kind: PrometheusRule\n", *_metadata(options.name, options), "spec:\n"]
    return "".join(lines) + indented


def service_monitor(options: OperatorOptions) -> str:
    """One `ServiceMonitor` document for the suite's services' `/metrics` (see the module docstring)."""
    lines = [
        f"apiVersion: {API_VERSION}\n",
        "kind: ServiceMonitor\n",
        *_metadata(options.monitor_name, options),
        "spec:\n",
        "  selector:\n",
        "    matchLabels:\n",
        *(f"      {scalar(key)}: {scalar(value)}\n" for key, value in PART_OF.items()),
        "  namespaceSelector:\n",
        "    matchNames:\n",
        f"    - {scalar(options.services_namespace)}\n",
        "  endpoints:\n",
        f"  - port: {SCRAPE_PORT}\n",
        f"    path: {SCRAPE_PATH}\n",
        f"    interval: {SCRAPE_INTERVAL}\n",
        "    honorLabels: true\n",
    ]
    return "".join(lines)


def render_operator(groups: Sequence[Mapping[str, Any]], options: OperatorOptions, sources: Sequence[str] = ()) -> str:
    """The manifest `nova slo rules --format prometheus-operator` writes: the rule, then the monitor."""
    header = (
        f"# Code generated by `nova slo rules --format prometheus-operator` ({GENERATOR}) "
        f"from {', '.join(sources) or 'specs'}.\n# DO NOT EDIT.\n"
    )
    documents = [prometheus_rule(groups, options)]
    if options.service_monitor:
        documents.append(service_monitor(options))
    return header + "".join(f"---\n{document}" for document in documents)


# What Sloth labels the PrometheusRule of a PrometheusServiceLevel with (the generator is this one).
SERVICE_LEVEL_LABELS: Mapping[str, str] = {
    "app.kubernetes.io/component": "SLO",
    "app.kubernetes.io/managed-by": "nova-slo",
}


def render_service_levels(
    resources: Sequence[tuple[str, str, Mapping[str, str], Sequence[Mapping[str, Any]]]], sources: Sequence[str] = ()
) -> str:
    """Sloth's Kubernetes output: per `PrometheusServiceLevel` (name, namespace, labels, groups),
    one `PrometheusRule` of the same name and namespace holding its rule groups."""
    header = (
        f"# Code generated by `nova slo rules` ({GENERATOR}) from {', '.join(sources) or 'specs'}.\n# DO NOT EDIT.\n"
    )
    documents = []
    for name, namespace, labels, groups in resources:
        options = OperatorOptions(name, namespace, {**labels, **SERVICE_LEVEL_LABELS}, service_monitor=False)
        documents.append(prometheus_rule(groups, options))
    return header + "".join(f"---\n{document}" for document in documents)
