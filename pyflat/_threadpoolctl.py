"""pyflat's pool as a threadpoolctl library: ``threadpool_info()`` lists it
(user_api ``"pyflat"``) and ``threadpool_limits(n)`` sets its default thread
count.  Imported only once threadpoolctl is (see threads.py)."""

from __future__ import annotations

from threadpoolctl import LibController, register

from . import threads

__all__ = ["PyflatController", "register_controller"]


class PyflatController(LibController):  # type: ignore[misc]  # threadpoolctl is untyped
    user_api = "pyflat"
    internal_api = "pyflat"
    filename_prefixes = ("_pyflat",)  # the cffi extension, pyflat/_pyflat.*.so
    check_symbols = ("pf_set_default_threads", "pf_get_default_threads")

    def get_num_threads(self) -> int:
        return threads.get_num_threads()

    def set_num_threads(self, num_threads: int) -> None:
        # threadpoolctl may ask for any count: clamp it to what pyflat takes.
        threads.set_num_threads(min(max(1, int(num_threads)), threads.MAX_THREADS))

    def get_version(self) -> str:
        from . import __version__
        return __version__


_registered = False


def register_controller() -> None:
    global _registered
    if not _registered:
        register(PyflatController)
        _registered = True
