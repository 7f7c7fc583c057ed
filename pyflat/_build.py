"""cffi build script (out-of-line API mode), run by setup.py's ``cffi_modules``.

The cdef is read from ``csrc/pyflat.h`` itself, so the C declarations live in
one place.  Environment knobs for test builds:

- ``PYFLAT_SANITIZE=1``: compile and link with ``-fsanitize=address,undefined``.
- ``PYFLAT_CFLAGS``: extra compiler flags, e.g. ``-Werror``.
"""

import os
import re
import shlex

import cffi

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CSRC = os.path.join(ROOT, "csrc")
SOURCES = ["plan.c", "kernels.c", "micro_x86.c", "pool.c", "simd.c"]
_INT_DEFINE = re.compile(r"#define\s+\w+\s+\d+\s*$")


def read_cdef(header_path: str) -> str:
    """The header without preprocessor lines, except integer #defines."""
    kept = []
    with open(header_path, encoding="utf-8") as header:
        for line in header:
            stripped = line.strip()
            if stripped.startswith("#") and not _INT_DEFINE.match(stripped):
                continue
            kept.append(line)
    return "".join(kept)


def compile_flags() -> tuple[list[str], list[str]]:
    cflags = ["-std=c11", "-O3", "-Wall", "-Wextra", "-pthread"]
    ldflags = ["-pthread"]
    if os.environ.get("PYFLAT_SANITIZE") == "1":
        sanitize = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer",
                    "-fno-sanitize-recover=undefined"]
        cflags += sanitize + ["-O1", "-g"]
        ldflags += sanitize
    cflags += shlex.split(os.environ.get("PYFLAT_CFLAGS", ""))
    return cflags, ldflags


ffibuilder = cffi.FFI()
ffibuilder.cdef(read_cdef(os.path.join(CSRC, "pyflat.h")))
_cflags, _ldflags = compile_flags()
ffibuilder.set_source(
    "pyflat._pyflat",
    '#include "pyflat.h"',
    # setuptools wants source paths relative to setup.py.
    sources=[os.path.relpath(os.path.join(CSRC, s), os.getcwd()) for s in SOURCES],
    include_dirs=[CSRC],
    depends=[os.path.join(CSRC, h) for h in ("pyflat.h", "internal.h")],
    extra_compile_args=_cflags,
    extra_link_args=_ldflags,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
