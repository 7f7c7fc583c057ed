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
from typing import Any, Dict, List, Literal, NamedTuple, Optional, Tuple, cast

import numpy as np

from . import _kernel

__all__ = ["CASTINGS", "Conversion", "resolve", "check_casting", "convert_into",
           "numpy_convert", "numpy_is_faster"]

#: numpy's casting rules, from strictest to most lenient.
CASTINGS = ("no", "equiv", "safe", "same_kind", "unsafe")
Casting = Literal["no", "equiv", "safe", "same_kind", "unsafe"]


class Conversion(NamedTuple):  # (a NamedTuple: cheap to build)
    """A checked conversion: the result dtype, the factors as 1-d C-contiguous
    arrays of it (length 1 for a scalar, else one per channel), and whether
    the kernel computes it (``fused``) or numpy does."""

    dtype: np.dtype
    scale: Optional[np.ndarray]
    offset: Optional[np.ndarray]
    fused: bool

    def text(self, src: np.dtype, num_threads: int = 0, kernel: bool = True) -> str:
        """The conversion step in words, for ``explain()``: the kernel's
        loop when it converts (``fused`` and ``kernel``), else numpy's."""
        if self.fused and kernel:
            return _kernel.convert_text(src, self.dtype, self.scale is not None,
                                        self.offset is not None, num_threads)
        steps = ("*scale" if self.scale is not None else "") + (
            "+offset" if self.offset is not None else "")
        why = ("faster at this size and layout" if self.fused
               else "not a pair the kernel converts")
        return (f"{src} -> {self.dtype}" + (f", x{steps}" if steps else "")
                + f": numpy converts (astype, then ufuncs; {why})")


def check_casting(casting: Any) -> Casting:
    """``casting`` as one of numpy's rule names, else ValueError naming it."""
    if isinstance(casting, str) and casting in CASTINGS:
        return cast(Casting, casting)
    raise ValueError(f"casting: expected one of {', '.join(map(repr, CASTINGS))}, "
                     f"got {casting!r}")


def _instance(src: np.dtype, dtype: Any) -> np.dtype:
    """``np.dtype(dtype)``, but a DType class (``np.dtypes.Float32DType``,
    which np.dtype reads as object) as numpy's astype resolves it from ``src``."""
    if not (isinstance(dtype, type) and issubclass(dtype, np.dtype)):
        plain: np.dtype = np.dtype(dtype)
        return plain
    try:
        instance: np.dtype = dtype()  # type: ignore[call-overload]  # the fixed-size classes
    except TypeError:  # flexible (StrDType, ...): sized for src, as astype does
        instance = np.empty(0, src).astype(dtype).dtype
    return instance


def result_dtype(src: np.dtype, dtype: Any, casting: Casting) -> np.dtype:
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
            if not isinstance(part, numbers.Integral):  # floats, Fractions, Decimals
                if math.isnan(_as_float(part)):
                    raise ValueError(f"{name}: NaN would make every value NaN")
                if integral and math.isinf(_as_float(part)) and not isinstance(
                        part, numbers.Rational):  # (a huge Fraction is out of range, below)
                    raise ValueError(f"{name}: {part!r} is infinite; the result dtype {dt} "
                                     f"is an integer type")
            if not integral:
                continue
            if part != int(part):
                raise ValueError(f"{name}: {part!r} is not an integer; the result dtype "
                                 f"{dt} is an integer type (pass a floating dtype=)")
            if not low <= int(part) <= high:
                raise ValueError(f"{name}: {part!r} is out of the range of the result "
                                 f"dtype {dt} ([{low}, {high}])")


def _as_float(number: Any) -> float:
    """A real number as a float, an infinity beyond float's range."""
    try:
        return float(number)
    except OverflowError:
        return math.inf if number > 0 else -math.inf


# The largest finite value of the float results: a factor beyond it becomes
# an infinity, as numpy's conversion makes it (which warns; not here).
_FLOAT_MAX = {np.dtype(t): float(np.finfo(t).max) for t in (np.float16, np.float32)}


def factor(name: str, value: Any, dt: np.dtype, channels: int) -> Optional[np.ndarray]:
    """``scale`` or ``offset`` checked and converted: None, or a 1-d
    C-contiguous array of ``dt`` of length 1 (a scalar) or ``channels``."""
    if value is None:
        return None
    if dt.kind not in "biufc":
        raise TypeError(f"{name}: needs a numeric result dtype, got {dt}")
    if type(value) is float or type(value) is int:  # the common case, quickly
        values: List[Any] = [value]
    else:
        values = _factor_values(name, value)
        if len(values) not in (1, channels):
            raise ValueError(f"{name}: expected a number or {channels} values (one per "
                             f"channel, the last axis of the channels_last view), got "
                             f"{len(values)}")
    _check_factor_values(name, values, dt)
    try:
        if dt.kind in "fc" and any(abs(v) > _FLOAT_MAX.get(dt, math.inf) for v in values):
            with np.errstate(over="ignore"):  # an infinity, as in numpy, without its warning
                converted = np.asarray(value, dtype=dt)
        else:
            converted = np.asarray(value, dtype=dt)  # numpy's conversion, as in the reference
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"{name}: cannot be converted to {dt}: {exc}") from exc
    return np.ascontiguousarray(converted.reshape(-1))


