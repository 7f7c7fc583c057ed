"""Where the bench's results go: files written whole or not at all, through
pyflat's one atomic writer (:mod:`pyflat.atomic`: fsync'd, then renamed)."""

from __future__ import annotations

import os
from typing import Union

from pyflat.atomic import atomic_output

__all__ = ["write_atomic"]


def write_atomic(path: str, data: Union[bytes, str]) -> None:
    """Write ``data`` (text as UTF-8) to ``path``, making its folder if needed."""
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    view = memoryview(data.encode() if isinstance(data, str) else data)
    with atomic_output(path, overwrite=True) as fd:
        while view:
            view = view[os.write(fd, view):]
