"""The binding to the C kernel: one copy primitive, one plan, one error mapper.

Everything here assumes arguments already checked by the public API: ``view``
is an ndarray without object fields and ``out`` is a C-contiguous, writeable
ndarray with the same dtype and number of elements that does not overlap it.
"""

from __future__ import annotations

from typing import Any, Optional

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


# Converting copies (issue 14): numpy dtypes as the kernel's pf_type codes.
_TYPES = {np.dtype(name): code for name, code in (
    ("bool", lib.PF_TYPE_BOOL), ("int8", lib.PF_TYPE_INT8), ("uint8", lib.PF_TYPE_UINT8),
    ("int16", lib.PF_TYPE_INT16), ("uint16", lib.PF_TYPE_UINT16),
    ("int32", lib.PF_TYPE_INT32), ("uint32", lib.PF_TYPE_UINT32),
    ("int64", lib.PF_TYPE_INT64), ("uint64", lib.PF_TYPE_UINT64),
    ("float16", lib.PF_TYPE_FLOAT16), ("float32", lib.PF_TYPE_FLOAT32),
    ("float64", lib.PF_TYPE_FLOAT64))}


def _type_code(dtype: np.dtype) -> int:
    """The kernel's code for a native-order dtype, or -1 (byte-swapped and
    other dtypes)."""
    dtype = np.dtype(dtype)
    if not dtype.isnative:
        return -1
    return int(_TYPES.get(dtype, -1))


def convert_supported(src: np.dtype, dst: np.dtype) -> bool:
    """True when the kernel converts ``src`` -> ``dst`` (both native-order:
    sources bool, the integers, float16/32/64; destinations the integers and
    float16/32/64)."""
    s, d = _type_code(src), _type_code(dst)
    return s >= 0 and d >= 0 and bool(lib.pf_convert_supported(s, d))


def _factors(values: Optional[np.ndarray]) -> tuple[Any, int]:
    if values is None:
        return _NULL, 0
    return _from_buffer(values), len(values)


def convert_into(view: np.ndarray, out: np.ndarray, scale: Optional[np.ndarray],
                 offset: Optional[np.ndarray], num_threads: int = 0) -> bool:
    """Write ``out.flat = view.astype(out.dtype) [* scale] [+ offset]`` (C
    order), bit for bit as numpy, in one pass.

    ``view``: any strides, ``convert_supported(view.dtype, out.dtype)``;
    ``out``: C-contiguous, writeable, as many elements, not overlapping
    ``view``; ``scale`` / ``offset``: None or 1-d C-contiguous arrays of
    ``out.dtype`` of length 1 (one factor) or ``view.shape[-1]`` (the factor
    of destination element k is ``factor[k % len]``).  Returns False, with
    ``out`` partly written, when a float -> integer conversion meets NaN, an
    infinity or a value outside the destination's range (numpy's result is
    platform-defined there: the caller redoes it with numpy).  Runs with the
    GIL released on a private view of ``view``.
    """
    private = view.view()
    scale_ptr, scale_len = (_NULL, 0) if scale is None else _factors(scale)
    offset_ptr, offset_len = (_NULL, 0) if offset is None else _factors(offset)
    status = _convert_ndarray(id(private), _from_buffer(out), _TYPES.get(view.dtype, -1),
                              _TYPES.get(out.dtype, -1), scale_ptr, scale_len, offset_ptr,
                              offset_len, num_threads)
    if status == _OK:  # the common case first: every name here is prebound
        return True
    if status == _RANGE:
        return False
    check(status)
    return True


# Prebound for convert_into, as for copy_into.  (_TYPES holds native-order
# dtypes only, and a dtype equals its byte-swapped twin only when of one
# byte, which then has no order: the lookup is _type_code's answer.)
_convert_ndarray, _NULL, _RANGE = lib.pf_convert_ndarray, ffi.NULL, lib.PF_ERR_RANGE


def convert_text(src: np.dtype, dst: np.dtype, has_scale: bool, has_offset: bool,
                 num_threads: int = 0) -> str:
    """One line for explain(): the conversion step and its SIMD variant, e.g.
    ``"uint8 -> float32, x*scale+offset (avx2)"``."""
    steps = ("*scale" if has_scale else "") + ("+offset" if has_offset else "")
    loop = str(ffi.string(lib.pf_convert_loop_name(_type_code(src), _type_code(dst))).decode())
    text = f"{np.dtype(src)} -> {np.dtype(dst)}" + (f", x{steps}" if steps else "")
    threads = f", {num_threads} threads" if num_threads > 1 else ""
    return f"{text} ({loop} loop{threads})"
