"""The public flattening functions.

Each one builds a *view* of the input (numpy does that for free), then either
returns it reshaped, when it is already C-contiguous, or makes exactly one copy
of it: with the C kernel, or with numpy where that is cheaper (small copies).
"""

from __future__ import annotations

import math
import operator
from typing import Any, Optional

import numpy as np

from . import _kernel
from .threads import MAX_THREADS, resolve_num_threads

__all__ = ["batch_flatten", "flatten", "ascontiguousarray"]

DATA_FORMATS = ("channels_last", "channels_first")

# Take whichever path is cheapest.  Measured on this project's 2-core Xeon,
# numpy's time over ours, end to end: transposes 0.6x at 16 KiB and 1.2-1.5x
# at 64 KiB; row copies and strided gathers, which numpy runs with the same
# loops, 0.7x at 64 KiB and 0.9-1.0x at 1 MiB on one thread.  So below
# SMALL_COPY_BYTES numpy copies everything, and below SIMPLE_COPY_BYTES the
# single-threaded copies of contiguous runs of 256 bytes or more (the only
# plans numpy runs with the same loops since the second-generation kernel:
# gathers, reversed runs and small blocks have vector kernels numpy lacks).
# Plans the kernel's cost model marks numpy_faster also go to numpy.
SMALL_COPY_BYTES = 48 * 1024
SIMPLE_COPY_BYTES = 1024 * 1024


def check_data_format(data_format: Any) -> str:
    if not isinstance(data_format, str) or data_format not in DATA_FORMATS:
        raise ValueError(f"data_format: expected 'channels_last' or 'channels_first', "
                         f"got {data_format!r}")
    return data_format


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
        return a.transpose((0, *range(2, a.ndim), 1))  # np.moveaxis(a, 1, -1), cheaper
    return a


def batch_shape(shape: tuple) -> tuple:
    """``(batch, d1, ..., dk)`` -> ``(batch, d1*...*dk)``; ``(batch,)`` -> ``(batch, 1)``."""
    return (shape[0], math.prod(shape[1:]))


def _check_copy(copy: Any) -> Optional[bool]:
    if copy is None or isinstance(copy, (bool, np.bool_)):
        return None if copy is None else bool(copy)
    raise TypeError(f"copy: expected None, True or False, got {copy!r}")


