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
import numpy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CSRC = os.path.join(ROOT, "csrc")
SOURCES = ["plan.c", "plan_cache.c", "kernels.c", "micro_x86.c", "pool.c", "simd.c", "convert.c",
           "convert_scalar.c", "convert_x86.c"]
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
    # No auto-vectorisation: the SIMD paths are written out; gcc's
    # vectorised strided loops (element-wise loads into vectors) ran the
    # portable item loops 1.3-2.7x slower here (1-, 2- and 3-byte tiles).
    # No contraction of x*scale + offset into a fused multiply-add: numpy
    # rounds the product and the sum separately (converting copies).
    cflags = ["-std=c11", "-O3", "-fno-tree-vectorize", "-ffp-contract=off", "-Wall", "-Wextra",
              "-pthread"]
    ldflags = ["-pthread"]
    if os.environ.get("PYFLAT_SANITIZE") == "1":
        sanitize = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer",
                    "-fno-sanitize-recover=undefined"]
        cflags += sanitize + ["-O1", "-g"]
        ldflags += sanitize
    cflags += shlex.split(os.environ.get("PYFLAT_CFLAGS", ""))
    return cflags, ldflags


# Binding glue, compiled into the extension only (csrc/ stays free of Python):
# reading an ndarray's data pointer, shape and strides straight from the
# object costs a fraction of building its __array_interface__ dict.
GLUE_CDEF = """
#define PF_DECLINED 100
int pf_copy_ndarray(uintptr_t src_array, char *dst, int64_t itemsize,
                    int num_threads, int64_t decline_simple_below);
int pf_convert_ndarray(uintptr_t src_array, char *dst, int src_type, int dst_type,
                       const void *scale, int64_t scale_len, const void *offset,
                       int64_t offset_len, int num_threads);
"""
GLUE_SOURCE = """
#include "pyflat.h"
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/ndarraytypes.h>

_Static_assert(sizeof(npy_intp) == sizeof(int64_t), "64-bit npy_intp");

#define PF_DECLINED 100

/* src_array: id() of an ndarray that no other code can reshape meanwhile
 * (the caller passes a private view): its fields are read without the GIL.
 * Returns PF_DECLINED, copying nothing, when the plan's cost model expects
 * numpy's copy to be faster (numpy_faster), and for a single-threaded copy
 * of long contiguous runs smaller than decline_simple_below bytes: numpy
 * runs the same memcpy loops for those at a lower call cost. */
int pf_copy_ndarray(uintptr_t src_array, char *dst, int64_t itemsize,
                    int num_threads, int64_t decline_simple_below)
{
    PyArrayObject *a = (PyArrayObject *)src_array;
    pf_plan plan;
    int status = pf_plan_make(&plan, PyArray_NDIM(a),
                              (const int64_t *)PyArray_DIMS(a),
                              (const int64_t *)PyArray_STRIDES(a), itemsize,
                              num_threads);
    if (status != PF_OK)
        return status;
    if (plan.numpy_faster)
        return PF_DECLINED;
    if (plan.kernel == PF_KERNEL_MEMCPY && plan.num_threads == 1
            && plan.nbytes < decline_simple_below
            && plan.shape[plan.ndim - 1] * itemsize >= 256)
        return PF_DECLINED;
    return pf_plan_execute(&plan, PyArray_BYTES(a), dst);
}

/* pf_convert_copy of an ndarray (read as in pf_copy_ndarray). */
int pf_convert_ndarray(uintptr_t src_array, char *dst, int src_type, int dst_type,
                       const void *scale, int64_t scale_len, const void *offset,
                       int64_t offset_len, int num_threads)
{
    PyArrayObject *a = (PyArrayObject *)src_array;
    return pf_convert_copy(PyArray_BYTES(a), dst, PyArray_NDIM(a),
                           (const int64_t *)PyArray_DIMS(a),
                           (const int64_t *)PyArray_STRIDES(a), src_type, dst_type,
                           scale, scale_len, offset, offset_len, num_threads);
}
"""

ffibuilder = cffi.FFI()
ffibuilder.cdef(read_cdef(os.path.join(CSRC, "pyflat.h")) + GLUE_CDEF)
_cflags, _ldflags = compile_flags()
ffibuilder.set_source(
    "pyflat._pyflat",
    GLUE_SOURCE,
    # setuptools wants source paths relative to setup.py.
    sources=[os.path.relpath(os.path.join(CSRC, s), os.getcwd()) for s in SOURCES],
    include_dirs=[CSRC, numpy.get_include()],
    depends=[os.path.join(CSRC, h) for h in ("pyflat.h", "internal.h")],
    extra_compile_args=_cflags,
    extra_link_args=_ldflags,
    # The glue reads numpy's ndarray struct, which the limited API hides (and
    # numpy >= 2.5's headers need names it hides): a per-version extension,
    # tagged as such.  Older cffi needs the macro spelt out.
    py_limited_api=False,
    define_macros=[("_CFFI_NO_LIMITED_API", None)],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
