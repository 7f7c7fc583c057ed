"""The ``pyflat`` command: ``pyflat <command> [options]``.

Each command lives in its own module with a ``main(argv) -> int``; this file
only dispatches, so adding a command is one line in ``COMMANDS``.
"""

from __future__ import annotations

import importlib
import sys
from typing import Optional, Sequence

COMMANDS = {
    "bench": ("pyflat.bench", "time pyflat against numpy, torch and memcpy; table, JSON, plot"),
    "flatten": ("pyflat.flatten_command", "flatten a .npy file larger than memory"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    rows = "\n".join(f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items())
    return ("usage: pyflat <command> [options]\n       pyflat --version\n\ncommands:\n"
            + rows + "\n\n'pyflat <command> --help' describes a command.")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run a command; its exit status (2: a usage error, as argparse's)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(f"pyflat: expected a command\n\n{_usage()}", file=sys.stderr)
        return 2
    if args[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if args[0] in ("-V", "--version"):
        from . import __version__
        print(f"pyflat {__version__}")
        return 0
    if args[0] not in COMMANDS:
        print(f"pyflat: unknown command {args[0]!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[args[0]][0])
    status: int = module.main(args[1:])
    return status


if __name__ == "__main__":
    sys.exit(main())
