"""Small and medium conversions: pyflat.batch_flatten(x, dtype=..., scale=...)
against numpy's best simple expression for the same result, on a sweep of
layouts, source dtypes and sizes (100 B to 1 MB of output).  One process,
interleaved, best of N; a ratio above 1 means pyflat is slower.

numpy's expressions (the fastest of them counts):
    np.ascontiguousarray(v.reshape(n, -1)).astype(dt) [* scale]   (two passes when v is
                                                     strided; C order, as pyflat's result)
    np.ascontiguousarray(v, dt) [* scale]            (one strided cast)
where v is the channels_last view; integer sources are scaled by 1/255.

    PYTHONPATH=<build> python tools/convert_sweep.py [--quick] [--path]
"""
from __future__ import annotations

import argparse
import timeit
from typing import Any, Callable, List, Tuple

import numpy as np

import pyflat

SOURCES = [np.uint8, np.int16, np.float64, np.float32]


def _destination(src: Any) -> Any:
    return np.float64 if np.dtype(src) == np.float32 else np.float32


def _layout(kind: str, src: Any, out_bytes: int, rng: np.random.Generator
            ) -> Tuple[np.ndarray, str]:
    """An input of about ``out_bytes`` of output, and its data format."""
    items = max(out_bytes // np.dtype(_destination(src)).itemsize, 8)

    def values(shape: Tuple[int, ...]) -> np.ndarray:
        if np.dtype(src).kind == "f":
            return rng.standard_normal(shape).astype(src)
        return rng.integers(0, 100, shape).astype(src)

    if kind == "contiguous":
        return values((max(items // 10, 1), 10)), "channels_last"
    if kind == "channels_first":
        side = max(int((items / 3 / 8) ** 0.5), 1)  # batches of 8 images, 3 channels
        return values((8, 3, side, side)), "channels_first"
    if kind == "fortran":
        return np.asfortranarray(values((max(items // 20, 1), 20))), "channels_last"
    if kind == "sliced":
        return values((max(items // 100, 1), 20, 6))[:, :, 1:], "channels_last"
    if kind == "nhwc_view":  # an NCHW array seen as NHWC
        side = max(int((items / 3 / 8) ** 0.5), 1)
        return values((8, 3, side, side)).transpose(0, 2, 3, 1), "channels_last"
    raise ValueError(kind)


LAYOUTS = ["contiguous", "channels_first", "fortran", "sliced", "nhwc_view"]
SIZES = [100, 1000, 10_000, 100_000, 1_000_000]


def _best(funcs: List[Callable[[], Any]], reps: int) -> List[float]:
    """Best time of each function in seconds, interleaved."""
    number = max(1, int(0.002 / max(timeit.timeit(funcs[0], number=1), 1e-7)))
    best = [float("inf")] * len(funcs)
    for _ in range(reps):
        for i, f in enumerate(funcs):
            best[i] = min(best[i], timeit.timeit(f, number=number) / number)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--path", action="store_true", help="show the path explain() names")
    a = ap.parse_args()
    reps = 3 if a.quick else 7
    rng = np.random.default_rng(0)
    slower = total = 0
    print(f"{'layout':15s} {'src':8s} {'dst':8s} {'out B':>8s} {'pyflat us':>10s} "
          f"{'numpy us':>9s} {'ratio':>6s}")
    for kind in LAYOUTS:
        for src in SOURCES:
            for size in SIZES:
                x, fmt = _layout(kind, src, size, rng)
                dt = _destination(src)
                scale = 1 / 255 if np.dtype(src).kind in "iu" else None
                v = np.moveaxis(x, 1, -1) if fmt == "channels_first" else x
                n = len(x)
                sc = None if scale is None else np.asarray(scale, dt)

                def ours() -> Any:
                    return pyflat.batch_flatten(x, data_format=fmt, dtype=dt, scale=scale)

                def two_pass() -> Any:  # (C order, as pyflat's: no F-order shortcut)
                    r = np.ascontiguousarray(v.reshape(n, -1)).astype(dt)
                    return r if sc is None else r * sc

                def one_pass() -> Any:
                    r = np.ascontiguousarray(v, dt)
                    return r if sc is None else r * sc

                ref = one_pass().reshape(n, -1)
                assert ours().tobytes() == ref.tobytes(), (kind, src, size)
                t_ours, t_two, t_one = _best([ours, two_pass, one_pass], reps)
                t_np = min(t_two, t_one)
                ratio = t_ours / t_np
                total += 1
                slower += ratio > 1.0
                path = ""
                if a.path:
                    path = "  " + pyflat.explain(x, data_format=fmt, dtype=dt,
                                                 scale=scale).conversion
                print(f"{kind:15s} {np.dtype(src).name:8s} {np.dtype(dt).name:8s} "
                      f"{ref.nbytes:8d} {t_ours * 1e6:10.2f} {t_np * 1e6:9.2f} "
                      f"{ratio:6.2f}{' SLOWER' if ratio > 1.0 else ''}{path}", flush=True)
    print(f"pyflat slower than numpy in {slower} of {total} cases")


if __name__ == "__main__":
    main()
