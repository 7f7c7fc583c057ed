"""Per-call cost of small inputs: pyflat against numpy's equivalent, side by
side in one process (issue 13's "lean calls" table).

Each row times a loop of calls of pyflat and of numpy's equivalent,
interleaved, ``repeat`` times, and keeps the best loop of each; the ratio
(pyflat's time over numpy's) is what to read, absolute times on a shared
machine are noise.  Run it with::

    python -m pyflat.bench.overhead            # the table, ~20 s
    python -m pyflat.bench.overhead --sweep    # plus every layout up to 64 KB
    python -m pyflat.bench.overhead --import-time

Every row first checks that both give the same bytes.
"""

from __future__ import annotations

import argparse
import sys
import timeit
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

import pyflat

__all__ = ["Row", "OverheadCase", "table_cases", "sweep_cases", "measure", "format_rows", "main"]


@dataclass(frozen=True)
class OverheadCase:
    """One call, pyflat's and numpy's: statements timed with ``env`` as globals."""

    name: str
    description: str
    pyflat_stmt: str
    numpy_stmt: str
    env: Dict[str, Any]
    target: Optional[float] = None  # the bound on pyflat / numpy, if any


@dataclass(frozen=True)
class Row:
    case: OverheadCase
    pyflat_ns: float
    numpy_ns: float

    @property
    def ratio(self) -> float:
        """pyflat's time over numpy's (below 1: pyflat is faster)."""
        return self.pyflat_ns / self.numpy_ns

    @property
    def meets_target(self) -> Optional[bool]:
        return None if self.case.target is None else self.ratio <= self.case.target


def _env(**names: Any) -> Dict[str, Any]:
    return {"np": np, "pyflat": pyflat, **names}


def table_cases() -> List[OverheadCase]:
    """The rows of issue 13's table (and the layer's call)."""
    x = np.arange(32 * 3 * 8 * 8, dtype=np.float32).reshape(32, 3, 8, 8)
    u8 = (np.arange(32 * 3 * 8 * 8) % 251).astype(np.uint8).reshape(32, 3, 8, 8)
    strided = np.arange(8 * 16, dtype=np.float32).reshape(8, 16)[:, ::2]  # 256 bytes out
    layer = pyflat.Flatten()
    cases = [
        OverheadCase("batch_flatten_view", "batch_flatten, contiguous (32,3,8,8) float32 (zero-copy)",
                     "f(x)", "x.reshape(len(x), -1)",
                     _env(f=pyflat.batch_flatten, x=x), 1.5),
        OverheadCase("layer_view", "Flatten()(x), contiguous (32,3,8,8) float32 (zero-copy)",
                     "layer(x)", "x.reshape(len(x), -1)", _env(layer=layer, x=x), 1.5),
        OverheadCase("flatten_view", "flatten(x, 1), contiguous (32,3,8,8) float32 (zero-copy)",
                     "f(x, 1)", "x.reshape(len(x), -1)", _env(f=pyflat.flatten, x=x), 1.5),
        OverheadCase("ascontiguous_noop", "ascontiguousarray of a contiguous array (returns it)",
                     "f(x)", "g(x)",
                     _env(f=pyflat.ascontiguousarray, g=np.ascontiguousarray, x=x), 2.5),
        OverheadCase("copy_256B", "batch_flatten, 256-byte strided copy (8,16)[:, ::2] float32",
                     "f(a)", numpy_statement(strided, "channels_last"),
                     _env(f=pyflat.batch_flatten, a=strided), 1.2),
        OverheadCase("ascontiguous_256B", "ascontiguousarray, 256-byte strided copy",
                     "f(a)", "g(a)",
                     _env(f=pyflat.ascontiguousarray, g=np.ascontiguousarray, a=strided), 1.2),
        OverheadCase("channels_first_u8_6KB",
                     "batch_flatten channels_first, uint8 (32,3,8,8) (6 KB)",
                     "f(x, data_format='channels_first')",
                     "x.transpose(0, 2, 3, 1).reshape(len(x), -1)",
                     _env(f=pyflat.batch_flatten, x=u8), 1 / 3),
    ]
    return cases


