"""Forcing each kernel variant (SIMD level, streaming stores, thread count) so
that one machine covers them all."""

from __future__ import annotations

import contextlib
from typing import Iterator, NamedTuple

from pyflat import api
from pyflat._pyflat import lib


class Variant(NamedTuple):
    simd: int          # PF_SIMD_*; a level the CPU lacks is clamped by the kernel
    streaming: int     # -1 auto, 0 off, 1 on
    num_threads: int
    tiny_thread_share: bool  # let even tiny copies use several threads
    numpy_for_small: bool = False  # keep the default: tiny copies go to numpy

    def __str__(self) -> str:
        return (f"simd={self.simd} streaming={self.streaming} threads={self.num_threads}"
                f"{' tiny-share' if self.tiny_thread_share else ''}"
                f"{' numpy-for-small' if self.numpy_for_small else ''}")


VARIANTS = [
    Variant(lib.PF_SIMD_AUTO, -1, 1, False, numpy_for_small=True),
    Variant(lib.PF_SIMD_AUTO, -1, 1, False),
    Variant(lib.PF_SIMD_NONE, 0, 1, False),
    Variant(lib.PF_SIMD_SSE2, 0, 1, False),
    Variant(lib.PF_SIMD_AVX2, 1, 1, False),
    Variant(lib.PF_SIMD_AVX2, 0, 3, True),
    Variant(lib.PF_SIMD_AVX512, 0, 1, False),
    Variant(lib.PF_SIMD_AVX512, 0, 3, True),
    Variant(lib.PF_SIMD_NONE, 1, 4, True),
]


@contextlib.contextmanager
def forced(variant: Variant) -> Iterator[None]:
    old_simd = lib.pf_force_simd(variant.simd)
    old_streaming = lib.pf_force_streaming(variant.streaming)
    old_bytes = lib.pf_force_min_bytes_per_thread(1 if variant.tiny_thread_share else -1)
    old_small, old_simple = api.SMALL_COPY_BYTES, api.SIMPLE_COPY_BYTES
    if not variant.numpy_for_small:
        api.SMALL_COPY_BYTES = api.SIMPLE_COPY_BYTES = 0  # all through the C kernel
    try:
        yield
    finally:
        api.SMALL_COPY_BYTES, api.SIMPLE_COPY_BYTES = old_small, old_simple
        lib.pf_force_simd(old_simd)
        lib.pf_force_streaming(old_streaming)
        lib.pf_force_min_bytes_per_thread(old_bytes)
