"""Prometheus metrics of the services: requests, latency with trace exemplars, database pools, processes.

prometheus-client picks the mode once per process, from PROMETHEUS_MULTIPROC_DIR:

- single process (in-process tests, one-off runs): values live in this module's registry;
  `/metrics` reads them, the database pools and this process's /proc entry at scrape time.
- multiprocess (every `nova serve` worker; the supervisor names the folder): each worker
  writes its values to memory-mapped files in the shared folder and any worker answering
  `/metrics` merges every worker's files (see `instrumentation.multiprocess`).

prometheus-client keeps no exemplars in multiprocess mode, so this module keeps them for
both modes: every series remembers the newest sampled trace per latency bucket, in memory;
in multiprocess mode a background thread publishes them to the folder at most once a
second, and the worker answering a scrape attaches the newest exemplar per bucket across
all workers (its own from memory, the others' at most about a second old).

Per request the cost is a dict lookup, three memory-mapped increments (counter, bucket,
sum), two for the in-flight gauge and, for a sampled trace, one list store.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import weakref
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from opentelemetry.trace import get_current_span
from prometheus_client import values
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics import Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.samples import Exemplar
from prometheus_client.utils import floatToGoString
from sqlalchemy import Engine
from sqlalchemy.pool import QueuePool

from instrumentation.multiprocess import ExemplarRecord, WorkerProcessCollector, read_exemplars, write_exemplars

log = logging.getLogger("nova.metrics")

# Fine steps around the 200 ms latency objective, so the SLO threshold is a bucket edge.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, math.inf)
UNMATCHED_ROUTE = "unmatched"
OTHER_METHOD = "_OTHER"
PUBLISH_EVERY_SECONDS = 1.0

REQUESTS_TOTAL = "http_server_requests_total"
REQUEST_DURATION = "http_server_request_duration_seconds"
ACTIVE_REQUESTS = "http_server_active_requests"
POOL_IN_USE = "db_client_connections_in_use"
POOL_MAX = "db_client_connections_max"

# Any other token a client sends as a method is counted as `_OTHER`, so clients cannot add series.
_METHODS = frozenset({"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE"})
_LE = tuple(floatToGoString(bound) for bound in BUCKETS)  # type: ignore[no-untyped-call]


def _multiprocess_dir() -> Path | None:
    # Trust the value class prometheus-client chose at import, not the variable as it is now.
    if not getattr(values.ValueClass, "_multiprocess", False):
        return None
    return Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])


MULTIPROCESS_DIR = _multiprocess_dir()
_REGISTRY = CollectorRegistry(auto_describe=True)
# Multiprocess mode has no `_created` series; without them in one process too, both modes expose the same series.
disable_created_metrics()  # type: ignore[no-untyped-call]

_requests = Counter(
    REQUESTS_TOTAL,
    "HTTP requests answered, by route template, method and status code.",
    ["service", "route", "method", "code"],
    registry=_REGISTRY,
)
_duration = Histogram(
    REQUEST_DURATION,
    "Time from a request's arrival to its last response byte, by route template and method.",
    ["service", "route", "method"],
    buckets=BUCKETS,
    registry=_REGISTRY,
)
_active = Gauge(
    ACTIVE_REQUESTS, "HTTP requests being served now.", ["service"], multiprocess_mode="livesum", registry=_REGISTRY
)
_pool_in_use = Gauge(
    POOL_IN_USE,
    "Database connections checked out of the pool (summed over live workers).",
    ["service"],
    multiprocess_mode="livesum",
    registry=_REGISTRY,
)
_pool_max = Gauge(
    POOL_MAX,
    "Database connections the pool may open: size plus overflow (summed over live workers).",
    ["service"],
    multiprocess_mode="livesum",
    registry=_REGISTRY,
)
if MULTIPROCESS_DIR is None:
    ProcessCollector(registry=_REGISTRY)


# -- metrics defined by the services ---------------------------------------------------------------

_counters: dict[str, tuple[Counter, tuple[str, ...]]] = {}


def counter(name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
    """A counter that is counted across workers in multiprocess mode and exposed on `/metrics`.

    `name` may end in `_total` or not; the exposition always does. Defining the same name
    again returns the first counter (a module imported twice), unless the labels differ.
    Label values must come from small fixed sets: every combination is a series forever.
    """
    key = name.removesuffix("_total")
    labelnames = tuple(labels)
    known = _counters.get(key)
    if known is not None:
        if known[1] != labelnames:
            raise ValueError(f"counter {key}_total already has labels {known[1]}, not {labelnames}")
        return known[0]
    created = Counter(key, documentation, labelnames, registry=_REGISTRY)
    _counters[key] = (created, labelnames)
    return created


GaugeSamples = Iterable[tuple[Sequence[str], float]]


class ScrapedGauge:
    """A gauge read at scrape time from callbacks, so any worker answering a scrape reports the same state.

    For state that lives outside the process (a file the workers share) and changes
    without a request passing by (a deadline running out): a value set per worker would
    be stale in the workers that did not see the change.
    """

    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labels)
        self._sources: dict[str, Callable[[], GaugeSamples]] = {}

    def observe(self, source: str, read: Callable[[], GaugeSamples]) -> None:
        """Report what `read` returns (label values, value) at each scrape; a later `read` for `source` replaces it."""
        self._sources[source] = read

    def collect(self) -> GaugeMetricFamily:
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for source, read in list(self._sources.items()):
            try:
                for labels, value in read():
                    family.add_metric(list(labels), value)
            except Exception:  # one broken source must not cost the whole scrape
                log.exception("could not read gauge %s from %s", self.name, source)
        return family


_gauges: dict[str, ScrapedGauge] = {}


def gauge(name: str, documentation: str, labels: Sequence[str] = ()) -> ScrapedGauge:
    """A `ScrapedGauge` on `/metrics`; defining the same name again returns the first, unless the labels differ."""
    known = _gauges.get(name)
    if known is not None:
        if known.labelnames != tuple(labels):
            raise ValueError(f"gauge {name} already has labels {known.labelnames}, not {tuple(labels)}")
        return known
    created = _gauges[name] = ScrapedGauge(name, documentation, labels)
    return created


# -- HTTP server metrics ---------------------------------------------------------------------------


class _LatencySeries:
    """One (service, route, method) histogram and the newest sampled trace of each of its buckets."""

    __slots__ = ("exemplars", "histogram", "labels")

    def __init__(self, service: str, route: str, method: str) -> None:
        self.labels = (service, route, method)
        self.histogram = _duration.labels(service, route, method)
        # (trace id, seconds, unix time) per bucket; replaced whole, so readers in other threads see one
        self.exemplars: list[tuple[int, float, float] | None] = [None] * len(BUCKETS)


class _RequestSeries:
    __slots__ = ("latency", "requests")

    def __init__(self, requests: Counter, latency: _LatencySeries) -> None:
        self.requests = requests
        self.latency = latency


_latency_series: dict[tuple[str, str, str], _LatencySeries] = {}
_request_series: dict[tuple[str, str, str, int], _RequestSeries] = {}


class _ExemplarState:
    dirty = False


_exemplar_state = _ExemplarState()


class HttpServerMetrics:
    """The request metrics of one service in this process, as the ASGI middleware records them."""

    def __init__(self, service: str) -> None:
        self.service = service
        # Created now, so a worker's live gauge file exists (and its process is reported) before traffic.
        self.active = _active.labels(service)
        _start_publisher()

    def observe(self, route: str, method: str, code: int, seconds: float) -> None:
        """Count one answered request and its duration; remember its trace if it is sampled."""
        key = (self.service, route, method, code)
        series = _request_series.get(key) or self._add_series(key)
        series.requests.inc()
        latency = series.latency
        latency.histogram.observe(seconds)
        context = get_current_span().get_span_context()
        if context.trace_flags.sampled and context.is_valid:
            latency.exemplars[bisect_left(BUCKETS, seconds)] = (context.trace_id, seconds, time.time())
            _exemplar_state.dirty = True

    def _add_series(self, key: tuple[str, str, str, int]) -> _RequestSeries:
        service, route, method, code = key
        if method not in _METHODS:
            # Cached under `_OTHER` only: caching every token a client invents would grow without bound.
            other = (service, route, OTHER_METHOD, code)
            return _request_series.get(other) or self._new_series(other)
        return self._new_series(key)

    def _new_series(self, key: tuple[str, str, str, int]) -> _RequestSeries:
        service, route, method, code = key
        latency = _latency_series.get((service, route, method))
        if latency is None:
            latency = _latency_series[(service, route, method)] = _LatencySeries(service, route, method)
        series = _request_series[key] = _RequestSeries(_requests.labels(service, route, method, str(code)), latency)
        return series


def latency_exemplars() -> list[ExemplarRecord]:
    """This process's newest sampled trace per latency bucket and series."""
    records = []
    for series in list(_latency_series.values()):
        service, route, method = series.labels
        for bucket, slot in enumerate(series.exemplars):
            if slot is not None:
                trace_id, seconds, observed_at = slot
                records.append(ExemplarRecord(service, route, method, bucket, f"{trace_id:032x}", seconds, observed_at))
    return records


