"""``iter_flatten``: flatten the batches of a data pipeline as they come."""

from __future__ import annotations

from typing import Any, Dict, Iterable, Iterator, Optional

import numpy as np
from numpy.typing import DTypeLike

from .api import (Casting, DataFormat, Factor, as_array, batch_flatten, batch_shape,
                  check_data_format, masked_array_type)
from .convert import check_casting, result_dtype

__all__ = ["iter_flatten"]


def iter_flatten(batches: Iterable[Any], *, data_format: DataFormat = "channels_last",
                 dtype: Optional[DTypeLike] = None, casting: Casting = "same_kind",
                 scale: Optional[Factor] = None, offset: Optional[Factor] = None,
                 reuse_output: bool = False) -> Iterator[np.ndarray]:
    """Flatten each batch of ``batches``, lazily: a generator of
    ``batch_flatten(batch, data_format=data_format, dtype=dtype, ...)``.

    Parameters
    ----------
    batches : iterable of array_like
        Any iterable of arrays of at least 1 dimension: a list, a
        ``torch.utils.data.DataLoader``, ``tf.data.Dataset.as_numpy_iterator()``.
    data_format : {"channels_last", "channels_first"}
        As for :func:`pyflat.batch_flatten`.
    dtype, casting, scale, offset
        As for :func:`pyflat.batch_flatten`: each batch converted in its copy
        (``uint8`` images to ``float32 / 255``, say).
    reuse_output : bool
        ``False`` (default): each result is a new array, or a view of its
        batch when that is already flat in C order.  ``True``: one output
        array is reused, and yielded again, for as long as the flattened
        shape and dtype repeat; a new one is made when they change (the last,
        smaller batch of an epoch).  **Each result is then overwritten by the
        next**: use it, or copy it, before asking for the next one.  Saves an
        allocation per batch; results are never views of the batches.  A
        masked batch gives a new masked array (its mask flattened alike).

    Yields
    ------
    ndarray
        ``(batch, features)``, C-contiguous, of ``dtype`` (default the
        batch's).

    Raises
    ------
    TypeError, ValueError
        At the call: ``batches`` is not iterable, or a bad ``data_format``,
        ``dtype``, ``casting`` or ``reuse_output``.  While iterating: a batch
        that is not an array or is 0-d (the message names it as
        ``batches[i]``), a ``dtype`` that ``casting`` refuses for it, or
        factors that do not fit it (as :func:`pyflat.batch_flatten` says).
    """
    data_format = check_data_format(data_format)
    casting = check_casting(casting)
    if dtype is not None:
        result_dtype(np.dtype(np.float64), dtype, "unsafe")  # a dtype numpy knows
    if not isinstance(reuse_output, (bool, np.bool_)):
        raise TypeError(f"reuse_output: expected True or False, got {reuse_output!r}")
    try:
        iterator = iter(batches)
    except TypeError:
        raise TypeError(f"batches: expected an iterable of arrays, got "
                        f"{type(batches).__name__}") from None
    conversion = dict(dtype=dtype, casting=casting, scale=scale, offset=offset)
    return _flattened(iterator, data_format, conversion, bool(reuse_output))


def _flattened(batches: Iterator[Any], data_format: DataFormat, conversion: Dict[str, Any],
               reuse_output: bool) -> Iterator[np.ndarray]:
    out: Optional[np.ndarray] = None
    for index, batch in enumerate(batches):
        masked = masked_array_type()
        is_masked = masked is not None and isinstance(batch, masked)  # keeps batch: Any
        if is_masked:
            if batch.ndim == 0:
                raise ValueError(f"batches[{index}]: expected at least 1 dimension "
                                 f"(the batch axis), got a 0-d array")
            yield batch_flatten(batch, data_format=data_format, **conversion)  # keeps the mask
            continue
        array = as_array(batch, f"batches[{index}]")
        if array.ndim == 0:
            raise ValueError(f"batches[{index}]: expected at least 1 dimension "
                             f"(the batch axis), got a 0-d array")
        if not reuse_output:
            yield batch_flatten(array, data_format=data_format, **conversion)
            continue
        shape = batch_shape(array.shape)
        dtype = result_dtype(array.dtype, conversion["dtype"], conversion["casting"])
        if out is None or out.shape != shape or out.dtype != dtype:
            out = np.empty(shape, dtype=dtype)
        yield batch_flatten(array, data_format=data_format, out=out, **conversion)
