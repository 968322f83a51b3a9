"""The four plots of a game-day report, drawn from a `GameDayResult` with matplotlib.

Owns what each plot shows (`traffic`, `error-ratio`, `latency`, `alerts`) over the whole game day,
on one shared x axis: seconds since the game day started (t+ s, UTC start stated on the axis).
Every plot shades each phase's window (labelled with the phase name) and each fault window in a
warning colour, so an SRE reads a spike straight down to the fault that caused it and the alert
it fired. Rendering (the repo's plot style, inline-SVG id namespacing, aligned full-width margins)
is `slo.plots`'; a plot with nothing to draw comes back as a sentence instead of a figure.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from decimal import Decimal

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from chaos.gameday_model import GameDayResult, SeriesPoint
from slo.document import format_time
from slo.plots import (
    FULL_MARGINS,
    FULL_WIDTH,
    PLOT_STYLE,
    PNG_DPI,
    RenderedPlot,
    full_width_figure,
    inline_svg,
    severity_colour,
)
from slo.targets import suite_targets

__all__ = ["ERROR_BUDGET", "GAMEDAY_PLOT_KINDS", "LATENCY_THRESHOLD_MS", "PAGE_ERROR_RATIO", "render_plots"]

GAMEDAY_PLOT_KINDS = ("traffic", "error-ratio", "latency", "alerts")
# The targets of slo/specs, the budget written exactly (1 - 0.9999 is 0.00009999999999998899): the
# availability objective's error budget, and the error ratio at which the 14.4x page (1h & 5m) fires.
ERROR_BUDGET = float(1 - suite_targets().availability)
PAGE_ERROR_RATIO = float((1 - suite_targets().availability) * Decimal("14.4"))
LATENCY_THRESHOLD_MS = suite_targets().latency_threshold_ms
_OBJECTIVE = f"{float(suite_targets().availability * 100):g}%"  # slo/specs: 99.99%
_BUDGET = f"{float((1 - suite_targets().availability) * 100):g}%"  # 0.01%
_RATIO_FLOOR = 0.00001  # a step without errors is drawn here: zero has no place on a log axis
SERVICE_COLOURS = {"payments": "#0969da", "portfolio": "#8250df"}
_OTHER_SERVICE_COLOURS = ("#1a7f37", "#9a6700", "#57606a", "#bf3989")
_FAULT_COLOUR = "#fb8f44"
_PHASE_SHADES = ("#f6f8fa", "#eaeef2")
_PHASE_LABEL_CHARS = 22


def render_plots(result: GameDayResult) -> list[RenderedPlot]:
    """Every game-day plot in page order, each drawn once and serialised as SVG and PNG.

    Each SVG's ids carry the plot's kind as a prefix: all four are inlined into one HTML page.
    """
    rendered = []
    for kind in GAMEDAY_PLOT_KINDS:
        draw, caption = _PLOTS[kind]
        with matplotlib.rc_context(PLOT_STYLE):
            drawn = draw(result)
            if isinstance(drawn, str):
                rendered.append(RenderedPlot(kind, caption, None, None, drawn))
                continue
            svg_buffer = io.StringIO()
            drawn.savefig(svg_buffer, format="svg", metadata={"Date": None})
            png_buffer = io.BytesIO()
            drawn.savefig(png_buffer, format="png", dpi=PNG_DPI, metadata={"Software": None})
        drawn.clear()
        svg = inline_svg(svg_buffer.getvalue(), f"gd-{kind}-")
        rendered.append(RenderedPlot(kind, caption, svg, png_buffer.getvalue()))
    return rendered


def service_colour(index: int, service: str) -> str:
    """Payments and portfolio keep their colours in every plot; other services take the next free one."""
    return SERVICE_COLOURS.get(service, _OTHER_SERVICE_COLOURS[index % len(_OTHER_SERVICE_COLOURS)])


# --- shared axes furniture ---------------------------------------------------------------------


def _services(result: GameDayResult) -> list[tuple[str, list[SeriesPoint]]]:
    """Services with at least one step, in name order, each series in time order."""
    return [
        (service, sorted(points, key=lambda p: p.timestamp))
        for service, points in sorted(result.series.items())
        if points
    ]


def _no_series_text(result: GameDayResult, what: str) -> str | None:
    if _services(result):
        return None
    return f"No {what} to plot: the scraper recorded no steps between {_span(result)}."


def _span(result: GameDayResult) -> str:
    return f"{format_time(result.started)} and {format_time(result.ended)}"


def _offsets(result: GameDayResult, points: Sequence[SeriesPoint]) -> np.ndarray:
    return np.array([p.timestamp - result.started for p in points], dtype=float)


def _time_axis(axes: Axes, result: GameDayResult, *, label: bool = True) -> None:
    """t+ seconds from the game day's start, phases shaded and named, fault windows in warning colour."""
    span = max(result.ended - result.started, 1.0)
    axes.set_xlim(0.0, span)
    axes.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    for index, phase in enumerate(result.phases):
        left, right = phase.window.start - result.started, phase.window.end - result.started
        axes.axvspan(left, right, color=_PHASE_SHADES[index % 2], zorder=0, linewidth=0)
        axes.axvline(left, color="#afb8c1", linewidth=0.7, zorder=1)
        if label:
            name = phase.name if len(phase.name) <= _PHASE_LABEL_CHARS else phase.name[: _PHASE_LABEL_CHARS - 1] + "…"
            axes.text(
                max(left, 0.0) + span * 0.004,
                0.97,
                name,
                transform=axes.get_xaxis_transform(),
                va="top",
                ha="left",
                fontsize=7.5,
                color="#424a53",
                clip_on=True,
                zorder=6,
            )
        if phase.fault is not None:
            axes.axvspan(
                phase.fault.start - result.started,
                phase.fault.end - result.started,
                color=_FAULT_COLOUR,
                alpha=0.22,
                zorder=0.5,
                linewidth=0,
            )
    axes.set_xlabel(f"t+ seconds since the game day started ({format_time(result.started)})")


