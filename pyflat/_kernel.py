"""The binding to the C kernel: one copy primitive, one plan, one error mapper.

Everything here assumes arguments already checked by the public API: ``view``
is an ndarray without object fields and ``out`` is a C-contiguous, writeable
ndarray with the same dtype and number of elements that does not overlap it.
"""

from __future__ import annotations

import numpy as np

from ._pyflat import ffi, lib

_EXCEPTIONS = {
    lib.PF_ERR_NOMEM: MemoryError,
    lib.PF_ERR_OVERFLOW: OverflowError,
}


def check(status: int) -> None:
    """Raise the Python exception for a C status code (the only place)."""
    if status != lib.PF_OK:
        message = ffi.string(lib.pf_strerror(status)).decode()
        raise _EXCEPTIONS.get(status, ValueError)(f"pyflat kernel: {message}")


def _address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def copy_into(view: np.ndarray, out: np.ndarray, num_threads: int = 0) -> None:
    """Copy ``view`` in C order into the contiguous buffer of ``out``.

    Runs with the GIL released (cffi drops it around the call).
    """
    check(lib.pf_copy(ffi.cast("const char *", _address(view)),
                      ffi.cast("char *", _address(out)),
                      view.ndim, view.shape, view.strides,
                      view.dtype.itemsize, num_threads))


def make_plan(view: np.ndarray, num_threads: int = 0):
    """The C plan (a ``pf_plan *``) for copying ``view``."""
    plan = ffi.new("pf_plan *")
    check(lib.pf_plan_make(plan, view.ndim, view.shape, view.strides,
                           view.dtype.itemsize, num_threads))
    return plan


def kernel_name(kernel: int) -> str:
    return ffi.string(lib.pf_kernel_name(kernel)).decode()


def simd_name(simd: int) -> str:
    return ffi.string(lib.pf_simd_name(simd)).decode()
