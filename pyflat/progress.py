"""Progress reporting for long copies: a tqdm bar on a terminal, a callback,
or nothing.  tqdm is optional: without it there is simply no bar."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional, Union, cast

__all__ = ["Progress", "check_progress", "reporter", "tqdm_class"]

#: ``None``: a bar when tqdm is installed and stderr is a terminal; ``False``:
#: silent; ``True``: a tqdm bar on stderr even when not a terminal (needs tqdm);
#: a callable: called as ``progress(done_bytes, total_bytes)`` after each chunk.
Progress = Optional[Union[bool, Callable[[int, int], Any]]]


def check_progress(progress: Any) -> Progress:
    if progress is None or isinstance(progress, bool) or callable(progress):
        return cast(Progress, progress)  # a callable's signature is checked when called
    raise TypeError(f"progress: expected None, True, False or a callable "
                    f"(done_bytes, total_bytes), got {type(progress).__name__}")


def _stderr_is_terminal() -> bool:
    return sys.stderr is not None and sys.stderr.isatty()


def tqdm_class(progress: Progress) -> Any:
    """The one decision of whether to show a bar, for pyflat's functions and
    its commands alike: tqdm's class when a bar is wanted (and available),
    else None."""
    if callable(progress) or progress is False:
        return None
    if progress is None and not _stderr_is_terminal():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        if progress is True:
            raise ImportError("progress=True needs tqdm: pip install tqdm") from None
        return None
    return tqdm


@contextmanager
def reporter(progress: Progress, total_bytes: int,
             description: str) -> Iterator[Callable[[int], None]]:
    """A function to call with the number of bytes each step has done."""
    if callable(progress):
        done = 0

        def update(nbytes: int) -> None:
            nonlocal done
            done += nbytes
            progress(done, total_bytes)

        yield update
        return
    tqdm = tqdm_class(progress)
    if tqdm is None:
        yield lambda nbytes: None
        return
    with tqdm(total=total_bytes, unit="B", unit_scale=True, desc=description,
              file=sys.stderr, leave=False) as bar:
        yield bar.update
