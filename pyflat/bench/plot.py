"""The PNG of a run, two panels sharing the cases: on the left pyflat's
speedup over numpy and torch (what users ask first), on the right every
implementation's fraction of memcpy (how close to the physical limit; for
a conversion case, of its traffic limit).  Conversion cases come after a
line.  matplotlib comes with the ``[bench]`` extra."""

from __future__ import annotations

import io
import math
from typing import Any, Optional

from .report import Report

__all__ = ["require_matplotlib", "render_png"]

FONT_PT = 11           # readable at the PNG's own size; nothing below 10 pt
MAX_FRACTION = 1.5     # the fraction axis ends here at most; longer bars are labelled
# Fractions: blues for pyflat, numpy orange, torch red; speedups (a ratio,
# not an implementation) green over numpy and purple over torch.
COLORS = {"pyflat": ("#9ecae1", "#3182bd", "#08519c"), "numpy": ("#fd8d3c",),
          "torch": ("#d62728",)}
SPEEDUP_COLORS = {"numpy": "#2ca02c", "torch": "#9467bd"}
ZERO_COPY_TEXT = "a view: nothing copied"


def require_matplotlib() -> None:
    """Raise ImportError with the install hint when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError("--plot needs matplotlib: pip install 'pyflat[bench]'") from exc


def _series(report: Report) -> list[tuple[str, Optional[int], str, str]]:
    """(impl, threads or None for its fastest, label, color) of each bar of
    the fraction panel: pyflat at each thread count, numpy, torch at its best."""
    counts = sorted({r.threads for r in report.records if r.impl == "pyflat"})
    blues = COLORS["pyflat"][-len(counts):] if len(counts) <= 3 else COLORS["pyflat"] * 9
    series: list[tuple[str, Optional[int], str, str]] = [
        ("pyflat", t, f"pyflat x{t}", blues[k]) for k, t in enumerate(counts)]
    series.append(("numpy", None, "numpy", COLORS["numpy"][0]))
    if any(r.impl == "torch" for r in report.records):
        series.append(("torch", None, "torch (best thread count)", COLORS["torch"][0]))
    return series


def _speedups(report: Report, case: str, top: int) -> dict[str, float]:
    """pyflat at ``top`` threads over numpy and over torch at its best."""
    ours = report.row(case, "pyflat", top)
    if ours is None:
        return {}
    result = {}
    for other in ("numpy", "torch"):
        row = report.row(case, other)  # its fastest thread count
        if row is not None:
            result[other] = row.seconds / ours.seconds
    return result


def render_png(report: Report) -> bytes:
    """Both panels as one PNG."""
    import matplotlib
    from matplotlib.figure import Figure  # no pyplot: no display, no global state

    cases = list(report.cases)
    top = report.top_threads()
    series = _series(report)
    n = len(cases)
    with matplotlib.rc_context({"font.size": FONT_PT, "axes.titlesize": FONT_PT + 1,
                                "xtick.labelsize": FONT_PT - 1,
                                "ytick.labelsize": FONT_PT - 1,
                                "legend.fontsize": FONT_PT - 1}):
        figure = Figure(figsize=(13, 1.8 + 0.55 * n), dpi=100)
        left, right = figure.subplots(1, 2, sharey=True,
                                      gridspec_kw={"width_ratios": [1, 1.25]})
        handles = _speedup_panel(left, report, cases, top)
        handles += _fraction_panel(right, report, cases, series)
        left.set_yticks(range(n), [c.name for c in cases])
        left.invert_yaxis()
        first_conversion = next((i for i, c in enumerate(cases) if c.conversion), 0)
        if first_conversion:  # copies above the line, conversions below
            for axes in (left, right):
                axes.axhline(first_conversion - 0.5, color="gray", linewidth=1)
        right.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                     borderaxespad=0, frameon=False)
        figure.suptitle(f"pyflat benchmark: {report.machine['cpu']}, {report.date[:10]}"
                        f"{' (--quick sizes)' if report.settings.quick else ''}")
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def _speedup_panel(axes: Any, report: Report, cases: list[Any], top: int) -> list[Any]:
    """Log-scale bars from 1x: right of the line pyflat is faster, left slower."""
    others = [o for o in ("numpy", "torch") if any(r.impl == o for r in report.records)]
    height = 0.8 / max(1, len(others))
    values = []
    handles = []
    for k, other in enumerate(others):
        ys, widths = [], []
        for i, case in enumerate(cases):
            speedup = _speedups(report, case.name, top).get(other)
            if speedup is not None and not case.zero_copy:
                ys.append(i + (k - (len(others) - 1) / 2) * height)
                widths.append(speedup)
        values += widths
        color = SPEEDUP_COLORS[other]
        handles.append(axes.barh(ys, [w - 1 for w in widths], left=1, height=height,
                                 color=color, label=f"pyflat x{top}: speedup over {other}"))
        for y, w in zip(ys, widths):  # the figure itself, at the bar's end
            axes.text(w, y, f" {w:.1f}x " if w < 10 else f" {w:.0f}x ", va="center",
                      ha="left" if w >= 1 else "right", fontsize=FONT_PT - 1)
    for i, case in enumerate(cases):
        if case.zero_copy:
            axes.text(1, i, f" {ZERO_COPY_TEXT}", va="center", fontsize=FONT_PT - 1)
    axes.set_xscale("log")
    low = min([0.5, *values]) / 1.15
    high = max([2.0, *values]) * 1.6  # room for the figure after the longest bar
    axes.set_xlim(low, high)
    ticks = [t for t in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100)
             if low <= t <= high]
    axes.set_xticks(ticks, [f"{t:g}x" for t in ticks])
    axes.minorticks_off()
    axes.axvline(1.0, color="black", linewidth=1)
    axes.set_xlabel("speedup: their time / pyflat's (log scale)")
    axes.set_title("pyflat's speedup")
    axes.grid(axis="x", alpha=0.3)
    return handles


def _fraction_panel(axes: Any, report: Report, cases: list[Any],
                    series: list[tuple[str, Optional[int], str, str]]) -> list[Any]:
    """Linear bars; the axis ends at the longest bar (at most MAX_FRACTION),
    so one outlier does not squeeze the others: longer bars say their value."""
    height = 0.8 / len(series)
    rows = []  # (y, fraction, color, label)
    for k, (impl, threads, label, color) in enumerate(series):
        for i, case in enumerate(cases):
            r = report.row(case.name, impl, threads)
            if r is not None and r.fraction_of_memcpy is not None and not case.zero_copy:
                rows.append((i + (k - (len(series) - 1) / 2) * height,
                             r.fraction_of_memcpy, color, label))
    longest = max([1.0, *(f for _, f, _, _ in rows)])
    end = min(longest, MAX_FRACTION) * 1.05
    handles = []
    for impl, threads, label, color in series:
        mine = [(y, f) for y, f, _, row_label in rows if row_label == label]
        handles.append(axes.barh([y for y, _ in mine], [min(f, end) for _, f in mine],
                                 height=height, color=color, label=f"{label}: of memcpy"))
        for y, f in mine:
            if f > end:
                axes.text(end, y, f"{f:.1f}x ", ha="right", va="center",
                          fontsize=FONT_PT - 1, color="white", fontweight="bold")
    for i, case in enumerate(cases):
        if case.zero_copy:
            axes.text(0.02 * end, i, ZERO_COPY_TEXT, va="center", fontsize=FONT_PT - 1)
    axes.set_xlim(0, end)
    axes.xaxis.set_major_formatter(_percent())
    axes.axvline(1.0, color="black", linewidth=1)
    axes.set_xlabel("fraction of memcpy (same bytes, at most as many threads)\n"
                    "conversions: of their traffic limit")
    axes.set_title("How close to memcpy")
    axes.grid(axis="x", alpha=0.3)
    return handles


def _percent() -> Any:
    from matplotlib.ticker import FuncFormatter
    return FuncFormatter(lambda x, _: f"{x:.0%}" if not math.isnan(x) else "")
