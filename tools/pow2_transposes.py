"""Transposes with power-of-two strides against their neighbours (a
development aid): the kernel and numpy's copy into a touched ``out``, as
fractions of memcpy of the same bytes, best of interleaved rounds, one
thread.  Power-of-two row strides put a tile's columns in a few cache
sets; the pairs (1024 vs 1000 rows, ...) show what that costs.

    PYTHONPATH=. python tools/pow2_transposes.py
"""
import time

import numpy as np

import pyflat
from pyflat import _kernel

# (shape, dtype, how): "2d" transposes a (cols, rows) array; "cf" moves
# axis 1 of an NCHW batch last (channels_first -> channels_last).
CASES = [((1024, 1024), "i2", "2d"), ((1000, 1000), "i2", "2d"),
         ((512, 512), "f8", "2d"), ((500, 500), "f8", "2d"),
         ((32, 128, 32, 32), "f2", "cf"), ((32, 128, 30, 30), "f2", "cf"),
         ((32, 32, 64, 64), "u1", "cf"), ((32, 32, 60, 60), "u1", "cf"),
         ((64, 64, 32, 32), "f4", "cf"), ((8, 3, 224, 224), "f4", "cf")]


def best(f, n=7):
    t = 1e9
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        t = min(t, time.perf_counter() - t0)
    return t


for shape, dtype, how in CASES:
    a = np.ones(shape[::-1] if how == "2d" else shape, dtype)
    view = a.T if how == "2d" else np.moveaxis(a, 1, -1)
    out = np.ones(view.size, dtype)
    m1, m2 = np.ones(view.nbytes, np.uint8), np.ones(view.nbytes, np.uint8)
    tk = tm = tn = 1e9
    for _ in range(3):
        tk = min(tk, best(lambda: _kernel.copy_into(view, out, 1, 0)))
        tm = min(tm, best(lambda: np.copyto(m1, m2)))
        tn = min(tn, best(lambda: np.copyto(out.reshape(view.shape), view)))
    plan = pyflat.explain(view, start_dim=0, num_threads=1)
    print(f"{dtype:3} {str(shape):18} {how}  {view.nbytes / 2**20:5.1f} MB  kernel {tm / tk:.2f}  "
          f"numpy {tm / tn:.2f} of memcpy  ({plan.kernel}: {plan.inner})")
