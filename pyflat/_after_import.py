"""Run a function when a module is imported, without importing it.

pyflat registers itself with optional libraries (threadpoolctl) that it must
not import: that would slow ``import pyflat`` for everyone.  A one-shot finder
at the front of ``sys.meta_path`` waits for the module's import, lets the
usual finder and loader do the work, then calls the function.
"""

from __future__ import annotations

import sys
import warnings
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence, cast

if TYPE_CHECKING:
    from importlib.abc import Loader

__all__ = ["call_after_import"]

Callback = Callable[[ModuleType], None]


def call_after_import(name: str, callback: Callback) -> None:
    """``callback(module)`` now if ``name`` is imported, else right after its
    import (once).  An exception from ``callback`` becomes a warning: it must
    not break the other library's import."""
    module = sys.modules.get(name)
    if module is not None:
        _call(callback, module)
    else:
        sys.meta_path.insert(0, _Finder(name, callback))


def _call(callback: Callback, module: ModuleType) -> None:
    try:
        callback(module)
    except Exception as exc:  # noqa: BLE001 (reported, not raised: see above)
        warnings.warn(f"pyflat could not register with {module.__name__}: {exc!r}",
                      RuntimeWarning, stacklevel=2)


class _Finder:
    """Finds nothing itself: for ``name``, it asks the other finders and wraps
    the loader of the spec they return."""

    def __init__(self, name: str, callback: Callback) -> None:
        self.name, self.callback, self.searching = name, callback, False

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None,
                  target: Optional[ModuleType] = None) -> Any:
        if fullname != self.name or self.searching:
            return None
        import importlib.util
        self.searching = True  # find_spec below walks sys.meta_path, this too
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self.searching = False
        if spec is None or spec.loader is None:
            return None  # not installed (yet): keep waiting
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        spec.loader = cast("Loader", _CallbackLoader(spec.loader, self.callback))
        return spec


class _CallbackLoader:
    """The real loader, then the callback; the module keeps the real loader."""

    def __init__(self, loader: Any, callback: Callback) -> None:
        self.loader, self.callback = loader, callback

    def create_module(self, spec: Any) -> Optional[ModuleType]:
        module: Optional[ModuleType] = self.loader.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        _call(self.callback, module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)
