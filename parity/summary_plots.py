"""The pictures of `parity report`: a forest plot of the accuracy (MAE) differences and a chart of the speed ratios.

Both read the summary rows (`parity.summary.summarize`), after Holm, and return PNG bytes, or
None when no row has anything to draw. `parity.summary` calls them (this module does not import
it): it passes the provenance labels (P1, P2...) and its speed band, so the pictures name the
rows as the table does.

- Forest plot (`accuracy_png`): one panel per metric. Each run row's mean per-seed difference
  lightning - keras with its paired t 95% interval; a row without an interval (too few seeds,
  degenerate) is a hollow diamond, its label says "no CI". The row's equivalence margin is a
  shaded band around 0; the verdict after Holm (with the seeds needed when inconclusive) is the
  label on the right. Accuracy in its own units (a fraction); MAE in percent of the row's keras
  mean MAE, since the data sets' scales differ (the default MAE margin is 5% of that mean, so
  every band is ±5% unless `--margin` says otherwise).
- Speed chart (`speed_png`): lightning / keras samples/s on a log scale, the bench's bootstrap
  95% interval where it has one, the band of no material difference (`parity.summary.SPEED_BAND`:
  [0.95, 1/0.95]), and the source and speed verdict on the right. A ratio from a run report
  (hollow square) has no interval and no verdict.

Rows with other frameworks than the default two (their `pairs`, parity.summary) give one point
per pair in both pictures, labelled with the pair (b - a, b / a); a picture with such points says
"b - a" and "b / a" where it says "lightning - keras" and "lightning / keras" otherwise, and
scales a pair's MAE difference by a's mean.

matplotlib is imported inside the functions (Figure + FigureCanvasAgg, no pyplot), so importing
this module touches no backend state.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from parity import compare
from parity.jobs import FRAMEWORKS, pair_key, pair_of

METRIC_TITLES = {"accuracy": "Accuracy", "mae": "MAE"}
METRIC_UNITS = {"accuracy": "lightning - keras (accuracy, a fraction)",
                "mae": "lightning - keras (% of the keras mean MAE; lower is better)"}
PAIRS_METRIC_UNITS = {"accuracy": "b - a of each pair (accuracy, a fraction)",
                      "mae": "b - a of each pair (% of a's mean MAE; lower is better)"}
DEFAULT_PAIR = pair_key(FRAMEWORKS)  # "lightning/keras"
VERDICT_COLOURS = {"equivalent": "tab:green", "different": "tab:red", "inconclusive": "tab:orange"}
NO_TEST_COLOUR = "0.45"
MARGIN_COLOUR = "tab:green"
SOURCE_COLOURS = {"bench": "tab:blue", "run": "0.45"}
FIGURE_WIDTH = 11  # inches
ROW_INCHES = 0.42  # figure height per plotted row
DPI = 100


@dataclass(frozen=True)
class ForestPoint:
    """One row of the forest plot, in the panel's units; `interval` None when the row has no paired interval."""

    label: str
    mean: float | None
    interval: tuple[float, float] | None
    margin: float | None
    verdict: str
    text: str


@dataclass(frozen=True)
class SpeedPoint:
    """One row of the speed chart: the ratio lightning / keras, its bootstrap interval (bench only), its source."""

    label: str
    ratio: float
    interval: tuple[float, float] | None
    source: str
    text: str


def row_label(row: Mapping[str, Any], provenance_label: str) -> str:
    """'model (mode, device, P1)': the row as the table names it."""
    details = ", ".join(part for part in (row["mode"], row["device"], provenance_label) if part)
    return f"{row['model']} ({details})"


def with_pairs(rows: Sequence[Mapping[str, Any]]) -> bool:
    """Whether any row has other frameworks than the default two (its comparisons are under `pairs`)."""
    return any("pairs" in row for row in rows)


def comparisons(row: Mapping[str, Any], pairs: bool, provenance_label: str) -> list[tuple[str, str, Mapping[str, Any]]]:
    """(label, pair key, the row with that pair's statistics) per comparison of a row: its `pairs`, or the row itself
    as lightning/keras. `pairs`: the picture shows pairs, so each label names its pair ('model (...): b - a')."""
    label = row_label(row, provenance_label)
    if "pairs" not in row:
        return [(f"{label}: lightning - keras" if pairs else label, DEFAULT_PAIR, row)]
    return [(f"{label}: {' - '.join(key.split('/'))}", key, {**row, **pair}) for key, pair in row["pairs"].items()]


def _scale(row: Mapping[str, Any], key: str = DEFAULT_PAIR) -> float | None:
    """The factor from the metric's units to the panel's: 1 for accuracy, 100 / a's mean for MAE (a: the pair's
    first framework, keras for lightning/keras)."""
    if row["metric"] != "mae":
        return 1.0
    reference = row["accuracy"].get(pair_of(key)[0], {}).get("mean")
    return 100.0 / reference if reference is not None and reference > 0 else None


