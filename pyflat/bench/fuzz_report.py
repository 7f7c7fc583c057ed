"""A fuzz run (:mod:`.fuzz_run`) as a text summary, as JSON and as a
scatter plot of the kernel's fraction of the traffic limit against output
size."""

from __future__ import annotations

import io
import json
import os
import re
from dataclasses import asdict, dataclass
from typing import Optional, Sequence

import numpy as np

from . import fuzz, fuzz_run
from .fuzz import KINDS, itemsize_class
from .fuzz_run import FuzzResult, FuzzSettings

__all__ = ["FuzzReport", "TOLERANCE", "WORST", "render_scatter", "distribution_markdown"]

TOLERANCE = 0.05  # "slower than numpy" beyond measurement noise: more than 5% slower
WORST = 10
BIG = 1 << 20  # the fraction-of-limit figures are over outputs of 1 MB and more


def _stats(values: Sequence[float]) -> Optional[dict]:
    """min / p10 / median / max (numpy's linear-interpolated percentiles)."""
    if not values:
        return None
    v = np.asarray(values, float)
    return {"count": int(v.size), "min": float(v.min()), "p10": float(np.percentile(v, 10)),
            "median": float(np.median(v)), "max": float(v.max())}


@dataclass(frozen=True)
class FuzzReport:
    """Everything a fuzz run produced."""

    date: str
    command: str
    machine: dict
    settings: FuzzSettings
    results: Sequence[FuzzResult]

    def big(self) -> list[FuzzResult]:
        return [r for r in self.results if r.output_bytes >= BIG]

    def worst(self, count: int = WORST) -> list[FuzzResult]:
        """The layouts where the kernel reaches the lowest fraction of its limit."""
        return sorted(self.results, key=lambda r: r.fraction_of_limit())[:count]

    def slower_than_numpy(self, tolerance: float = 0.0) -> list[FuzzResult]:
        """Layouts where pyflat end to end is more than ``tolerance`` slower
        than numpy, slowest first."""
        slower = [r for r in self.results if r.speedup_vs_numpy < 1 / (1 + tolerance)]
        return sorted(slower, key=lambda r: r.speedup_vs_numpy)

    def summary(self) -> dict:
        big = self.big()
        speedups = [r.speedup_vs_numpy for r in self.results]
        plan_kernels: dict = {}
        for r in self.results:
            plan_kernels[r.plan_kernel] = plan_kernels.get(r.plan_kernel, 0) + 1
        return {
            "layouts": len(self.results),
            "layouts_1mb_or_more": len(big),
            "kernel_fraction_of_limit": _stats([r.fraction_of_limit() for r in big]),
            "pyflat_fraction_of_limit": _stats([r.fraction_of_limit("pyflat") for r in big]),
            "numpy_fraction_of_limit": _stats([r.fraction_of_limit("numpy") for r in big]),
            "kernel_fraction_of_limit_all_sizes":
                _stats([r.fraction_of_limit() for r in self.results]),
            "speedup_vs_numpy": _stats(speedups),
            "slower_than_numpy": sum(s < 1 for s in speedups),
            "slower_than_numpy_beyond_tolerance":
                sum(s < 1 / (1 + TOLERANCE) for s in speedups),
            "slower_than_numpy_layouts": [r.layout.index for r in self.slower_than_numpy()],
            "tolerance": TOLERANCE,
            "plan_kernels": plan_kernels,
            "handed_to_numpy": sum(r.numpy_faster for r in self.results),
        }

    # -- text ----------------------------------------------------------------------

    def text(self) -> str:
        s, st = self.summary(), self.settings
        lines = [f"pyflat bench --fuzz: {s['layouts']} layouts of seed {st.seed}, outputs "
                 f"{st.min_bytes / 1e6:.3g} to {st.max_bytes / 1e6:.3g} MB, {st.threads} "
                 f"thread(s), best of {st.repeat} interleaved rounds"]
        for label, key in (("kernel into out=", "kernel_fraction_of_limit"),
                           ("pyflat end to end", "pyflat_fraction_of_limit"),
                           ("numpy end to end", "numpy_fraction_of_limit")):
            f = s[key]
            if f is None:
                lines.append(f"  {label}: no output of 1 MB or more")
                continue
            lines.append(f"  {label:18} fraction of the traffic limit over {f['count']} "
                         f"outputs >= 1 MB: min {f['min']:.3f}  p10 {f['p10']:.3f}  "
                         f"median {f['median']:.3f}  max {f['max']:.3f}")
        sp = s["speedup_vs_numpy"]
        if sp is not None:
            lines.append(
                f"  pyflat vs numpy, end to end: slower on {s['slower_than_numpy']} of "
                f"{s['layouts']} layouts, more than {TOLERANCE:.0%} slower on "
                f"{s['slower_than_numpy_beyond_tolerance']}; speedup min {sp['min']:.2f}x  "
                f"p10 {sp['p10']:.2f}x  median {sp['median']:.2f}x")
        slower = self.slower_than_numpy(TOLERANCE)
        if slower:
            lines.append(f"  more than {TOLERANCE:.0%} slower than numpy, slowest first: "
                         + ", ".join(f"#{r.layout.index} {r.speedup_vs_numpy:.2f}x"
                                     for r in slower[:WORST])
                         + (", ..." if len(slower) > WORST else ""))
        kernels = ", ".join(f"{k} {v}" for k, v in sorted(s["plan_kernels"].items()))
        lines.append(f"  plans (pyflat.explain kernel): {kernels}; handed to numpy by the "
                     f"cost model: {s['handed_to_numpy']} of {s['layouts']}")
        lines.append(f"  the {min(WORST, len(self.results))} worst, by the kernel's "
                     f"fraction of its limit:")
        for r in self.worst():
            lines.append(f"  #{r.layout.index}: {r.fraction_of_limit():.3f} of the limit "
                         f"({r.fraction_of_memcpy():.3f} of memcpy, traffic "
                         f"{r.traffic:.2f}x), {r.output_bytes / 1e6:.2f} MB, end to end "
                         f"{r.speedup_vs_numpy:.2f}x numpy")
            lines.append(f"      {r.layout.description}")
            if r.explain_text:
                lines += ["      " + line for line in r.explain_text.splitlines()]
        return "\n".join(lines)

    # -- JSON ----------------------------------------------------------------------

    def to_json(self) -> str:
        return json.dumps({
            "date": self.date, "command": self.command, "machine": self.machine,
            "settings": asdict(self.settings), "summary": self.summary(),
            "worst": [r.layout.index for r in self.worst()],
            "layouts": [r.as_dict() for r in self.results],
        }, indent=1) + "\n"