def resolve(src: np.dtype, dtype: Any, casting: Any, scale: Any, offset: Any,
            channels: int) -> Optional[Conversion]:
    """The checked conversion from ``src``, or None when there is nothing to
    convert (no dtype, or ``src``'s, and no factors).  ``channels``: the
    extent of the channel axis (the channels_last view's last axis).

    Remembered for arguments that are hashable and factors that are None or
    Python numbers (a pipeline repeats one call): a small conversion costs
    about as much to check as to compute."""
    try:
        if offset is None and (scale is None or type(scale) is float):  # the common calls
            key: Any = (src, dtype, casting, scale,
                        None if scale is None else math.copysign(1.0, scale))
        else:
            key = (src, dtype, casting, _factor_key(scale), _factor_key(offset), channels)
        known = _RESOLVED.get(key, _UNKNOWN)
    except TypeError:  # unhashable, or factors that are not Python numbers
        key, known = None, _UNKNOWN
    if known is not _UNKNOWN:
        return cast("Optional[Conversion]", known)  # (a string: no typing call at run time)
    dt = result_dtype(src, dtype, check_casting(casting))
    if dt == src and scale is None and offset is None:
        conversion = None
    else:
        conversion = Conversion(dtype=dt, scale=_frozen(factor("scale", scale, dt, channels)),
                                offset=_frozen(factor("offset", offset, dt, channels)),
                                fused=not src.hasobject and _kernel.convert_supported(src, dt))
    if key is not None:
        if len(_RESOLVED) >= _RESOLVED_MAX:
            _RESOLVED.clear()
        _RESOLVED[key] = conversion
    return conversion


# resolve()'s memory: bounded (cleared when full); dict reads and writes are
# atomic, and a lost or repeated entry changes no result.
_RESOLVED: Dict[Tuple[Any, ...], Optional[Conversion]] = {}  # (keys of 5 or 6 items)
_RESOLVED_MAX = 256
_UNKNOWN = object()


def _factor_key(value: Any) -> Any:
    """A factor as part of a cache key, telling apart what converts apart
    (-0.0 from 0.0, 1 from 1.0): None, a Python int or float, a list or
    tuple of them, or a numeric ndarray (by its bytes); TypeError for
    anything else.  (Only factors that passed the checks are remembered.)"""
    if value is None:
        return None
    kind = type(value)
    if kind is float:
        return (kind, value, math.copysign(1.0, value))
    if kind is int:
        return (kind, value)
    if kind is list or kind is tuple:
        return tuple(map(_number_key, value))
    if kind is np.ndarray and value.dtype.kind in "biufc" and value.ndim <= 1:
        return (value.dtype.str, value.shape, value.tobytes())
    raise TypeError("not a cacheable factor")


def _number_key(value: Any) -> Any:
    kind = type(value)
    if kind is float:
        return (kind, value, math.copysign(1.0, value))
    if kind is int:
        return (kind, value)
    raise TypeError("not a cacheable factor")


def _frozen(factor: Optional[np.ndarray]) -> Optional[np.ndarray]:
    """A factor array made read-only: a remembered Conversion is shared."""
    if factor is not None:
        factor.flags.writeable = False
    return factor


def numpy_convert(view: np.ndarray, conversion: Conversion) -> np.ndarray:
    """numpy's result: a new C-contiguous array of ``view.shape`` (at least
    1-d), computed exactly as the reference expression.  One strided cast
    where that is the reference's result; a C-order copy first for float
    (or complex) -> integer casts of a strided view, since numpy's strided
    casts of NaN or out-of-range values to integers may differ from its
    contiguous ones."""
    dt = conversion.dtype
    if view.flags.c_contiguous or not (view.dtype.kind in "fc" and dt.kind in "iu"):
        source = view
    else:
        source = np.ascontiguousarray(view)
    try:
        result = source.astype(dt, order="C", casting="unsafe")  # a new array: never source
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"dtype: cannot convert the input ({view.dtype}) to "
                         f"{dt}: {exc}") from exc
    if conversion.scale is not None:
        result *= conversion.scale  # (in place: numpy's multiply, less a call's cost)
    if conversion.offset is not None:
        result += conversion.offset
    return result