def verdict_label(row: Mapping[str, Any]) -> str:
    """The verdict after Holm, with the seeds needed when inconclusive (the margin is the band, in the panel's units)."""
    if row["verdict"] != "inconclusive":
        return row["verdict"]
    needed = row["seeds_needed"]
    return f"inconclusive: {needed if needed is not None else f'> {compare.MAX_SEEDS:,}'} seeds needed"


def forest_points(rows: Sequence[Mapping[str, Any]], metric: str, labels: Mapping[str, str]) -> list[ForestPoint]:
    """The run rows of `metric` as forest plot points (one per pair where rows have `pairs`), in table order;
    `labels` maps provenance keys to P1, P2..."""
    pairs = with_pairs(rows)
    return [point for row in rows if row["metric"] == metric
            for label, key, comparison in comparisons(row, pairs, labels[row["provenance_key"]])
            if comparison["paired"] is not None
            for point in (_forest_point(comparison, key, label),)]


def _forest_point(row: Mapping[str, Any], key: str, label: str) -> ForestPoint:
    """One comparison (a row, or a row with one pair's statistics) as a forest plot point."""
    scale = _scale(row, key)
    paired = row["paired"]
    lo, hi = paired["ci95"]
    text = verdict_label(row)
    interval = None
    if scale is None:
        mean = None
        text += f", no scale ({key.split('/')[1]} MAE 0)"
    else:
        mean = None if paired["mean"] is None else paired["mean"] * scale
        if paired["status"] == "tested" and lo is not None and hi is not None:
            interval = (lo * scale, hi * scale)
        else:
            text += ", no CI"
    margin = (row["equivalence"] or {}).get("margin")
    return ForestPoint(label, mean, interval, None if margin is None or scale is None else margin * scale,
                       row["verdict"], text)


def _speed_text(row: Mapping[str, Any], ratio: float, interval: tuple[float, float] | None,
                key: str = DEFAULT_PAIR) -> str:
    if row["throughput_source"] != "bench":
        return "run: no speed verdict"
    how = "" if interval else " (no CI: windows decide)"
    if row["speed_material"]:
        a, b = pair_of(key)
        return f"bench: {b if ratio > 1 else a} faster{how}"
    return f"bench: no material difference{how}"


def speed_points(rows: Sequence[Mapping[str, Any]], labels: Mapping[str, str]) -> list[SpeedPoint]:
    """The rows (pairs, where rows have `pairs`) with a positive speed ratio as speed chart points, in table order."""
    pairs = with_pairs(rows)
    points = []
    for row in rows:
        for label, key, comparison in comparisons(row, pairs, labels[row["provenance_key"]]):
            ratio = comparison["throughput_ratio"]
            if ratio is None or not ratio > 0:
                continue
            lo, hi = comparison["throughput_ratio_ci95"] or (None, None)
            benched = comparison["throughput_source"] == "bench" and lo is not None and hi is not None and lo > 0
            interval = (lo, hi) if benched else None
            points.append(SpeedPoint(label.replace(" - ", " / ") if pairs else label, ratio, interval,
                                     comparison["throughput_source"], _speed_text(comparison, ratio, interval, key)))
    return points


def _new_figure(heights: Sequence[int]) -> tuple[Any, list[Any]]:
    """A figure of one panel per entry of `heights` (rows), each panel's height proportional to its rows."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(FIGURE_WIDTH, 1.0 + sum(ROW_INCHES * h + 1.2 for h in heights)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(heights), 1, squeeze=False, gridspec_kw={"height_ratios": [h + 3 for h in heights]})
    return fig, [row[0] for row in axes]


def _row_axes(ax: Any, labels: Sequence[str], right_labels: Sequence[str]) -> list[float]:
    """Rows top to bottom with their labels on the left and `right_labels` on the right; the rows' y positions."""
    ys = [float(len(labels) - 1 - i) for i in range(len(labels))]
    ax.set_ylim(-0.6, len(labels) - 0.4)
    ax.set_yticks(ys, labels)
    right = ax.twinx()
    right.set_ylim(ax.get_ylim())
    right.set_yticks(ys, right_labels)
    right.tick_params(length=0)
    ax.grid(axis="x", alpha=0.3)
    return ys


