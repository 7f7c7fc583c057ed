"""What a user's type checker sees of pyflat: checked by ``mypy --strict``
(tools/typecheck.sh), never run.  A ``type: ignore[code]`` marks a call that
must be an error: with ``warn_unused_ignores`` (part of --strict), mypy fails
if it is not."""

from typing import Any

import numpy as np
from numpy.typing import NDArray
from typing_extensions import assert_type

import pyflat
import pyflat.dask

images = np.zeros((8, 3, 32, 32), np.uint8)
floats = np.zeros((8, 3, 4), np.float32)

# Results keep the input's scalar type.
assert_type(pyflat.batch_flatten(images, data_format="channels_first"), NDArray[np.uint8])
assert_type(pyflat.batch_flatten(floats, out=np.empty((8, 12), np.float32)), NDArray[np.float32])
assert_type(pyflat.flatten(floats, 1), NDArray[np.float32])
assert_type(pyflat.ascontiguousarray(floats), NDArray[np.float32])
assert_type(pyflat.Flatten("channels_first")(images), NDArray[Any])

# Anything numpy can convert: the dtype is not known statically.
assert_type(pyflat.batch_flatten([[1, 2], [3, 4]]), NDArray[Any])
assert_type(pyflat.batch_flatten(images, dtype="float32"), NDArray[Any])

# dtype= of a known scalar type gives it (conversion, issue 14).
assert_type(pyflat.ascontiguousarray(floats, np.float64), NDArray[np.float64])
assert_type(pyflat.batch_flatten(images, data_format="channels_first", dtype=np.float32,
                                 scale=1 / 255, offset=[0.1, 0.2, 0.3]), NDArray[np.float32])
assert_type(pyflat.flatten(images, 1, dtype=np.dtype(np.float16)), NDArray[np.float16])
assert_type(pyflat.batch_flatten(images, scale=2), NDArray[np.uint8])  # dtype None: the input's
assert_type(pyflat.Flatten(dtype="float32")(images), NDArray[Any])
pyflat.batch_flatten(images, dtype=np.float32, casting="sometimes")  # type: ignore[call-overload]
pyflat.iter_flatten([images], dtype=np.float32, casting="nope")  # type: ignore[arg-type]

# data_format is one of two strings.
pyflat.batch_flatten(images, data_format="nchw")  # type: ignore[call-overload]
pyflat.explain(images, data_format="NHWC")  # type: ignore[arg-type]
pyflat.Flatten("channels_middle")  # type: ignore[arg-type]

assert_type(pyflat.get_num_threads(), int)
assert_type(pyflat.__version__, str)
assert_type(pyflat.explain(images).num_threads, int)
assert_type(pyflat.explain(images).shape, tuple[int, ...])
