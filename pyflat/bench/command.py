"""``pyflat bench``: time pyflat against numpy, torch and memcpy on the case
catalog, print a table, and optionally write JSON, a PNG and Markdown."""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import sys
from typing import Callable, Optional, Sequence

from pyflat.threads import MAX_THREADS, available_cpus

from . import fuzz_command
from .cases import CASES, Case, select_cases
from .impls import default_impls, import_torch
from .machine import describe
from .report import Report, write_atomic
from .runner import Settings, WrongResult, run, step_count

__all__ = ["main", "parser"]

FULL_REPEAT, QUICK_REPEAT = 7, 3


def _cases(text: str) -> list[Case]:
    try:
        return select_cases(text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _threads(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        counts = []
    if not counts or not all(1 <= n <= MAX_THREADS for n in counts):
        raise argparse.ArgumentTypeError(
            f"expected thread counts from 1 to {MAX_THREADS}, comma-separated, got {text!r}")
    return sorted(set(counts))


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pyflat bench", description=__doc__,
        epilog="GB/s counts bytes read + written (2 x the output). 'of memcpy' divides by "
               "the fastest memcpy of the same bytes using at most as many threads.")
    p.add_argument("--quick", action="store_true",
                   help="scaled-down sizes and fewer repetitions (well under a minute)")
    p.add_argument("--cases", type=_cases, metavar="A,B",
                   help="only these cases (see --list); default: all")
    p.add_argument("--threads", type=_threads, metavar="N[,M]",
                   help="thread counts for pyflat and memcpy; default: 1 and the CPUs "
                        f"available ({available_cpus()})")
    p.add_argument("--repeat", type=_positive, metavar="R",
                   help=f"timed repetitions per row (default {FULL_REPEAT}, "
                        f"{QUICK_REPEAT} with --quick)")
    p.add_argument("--no-torch", action="store_true", help="leave torch out even if installed")
    p.add_argument("--json", metavar="PATH", help="write every measurement as JSON")
    p.add_argument("--plot", metavar="PATH",
                   help="write a PNG of the fraction of memcpy (needs matplotlib)")
    p.add_argument("--markdown", metavar="PATH",
                   help="write a RESULTS.md-style report (links the --plot PNG)")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    fuzz_command.add_arguments(p)
    return p


def _check_outputs(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Fail before measuring, not after, when an output cannot be written."""
    for option in ("json", "plot", "markdown"):
        path = getattr(args, option)
        if path is None:
            continue
        directory = os.path.dirname(os.path.abspath(path))
        if os.path.isdir(path) or not os.path.isdir(directory):
            p.error(f"--{option}: {path!r} is not a file in an existing directory")
        if not os.access(directory, os.W_OK):
            p.error(f"--{option}: cannot write in {directory!r}")
    if args.plot:
        from .plot import require_matplotlib
        try:
            require_matplotlib()
        except ImportError as exc:
            p.error(str(exc))


def _progress_bar(total: int) -> tuple[Callable[[str], None], Callable[[], None]]:
    """A tqdm bar on stderr (when tqdm is installed and stderr is a terminal):
    the callback the runner calls before each step, and a closer."""
    try:
        from tqdm import tqdm
    except ImportError:
        return (lambda label: None), (lambda: None)
    bar = tqdm(total=total, unit="step", file=sys.stderr, disable=None, leave=False)
    started = False

    def step(label: str) -> None:
        nonlocal started
        if started:  # the previous step is done
            bar.update(1)
        started = True
        bar.set_postfix_str(label)

    def close() -> None:
        bar.update(total - bar.n)
        bar.close()
    return step, close


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = parser()
    args = p.parse_args(argv)
    if args.list:
        for case in CASES:
            print(f"{case.name:22} {case.data_format:15} {case.description}")
        return 0
    _check_outputs(p, args)
    fuzzed = fuzz_command.maybe_run(p, args, argv)
    if fuzzed is not None:
        return fuzzed

    cases = args.cases or select_cases()
    torch = None if args.no_torch else import_torch()
    impls = default_impls(args.threads or sorted({1, available_cpus()}), torch)
    settings = Settings(quick=args.quick,
                        repeat=args.repeat or (QUICK_REPEAT if args.quick else FULL_REPEAT))
    machine = describe(torch)  # before the run: its load average is the run's context
    step, close = _progress_bar(step_count(cases, impls, settings))
    try:
        infos, records = run(cases, impls, settings, step)
    except WrongResult as exc:
        print(f"pyflat bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("pyflat bench: interrupted; nothing written", file=sys.stderr)
        return 130
    finally:
        close()

    report = Report(
        date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        command=shlex.join(["pyflat", "bench", *argv]),
        machine=machine, settings=settings, cases=infos, records=records)
    print(report.table())
    print()
    print(report.headline())
    outputs = {}  # all rendered before any is written
    if args.json:
        outputs[args.json] = report.to_json()
    if args.plot:
        from .plot import render_png
        outputs[args.plot] = render_png(report)
    if args.markdown:
        outputs[args.markdown] = report.markdown(args.plot, args.markdown)
    for path, data in outputs.items():
        write_atomic(path, data)
        print(f"wrote {path}")
    return 0
