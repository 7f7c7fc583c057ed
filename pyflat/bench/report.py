"""A benchmark run as JSON, as a text table and as Markdown (``RESULTS.md``),
with a summary of the conversion cases (issue 14) against their targets."""

from __future__ import annotations

import json
import math
import os
import statistics
import textwrap
from dataclasses import asdict, dataclass
from typing import Any, Optional, Sequence

from .runner import CaseInfo, Record, Settings
from .sections import Section

__all__ = ["Report", "DEFINITIONS", "CONVERSION_TARGETS", "CONVERSIONS"]

#: The conversions' section of RESULTS.md: ``pyflat bench --conversions
#: --markdown PATH`` rewrites it alone.
CONVERSIONS = Section("<!-- conversions: start (pyflat bench --conversions --markdown PATH "
                      "rewrites this section) -->", "<!-- conversions: end -->")

#: Issue 14's targets for pyflat at one thread on the conversion cases:
#: (what, the row, its attribute, the least value).  The limit is memcpy
#: between touched buffers, so the row held to it writes into a touched out=;
#: the speedups are end to end, pyflat allocating its result as the peers do.
CONVERSION_TARGETS: tuple[tuple[str, str, str, float], ...] = (
    (">= 0.8 of the limit (pyflat-kernel)", "pyflat-kernel", "fraction_of_memcpy", 0.8),
    (">= 5x numpy", "pyflat", "speedup_vs_numpy", 5.0),
    (">= 2x torch", "pyflat", "speedup_vs_torch", 2.0),
)

#: What every label and column means: printed under the table, in RESULTS.md
#: and in the JSON.  ``{repeat}`` and ``{min_ms}`` are the run's settings.
DEFINITIONS: tuple[tuple[str, str], ...] = (
    ("pyflat", "pyflat.batch_flatten(a, data_format=...), allocating its result (on a "
               "conversion case with its dtype=, scale=, offset=)"),
    ("pyflat-kernel", "the same into a preallocated, already touched out=: the copy "
                      "alone, without the page faults of a fresh output"),
    ("numpy", "np.ascontiguousarray(view).reshape(n, -1) of the permuted view; on a "
              "conversion case, what users write (listed with the case)"),
    ("torch", "torch.flatten(torch.from_numpy(a)[.movedim(1, -1)], 1).contiguous(); on a "
              "conversion case, what users write (listed with the case)"),
    ("torchvision", "transforms.v2's to_dtype(scale=True) [+ normalize], then permute and "
                    "flatten, at torch's default thread count: image conversions only"),
    ("memcpy", "libc memcpy of the output's bytes between touched buffers, split among the "
               "threads: the physical limit"),
    ("x1, x2, threads", "the number of threads the row used"),
    ("time", "seconds per call, the best of {repeat} repetitions (the JSON keeps every "
             "one); tiny calls are looped to last {min_ms} ms"),
    ("GB/s", "bytes read + written (2 x the output for a copy) per second"),
    ("of memcpy", "GB/s over that of the fastest memcpy of the output's bytes with at most "
                  "as many threads; far above 100%: the result is a view, nothing is copied. "
                  "For a conversion this is the fraction of the traffic limit: memcpy's time "
                  "for the output's bytes x (bytes read + written) / (2 x output bytes)"),
    ("vs numpy", "numpy's time over the row's: above 1.00x is faster than numpy"),
    ("peak alloc", "the peak memory tracemalloc sees in one call, as a multiple of the "
                   "output's size: 1.00x out = the output alone, 0.00x out = nothing "
                   "(a view, or out=), - = not visible to tracemalloc (torch, memcpy)"),
)


