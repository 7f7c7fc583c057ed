"""The binding to the C kernel: one copy primitive, one plan, one error mapper.

Everything here assumes arguments already checked by the public API: ``view``
is an ndarray without object fields and ``out`` is a C-contiguous, writeable
ndarray with the same dtype and number of elements that does not overlap it.
"""

from __future__ import annotations

from typing import Any

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


def copy_into(view: np.ndarray, out: np.ndarray, num_threads: int = 0,
              decline_simple_below: int = 0) -> bool:
    """Copy ``view`` in C order into the contiguous buffer of ``out``.

    Returns False, having copied nothing, when the plan's cost model expects
    numpy to be faster (``explain().numpy_faster``), or for a single-threaded
    copy of contiguous runs of 256 bytes or more, of fewer than
    ``decline_simple_below`` bytes (numpy runs the same memcpy loops, at a
    lower call cost).  Runs with the GIL
    released (cffi drops it around the call); the C side reads a private view
    of ``view``, which no other thread can reshape meanwhile.
    """
    private = view.view()
    status = _copy_ndarray(id(private), _from_buffer(out), view.itemsize, num_threads,
                           decline_simple_below)
    if status == _OK:  # the common case first: every name here is prebound
        return True
    if status == _DECLINED:
        return False
    check(status)
    return True


# Prebound for copy_into, whose cost matters for small copies: cffi's lib
# attributes are looked up on each access otherwise.
_copy_ndarray, _from_buffer = lib.pf_copy_ndarray, ffi.from_buffer

# The address of pf_copy_ndarray, for the C entries (pyflat/_fastcall.c calls
# it with this signature: keep them in step).
COPY_NDARRAY_ADDRESS = int(ffi.cast("uintptr_t", ffi.addressof(lib, "pf_copy_ndarray")))
_OK, _DECLINED = lib.PF_OK, lib.PF_DECLINED


def make_plan(view: np.ndarray, num_threads: int = 0) -> Any:
    """The C plan (a ``pf_plan *``) for copying ``view``."""
    plan = ffi.new("pf_plan *")
    check(lib.pf_plan_make(plan, view.ndim, view.shape, view.strides,
                           view.dtype.itemsize, num_threads))
    return plan


def inner_text(plan: Any) -> str:
    """The plan's inner loop, in words."""
    return str(ffi.string(plan.inner).decode())


def kernel_name(kernel: int) -> str:
    return str(ffi.string(lib.pf_kernel_name(kernel)).decode())


def simd_name(simd: int) -> str:
    return str(ffi.string(lib.pf_simd_name(simd)).decode())
