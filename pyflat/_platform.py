"""Refuse, at import, a platform pyflat cannot run on, with a clear message.

pyflat needs POSIX positional I/O (``os.preadv``/``os.pwrite``, used to stream
files in chunks) and POSIX threads (the C kernel's pool).  It is tested on
Linux x86-64 and aarch64; other POSIX systems are built on request.
"""

from __future__ import annotations

import os
import sys
from typing import Optional

__all__ = ["unsupported_reason", "check_platform"]


def unsupported_reason() -> Optional[str]:
    """Why pyflat cannot run here, or None when it can."""
    if os.name != "posix":
        return f"pyflat needs a POSIX system (Linux), not {sys.platform!r}"
    missing = [name for name in ("preadv", "pwrite") if not hasattr(os, name)]
    if missing:
        return (f"pyflat needs os.{' and os.'.join(missing)}, which Python does not "
                f"provide on {sys.platform!r}")
    return None


def check_platform() -> None:
    reason = unsupported_reason()
    if reason is not None:
        raise ImportError(f"{reason}. pyflat is tested on Linux x86-64 and aarch64; "
                          "other platforms are built on request.")
