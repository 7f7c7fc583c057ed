"""``pyflat bench --fuzz N``: the performance fuzzer's options and run.

``command.py`` adds these options to its parser (:func:`add_arguments`) and
hands a run with ``--fuzz`` to :func:`run`.
"""

from __future__ import annotations

import argparse
import datetime
import re
import shlex
import sys
from typing import Callable, Optional, Sequence

from pyflat.threads import available_cpus

from .fuzz import MAX_BYTES, MIN_BYTES, make_array
from .fuzz_report import FuzzReport, markdown, render_scatter
from .fuzz_run import FuzzResult, FuzzSettings, explain_text, measure_all
from .machine import describe
from .report import write_atomic
from .runner import WrongResult

__all__ = ["add_arguments", "run", "parse_sizes", "FUZZ_REPEAT", "QUICK_SIZES"]

FUZZ_REPEAT, FUZZ_QUICK_REPEAT = 5, 3
QUICK_SIZES = (256 << 10, 4 << 20)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def _size(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]?)i?B?\s*", text, re.IGNORECASE)
    if not match:
        raise ValueError(text)
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def parse_sizes(text: str) -> tuple[int, int]:
    """``"1M-64M"`` -> ``(1 << 20, 64 << 20)``: bytes, with K, M or G (powers of 1024)."""
    low, sep, high = text.partition("-")
    try:
        sizes = (_size(low), _size(high)) if sep else None
    except ValueError:
        sizes = None
    if sizes is None or not 0 < sizes[0] <= sizes[1]:
        raise argparse.ArgumentTypeError(
            f"expected MIN-MAX output bytes with 0 < MIN <= MAX, such as 1M-64M, got {text!r}")
    return sizes


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of layouts, got {text!r}")
    return int(text)


def _seed(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return int(text)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The fuzzer's options (``--threads``, ``--repeat``, ``--json``, ``--plot``
    and ``--quick`` are shared with the catalog run)."""
    g = p.add_argument_group(
        "performance fuzzer",
        "--fuzz N times N random layouts (pyflat.bench.fuzz documents the distribution) "
        "against their traffic limit and numpy, on one thread count (--threads T, default "
        f"the CPUs available); --quick: outputs of {QUICK_SIZES[0] >> 10} KiB to "
        f"{QUICK_SIZES[1] >> 20} MiB and {FUZZ_QUICK_REPEAT} rounds; --json, --plot (the "
        "fraction of the limit against output size) and --markdown write its report")
    g.add_argument("--fuzz", type=_count, metavar="N", help="fuzz N random layouts")
    g.add_argument("--seed", type=_seed, metavar="S",
                   help="the fuzz seed (default 0): the same seed gives the same layouts")
    g.add_argument("--fuzz-start", type=_seed, metavar="I",
                   help="first layout index (default 0): --fuzz 1 --seed S --fuzz-start I "
                        "measures layout #I of seed S alone")
    g.add_argument("--fuzz-sizes", type=parse_sizes, metavar="MIN-MAX",
                   help=f"output bytes of the fuzzed layouts (default "
                        f"{MIN_BYTES >> 20}M-{MAX_BYTES >> 20}M), log-uniform")


def _progress_bar(total: int) -> tuple[Callable[[FuzzResult], None], Callable[[], None]]:
    """A tqdm bar on stderr (tqdm installed, stderr a terminal), ticking per layout."""
    try:
        from tqdm import tqdm
    except ImportError:
        return (lambda result: None), (lambda: None)
    bar = tqdm(total=total, unit="layout", file=sys.stderr, disable=None, leave=False)

    def step(result: FuzzResult) -> None:
        bar.update(1)
        bar.set_postfix_str(f"#{result.layout.index} {result.fraction_of_limit():.2f} "
                            f"of limit, {result.speedup_vs_numpy:.2f}x numpy")
    return step, bar.close


def settings_from(p: argparse.ArgumentParser, args: argparse.Namespace) -> FuzzSettings:
    """The run's settings, or a parser error naming the option at fault."""
    if args.cases:
        p.error("--cases: not available with --fuzz (it draws its own layouts)")
    if args.threads and len(args.threads) > 1:
        p.error(f"--threads: --fuzz takes one thread count, got {args.threads}")
    threads = args.threads[0] if args.threads else available_cpus()
    sizes = args.fuzz_sizes or (QUICK_SIZES if args.quick else (MIN_BYTES, MAX_BYTES))
    repeat = args.repeat or (FUZZ_QUICK_REPEAT if args.quick else FUZZ_REPEAT)
    return FuzzSettings(seed=args.seed or 0, count=args.fuzz, threads=threads,
                        min_bytes=sizes[0], max_bytes=sizes[1], repeat=repeat,
                        start=args.fuzz_start or 0)


def run(p: argparse.ArgumentParser, args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Measure, print the summary and the worst layouts, write --json, --plot
    and --markdown."""
    settings = settings_from(p, args)
    machine = describe(None)
    step, close = _progress_bar(settings.count)
    try:
        results = measure_all(settings, step)
    except WrongResult as exc:
        print(f"pyflat bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("pyflat bench: interrupted; nothing written", file=sys.stderr)
        return 130
    finally:
        close()
    report = FuzzReport(
        date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        command=shlex.join(["pyflat", "bench", *argv]), machine=machine,
        settings=settings, results=results)
    for r in report.worst():  # rebuilt from the seed: explain() needs the array
        r.explain_text = explain_text(r.layout, make_array(r.layout), settings.threads)
    print(report.text())
    outputs: dict = {}
    if args.json:
        outputs[args.json] = report.to_json()
    if args.plot:
        outputs[args.plot] = render_scatter(report)
    if args.markdown:
        outputs[args.markdown] = markdown(report, args.plot, args.markdown)
    for path, data in outputs.items():
        write_atomic(path, data)
        print(f"wrote {path}")
    return 0


def maybe_run(p: argparse.ArgumentParser, args: argparse.Namespace,
              argv: Sequence[str]) -> Optional[int]:
    """:func:`run` when ``--fuzz`` was given, else ``None`` (the catalog run)."""
    if args.fuzz is None:
        for option in ("seed", "fuzz_sizes", "fuzz_start"):
            if getattr(args, option) is not None:
                p.error(f"--{option.replace('_', '-')}: only with --fuzz N")
        return None
    return run(p, args, argv)
