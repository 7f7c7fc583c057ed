"""Write a file so that it appears under its name only when complete.

The content goes to a hidden temporary file in the same folder, is fsync'd,
and is then renamed to the name (atomically, on one file system); the folder
is fsync'd so that the rename survives a crash too.

- An error, Ctrl-C, SIGTERM or SIGHUP removes the temporary file (the two
  signals, when they would kill the process anyway, still do: after the clean
  up).  Only SIGKILL or a crash can leave one behind, named
  ``.pyflat-XXXXXXXX-NAME.tmp`` (:data:`TEMPORARY_GLOB`) beside NAME; never a
  partial file under NAME.
- A replaced file's permission bits are kept; a new file gets ``0666`` minus
  the umask, as ``numpy.save`` gives.
- A failure once the file has its name (the folder's fsync failing, Ctrl-C
  during it) raises :class:`NotDurableError` or :class:`NotDurableInterrupt`:
  the file is complete, only its durability is not confirmed.
"""

from __future__ import annotations

import errno
import os
import secrets
import signal
import stat
import threading
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Optional, Tuple

__all__ = ["atomic_output", "NotDurableError", "NotDurableInterrupt", "TEMPORARY_GLOB"]

TEMPORARY_PREFIX = ".pyflat-"
TEMPORARY_SUFFIX = ".tmp"
#: How to find what a SIGKILL or a crash left: ``find DIR -name '.pyflat-*.tmp'``.
TEMPORARY_GLOB = TEMPORARY_PREFIX + "*" + TEMPORARY_SUFFIX
_CLEANED_UP_ON = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP")
                       if hasattr(signal, name))


class NotDurableError(OSError):
    """The file is complete under its name, but the fsync that makes the rename
    survive a crash failed: its durability is not confirmed."""


class NotDurableInterrupt(KeyboardInterrupt):
    """Ctrl-C once the file was complete under its name, before its durability
    was confirmed."""


class _Terminated(BaseException):
    """Raised by the handler of a terminating signal, so that clean-up runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum: int, frame: Any) -> None:
    raise _Terminated(signum)


@contextmanager
def _cleanup_on_termination() -> Iterator[None]:
    """SIGTERM and SIGHUP raise instead of killing at once, so the block's
    clean-up runs; then the signal is raised again and kills as it would have.
    Only where they would kill (default handler) and only in the main thread
    (the only one where Python runs handlers)."""
    installed: Dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in _CLEANED_UP_ON:
            if signal.getsignal(signum) == signal.SIG_DFL:
                installed[signum] = signal.signal(signum, _raise_terminated)
    try:
        yield
    except _Terminated as exc:
        for signum, handler in installed.items():
            signal.signal(signum, handler)
        installed.clear()
        signal.raise_signal(exc.signum)  # dies here, as without the handler
        raise
    finally:
        for signum, handler in installed.items():
            signal.signal(signum, handler)


def name_max(folder: str) -> int:
    """The longest file name, in bytes, the file system of ``folder`` takes."""
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return 255


def temporary_name(folder: str, name: str) -> str:
    """``.pyflat-XXXXXXXX-NAME.tmp``, NAME cut so that the whole fits the file
    system's name limit, however long NAME is."""
    head = f"{TEMPORARY_PREFIX}{secrets.token_hex(4)}-"
    encoded = os.fsencode(name)
    cut = max(name_max(folder) - len(head) - len(TEMPORARY_SUFFIX), 0)
    while 0 < cut < len(encoded) and encoded[cut] & 0xC0 == 0x80:
        cut -= 1  # not inside a UTF-8 character
    return head + os.fsdecode(encoded[:cut]) + TEMPORARY_SUFFIX


def _create_temporary(folder: str, name: str, private: bool) -> Tuple[int, str]:
    """A new hidden file in ``folder``: mode 0666 minus the umask, or 0600
    while it will replace a file whose mode is set at the end."""
    while True:
        path = os.path.join(folder, temporary_name(folder, name))
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                           0o600 if private else 0o666), path
        except FileExistsError:
            continue
        except OSError as exc:
            raise type(exc)(exc.errno, f"dst: cannot create a file in {folder!r}: "
                                       f"{exc.strerror}", exc.filename) from exc


def _publish(temporary: str, dst: str, overwrite: bool) -> None:
    """Give the complete file its name, atomically."""
    if overwrite:
        os.replace(temporary, dst)
        return
    try:
        os.link(temporary, dst)  # fails if DST appeared meanwhile: never clobber it
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, "dst: appeared while flattening; not replaced "
                                            "(pass overwrite=True to replace it)", dst) from None
    except OSError:  # a file system without hard links: check, then rename
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "dst: appeared while flattening",
                                  dst) from None
        os.replace(temporary, dst)
        return
    os.unlink(temporary)


def _published(temporary: str, dst: str) -> bool:
    """Whether ``dst`` is already the temporary file (renamed, or linked)."""
    try:
        made = os.lstat(temporary)
    except FileNotFoundError:
        return True  # renamed into place
    try:
        return os.path.samestat(os.lstat(dst), made)
    except OSError:
        return False


def _fsync_folder(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replaced_mode(dst: str) -> Optional[int]:
    """The permission bits of the regular file ``dst`` will replace, if any."""
    try:
        info = os.stat(dst)
    except OSError:
        return None
    # setuid/setgid are not carried over to new content.
    return stat.S_IMODE(info.st_mode) & ~(stat.S_ISUID | stat.S_ISGID) \
        if stat.S_ISREG(info.st_mode) else None


@contextmanager
def atomic_output(dst: str, overwrite: bool) -> Iterator[int]:
    """A file descriptor to write the content of ``dst`` to.  ``dst`` is
    created (or, with ``overwrite``, replaced) when the block completes, and
    not touched when it raises, Ctrl-C, SIGTERM and SIGHUP included.

    ``dst`` must name a regular file or nothing (callers check; see
    :func:`pyflat.flatten_file`).
    """
    folder = os.path.dirname(os.path.abspath(dst))
    mode = _replaced_mode(dst) if overwrite else None
    with _cleanup_on_termination():
        fd, temporary = _create_temporary(folder, os.path.basename(dst), mode is not None)
        try:
            try:
                yield fd
                if mode is not None:
                    os.fchmod(fd, mode)
                os.fsync(fd)
            finally:
                os.close(fd)
            _publish(temporary, dst, overwrite)
            _fsync_folder(folder)
        except BaseException as exc:  # also Ctrl-C and signals: no partial file stays
            published = _published(temporary, dst)
            try:
                os.unlink(temporary)  # after a link, the name dst stays
            except FileNotFoundError:
                pass
            if not published or isinstance(exc, _Terminated):
                raise
            _report_not_durable(exc, dst, folder)


def _report_not_durable(exc: BaseException, dst: str, folder: str) -> None:
    """Raise what is true after ``dst`` got its name: it is complete."""
    what = (f"dst {dst!r}: complete, but its durability is not confirmed (the fsync of "
            f"its folder {folder!r}")
    if isinstance(exc, KeyboardInterrupt):
        raise NotDurableInterrupt(f"{what} was interrupted)") from exc
    if isinstance(exc, OSError):
        raise NotDurableError(exc.errno, f"{what} failed: {exc.strerror})",
                              exc.filename or folder) from exc
    raise exc
