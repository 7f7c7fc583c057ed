"""pyflat, numpy, torch and memcpy on every case of the catalog, grouped by
case: ``pytest bench/ --benchmark-only``.

The cases and implementations are those of ``pyflat bench``
(:mod:`pyflat.bench.cases`, :mod:`pyflat.bench.impls`); each result is
checked against numpy's before it is timed.
"""

from __future__ import annotations

import pytest

from pyflat.bench.cases import CASES
from pyflat.bench.impls import Unsupported, default_impls
from pyflat.bench.runner import is_right
from pyflat.threads import available_cpus

IMPLS = default_impls(sorted({1, available_cpus()}))

# Case-major order, so each case's input is built once.
PAIRS = [pytest.param(case, impl, id=f"{case.name}-{impl.name}-x{impl.threads}")
         for case in CASES for impl in IMPLS]


@pytest.mark.parametrize("case, impl", PAIRS)
def test_flatten(benchmark, case_input, case, impl):
    a, reference = case_input(case)
    try:
        work = impl.work(a, case)
    except Unsupported as exc:
        pytest.skip(str(exc))
    if work is None:
        pytest.skip(f"{impl.name}: {impl.cannot}")
    benchmark.group = case.name
    benchmark.extra_info.update(impl=impl.name, threads=impl.threads,
                                bytes=2 * reference.nbytes if impl.name == "memcpy"
                                else a.nbytes + reference.nbytes)
    with impl.setting(impl.threads):
        result = work()  # checked first; also the warm-up
        if result is not None:
            assert is_right(result, reference, case, impl)
        del result
        benchmark(work)