def _fault_handle() -> Patch:
    return Patch(color=_FAULT_COLOUR, alpha=0.35, label="fault on")


def _legend(axes: Axes, handles: list[Line2D | Patch]) -> None:
    axes.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0))


def _service_handles(services: Sequence[tuple[str, list[SeriesPoint]]]) -> list[Line2D | Patch]:
    return [Line2D([], [], color=service_colour(i, s), linewidth=1.6, label=s) for i, (s, _) in enumerate(services)]


# --- the plots ---------------------------------------------------------------------------------


def _draw_traffic(result: GameDayResult) -> Figure | str:
    """Requests/s above errors/s, on separate axes: errors are a thousandth of requests on a good day."""
    if (empty := _no_series_text(result, "traffic")) is not None:
        return empty
    services = _services(result)
    m = FULL_MARGINS
    height, gap = 4.6, 0.3
    panel = (height - m["top"] - m["bottom"] - gap) / 2
    figure = Figure(figsize=(FULL_WIDTH, height))
    left, width = m["left"] / FULL_WIDTH, 1 - (m["left"] + m["right"]) / FULL_WIDTH
    top_axes = figure.add_axes((left, (m["bottom"] + panel + gap) / height, width, panel / height))
    bottom_axes = figure.add_axes((left, m["bottom"] / height, width, panel / height), sharex=top_axes)
    step = result.step_seconds if result.step_seconds > 0 else 1.0
    highest_errors = 0.0
    for index, (service, points) in enumerate(services):
        x = _offsets(result, points)
        colour = service_colour(index, service)
        requests = np.array([p.requests for p in points], dtype=float) / step
        errors = np.array([p.errors for p in points], dtype=float) / step
        top_axes.plot(x, requests, color=colour, linewidth=1.5, zorder=3)
        bottom_axes.plot(x, errors, color=colour, linewidth=1.5, zorder=3)
        highest_errors = max(highest_errors, float(errors.max()))
    highest_requests = max(max(p.requests for p in points) for _, points in services) / step
    top_axes.set_ylim(0, highest_requests * 1.25 if highest_requests > 0 else 1.0)  # headroom for phase names
    bottom_axes.set_ylim(0, highest_errors * 1.25 if highest_errors > 0 else 1.0)
    top_axes.set_ylabel("requests/s")
    bottom_axes.set_ylabel("errors/s")
    top_axes.set_title("Traffic per service: requests/s and errors/s")
    _time_axis(top_axes, result)
    _time_axis(bottom_axes, result, label=False)
    top_axes.tick_params(labelbottom=False)
    top_axes.set_xlabel("")
    _legend(top_axes, [*_service_handles(services), _fault_handle()])
    return figure


