"""pyflat, numpy, torch and memcpy on every case of the catalog, grouped by
case: ``pytest bench/ --benchmark-only``.

The cases and implementations are those of ``pyflat bench``
(:mod:`pyflat.bench.cases`, :mod:`pyflat.bench.impls`); each result is
checked against numpy's before it is timed.
"""

from __future__ import annotations

import numpy as np
import pytest

from pyflat.bench.cases import CASES
from pyflat.bench.impls import default_impls, output_nbytes
from pyflat.threads import available_cpus

IMPLS = default_impls(sorted({1, available_cpus()}))

# Case-major order, so each case's input is built once.
PAIRS = [pytest.param(case, impl, id=f"{case.name}-{impl.name}-x{impl.threads}")
         for case in CASES for impl in IMPLS]


@pytest.mark.parametrize("case, impl", PAIRS)
def test_flatten(benchmark, case_input, case, impl):
    a, reference = case_input(case)
    work = impl.work(a, case.data_format)
    if work is None:
        pytest.skip(f"{impl.name} cannot take this input (negative strides, records, strings)")
    benchmark.group = case.name
    benchmark.extra_info.update(impl=impl.name, threads=impl.threads,
                                bytes=2 * output_nbytes(a))
    with impl.setting(impl.threads):
        result = work()  # checked first; also the warm-up
        if result is not None:
            assert result.shape == reference.shape and result.dtype == reference.dtype
            assert np.array_equal(result.reshape(-1).view(np.uint8),
                                  reference.reshape(-1).view(np.uint8))
        del result
        benchmark(work)
