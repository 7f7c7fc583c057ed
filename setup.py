"""Build the extensions; metadata lives in pyproject.toml.

- ``pyflat._pyflat``: the cffi kernel (pyflat/_build.py).
- ``pyflat._fastcall``: a small CPython extension, the C entries for the
  common calls of the public functions (pyflat/_fastcall.c, pyflat/_fast.py).
  Built with numpy's headers; numpy's default NPY_TARGET_VERSION keeps the
  module importable with any numpy from 1.25 up.  ``PYFLAT_SANITIZE=1`` and
  ``PYFLAT_CFLAGS`` apply to it as to the kernel.
"""
import os
import shlex

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class BuildExt(build_ext):
    """numpy's include directory, asked for only when building (numpy is a
    build requirement, pyproject.toml)."""

    def finalize_options(self) -> None:
        super().finalize_options()
        import numpy
        for ext in self.extensions:
            if ext.name == "pyflat._fastcall":
                ext.include_dirs.append(numpy.get_include())


def fastcall_flags():
    cflags = ["-std=c11", "-Wall", "-Wextra"]
    ldflags = []
    if os.environ.get("PYFLAT_SANITIZE") == "1":
        sanitize = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer",
                    "-fno-sanitize-recover=undefined"]
        cflags += sanitize + ["-O1", "-g"]
        ldflags += sanitize
    cflags += shlex.split(os.environ.get("PYFLAT_CFLAGS", ""))
    return cflags, ldflags


_cflags, _ldflags = fastcall_flags()
setup(
    cffi_modules=["pyflat/_build.py:ffibuilder"],
    ext_modules=[Extension("pyflat._fastcall", ["pyflat/_fastcall.c"],
                           extra_compile_args=_cflags, extra_link_args=_ldflags)],
    cmdclass={"build_ext": BuildExt},
)