# -- Markdown ----------------------------------------------------------------------

def _docstring_section(doc: str, title: str) -> str:
    """The text under the reST heading ``title`` of ``doc``, as Markdown."""
    match = re.search(rf"^{re.escape(title)}\n-+\n(.*?)(?=^\S[^\n]*\n-+\n|\Z)", doc,
                      re.MULTILINE | re.DOTALL)
    text = match.group(1).strip() if match else ""
    return re.sub(r":\w+:`~?\.?([^`]+)`", r"`\1`", text.replace("``", "`"))


def distribution_markdown() -> str:
    """The layout distribution, from :mod:`.fuzz`'s docstring (one source)."""
    return _docstring_section(fuzz.__doc__ or "", "The distribution")


def _fraction_row(label: str, f: Optional[dict]) -> str:
    if f is None:
        return f"| {label} | - | - | - | - | - |"
    return (f"| {label} | {f['count']} | {f['min']:.3f} | {f['p10']:.3f} | "
            f"{f['median']:.3f} | {f['max']:.3f} |")


def markdown(report: FuzzReport, plot_path: Optional[str] = None,
             markdown_path: Optional[str] = None) -> str:
    """A page for ``bench/FUZZ.md``: the run, its figures, the worst layouts
    with their plans, the distribution and the definitions."""
    s, st, m = report.summary(), report.settings, report.machine
    lines = [
        "# pyflat performance fuzzer", "",
        f"Measured {report.date} on {m['cpu']}, {m['cores']} cores ({m['available_cpus']} "
        f"available to the process); 1-minute load average at the start: "
        f"{m['load_average']}.  ",
        f"Python {m['python']}, numpy {m['numpy']}, pyflat {m['pyflat']} "
        f"(SIMD: {m['pyflat_simd']}).  ",
        f"{s['layouts']} layouts of seed {st.seed}, outputs of {st.min_bytes / 1e6:.3g} to "
        f"{st.max_bytes / 1e6:.3g} MB, {st.threads} thread(s), best of {st.repeat} "
        "interleaved rounds.", "",
        "Regenerate this file, its plot and its JSON with:", "", "```sh", report.command,
        "```", ""]
    sp = s["speedup_vs_numpy"]
    if sp is not None:
        lines += [f"**pyflat end to end is slower than numpy on {s['slower_than_numpy']} of "
                  f"{s['layouts']} layouts ({s['slower_than_numpy_beyond_tolerance']} by more "
                  f"than {TOLERANCE:.0%}); median speedup {sp['median']:.2f}x, lowest "
                  f"{sp['min']:.2f}x.**", ""]
    if plot_path:
        target = os.path.relpath(plot_path, os.path.dirname(markdown_path or "") or ".")
        lines += [f"![the kernel's fraction of the traffic limit against output size]"
                  f"({target})", ""]
    lines += ["## Fraction of the traffic limit, outputs of 1 MB and more", "",
              "| | layouts | min | p10 | median | max |", "|---|---:|---:|---:|---:|---:|",
              _fraction_row("kernel into `out=`", s["kernel_fraction_of_limit"]),
              _fraction_row("pyflat end to end", s["pyflat_fraction_of_limit"]),
              _fraction_row("numpy end to end", s["numpy_fraction_of_limit"]), "",
              "Plans chosen (`pyflat.explain(...).kernel`): " + ", ".join(
                  f"{k} {v}" for k, v in sorted(s["plan_kernels"].items()))
              + f"; handed to numpy by the cost model: {s['handed_to_numpy']} of "
              f"{s['layouts']}.", "",
              f"## The {min(WORST, len(report.results))} worst layouts", ""]
    for r in report.worst():
        lines += [f"- **#{r.layout.index}**, {r.fraction_of_limit():.3f} of the limit "
                  f"({r.fraction_of_memcpy():.3f} of memcpy, traffic {r.traffic:.2f}x), "
                  f"{r.output_bytes / 1e6:.2f} MB, end to end {r.speedup_vs_numpy:.2f}x "
                  f"numpy: {r.layout.description}"]
        if r.explain_text:
            lines += ["", "  ```", *("  " + line for line in r.explain_text.splitlines()),
                      "  ```"]
    lines += ["", "## The distribution", "", distribution_markdown(), "",
              "## Definitions", "", _docstring_section(fuzz_run.__doc__ or "", "Definitions"),
              ""]
    return "\n".join(lines)