@dataclass(frozen=True)
class Report:
    """Everything one run produced, and its descriptions."""

    date: str
    command: str
    machine: dict[str, Any]
    settings: Settings
    cases: Sequence[CaseInfo]
    records: Sequence[Record]
    notes: Sequence[str] = ()  # what was left out of the run, and why

    # -- derived figures -------------------------------------------------------

    def top_threads(self) -> int:
        """pyflat's largest thread count (1 when pyflat has no row)."""
        return max((r.threads for r in self.records if r.impl == "pyflat"), default=1)

    def row(self, case: str, impl: str, threads: Optional[int] = None) -> Optional[Record]:
        """The record of ``impl`` on ``case``: at ``threads``, or the fastest."""
        rows = [r for r in self.records if r.case == case and r.impl == impl
                and (threads is None or r.threads == threads)]
        return min(rows, key=lambda r: r.seconds, default=None)

    def series(self) -> list[tuple[str, int]]:
        """(impl, threads) of every row but memcpy, in the order measured."""
        seen = dict.fromkeys((r.impl, r.threads) for r in self.records if r.impl != "memcpy")
        return list(seen)

    def headline(self) -> str:
        """One sentence per kind of case: pyflat against memcpy, numpy and
        torch over the plain cases that copy (a zero-copy case measures a
        view, not a copy), then over the conversion cases."""
        plain = [c for c in self.cases if not c.conversion]
        sentences = [self._copy_headline(plain)] if plain else []
        if len(plain) < len(self.cases):
            sentences.append(self.conversion_headline())
        return " ".join(sentences)

    def _copy_headline(self, plain: Sequence[CaseInfo]) -> str:
        top = self.top_threads()
        pairs = [(c, self.row(c.name, "pyflat", top)) for c in plain if not c.zero_copy]
        copying = [c for c, r in pairs if r is not None]
        ours = [r for c, r in pairs if r is not None]
        if not ours:
            return "No case copies: nothing to compare."
        fractions = [r.fraction_of_memcpy or 0.0 for r in ours]
        vs_numpy = [r.speedup_vs_numpy or 0.0 for r in ours]
        cases = f"{len(ours)} cases that copy" if len(ours) > 1 else "1 case that copies"
        text = (f"Over the {cases}, pyflat with {top} thread"
                f"{'s' if top > 1 else ''} reaches a median {statistics.median(fractions):.0%} "
                f"of memcpy ({min(fractions):.0%} to {max(fractions):.0%}) and runs at "
                f"{_geomean(vs_numpy):.2f}x numpy's speed (geometric mean; "
                f"{min(vs_numpy):.2f}x to {max(vs_numpy):.2f}x)")
        torch_rows = [(self.row(r.case, "torch"), r) for r in ours]
        vs_torch = [torch.seconds / r.seconds for torch, r in torch_rows if torch is not None]
        if vs_torch:
            text += (f" and at {_geomean(vs_torch):.2f}x the speed of torch at its best "
                     f"thread count ({min(vs_torch):.2f}x to {max(vs_torch):.2f}x)")
        extra = [r.peak_bytes - c.output_bytes for r, c in zip(ours, copying)
                 if r.peak_bytes is not None]
        if extra:
            text += (f"; a call allocates its output and at most {max(extra)} bytes more "
                     "(tracemalloc)")
        return text + "."

    # -- conversions (issue 14) ------------------------------------------------

    def conversion_cases(self) -> list[CaseInfo]:
        return [c for c in self.cases if c.conversion]

    def conversion_headline(self) -> str:
        """One sentence: pyflat at one thread on the conversion cases, against
        the traffic limit (into a touched out=, as memcpy's buffers are) and
        against numpy's and torch's expressions (end to end)."""
        cases = self.conversion_cases()
        ours = [r for r in (self.row(c.name, "pyflat", 1) for c in cases) if r is not None]
        if not ours:
            return (f"The {len(cases)} conversion case{'s' if len(cases) > 1 else ''} "
                    "have no pyflat row: see Not measured.")
        kernel = [r for r in (self.row(c.name, "pyflat-kernel", 1) for c in cases) if r]
        fractions = [r.fraction_of_memcpy or 0.0 for r in kernel or ours]
        text = (f"On the {len(ours)} conversion case{'s' if len(ours) > 1 else ''}, pyflat "
                f"with 1 thread reaches a median {statistics.median(fractions):.0%} of the "
                f"traffic limit ({min(fractions):.0%} to {max(fractions):.0%}"
                f"{', into a touched out=' if kernel else ''})")
        speeds = []
        for attribute, whose in (("speedup_vs_numpy", "numpy's expression"),
                                 ("speedup_vs_torch", "torch's at its best thread count")):
            speedups = [getattr(r, attribute) for r in ours if getattr(r, attribute)]
            if speedups:
                speeds.append(f"{_geomean(speedups):.2f}x as fast as {whose} "
                              f"({min(speedups):.2f}x to {max(speedups):.2f}x)")
        if speeds:
            text += f" and runs {' and '.join(speeds)} (geometric means, end to end)"
        output = {c.name: c.output_bytes for c in cases}
        extra = [r.peak_bytes - output[r.case] for r in ours if r.peak_bytes is not None]
        if extra:
            text += f"; a call allocates its output and at most {max(extra)} bytes more"
        return text + "."

    def conversion_rows(self) -> tuple[list[str], list[list[str]]]:
        """A row per conversion case: the limit, each implementation's
        fraction of it, pyflat's speedups at one thread, peak allocations,
        and the targets pyflat at one thread misses."""
        top = self.top_threads()
        wanted: list[tuple[str, Optional[int]]] = [("pyflat", 1), ("pyflat-kernel", 1)]
        wanted += [("pyflat", top)] if top > 1 else []
        wanted += [("numpy", None), ("torch", None), ("torchvision", None)]  # at their best
        columns = [(impl, t) for impl, t in wanted if any(r.impl == impl for r in self.records)]
        headers = (["case", "conversion", "MB in", "MB out", "limit x1"]
                   + [f"{impl} {'x' + str(t) if t else 'best'}" for impl, t in columns]
                   + ["pyflat x1 vs numpy", "pyflat x1 vs torch", "peak alloc pyflat x1",
                      "peak alloc numpy", "targets (x1)"])
        rows = []
        for c in self.conversion_cases():
            memcpy, ours, numpy = (self.row(c.name, "memcpy", 1), self.row(c.name, "pyflat", 1),
                                   self.row(c.name, "numpy"))
            limit = (memcpy.seconds * c.traffic_bytes / (2 * c.output_bytes)
                     if memcpy else None)
            cells = [c.name, c.conversion, f"{c.input_bytes / 1e6:.3g}",
                     f"{c.output_bytes / 1e6:.3g}", _duration(limit) if limit else "-"]
            for impl, threads in columns:
                r = self.row(c.name, impl, threads)
                cells.append(_fraction(r.fraction_of_memcpy) if r else "-")
            cells += [_speedup(ours.speedup_vs_numpy if ours else None),
                      _speedup(ours.speedup_vs_torch if ours else None),
                      _peak(ours.peak_bytes if ours else None, c.output_bytes),
                      _peak(numpy.peak_bytes if numpy else None, c.output_bytes),
                      self._missed_targets(c.name)]
            rows.append(cells)
        return headers, rows

    def _missed_targets(self, case: str) -> str:
        """"met", or the :data:`CONVERSION_TARGETS` pyflat at one thread
        misses on ``case``."""
        missed = []
        for text, impl, attribute, least in CONVERSION_TARGETS:
            r = self.row(case, impl, 1)
            value = getattr(r, attribute) if r else None
            if value is None:
                missed.append(f"{text}: no row")
            elif value < least:
                missed.append(text)
        return "MISSED " + ", ".join(missed) if missed else "met"

    def conversion_section(self, plot_target: Optional[str] = None) -> str:
        """The Markdown section of the conversion cases, between the
        :data:`CONVERSIONS` markers: when and how it was measured, the table,
        what each implementation runs; the plot at ``plot_target`` (a
        relative link) when given."""
        m = self.machine
        lines = [CONVERSIONS.start,
                 "## Conversions: flatten + convert + scale in one pass (issue 14)", "",
                 f"Measured {self.date} on {m['cpu']}, {m['available_cpus']} CPUs available, "
                 f"1-minute load average {m['load_average']} at the start (a shared machine: "
                 f"read the ratios); numpy {m['numpy']}, torch {m['torch'] or 'not used'}, "
                 f"pyflat {m['pyflat']} (converting with: {m.get('pyflat_convert')}); "
                 f"{'scaled-down (--quick) sizes' if self.settings.quick else 'full sizes'}, "
                 f"best of {self.settings.repeat}.  Regenerate with `{self.command}`.", "",
                 f"**{self.conversion_headline()}**", ""]
        if plot_target:
            lines += [f"![pyflat's speedups and fractions of the limit]({plot_target})", ""]
        lines += [_markdown_table(*self.conversion_rows()), "",
                  "- **limit x1**: the traffic limit at one thread: memcpy's time for the "
                  "output's bytes x (bytes read + written) / (2 x output bytes); the "
                  "implementation columns are fractions of it (of the limit with as many "
                  "threads), `best`: the faster thread count. Above 100%: faster than "
                  "that limit, which is a reference, not a bound: libc's memcpy may write "
                  "with ordinary stores (glibc does below its non-temporal threshold), "
                  "reading each destination line first, where a kernel streaming its "
                  "output does not; and with outputs of tens of MB the working sets of "
                  "memcpy and of the conversion sit differently in the last-level cache "
                  "(the two effects are not separated here).",
                  "- **targets**: issue 14's, at one thread: "
                  + ", ".join(text for text, _, _, _ in CONVERSION_TARGETS)
                  + "; the limit is memcpy between touched buffers, so pyflat-kernel (into a "
                  "touched out=) is held to it, while the speedups are pyflat's end to end, "
                  "allocating its result as numpy and torch do (torch at its faster thread "
                  "count).",
                  "- pyflat's rows are checked byte for byte against numpy computing "
                  "pyflat's meaning, `ref.astype(dtype) * scale + offset` in the result "
                  "dtype; the peers' own expressions round differently and are checked to "
                  "be close.", "",
                  "What each implementation runs (`x`: the input; `t = torch.from_numpy(x)`; "
                  "`n = len(x)`; `mean`, `std`: ImageNet's, as float32 arrays or tensors):",
                  ""]
        for c in self.conversion_cases():
            lines.append(f"- **{c.name}** ({c.description}; {c.dtype} "
                         f"{_shape(c.input_shape)}):")
            lines += [f"  - {impl}: `{text}`" for impl, text in c.expressions]
        return "\n".join([*lines, CONVERSIONS.end]) + "\n"

    # -- JSON ------------------------------------------------------------------

    def to_json(self) -> str:
        return json.dumps({
            "date": self.date,
            "command": self.command,
            "machine": self.machine,
            "settings": asdict(self.settings),
            "notes": list(self.notes),
            "definitions": dict(self.definitions()),
            "cases": [asdict(c) for c in self.cases],
            "results": [r.as_dict() for r in self.records],
        }, indent=1) + "\n"

    # -- what the labels mean, and what is missing -----------------------------

    def definitions(self) -> list[tuple[str, str]]:
        settings = {"repeat": self.settings.repeat,
                    "min_ms": f"{self.settings.min_seconds * 1e3:g}"}
        return [(term, text.format(**settings)) for term, text in DEFINITIONS]

    def missing(self) -> list[str]:
        """The run's notes, and every case an implementation could not take."""
        lines = list(self.notes)
        for c in self.cases:
            reasons: dict[str, list[str]] = {}
            for label, why in c.skipped:
                reasons.setdefault(why, []).append(label)
            lines += [f"{', '.join(labels)}: no row for {c.name}: {why or 'cannot take it'}"
                      for why, labels in reasons.items()]
        return lines

    def legend(self) -> str:
        """The text printed under the table."""
        width = max(len(term) for term, _ in DEFINITIONS)
        lines = [textwrap.fill(text, 100, initial_indent=f"  {term:<{width}}  ",
                               subsequent_indent=" " * (width + 4))
                 for term, text in self.definitions()]
        return "\n".join(["What the columns and labels mean:", *lines])

    # -- tables ----------------------------------------------------------------

    def detail_rows(self) -> tuple[list[str], list[list[str]]]:
        """Every record: the table printed at the end of a run."""
        headers = ["case", "impl", "threads", "time", "GB/s", "of memcpy", "vs numpy",
                   "peak alloc"]
        rows: list[list[str]] = []
        previous = None
        output = {c.name: c.output_bytes for c in self.cases}
        for r in self.records:
            rows.append([r.case if r.case != previous else "", r.impl, str(r.threads),
                         _duration(r.seconds), f"{r.gbps:.2f}",
                         _fraction(r.fraction_of_memcpy), _speedup(r.speedup_vs_numpy),
                         _peak(r.peak_bytes, output[r.case])])
            previous = r.case
        return headers, rows

    def summary_rows(self) -> tuple[list[str], list[list[str]]]:
        """A row per case: fraction of memcpy of every implementation, and
        pyflat's speedups."""
        top = self.top_threads()
        series = self.series()
        headers = (["case", "input", "MB out", "memcpy GB/s"]
                   + [f"{impl} x{threads}" for impl, threads in series]
                   + [f"pyflat x{top} vs numpy", f"pyflat x{top} vs torch"])
        rows: list[list[str]] = []
        for c in self.cases:
            memcpy, ours, torch = (self.row(c.name, "memcpy"), self.row(c.name, "pyflat", top),
                                   self.row(c.name, "torch"))
            cells = [c.name, f"{c.dtype} {_shape(c.input_shape)}", f"{c.output_bytes / 1e6:.3g}",
                     f"{memcpy.gbps:.1f}" if memcpy else "-"]
            for impl, threads in series:
                r = self.row(c.name, impl, threads)
                cells.append(_fraction(r.fraction_of_memcpy) if r else "-")
            cells.append(_speedup(ours.speedup_vs_numpy) if ours else "-")
            cells.append(_speedup(torch.seconds / ours.seconds) if ours and torch else "-")
            rows.append(cells)
        return headers, rows

    def table(self) -> str:
        """Every measurement, then what is missing and why."""
        lines = [_text_table(*self.detail_rows())]
        lines += [f"Not measured: {line}" for line in self.missing()]
        if self.conversion_cases():
            lines += ["", "Conversions: fraction of the traffic limit (memcpy's time for the "
                      "output's bytes x (bytes read + written) / (2 x output bytes)), "
                      "pyflat's speedups and issue 14's targets:",
                      _text_table(*self.conversion_rows())]
        return "\n".join(lines)

    def markdown(self, plot_path: Optional[str] = None, markdown_path: Optional[str] = None
                 ) -> str:
        """``RESULTS.md``: machine, headline, plot (linked relative to
        ``markdown_path``), summary, every measurement, definitions."""
        m = self.machine
        lines = [
            "# pyflat benchmark results", "",
            f"Measured {self.date} on {m['cpu']}, {m['cores']} cores "
            f"({m['available_cpus']} available to the process), {m['platform']}; "
            f"1-minute load average at the start: {m['load_average']}.  ",
            f"Python {m['python']}, numpy {m['numpy']}, "
            f"torch {m['torch'] or 'not used'}"
            + (f" ({m['torch_threads']} threads by default)" if m['torch'] else "")
            + f", pyflat {m['pyflat']} (SIMD: {m['pyflat_simd']}).  ",
            f"Sizes: {'scaled down (--quick)' if self.settings.quick else 'full'}.", "",
            "Regenerate this file, its plot and its JSON with:", "", "```sh",
            self.command, "```", "",
            f"**{self.headline()}**", "",
        ]
        if plot_path:
            target = os.path.relpath(plot_path, os.path.dirname(markdown_path or "") or ".")
            lines += [f"![speedup over numpy and torch, and fraction of memcpy, per case]({target})",
                      ""]
        lines += ["## Fraction of memcpy, per case", "",
                  _markdown_table(*self.summary_rows()), ""]
        if self.conversion_cases():
            lines += [self.conversion_section()]
        lines += ["## Every measurement", "",
                  _markdown_table(*self.detail_rows()), "",
                  "## Random layouts", "",
                  "A catalog is a sample, not the population: `pyflat bench --fuzz 300 "
                  "--seed S` times random layouts against their traffic limit and numpy; "
                  "its distribution and latest figures are in [FUZZ.md](FUZZ.md).", "",
                  "## Definitions", ""]
        lines += [f"- **{term}**: {text}." for term, text in self.definitions()]
        lines += ["- The machine may be shared and has few cores: compare rows of the same "
                  "case (measured moments apart), not absolute times.", ""]
        if self.missing():
            lines += ["## Not measured", "", *[f"- {line}" for line in self.missing()], ""]
        return "\n".join(lines)


def _geomean(values: Sequence[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


def _duration(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def _fraction(fraction: Optional[float]) -> str:
    if fraction is None:
        return "-"
    return f"{fraction:.0f}x" if fraction >= 10 else f"{fraction:.0%}"


def _speedup(speedup: Optional[float]) -> str:
    return "-" if speedup is None else f"{speedup:.2f}x"


def _peak(peak: Optional[int], output_bytes: int) -> str:
    if peak is None or not output_bytes:
        return "-"
    return f"{peak / output_bytes:.2f}x out"


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ")"


def _text_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows)]
    # Text columns (the first two) flush left, figures flush right.
    def line(cells: list[str]) -> str:
        return "  ".join(cell.ljust(w) if i < 2 else cell.rjust(w)
                         for i, (cell, w) in enumerate(zip(cells, widths))).rstrip()
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join("---" if i < 2 else "---:" for i in range(len(headers))) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
