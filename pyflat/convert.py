"""Conversion while copying: the meaning of ``dtype=``, ``casting=``,
``scale=`` and ``offset=``, and the two ways of computing it.

The result is, bit for bit, numpy's::

    r = ref.astype(dtype, casting=casting)
    if scale is not None:  r = r * np.asarray(scale, dtype)
    if offset is not None: r = r + np.asarray(offset, dtype)

where ``ref`` is the result without conversion (the flattened channels_last
view): each step in the result dtype, with numpy's rounding of each
operation; an absent factor is skipped (``x + 0.0`` would turn -0.0 into
+0.0).  A factor is a scalar or one value per channel, the channel axis being
the last axis of the channels_last view.

The kernel converts the pairs ``_kernel.convert_supported`` accepts in the
same pass as the copy; numpy computes the others (complex, strings,
byte-swapped, bool results...) after a copy, and the float -> integer
conversions the kernel declines (NaN, infinities, values out of range, whose
results numpy defines per platform).  Every argument is checked by
:func:`resolve`, before anything is written.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, List, Optional

import numpy as np

from . import _kernel

__all__ = ["CASTINGS", "Conversion", "resolve", "check_casting", "convert_into",
           "numpy_convert"]

#: numpy's casting rules, from strictest to most lenient.
CASTINGS = ("no", "equiv", "safe", "same_kind", "unsafe")


@dataclass(frozen=True)
class Conversion:
    """A checked conversion: the result dtype, the factors as 1-d C-contiguous
    arrays of it (length 1 for a scalar, else one per channel), and whether
    the kernel computes it (``fused``) or numpy does."""

    dtype: np.dtype
    scale: Optional[np.ndarray]
    offset: Optional[np.ndarray]
    fused: bool

    def text(self, src: np.dtype, num_threads: int = 0) -> str:
        """The conversion step in words, for ``explain()``."""
        if self.fused:
            return _kernel.convert_text(src, self.dtype, self.scale is not None,
                                        self.offset is not None, num_threads)
        steps = ("*scale" if self.scale is not None else "") + (
            "+offset" if self.offset is not None else "")
        return (f"{src} -> {self.dtype}" + (f", x{steps}" if steps else "")
                + ": numpy converts (copy, then astype and ufuncs; not a pair the "
                  "kernel converts)")


def check_casting(casting: Any) -> str:
    """``casting`` as one of numpy's rule names, else ValueError naming it."""
    if isinstance(casting, str) and casting in CASTINGS:
        return casting
    raise ValueError(f"casting: expected one of {', '.join(map(repr, CASTINGS))}, "
                     f"got {casting!r}")


def _instance(src: np.dtype, dtype: Any) -> np.dtype:
    """``np.dtype(dtype)``, but a DType class (``np.dtypes.Float32DType``,
    which np.dtype reads as object) as numpy's astype resolves it from ``src``."""
    if not (isinstance(dtype, type) and issubclass(dtype, np.dtype)):
        return np.dtype(dtype)
    try:
        return dtype()  # the fixed-size classes
    except TypeError:  # flexible (StrDType, ...): sized for src, as astype does
        return np.empty(0, src).astype(dtype).dtype


def result_dtype(src: np.dtype, dtype: Any, casting: str) -> np.dtype:
    """The dtype of ``ref.astype(dtype)`` for ``ref`` of ``src``: any
    dtype-like numpy takes (an instance, a class from ``np.dtypes``, a scalar
    or Python type, a string; an unsized ``"U"`` or ``"S"`` takes its size
    from ``src``, as numpy does), checked against ``casting`` with
    ``np.can_cast``."""
    if dtype is None:
        return src
    try:
        dt = _instance(src, dtype)
        if dt.itemsize == 0 and dt.kind in "SUV":  # unsized: numpy sizes it for src
            if src.hasobject:  # ... from the values, unknown before the copy
                raise ValueError(f"give a sized {dt.kind!r} dtype (e.g. '{dt.kind}16') "
                                 f"for input of dtype {src}")
            dt = np.empty(0, src).astype(dt).dtype
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"dtype: not a data type numpy can convert {src} to: {dtype!r} "
                        f"({exc})") from exc
    if not np.can_cast(src, dt, casting=casting):
        raise TypeError(f"dtype: cannot convert {src} to {dt} under casting={casting!r} "
                        f"(np.can_cast refuses it); pass casting='unsafe' to allow it")
    return dt


def _factor_values(name: str, value: Any) -> List[Any]:
    """``value`` (a scalar or a 1-d sequence) as a flat list of Python numbers."""
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: expected a number or a 1-d sequence of numbers, got "
                        f"{type(value).__name__} ({exc})") from exc
    if array.ndim > 1:
        raise ValueError(f"{name}: expected a number or a 1-d sequence of numbers (one "
                         f"per channel), got an array of shape {array.shape}")
    values: List[Any] = array.reshape(-1).tolist()
    for v in values:
        if not isinstance(v, numbers.Number):
            raise TypeError(f"{name}: expected a number or a 1-d sequence of numbers, "
                            f"got {v!r} of type {type(v).__name__}")
    return values


