"""The five plots of an SLO report, drawn from one `SLOTimeline` with matplotlib.

Owns what each plot shows (`sli`, `budget`, `burn-rate`, `latency`, `alerts`), how long series are
thinned for drawing, and rendering one figure to both an inline SVG (for report.html) and a PNG
(for report.md). Figures are built with `matplotlib.figure.Figure` rather than pyplot: they never
enter pyplot's global figure registry, so nothing is left open and no GUI backend is ever chosen
(`savefig` renders SVG with the SVG backend and PNG with Agg). Text that a timeline cannot show as
a plot (no latency series, no alert fired) comes back as a sentence instead of a figure.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import matplotlib
import matplotlib.dates as mdates
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, FuncFormatter
from matplotlib.typing import RcKeyType

from slo.document import Figure as DocumentFigure
from slo.document import format_time
from slo.timeline import Series, SLOTimeline, Threshold

PLOT_KINDS = ("sli", "budget", "burn-rate", "alerts", "latency")  # page order: alerts right under the burn rates
MAX_POINTS = 2000  # per series: a plot is ~1,200 px wide, so more points only cost rendering time
SEVERITY_COLOURS = {"page": "#cf222e", "ticket": "#bc4c00"}
OTHER_SEVERITY_COLOUR = "#6e7781"
PNG_DPI = 100
_HALF = (6.4, 3.3)  # inches: two plots side by side in the HTML grid
FULL_WIDTH = 12.8
# Full-width plots share fixed margins (inches) so their time axes line up on the page: an SRE
# reads a burn-rate crossing straight down to the alert it fired and the latency at that moment.
FULL_MARGINS = {"left": 0.85, "right": 1.9, "top": 0.38, "bottom": 0.62}

# Fixed at draw time through rc_context so the report never depends on (or changes) global settings.
# A fixed hash salt makes SVG ids, and so the whole report, reproducible byte for byte.
PLOT_STYLE: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "nova-slo-report",
    "font.family": ["DejaVu Sans", "sans-serif"],
    "font.size": 9.5,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 9.5,
    "axes.labelcolor": "#424a53",
    "axes.edgecolor": "#afb8c1",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#d8dee4",
    "grid.linewidth": 0.6,
    "xtick.color": "#424a53",
    "ytick.color": "#424a53",
    "legend.fontsize": 8.5,
    "legend.frameon": False,
    "figure.facecolor": "white",
    "axes.facecolor": "white",
}
_UNIX_EPOCH_DAYS = float(mdates.date2num(np.datetime64("1970-01-01T00:00:00")))  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class RenderedPlot:
    """One plot of one SLO, ready for both report formats; `svg`/`png` are None when `empty_text` says why."""

    kind: str
    caption: str
    svg: str | None
    png: bytes | None
    empty_text: str | None = None

    def to_figure(
        self, png_path: str | None, *, alt: str, wide: bool = True, data: Sequence[tuple[str, str]] = ()
    ) -> DocumentFigure:
        """This plot as a report figure, its PNG saved by the caller at `png_path` (relative to the report)."""
        return DocumentFigure(
            kind=self.kind,
            caption=self.caption,
            alt=alt,
            svg=self.svg,
            png_path=png_path if self.png is not None else None,
            empty_text=self.empty_text,
            wide=wide,
            data=tuple(data),
        )


def render_plot(timeline: SLOTimeline, kind: str, *, id_prefix: str) -> RenderedPlot:
    """Draw `kind` for `timeline` once and serialise it as SVG and PNG.

    `id_prefix` namespaces the SVG's element ids: every plot is inlined into the same HTML
    document, where matplotlib's per-figure ids (`line2d_1`, clip paths) would otherwise collide.
    """
    draw, caption = _PLOTS[kind]
    with matplotlib.rc_context(PLOT_STYLE):
        drawn = draw(timeline)
        if isinstance(drawn, str):
            return RenderedPlot(kind, caption(timeline), None, None, drawn)
        svg_buffer = io.StringIO()
        drawn.savefig(svg_buffer, format="svg", metadata={"Date": None})
        png_buffer = io.BytesIO()
        drawn.savefig(png_buffer, format="png", dpi=PNG_DPI, metadata={"Software": None})
    drawn.clear()  # drop the artists now rather than at the next garbage collection
    return RenderedPlot(kind, caption(timeline), inline_svg(svg_buffer.getvalue(), id_prefix), png_buffer.getvalue())


def downsample(x: Series, y: Series, max_points: int = MAX_POINTS) -> tuple[Series, Series]:
    """At most `max_points` points of (x, y), keeping each bucket's minimum and maximum.

    Plain striding would drop a one-minute error spike from a 30-day series; min/max buckets keep
    every peak and trough visible. Buckets with no value stay NaN, so gaps still break the line.
    """
    n = y.shape[0]
    if n <= max_points:
        return x, y
    buckets = max(max_points // 2, 1)
    size = -(-n // buckets)
    padded = np.concatenate([y, np.full(buckets * size - n, np.nan)]).reshape(buckets, size)
    missing = np.isnan(padded)
    low = np.where(missing, np.inf, padded).argmin(axis=1)
    high = np.where(missing, -np.inf, padded).argmax(axis=1)
    base = np.arange(buckets) * size
    index = np.minimum(np.sort(np.stack([base + low, base + high], axis=1), axis=1).ravel(), n - 1)
    return x[index], y[index]


def _dates(seconds: Series) -> Series:
    """Unix seconds to matplotlib date numbers, whatever `date.epoch` is configured."""
    return seconds / 86400.0 + _UNIX_EPOCH_DAYS


def _figure(size: tuple[float, float]) -> tuple[Figure, Axes]:
    figure = Figure(figsize=size, layout="constrained")
    return figure, figure.subplots()


def full_width_figure(height: float) -> tuple[Figure, Axes]:
    m = FULL_MARGINS
    figure = Figure(figsize=(FULL_WIDTH, height))
    axes = figure.add_axes(
        (
            m["left"] / FULL_WIDTH,
            m["bottom"] / height,
            1 - (m["left"] + m["right"]) / FULL_WIDTH,
            1 - (m["bottom"] + m["top"]) / height,
        )
    )
    return figure, axes


def _time_axis(axes: Axes, timeline: SLOTimeline) -> None:
    """Same UTC time range and concise date ticks on every plot, so an SRE can line them up."""
    # matplotlib.dates ships without type hints
    locator = mdates.AutoDateLocator(tz=UTC, minticks=4, maxticks=9)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=UTC))  # type: ignore[no-untyped-call]
    start, end = _dates(timeline.timestamps[[0, -1]])
    if end <= start:
        end = start + 1 / 1440
    axes.set_xlim(float(start), float(end))
    axes.set_xlabel("time (UTC)")


def _percent(ratio: float) -> str:
    """A ratio near 1 as a percentage with as many decimals as its nines need (99.95%, 99.999%)."""
    if ratio >= 1:
        return "100%"
    nines = round(-math.log10(max(1 - ratio, 1e-9)), 6)  # 1 - 0.9999 is not exactly 1e-4
    digits = max(0, min(6, math.ceil(nines) - 2))
    return f"{ratio * 100:.{digits}f}%"


def _short_window(timeline: SLOTimeline) -> str:
    """The window drawn beside the period SLI: 1h as asked, else the closest the timeline has."""
    return "1h" if "1h" in timeline.error_ratio else next(iter(timeline.error_ratio))


def _draw_sli(timeline: SLOTimeline) -> Figure:
    """SLI on a 'nines' axis (-log10 of the error ratio): 99% and 99.99% are equally far apart.

    On a linear axis a 99.99% objective and a 1h dip to 95% cannot both be read; on the nines
    axis each extra nine is one grid step and the objective sits at a fixed height.
    """
    objective_nines = -math.log10(max(1 - timeline.objective, 1e-12))
    top = math.ceil(objective_nines) + 1.5
    figure, axes = _figure(_HALF)
    x = _dates(timeline.timestamps)
    lowest = objective_nines
    short = _short_window(timeline)
    series = [(short, 0.9, "#8c959f", 1.0), (timeline.period_window, 2.0, "#0969da", 2.0)]
    for window, width, colour, order in series:
        ratio = np.clip(timeline.error_ratio[window], 10.0**-top, 1.0)
        nines = -np.log10(ratio)
        px, py = downsample(x, nines)
        axes.plot(px, py, color=colour, linewidth=width, zorder=order, label=f"SLI over {window}")
        if np.isfinite(nines).any():
            lowest = min(lowest, float(np.nanmin(nines)))
    bottom = max(0.0, math.floor(lowest * 2) / 2 - 0.25)
    axes.axhline(
        objective_nines,
        color=SEVERITY_COLOURS["page"],
        linewidth=1.2,
        linestyle="--",
        zorder=3,
        label=f"objective {_percent(timeline.objective)}",
    )
    axes.axhspan(bottom, objective_nines, color="#ffebe9", zorder=0, linewidth=0)
    axes.yaxis.set_major_locator(FixedLocator(_nines_ticks(bottom, top, objective_nines)))
    axes.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _percent(1 - 10.0**-v)))
    axes.set_ylim(bottom, top)
    axes.set_ylabel("SLI (nines scale)")
    axes.set_title(f"SLI vs objective {_percent(timeline.objective)}")
    axes.legend(loc="best")
    _time_axis(axes, timeline)
    return figure


def _nines_ticks(bottom: float, top: float, objective_nines: float) -> list[float]:
    """Whole nines (99%, 99.9%), the objective, and the fives between (99.95%) when there is room."""
    ticks = {round(float(n), 4) for n in range(math.ceil(bottom), math.floor(top) + 1)}
    if top - bottom <= 3.5:
        half = math.log10(2)  # 1 - 5e-4 is 3 + log10(2) nines
        ticks |= {round(n + half, 4) for n in range(math.floor(bottom), math.ceil(top)) if bottom <= n + half <= top}
    ticks = {t for t in ticks if abs(t - objective_nines) > 0.08}
    return sorted(ticks | {objective_nines})


def _draw_budget(timeline: SLOTimeline) -> Figure:
    figure, axes = _figure(_HALF)
    x, remaining = downsample(_dates(timeline.timestamps), timeline.budget_remaining * 100)
    axes.plot(x, remaining, color="#1f2328", linewidth=1.6, label="budget remaining")
    axes.fill_between(x, remaining, 0, where=remaining >= 0, color="#1a7f37", alpha=0.18, linewidth=0, interpolate=True)
    axes.fill_between(x, remaining, 0, where=remaining < 0, color="#cf222e", alpha=0.25, linewidth=0, interpolate=True)
    axes.axhline(0, color=SEVERITY_COLOURS["page"], linewidth=1.2, linestyle="--")
    axes.axhline(100, color="#8c959f", linewidth=0.8, linestyle=":")
    finite = remaining[np.isfinite(remaining)]
    low = min(0.0, float(finite.min())) if finite.size else 0.0
    high = max(100.0, float(finite.max())) if finite.size else 100.0
    pad = (high - low) * 0.06
    axes.set_ylim(low - pad, high + pad)
    axes.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}%"))
    axes.set_ylabel(f"error budget left ({timeline.period_window})")
    axes.set_title(f"Error budget burn-down ({timeline.period_window} period)")
    axes.legend(
        handles=[
            Line2D([], [], color="#1f2328", linewidth=1.6, label="budget remaining"),
            Line2D([], [], color=SEVERITY_COLOURS["page"], linewidth=1.2, linestyle="--", label="budget exhausted"),
        ],
        loc="best",
    )
    _time_axis(axes, timeline)
    return figure


def _draw_burn_rate(timeline: SLOTimeline) -> Figure:
    """Every window's burn rate on a log axis, with one line per alert factor.

    Factors are labelled on a right-hand axis so the labels never sit on the data. Zero burn (no
    errors in the window) cannot be drawn on a log axis; it is drawn on the labelled floor instead
    of vanishing. Short windows are light and thin: they are the noisiest and matter least alone.
    """
    floor = 0.01
    figure, axes = full_width_figure(3.6)
    x = _dates(timeline.timestamps)
    windows = list(timeline.error_ratio)
    shades = np.linspace(0.0, 1.0, max(len(windows) - 1, 1))
    colours = matplotlib.colormaps["viridis_r"](0.2 + 0.72 * shades)
    highest = max([t.factor for t in timeline.thresholds] + [1.0])
    for i, window in enumerate(windows):
        burn = timeline.burn_rate(window)
        px, py = downsample(x, np.clip(burn, floor, None))
        if window == timeline.period_window:
            axes.plot(px, py, color="#1f2328", linewidth=2.0, linestyle="--", label=f"{window} (period)", zorder=4)
        else:
            width = 0.8 + 0.8 * float(shades[i])
            axes.plot(px, py, color=colours[i], linewidth=width, label=window, zorder=3, alpha=0.6 + 0.4 * shades[i])
        if np.isfinite(burn).any():
            highest = max(highest, float(np.nanmax(burn)))
    by_factor: dict[float, list[Threshold]] = {}
    for threshold in timeline.thresholds:
        by_factor.setdefault(threshold.factor, []).append(threshold)
    factors = sorted(by_factor)
    for factor in factors:
        axes.axhline(factor, color=severity_colour(by_factor[factor][0].severity), linewidth=1.0, linestyle=(0, (5, 3)))
    axes.set_yscale("log")
    axes.set_ylim(floor * 0.8, highest * 2.5)
    axes.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x" if v > floor else f"≤{floor:g}x"))
    right = axes.secondary_yaxis("right")
    right.set_yticks(
        factors,
        [" / ".join(f"{t.severity} {t.factor:g}x ({t.long} & {t.short})" for t in by_factor[f]) for f in factors],
    )
    right.tick_params(length=0, labelsize=8.5)
    for label, factor in zip(right.get_yticklabels(), factors, strict=True):
        label.set_color(severity_colour(by_factor[factor][0].severity))
    right.minorticks_off()
    axes.set_ylabel("burn rate (x budget, log)")
    axes.set_title("Burn rate per window, with alert thresholds")
    axes.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=len(windows), borderaxespad=0.2, handlelength=1.6)
    _time_axis(axes, timeline)
    return figure


def severity_colour(severity: str) -> str:
    return SEVERITY_COLOURS.get(severity, OTHER_SEVERITY_COLOUR)


def _draw_latency(timeline: SLOTimeline) -> Figure | str:
    p50, p99 = timeline.latency_p50_ms, timeline.latency_p99_ms
    if p50 is None and p99 is None:
        threshold = timeline.latency_threshold_ms
        known = f" (threshold {threshold:g} ms)" if threshold is not None else ""
        return f"No latency series for this SLO{known}: the source recorded no p50/p99 latency."
    figure, axes = full_width_figure(3.0)
    x = _dates(timeline.timestamps)
    highest = 0.0
    for values, label, colour, width in ((p50, "p50", "#54aeff", 1.0), (p99, "p99", "#0550ae", 1.5)):
        if values is None:
            continue
        px, py = downsample(x, values)
        axes.plot(px, py, color=colour, linewidth=width, label=label)
        if np.isfinite(values).any():
            highest = max(highest, float(np.nanmax(values)))
    if timeline.latency_threshold_ms is not None:
        axes.axhline(
            timeline.latency_threshold_ms,
            color=SEVERITY_COLOURS["page"],
            linewidth=1.2,
            linestyle="--",
            label=f"threshold {timeline.latency_threshold_ms:g} ms",
        )
        highest = max(highest, timeline.latency_threshold_ms)
    axes.set_ylim(0, highest * 1.15 if highest > 0 else 1)
    axes.set_ylabel("latency (ms)")
    axes.set_title("Latency " + " / ".join(name for name, values in (("p50", p50), ("p99", p99)) if values is not None))
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _time_axis(axes, timeline)
    return figure


def _draw_alerts(timeline: SLOTimeline) -> Figure | str:
    """One lane per alert and severity, named above its bars; an alert still firing runs to the last step.

    Names sit inside the plot rather than as tick labels, so long alert names do not push the time
    axis out of line with the burn-rate plot above it.
    """
    start, end = float(timeline.timestamps[0]), float(timeline.timestamps[-1])
    if not timeline.alerts:
        return f"No alert fired between {format_time(start)} and {format_time(end)}."
    rows = sorted({(a.alert, a.severity) for a in timeline.alerts}, key=lambda r: (r[1] != "page", r[0], r[1]))
    m = FULL_MARGINS
    figure, axes = full_width_figure(m["top"] + m["bottom"] + 0.2 + 0.42 * len(rows))
    span_days = max(end - start, 60.0) / 86400
    for y, (alert, severity) in enumerate(rows):
        colour = severity_colour(severity)
        bars = []
        for interval in timeline.alerts:
            if (interval.alert, interval.severity) != (alert, severity):
                continue
            left = float(_dates(np.array([interval.start]))[0])
            right = float(_dates(np.array([interval.end if interval.end is not None else end]))[0])
            # a one-minute page on a 30-day axis is narrower than a pixel; keep it visible
            bars.append((left, max(right - left, span_days / 400)))
            if interval.end is None:
                axes.annotate(
                    "still firing",
                    (right, y + 0.15),
                    xytext=(4, 0),
                    textcoords="offset points",
                    va="center",
                    fontsize=8,
                )
        axes.broken_barh(bars, (y - 0.05, 0.4), facecolors=colour, edgecolor="none")
        axes.text(
            0.003,
            y - 0.1,
            f"{alert} · {severity}",
            transform=axes.get_yaxis_transform(),
            va="bottom",
            fontsize=8.5,
            color="#424a53",
        )
    axes.set_ylim(len(rows) - 0.5, -0.65)
    axes.set_yticks([])
    axes.grid(axis="y", visible=False)
    axes.set_title("Alerts fired")
    severities = sorted({s for _, s in rows}, key=lambda s: (s != "page", s))
    axes.legend(
        handles=[Patch(color=severity_colour(s), label=s) for s in severities],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        title="severity",
    )
    _time_axis(axes, timeline)
    return figure


_PLOTS: dict[str, tuple[Callable[[SLOTimeline], Figure | str], Callable[[SLOTimeline], str]]] = {
    "sli": (
        _draw_sli,
        lambda t: (
            f"SLI over the {t.period_window} period window and over {_short_window(t)}, against the "
            f"{_percent(t.objective)} objective; shaded area is below the objective."
        ),
    ),
    "budget": (
        _draw_budget,
        lambda t: f"Share of the {t.period_window} error budget left at each step; below zero the budget is overspent.",
    ),
    "burn-rate": (
        _draw_burn_rate,
        lambda t: (
            "Burn rate (error ratio / error budget) per window; dashed lines are the alert factors, "
            "an alert fires when both windows of a pair are above its factor."
        ),
    ),
    "latency": (
        _draw_latency,
        lambda t: "p50 and p99 latency per step against the latency threshold.",
    ),
    "alerts": (
        _draw_alerts,
        lambda t: "When each alert fired, per severity.",
    ),
}

_SVG_ID = re.compile(r'\bid="([^"]+)"')
_SVG_PATH_DATA = re.compile(r'\bd="([^"]*)"')
_LONG_DECIMAL = re.compile(r"(\.\d{2})\d+")
_SVG_REFERENCE = re.compile(r'(href="#|url\(#)([^")]+)')


def inline_svg(document: str, id_prefix: str) -> str:
    """The <svg> element alone, fit for inlining: no XML prolog, no metadata, ids namespaced."""
    svg = document[document.index("<svg") :]
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, count=1, flags=re.S)
    svg = re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r"<svg\1", svg, count=1)
    svg = _SVG_ID.sub(lambda m: f'id="{id_prefix}{m.group(1)}"', svg)
    svg = _SVG_REFERENCE.sub(lambda m: f"{m.group(1)}{id_prefix}{m.group(2)}", svg)
    # a hundredth of a point is far below a pixel; the dropped digits were a third of the page's bytes
    svg = _SVG_PATH_DATA.sub(lambda m: 'd="' + _LONG_DECIMAL.sub(r"\1", m.group(1)) + '"', svg)
    return svg.strip()