# -- database pools --------------------------------------------------------------------------------

_pools: dict[str, weakref.ref[Engine]] = {}


def observe_database_pool(service: str, engine: Engine) -> None:
    """Report `engine`'s connection pool as the service's, read at scrape time (the latest engine wins).

    In multiprocess mode each worker also writes its pool's numbers once a second, so a
    scrape answered by one worker sees the others' pools at most a second old.
    """
    _pools[service] = weakref.ref(engine)
    _refresh_pools()
    _start_publisher()


def _refresh_pools() -> None:
    for service, engine_ref in list(_pools.items()):
        engine = engine_ref()
        if engine is None:
            _pools.pop(service, None)
            continue
        pool = engine.pool
        if not isinstance(pool, QueuePool):
            continue  # a single-connection pool (in-memory SQLite) has nothing to report
        overflow = pool._max_overflow  # SQLAlchemy has no public accessor; -1 means unlimited
        _pool_in_use.labels(service).set(pool.checkedout())
        _pool_max.labels(service).set(pool.size() + overflow if overflow >= 0 else math.inf)


# -- the multiprocess publisher --------------------------------------------------------------------

_publisher_pid = 0
_publisher_lock = threading.Lock()


def _start_publisher() -> None:
    """In multiprocess mode, start this worker's once-a-second publishing thread (once per process)."""
    global _publisher_pid
    if MULTIPROCESS_DIR is None or _publisher_pid == os.getpid():
        return
    with _publisher_lock:
        if _publisher_pid == os.getpid():
            return
        _publisher_pid = os.getpid()
        threading.Thread(
            target=_publish_forever, args=(MULTIPROCESS_DIR,), name="metrics-publisher", daemon=True
        ).start()