def _check_factor_values(name: str, values: List[Any], dt: np.dtype) -> None:
    """The factor errors numpy's expression would hide: NaN (every result
    NaN), complex values for a real result, and, for an integer or bool
    result, infinite, non-integral or out-of-range values."""
    integral = dt.kind in "biu"
    if integral:
        low, high = (0, 1) if dt.kind == "b" else (int(np.iinfo(dt).min), int(np.iinfo(dt).max))
    for v in values:
        if isinstance(v, complex):
            if dt.kind != "c":
                raise TypeError(f"{name}: {v!r} is complex; the result dtype {dt} is not")
            parts = [v.real, v.imag]
        else:
            parts = [v]
        for part in parts:
            if isinstance(part, float) and math.isnan(part):
                raise ValueError(f"{name}: NaN would make every value NaN")
            if not integral:
                continue
            if isinstance(part, float) and math.isinf(part):
                raise ValueError(f"{name}: {part!r} is infinite; the result dtype {dt} is "
                                 f"an integer type")
            if part != int(part):
                raise ValueError(f"{name}: {part!r} is not an integer; the result dtype "
                                 f"{dt} is an integer type (pass a floating dtype=)")
            if not low <= int(part) <= high:
                raise ValueError(f"{name}: {part!r} is out of the range of the result "
                                 f"dtype {dt} ([{low}, {high}])")


def factor(name: str, value: Any, dt: np.dtype, channels: int) -> Optional[np.ndarray]:
    """``scale`` or ``offset`` checked and converted: None, or a 1-d
    C-contiguous array of ``dt`` of length 1 (a scalar) or ``channels``."""
    if value is None:
        return None
    if dt.kind not in "biufc":
        raise TypeError(f"{name}: needs a numeric result dtype, got {dt}")
    values = _factor_values(name, value)
    if len(values) not in (1, channels):
        raise ValueError(f"{name}: expected a number or {channels} values (one per "
                         f"channel, the last axis of the channels_last view), got "
                         f"{len(values)}")
    _check_factor_values(name, values, dt)
    try:
        with np.errstate(over="ignore"):  # float results: a huge factor becomes inf, as in numpy
            converted = np.asarray(value, dtype=dt)  # numpy's conversion, as in the reference
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"{name}: cannot be converted to {dt}: {exc}") from exc
    return np.ascontiguousarray(converted.reshape(-1))


def resolve(src: np.dtype, dtype: Any, casting: Any, scale: Any, offset: Any,
            channels: int) -> Optional[Conversion]:
    """The checked conversion from ``src``, or None when there is nothing to
    convert (no dtype, or ``src``'s, and no factors).  ``channels``: the
    extent of the channel axis (the channels_last view's last axis)."""
    casting = check_casting(casting)
    dt = result_dtype(src, dtype, casting)
    if dt == src and scale is None and offset is None:
        return None
    return Conversion(dtype=dt, scale=factor("scale", scale, dt, channels),
                      offset=factor("offset", offset, dt, channels),
                      fused=not src.hasobject and _kernel.convert_supported(src, dt))


def numpy_convert(view: np.ndarray, conversion: Conversion) -> np.ndarray:
    """numpy's result: a new C-contiguous array of ``view.shape`` (at least
    1-d), computed exactly as the reference expression (a C-order copy first:
    numpy's strided casts of NaN or out-of-range floats to integers may
    differ from its contiguous ones)."""
    ref = np.ascontiguousarray(view)
    try:
        result = ref.astype(conversion.dtype, casting="unsafe")  # a new array: never ref
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"dtype: cannot convert the input ({view.dtype}) to "
                         f"{conversion.dtype}: {exc}") from exc
    if conversion.scale is not None:
        np.multiply(result, conversion.scale, out=result)
    if conversion.offset is not None:
        np.add(result, conversion.offset, out=result)
    return result


def convert_into(view: np.ndarray, dst: np.ndarray, conversion: Conversion,
                 num_threads: int) -> None:
    """Write the converted ``view`` (at least 1-d) into ``dst`` (C-contiguous,
    of the result dtype, ``view.size`` elements, not overlapping ``view``):
    the kernel in one pass, or numpy (for a pair the kernel does not convert,
    or values it declines)."""
    if dst.size == 0:
        return
    if conversion.fused and _kernel.convert_into(view, dst, conversion.scale,
                                                 conversion.offset, num_threads):
        return
    np.copyto(dst.reshape(view.shape), numpy_convert(view, conversion))
