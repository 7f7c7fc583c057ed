"""``pyflat bench``: pyflat timed against numpy, torch and memcpy, side by
side in one process, on a catalog of real input layouts.

- :mod:`.cases`: the case catalog (shared with the pytest-benchmark suite in
  ``bench/``), :mod:`.impls`: the implementations timed,
- :mod:`.runner`: measuring, :mod:`.machine`: what it ran on,
- :mod:`.report`: JSON, tables, Markdown; :mod:`.plot`: the PNG;
  :mod:`.output`: writing them (atomically),
- :mod:`.command`: the command line, ``main(argv)``.
"""

from .command import main

__all__ = ["main"]
