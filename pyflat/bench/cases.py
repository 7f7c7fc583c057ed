"""The benchmark case catalog, shared by ``pyflat bench`` and the
pytest-benchmark suite in ``bench/``.

A case is an input layout users really feed a flatten: a base array of some
shape and dtype, filled with random values (so every page is touched), then
turned into the view to flatten (a transpose, a slice, ...).  Each case has
a full-size shape and a scaled-down one for ``--quick``.  A conversion case
also converts while flattening (issue 14): its :class:`Conversion` says to
what, and what users write instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np

from pyflat.api import DataFormat

from .conversion import Conversion

__all__ = ["Case", "CASES", "case_names", "select_cases", "conversion_cases",
           "channels_last_view"]

Layout = Callable[[np.ndarray], np.ndarray]


def _same(a: np.ndarray) -> np.ndarray:
    return a


@dataclass(frozen=True)
class Case:
    """One input to flatten.

    Attributes
    ----------
    name : str
        Identifier used by ``--cases``.
    description : str
        What the input stands for, in a few words.
    dtype : numpy.dtype
        Element type of the base array.
    shape, quick_shape : tuple of int
        Shape of the base array at full size and for ``--quick``.
    data_format : {"channels_last", "channels_first"}
        How the input is flattened.
    layout : callable
        Turns the C-ordered base array into the input (a view of it).
    convert : Conversion or None
        What the flattened result is converted to; None: a plain copy.
    """

    name: str
    description: str
    dtype: np.dtype
    shape: tuple[int, ...]
    quick_shape: tuple[int, ...]
    data_format: DataFormat = "channels_last"
    layout: Layout = _same
    convert: Optional[Conversion] = None

    @property
    def result_dtype(self) -> np.dtype:
        """The dtype of the flattened result."""
        return np.dtype(self.convert.dtype if self.convert else self.dtype)

    def make(self, quick: bool = False, seed: int = 0) -> np.ndarray:
        """The input array (random values, reproducible from ``seed``)."""
        shape = self.quick_shape if quick else self.shape
        return self.layout(_random(np.dtype(self.dtype), shape, seed))


def _random(dtype: np.dtype, shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype.kind in "VSU":  # records and strings: random bytes (letters for str)
        if dtype.kind == "U":
            codes = rng.integers(ord("a"), ord("z") + 1, (*shape, dtype.itemsize // 4))
            return codes.astype(np.uint32).view(dtype).reshape(shape)
        return rng.integers(0, 256, (*shape, dtype.itemsize), np.uint8).view(dtype).reshape(shape)
    if dtype == np.bool_:
        return rng.random(shape, np.float32) < 0.5
    if dtype.kind in "ui":
        return rng.integers(0, 100, shape, dtype=dtype)
    if dtype.kind == "c":
        real = np.dtype(f"f{dtype.itemsize // 2}")
        return _random(real, shape, seed) + 1j * _random(real, shape, seed + 1)
    if dtype.itemsize >= 4:
        return rng.random(shape, dtype=dtype)
    return rng.random(shape, np.float32).astype(dtype)


def channels_last_view(a: np.ndarray, data_format: DataFormat) -> np.ndarray:
    """The view whose C order is the flattened order: for channels_first input
    of 3 or more dimensions, axis 1 moved to the end (as Keras does)."""
    if data_format == "channels_first" and a.ndim > 2:
        return np.moveaxis(a, 1, -1)
    return a


f16, f32, f64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)

# -- what users write for the conversion cases ----------------------------------

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # ImageNet's, per RGB channel
MEAN32, STD32 = np.array(MEAN, np.float32), np.array(STD, np.float32)


def _torch_normalize(torch: Any, t: Any) -> Any:
    mean = torch.tensor(MEAN, dtype=torch.float32)[:, None, None]
    std = torch.tensor(STD, dtype=torch.float32)[:, None, None]
    return torch.flatten(t.float().div(255).sub(mean).div(std).permute(0, 2, 3, 1), 1)


def _torchvision_normalize(torch: Any, functional: Any, t: Any) -> Any:
    images = functional.to_dtype(t, torch.float32, scale=True)
    return torch.flatten(functional.normalize(images, list(MEAN), list(STD))
                         .permute(0, 2, 3, 1), 1)


TO_UNIT = Conversion(
    f32, scale=1 / 255, factors_text="scale=1/255",
    numpy=lambda x: np.moveaxis(x, 1, -1).reshape(len(x), -1).astype(np.float32) / 255,
    numpy_text="np.moveaxis(x, 1, -1).reshape(n, -1).astype(np.float32) / 255",
    torch=lambda torch, t: torch.flatten(t.permute(0, 2, 3, 1), 1).float().div(255),
    torch_text="torch.flatten(t.permute(0, 2, 3, 1), 1).float().div(255)",
    torchvision=lambda torch, functional, t: torch.flatten(
        functional.to_dtype(t, torch.float32, scale=True).permute(0, 2, 3, 1), 1),
    torchvision_text="torch.flatten(v2.functional.to_dtype(t, torch.float32, scale=True)"
                     ".permute(0, 2, 3, 1), 1)")

NORMALIZE = Conversion(
    f32, scale=tuple(1 / (255 * s) for s in STD),
    offset=tuple(-m / s for m, s in zip(MEAN, STD)),
    factors_text="scale=1/(255*std), offset=-mean/std",
    numpy=lambda x: ((np.moveaxis(x, 1, -1).astype(np.float32) / 255 - MEAN32) / STD32
                     ).reshape(len(x), -1),
    numpy_text="((np.moveaxis(x, 1, -1).astype(np.float32) / 255 - mean) / std)"
               ".reshape(n, -1)",
    torch=_torch_normalize,
    torch_text="torch.flatten(t.float().div(255).sub(mean[:, None, None])"
               ".div(std[:, None, None]).permute(0, 2, 3, 1), 1)",
    torchvision=_torchvision_normalize,
    torchvision_text="torch.flatten(v2.functional.normalize(v2.functional.to_dtype("
                     "t, torch.float32, scale=True), mean, std).permute(0, 2, 3, 1), 1)")

TO_F32 = Conversion(
    f32,
    numpy=lambda x: np.ascontiguousarray(x, dtype=np.float32),
    numpy_text="np.ascontiguousarray(x, dtype=np.float32)",
    torch=lambda torch, t: t.float().contiguous(),
    torch_text="t.float().contiguous()")

AUDIO_TO_UNIT = Conversion(
    f32, scale=1 / 32768, factors_text="scale=1/32768",
    numpy=lambda x: np.moveaxis(x, 1, -1).reshape(len(x), -1).astype(np.float32) / 32768,
    numpy_text="np.moveaxis(x, 1, -1).reshape(n, -1).astype(np.float32) / 32768",
    torch=lambda torch, t: torch.flatten(t.permute(0, 2, 1), 1).float().div(32768),
    torch_text="torch.flatten(t.permute(0, 2, 1), 1).float().div(32768)")

CASES: tuple[Case, ...] = (
    Case("nchw_f32_cf", "float32 NCHW feature maps", f32,
         (256, 64, 28, 28), (32, 64, 28, 28), "channels_first"),
    Case("nhwc_view_f32", "float32 NCHW buffer seen as NHWC", f32,
         (256, 64, 28, 28), (32, 64, 28, 28), layout=lambda a: a.transpose(0, 2, 3, 1)),
    Case("sliced_f32", "float32 maps, every other pixel", f32,
         (256, 64, 56, 56), (32, 64, 56, 56), layout=lambda a: a[:, :, ::2, ::2]),
    Case("uint8_images_cf", "uint8 RGB images, NCHW", np.dtype(np.uint8),
         (128, 3, 224, 224), (16, 3, 224, 224), "channels_first"),
    Case("fortran_f64", "float64 Fortran-ordered matrix", f64,
         (4096, 4096), (1024, 1024), layout=np.asfortranarray),
    Case("neg_stride_f32", "float32, middle axis reversed", f32,
         (1024, 512, 64), (128, 512, 64), layout=lambda a: a[:, ::-1]),
    Case("batch_stride_f64", "float64, every other sample", f64,
         (8192, 32, 32), (1024, 32, 32), layout=lambda a: a[::2]),
    Case("f16_seq_slice", "float16 sequences, half the hidden size", f16,
         (64, 512, 768), (8, 512, 768), layout=lambda a: a[:, :, :384]),
    Case("contiguous_f32", "float32, already contiguous (zero-copy)", f32,
         (256, 64, 28, 28), (32, 64, 28, 28)),
    Case("small_f32", "tiny float32 slice (call overhead)", f32,
         (32, 20, 10), (32, 20, 10), layout=lambda a: a[:, ::2]),
    Case("audio_stereo_cf", "float32 stereo audio (N, C, T) -> interleaved", f32,
         (64, 2, 96000), (8, 2, 96000), "channels_first"),
    Case("video5d_cf", "float32 video clips (N, C, T, H, W)", f32,
         (16, 3, 16, 112, 112), (2, 3, 16, 112, 112), "channels_first"),
    Case("tabular_fortran_f64", "float64 table, column-major, 6 columns", f64,
         (6, 1_000_000), (6, 125_000), layout=lambda a: a.T),
    Case("tabular_columns_f32", "float32 table, 4 of 16 columns selected", f32,
         (1_000_000, 16), (125_000, 16), layout=lambda a: a[:, 2:6]),
    Case("complex64_cf", "complex64 NCHW spectra", np.dtype(np.complex64),
         (128, 64, 28, 28), (16, 64, 28, 28), "channels_first"),
    Case("bool_masks_cf", "bool segmentation masks, 21 classes, NCHW", np.dtype(np.bool_),
         (32, 21, 128, 128), (4, 21, 128, 128), "channels_first"),
    # The reproducers of issue 11: layouts where pyflat was far from memory speed.
    Case("int16_drop_first_col", "int16 table, first of 100 columns dropped (198-byte runs)",
         np.dtype(np.int16), (80_000, 100), (10_000, 100), layout=lambda a: a[:, 1:]),
    Case("void3_reversed", "V3 records, axis 1 reversed (252-byte runs)", np.dtype("V3"),
         (1488, 64, 28, 3), (186, 64, 28, 3), layout=lambda a: a[:, ::-1]),
    Case("void12_transposed", "V12 records, per-sample transpose", np.dtype("V12"),
         (256, 64, 64), (32, 64, 64), layout=lambda a: a.transpose(0, 2, 1)),
    Case("tiny_blocks_f32", "float32 (N, 3, 4) samples transposed to (N, 4, 3)", f32,
         (1_000_000, 3, 4), (125_000, 3, 4), layout=lambda a: a.transpose(0, 2, 1)),
    Case("f16_step2", "float16, every other element of the last axis", f16,
         (2048, 8192), (256, 8192), layout=lambda a: a[..., ::2]),
    Case("f32_reversed_inner", "float32, last axis reversed", f32,
         (8192, 1024), (1024, 1024), layout=lambda a: a[:, ::-1]),
    Case("int16_stereo_cf", "int16 stereo audio (N, 2, T) -> interleaved", np.dtype(np.int16),
         (64, 2, 96000), (8, 2, 96000), "channels_first"),
    Case("uint8_tiny_perm", "uint8 (N, 2, 3, 2) blocks permuted (0, 3, 1, 2)",
         np.dtype(np.uint8), (2_000_000, 2, 3, 2), (250_000, 2, 3, 2),
         layout=lambda a: a.transpose(0, 3, 1, 2)),
    Case("f32_2d_cf", "float32 2-d, channels_first (nothing to move: zero-copy)", f32,
         (8192, 1024), (1024, 1024), "channels_first"),
    # Issue 14: converting while flattening (outputs of 25 to 40 MB).
    Case("uint8_nchw_to_f32", "uint8 NCHW images to float32 NHWC features / 255",
         np.dtype(np.uint8), (64, 3, 224, 224), (8, 3, 224, 224), "channels_first",
         convert=TO_UNIT),
    Case("uint8_nchw_normalize", "the same, normalised per channel (ImageNet mean, std)",
         np.dtype(np.uint8), (64, 3, 224, 224), (8, 3, 224, 224), "channels_first",
         convert=NORMALIZE),
    Case("f64_fortran_to_f32", "float64 Fortran-ordered table, 16 columns, to float32",
         f64, (400_000, 16), (50_000, 16), layout=np.asfortranarray, convert=TO_F32),
    Case("int16_audio_to_f32", "int16 stereo audio (N, C, T) to interleaved float32 / 32768",
         np.dtype(np.int16), (32, 2, 96000), (4, 2, 96000), "channels_first",
         convert=AUDIO_TO_UNIT),
)


def case_names() -> list[str]:
    return [case.name for case in CASES]


def conversion_cases() -> list[Case]:
    """The cases that convert while flattening (issue 14)."""
    return [case for case in CASES if case.convert is not None]


def select_cases(names: Iterable[str] | None = None) -> list[Case]:
    """The cases named (in catalog order), or all of them for ``None``.

    Raises
    ------
    ValueError
        Naming every unknown case and listing the known ones.
    """
    if names is None:
        return list(CASES)
    wanted: Sequence[str] = [name.strip() for name in names if name.strip()]
    unknown = [name for name in wanted if name not in case_names()]
    if unknown:
        raise ValueError(f"unknown case{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(map(repr, unknown))}; "
                         f"known cases: {', '.join(case_names())}")
    if not wanted:
        raise ValueError("expected at least one case name")
    return [case for case in CASES if case.name in wanted]
