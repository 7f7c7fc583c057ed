"""A benchmark run as JSON, as a text table and as Markdown (``RESULTS.md``)."""

from __future__ import annotations

import json
import math
import os
import statistics
import tempfile
from dataclasses import asdict, dataclass
from typing import Optional, Sequence

from .runner import CaseInfo, Record, Settings

__all__ = ["Report", "write_atomic"]


@dataclass(frozen=True)
class Report:
    """Everything one run produced, and its descriptions."""

    date: str
    command: str
    machine: dict
    settings: Settings
    cases: Sequence[CaseInfo]
    records: Sequence[Record]

    # -- derived figures -------------------------------------------------------

    def top_threads(self) -> int:
        return max(r.threads for r in self.records if r.impl == "pyflat")

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
        """One sentence: pyflat against memcpy, numpy and torch over the cases
        that copy (a zero-copy case measures a view, not a copy)."""
        top = self.top_threads()
        copying = [c for c in self.cases if not c.zero_copy]
        ours = [self.row(c.name, "pyflat", top) for c in copying]
        if not ours:
            return "No case copies: nothing to compare."
        fractions = [r.fraction_of_memcpy for r in ours]
        vs_numpy = [r.speedup_vs_numpy for r in ours]
        cases = f"{len(ours)} cases that copy" if len(ours) > 1 else "1 case that copies"
        text = (f"Over the {cases}, pyflat with {top} thread"
                f"{'s' if top > 1 else ''} reaches a median {statistics.median(fractions):.0%} "
                f"of memcpy ({min(fractions):.0%} to {max(fractions):.0%}) and runs at "
                f"{_geomean(vs_numpy):.2f}x numpy's speed (geometric mean; "
                f"{min(vs_numpy):.2f}x to {max(vs_numpy):.2f}x)")
        vs_torch = [self.row(r.case, "torch").seconds / r.seconds
                    for r in ours if self.row(r.case, "torch")]
        if vs_torch:
            text += (f" and at {_geomean(vs_torch):.2f}x the speed of torch at its best "
                     f"thread count ({min(vs_torch):.2f}x to {max(vs_torch):.2f}x)")
        extra = [r.peak_bytes - c.output_bytes for r, c in zip(ours, copying)
                 if r.peak_bytes is not None]
        if extra:
            text += (f"; a call allocates its output and at most {max(extra)} bytes more "
                     "(tracemalloc)")
        return text + "."

    # -- JSON ------------------------------------------------------------------

    def to_json(self) -> str:
        return json.dumps({
            "date": self.date,
            "command": self.command,
            "machine": self.machine,
            "settings": asdict(self.settings),
            "cases": [asdict(c) for c in self.cases],
            "results": [r.as_dict() for r in self.records],
        }, indent=1) + "\n"

    # -- tables ----------------------------------------------------------------

    def detail_rows(self) -> tuple[list[str], list[list[str]]]:
        """Every record: the table printed at the end of a run."""
        headers = ["case", "impl", "threads", "time", "GB/s", "of memcpy", "vs numpy",
                   "peak alloc"]
        rows, previous = [], None
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
        rows = []
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
        return _text_table(*self.detail_rows())

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
            f"torch {m['torch'] or 'not installed'}"
            + (f" ({m['torch_threads']} threads by default)" if m['torch'] else "")
            + f", pyflat {m['pyflat']} (SIMD: {m['pyflat_simd']}).  ",
            f"Sizes: {'scaled down (--quick)' if self.settings.quick else 'full'}.", "",
            "Regenerate this file, its plot and its JSON with:", "", "```sh",
            self.command, "```", "",
            f"**{self.headline()}**", "",
        ]
        if plot_path:
            target = os.path.relpath(plot_path, os.path.dirname(markdown_path or "") or ".")
            lines += [f"![fraction of memcpy per case and implementation]({target})", ""]
        lines += ["## Fraction of memcpy, per case", "",
                  _markdown_table(*self.summary_rows()), "",
                  "## Every measurement", "",
                  _markdown_table(*self.detail_rows()), "",
                  "## Random layouts", "",
                  "A catalog is a sample, not the population: `pyflat bench --fuzz 300 "
                  "--seed S` times random layouts against their traffic limit and numpy; "
                  "its distribution and latest figures are in [FUZZ.md](FUZZ.md).", "",
                  "## Definitions", "",
                  "- **GB/s**: bytes read + written (2 x the output's size) per second.",
                  "- **of memcpy**: GB/s over that of the fastest memcpy of the same bytes "
                  "using at most as many threads, in the same run (far above 100%: the "
                  "result is a view, nothing is copied).",
                  "- **vs numpy**: numpy's time over the row's; **vs torch** (summary): "
                  "torch's time at its faster thread count over pyflat's.",
                  f"- **time**: seconds per call, the best of {self.settings.repeat} "
                  "repetitions after a warm-up, taken in rounds of one repetition of every "
                  "implementation; tiny calls are looped so that a repetition lasts "
                  f"{self.settings.min_seconds * 1e3:g} ms.",
                  "- **pyflat**: `pyflat.batch_flatten(a, data_format=..., num_threads=T)`, "
                  "allocating its output; **pyflat-kernel**: the same into a preallocated, "
                  "touched `out=`.",
                  "- **numpy**: `np.ascontiguousarray(view).reshape(n, -1)` of the permuted "
                  "view; **torch**: `torch.flatten(torch.from_numpy(a)[.movedim(1, -1)], 1)"
                  ".contiguous()` with `torch.set_num_threads(T)` (torch cannot take "
                  "negative strides: no row there).",
                  "- **memcpy**: libc `memcpy` of the same bytes between two preallocated, "
                  "touched buffers, split among T Python threads (ctypes releases the GIL).",
                  "- **peak alloc**: the peak memory `tracemalloc` sees during one call, as "
                  "a multiple of the output's size (torch's allocations are invisible "
                  "to it).",
                  "- The machine may be shared and has few cores: compare rows of the same "
                  "case (measured moments apart), not absolute times.", ""]
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


def _shape(shape: tuple) -> str:
    return "(" + ", ".join(map(str, shape)) + ")"


def _text_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows)]
    # Text columns (the first two) flush left, figures flush right.
    def line(cells):
        return "  ".join(cell.ljust(w) if i < 2 else cell.rjust(w)
                         for i, (cell, w) in enumerate(zip(cells, widths))).rstrip()
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join("---" if i < 2 else "---:" for i in range(len(headers))) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def write_atomic(path: str, data: bytes | str) -> None:
    """Write ``path`` whole or not at all (a temporary file, then a rename)."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".pyflat-bench-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
