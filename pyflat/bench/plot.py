"""The PNG of a run: fraction of memcpy per case and implementation
(matplotlib, from the ``[bench]`` extra)."""

from __future__ import annotations

import io

from .report import Report

__all__ = ["require_matplotlib", "render_png"]

CLIP = 2.0  # a zero-copy "copy" runs at thousands of times memcpy: clip it


def require_matplotlib() -> None:
    """Raise ImportError with the install hint when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError("--plot needs matplotlib: pip install 'pyflat[bench]'") from exc


def render_png(report: Report) -> bytes:
    """Horizontal grouped bars, a group per case, a bar per implementation."""
    import matplotlib
    from matplotlib.figure import Figure  # no pyplot: no display, no global state

    series = report.series()
    cases = [c.name for c in report.cases]
    height = 0.8 / len(series)
    figure = Figure(figsize=(8, 1.5 + 0.1 * len(series) * len(cases)), dpi=80)
    axes = figure.subplots()
    colors = matplotlib.colormaps["tab10"]
    for k, (impl, threads) in enumerate(series):
        ys, widths = [], []
        for i, case in enumerate(cases):
            r = report.row(case, impl, threads)
            if r is not None:
                ys.append(i + (k - (len(series) - 1) / 2) * height)
                widths.append(r.fraction_of_memcpy)
        axes.barh(ys, [min(w, CLIP) for w in widths], height=height,
                  color=colors(k % 10), label=f"{impl} x{threads}")
    for i, case in enumerate(report.cases):
        fractions = [r.fraction_of_memcpy for r in report.records if r.case == case.name]
        if max(fractions, default=0) > CLIP:  # say the bars are clipped, and why
            axes.text(CLIP, i, f" >{CLIP:g}: {'views' if case.zero_copy else 'clipped'}",
                      va="center", fontsize=7)
    axes.axvline(1.0, color="black", linewidth=0.8)
    axes.set_yticks(range(len(cases)),
                    [c.name + ("\n(zero-copy)" if c.zero_copy else "") for c in report.cases],
                    fontsize=8)
    axes.invert_yaxis()
    axes.set_xlim(0, CLIP + 0.35)
    axes.set_xlabel("fraction of memcpy (same bytes, at most as many threads)")
    axes.set_title(f"pyflat benchmark, {report.machine['cpu']}, {report.date[:10]}",
                   fontsize=9)
    axes.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=4)
    axes.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
