"""``pyflat flatten SRC DST``: flatten a ``.npy`` file, however large, into a
``(batch, features)`` ``.npy``, chunk by chunk, replacing nothing unless asked."""

from __future__ import annotations

import argparse
import math
import sys
from typing import List, NoReturn, Optional, Sequence, Union

from .api import DATA_FORMATS, check_data_format
from .atomic import TEMPORARY_GLOB, NotDurableError, NotDurableInterrupt
from .convert import CASTINGS
from .files import DEFAULT_CHUNK_BYTES, flatten_file

MIB = 2**20

# Exit statuses (also in --help and the README).
OK, BAD_INPUT, NOT_DURABLE, INTERRUPTED = 0, 2, 3, 130


def _chunk_mb(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value * MIB >= 1):
        raise argparse.ArgumentTypeError(f"expected a positive number of MiB, got {text!r}")
    return value


def _factor(text: str) -> Union[float, List[float]]:
    """``--scale`` / ``--offset``: a number, or comma-separated numbers (one
    per channel)."""
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or comma-separated numbers "
                                         f"(one per channel), got {text!r}") from None
    return values[0] if len(values) == 1 and "," not in text else values


def _data_format(text: str) -> str:
    try:
        return check_data_format(text)  # case-insensitive, as Keras reads it
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid choice: {text!r} (choose from "
            f"{', '.join(repr(f) for f in DATA_FORMATS)})") from None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """A bad option gets one line too, as a bad file does."""
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = _Parser(
        prog="pyflat flatten",
        description="Flatten a .npy file, however large, into a (batch, features) .npy, "
                    "chunk by chunk; DST appears only when complete.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"""exit status:
  {OK}    done: DST complete and fsync'd
  {BAD_INPUT}    an error (bad arguments, a bad SRC, a DST that may not be written, an
       I/O error): DST untouched
  {NOT_DURABLE}    DST complete, but its durability not confirmed (the fsync of its
       folder failed or was interrupted)
  {INTERRUPTED}  Ctrl-C: DST untouched
  SIGTERM and SIGHUP end the command as usual (128 + the signal number in a shell)
  after removing the temporary file; only SIGKILL or a crash can leave one behind,
  named {TEMPORARY_GLOB} in DST's folder.""")
    parser.add_argument("src", metavar="SRC", help="the .npy file to read")
    parser.add_argument("dst", metavar="DST", help="the .npy file to write")
    parser.add_argument("--data-format", type=_data_format, default="channels_last",
                        metavar="{" + ",".join(DATA_FORMATS) + "}",
                        help="channels_first moves axis 1 last before flattening "
                             "(default: %(default)s)")
    parser.add_argument("--dtype", default=None, metavar="DTYPE",
                        help="convert to this numpy dtype while copying (float32, "
                             "float16, int16, ...; default: the source's)")
    parser.add_argument("--casting", default="same_kind", choices=CASTINGS,
                        help="numpy's casting rule for --dtype (default: %(default)s; "
                             "float to integer needs unsafe)")
    parser.add_argument("--scale", type=_factor, default=None, metavar="X[,X...]",
                        help="multiply by X (one number, or one per channel), in the "
                             "result dtype")
    parser.add_argument("--offset", type=_factor, default=None, metavar="X[,X...]",
                        help="then add X (one number, or one per channel; write "
                             "--offset=-1,0 when it starts with a minus)")
    parser.add_argument("--chunk-mb", type=_chunk_mb, default=DEFAULT_CHUNK_BYTES / MIB,
                        metavar="N", help="chunk size in MiB; memory use is about two "
                                          "chunks (default: %(default)g)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing DST")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar (there is none when stderr is not a "
                             "terminal or tqdm is not installed)")
    args = parser.parse_args(argv)
    try:
        result = flatten_file(args.src, args.dst, data_format=args.data_format,
                              dtype=args.dtype, casting=args.casting, scale=args.scale,
                              offset=args.offset, chunk_bytes=int(args.chunk_mb * MIB),
                              overwrite=args.overwrite,
                              progress=False if args.no_progress else None)
    except (NotDurableError, NotDurableInterrupt) as exc:
        print(f"pyflat flatten: warning: {_one_line(exc)}", file=sys.stderr)
        return NOT_DURABLE
    except KeyboardInterrupt:
        print("pyflat flatten: interrupted; DST left untouched", file=sys.stderr)
        return INTERRUPTED
    except (OSError, ValueError, TypeError, ImportError) as exc:
        print(f"pyflat flatten: error: {_one_line(exc)}", file=sys.stderr)
        return BAD_INPUT
    print(result.summary())
    return OK
