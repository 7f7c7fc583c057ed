"""The C entries for the common calls (pyflat/_fastcall.c), installed over
the Python implementations at import time.

:func:`wrap` gives a callable that answers the common call in C (an exact,
C-contiguous ``ndarray`` with the default arguments: a view, or numpy's copy
when it is tiny) and forwards every other call, arguments untouched, to the
Python implementation, so results, identity and errors are that function's.
The wrapper carries the function's ``__name__``, ``__qualname__``,
``__doc__``, ``__module__`` and ``__wrapped__`` (``help()`` and
``inspect.signature`` read the Python function's), binds as a method as
functions do, and pickles by name.

Without the extension (a build without a compiler for it, or
``PYFLAT_FASTCALL=0`` in the environment), :func:`wrap` returns the function
itself: the Python implementations alone give the same results, at a higher
per-call cost.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable, Optional, TypeVar

_F = TypeVar("_F", bound=Callable[..., Any])

__all__ = ["wrap", "available"]


def _load() -> Optional[Any]:
    if os.environ.get("PYFLAT_FASTCALL", "1") == "0":
        return None
    try:
        from . import _fastcall  # type: ignore[attr-defined]
    except ImportError:
        return None
    return _fastcall


_module = _load()


def available() -> bool:
    """Whether the C entries are in use."""
    return _module is not None


def wrap(func: _F, kind: str) -> _F:
    """``func`` with a C entry for its common call, or ``func`` itself
    without the extension.  ``kind``: ``"batch_flatten"``, ``"flatten"``,
    ``"ascontiguousarray"`` or ``"layer_call"`` (``Flatten.__call__``).
    The C entry copies as api's fast paths do, with numpy or by calling
    ``api._kernel_copy``, where :func:`api.kernel_takes_small` has decided
    (tiny copies, layouts in its cache), and leaves the others to ``func``."""
    if _module is None:
        return func
    code = {"batch_flatten": _module.BATCH_FLATTEN, "flatten": _module.FLATTEN,
            "ascontiguousarray": _module.ASCONTIGUOUSARRAY,
            "layer_call": _module.LAYER_CALL}[kind]
    from . import api  # its settings and decision cache, read by the C entry at each copy
    wrapper = _module.wrap(func, code, api.CHANNELS_LAST, api.CHANNELS_FIRST, vars(api))
    functools.update_wrapper(wrapper, func)
    return wrapper  # type: ignore[no-any-return]
