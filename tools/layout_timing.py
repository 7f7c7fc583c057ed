"""Side-by-side timing of the kernel on random layouts (a development aid).

For each random layout, in one process, interleaved, best of N:
kernel into out= ; memcpy of the output bytes ; numpy's copy into out ;
pyflat end to end (flatten, allocating) ; numpy end to end (reshape copy).
Prints per-layout fraction of the traffic limit and summary figures.

    PYTHONPATH=. python tools/layout_timing.py --n 100 --seed 1 --threads 1
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import pyflat
from pyflat import _kernel

DTYPES = ["u1", "u1", "b1", "i2", "f2", "u2", "f4", "f4", "i4", "f8", "f8", "i8", "c8", "c16",
          "V3", "V5", "V6", "V7", "V12", "V24", "S5", "U3", "V10", "V32", "V16", "S3"]


def lines_touched(view: np.ndarray) -> int:
    """Distinct 64-byte source lines the view touches."""
    e = view.dtype.itemsize
    base = view.__array_interface__["data"][0]
    shape, strides = view.shape, view.strides
    if view.size == 0:
        return 0
    low = base + sum(min(0, (n - 1) * s) for n, s in zip(shape, strides))
    high = base + sum(max(0, (n - 1) * s) for n, s in zip(shape, strides)) + e
    lo_line = low // 64
    marks = np.zeros(high // 64 - lo_line + 2, bool)
    # offsets of all elements, chunked over axis 0
    inner = np.zeros(1, np.int64)
    for n, s in zip(shape[1:], strides[1:]):
        inner = (inner[:, None] + np.arange(n, dtype=np.int64)[None, :] * s).ravel()
    first = np.arange(shape[0], dtype=np.int64) * strides[0] + base
    step = max(1, (4 << 20) // max(inner.size, 1))
    for i in range(0, shape[0], step):
        off = (first[i:i + step, None] + inner[None, :]).ravel()
        marks[off // 64 - lo_line] = True
        marks[(off + e - 1) // 64 - lo_line] = True
    return int(marks.sum())


def random_layout(rng):
    dt = np.dtype(str(rng.choice(DTYPES)))
    e = dt.itemsize
    target = int(np.exp(rng.uniform(np.log(1 << 20), np.log(40 << 20))))
    ndim = int(rng.integers(2, 6))
    kind = str(rng.choice(["permuted", "sliced", "reversed", "fortran", "channels_first",
                           "broadcast", "tiny_inner", "batch_moved", "mixed"]))
    # base shape: random sides, tiny ones sometimes
    sides = []
    for d in range(ndim - 1):
        if rng.random() < (0.6 if kind == "tiny_inner" else 0.25):
            sides.append(int(rng.integers(2, 5)))
        else:
            sides.append(int(rng.integers(2, 300)))
    per = max(1, int(np.prod(sides)) * e)
    n = max(2, target // per)
    shape = [n] + sides
    if kind != "batch_moved" and rng.random() < 0.5:
        pass
    # slicing multiplies source size
    steps = [1] * ndim
    starts = [0] * ndim
    if kind in ("sliced", "mixed"):
        for d in rng.choice(ndim, int(rng.integers(1, ndim + 1)), replace=False):
            steps[d] = int(rng.integers(1, 5))
            starts[d] = int(rng.integers(0, 3))
    if kind in ("reversed", "mixed"):
        for d in rng.choice(ndim, int(rng.integers(1, 3)), replace=False):
            steps[d] = -steps[d]
    while True:
        base_shape = [shape[d] * abs(steps[d]) + starts[d] for d in range(ndim)]
        total = int(np.prod(base_shape)) * e
        if total <= 160 << 20 or max(shape) <= 2:
            break
        big = int(np.argmax(shape))
        shape[big] = max(2, shape[big] // 2)
    data = np.frombuffer(rng.bytes(total), dtype=np.uint8).view(dt).reshape(base_shape) if total else None
    if kind == "fortran":
        data = np.asfortranarray(data)
    if kind == "broadcast":
        ax = int(rng.integers(1, ndim))
        data = data.take([0], axis=ax)
        data = np.broadcast_to(data, base_shape)
    idx = []
    for d in range(ndim):
        length = shape[d]
        if steps[d] > 0:
            idx.append(slice(starts[d], starts[d] + length * steps[d], steps[d]))
        else:
            st = -steps[d]
            idx.append(slice(starts[d] + (length - 1) * st, None if starts[d] == 0 else starts[d] - 1, -st))
    view = data[tuple(idx)] if data is not None else None
    if kind in ("permuted", "mixed", "batch_moved"):
        perm = list(rng.permutation(ndim))
        view = view.transpose(perm)
    if kind == "channels_first" or (kind in ("mixed", "tiny_inner") and rng.random() < 0.5):
        view = np.moveaxis(view, 1, -1)
    return kind, view


def best(fn, reps):
    t = 1e9
    for _ in range(reps):
        t0 = time.perf_counter(); fn(); t = min(t, time.perf_counter() - t0)
    return t


def measure(view, threads, reps=7):
    nbytes = view.nbytes
    out = np.empty(view.size, view.dtype)
    out.view(np.uint8).fill(1)
    msrc = np.ones(nbytes, np.uint8)
    mdst = np.ones(nbytes, np.uint8)
    # for multi-thread memcpy: 2-d contiguous view through the kernel (runs of >= 64 KiB)
    rowb = 1 << 16
    mview = msrc[: nbytes // rowb * rowb].reshape(-1, rowb)[:, :]
    mview = np.lib.stride_tricks.as_strided(mview, mview.shape, (rowb, 1))
    mo = mdst[: mview.size]
    ts = {"k": 1e9, "m": 1e9, "np": 1e9, "pe": 1e9, "ne": 1e9}
    oshape = out.reshape(view.shape)
    n0 = view.shape[0]
    for _ in range(reps):
        t0 = time.perf_counter(); _kernel.copy_into(view, out, threads, 0); t1 = time.perf_counter()
        ts["k"] = min(ts["k"], t1 - t0)
        t0 = time.perf_counter()
        if threads == 1:
            np.copyto(mdst, msrc)
        else:
            _kernel.copy_into(mview, mo, threads, 0)
        t1 = time.perf_counter()
        ts["m"] = min(ts["m"], (t1 - t0) * (nbytes / (mview.size if threads > 1 else nbytes)))
        t0 = time.perf_counter(); np.copyto(oshape, view); t1 = time.perf_counter()
        ts["np"] = min(ts["np"], t1 - t0)
        t0 = time.perf_counter(); r = pyflat.ascontiguousarray(view, num_threads=threads); t1 = time.perf_counter()
        ts["pe"] = min(ts["pe"], t1 - t0); del r
        t0 = time.perf_counter(); r = np.ascontiguousarray(view); t1 = time.perf_counter()
        ts["ne"] = min(ts["ne"], t1 - t0); del r
    assert out.tobytes() == np.ascontiguousarray(view).tobytes()
    return ts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--worst", type=int, default=12)
    ap.add_argument("--explain", action="store_true")
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    rows = []
    for i in range(a.n):
        kind, view = random_layout(rng)
        if view.flags.c_contiguous or view.nbytes < (1 << 20):
            continue
        lines = lines_touched(view)
        traffic = (lines * 64 + view.nbytes) / (2 * view.nbytes)
        ts = measure(view, a.threads, a.reps)
        limit = ts["m"] * traffic
        frac = limit / ts["k"]
        rows.append((frac, ts["np"] / ts["k"], ts["ne"] / ts["pe"], kind, view, traffic))
        print(f"{i:4d} {frac:5.2f} np/k {ts['np']/ts['k']:5.2f} e2e {ts['ne']/ts['pe']:5.2f} "
              f"{kind:14s} {view.dtype.str:5s} {view.shape} {view.strides} traffic {traffic:.2f}",
              flush=True)
    fr = np.array([r[0] for r in rows])
    e2e = np.array([r[2] for r in rows])
    nk = np.array([r[1] for r in rows])
    print(f"\nlayouts {len(rows)}  threads {a.threads}  seed {a.seed}")
    print(f"fraction of limit: min {fr.min():.2f} p10 {np.percentile(fr, 10):.2f} "
          f"median {np.median(fr):.2f}")
    print(f"end to end slower than numpy (<0.95): {(e2e < 0.95).sum()}  "
          f"kernel-into-out slower than numpy copyto (<0.95): {(nk < 0.95).sum()}")
    print(f"e2e numpy/pyflat: min {e2e.min():.2f} median {np.median(e2e):.2f}")
    for r in sorted(rows, key=lambda r: r[0])[: a.worst]:
        print(f"  worst {r[0]:.2f} np/k {r[1]:.2f} e2e {r[2]:.2f} {r[3]} {r[4].dtype.str} "
              f"{r[4].shape} {r[4].strides}")
        if a.explain:
            print(pyflat.explain(r[4], start_dim=0))


if __name__ == "__main__":
    main()
