"""Write a file so that it appears under its name only when complete.

The content goes to a hidden temporary file in the same folder, is fsync'd,
and is then renamed to the name (atomically, on one file system); the folder
is fsync'd so that the rename survives a crash too.  An error or Ctrl-C
removes the temporary file; a SIGKILL can leave it behind (as
``.NAME.XXXXXXXX.tmp``), never a partial file under NAME.
"""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from typing import Iterator, Tuple

__all__ = ["atomic_output"]


def _create_temporary(folder: str, name: str) -> Tuple[int, str]:
    """A new hidden file in ``folder``, with the usual permissions (umask)."""
    while True:
        path = os.path.join(folder, f".{name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                           0o666), path
        except FileExistsError:
            continue
        except OSError as exc:
            raise type(exc)(f"dst: cannot create a file in {folder!r}: "
                            f"{exc.strerror or exc}") from exc


def _publish(temporary: str, dst: str, overwrite: bool) -> None:
    """Give the complete file its name, atomically."""
    if overwrite:
        os.replace(temporary, dst)
        return
    try:
        os.link(temporary, dst)  # fails if DST appeared meanwhile: never clobber it
    except FileExistsError:
        raise FileExistsError(f"dst {dst!r}: appeared while flattening; not replaced "
                              f"(pass overwrite=True to replace it)") from None
    except OSError:  # a file system without hard links: check, then rename
        if os.path.lexists(dst):
            raise FileExistsError(f"dst {dst!r}: appeared while flattening") from None
        os.replace(temporary, dst)
        return
    os.unlink(temporary)


def _fsync_folder(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_output(dst: str, overwrite: bool) -> Iterator[int]:
    """A file descriptor to write the content of ``dst`` to.  ``dst`` is
    created (or, with ``overwrite``, replaced) when the block completes, and
    not touched when it raises, Ctrl-C included."""
    folder = os.path.dirname(os.path.abspath(dst))
    fd, temporary = _create_temporary(folder, os.path.basename(dst))
    try:
        try:
            yield fd
            os.fsync(fd)
        finally:
            os.close(fd)
        _publish(temporary, dst, overwrite)
    except BaseException:  # also KeyboardInterrupt: no partial file stays behind
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    _fsync_folder(folder)