# Which converter is faster, measured with tools/convert_sweep.py and the
# crossovers around it (one thread, a 2-core machine shared with others;
# tools/measurements/convert_small.txt).  The kernel's call costs about
# 3-4 us whatever the size up to tens of KB (with main's plan cache);
# numpy's astype costs about 1 us per call, 1 us more per factor (an
# in-place ufunc), and for a transpose its row-by-row loop.
# - outputs under NUMPY_ANY_BYTES: numpy (call cost);
# - rows contiguous in the source (runs of RUN_BYTES or more): numpy's SIMD
#   casts run as fast as the kernel's, plus a pass over the output per
#   factor: numpy below NUMPY_RUNS_BYTES, and float -> float without factors
#   below NUMPY_FLOAT_BYTES (as fast or faster throughout the range measured);
# - float -> float without factors, more than 4 channels of contiguous runs
#   (Fortran tables) to a result other than float32: the kernel has no
#   register transpose for those (its planar scratch path): numpy below
#   NUMPY_FLOAT_BYTES;
# - other transposes: numpy while its loop, NUMPY_NS_PER_ROW per row (of the
#   last axis), NUMPY_NS_PER_ITEM per element and NUMPY_NS_PER_FACTOR,
#   stays under NUMPY_LOOP_NS (measured crossovers: float64 channels-first
#   images ~300-650 rows of 3, Fortran tables ~100-150 rows of 20, slices
#   ~200-400 rows of 5; integers scaled: under 1000 elements), else the kernel.
NUMPY_ANY_BYTES = 2 * 1024
NUMPY_RUNS_BYTES = 256 * 1024
NUMPY_FLOAT_BYTES = 4 * 1024 * 1024
NUMPY_NS_PER_ROW, NUMPY_NS_PER_ITEM, NUMPY_NS_PER_FACTOR = 2.5, 0.7, 1000.0
NUMPY_LOOP_NS = 2000.0
RUN_BYTES = 256


def numpy_is_faster(view: np.ndarray, conversion: Conversion) -> bool:
    """Whether numpy's one-pass conversion (:func:`numpy_convert`) of
    ``view`` (at least 1-d) is expected faster than the kernel's.  (Cheap:
    it runs on every call of a small conversion.)"""
    dt = conversion.dtype
    if (out_bytes := view.size * dt.itemsize) < NUMPY_ANY_BYTES:
        return True
    if out_bytes >= NUMPY_FLOAT_BYTES:
        return False  # beyond every limit below
    plain_float = (conversion.scale is None and conversion.offset is None
                   and dt.kind == "f" and view.dtype.kind == "f")
    strides, itemsize = view.strides, view.itemsize
    if strides[-1] == itemsize and (view.flags.c_contiguous
                                    or _run_bytes(view) >= RUN_BYTES):
        return out_bytes < (NUMPY_FLOAT_BYTES if plain_float else NUMPY_RUNS_BYTES)
    if (plain_float and dt.type is not np.float32 and len(strides) >= 2
            and strides[-2] == itemsize and view.shape[-1] > 4):
        return True  # planar, under NUMPY_FLOAT_BYTES: see above
    items = view.size
    factors = (conversion.scale is not None) + (conversion.offset is not None)
    numpy_ns = (NUMPY_NS_PER_ROW * (items // max(view.shape[-1], 1))
                + NUMPY_NS_PER_ITEM * items + NUMPY_NS_PER_FACTOR * factors)
    return bool(numpy_ns < NUMPY_LOOP_NS)


def _run_bytes(view: np.ndarray) -> int:
    """Bytes of the source's contiguous runs in C order (the trailing axes
    that merge into one contiguous run)."""
    run = view.itemsize
    for extent, stride in zip(reversed(view.shape), reversed(view.strides)):
        if extent != 1 and stride != run:
            break
        run *= extent
    return run


def convert_into(view: np.ndarray, dst: np.ndarray, conversion: Conversion,
                 num_threads: int) -> None:
    """Write the converted ``view`` (at least 1-d) into ``dst`` (C-contiguous,
    of the result dtype, ``view.size`` elements, not overlapping ``view``):
    the kernel in one pass, or numpy (for a pair the kernel does not convert,
    or values it declines)."""
    if dst.size == 0:
        return
    if conversion.fused and not _numpy_may_raise(view.dtype, dst.dtype) and _kernel.convert_into(
            view, dst, conversion.scale, conversion.offset, num_threads):
        return
    np.copyto(dst.reshape(view.shape), numpy_convert(view, conversion))


def _numpy_may_raise(src: np.dtype, dst: np.dtype) -> bool:
    """Whether numpy's float -> integer cast may raise here (under
    ``np.errstate(invalid="raise")``): then numpy converts first, since the
    kernel's decline would leave ``dst`` (perhaps the caller's ``out``)
    written before numpy raised."""
    return src.kind == "f" and dst.kind in "iu" and np.geterr()["invalid"] in ("raise", "call")