def _draw_error_ratio(result: GameDayResult) -> Figure | str:
    """Errors / requests per step on a log axis, so the 0.01% budget and a 5% fault are both readable."""
    if (empty := _no_series_text(result, "error ratio")) is not None:
        return empty
    services = _services(result)
    figure, axes = full_width_figure(3.4)
    highest = 0.01
    for index, (service, points) in enumerate(services):
        requests = np.array([p.requests for p in points], dtype=float)
        errors = np.array([p.errors for p in points], dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(requests > 0, errors / requests, np.nan)
        axes.plot(
            _offsets(result, points),
            np.clip(ratio, _RATIO_FLOOR, None),
            color=service_colour(index, service),
            linewidth=1.5,
            zorder=3,
        )
        if np.isfinite(ratio).any():
            highest = max(highest, float(np.nanmax(ratio)))
    axes.axhline(ERROR_BUDGET, color="#1a7f37", linewidth=1.1, linestyle="--", zorder=4)
    axes.axhline(PAGE_ERROR_RATIO, color=severity_colour("page"), linewidth=1.1, linestyle=(0, (5, 3)), zorder=4)
    axes.set_yscale("log")
    axes.set_ylim(_RATIO_FLOOR * 0.8, min(highest * 2.5, 1.5))
    axes.yaxis.set_major_formatter(FuncFormatter(_ratio_tick))
    axes.set_ylabel("error ratio per step (log)")
    axes.set_title(f"Error ratio per step, against the {_OBJECTIVE} budget and the 14.4x page threshold")
    _time_axis(axes, result)
    _legend(
        axes,
        [
            *_service_handles(services),
            Line2D([], [], color="#1a7f37", linewidth=1.1, linestyle="--", label=f"budget {_BUDGET} (1x)"),
            Line2D(
                [],
                [],
                color=severity_colour("page"),
                linewidth=1.1,
                linestyle=(0, (5, 3)),
                label="page 0.144% (14.4x)",
            ),
            _fault_handle(),
        ],
    )
    return figure


def _ratio_tick(value: float, _: object) -> str:
    if value <= _RATIO_FLOOR * 1.0001:
        return "0"
    return f"{value * 100:.{max(0, -math.floor(math.log10(value * 100)))}f}%"


def _draw_latency(result: GameDayResult) -> Figure | str:
    if (empty := _no_series_text(result, "latency")) is not None:
        return empty
    services = _services(result)
    figure, axes = full_width_figure(3.2)
    highest = LATENCY_THRESHOLD_MS
    for index, (service, points) in enumerate(services):
        p99 = np.array([p.p99_ms for p in points], dtype=float)
        axes.plot(_offsets(result, points), p99, color=service_colour(index, service), linewidth=1.5, zorder=3)
        if np.isfinite(p99).any():
            highest = max(highest, float(np.nanmax(p99)))
    axes.axhline(LATENCY_THRESHOLD_MS, color=severity_colour("page"), linewidth=1.1, linestyle="--", zorder=4)
    axes.set_ylim(0, highest * 1.15)
    axes.set_ylabel("p99 latency (ms)")
    axes.set_title(f"p99 latency per service, against the {LATENCY_THRESHOLD_MS:g} ms objective")
    _time_axis(axes, result)
    threshold = Line2D(
        [], [], color=severity_colour("page"), linewidth=1.1, linestyle="--", label=f"{LATENCY_THRESHOLD_MS:g} ms"
    )
    _legend(axes, [*_service_handles(services), threshold, _fault_handle()])
    return figure


def _draw_alerts(result: GameDayResult) -> Figure | str:
    """One lane per (alert, severity), named above its bars; a firing still open at the end runs to the end."""
    firings = [alert for phase in result.phases for alert in phase.alerts]
    if not firings:
        return f"No alert fired between {_span(result)}."
    rows = sorted({(a.alert, a.severity) for a in firings}, key=lambda r: (r[1] != "page", r[0], r[1]))
    m = FULL_MARGINS
    figure, axes = full_width_figure(m["top"] + m["bottom"] + 0.5 + 0.42 * len(rows))
    span = max(result.ended - result.started, 1.0)
    notified = False
    for y, (alert, severity) in enumerate(rows):
        bars = []
        for firing in firings:
            if (firing.alert, firing.severity) != (alert, severity):
                continue
            left = firing.start - result.started
            right = (firing.end if firing.end is not None else result.ended) - result.started
            bars.append((left, max(right - left, span / 400)))  # a blip stays visible
            if firing.notified_at is not None:
                notified = True
                moment = firing.notified_at - result.started
                axes.plot([moment], [y - 0.1], marker="v", color="#1f2328", markersize=6, zorder=5)
            if firing.end is None:
                axes.annotate(
                    "still firing",
                    (right, y + 0.15),
                    xytext=(4, 0),
                    textcoords="offset points",
                    va="center",
                    fontsize=8,
                )
        axes.broken_barh(bars, (y - 0.05, 0.4), facecolors=severity_colour(severity), edgecolor="none", zorder=3)
        axes.text(
            0.003,
            y - 0.1,
            f"{alert} · {severity}",
            transform=axes.get_yaxis_transform(),
            va="bottom",
            fontsize=8.5,
            color="#424a53",
            zorder=6,
        )
    axes.set_ylim(len(rows) - 0.5, -1.0)
    axes.set_yticks([])
    axes.grid(axis="y", visible=False)
    axes.set_title("Alerts fired")
    _time_axis(axes, result)
    severities = sorted({s for _, s in rows}, key=lambda s: (s != "page", s))
    handles: list[Line2D | Patch] = [Patch(color=severity_colour(s), label=s) for s in severities]
    if notified:
        handles.append(Line2D([], [], marker="v", color="#1f2328", linestyle="none", label="notified"))
    _legend(axes, [*handles, _fault_handle()])
    return figure


_PLOTS: dict[str, tuple[Callable[[GameDayResult], Figure | str], str]] = {
    "traffic": (_draw_traffic, "Requests and errors per second per service; phases shaded grey, faults in orange."),
    "error-ratio": (
        _draw_error_ratio,
        "Errors / requests per step (log scale; steps without errors sit on the 0 line). "
        f"Green: the {_OBJECTIVE} objective's budget; red: the 14.4x burn that pages.",
    ),
    "latency": (_draw_latency, f"p99 latency per step per service, against the {LATENCY_THRESHOLD_MS:g} ms objective."),
    "alerts": (
        _draw_alerts,
        "When each alert fired, per severity, from the phases' alert records; faults in orange.",
    ),
}
