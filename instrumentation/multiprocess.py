"""The metrics folder that a service's worker processes share (prometheus-client multiprocess mode).

One folder per service, `<data-dir>/metrics/<service>/`, made fresh by the supervisor
before its first worker starts. What lives there:

- `counter_<pid>.db`, `histogram_<pid>.db`, `gauge_<mode>_<pid>.db`: prometheus-client's
  memory-mapped values, one file per worker and metric kind. A dead worker's counter
  and histogram files stay, so what it counted still counts; its `live*` gauge files
  are removed by `forget_worker` (prometheus-client's `mark_process_dead`).
- `exemplars_<pid>.json`: each worker's newest trace-id exemplar per latency bucket,
  rewritten at most once a second (prometheus-client keeps no exemplars in this mode).

The supervisor imports only this module, never the metric definitions.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import mark_process_dead
from prometheus_client.process_collector import ProcessCollector

# Files prometheus-client removes when a worker dies: they exist exactly while the worker lives.
_LIVE_GAUGE_FILE = re.compile(r"^gauge_live[a-z]+_(\d+)\.db$")
_EXEMPLAR_FILE = "exemplars_{pid}.json"
_EXEMPLAR_FILE_PATTERN = re.compile(r"^exemplars_(\d+)\.json$")


class ExemplarRecord(NamedTuple):
    """The newest sampled request of one latency bucket of one series."""

    service: str
    route: str
    method: str
    bucket: int  # index into the histogram's upper bounds
    trace_id: str  # 32 lowercase hex digits
    value: float  # the request's duration in seconds
    timestamp: float  # unix seconds when it was observed


def prepare_metrics_dir(path: Path) -> None:
    """Make `path` an empty folder: a supervisor's workers start counting from zero."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)


def forget_worker(pid: int, path: Path) -> None:
    """Bookkeeping for a worker that died: its live gauges go, its counters and histograms stay."""
    mark_process_dead(pid, str(path))  # type: ignore[no-untyped-call]


def live_worker_pids(path: Path) -> list[int]:
    """The workers whose live gauges are in `path`: started, and not yet forgotten by the supervisor."""
    pids = set()
    for name in _list(path):
        match = _LIVE_GAUGE_FILE.match(name)
        if match:
            pids.add(int(match.group(1)))
    return sorted(pids)


def write_exemplars(path: Path, pid: int, records: Iterable[ExemplarRecord]) -> None:
    """Replace this worker's exemplar file; readers see the old file or the new one, never half of one."""
    target = path / _EXEMPLAR_FILE.format(pid=pid)
    draft = target.with_suffix(".tmp")
    draft.write_text(json.dumps([list(record) for record in records], separators=(",", ":")))
    os.replace(draft, target)


def read_exemplars(path: Path, skip_pid: int | None = None) -> Iterator[ExemplarRecord]:
    """Every worker's published exemplars (dead workers' included: what they observed still counts)."""
    for name in _list(path):
        match = _EXEMPLAR_FILE_PATTERN.match(name)
        if not match or (skip_pid is not None and int(match.group(1)) == skip_pid):
            continue
        try:
            rows = json.loads((path / name).read_text())
        except (OSError, ValueError):
            continue  # replaced or removed while we looked: the next scrape reads it
        for row in rows:
            service, route, method, bucket, trace_id, value, timestamp = row
            yield ExemplarRecord(
                str(service), str(route), str(method), int(bucket), str(trace_id), float(value), float(timestamp)
            )


class WorkerProcessCollector:
    """CPU, memory and file descriptors of every live worker, read from /proc, labelled with `pid`.

    prometheus-client's ProcessCollector describes one process; in multiprocess mode the
    scraped worker reports its siblings too, so each family carries one sample per worker.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._collectors: dict[int, ProcessCollector] = {}

    def collect(self) -> Iterator[Metric]:
        pids = live_worker_pids(self._path)
        for gone in set(self._collectors) - set(pids):
            self._collectors.pop(gone, None)  # two scrapes may run at once
        families: dict[str, Metric] = {}
        for pid in pids:
            collector = self._collectors.get(pid)
            if collector is None:
                collector = self._collectors[pid] = ProcessCollector(pid=_constant(pid), registry=None)
            for metric in collector.collect():
                family = families.get(metric.name)
                if family is None:
                    family = families[metric.name] = Metric(metric.name, metric.documentation, metric.type)
                for sample in metric.samples:
                    family.samples.append(sample._replace(labels={**sample.labels, "pid": str(pid)}))
        yield from families.values()


def _constant(pid: int) -> Callable[[], int]:
    return lambda: pid


def _list(path: Path) -> list[str]:
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []
