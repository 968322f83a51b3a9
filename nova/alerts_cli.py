"""`nova alerts train|evaluate|watch`: the predictive pager on the command line."""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import TaskID
from rich.table import Table

from nova.output import console, counted_progress, fail
from slo.errors import SourceError

# scikit-learn, numpy and the SLO engine load only when a command runs, not for `nova --help`.
if TYPE_CHECKING:
    from alerts.model import PredictiveModel
    from alerts.scoring import PageScore
    from alerts.watch import (
        Sink,
        Source,
    )
    from slo.scenario import Scenario


alerts_app = typer.Typer(
    help="Predictive alerting: train the fast-burn page predictor, evaluate it against burn-rate pages, watch live.",
    no_args_is_help=True,
)

TARGETS = {"precision": 0.9, "recall": 0.95, "median_lead": 10.0, "false_per_week": 1.0}

# The two incident simulators, different in structure (alerts/README.md): a model is judged on the other one.
SIMULATORS = {"generator": "alerts.generator", "queueing": "alerts.queueing"}
Simulator = Annotated[
    str,
    typer.Option(
        "--simulator",
        help="Simulator of generated scenarios: generator (A: smooth service model, New York open) or queueing"
        " (B: M/M/c queues, London trading days, weekend batches)",
    ),
]

ModelPath = Annotated[Path, typer.Option("--model", help="Model file (skops); metadata beside it as <file>.json")]


@contextmanager
def _progress(description: str) -> Iterator[Callable[[str, int, int], None]]:
    with counted_progress() as progress:
        tasks: dict[str, TaskID] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(f"{description}: {stage}", total=total)
            progress.update(tasks[stage], completed=done, total=total)

        yield update


def _scenario_folders(folder: Path) -> list[Path]:
    if (folder / "metrics.csv").is_file():
        return [folder]
    if not folder.is_dir():
        raise fail(f"--scenarios {folder}: no such folder")
    found = sorted(p for p in folder.iterdir() if (p / "metrics.csv").is_file())
    if not found:
        raise fail(f"--scenarios {folder}: no scenario folder (with metrics.csv) inside")
    return found


def _read(folders: Sequence[Path], description: str) -> list[Scenario]:
    from slo.scenario import read_scenario

    scenarios = []
    with _progress(description) as update:
        for i, folder in enumerate(folders):
            try:
                scenarios.append(read_scenario(folder))
            except SourceError as exc:
                raise fail(str(exc)) from None
            update("read", i + 1, len(folders))
    return scenarios


def _generate(seed: int, count: int, hours: float, description: str, simulator: str = "generator") -> list[Scenario]:
    """Scenarios from one of the two simulators (alerts.generator: A, alerts.queueing: B)."""
    import importlib

    generate_set = importlib.import_module(SIMULATORS[simulator]).generate_set
    with console.status(f"{description}: generating {count} scenarios of {hours:g} h ({simulator}, seed {seed})"):
        scenarios: list[Scenario] = generate_set(seed, count, hours=hours)
        return scenarios


def _load_model(path: Path) -> PredictiveModel:
    from alerts.model import ModelError, PredictiveModel

    try:
        return PredictiveModel.load(path)
    except ModelError as exc:
        raise fail(str(exc)) from None


