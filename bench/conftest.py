"""pytest-benchmark suite options: ``pytest bench/ --benchmark-only [--bench-quick]``."""

from __future__ import annotations

import numpy as np
import pytest

from pyflat.bench.cases import Case, channels_last_view
from pyflat.bench.conversion import exact_result


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--bench-quick", action="store_true",
                     help="pyflat: the scaled-down sizes of 'pyflat bench --quick'")


@pytest.fixture(scope="session")
def case_input(request: pytest.FixtureRequest):
    """``case_input(case)`` -> (input, numpy's flattened result, converted
    with pyflat's meaning for a conversion case).

    Only the latest case is kept: the tests run case after case, and the
    full-size inputs are hundreds of megabytes.
    """
    quick = request.config.getoption("--bench-quick")
    latest: dict = {}

    def build(case: Case) -> tuple[np.ndarray, np.ndarray]:
        if case.name not in latest:
            latest.clear()
            a = case.make(quick=quick)
            flat = np.ascontiguousarray(channels_last_view(a, case.data_format))
            latest[case.name] = (a, exact_result(flat, case.convert))
        return latest[case.name]

    return build
