"""pyflat: flatten strided arrays into contiguous batch-by-features matrices at
memory speed.

    >>> import numpy as np, pyflat
    >>> x = np.zeros((32, 3, 28, 28), np.float32)
    >>> pyflat.batch_flatten(x, data_format="channels_first").shape
    (32, 2352)
"""

from .api import ascontiguousarray, batch_flatten, flatten
from .explain import Plan, explain
from .files import flatten_file
from .layer import Flatten
from .stream import iter_flatten
from .threads import get_num_threads, set_num_threads

__version__ = "0.1.0"

__all__ = [
    "batch_flatten", "flatten", "ascontiguousarray", "Flatten",
    "explain", "Plan", "set_num_threads", "get_num_threads",
    "flatten_file", "iter_flatten",
]
