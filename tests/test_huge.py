"""Arrays of more than 2**31 elements: every offset past 2**31 (and 2**32)
must land right.  Strided views, so the kernel really runs, on uint8 so the
element count and the byte count both pass 2**31.  Each case needs about
4.3 GB; skipped, saying so, where the machine has less available."""

from __future__ import annotations

import numpy as np
import pytest

import pyflat

N = 2**31 + 2**12          # elements (and bytes) in the source and the output
PERIOD = 251               # prime: 2**31 and 2**32 are not multiples of it
CHUNK = 2**24              # rows compared at a time: bounded temporaries

pytestmark = pytest.mark.slow


def available_bytes() -> int:
    """MemAvailable from /proc/meminfo (0 where there is none)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@pytest.fixture
def source() -> np.ndarray:
    """N bytes where byte p holds p % PERIOD: an offset cut to 31 or 32 bits
    reads a different value."""
    need = 2 * N + (1 << 30)
    if available_bytes() < need:
        pytest.skip(f"needs {need / 2**30:.1f} GiB of available memory, "
                    f"this machine has {available_bytes() / 2**30:.1f} GiB")
    block = (np.arange(PERIOD * 2**16) % PERIOD).astype(np.uint8)  # starts at phase 0
    src = np.empty(N, np.uint8)
    for start in range(0, N, block.size):
        part = src[start:start + block.size]
        part[...] = block[:part.size]
    return src


@pytest.mark.parametrize("rows, kernel", [(8, "transpose"), (2, "gather")])
def test_transpose_past_2_to_the_31(source, rows, kernel):
    # (rows, N/rows), strides (1, rows): a tiled transpose from 8 rows on,
    # a strided gather per row below that (the planner's choice).
    view = source.reshape(N // rows, rows).T
    plan = pyflat.explain(view, start_dim=0)
    assert plan.kernel == kernel and plan.nbytes == N
    out = pyflat.flatten(view)
    length = N // rows
    for row in range(rows):
        for start in range(0, length, CHUNK):
            stop = min(start + CHUNK, length)
            assert np.array_equal(out[row * length + start:row * length + stop],
                                  view[row, start:stop]), (row, start)


def test_threaded_reverse_past_2_to_the_31(source):
    rows = source.reshape(N // 64, 64)
    view = rows[:, ::-1]                                  # innermost stride -1
    plan = pyflat.explain(view, start_dim=0, num_threads=2)
    assert plan.kernel == "reverse" and plan.num_threads == 2 and plan.nbytes == N
    out = pyflat.flatten(view, num_threads=2).reshape(rows.shape)
    for start in range(0, len(rows), CHUNK // 64):
        stop = start + CHUNK // 64
        assert np.array_equal(out[start:stop], rows[start:stop, ::-1]), start * 64