# -- the scatter plot -----------------------------------------------------------------

MARKERS = {"1": "o", "2": "s", "4": "^", "8": "D", "16-32": "P", "odd": "X"}


def render_scatter(report: FuzzReport) -> bytes:
    """PNG: the kernel's fraction of the traffic limit against output bytes
    (log x), colour by layout kind, marker by itemsize class."""
    import matplotlib
    import matplotlib.ticker
    from matplotlib.figure import Figure  # no pyplot: no display, no global state
    from matplotlib.lines import Line2D

    figure = Figure(figsize=(9, 5.5), dpi=100)
    axes = figure.subplots()
    colors = matplotlib.colormaps["tab10"]
    for k, kind in enumerate(KINDS):
        for cls, marker in MARKERS.items():
            chosen = [r for r in report.results
                      if r.layout.kind == kind and itemsize_class(r.layout.itemsize) == cls]
            if chosen:
                axes.scatter([r.output_bytes / 1e6 for r in chosen],
                             [r.fraction_of_limit() for r in chosen],
                             color=colors(k), marker=marker, s=28, alpha=0.75,
                             edgecolors="none")
    axes.set_xscale("log")
    axes.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    axes.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes.set_xticks([x for x in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200)
                     if report.settings.min_bytes / 2e6 <= x <= report.settings.max_bytes * 2e-6])
    axes.axhline(1.0, color="black", linewidth=0.8)
    axes.set_xlabel("output size (MB, log scale)", fontsize=11)
    axes.set_ylabel("fraction of the traffic limit\n(limit seconds / kernel seconds)",
                    fontsize=11)
    st = report.settings
    axes.set_title(f"pyflat kernel on {len(report.results)} fuzzed layouts (seed {st.seed}, "
                   f"{st.threads} thread(s)), {report.machine.get('cpu', '')}, "
                   f"{report.date[:10]}", fontsize=10)
    axes.grid(alpha=0.3)
    kinds = [Line2D([], [], color=colors(k), marker="o", linestyle="", label=kind)
             for k, kind in enumerate(KINDS)]
    sizes = [Line2D([], [], color="gray", marker=m, linestyle="", label=f"itemsize {c}")
             for c, m in MARKERS.items()]
    first = axes.legend(handles=kinds, title="layout kind", fontsize=9, title_fontsize=9,
                        loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes.add_artist(first)
    axes.legend(handles=sizes, title="bytes per item", fontsize=9, title_fontsize=9,
                loc="lower left", bbox_to_anchor=(1.01, 0.0))
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
