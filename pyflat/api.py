"""The public flattening functions.

Each one builds a *view* of the input (numpy does that for free), then either
returns it reshaped, when it is already C-contiguous, or makes exactly one copy
of it: with the C kernel, or with numpy where that is cheaper (small copies).
"""

from __future__ import annotations

import math
import operator
import sys
from functools import partial
from typing import (TYPE_CHECKING, Any, Callable, Dict, Literal, Optional, Sequence, Tuple,
                    TypeVar, Union, cast, overload)

import numpy as np
from numpy.typing import DTypeLike, NDArray

from . import _fast, _kernel
from .convert import Casting as Casting  # re-exported: the public functions' type
from .convert import Conversion, convert_into, numpy_convert, numpy_is_faster, resolve
from ._pyflat import lib as _lib
from .threads import MAX_THREADS, resolve_num_threads

__all__ = ["batch_flatten", "flatten", "ascontiguousarray"]

DATA_FORMATS = ("channels_last", "channels_first")
CHANNELS_LAST, CHANNELS_FIRST = DATA_FORMATS
_ndarray = np.ndarray
# np.moveaxis(a, 1, -1)'s axes, per ndim (index: ndim).
_CHANNELS_LAST_AXES = [(0, *range(2, n), 1) if n > 2 else tuple(range(n)) for n in range(65)]
DataFormat = Literal["channels_last", "channels_first"]
_SAME_KIND, _UNSAFE = "same_kind", "unsafe"  # the default castings (interned: compared by identity)
_T = TypeVar("_T", bound=np.generic)  # results keep the input's scalar type
_S = TypeVar("_S", bound=np.generic)  # ... or take dtype='s
# dtype= arguments whose scalar type a type checker knows.
_DTypeOf = Union["np.dtype[_S]", "type[_S]"]
# Factors: a number, or one per channel.
Factor = Union[float, complex, "np.number[Any]", "np.bool_", Sequence[Any], "NDArray[Any]"]

# Take whichever path is cheapest.  Measured on this project's 2-core Xeon,
# numpy's time over ours, end to end: transposes 0.6x at 16 KiB and 1.2-1.5x
# at 64 KiB; row copies and strided gathers, which numpy runs with the same
# loops, 0.7x at 64 KiB and 0.9-1.0x at 1 MiB on one thread.  So below
# SMALL_COPY_BYTES numpy copies everything but what the kernel does faster
# (kernel_takes_small's cost model: through the C entries, most layouts that
# are not contiguous runs from 1 to 2 KiB on), and below SIMPLE_COPY_BYTES
# the single-threaded copies of contiguous runs of 256 bytes or more (the only
# plans numpy runs with the same loops since the second-generation kernel:
# gathers, reversed runs and small blocks have vector kernels numpy lacks).
# Plans the kernel's cost model marks numpy_faster also go to numpy.
SMALL_COPY_BYTES = 48 * 1024
SIMPLE_COPY_BYTES = 1024 * 1024
# The kernel's plans below this many bytes run on one thread (its
# PF_MIN_BYTES_PER_THREAD), so that whether it would decline a copy (not a
# transpose, under SIMPLE_COPY_BYTES) is known from the layout alone.
ONE_THREAD_BYTES = 256 * 1024

# Small transposes: numpy's copy loops over the innermost rows, at about
# NUMPY_CALL_NS + NUMPY_NS_PER_ROW * rows + NUMPY_NS_PER_ITEM * items, end
# to end; the kernel's path costs about KERNEL_CALL_NS + KERNEL_NS_PER_BYTE *
# bytes when the C entries (pyflat/_fastcall.c) call it, PYTHON_KERNEL_CALL_NS
# + KERNEL_NS_PER_BYTE * bytes through _kernel_copy (its plan cached either
# way).  Fitted on this project's 2-core EPYC over the layouts of
# `python -m pyflat.bench.overhead --sweep`, 1 to 64 KiB (numpy 2.4).  The
# per-byte cost is the slowest plans' of each class, so that close calls go
# to numpy: row plans (short runs, gathers, reversed runs: 0.02-0.035 ns per
# byte at 64 KiB) and the rest (transposes and blocks, up to 0.1 for 3-plane
# float32 interleaves).  A 6 KB channels_first uint8 batch, 2048 rows of 3
# bytes, is 8 us in numpy and 1.3 us through the C entry.  Below
# KERNEL_MIN_BYTES numpy copies without asking.
KERNEL_MIN_BYTES = 1024
NUMPY_CALL_NS, NUMPY_NS_PER_ROW, NUMPY_NS_PER_ITEM = 530.0, 2.8, 0.29
KERNEL_CALL_NS, PYTHON_KERNEL_CALL_NS, KERNEL_NS_PER_BYTE = 600.0, 1200.0, 0.1
KERNEL_NS_PER_BYTE_ROWS = 0.04
_ROW_PLANS = (_lib.PF_KERNEL_MEMCPY, _lib.PF_KERNEL_GATHER, _lib.PF_KERNEL_REVERSE)