def _check_out(out: Any, shape: tuple, dtype: np.dtype) -> np.ndarray:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out: expected a numpy.ndarray, got {type(out).__name__}")
    if out.shape != shape:
        raise ValueError(f"out: expected shape {shape}, got {out.shape}")
    if out.dtype != dtype:
        raise TypeError(f"out: expected dtype {dtype}, got {out.dtype}")
    if not out.flags.c_contiguous:
        raise ValueError("out: must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError("out: is read-only")
    return out


def _copy(view: np.ndarray, dst: np.ndarray, num_threads: int) -> None:
    """One copy of ``view`` (C order) into the contiguous ``dst``."""
    if dst.nbytes == 0:  # no elements, or elements of no bytes (dtype 'V0')
        return
    if (view.dtype.hasobject or view.nbytes < SMALL_COPY_BYTES
            or not _kernel.copy_into(view, dst, num_threads, SIMPLE_COPY_BYTES)):
        # Object pointers need reference counting, and numpy is cheaper for
        # small copies: numpy copies those.
        np.copyto(dst.reshape(view.shape), view)


def _new_array(shape: tuple, dtype: np.dtype) -> np.ndarray:
    try:
        return np.empty(shape, dtype=dtype)
    except (ValueError, MemoryError) as exc:  # numpy's own subclasses: plain ones here
        kind = MemoryError if isinstance(exc, MemoryError) else ValueError
        raise kind(f"a: the result, shape {shape} of {dtype}, cannot be "
                   f"allocated: {exc}") from exc


def materialize(view: np.ndarray, shape: tuple, out: Any, copy: Any,
                num_threads: Any) -> np.ndarray:
    """The C-contiguous array of ``shape`` holding ``view`` in C order: a view
    of it when possible (and allowed), else one copy into a new array or
    ``out``.  Every argument is checked before anything is written."""
    if out is None and copy is None and num_threads is None:  # the common call
        if view.flags.c_contiguous:
            return view.reshape(shape)
        if view.nbytes < SMALL_COPY_BYTES:  # numpy is cheaper for small copies
            try:
                return view.copy().reshape(shape)
            except (ValueError, MemoryError):
                pass  # nbytes overflowed: the checks below name the problem
    copy = _check_copy(copy)
    threads = resolve_num_threads(num_threads)
    if out is None:
        if copy is not True and view.flags.c_contiguous:
            return view.reshape(shape)
        if copy is False:
            raise ValueError("copy=False: the result cannot be a view of the input "
                             "(it is not C-contiguous in the flattened order); "
                             "use copy=None to allow a copy")
        result = _new_array(shape, view.dtype)
        _copy(view, result, threads)
        return result
    _check_out(out, shape, view.dtype)
    if copy is False:
        raise ValueError("copy=False cannot be combined with out=: "
                         "writing into out is a copy")
    if np.may_share_memory(view, out):
        view = view.copy()  # read the whole input first, as np.copyto does
    _copy(view, out, threads)
    return out


def batch_flatten(a: Any, *, data_format: str = "channels_last", out: Any = None,
                  copy: Optional[bool] = None,
                  num_threads: Optional[int] = None) -> np.ndarray:
    """Flatten all axes but the first: ``(batch, d1, ..., dk) -> (batch, d1*...*dk)``.

    Parameters
    ----------
    a : array_like
        At least 1-d.  ``(batch,)`` gives ``(batch, 1)``.
    data_format : {"channels_last", "channels_first"}
        ``"channels_first"`` moves axis 1 to the end before flattening
        (NCHW becomes NHWC order), as Keras' ``Flatten`` does.
    out : ndarray, optional
        C-contiguous, writeable, of the result's shape and dtype; the result is
        written there and ``out`` is returned.
    copy : bool, optional
        ``None``: a view when possible.  ``True``: always a new array.
        ``False``: a view, or ValueError.
    num_threads : int, optional
        Threads for the copy; default :func:`pyflat.get_num_threads`.

    Returns
    -------
    ndarray
        C-contiguous, with the input's dtype.
    """
    if (out is None and copy is None and type(a) is np.ndarray and type(data_format) is str
            and (num_threads is None or type(num_threads) is int and 0 < num_threads <= MAX_THREADS)):
        # The common call, at close to numpy's own cost: a view, or for small
        # inputs numpy's copy (see SMALL_COPY_BYTES).
        shape = a.shape
        if len(shape) > 1 and shape[0]:
            if data_format == "channels_last" or (data_format == "channels_first"
                                                   and len(shape) == 2):
                view = a  # 2-d channels_first: nothing to move
            elif data_format == "channels_first":
                view = a.transpose((0, *range(2, len(shape)), 1))
            else:
                view = None
            if view is not None:
                if view.flags.c_contiguous:
                    return view.reshape(shape[0], -1)
                if view.nbytes < SMALL_COPY_BYTES:
                    try:
                        return view.copy().reshape(shape[0], -1)
                    except (ValueError, MemoryError):
                        pass  # nbytes overflowed: the checks below name the problem
    arr = as_array(a)
    check_data_format(data_format)
    if arr.ndim == 0:
        raise ValueError("a: expected at least 1 dimension (the batch axis), got a 0-d array")
    view = channels_last_view(arr, data_format)
    return materialize(view, batch_shape(arr.shape), out, copy, num_threads)


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


def flatten_shape(shape: tuple, start_dim: Any, end_dim: Any) -> tuple:
    """The shape ``torch.flatten(x, start_dim, end_dim)`` gives for ``shape``."""
    ndim = max(len(shape), 1)  # a 0-d input acts as 1-d, as in torch
    start = normalize_dim(start_dim, "start_dim", ndim)
    end = normalize_dim(end_dim, "end_dim", ndim)
    if start > end:
        raise ValueError(f"start_dim ({start_dim}) must not come after end_dim ({end_dim})")
    if not shape:
        return (1,)
    return shape[:start] + (math.prod(shape[start:end + 1]),) + shape[end + 1:]


def flatten(a: Any, start_dim: int = 0, end_dim: int = -1, *, out: Any = None,
            copy: Optional[bool] = None, num_threads: Optional[int] = None) -> np.ndarray:
    """Merge axes ``start_dim`` to ``end_dim`` (inclusive) into one, as
    ``torch.flatten`` does.

    Negative dims count from the end; a 0-d input gives shape ``(1,)``.  ``out``,
    ``copy`` and ``num_threads`` are as for :func:`batch_flatten`.
    """
    arr = as_array(a)
    shape = flatten_shape(arr.shape, start_dim, end_dim)
    return materialize(arr, shape, out, copy, num_threads)


def ascontiguousarray(a: Any, dtype: Any = None, *,
                      num_threads: Optional[int] = None) -> np.ndarray:
    """A drop-in for :func:`numpy.ascontiguousarray`: the input itself when it
    is already C-contiguous (and of ``dtype``), else one copy by the kernel.

    Like numpy's, the result has at least one dimension.
    """
    arr = as_array(a)
    if dtype is not None:
        try:
            dtype = np.dtype(dtype)
            if dtype != arr.dtype:
                # A cast is numpy's job; ask it for C order directly.
                arr = np.asarray(arr, dtype=dtype, order="C")
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"dtype: cannot give {dtype!r}: {exc}") from exc
    if arr.ndim == 0:
        arr = arr.reshape(1)
    return materialize(arr, arr.shape, None, None, num_threads)
