"""``pyflat bench``: time pyflat against numpy, torch and memcpy on the case
catalog, print a table and what its labels mean, and write the measurements
as JSON and a plot (PNG) into ./pyflat-bench/ (or where --out, --json and
--plot say), and Markdown when asked.  The conversion cases (issue 14) also
compare pyflat with what users write in numpy, torch and torchvision."""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import sys
from typing import Any, Callable, Optional, Sequence

from pyflat.progress import tqdm_class
from pyflat.threads import MAX_THREADS, available_cpus

from . import fuzz_command
from .cases import CASES, Case, conversion_cases, select_cases
from .impls import default_impls, import_torch
from .machine import describe
from .output import write_atomic
from .report import CONVERSIONS, Report
from .runner import Settings, WrongResult, run, step_count

__all__ = ["main", "parser"]

FULL_REPEAT, QUICK_REPEAT = 7, 3
DEFAULT_OUT = "pyflat-bench"  # folder for the JSON and the plot, in the current one


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
        epilog="The output explains every column and label; so does the README, "
               "'Benchmarks'.")
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
    p.add_argument("--out", metavar="DIR", default=DEFAULT_OUT,
                   help=f"folder for results.json and results.png (default: ./{DEFAULT_OUT}, "
                        "created when needed); --json and --plot choose other paths")
    p.add_argument("--json", metavar="PATH",
                   help="write every measurement as JSON here (default: DIR/results.json)")
    p.add_argument("--plot", metavar="PATH",
                   help="write a PNG of the speedups and the fraction of memcpy here "
                        "(needs matplotlib; default: DIR/results.png when it is installed)")
    p.add_argument("--markdown", metavar="PATH",
                   help="write a RESULTS.md-style report (links the --plot PNG)")
    p.add_argument("--conversions", action="store_true",
                   help="only the conversion cases (issue 14); with --markdown, write (or "
                        "replace) only their section of the file")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    p.add_argument("--pipeline", action="store_true",
                   help="instead: small inputs and repeated calls (per-call cost, items/s, "
                        "a torch DataLoader); 'pyflat bench --pipeline --help' lists its options")
    fuzz_command.add_arguments(p)
    return p


def _has_matplotlib() -> bool:
    from .plot import require_matplotlib
    try:
        require_matplotlib()
    except ImportError:
        return False
    return True


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
    if args.json is None or args.plot is None:  # something goes to --out
        out = os.path.abspath(args.out)
        existing = out
        while not os.path.exists(existing):
            existing = os.path.dirname(existing)
        if not os.path.isdir(existing) or not os.access(existing, os.W_OK):
            p.error(f"--out: cannot write in {args.out!r}")
    if args.plot:
        from .plot import require_matplotlib
        try:
            require_matplotlib()
        except ImportError as exc:
            p.error(str(exc))


def _output_paths(args: argparse.Namespace) -> tuple[str, Optional[str], list[str]]:
    """Where the JSON and the plot go (None: no plot), and notes to print."""
    json_path = args.json or os.path.join(args.out, "results.json")
    if args.plot or _has_matplotlib():
        return json_path, args.plot or os.path.join(args.out, "results.png"), []
    return json_path, None, ["no plot: matplotlib is not installed "
                             "(pip install 'pyflat[bench]')"]


def _torch_note(torch: Any, left_out: bool) -> list[str]:
    if left_out:
        return ["torch: left out (--no-torch)"]
    if torch is None:
        return ["torch: not installed, so not compared (pip install torch)"]
    return []


def _progress_bar(total: int) -> tuple[Callable[[str], None], Callable[[], None]]:
    """A tqdm bar on stderr, when pyflat's one rule for bars says so (tqdm
    installed, stderr a terminal): the callback the runner calls before each
    step, and a closer."""
    tqdm = tqdm_class(None)
    if tqdm is None:
        return (lambda label: None), (lambda: None)
    bar = tqdm(total=total, unit="step", file=sys.stderr, leave=False)
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


def _markdown(path: str, report: Report, plot_path: Optional[str], conversions: bool) -> str:
    """The new text of the Markdown file at ``path``: with ``conversions``,
    the file as it is with the conversions' section replaced; otherwise the
    full report, keeping the sections of --pipeline and --conversions that
    this run did not measure."""
    if conversions:
        try:
            with open(path, encoding="utf-8") as f:
                existing = f.read()
        except FileNotFoundError:
            existing = ""
        target = (os.path.relpath(plot_path, os.path.dirname(os.path.abspath(path)))
                  if plot_path else None)
        return CONVERSIONS.merge(existing, report.conversion_section(target))
    from .pipeline import keep_section
    return keep_section(path, CONVERSIONS.keep(path, report.markdown(plot_path, path)))


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--pipeline" in argv:  # its own options: see pipeline.py
        from .pipeline import main as pipeline_main
        return pipeline_main([arg for arg in argv if arg != "--pipeline"])
    p = parser()
    args = p.parse_args(argv)
    if args.list:
        for case in CASES:
            print(f"{case.name:22} {case.data_format:15} {case.description}")
        return 0
    if args.conversions and args.cases:
        p.error("--conversions: not with --cases (it selects the conversion cases)")
    _check_outputs(p, args)
    fuzzed = fuzz_command.maybe_run(p, args, argv)
    if fuzzed is not None:
        return fuzzed

    cases = conversion_cases() if args.conversions else args.cases or select_cases()
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

    json_path, plot_path, notes = _output_paths(args)
    report = Report(
        date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        command=shlex.join(["pyflat", "bench", *argv]),
        machine=machine, settings=settings, cases=infos, records=records,
        notes=_torch_note(torch, args.no_torch))
    print(report.table())
    print()
    print(report.legend())
    print()
    print(report.headline())
    outputs: dict[str, bytes | str] = {json_path: report.to_json()}  # rendered before written
    if plot_path:
        from .plot import render_png
        outputs[plot_path] = render_png(report)
    if args.markdown:
        outputs[args.markdown] = _markdown(args.markdown, report, plot_path, args.conversions)
    for path, data in outputs.items():
        write_atomic(path, data)
        print(f"wrote {os.path.abspath(path)}")
    for note in notes:
        print(note)
    return 0