def check_data_format(data_format: Any) -> DataFormat:
    """``data_format`` as one of :data:`DATA_FORMATS` (the constant itself),
    case-insensitively, as Keras reads it (``"Channels_First"`` works)."""
    if isinstance(data_format, str):
        for known in DATA_FORMATS:
            if data_format == known or data_format.lower() == known:
                return cast(DataFormat, known)
    raise ValueError(f"data_format: expected 'channels_last' or 'channels_first', "
                     f"got {data_format!r}")


def masked_array_type() -> Optional[type]:
    """``numpy.ma.MaskedArray`` if numpy.ma is loaded (else no input can be
    one), without importing it."""
    ma = sys.modules.get("numpy.ma")
    return None if ma is None else ma.MaskedArray


def as_array(a: Any, name: str = "a") -> np.ndarray:
    """``np.asarray``, plus DLPack-only objects, with errors naming ``name``."""
    if type(a) is np.ndarray:
        return a
    try:
        if (hasattr(a, "__dlpack__") and not hasattr(a, "__array__")
                and not hasattr(a, "__array_interface__")):
            return np.from_dlpack(a)
        return np.asarray(a)
    except (TypeError, ValueError, BufferError, RuntimeError) as exc:
        raise ValueError(f"{name}: cannot be converted to a numpy array: {exc}") from exc


def channels_last_view(a: np.ndarray, data_format: str) -> np.ndarray:
    """The view whose C order is the flattened order: Keras moves the channels
    axis (1) to the end for channels_first input."""
    if data_format == "channels_first" and a.ndim > 2:
        return a.transpose(_CHANNELS_LAST_AXES[a.ndim])  # np.moveaxis(a, 1, -1), cheaper
    return a


# Small copies: whether the kernel or numpy copies a layout, decided once per
# layout (shape, strides, dtype) and remembered, so that a pipeline
# repeating one layout plans once.  Bounded (cleared when full, give or take
# one decision per concurrent caller); dict reads and writes are atomic, and
# a lost or repeated decision changes no result.
_KERNEL_TAKES: Dict[Tuple[Any, ...], bool] = {}
_KERNEL_TAKES_MAX = 1024
# Plans numpy runs with the same loops, so as fast at a lower call cost:
# contiguous runs of NUMPY_RUN_BYTES or more (the kernel's gathers, reversed
# runs and small blocks have vector loops numpy lacks), and what the kernel's
# own cost model gives to numpy (numpy_faster).  Everything else is what numpy
# loops over row by row, where the kernel pays for its call once the copy is
# big enough (the cost model below).
NUMPY_RUN_BYTES = 256
# The kernel's C entry, which the C fast paths (pyflat/_fastcall.c) call for
# the copies the kernel takes, as _kernel_copy does but without its Python
# calls; 0 makes them call _kernel_copy (tests spy on it).
KERNEL_ENTRY = _kernel.COPY_NDARRAY_ADDRESS