def numpy_statement(a: np.ndarray, data_format: str) -> str:
    """numpy's cheapest expression for ``batch_flatten(a, data_format=...)``:
    a reshape, plus np.ascontiguousarray where the reshape can return a view
    that is not C-contiguous (a C-contiguous result is part of the job)."""
    if data_format == "channels_first" and a.ndim > 2:
        axes = (0, *range(2, a.ndim), 1)
        stmt, view = f"a.transpose({axes}).reshape(len(a), -1)", a.transpose(axes)
    else:
        stmt, view = "a.reshape(len(a), -1)", a
    if not view.reshape(len(a), -1).flags.c_contiguous:
        stmt = f"np.ascontiguousarray({stmt})"
    return stmt


def _filled(shape: Any, dtype: Any = np.float32) -> np.ndarray:
    """Distinct-ish values, so that a copy in the wrong order shows."""
    size = int(np.prod(shape))
    return (np.arange(size) % 97).astype(dtype).reshape(shape)


def _sweep_layouts(nbytes: int) -> Dict[str, Any]:
    """Copying layouts whose output is about ``nbytes`` bytes, with the
    data_format to flatten them with (float32 unless named)."""
    rows = max(nbytes // 4 // 16, 1)
    cf_batch = max(nbytes // 4 // (3 * 8 * 8), 1)
    return {
        "rows_sliced": (_filled((rows, 32))[:, :16], "channels_last"),
        "step2_gather": (_filled((rows, 32))[:, ::2], "channels_last"),
        "fortran": (np.asfortranarray(_filled((rows, 16))), "channels_last"),
        "reversed": (_filled((rows, 16))[:, ::-1], "channels_last"),
        "channels_first_f32": (_filled((cf_batch, 3, 8, 8)), "channels_first"),
        "channels_first_u8": (_filled((max(nbytes // 192, 1), 3, 8, 8), np.uint8),
                              "channels_first"),
        "channels_first_f64": (_filled((max(nbytes // 8 // 48, 1), 3, 4, 4), np.float64),
                               "channels_first"),
        "tabular_cols_f64": (_filled((6, max(nbytes // 48, 1)), np.float64).T, "channels_last"),
        "nhwc_view_f32": (_filled((cf_batch, 3, 8, 8)).transpose(0, 2, 3, 1), "channels_last"),
        "batch_slice_f64": (_filled((max(nbytes // 960, 1) * 2, 20, 6), np.float64)[::2],
                            "channels_last"),
    }


def sweep_cases(sizes: Sequence[int] = (256, 4096, 65536)) -> List[OverheadCase]:
    """batch_flatten against numpy on copying layouts up to 64 KB: the issue
    wants none slower than numpy."""
    cases = []
    for nbytes in sizes:
        for name, (a, fmt) in _sweep_layouts(nbytes).items():
            cases.append(OverheadCase(
                f"{name}_{nbytes}B", f"{name}: {fmt}, {a.dtype} {a.shape} ({a.nbytes} B)",
                f"f(a, data_format={fmt!r})", numpy_statement(a, fmt),
                _env(f=pyflat.batch_flatten, a=a), 1.0))
    return cases


def _check(case: OverheadCase) -> None:
    got = eval(case.pyflat_stmt, dict(case.env))  # noqa: S307 (our own statements)
    want = eval(case.numpy_stmt, dict(case.env))  # noqa: S307
    got_a, want_a = np.asarray(got), np.asarray(want)
    if got_a.shape != want_a.shape or got_a.tobytes() != want_a.tobytes():
        raise AssertionError(f"{case.name}: pyflat's result differs from numpy's")


def _loop_count(timer: timeit.Timer, loop_s: float) -> int:
    number = 1
    while timer.timeit(number) < loop_s and number < 1 << 20:
        number *= 2
    return number


def measure(cases: Sequence[OverheadCase], repeat: int = 40, loop_s: float = 0.0005,
            progress: Callable[[str], None] = lambda s: None) -> List[Row]:
    """Best loop per side over ``repeat`` interleaved rounds, in ns per call.

    Loops are short (about ``loop_s``) and many: on a shared machine the best
    of many short loops finds the quiet moments that a few long ones miss."""
    rows = []
    for case in cases:
        progress(case.name)
        _check(case)
        timers = [timeit.Timer(case.pyflat_stmt, globals=dict(case.env)),
                  timeit.Timer(case.numpy_stmt, globals=dict(case.env))]
        number = max(_loop_count(t, loop_s) for t in timers)
        best = [float("inf"), float("inf")]
        for _ in range(repeat):
            for i, timer in enumerate(timers):
                best[i] = min(best[i], timer.timeit(number) / number * 1e9)
        rows.append(Row(case, best[0], best[1]))
    return rows


def _ns(t: float) -> str:
    return f"{t / 1000:.2f} us" if t >= 1000 else f"{t:.0f} ns"


def format_rows(rows: Sequence[Row], markdown: bool = True) -> str:
    head = ["call", "pyflat", "numpy", "pyflat / numpy", "target"]
    lines = []
    for row in rows:
        target = row.case.target
        mark = "" if target is None else f"<= {target:.2f}x " + ("ok" if row.meets_target else "MISSED")
        lines.append([row.case.description, _ns(row.pyflat_ns), _ns(row.numpy_ns),
                      f"{row.ratio:.2f}x", mark])
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|---|---:|---:|---:|---|"]
        out += ["| " + " | ".join(line) + " |" for line in lines]
        return "\n".join(out)
    widths = [max(len(x) for x in col) for col in zip(head, *lines)]
    fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    return "\n".join(fmt.format(*line) for line in [head, *lines])


def import_times(modules: Sequence[str] = ("numpy", "pyflat"), repeat: int = 15
                 ) -> Dict[str, float]:
    """Best cumulative ``python -X importtime -c "import M"`` of each module,
    in microseconds, fresh interpreters taking turns."""
    import os
    import subprocess
    best = {m: float("inf") for m in modules}
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    for _ in range(repeat):
        for m in modules:
            err = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {m}"],
                                 capture_output=True, text=True, env=env, check=True).stderr
            for line in err.splitlines():
                parts = line.split("|")
                if len(parts) == 3 and parts[2].strip() == m:
                    best[m] = min(best[m], float(parts[1]))
    return best


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pyflat.bench.overhead", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=40, help="interleaved rounds (best kept)")
    p.add_argument("--sweep", action="store_true",
                   help="also batch_flatten on 9 copying layouts at 256 B, 4 KB, 64 KB")
    p.add_argument("--markdown", action="store_true", help="print Markdown tables")
    p.add_argument("--import-time", action="store_true",
                   help="only: import numpy against import pyflat (-X importtime, best of 15)")
    args = p.parse_args(argv)
    if args.import_time:
        times = import_times()
        print(f"import numpy: {times['numpy'] / 1000:.1f} ms; import pyflat (numpy included): "
              f"{times['pyflat'] / 1000:.1f} ms, {times['pyflat'] / times['numpy']:.2f}x numpy's "
              f"(best of 15 fresh interpreters each, taking turns)")
        return 0
    rows = measure(table_cases(), args.repeat)
    print(format_rows(rows, args.markdown))
    if args.sweep:
        print()
        sweep = measure(sweep_cases(), args.repeat)
        print(format_rows(sweep, args.markdown))
        slower = [r.case.name for r in sweep if r.ratio > 1.0]
        print(f"\n{len(slower)} of {len(sweep)} layouts slower than numpy"
              + (f": {', '.join(slower)}" if slower else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
