"""Explain and time one layout of the performance fuzzer (development aid):
the kernel and numpy's copy into a touched ``out``, then both end to end
(pyflat.batch_flatten on one thread, numpy's ascontiguousarray).

    PYTHONPATH=. python tools/fuzz_one.py SEED INDEX [INDEX ...]
"""
import sys
import time

import numpy as np

import pyflat
from pyflat import _kernel
from pyflat.bench import fuzz


def best(f, n=7):
    t = 1e9
    for _ in range(n):
        t0 = time.perf_counter(); f(); t = min(t, time.perf_counter() - t0)
    return t


seed = int(sys.argv[1])
for index in map(int, sys.argv[2:]):
    layout = fuzz.draw(seed, index)
    a = fuzz.make_array(layout)
    view = fuzz.flattened_view(layout, a)
    out = np.empty(view.size, view.dtype)
    out.view(np.uint8).fill(1)
    m1, m2 = np.ones(view.nbytes, np.uint8), np.ones(view.nbytes, np.uint8)
    n, fmt = len(a), layout.data_format
    tk = tm = tn = te = tp = 1e9
    for _ in range(7):
        tk = min(tk, best(lambda: _kernel.copy_into(view, out, 1, 0), 1))
        tm = min(tm, best(lambda: np.copyto(m1, m2), 1))
        tn = min(tn, best(lambda: np.copyto(out.reshape(view.shape), view), 1))
        te = min(te, best(lambda: np.ascontiguousarray(view).reshape(n, -1), 3))
        tp = min(tp, best(lambda: pyflat.batch_flatten(a, data_format=fmt, num_threads=1), 3))
    assert out.tobytes() == np.ascontiguousarray(view).tobytes()
    print(f"#{index}: {view.dtype} {view.shape} {view.strides}: kernel {tm / tk:.3f} of memcpy, "
          f"numpy {tm / tn:.3f} of memcpy (both into a touched out), {view.nbytes / 2**20:.1f} MB; "
          f"kernel {tk * 1e6:.0f} us, memcpy {tm * 1e6:.0f} us, numpy {tn * 1e6:.0f} us; end to end: pyflat {tp * 1e6:.0f} us, numpy {te * 1e6:.0f} us")
    print(pyflat.explain(view, start_dim=0, num_threads=1))
