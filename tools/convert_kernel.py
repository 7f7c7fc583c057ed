"""Converting copies (issue 14): the kernel (pyflat._kernel.convert_into, one
thread, into a preallocated out=) against the traffic limit and numpy's
multi-pass expression, for the four catalog conversion cases.  One process,
interleaved, best of N.

The traffic limit is memcpy time of the output bytes scaled by
(bytes read + bytes written) / (2 x output bytes).

    PYTHONPATH=<build> python tools/convert_kernel.py [--reps N] [--threads T] [--small]
        [--simd none|sse2|avx2|avx512]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from pyflat import _kernel
from pyflat._pyflat import lib


def cases(small: bool) -> list:
    rng = np.random.default_rng(0)
    k = 4 if small else 1
    images = rng.integers(0, 256, (96 // k, 3, 160, 160), dtype=np.uint8)  # 29 MB of float32
    mean = np.array([0.485, 0.456, 0.406], np.float32) * 255
    std = np.array([0.229, 0.224, 0.225], np.float32) * 255
    table = np.asfortranarray(rng.standard_normal((500_000 // k, 20)))    # 40 MB of float32
    audio = rng.integers(-2**15, 2**15, (64 // k, 2, 80_000), dtype=np.int16)  # 41 MB
    return [
        ("uint8 NCHW images -> float32 NHWC / 255", np.moveaxis(images, 1, -1), np.float32,
         np.array([1 / 255], np.float32), None,
         lambda: np.moveaxis(images, 1, -1).reshape(len(images), -1).astype(np.float32) / 255),
        ("... per-channel mean/std", np.moveaxis(images, 1, -1), np.float32,
         (1 / std).astype(np.float32), (-mean / std).astype(np.float32),
         lambda: (np.moveaxis(images, 1, -1).astype(np.float32) - mean) / std),
        ("float64 Fortran table -> float32", table, np.float32, None, None,
         lambda: table.astype(np.float32, order="C")),
        ("int16 audio channels_first -> float32", np.moveaxis(audio, 1, -1), np.float32,
         None, None,
         lambda: np.moveaxis(audio, 1, -1).reshape(len(audio), -1).astype(np.float32)),
    ]



def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--small", action="store_true", help="quarter-size inputs")
    ap.add_argument("--simd", choices=["none", "sse2", "avx2", "avx512"],
                    help="force a SIMD level (default: the CPU's)")
    a = ap.parse_args()
    if a.simd:
        lib.pf_force_simd(getattr(lib, f"PF_SIMD_{a.simd.upper()}"))
    print(f"{'case':42s} {'MB out':>7s} {'kernel ms':>9s} {'limit ms':>8s} "
          f"{'of limit':>8s} {'numpy ms':>8s} {'x numpy':>7s}")
    for name, view, dt, scale, offset, expression in cases(a.small):
        out = np.ones(view.size, dt)
        src = np.ones(out.nbytes, np.uint8)
        dst = np.ones(out.nbytes, np.uint8)
        traffic = (view.nbytes + out.nbytes) / (2 * out.nbytes)
        tk = tm = tn = float("inf")
        for _ in range(a.reps):  # interleaved: the same machine state for all three
            t0 = time.perf_counter()
            assert _kernel.convert_into(view, out, scale, offset, a.threads)
            t1 = time.perf_counter()
            np.copyto(dst, src)
            t2 = time.perf_counter()
            expression()
            t3 = time.perf_counter()
            tk, tm, tn = min(tk, t1 - t0), min(tm, t2 - t1), min(tn, t3 - t2)
        limit = tm * traffic
        print(f"{name:42s} {out.nbytes / 1e6:7.1f} {tk * 1e3:9.2f} {limit * 1e3:8.2f} "
              f"{limit / tk:8.2f} {tn * 1e3:8.1f} {tn / tk:7.1f}")


if __name__ == "__main__":
    main()
