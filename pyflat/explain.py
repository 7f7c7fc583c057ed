"""``explain``: what a call would do, as data (the kernel's plan) and as text."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Optional

import numpy as np

from . import _kernel
from numpy.typing import DTypeLike

from .api import (NUMPY_RUN_BYTES, SIMPLE_COPY_BYTES, Casting, DataFormat,
                  Factor, as_array, batch_shape, channels_last_view, channels_of,
                  check_data_format, flatten_shape, kernel_takes_small, numpy_or_kernel)
from .convert import numpy_is_faster, resolve
from .threads import resolve_num_threads


@dataclass(frozen=True)
class Plan:
    """How pyflat copies one input.

    ``path`` is what the call runs: ``"view"`` (``zero_copy``: the result is
    a view and nothing below runs), ``"numpy"`` (numpy copies it, for the
    reason in ``note``: object references, or a copy too small for the kernel
    to pay), or ``"kernel"``.  The
    other fields are the C plan: the layout after dropping size-1 axes and
    merging axes contiguous in the source, the innermost block kernel
    (``memcpy``: contiguous runs; ``gather``: items at a constant step;
    ``reverse``: runs backwards; ``block``: a small block of the innermost
    axes through an offset table; ``transpose``: cache-blocked tiles of two
    axes, or of one axis against the innermost axes after it, the planes,
    through an offset table), its inner loop in words (``inner``), tile and SIMD variant,
    streaming stores, and how the work is split among threads.
    ``numpy_faster``: the cost model expects numpy's own copy to be faster,
    and the public functions let numpy copy.  ``conversion``: with
    ``dtype``, ``scale`` or ``offset``, the conversion step and its SIMD
    variant when the kernel converts in the copy (``path == "kernel"``), or
    why numpy converts (``path == "numpy"``); the copy's plan is the one
    above.
    """

    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    itemsize: int
    zero_copy: bool         # path == "view"
    shape: tuple[int, ...]        # after normalisation
    src_strides: tuple[int, ...]  # bytes
    dst_strides: tuple[int, ...]  # bytes
    kernel: str             # "none", "memcpy", "gather", "reverse", "block" or "transpose"
    inner: str              # the inner loop, in words
    rows_axis: Optional[int]
    cols_axis: int
    block_axis: Optional[int]   # block: first axis of the block; transpose: of the planes
    rows: int               # row kernels: destination rows of row_elems elements
    row_elems: int
    tile: tuple[int, int]   # transposes: (rows, columns) per tile; else (0, 0)
    simd: str
    streaming: bool
    num_threads: int
    units: int
    row_chunk: int
    col_chunk: int
    nbytes: int
    numpy_faster: bool = False
    source_order: bool = False
    path: str = "kernel"    # what the call runs: "view", "numpy" or "kernel"
    note: str = ""          # why, when it is not the kernel
    conversion: str = ""    # the conversion step (dtype, scale, offset) in words; "" for none

    def __str__(self) -> str:
        lines = [f"pyflat plan: {self.input_shape} -> {self.output_shape}, "
                 f"itemsize {self.itemsize}, {self.nbytes} bytes"]
        if self.zero_copy:
            lines.append("  zero-copy: the result is a view of the input; no kernel call")
            return "\n".join(lines)
        if self.path == "numpy":
            what = "converted" if self.conversion else "copied by numpy (np.copyto)"
            lines.append(f"  {what}, not by pyflat's kernel: {self.note}")
            if self.conversion:
                lines.append(f"  conversion: {self.conversion}")
            return "\n".join(lines)
        if self.conversion:
            lines.append(f"  conversion, in the copy: {self.conversion}")
        lines.append(f"  layout after merging: shape {self.shape}")
        lines.append(f"    source strides      {self.src_strides}")
        lines.append(f"    destination strides {self.dst_strides}")
        rows = "-" if self.rows_axis is None else self.rows_axis
        row_work = (f"  work: {self.rows} rows of {self.row_elems} elements, "
                    f"{self.units} units of {self.row_chunk} rows x {self.col_chunk} "
                    f"elements, on {self.num_threads} thread(s)")
        if self.kernel == "memcpy":
            lines.append(f"  kernel: memcpy, contiguous runs along axis {self.cols_axis} "
                         f"({self.inner})")
        elif self.kernel == "gather":
            lines.append(f"  kernel: gather, items at a constant step along axis "
                         f"{self.cols_axis} ({self.inner})")
        elif self.kernel == "reverse":
            lines.append(f"  kernel: reverse, contiguous runs backwards along axis "
                         f"{self.cols_axis} ({self.inner}, simd {self.simd})")
        elif self.kernel == "block":
            lines.append(f"  kernel: block, axes {self.block_axis}..{self.cols_axis} "
                         f"({self.row_elems} elements) per row ({self.inner})")
        elif self.kernel == "transpose" and self.block_axis is not None:
            lines.append(f"  kernel: blocked transpose of axis {rows} against axes "
                         f"{self.block_axis}..{self.cols_axis} ({self.row_elems} planes), "
                         f"tiles {self.tile[0]}x{self.tile[1]}, micro-kernel {self.simd} "
                         f"({self.inner})")
        elif self.kernel == "transpose":
            lines.append(f"  kernel: blocked transpose of axes {rows} and {self.cols_axis}, "
                         f"tiles {self.tile[0]}x{self.tile[1]}, micro-kernel {self.simd} "
                         f"({self.inner})")
            if self.source_order:
                lines.append("  outer axes in source order (smallest source stride fastest)")
            row_work = (f"  work: {self.units} units of {self.row_chunk} rows x "
                        f"{self.col_chunk} columns, on {self.num_threads} thread(s)")
        else:
            lines.append("  kernel: none (nothing to copy)")
            return "\n".join(lines)
        if self.kernel != "transpose":
            lines.append(f"  row space: axes before {self.cols_axis if self.block_axis is None else self.block_axis}"
                         f", odometer innermost axis {rows}")
        lines.append(f"  streaming stores: {'on' if self.streaming else 'off'}")
        lines.append(row_work)
        if self.numpy_faster:
            lines.append("  cost model: numpy's own copy is expected faster here; "
                         "the public functions let numpy copy (safety net)")
        return "\n".join(lines)


def _plan(arr: np.ndarray, view: np.ndarray, output_shape: tuple[int, ...],
          num_threads: Any) -> Plan:
    zero_copy = bool(view.flags.c_contiguous)
    c = _kernel.make_plan(view, resolve_num_threads(num_threads))
    n = c.ndim
    return Plan(
        input_shape=arr.shape, output_shape=output_shape,
        itemsize=view.dtype.itemsize, zero_copy=zero_copy,
        shape=tuple(c.shape[0:n]), src_strides=tuple(c.src_strides[0:n]),
        dst_strides=tuple(c.dst_strides[0:n]),
        kernel=_kernel.kernel_name(c.kernel), inner=_kernel.inner_text(c),
        rows_axis=None if c.rows_axis < 0 else c.rows_axis, cols_axis=c.cols_axis,
        block_axis=None if c.block_axis < 0 else c.block_axis,
        rows=c.rows, row_elems=c.row_elems,
        tile=(c.tile_rows, c.tile_cols), simd=_kernel.simd_name(c.simd),
        streaming=bool(c.streaming), num_threads=c.num_threads,
        units=c.units, row_chunk=c.row_chunk, col_chunk=c.col_chunk, nbytes=c.nbytes,
        numpy_faster=bool(c.numpy_faster), source_order=bool(c.source_order))


def explain(a: Any, *, data_format: DataFormat = "channels_last",
            start_dim: Optional[int] = None, end_dim: Optional[int] = None,
            dtype: Optional[DTypeLike] = None, casting: Casting = "same_kind",
            scale: Optional[Factor] = None, offset: Optional[Factor] = None,
            num_threads: Optional[int] = None) -> Plan:
    """The plan for ``batch_flatten(a, data_format=...)``, or, when
    ``start_dim`` or ``end_dim`` is given, for ``flatten(a, start_dim, end_dim)``;
    with ``dtype``, ``casting``, ``scale`` or ``offset`` (checked as those
    functions check them), the plan of the conversion too.

    >>> print(explain(np.zeros((8, 3, 32, 32), np.uint8), data_format="channels_first"))
    """
    arr = as_array(a)
    if start_dim is not None or end_dim is not None:
        shape = flatten_shape(arr.shape, 0 if start_dim is None else start_dim,
                              -1 if end_dim is None else end_dim)
        view = arr
    else:
        data_format = check_data_format(data_format)
        if arr.ndim == 0:
            raise ValueError("a: expected at least 1 dimension (the batch axis), got a 0-d array")
        view, shape = channels_last_view(arr, data_format), batch_shape(arr.shape)
    plan = _plan(arr, view, shape, num_threads)
    conversion = resolve(view.dtype, dtype, casting, scale, offset, channels_of(view))
    if conversion is not None:  # a new array, converted (api._converted's choices)
        text = conversion.text(view.dtype, plan.num_threads)
        plan = replace(plan, zero_copy=False, conversion=text)
        if not conversion.fused:
            return replace(plan, path="numpy", note=f"the kernel does not convert "
                                                    f"{view.dtype} to {conversion.dtype}; "
                                                    f"numpy converts")
        if numpy_is_faster(view if view.ndim else view.reshape(1), conversion):
            return replace(plan, path="numpy", conversion=conversion.text(
                view.dtype, plan.num_threads, kernel=False),
                note="numpy's one-pass astype is expected faster for this size and layout "
                     "(pyflat.convert.numpy_is_faster)")
        return plan
    # The path the call really takes (api._copy's choices): no copy at all,
    # numpy's copy, or the kernel's plan above.
    if plan.zero_copy:
        return replace(plan, path="view", note="the input is C-contiguous in that order")
    if view.dtype.hasobject:
        reason = "object references must be counted"
    elif numpy_or_kernel(view.nbytes):
        if kernel_takes_small(view):
            return plan  # a transpose that numpy would loop over slowly
        reason = ("numpy's copy is expected cheaper for this small layout "
                  "(pyflat.api.kernel_takes_small)")
    elif (plan.num_threads == 1 and plan.kernel == "memcpy"
          and plan.shape[-1] * plan.itemsize >= NUMPY_RUN_BYTES
          and view.nbytes < SIMPLE_COPY_BYTES):  # what the kernel's glue declines
        reason = (f"a single-threaded copy of runs of {NUMPY_RUN_BYTES} bytes or more under "
                  f"{SIMPLE_COPY_BYTES} bytes runs as fast in numpy (the same memcpy loops)")
    else:
        return plan
    return replace(plan, path="numpy", note=reason)
