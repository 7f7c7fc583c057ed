"""The binding to the C kernel: one copy primitive, one plan, one error mapper.

Everything here assumes arguments already checked by the public API: ``view``
is an ndarray without object fields and ``out`` is a C-contiguous, writeable
ndarray with the same dtype and number of elements that does not overlap it.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

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


# -- conversion while copying (issue 14) -----------------------------------------
# stand-in until the C kernel lands: pure numpy, with exactly the contract of
# the C binding (CONVERT_SPEC.md), so that pyflat.convert and the tests are
# written against it.  The lead replaces this block at merge.

CONVERT_STAND_IN = True  # tests/test_convert.py skips its allocation test while this is here

_FUSED_SOURCE_KINDS: Dict[str, Tuple[int, ...]] = {"b": (1,), "i": (1, 2, 4, 8), "u": (1, 2, 4, 8), "f": (2, 4, 8)}
_FUSED_DESTINATION_KINDS: Dict[str, Tuple[int, ...]] = {"i": (1, 2, 4, 8), "u": (1, 2, 4, 8), "f": (2, 4, 8)}


def _in_set(dtype: np.dtype, kinds: Dict[str, Tuple[int, ...]]) -> bool:
    return (dtype.isnative and dtype.names is None and dtype.subdtype is None
            and dtype.itemsize in kinds.get(dtype.kind, ()))


def convert_supported(src: np.dtype, dst: np.dtype) -> bool:  # stand-in until the C kernel lands
    """True when the kernel converts ``src`` -> ``dst`` (both native-order:
    sources bool, the integers, float16/32/64; destinations the integers and
    float16/32/64)."""
    return _in_set(src, _FUSED_SOURCE_KINDS) and _in_set(dst, _FUSED_DESTINATION_KINDS)


def _fits(view: np.ndarray, dst: np.dtype) -> bool:
    """Whether every value of the floating ``view`` truncates into the integer
    ``dst`` (no NaN, no infinity, none out of range).  Conservative at the
    int64/uint64 edges, where a False only sends the caller to numpy."""
    info = np.iinfo(dst)
    values = view.astype(np.float64)
    with np.errstate(invalid="ignore"):
        return bool(np.all((values > float(info.min) - 1) & (values < float(info.max) + 1)))


def convert_into(view: np.ndarray, out: np.ndarray, scale: Optional[np.ndarray],
                 offset: Optional[np.ndarray],
                 num_threads: int = 0) -> bool:  # stand-in until the C kernel lands
    """Write ``out.flat = view.astype(out.dtype) [* scale] [+ offset]`` (C
    order), bit for bit as numpy; False, leaving ``out`` undefined, when a
    float -> integer conversion meets NaN, an infinity or a value out of the
    destination's range (the caller redoes it with numpy).  ``scale`` and
    ``offset``: None, or 1-d arrays of ``out.dtype`` of length 1 or
    ``view.shape[-1]``."""
    if view.dtype.kind == "f" and out.dtype.kind in "iu" and not _fits(view, out.dtype):
        return False
    source = view.reshape(1) if view.ndim == 0 else view
    result = np.ascontiguousarray(source).astype(out.dtype)
    if scale is not None:
        np.multiply(result, scale, out=result)
    if offset is not None:
        np.add(result, offset, out=result)
    out.reshape(-1)[...] = result.reshape(-1)
    return True


def convert_text(src: np.dtype, dst: np.dtype, has_scale: bool, has_offset: bool,
                 num_threads: int = 0) -> str:  # stand-in until the C kernel lands
    """One line for explain(): the conversion step and its SIMD variant."""
    steps = ("*scale" if has_scale else "") + ("+offset" if has_offset else "")
    return f"{src} -> {dst}" + (f", x{steps}" if steps else "") + " (numpy stand-in)"
