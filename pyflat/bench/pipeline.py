"""``pyflat bench --pipeline``: pyflat where data pipelines call it, per
sample or per small batch, thousands of times a second.

Three parts, every one measured side by side in one process and checked
against numpy's result first:

- **calls**: the per-call cost of small inputs, pyflat over numpy's
  equivalent (issue 13's table; :mod:`.overhead`);
- **batches**: items per second for CIFAR-like ``3x32x32`` uint8
  channels_first samples, one at a time and in batches of 32, 128 and 1024,
  and for a ``(batch, 20, 6)`` float64 slice of a wider table; pyflat, numpy
  and torch (when installed);
- **loader**: a real ``torch.utils.data.DataLoader`` with ``num_workers=2``
  whose collate function stacks CIFAR-like samples and flattens them with
  pyflat, against the same loader flattening with numpy (torch only).

Items per second on a shared machine are noisy: read the ratios.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import math
import os
import shlex
import sys
import time
import timeit
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, cast

import numpy as np

import pyflat
from pyflat.api import DataFormat

from . import overhead
from .impls import import_torch
from .machine import describe
from .sections import Section

__all__ = ["Workload", "Throughput", "LoaderResult", "workloads", "measure_batches",
           "measure_loader", "PipelineReport", "main"]

BATCHES = (1, 32, 128, 1024)
QUICK_BATCHES = (1, 32, 128)
SECTION_START = "<!-- pipeline: start (pyflat bench --pipeline --markdown PATH rewrites this section) -->"
SECTION_END = "<!-- pipeline: end -->"
SECTION = Section(SECTION_START, SECTION_END)


@dataclass(frozen=True)
class Workload:
    """One input the pipeline flattens over and over."""

    name: str
    description: str
    batch: int
    a: np.ndarray
    data_format: str


def cifar_batch(batch: int, seed: int = 0) -> np.ndarray:
    """``batch`` CIFAR-like images: uint8, channels_first ``(batch, 3, 32, 32)``."""
    return np.random.default_rng(seed).integers(0, 256, (batch, 3, 32, 32), dtype=np.uint8)


def tabular_slice(batch: int, seed: int = 0) -> np.ndarray:
    """A ``(batch, 20, 6)`` float64 window of a table with 8 features per step
    (the model reads 6 of them): rows of 48 bytes at a 64-byte step."""
    table = np.random.default_rng(seed).random((batch, 20, 8))
    return table[:, :, :6]


def workloads(batches: Sequence[int] = BATCHES) -> List[Workload]:
    out = []
    for b in batches:
        out.append(Workload(f"cifar_u8_cf_b{b}", f"CIFAR uint8 3x32x32 channels_first, batch {b}",
                            b, cifar_batch(b), "channels_first"))
    for b in batches:
        out.append(Workload(f"tabular_f64_b{b}", f"tabular float64 (batch, 20, 6) slice, batch {b}",
                            b, tabular_slice(b), "channels_last"))
    return out


def _numpy_flatten(a: np.ndarray, data_format: str) -> np.ndarray:
    if data_format == "channels_first" and a.ndim > 2:
        a = a.transpose(0, *range(2, a.ndim), 1)
    return np.ascontiguousarray(a.reshape(len(a), -1))


def _calls(w: Workload, torch: Any) -> Dict[str, Callable[[], Any]]:
    """The callables timed for one workload: each flattens ``w.a`` once."""
    a, fmt = w.a, cast(DataFormat, w.data_format)
    calls: Dict[str, Callable[[], Any]] = {
        "pyflat": lambda: pyflat.batch_flatten(a, data_format=fmt),
        "numpy": lambda: _numpy_flatten(a, fmt),
    }
    if torch is not None:
        t = torch.from_numpy(a)  # made once: torch's best case
        if fmt == "channels_first":
            calls["torch"] = lambda: torch.flatten(t.permute(0, 2, 3, 1), 1).contiguous()
        else:
            calls["torch"] = lambda: torch.flatten(t, 1).contiguous()
    return calls


@dataclass
class Throughput:
    workload: str
    description: str
    batch: int
    nbytes: int
    items_per_s: Dict[str, float] = field(default_factory=dict)

    def ratio(self, impl: str, base: str = "numpy") -> Optional[float]:
        if impl not in self.items_per_s or base not in self.items_per_s:
            return None
        return self.items_per_s[impl] / self.items_per_s[base]


def _as_numpy(result: Any) -> np.ndarray:
    return result.numpy() if hasattr(result, "numpy") and not isinstance(result, np.ndarray) \
        else np.asarray(result)


def _verify(w: Workload, calls: Dict[str, Callable[[], Any]]) -> None:
    want = _numpy_flatten(w.a, w.data_format)
    for name, call in calls.items():
        got = _as_numpy(call())
        if got.shape != want.shape or got.tobytes() != want.tobytes():
            raise AssertionError(f"{w.name}: {name}'s result differs from numpy's")
        if name == "pyflat" and not got.flags.c_contiguous:
            raise AssertionError(f"{w.name}: pyflat's result is not C-contiguous")


def measure_batches(ws: Sequence[Workload], torch: Any = None, repeat: int = 20,
                    loop_s: float = 0.002,
                    progress: Callable[[str], None] = lambda s: None) -> List[Throughput]:
    """Items per second per implementation: the best of ``repeat``
    interleaved short loops."""
    results = []
    for w in ws:
        progress(w.name)
        calls = _calls(w, torch)
        _verify(w, calls)
        timers = {name: timeit.Timer(call) for name, call in calls.items()}
        number = max(overhead._loop_count(t, loop_s) for t in timers.values())
        best = {name: math.inf for name in timers}
        for _ in range(repeat):
            for name, timer in timers.items():
                best[name] = min(best[name], timer.timeit(number) / number)
        results.append(Throughput(w.name, w.description, w.batch, w.a.nbytes,
                                  {name: w.batch / t for name, t in best.items()}))
    return results


# -- a real DataLoader ----------------------------------------------------------

def _collate_pyflat(samples: List[np.ndarray]) -> np.ndarray:
    return pyflat.batch_flatten(np.stack(samples), data_format="channels_first")


def _collate_numpy(samples: List[np.ndarray]) -> np.ndarray:
    return _numpy_flatten(np.stack(samples), "channels_first")


class _Samples:
    """A map-style dataset of CIFAR-like samples held in memory (a plain
    class: torch's DataLoader takes any object with __getitem__ and __len__)."""

    def __init__(self, n: int) -> None:
        self.data = cifar_batch(n, seed=1)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> Any:
        return self.data[i]


@dataclass
class LoaderResult:
    samples: int
    batch: int
    num_workers: int
    items_per_s: Dict[str, float] = field(default_factory=dict)

    def ratio(self) -> Optional[float]:
        if "pyflat" not in self.items_per_s or "numpy" not in self.items_per_s:
            return None
        return self.items_per_s["pyflat"] / self.items_per_s["numpy"]


def measure_loader(torch: Any, samples: int = 16384, batch: int = 128,
                   num_workers: int = 2, epochs: int = 3) -> LoaderResult:
    """Items per second through ``torch.utils.data.DataLoader``: the best
    epoch of ``epochs`` (after one that starts the workers), pyflat's
    collate and numpy's alternating; the first batches are checked equal."""
    from torch.utils.data import DataLoader

    dataset: Any = _Samples(samples)
    loaders: Dict[str, Any] = {name: DataLoader(dataset, batch_size=batch, num_workers=num_workers,
                                collate_fn=collate, persistent_workers=num_workers > 0)
               for name, collate in (("pyflat", _collate_pyflat), ("numpy", _collate_numpy))}
    first = {name: next(iter(loader)) for name, loader in loaders.items()}  # starts workers
    if first["pyflat"].tobytes() != first["numpy"].tobytes():
        raise AssertionError("DataLoader: pyflat's batch differs from numpy's")
    best = {name: math.inf for name in loaders}
    for _ in range(epochs):
        for name, loader in loaders.items():
            start = time.perf_counter()
            count = sum(len(b) for b in loader)
            best[name] = min(best[name], time.perf_counter() - start)
            assert count == samples
    del loaders  # stops the persistent workers
    return LoaderResult(samples, batch, num_workers,
                        {name: samples / t for name, t in best.items()})


# -- the report -----------------------------------------------------------------

@dataclass
class PipelineReport:
    date: str
    command: str
    machine: Dict[str, Any]
    calls: List[overhead.Row]
    batches: List[Throughput]
    loader: Optional[LoaderResult]
    torch_note: str = ""
    plot: Optional[str] = None       # the PNG written, if any
    plot_link: str = ""              # its path relative to the Markdown file

    def to_json(self) -> str:
        return json.dumps({
            "date": self.date, "command": self.command, "machine": self.machine,
            "calls": [{"call": r.case.name, "description": r.case.description,
                       "pyflat_ns": round(r.pyflat_ns, 1), "numpy_ns": round(r.numpy_ns, 1),
                       "ratio": round(r.ratio, 3), "target": r.case.target}
                      for r in self.calls],
            "batches": [{**asdict(t), "items_per_s": {k: round(v) for k, v in
                                                      t.items_per_s.items()}}
                        for t in self.batches],
            "loader": None if self.loader is None else asdict(self.loader),
            "torch_note": self.torch_note,
        }, indent=1) + "\n"

    def batches_table(self) -> str:
        impls = [i for i in ("pyflat", "numpy", "torch")
                 if any(i in t.items_per_s for t in self.batches)]
        head = ["workload", "KB", *[f"{i} items/s" for i in impls], "pyflat vs numpy"]
        if "torch" in impls:
            head.append("pyflat vs torch")
        lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
        for t in self.batches:
            row = [t.description, f"{t.nbytes / 1024:.1f}"]
            row += [_rate(t.items_per_s.get(i)) for i in impls]
            row.append(f"{t.ratio('pyflat'):.2f}x")
            if "torch" in impls:
                r = t.ratio("pyflat", "torch")
                row.append("-" if r is None else f"{r:.2f}x")
            lines.append("| " + " | ".join(row) + " |")
        return "\n".join(lines)

    def loader_text(self) -> str:
        if self.loader is None:
            return f"DataLoader: not measured ({self.torch_note or 'torch is not installed'})."
        lo = self.loader
        return (f"torch.utils.data.DataLoader, {lo.samples} CIFAR-like samples, batch {lo.batch}, "
                f"num_workers={lo.num_workers}, collate = np.stack + flatten (best of the "
                f"epochs after warm-up): pyflat {_rate(lo.items_per_s['pyflat'])} items/s, "
                f"numpy {_rate(lo.items_per_s['numpy'])} items/s: {lo.ratio():.2f}x.")

    def text(self) -> str:
        return "\n\n".join([
            "Per-call cost (pyflat / numpy; lower is better):",
            overhead.format_rows(self.calls, markdown=False),
            "Items per second (higher is better):",
            self.batches_table(), self.loader_text()])

    def markdown_section(self) -> str:
        m = self.machine
        return "\n".join([
            SECTION_START,
            "## Data pipelines: small inputs, repeated calls",
            "",
            f"Measured {self.date} on {m.get('cpu')}, {m.get('available_cpus')} CPUs available, "
            f"1-minute load average {m.get('load_average')} (a shared machine: read the ratios); "
            f"numpy {m.get('numpy')}, torch {m.get('torch') or 'not installed'}. "
            f"Regenerate with `{self.command}`.",
            "",
            "### Per-call cost, pyflat against numpy's equivalent, side by side",
            "",
            "Best of many short interleaved loops (`python -m pyflat.bench.overhead` prints "
            "the same table; `--sweep` adds 30 copying layouts up to 64 KB).",
            "",
            overhead.format_rows(self.calls, markdown=True),
            "",
            "### Items per second",
            "",
            "pyflat's `batch_flatten`, numpy's transpose/reshape (plus `ascontiguousarray` where "
            "the reshape is a view), torch's `flatten(...).contiguous()` on a tensor made once; "
            "every result checked against numpy's.",
            "",
            self.batches_table(),
            "",
            self.loader_text(),
            *([] if self.plot is None else ["", f"![pyflat's speedups in data pipelines]"
                                                f"({self.plot_link})"]),
            SECTION_END,
        ]) + "\n"


def render_png(report: PipelineReport) -> bytes:
    """A small PNG: pyflat's items per second over numpy's and torch's per
    workload, and in the DataLoader (log scale, bars from 1x)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [t.description.replace(" channels_first", " cf") for t in report.batches]
    ratios = {base: [t.ratio("pyflat", base) for t in report.batches]
              for base in ("numpy", "torch")}
    if report.loader is not None:
        labels.append(f"DataLoader, {report.loader.num_workers} workers, batch "
                      f"{report.loader.batch} (vs numpy)")
        ratios["numpy"].append(report.loader.ratio())
        ratios["torch"].append(None)
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(labels) + 1.4), dpi=100)
    height = 0.38
    for k, (base, color) in enumerate((("numpy", "#2ca02c"), ("torch", "#9467bd"))):
        ys = [i + (k - 0.5) * height for i in range(len(labels))]
        values = [r if r is not None else float("nan") for r in ratios[base]]
        if all(math.isnan(v) for v in values):
            continue
        ax.barh(ys, [v - 1 for v in values], height, left=1, color=color,
                label=f"pyflat vs {base}")
    ax.axvline(1, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yticks(range(len(labels)), labels, fontsize=10)
    ax.invert_yaxis()
    ax.set_xlabel("pyflat's items per second over the other's (log; right of 1: pyflat faster)",
                  fontsize=10)
    ax.legend(fontsize=10, loc="lower right")
    ax.set_title("Data pipelines: small inputs, repeated calls", fontsize=11)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _rate(v: Optional[float]) -> str:
    if v is None:
        return "-"
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if v >= scale:
            return f"{v / scale:.3g}{unit}"
    return f"{v:.3g}"


def merge_section(existing: str, section: str) -> str:
    """``existing`` with its pipeline section replaced by ``section`` (or
    ``section`` appended when it has none)."""
    return SECTION.merge(existing, section)


def keep_section(path: str, text: str) -> str:
    """``text`` (a new report for ``path``) with the pipeline section that
    ``path`` holds now, if any, appended: ``pyflat bench --markdown`` rewrites
    the file, not the section this command wrote."""
    return SECTION.keep(path, text)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pyflat bench --pipeline", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="batches up to 128, a small DataLoader run, fewer repetitions")
    p.add_argument("--repeat", type=int, metavar="R",
                   help="interleaved loops per row (default 20, 5 with --quick)")
    p.add_argument("--no-torch", action="store_true", help="leave torch out even if installed")
    p.add_argument("--no-loader", action="store_true", help="skip the DataLoader part")
    p.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    p.add_argument("--markdown", metavar="PATH",
                   help="write (or replace) the pipeline section of this Markdown file")
    p.add_argument("--plot", metavar="PATH",
                   help="write a PNG of pyflat's speedups (needs matplotlib)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = parser()
    args = p.parse_args(argv)
    if args.plot:
        from .plot import require_matplotlib
        try:
            require_matplotlib()
        except ImportError as exc:
            p.error(str(exc))
    repeat = args.repeat or (5 if args.quick else 20)
    torch = None if args.no_torch else import_torch()
    torch_note = ("left out (--no-torch)" if args.no_torch
                  else "" if torch is not None else "torch is not installed")
    if torch_note:
        print(f"pyflat bench --pipeline: torch {torch_note}: torch figures and the "
              f"DataLoader part are skipped", file=sys.stderr)
    machine = describe(torch)
    calls = overhead.measure(overhead.table_cases(), repeat=10 if args.quick else 40)
    batches = measure_batches(workloads(QUICK_BATCHES if args.quick else BATCHES), torch,
                              repeat=repeat)
    loader = None
    if torch is not None and not args.no_loader:
        loader = (measure_loader(torch, samples=1024, batch=128, epochs=1) if args.quick
                  else measure_loader(torch))
    elif args.no_loader:
        torch_note = torch_note or "DataLoader part skipped (--no-loader)"
    report = PipelineReport(
        date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        command=shlex.join(["pyflat", "bench", "--pipeline", *argv]),
        machine=machine, calls=calls, batches=batches, loader=loader, torch_note=torch_note)
    print(report.text())
    if args.json:
        _write(args.json, report.to_json())
    if args.plot:
        _write(args.plot, render_png(report))
        report.plot = args.plot
    if args.markdown:
        if args.plot:
            report.plot_link = os.path.relpath(os.path.abspath(args.plot),
                                               os.path.dirname(os.path.abspath(args.markdown)))
        existing = ""
        if os.path.exists(args.markdown):
            with open(args.markdown, encoding="utf-8") as f:
                existing = f.read()
        _write(args.markdown, merge_section(existing, report.markdown_section()))
    return 0


def _write(path: str, text: "str | bytes") -> None:
    from .output import write_atomic
    write_atomic(path, text)
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
