"""``explain``: what a call would do, as data (the kernel's plan) and as text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from . import _kernel
from .api import (as_array, batch_shape, channels_last_view, check_data_format,
                  flatten_shape)
from .threads import resolve_num_threads


@dataclass(frozen=True)
class Plan:
    """How pyflat copies one input.

    ``zero_copy`` means the result is a view and nothing below runs.  The
    other fields are the C plan: the layout after dropping size-1 axes and
    merging axes contiguous in both source and destination, the kernel of the
    innermost loops, its tile and SIMD variant, streaming stores, and how the
    work is split among threads.
    """

    input_shape: tuple
    output_shape: tuple
    itemsize: int
    zero_copy: bool
    shape: tuple            # after normalisation
    src_strides: tuple      # bytes
    dst_strides: tuple      # bytes
    kernel: str             # "none", "memcpy", "gather" or "transpose"
    major_axis: Optional[int]
    minor_axis: Optional[int]
    tile: int
    simd: str
    streaming: bool
    num_threads: int
    units: int
    chunk: int
    nbytes: int

    def __str__(self) -> str:
        lines = [f"pyflat plan: {self.input_shape} -> {self.output_shape}, "
                 f"itemsize {self.itemsize}, {self.nbytes} bytes"]
        if self.zero_copy:
            lines.append("  zero-copy: the result is a view of the input; no kernel call")
            return "\n".join(lines)
        lines.append(f"  layout after merging: shape {self.shape}")
        lines.append(f"    source strides      {self.src_strides}")
        lines.append(f"    destination strides {self.dst_strides}")
        if self.kernel == "memcpy":
            lines.append(f"  kernel: memcpy runs along axis {self.major_axis}")
        elif self.kernel == "gather":
            lines.append(f"  kernel: strided gather along axis {self.major_axis}")
        elif self.kernel == "transpose":
            lines.append(f"  kernel: blocked transpose of axes {self.major_axis} and "
                         f"{self.minor_axis}, tiles {self.tile}x{self.tile}, {self.simd}")
        else:
            lines.append("  kernel: none (nothing to copy)")
        lines.append(f"  streaming stores: {'on' if self.streaming else 'off'}")
        lines.append(f"  threads: {self.num_threads}, over {self.units} units of "
                     f"{self.chunk} elements along axis {self.major_axis}")
        return "\n".join(lines)


def _plan(arr, view, output_shape: tuple, num_threads: Any) -> Plan:
    zero_copy = bool(view.flags.c_contiguous)
    c = _kernel.make_plan(view, resolve_num_threads(num_threads))
    n = c.ndim
    return Plan(
        input_shape=arr.shape, output_shape=output_shape,
        itemsize=view.dtype.itemsize, zero_copy=zero_copy,
        shape=tuple(c.shape[0:n]), src_strides=tuple(c.src_strides[0:n]),
        dst_strides=tuple(c.dst_strides[0:n]),
        kernel=_kernel.kernel_name(c.kernel),
        major_axis=None if c.major < 0 else c.major,
        minor_axis=None if c.minor < 0 else c.minor,
        tile=c.tile, simd=_kernel.simd_name(c.simd) if c.tile else "-",
        streaming=bool(c.streaming), num_threads=c.num_threads,
        units=c.units, chunk=c.chunk, nbytes=c.nbytes)


def explain(a: Any, *, data_format: str = "channels_last",
            start_dim: Optional[int] = None, end_dim: Optional[int] = None,
            num_threads: Optional[int] = None) -> Plan:
    """The plan for ``batch_flatten(a, data_format=...)``, or, when
    ``start_dim`` or ``end_dim`` is given, for ``flatten(a, start_dim, end_dim)``.

    >>> print(explain(np.zeros((8, 3, 32, 32), np.uint8), data_format="channels_first"))
    """
    arr = as_array(a)
    if start_dim is not None or end_dim is not None:
        shape = flatten_shape(arr.shape, 0 if start_dim is None else start_dim,
                              -1 if end_dim is None else end_dim)
        return _plan(arr, arr, shape, num_threads)
    check_data_format(data_format)
    if arr.ndim == 0:
        raise ValueError("a: expected at least 1 dimension (the batch axis), got a 0-d array")
    return _plan(arr, channels_last_view(arr, data_format), batch_shape(arr.shape),
                 num_threads)