@alerts_app.command(name="train")
def train_command(
    model: ModelPath,
    scenarios: Annotated[
        Path | None, typer.Option(help="Folder of scenario folders (DESIGN.md); default: generate a training set")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the generated training set")] = 1,
    count: Annotated[int, typer.Option(min=3, help="Scenarios to generate")] = 200,
    hours: Annotated[float, typer.Option(min=2.0, help="Hours per generated scenario")] = 24.0,
    horizon: Annotated[
        float | None, typer.Option(min=1.0, help="Minutes ahead the page is predicted  [default: 30]")
    ] = None,
    simulator: Simulator = "generator",
    pager: Annotated[
        str,
        typer.Option(
            "--pager",
            help="What pages: classifier (the calibrated booster), forecast (physical projections, rule"
            " thresholds fitted on the training set) or both (either fires)",
        ),
    ] = "classifier",
) -> None:
    """Train the predictor of the fast-burn page on scenarios (forecast rules and/or classifier and its policy)."""
    from alerts.model import DEFAULT_HORIZON_MINUTES, PAGERS, ModelError, data_hash, train

    horizon = horizon or DEFAULT_HORIZON_MINUTES
    if simulator not in SIMULATORS:
        raise fail(f"--simulator: unknown simulator {simulator!r} (known: {', '.join(SIMULATORS)})")
    if pager not in PAGERS:
        raise fail(f"--pager: unknown pager {pager!r} (known: {', '.join(PAGERS)})")
    if scenarios is not None:
        folders = _scenario_folders(scenarios)
        data = _read(folders, "train")
        digest = data_hash(data, [f / "metrics.csv" for f in folders])
        source = str(scenarios)
    else:
        data = _generate(seed, count, hours, "train", simulator)
        digest = data_hash(data)
        source = f"generated ({simulator}, seed {seed}, {count} x {hours:g} h)"
    try:
        with _progress("train") as update:
            trained, summary = train(data, horizon_minutes=horizon, training_hash=digest, progress=update, pager=pager)
        trained.metadata["training_source"] = source
        if scenarios is None:
            trained.metadata["training_seed"] = seed
            trained.metadata["training_simulator"] = simulator
        trained.save(model)
    except ModelError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot write {model}: {exc}") from None
    v = summary.validation
    table = Table(title=f"Trained {model}")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("training data", source)
    parts = summary.scenarios
    table.add_row(
        "scenarios fit / calibrate / validate",
        f"{len(parts['fit'])} / {len(parts['calibrate'])} / {len(parts['validate'])} (policy on the last two)",
    )
    table.add_row("rows / rows the page holds within the horizon", f"{summary.rows} / {summary.positives}")
    table.add_row("features / horizon", f"{summary.feature_count} / {horizon:g} min")
    policy = {"forecast": f"forecast: {len(summary.rules)} rules", "classifier": "classifier", "both": "either fires"}
    table.add_row("page policy", policy[summary.pager])
    for rule in summary.rules:
        table.add_row(
            f"forecast rule {rule.name}",
            f"{rule.feature} {rule.comparison} {rule.threshold:g} for {rule.consecutive} rows",
        )
    if summary.policy is not None:
        table.add_row(
            "classifier page policy", f"p >= {summary.policy.threshold:.2f} for {summary.policy.consecutive} rows"
        )
    judged = {"forecast": "forecast, training set", "classifier": "policy scenarios", "both": "policy scenarios"}
    table.add_row(f"validation ({judged[summary.pager]})", "predictive alone")
    table.add_row("validation precision / recall (predictive alone)", f"{v.precision:.3f} / {v.recall:.3f}")
    table.add_row("validation median lead over burn-rate page", _minutes(v.median_lead_vs_baseline_minutes))
    table.add_row("validation false pages / week", f"{v.false_pages_per_week:.2f}")
    table.add_row("training data sha256", digest[:16] + "…")
    console.print(table)


def _minutes(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} min"


@alerts_app.command()
def evaluate(
    scenarios: Annotated[Path, typer.Option(help="Folder of scenario folders to evaluate on")],
    model: ModelPath,
    pages_out: Annotated[
        Path | None, typer.Option("--pages-out", help="Write PAGES.json: scenario folder name -> page times")
    ] = None,
    with_burn_rate_pages: Annotated[
        bool,
        typer.Option(
            "--with-burn-rate",
            help="Judge and write what on-call receives: the burn-rate pages beside the predictive ones"
            " (default: the predictive pages alone)",
        ),
    ] = False,
    generate_seed: Annotated[
        int | None, typer.Option(help="First generate scenarios with this seed into --scenarios (must not exist)")
    ] = None,
    count: Annotated[int, typer.Option(min=1, help="Scenarios to generate with --generate-seed")] = 40,
    hours: Annotated[float, typer.Option(min=2.0, help="Hours per generated scenario")] = 24.0,
    simulator: Simulator = "generator",
) -> None:
    """Page on scenarios with the model; compare with the burn-rate pages (precision, recall, lead, false pages)."""
    from alerts.generator import write_set
    from alerts.model import with_burn_rate
    from alerts.scoring import burn_rate_pages, score_pages, write_pages

    if simulator not in SIMULATORS:
        raise fail(f"--simulator: unknown simulator {simulator!r} (known: {', '.join(SIMULATORS)})")
    predictor = _load_model(model)
    if generate_seed is not None:
        if scenarios.exists():
            raise fail(f"--scenarios {scenarios} exists; --generate-seed writes a new folder")
        trained_on = predictor.metadata.get("training_simulator", "generator")
        if generate_seed == predictor.metadata.get("training_seed") and simulator == trained_on:
            raise fail(f"seed {generate_seed} generated the training set; evaluate on a seed never used in training")
        write_set(scenarios, _generate(generate_seed, count, hours, "evaluate", simulator))
    folders = _scenario_folders(scenarios)
    data = _read(folders, "evaluate")
    if len({s.name for s in data}) != len(data):
        raise fail(f"--scenarios {scenarios}: scenario folder names must be unique")
    pages: dict[str, list[float]] = {}
    baseline: dict[str, list[float]] = {}
    with _progress("evaluate") as update:
        for i, scenario in enumerate(data):
            pages[scenario.name] = predictor.pages(scenario)
            baseline[scenario.name] = burn_rate_pages(scenario)
            update("page", i + 1, len(data))
    deployed = {name: with_burn_rate(pages[name], baseline[name]) for name in pages}
    alone = score_pages(data, pages, baseline=baseline)
    both = score_pages(data, deployed, baseline=baseline)
    theirs = score_pages(data, baseline, baseline=baseline)
    if pages_out is not None:
        try:
            write_pages(pages_out, deployed if with_burn_rate_pages else pages)
        except OSError as exc:
            raise fail(f"cannot write {pages_out}: {exc}") from None
    console.print(_score_table(alone, both, theirs, len(data), scenarios))
    console.print(_limit_line(data, pages))
    console.print(_kind_table(data, pages))
    judged = "predictive + burn-rate" if with_burn_rate_pages else "predictive alone"
    console.print(f"{judged}: {_verdict(both if with_burn_rate_pages else alone)}")


def _score_table(alone: PageScore, both: PageScore, theirs: PageScore, count: int, folder: Path) -> Table:

    table = Table(title=f"Predictive pages vs burn-rate pages on {count} scenarios ({folder}, {both.weeks:.2f} weeks)")
    table.add_column("measure")
    table.add_column("predictive alone", justify="right")
    table.add_column("predictive + burn-rate", justify="right")
    table.add_column("burn-rate (slo/)", justify="right")
    table.add_column("target", justify="right")
    scores = (alone, both, theirs)

    def row(label: str, show: Callable[[PageScore], str], target: str = "") -> None:
        table.add_row(label, *(show(s) for s in scores), target)

    row("breaching incidents", lambda s: str(s.incidents))
    row("precision", lambda s: f"{s.precision:.3f}", ">= 0.9")
    row("recall", lambda s: f"{s.recall:.3f}", ">= 0.95")
    row("median lead before breach", lambda s: _minutes(s.median_lead_minutes))
    row("p10 lead before breach", lambda s: _minutes(s.p10_lead_minutes))
    row("median lead over burn-rate page", lambda s: _minutes(s.median_lead_vs_baseline_minutes), ">= 10 min")
    row("false pages / week", lambda s: f"{s.false_pages_per_week:.2f}", "<= 1")
    row("on time / late / false / missed", lambda s: f"{s.true_pages} / {s.late_pages} / {s.false_pages} / {s.missed}")
    row("early warnings (incidents that never breach)", lambda s: str(s.early_warnings))
    return table


def _limit_line(data: Sequence[Scenario], pages: Mapping[str, Sequence[float]]) -> str:
    """The lead against the physical limit (paging at each fault start), over every breaching incident."""
    from alerts.scoring import lead_shares, physical_limits, share_of_limit

    pairs = [pair for found in lead_shares(data, pages).values() for pair in found]
    limits = physical_limits(data)
    if not limits:
        return "physical limit: no breaching incidents"
    limit = float(statistics.median(limits)) / 60
    if not pairs:
        return f"physical limit (fault start to breach): median {limit:.1f} min; predictive pages caught none"
    lead = float(statistics.median([p[0] for p in pairs])) / 60
    share = float(statistics.median([share_of_limit(*p) for p in pairs]))
    return (
        f"physical limit (fault start to breach): median {limit:.1f} min; predictive alone: median lead before "
        f"breach {lead:.1f} min (late = negative), median share of each incident's limit {share:.2f}"
    )


def _kind_table(data: Sequence[Scenario], pages: Mapping[str, Sequence[float]]) -> Table:
    from alerts.scoring import score_kinds

    table = Table(title="Predictive pages alone, per incident kind (lead before breach; late = negative)")
    for column in ("kind", "breaching", "detected", "on time", "median lead", "median limit", "median share of limit"):
        table.add_column(column, justify="left" if column == "kind" else "right")
    for kind in score_kinds(data, pages):
        table.add_row(
            kind.kind,
            str(kind.incidents),
            str(kind.detected),
            str(kind.on_time),
            _minutes(kind.median_lead_minutes),
            _minutes(kind.median_limit_minutes),
            "-" if kind.median_share is None else f"{kind.median_share:.2f}",
        )
    return table


def _verdict(score: PageScore) -> str:
    lead = score.median_lead_vs_baseline_minutes
    checks = {
        "precision": score.precision >= TARGETS["precision"],
        "recall": score.recall >= TARGETS["recall"],
        "lead": lead is not None and lead >= TARGETS["median_lead"],
        "false pages": score.false_pages_per_week <= TARGETS["false_per_week"],
    }
    missed = [name for name, ok in checks.items() if not ok]
    return "[green]all targets met[/green]" if not missed else f"[red]targets missed: {', '.join(missed)}[/red]"


@alerts_app.command()
def watch(
    model: ModelPath,
    alertmanager: Annotated[
        str | None, typer.Option(help="Alertmanager base URL: alerts are POSTed to /api/v2/alerts")
    ] = None,
    webhook: Annotated[str | None, typer.Option(help="Webhook URL receiving Alertmanager's payload (v4)")] = None,
    prometheus: Annotated[
        str | None, typer.Option(help="Prometheus base URL to read the services' counters from")
    ] = None,
    service: Annotated[
        list[str] | None, typer.Option("--service", help="Service label to watch with --prometheus (repeat)")
    ] = None,
    scrape: Annotated[
        list[str] | None, typer.Option("--scrape", help="NAME=URL of a service whose /metrics to scrape (repeat)")
    ] = None,
    replay: Annotated[Path | None, typer.Option(help="Replay a recorded scenario folder (drills)")] = None,
    speed: Annotated[
        float | None,
        typer.Option(min=1.0, help="With --replay: replay this many times faster than recorded  [default: at once]"),
    ] = None,
    runbook_base: Annotated[str, typer.Option(help="Prefix of every runbook_url")] = "runbooks",
    once: Annotated[bool, typer.Option("--once", help="Take one step, deliver, stop")] = False,
    duration: Annotated[float | None, typer.Option(min=0.0, help="Stop after this many seconds")] = None,
    max_steps: Annotated[int | None, typer.Option(min=1, help="Stop after this many steps")] = None,
) -> None:
    """Watch services and send predictive alerts (kind="predictive") before the burn-rate page fires."""
    from alerts.watch import (
        AlertmanagerSink,
        NowStampedSink,
        PredictiveWatch,
        PrometheusSource,
        ReplaySource,
        ScraperSource,
        WebhookSink,
        run_watch,
    )
    from slo.scenario import ScenarioSLO, read_scenario

    if (alertmanager is None) == (webhook is None):
        raise fail("give exactly one of --alertmanager and --webhook")
    if sum(x is not None and x != [] for x in (prometheus, scrape, replay)) != 1:
        raise fail("give exactly one source: --prometheus, --scrape or --replay")
    if speed is not None and replay is None:
        raise fail("--speed paces a --replay; live sources keep their own time")
    predictor = _load_model(model)
    slo = ScenarioSLO()
    source: Source
    if replay is not None:
        try:
            recorded = read_scenario(replay)
        except SourceError as exc:
            raise fail(str(exc)) from None
        slo = recorded.slo
        source = ReplaySource(recorded, (service or ["payments"])[0], speed)
    elif scrape:
        urls = {}
        for item in scrape:
            name, _, url = item.partition("=")
            if not name or not url.startswith(("http://", "https://")):
                raise fail(f"--scrape {item!r}: expected NAME=http://host:port")
            urls[name] = url
        source = ScraperSource(urls)
    else:
        assert prometheus is not None
        if not prometheus.startswith(("http://", "https://")):
            raise fail(f"--prometheus {prometheus!r}: expected an http(s) URL")
        source = PrometheusSource(prometheus, service or ["payments", "portfolio"])
    target = alertmanager or webhook
    assert target is not None
    if not target.startswith(("http://", "https://")):
        raise fail(f"{target!r}: expected an http(s) URL")
    sink: Sink = AlertmanagerSink(target) if alertmanager else WebhookSink(target)
    if replay is not None:
        sink = NowStampedSink(sink)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    console.print(
        f"watching {', '.join(source.services)} with {model} ({predictor.describe()}, "
        f"horizon {predictor.horizon_minutes:g} min) -> {target}"
    )
    watcher = PredictiveWatch(predictor, source.services, slo, runbook_base)
    try:
        report = run_watch(watcher, source, sink, max_steps=1 if once else max_steps, duration_seconds=duration)
    except SourceError as exc:
        raise fail(str(exc), 1) from None
    except KeyboardInterrupt:
        return
    fired = [a for a in report.sent if a.status == "firing"]
    console.print(f"{report.steps} steps, {len(fired)} firing notices, {len(report.sent) - len(fired)} resolved")
