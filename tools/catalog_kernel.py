"""Kernel into out= vs memcpy (and numpy's copy) per catalog case, one
process, interleaved, best of N: a development aid that runs against any
build of pyflat (it only needs pyflat._kernel.copy_into).

    PYTHONPATH=<build> python tools/catalog_kernel.py [--threads T] [--reps N]
"""
import argparse
import time

import numpy as np

from pyflat import _kernel
from pyflat.bench import cases


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    for case in cases.CASES:
        x = case.make(quick=a.quick)
        v = cases.channels_last_view(x, case.data_format)
        if v.flags.c_contiguous:
            continue
        out = np.empty(v.size, v.dtype)
        out.view(np.uint8).fill(1)
        src = np.ones(v.nbytes, np.uint8)
        dst = np.ones(v.nbytes, np.uint8)
        tk = tm = tn = 1e9
        o = out.reshape(v.shape)
        for _ in range(a.reps):
            t0 = time.perf_counter(); _kernel.copy_into(v, out, a.threads, 0)
            t1 = time.perf_counter(); np.copyto(dst, src)
            t2 = time.perf_counter(); np.copyto(o, v)
            t3 = time.perf_counter()
            tk, tm, tn = min(tk, t1 - t0), min(tm, t2 - t1), min(tn, t3 - t2)
        assert out.tobytes() == np.ascontiguousarray(v).tobytes()
        print(f"{case.name:24s} {v.nbytes / 2**20:7.1f} MB  kernel/memcpy {tm / tk:5.2f}  "
              f"numpy/memcpy {tm / tn:5.2f}  kernel vs numpy {tn / tk:5.2f}x", flush=True)


if __name__ == "__main__":
    main()
