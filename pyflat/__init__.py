"""pyflat: flatten strided arrays into contiguous batch-by-features matrices at
memory speed.

    >>> import numpy as np, pyflat
    >>> x = np.zeros((32, 3, 28, 28), np.float32)
    >>> pyflat.batch_flatten(x, data_format="channels_first").shape
    (32, 2352)
"""

from typing import TYPE_CHECKING, Any

from ._platform import check_platform

check_platform()  # before the extension: a clear error, not a missing symbol

from .api import ascontiguousarray, batch_flatten, flatten  # noqa: E402
from .explain import Plan, explain  # noqa: E402
from .layer import Flatten  # noqa: E402
from .stream import iter_flatten  # noqa: E402
from .threads import get_num_threads, set_num_threads  # noqa: E402

__version__: str  # from the package metadata, read on first access

if TYPE_CHECKING:
    from .files import flatten_file
else:
    def __getattr__(name: str) -> Any:
        # Loaded on first use: flatten_file's modules (files, atomic, npyfile,
        # tiles, progress) are a sixth of the import time, and most programs
        # that flatten arrays never stream a file.
        if name == "__version__":
            from ._version import version
            globals()["__version__"] = value = version()
            return value
        if name == "flatten_file":
            from .files import flatten_file
            globals()["flatten_file"] = flatten_file
            return flatten_file
        raise AttributeError(f"module 'pyflat' has no attribute {name!r}")

    def __dir__() -> list:
        return sorted(set(globals()) | {"__version__", "flatten_file"})

__all__ = [
    "batch_flatten", "flatten", "ascontiguousarray", "Flatten",
    "explain", "Plan", "set_num_threads", "get_num_threads",
    "flatten_file", "iter_flatten",
]
