"""A description of the machine and software a benchmark ran on."""

from __future__ import annotations

import os
import platform
from typing import Any, Optional

import numpy as np

import pyflat
from pyflat.threads import available_cpus

__all__ = ["describe", "cpu_model"]


def cpu_model() -> str:
    """The CPU's model name (``lscpu``'s "Model name"), or the architecture."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _simd() -> str:
    """The SIMD variant pyflat's transpose kernel uses here."""
    return pyflat.explain(np.zeros((2, 64, 64), np.float32), data_format="channels_first").simd


def _convert_loop() -> str:
    """The conversion step of uint8 images to float32 / 255 here (which loop,
    which SIMD), as explain() says."""
    plan = pyflat.explain(np.zeros((2, 3, 64, 64), np.uint8),
                          data_format="channels_first", dtype=np.float32, scale=1 / 255)
    return str(plan.conversion)


def describe(torch: Any = None) -> dict[str, Any]:
    """CPU model, core counts, OS, load average, and the versions of Python,
    numpy, pyflat and ``torch`` (a module, or None when it is not used)."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "available_cpus": available_cpus(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pyflat": pyflat.__version__,
        "pyflat_simd": _simd(),
        "pyflat_convert": _convert_loop(),
        "torch": None if torch is None else torch.__version__,
        "torch_threads": None if torch is None else torch.get_num_threads(),
        "load_average": _load_average(),
    }


def _load_average() -> Optional[float]:
    """The 1-minute load average: other work competing for the CPUs."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # not available on this platform
        return None