def _kernel_is_cheaper(view: np.ndarray) -> bool:
    plan = _kernel.make_plan(view, 1)
    if plan.numpy_faster:
        return False  # the kernel's own cost model says so
    if plan.kernel == _lib.PF_KERNEL_NONE or (
            plan.kernel == _lib.PF_KERNEL_MEMCPY
            and plan.shape[plan.ndim - 1] * view.itemsize >= NUMPY_RUN_BYTES):
        return False  # numpy runs the same loops, at a lower call cost
    if view.nbytes >= SMALL_COPY_BYTES:
        return True
    items = view.size
    numpy_ns = (NUMPY_CALL_NS + NUMPY_NS_PER_ROW * (items // max(view.shape[-1], 1))
                + NUMPY_NS_PER_ITEM * items)
    call_ns = KERNEL_CALL_NS if _fast.available() and KERNEL_ENTRY else PYTHON_KERNEL_CALL_NS
    per_byte = KERNEL_NS_PER_BYTE_ROWS if plan.kernel in _ROW_PLANS else KERNEL_NS_PER_BYTE
    return bool(numpy_ns > call_ns + per_byte * view.nbytes)


def numpy_or_kernel(nbytes: int) -> bool:
    """Whether a copy of ``nbytes`` (not C-contiguous) is small enough for
    :func:`kernel_takes_small` to choose its copier (else the kernel plans
    it, and declines what numpy does as fast)."""
    return nbytes < SMALL_COPY_BYTES or nbytes < SIMPLE_COPY_BYTES and nbytes < ONE_THREAD_BYTES


def kernel_takes_small(view: np.ndarray) -> bool:
    """For a view that is not C-contiguous and :func:`numpy_or_kernel`:
    whether the kernel copies it rather than numpy: transposes that numpy
    would loop over slowly.  Decided once per layout."""
    if view.nbytes < KERNEL_MIN_BYTES:
        return False  # tiny: numpy, without asking
    if (strides := view.strides)[-1] == (run := view.itemsize):
        shape, d = view.shape, view.ndim - 1
        while d >= 0 and (shape[d] == 1 or strides[d] == run) and run < NUMPY_RUN_BYTES:
            run *= shape[d]  # trailing axes that continue the run (merged, as the plan does)
            d -= 1
        if run >= NUMPY_RUN_BYTES:
            return False  # runs contiguous in the source: numpy's memcpy loops
    key = (view.shape, strides, view.dtype)
    takes = _KERNEL_TAKES.get(key)
    if takes is None:
        takes = not view.dtype.hasobject and _kernel_is_cheaper(view)
        if len(_KERNEL_TAKES) >= _KERNEL_TAKES_MAX:
            _KERNEL_TAKES.clear()
        _KERNEL_TAKES[key] = takes
    return takes


def _small_copy(view: np.ndarray, batch: Optional[int] = None,
                num_threads: Optional[int] = None) -> np.ndarray:
    """A new C-contiguous array holding ``view`` (under SMALL_COPY_BYTES, not
    C-contiguous) in C order: of the view's shape, or ``(batch, -1)``.  (The
    fast paths in batch_flatten and ascontiguousarray inline the numpy part:
    each Python call level costs about 60 ns.)"""
    if kernel_takes_small(view):
        return _kernel_copy(view, batch, num_threads)
    if batch is None:
        return view.copy()
    flat = view.reshape(batch, -1)  # numpy's copy, or a view where it can make one
    return flat if flat.flags.c_contiguous else flat.copy()


def _kernel_copy(view: np.ndarray, batch: Optional[int], num_threads: Optional[int]
                 ) -> np.ndarray:
    result = np.empty(view.shape if batch is None else (batch, view.size // batch), view.dtype)
    if not _kernel.copy_into(view, result, num_threads or 0, 0):  # it does not decline
        np.copyto(result.reshape(view.shape), view)
    return result


def batch_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    """``(batch, d1, ..., dk)`` -> ``(batch, d1*...*dk)``; ``(batch,)`` -> ``(batch, 1)``."""
    return (shape[0], math.prod(shape[1:]))


def _check_copy(copy: Any) -> Optional[bool]:
    if copy is None or isinstance(copy, (bool, np.bool_)):
        return None if copy is None else bool(copy)
    raise TypeError(f"copy: expected None, True or False, got {copy!r}")


def _check_out(out: Any, shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
    """``out`` checked, as a base-class ndarray to write to.  Subclasses
    (``np.memmap``, ``np.matrix``) are written through their ndarray view;
    a masked array is refused, since its mask would not be written."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out: expected a numpy.ndarray, got {type(out).__name__}")
    masked = masked_array_type()
    if masked is not None and isinstance(out, masked):
        raise TypeError("out: a numpy.ma.MaskedArray cannot be written to (its mask "
                        "would be left as it is); pass its data, np.ma.getdata(out)")
    if type(out) is not np.ndarray:
        out = np.ndarray.view(out, np.ndarray)
    if out.shape != shape:
        raise ValueError(f"out: expected shape {shape}, got {out.shape}")
    if out.dtype != dtype:
        raise TypeError(f"out: expected dtype {dtype}, got {out.dtype}")
    if not out.flags.c_contiguous:
        raise ValueError("out: must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError("out: is read-only")
    checked: np.ndarray = out
    return checked


def _copy(view: np.ndarray, dst: np.ndarray, num_threads: int) -> None:
    """One copy of ``view`` (C order) into the contiguous ``dst``."""
    if dst.nbytes == 0:  # no elements, or elements of no bytes (dtype 'V0')
        return
    if numpy_or_kernel(view.nbytes):
        done = kernel_takes_small(view) and _kernel.copy_into(view, dst, num_threads, 0)
    else:
        done = (not view.dtype.hasobject
                and _kernel.copy_into(view, dst, num_threads, SIMPLE_COPY_BYTES))
    if not done:
        # Object pointers need reference counting, and numpy is cheaper for
        # small copies but transposes: numpy copies those.
        np.copyto(dst.reshape(view.shape), view)


def _new_array(shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
    try:
        return np.empty(shape, dtype=dtype)
    except (ValueError, MemoryError) as exc:  # numpy's own subclasses: plain ones here
        kind = MemoryError if isinstance(exc, MemoryError) else ValueError
        raise kind(f"a: the result, shape {shape} of {dtype}, cannot be "
                   f"allocated: {exc}") from exc


def _new_copy(view: np.ndarray, shape: tuple[int, ...], num_threads: Optional[int]
              ) -> np.ndarray:
    """A new array of ``shape`` holding ``view`` in C order, by :func:`_copy`.
    The common calls of large copies come here straight, past the checks of
    materialize's general path (about 8 us in batch_flatten, 20% of a 1 MB
    copy)."""
    result = _new_array(shape, view.dtype)
    _copy(view, result, num_threads or 0)
    return result


def materialize(view: np.ndarray, shape: tuple[int, ...], out: Any, copy: Any,
                num_threads: Any) -> np.ndarray:
    """The C-contiguous array of ``shape`` holding ``view`` in C order: a view
    of it when possible (and allowed), else one copy into a new array or
    ``out``.  Every argument is checked before anything is written."""
    if out is None and copy is None and num_threads is None:  # the common call
        if view.flags.c_contiguous:
            return view.reshape(shape)
        if numpy_or_kernel(view.nbytes):  # numpy is cheaper for most small copies
            try:
                return _small_copy(view).reshape(shape)
            except (ValueError, MemoryError):
                pass  # nbytes overflowed: the checks below name the problem
        else:
            return _new_copy(view, shape, None)
    copy = _check_copy(copy)
    threads = resolve_num_threads(num_threads)
    if out is None:
        if copy is not True and view.flags.c_contiguous:
            return view.reshape(shape)
        if copy is False:
            raise ValueError("copy=False: the result cannot be a view of the input "
                             "(it is not C-contiguous in the flattened order); "
                             "use copy=None to allow a copy")
        return _new_copy(view, shape, threads)
    dst = _check_out(out, shape, view.dtype)
    if copy is False:
        raise ValueError("copy=False cannot be combined with out=: "
                         "writing into out is a copy")
    if np.may_share_memory(view, dst):
        view = view.copy()  # read the whole input first, as np.copyto does
    _copy(view, dst, threads)
    return cast(np.ndarray, out)  # the caller's object, subclass and all


def _masked(flat: Callable[[np.ndarray], np.ndarray], a: Any, out: Any,
            flat_data: Optional[Callable[[np.ndarray], np.ndarray]] = None) -> Any:
    """``flat`` applied to a masked array's data and to its mask alike (the
    data through ``flat_data`` instead, when given: a conversion): the result
    is a masked array, as ``MaskedArray.reshape`` (and ``astype``) gives."""
    if out is not None:
        raise TypeError("out: cannot hold the mask of a masked input a; leave out=None "
                        "(the result is a masked array), or pass np.ma.getdata(a)")
    data = (flat if flat_data is None else flat_data)(np.ma.getdata(a))
    mask = np.ma.getmask(a)
    # A new dtype's fill value as MaskedArray.astype makes it (numpy.ma's rule).
    fill_value = (a.fill_value if data.dtype == a.dtype
                  else a.reshape(-1)[:0].astype(data.dtype).fill_value)
    result = type(a)(data, mask=mask if mask is np.ma.nomask else flat(np.asarray(mask)),
                     fill_value=fill_value, hard_mask=a.hardmask)
    return result


def _converted(view: np.ndarray, shape: tuple[int, ...], conversion: Conversion, out: Any,
               copy: Any, num_threads: Any) -> np.ndarray:
    """:func:`materialize` for a conversion: a new array (or ``out``) of
    ``shape`` holding ``view`` converted (see :mod:`pyflat.convert`).  Every
    argument is checked before anything is written."""
    if copy is not None and _check_copy(copy) is False:
        raise ValueError("copy=False: a conversion (dtype, scale or offset) makes a new "
                         "array; use copy=None")
    threads = 0 if num_threads is None else resolve_num_threads(num_threads)
    dst = None if out is None else _check_out(out, shape, conversion.dtype)
    if view.ndim == 0:
        view = view.reshape(1)
    if dst is None:
        return _converted_new(view, conversion, num_threads=threads).reshape(shape)
    if not conversion.fused or numpy_is_faster(view, conversion):
        # numpy's result is a new array already
        np.copyto(dst.reshape(view.shape), numpy_convert(view, conversion))
        return cast(np.ndarray, out)
    if np.may_share_memory(view, dst):
        view = view.copy()  # read the whole input first, as np.copyto does
    convert_into(view, dst, conversion, threads)
    return cast(np.ndarray, out)  # the caller's object, subclass and all


# Conversions numpy computes in one pass (numpy_convert's astype, then the
# in-place ufuncs), remembered per layout and call for the C entries
# (pyflat/_fastcall.c), which then compute them without a Python call: a
# small conversion costs about as much to decide as to compute.  Keys:
# (shape, strides, dtype of the view, the dtype, casting, scale and offset
# arguments, each factor a Python float or None, with its sign apart, as
# -0.0 == 0.0); values: (dtype, scale, offset) of the Conversion, a single
# factor as a 0-d array (numpy's in-place ufunc with a 0-d operand costs half
# that with a 1-element one: 0.35 vs 0.82 us on 100 float32; the same
# products and sums).  Bounded (cleared when full); the decision depends on
# convert's settings: clear it when changing them.
_CONVERT_NUMPY: Dict[Tuple[Any, ...], Tuple[np.dtype, Optional[np.ndarray],
                                            Optional[np.ndarray]]] = {}
_CONVERT_NUMPY_MAX = 1024


def _sign(factor: Any) -> Optional[bool]:
    return None if factor is None else math.copysign(1.0, factor) < 0


def _scalar(factor: Optional[np.ndarray]) -> Optional[np.ndarray]:
    return factor.reshape(()) if factor is not None and factor.size == 1 else factor


def _remember_numpy(view: np.ndarray, conversion: Conversion, call: Tuple[Any, ...]) -> None:
    """Remember that numpy converts ``view`` in one pass for ``call`` =
    (dtype, casting, scale, offset), where the C entries can repeat it."""
    dtype, casting, scale, offset = call
    if ((scale is None or type(scale) is float) and (offset is None or type(offset) is float)
            and not view.dtype.hasobject and not conversion.dtype.hasobject
            and (view.flags.c_contiguous  # numpy_convert's one pass, see there
                 or not (view.dtype.kind in "fc" and conversion.dtype.kind in "iu"))):
        try:
            key = (view.shape, view.strides, view.dtype, dtype, casting, scale, _sign(scale),
                   offset, _sign(offset))
            if len(_CONVERT_NUMPY) >= _CONVERT_NUMPY_MAX:
                _CONVERT_NUMPY.clear()
            _CONVERT_NUMPY[key] = (conversion.dtype, _scalar(conversion.scale),
                                   _scalar(conversion.offset))
        except TypeError:
            pass  # an unhashable dtype argument


def _converted_new(view: np.ndarray, conversion: Conversion,
                   call: Optional[Tuple[Any, ...]] = None, num_threads: int = 0) -> np.ndarray:
    """:func:`_converted` into a new array of ``view.shape`` (at least 1-d,
    with elements), on ``num_threads`` (checked; 0: the default).  ``call``:
    (dtype, casting, scale, offset) as given, for a call the C entries take
    (see _CONVERT_NUMPY)."""
    if not conversion.fused or numpy_is_faster(view, conversion):
        if call is not None:
            _remember_numpy(view, conversion, call)
        return numpy_convert(view, conversion)
    result = _new_array(view.shape, conversion.dtype)
    convert_into(view, result, conversion, num_threads)
    return result


@overload
def batch_flatten(a: NDArray[_T], *, data_format: DataFormat = ..., dtype: None = ...,
                  casting: Casting = ..., scale: Optional[Factor] = ...,
                  offset: Optional[Factor] = ..., out: Optional[NDArray[_T]] = ...,
                  copy: Optional[bool] = ..., num_threads: Optional[int] = ...) -> NDArray[_T]: ...
@overload
def batch_flatten(a: object, *, data_format: DataFormat = ..., dtype: _DTypeOf[_S],
                  casting: Casting = ..., scale: Optional[Factor] = ...,
                  offset: Optional[Factor] = ..., out: Optional[NDArray[_S]] = ...,
                  copy: Optional[bool] = ..., num_threads: Optional[int] = ...) -> NDArray[_S]: ...
@overload
def batch_flatten(a: object, *, data_format: DataFormat = ..., dtype: DTypeLike = ...,
                  casting: Casting = ..., scale: Optional[Factor] = ...,
                  offset: Optional[Factor] = ..., out: Optional[NDArray[Any]] = ...,
                  copy: Optional[bool] = ..., num_threads: Optional[int] = ...) -> NDArray[Any]: ...
def batch_flatten(a: Any, *, data_format: DataFormat = "channels_last", dtype: Any = None,
                  casting: Casting = "same_kind", scale: Any = None, offset: Any = None,
                  out: Any = None, copy: Optional[bool] = None,
                  num_threads: Optional[int] = None) -> NDArray[Any]:
    """Flatten all axes but the first: ``(batch, d1, ..., dk) -> (batch, d1*...*dk)``,
    converting while copying when asked.

    Parameters
    ----------
    a : array_like
        At least 1-d.  ``(batch,)`` gives ``(batch, 1)``.
    data_format : {"channels_last", "channels_first"}
        ``"channels_first"`` moves axis 1 to the end before flattening
        (NCHW becomes NHWC order), as Keras' ``Flatten`` does.
    dtype : data-type, optional
        The result's dtype: ``ref.astype(dtype, casting=casting)``, where
        ``ref`` is the result without it, bit for bit, in the same pass as the
        copy (see Notes).  ``None``: the input's.
    casting : {"no", "equiv", "safe", "same_kind", "unsafe"}
        numpy's casting rule for ``dtype`` (checked with ``np.can_cast``); the
        default refuses float -> integer unless asked for with ``"unsafe"``.
    scale, offset : number or 1-d sequence of numbers, optional
        Multiply by ``scale``, then add ``offset``, in the result dtype:
        ``r * np.asarray(scale, dtype) + np.asarray(offset, dtype)``, each
        operation rounded as numpy rounds it (no fused multiply-add); an
        absent one is skipped.  A number, or one value per channel: the
        channel axis is axis 1 of a channels_first input, else the last axis
        (the last axis of the flattened order either way).  Per-channel
        ``Normalize(mean, std)`` is ``scale=1/std, offset=-mean/std``.
    out : ndarray, optional
        C-contiguous, writeable, of the result's shape and dtype; the result is
        written there and ``out`` is returned.  Untouched on any error.
    copy : bool, optional
        ``None``: a view when possible.  ``True``: always a new array.
        ``False``: a view, or ValueError (always, with a conversion).
    num_threads : int, optional
        Threads for the copy; default :func:`pyflat.get_num_threads`.

    Returns
    -------
    ndarray
        C-contiguous, of ``dtype`` (default the input's); a base-class ndarray
        whatever the input's class (``np.matrix``, ``np.memmap``, ... are read
        as their data), except that a ``np.ma.MaskedArray`` gives a masked
        array with its mask flattened alike (as ``MaskedArray.reshape`` does;
        its data converted, the mask not; ``out=`` is then refused).  ``out``
        itself when given (any ndarray subclass but a masked array).

    Raises
    ------
    TypeError, ValueError
        Naming the parameter: a ``dtype`` numpy does not know or ``casting``
        refuses; a factor of the wrong length or shape, not a number, NaN, or,
        for an integer result, non-integral, infinite or out of its range.

    Notes
    -----
    The kernel converts from bool, the integers and float16/32/64 to the
    integers and float16/32/64 (native byte order) in the copy's single
    pass: the output is the only full-size allocation.  Other conversions
    numpy can do (complex, strings, byte-swapped, bool results) are numpy's
    (a copy, then ``astype`` and ufuncs), as are float -> integer
    conversions meeting NaN, infinities or values out of range (numpy's
    results for those depend on the platform).  Small conversions, and
    those numpy's own casts run as fast (rows contiguous in the source), are
    numpy's one-pass ``astype`` too (the rule: ``convert.numpy_is_faster``;
    ``explain()`` names the path taken).  ``dtype`` equal to the
    input's, without factors, is no conversion: a view stays a view.
    """
    if (type(a) is _ndarray and out is None and copy is None and dtype is None
            and scale is None and offset is None and casting is _SAME_KIND
            and (num_threads is None
                 or type(num_threads) is int and 0 < num_threads <= MAX_THREADS)):
        # The common call, checks ordered by how often they fire, at close to
        # numpy's own cost: a view, or a small copy (see _small_copy).  Data
        # formats compare by identity: the constants, and literals, which
        # Python interns; any other string takes the general path below.
        if data_format is CHANNELS_LAST or data_format is CHANNELS_FIRST and a.ndim <= 2:
            if a.flags.c_contiguous:  # (channels_first below 3-d: nothing to move)
                try:
                    return a.reshape(len(a), -1)
                except (TypeError, ValueError):
                    pass  # 0-d, or an empty batch: the general path says what to do
            elif ((nbytes := a.nbytes) < SMALL_COPY_BYTES  # numpy_or_kernel and
                  or nbytes < SIMPLE_COPY_BYTES and nbytes < ONE_THREAD_BYTES):  # _small_copy,
                if nbytes >= KERNEL_MIN_BYTES and kernel_takes_small(a):  # inlined: a
                    return _kernel_copy(a, len(a), num_threads)  # Python call costs 60 ns
                if a.ndim == 2:
                    return a.copy()
                flat = a.reshape(len(a), -1)  # numpy's copy, or a view
                return flat if flat.flags.c_contiguous else flat.copy()
            else:  # a large copy (see _new_copy)
                return _new_copy(a, (len(a), a.size // len(a)), num_threads)
        elif data_format is CHANNELS_FIRST and a.ndim > 2:
            view = a.transpose(_CHANNELS_LAST_AXES[a.ndim])
            if view.flags.c_contiguous:
                try:
                    return view.reshape(len(a), -1)
                except ValueError:
                    pass  # an empty batch
            elif ((nbytes := view.nbytes) < SMALL_COPY_BYTES  # as above
                  or nbytes < SIMPLE_COPY_BYTES and nbytes < ONE_THREAD_BYTES):
                if nbytes >= KERNEL_MIN_BYTES and kernel_takes_small(view):
                    return _kernel_copy(view, len(a), num_threads)
                flat = view.reshape(len(a), -1)  # numpy's copy, or a view
                return flat if flat.flags.c_contiguous else flat.copy()
            else:
                return _new_copy(view, (len(a), view.size // len(a)), num_threads)
    elif (type(a) is _ndarray and out is None and copy is None and num_threads is None
          and (data_format is CHANNELS_LAST or data_format is CHANNELS_FIRST)
          and a.ndim and a.size):
        # A conversion's common call (a small one costs about as much to set
        # up as to compute): the general path below, less what it checks.
        view = (a.transpose(_CHANNELS_LAST_AXES[a.ndim])
                if data_format is CHANNELS_FIRST and a.ndim > 2 else a)
        conversion = resolve(view.dtype, dtype, casting, scale, offset, view.shape[-1])
        if conversion is not None:
            result = _converted_new(view, conversion, (dtype, casting, scale, offset))
            return result if result.ndim == 2 else result.reshape(len(a), -1)
    data_format = check_data_format(data_format)
    masked = masked_array_type()
    if masked is not None and isinstance(a, masked):
        # partial, not a lambda: a closure would make every call, the common
        # ones too, build cells for the names it captures.
        flat_mask = partial(batch_flatten, data_format=data_format, copy=copy,
                            num_threads=num_threads)
        return _masked(flat_mask, a, out, partial(flat_mask, dtype=dtype, casting=casting,  # type: ignore[no-any-return]
                                                  scale=scale, offset=offset))
    arr = as_array(a)
    if arr.ndim == 0:
        raise ValueError("a: expected at least 1 dimension (the batch axis), got a 0-d array")
    view = channels_last_view(arr, data_format)
    conversion = resolve(view.dtype, dtype, casting, scale, offset, channels_of(view))
    if conversion is not None:
        return _converted(view, batch_shape(arr.shape), conversion, out, copy, num_threads)
    return materialize(view, batch_shape(arr.shape), out, copy, num_threads)


def channels_of(view: np.ndarray) -> int:
    """The extent of the channel axis: the last axis of the channels_last view."""
    return view.shape[-1] if view.ndim else 1


def normalize_dim(dim: Any, name: str, ndim: int) -> int:
    """A torch-style dim in ``[-ndim, ndim)`` as a non-negative index."""
    if isinstance(dim, (bool, np.bool_)):
        raise TypeError(f"{name}: expected an integer, got {dim!r}")
    try:
        index = operator.index(dim)
    except TypeError:
        raise TypeError(f"{name}: expected an integer, got {type(dim).__name__}") from None
    if not -ndim <= index < ndim:
        raise np.exceptions.AxisError(index, ndim, msg_prefix=name)
    return index % ndim


def flatten_shape(shape: tuple[int, ...], start_dim: Any,
                  end_dim: Any) -> tuple[int, ...]:
    """The shape ``torch.flatten(x, start_dim, end_dim)`` gives for ``shape``."""
    ndim = max(len(shape), 1)  # a 0-d input acts as 1-d, as in torch
    start = normalize_dim(start_dim, "start_dim", ndim)
    end = normalize_dim(end_dim, "end_dim", ndim)
    if start > end:
        raise ValueError(f"start_dim ({start_dim}) must not come after end_dim ({end_dim})")
    if not shape:
        return (1,)
    return shape[:start] + (math.prod(shape[start:end + 1]),) + shape[end + 1:]


_FIRST, _SECOND, _LAST = 0, 1, -1


@overload
def flatten(a: NDArray[_T], start_dim: int = ..., end_dim: int = ..., *, dtype: None = ...,
            casting: Casting = ..., scale: Optional[Factor] = ...,
            offset: Optional[Factor] = ..., out: Optional[NDArray[_T]] = ...,
            copy: Optional[bool] = ..., num_threads: Optional[int] = ...) -> NDArray[_T]: ...
@overload
def flatten(a: object, start_dim: int = ..., end_dim: int = ..., *, dtype: _DTypeOf[_S],
            casting: Casting = ..., scale: Optional[Factor] = ...,
            offset: Optional[Factor] = ..., out: Optional[NDArray[_S]] = ...,
            copy: Optional[bool] = ..., num_threads: Optional[int] = ...) -> NDArray[_S]: ...
@overload
def flatten(a: object, start_dim: int = ..., end_dim: int = ..., *, dtype: DTypeLike = ...,
            casting: Casting = ..., scale: Optional[Factor] = ...,
            offset: Optional[Factor] = ..., out: Optional[NDArray[Any]] = ...,
            copy: Optional[bool] = ..., num_threads: Optional[int] = ...) -> NDArray[Any]: ...
def flatten(a: Any, start_dim: int = 0, end_dim: int = -1, *, dtype: Any = None,
            casting: Casting = "same_kind", scale: Any = None, offset: Any = None,
            out: Any = None, copy: Optional[bool] = None,
            num_threads: Optional[int] = None) -> NDArray[Any]:
    """Merge axes ``start_dim`` to ``end_dim`` (inclusive) into one, as
    ``torch.flatten`` does.

    Negative dims count from the end; a 0-d input gives shape ``(1,)``.  As in
    torch, when nothing is merged (the result has the input's shape) and the
    input is a C-contiguous ndarray, the input itself is returned.  ``dtype``,
    ``casting``, ``scale``, ``offset``, ``out``, ``copy`` and ``num_threads``
    are as for :func:`batch_flatten` (per-channel factors apply along the
    input's last axis); a masked array gives a masked array, its mask
    flattened alike.
    """
    if (type(a) is _ndarray and end_dim is _LAST and out is None and copy is None
            and dtype is None and scale is None and offset is None and casting is _SAME_KIND
            and num_threads is None and a.flags.c_contiguous):
        # The common calls, flatten(x) and flatten(x, 1), of a C-contiguous
        # ndarray (dims compare by identity: ints, not bools or numpy ints).
        ndim = a.ndim
        if start_dim is _FIRST:
            if ndim > 1:
                return a.reshape(-1)
            if ndim:
                return a  # nothing merged: the input itself, as in torch
        elif start_dim is _SECOND:
            if ndim > 2:
                try:
                    return a.reshape(len(a), -1)
                except ValueError:
                    pass  # an empty batch
            elif ndim == 2:
                return a
    if type(a) is _ndarray:  # no conversion, no subclass
        arr = a
    else:
        masked = masked_array_type()
        if masked is not None and isinstance(a, masked):
            flat_mask = partial(flatten, start_dim=start_dim, end_dim=end_dim, copy=copy,
                                num_threads=num_threads)
            return _masked(flat_mask, a, out, partial(flat_mask, dtype=dtype, casting=casting,  # type: ignore[no-any-return]
                                                      scale=scale, offset=offset))
        arr = as_array(a)
    shape = flatten_shape(arr.shape, start_dim, end_dim)
    conversion = resolve(arr.dtype, dtype, casting, scale, offset, channels_of(arr))
    if conversion is not None:
        if (out is None and copy is None and num_threads is None and arr is a
                and arr.ndim and arr.size):  # a conversion's common call (the C entry's)
            return _converted_new(arr, conversion, (dtype, casting, scale, offset)).reshape(shape)
        return _converted(arr, shape, conversion, out, copy, num_threads)
    if (out is None and arr is a and shape == arr.shape and arr.flags.c_contiguous
            and copy is not True and type(arr) is np.ndarray):
        if copy is not None or num_threads is not None:
            _check_copy(copy)
            resolve_num_threads(num_threads)  # still checked
        return arr
    return materialize(arr, shape, out, copy, num_threads)


def _numpy_as_array_of(a: Any, dtype: Any) -> np.ndarray:
    """numpy's own ``np.ascontiguousarray(a, dtype)`` for what is not an array
    (lists, scalars, ``__array__`` objects): numpy builds the array of
    ``dtype`` directly from the values."""
    try:
        np.empty(0, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"dtype: not a data type numpy understands: {dtype!r} "
                        f"({exc})") from exc
    try:
        return np.asarray(a, dtype=dtype, order="C")
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"a: cannot be converted to a numpy array of dtype "
                         f"{dtype!r}: {exc}") from exc


def _is_array(a: Any) -> bool:
    """An ndarray, or a DLPack-only object (:func:`as_array` reads it)."""
    return isinstance(a, np.ndarray) or (
        hasattr(a, "__dlpack__") and not hasattr(a, "__array__")
        and not hasattr(a, "__array_interface__"))


@overload
def ascontiguousarray(a: NDArray[_T], dtype: None = ..., *, casting: Casting = ...,
                      scale: Optional[Factor] = ..., offset: Optional[Factor] = ...,
                      num_threads: Optional[int] = ...) -> NDArray[_T]: ...
@overload
def ascontiguousarray(a: object, dtype: _DTypeOf[_S], *, casting: Casting = ...,
                      scale: Optional[Factor] = ..., offset: Optional[Factor] = ...,
                      num_threads: Optional[int] = ...) -> NDArray[_S]: ...
@overload
def ascontiguousarray(a: object, dtype: Optional[DTypeLike] = ..., *,
                      casting: Casting = ..., scale: Optional[Factor] = ...,
                      offset: Optional[Factor] = ...,
                      num_threads: Optional[int] = ...) -> NDArray[Any]: ...
def ascontiguousarray(a: Any, dtype: Optional[DTypeLike] = None, *,
                      casting: Casting = "unsafe", scale: Any = None, offset: Any = None,
                      num_threads: Optional[int] = None) -> NDArray[Any]:
    """A drop-in for :func:`numpy.ascontiguousarray`: the input itself when it
    is already a C-contiguous ndarray (of ``dtype``), else one copy by the
    kernel, converting to ``dtype`` in the same pass.

    ``dtype``, ``scale`` and ``offset`` are as for :func:`batch_flatten`
    (per-channel factors apply along the last axis); ``casting`` defaults to
    ``"unsafe"``, numpy's meaning here.  Like numpy's, the result has at least
    one dimension and is a base-class ndarray: subclasses (``np.matrix``,
    ``np.memmap``, masked arrays, whose mask numpy drops too) give their data
    as an ndarray; what is not an array (a list, a scalar) numpy converts to
    ``dtype`` directly, as its own function does.
    """
    if (type(a) is _ndarray and dtype is None and num_threads is None and scale is None
            and offset is None and casting is _UNSAFE):
        if a.flags.c_contiguous:
            if a.ndim:
                return a  # numpy returns the input itself too
        elif ((nbytes := a.nbytes) < SMALL_COPY_BYTES  # numpy_or_kernel and _small_copy,
              or nbytes < SIMPLE_COPY_BYTES and nbytes < ONE_THREAD_BYTES):  # inlined
            if nbytes < KERNEL_MIN_BYTES or not kernel_takes_small(a):
                return a.copy()
            return _kernel_copy(a, None, None)
    elif type(a) is _ndarray and num_threads is None and a.size:  # a conversion's common call
        conversion = resolve(a.dtype, dtype, casting, scale, offset, a.shape[-1] if a.ndim else 1)
        if conversion is not None:
            if not a.ndim:
                return _converted_new(a.reshape(1), conversion)
            return _converted_new(a, conversion, (dtype, casting, scale, offset))
    if (dtype is not None and scale is None and offset is None and casting is _UNSAFE
            and not _is_array(a)):
        arr = _numpy_as_array_of(a, dtype)  # numpy's conversion of the values
        dtype = None
    else:
        arr = as_array(a)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    conversion = resolve(arr.dtype, dtype, casting, scale, offset, channels_of(arr))
    if conversion is not None:
        return _converted(arr, arr.shape, conversion, None, None, num_threads)
    if arr.flags.c_contiguous and type(arr) is np.ndarray:
        resolve_num_threads(num_threads)  # still checked
        return arr
    return materialize(arr, arr.shape, None, None, num_threads)


if not TYPE_CHECKING:  # C entries for the common calls (pyflat/_fast.py); mypy sees the defs
    from ._fast import wrap as _wrap
    batch_flatten = _wrap(batch_flatten, "batch_flatten")
    flatten = _wrap(flatten, "flatten")
    ascontiguousarray = _wrap(ascontiguousarray, "ascontiguousarray")