def _publish_forever(path: Path) -> None:
    while True:
        time.sleep(PUBLISH_EVERY_SECONDS)
        try:
            publish(path)
        except Exception:  # a full disk must not stop the next attempt, nor the worker
            log.exception("could not publish this worker's metrics to %s", path)


def publish(path: Path) -> None:
    """Write this worker's pool numbers and, if any changed, its exemplars to the shared folder."""
    _refresh_pools()
    if _exemplar_state.dirty:
        _exemplar_state.dirty = False
        write_exemplars(path, os.getpid(), latency_exemplars())


# -- exposition ------------------------------------------------------------------------------------


class _Scrape(Collector):
    """What one `/metrics` answer holds: this process's metrics, or every worker's; exemplars if asked for."""

    def __init__(self, path: Path | None, workers: WorkerProcessCollector | None, with_exemplars: bool) -> None:
        self._path = path
        self._workers = workers
        self._with_exemplars = with_exemplars

    def collect(self) -> Iterator[Metric]:
        _refresh_pools()
        exemplars = self._newest_exemplars() if self._with_exemplars else {}
        for family in self._families():
            if family.name == REQUEST_DURATION and exemplars:
                _attach(family, exemplars)
            yield family
        for scraped in list(_gauges.values()):
            family = scraped.collect()
            if family.samples:
                yield family

    def _families(self) -> Iterator[Metric]:
        if self._path is None or self._workers is None:
            yield from _REGISTRY.collect()
            return
        yield from MultiProcessCollector(None, str(self._path)).collect()  # type: ignore[no-untyped-call]
        yield from self._workers.collect()

    def _newest_exemplars(self) -> dict[tuple[str, str, str, str], Exemplar]:
        records = latency_exemplars()
        if self._path is not None:
            records.extend(read_exemplars(self._path, skip_pid=os.getpid()))
        newest: dict[tuple[str, str, str, str], ExemplarRecord] = {}
        for record in records:
            key = (record.service, record.route, record.method, _LE[record.bucket])
            known = newest.get(key)
            if known is None or record.timestamp > known.timestamp:
                newest[key] = record
        return {
            key: Exemplar({"trace_id": record.trace_id}, record.value, record.timestamp)
            for key, record in newest.items()
        }


def _attach(family: Metric, exemplars: dict[tuple[str, str, str, str], Exemplar]) -> None:
    bucket_name = REQUEST_DURATION + "_bucket"
    for index, sample in enumerate(family.samples):
        if sample.name != bucket_name:
            continue
        labels = sample.labels
        exemplar = exemplars.get((labels["service"], labels["route"], labels["method"], labels["le"]))
        if exemplar is not None:
            family.samples[index] = sample._replace(exemplar=exemplar)


_workers = WorkerProcessCollector(MULTIPROCESS_DIR) if MULTIPROCESS_DIR is not None else None
_scrape_text = _Scrape(MULTIPROCESS_DIR, _workers, with_exemplars=False)
_scrape_open_metrics = _Scrape(MULTIPROCESS_DIR, _workers, with_exemplars=True)


def exposition(accept: str) -> tuple[bytes, str]:
    """The `/metrics` body and its content type: OpenMetrics if `accept` asks for it, else text 0.0.4."""
    encode, content_type = choose_encoder(accept)
    # Only OpenMetrics carries exemplars: the text format is spared reading the workers' exemplar files.
    collector = _scrape_open_metrics if content_type.startswith("application/openmetrics-text") else _scrape_text
    return encode(collector), content_type
