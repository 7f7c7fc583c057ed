"""``pyflat bench``: pyflat timed against numpy, torch and memcpy, side by
side in one process, on a catalog of real input layouts.

- :mod:`.cases`: the case catalog (shared with the pytest-benchmark suite in
  ``bench/``), :mod:`.impls`: the implementations timed,
- :mod:`.runner`: measuring, :mod:`.machine`: what it ran on,
- :mod:`.report`: JSON, tables, Markdown; :mod:`.plot`: the PNG,
- :mod:`.command`: the command line, ``main(argv)``;
- the performance fuzzer (``--fuzz N``): :mod:`.fuzz` draws random layouts
  (``fuzz.layouts(seed, count)``, reusable for tuning), :mod:`.fuzz_run`
  measures them, :mod:`.fuzz_report` summarises, plots and writes JSON and
  Markdown, :mod:`.fuzz_command` is its part of the command line.
"""

from .command import main

__all__ = ["main"]