def _forest_panel(ax: Any, points: Sequence[ForestPoint], metric: str, pairs: bool = False) -> None:
    ys = _row_axes(ax, [p.label for p in points], [p.text for p in points])
    for y, point in zip(ys, points):
        colour = VERDICT_COLOURS.get(point.verdict, NO_TEST_COLOUR)
        if point.margin is not None:
            ax.fill_betweenx([y - 0.4, y + 0.4], -point.margin, point.margin, color=MARGIN_COLOUR, alpha=0.15,
                             linewidth=0)
        if point.mean is None:
            continue
        if point.interval is None:
            ax.plot([point.mean], [y], marker="D", markerfacecolor="white", markeredgecolor=colour, linestyle="none")
        else:
            lo, hi = point.interval
            ax.errorbar([point.mean], [y], xerr=[[point.mean - lo], [hi - point.mean]], fmt="o", color=colour,
                        capsize=4)
    ax.axvline(0.0, color="0.2", linewidth=0.8)
    ax.set_xlabel((PAIRS_METRIC_UNITS if pairs else METRIC_UNITS)[metric])
    ax.set_title(f"{METRIC_TITLES[metric]}: final validation value, {'b - a' if pairs else 'lightning - keras'} "
                 "(verdict after Holm)", loc="left", fontsize="medium")


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def accuracy_figure(panels: Mapping[str, Sequence[ForestPoint]], pairs: bool = False) -> Any:
    """The forest plot Figure: one panel per metric with points; `pairs`: the points are pairs b - a."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    fig, axes = _new_figure([len(points) for points in panels.values()])
    for ax, (metric, points) in zip(axes, panels.items()):
        _forest_panel(ax, points, metric, pairs)
    handles = [*(Line2D([], [], marker="o", color=colour, label=f"{verdict}: mean, paired 95% interval")
                 for verdict, colour in VERDICT_COLOURS.items()),
               Line2D([], [], marker="D", markerfacecolor="white", markeredgecolor=NO_TEST_COLOUR, linestyle="none",
                      label="no test: mean only"),
               Patch(color=MARGIN_COLOUR, alpha=0.15, label="equivalence margin")]
    fig.legend(handles=handles, loc="outside upper center", ncol=3, frameon=False, fontsize="small")
    return fig


def accuracy_png(rows: Sequence[Mapping[str, Any]], labels: Mapping[str, str]) -> bytes | None:
    """The forest plot as PNG; None when no row has a run report."""
    panels = {metric: forest_points(rows, metric, labels) for metric in METRIC_UNITS}
    panels = {metric: points for metric, points in panels.items() if points}
    return _png(accuracy_figure(panels, with_pairs(rows))) if panels else None


def _speed_limits(points: Sequence[SpeedPoint], band: tuple[float, float]) -> tuple[float, float]:
    """x limits covering every ratio, interval and the band, with a margin of 15% on the log scale."""
    values = [*band, *(p.ratio for p in points), *(v for p in points if p.interval for v in p.interval)]
    return min(values) / 1.15, max(values) * 1.15


def speed_figure(points: Sequence[SpeedPoint], band: tuple[float, float], pairs: bool = False) -> Any:
    """The speed chart Figure; `band` the ratios of no material difference; `pairs`: the points are pairs b / a."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    fig, (ax,) = _new_figure([len(points)])
    ys = _row_axes(ax, [p.label for p in points], [p.text for p in points])
    ax.axvspan(*band, color="0.5", alpha=0.15, linewidth=0)
    ax.axvline(1.0, color="0.2", linewidth=0.8)
    for y, point in zip(ys, points):
        colour = SOURCE_COLOURS.get(point.source, NO_TEST_COLOUR)
        if point.interval is None:
            hollow = point.source != "bench"
            ax.plot([point.ratio], [y], marker="s" if hollow else "o", markerfacecolor="white" if hollow else colour,
                    markeredgecolor=colour, linestyle="none")
        else:
            lo, hi = point.interval
            ax.errorbar([point.ratio], [y], xerr=[[point.ratio - lo], [hi - point.ratio]], fmt="o", color=colour,
                        capsize=4)
    ax.set_xscale("log")
    ax.set_xlim(*_speed_limits(points, band))
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    if pairs:
        ax.set_xlabel("speed b / a of each pair (samples/s; > 1: b faster; log scale)")
        ax.set_title("Training speed of each pair, b / a (source and speed verdict)", loc="left", fontsize="medium")
    else:
        ax.set_xlabel("speed lightning / keras (samples/s; > 1: lightning faster; log scale)")
        ax.set_title("Training speed, lightning / keras (source and speed verdict)", loc="left", fontsize="medium")
    band_text = f"[{band[0]:g}, {band[1]:.3f}]"
    handles = [Line2D([], [], marker="o", color=SOURCE_COLOURS["bench"], label="bench, bootstrap 95% interval"),
               Line2D([], [], marker="s", markerfacecolor="white", markeredgecolor=SOURCE_COLOURS["run"],
                      linestyle="none", label="run report (no interval, no verdict)"),
               Patch(color="0.5", alpha=0.15, label=f"{band_text}: no material difference")]
    fig.legend(handles=handles, loc="outside upper center", ncol=3, frameon=False, fontsize="small")
    return fig


def speed_png(rows: Sequence[Mapping[str, Any]], labels: Mapping[str, str],
              band: tuple[float, float]) -> bytes | None:
    """The speed chart as PNG; None when no row has a speed ratio."""
    points = speed_points(rows, labels)
    return _png(speed_figure(points, band, with_pairs(rows))) if points else None

