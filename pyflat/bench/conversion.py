"""Conversion cases of the benchmark (issue 14): what pyflat is asked to do
(a result dtype, a scale, an offset), what users write instead with numpy,
torch and torchvision, and the exact result every pyflat row must equal.

pyflat's meaning, bit for bit: ``ref.astype(dtype) [* scale] [+ offset]``,
each step computed in the result dtype, where ``ref`` is the flattened
channels_last view and a per-channel factor applies along its last axis.  The
peers' own expressions (``x / 255``, ``(x - mean) / std``) round differently
in the last bits, so they are checked for closeness, pyflat for equality.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

import numpy as np

__all__ = ["Conversion", "Factor", "exact_result", "close_enough"]

#: A scale or offset: a scalar, one value per channel, or absent.
Factor = Union[float, tuple[float, ...], None]

#: How far a peer's own expression may be from pyflat's meaning: a few units
#: in the last place of float32 (relative), on values of order one (absolute).
PEER_RTOL, PEER_ATOL = 1e-5, 1e-5


@dataclass(frozen=True)
class Conversion:
    """The conversion a case asks for, and its peers.

    Attributes
    ----------
    dtype : numpy.dtype
        The result dtype.
    numpy, numpy_text : callable, str
        What users write with numpy, as a function of the input and as text.
    scale, offset : float, tuple of float or None
        pyflat's factors: a scalar or one per channel.
    factors_text : str
        The factors as a user writes them (``"scale=1/255"``), for the report.
    torch, torch_text : callable or None, str
        The same with torch: ``torch(torch_module, tensor_of_the_input)``.
    torchvision, torchvision_text : callable or None, str
        The same with torchvision's transforms (v2), for image cases:
        ``torchvision(torch_module, transforms_v2, tensor_of_the_input)``.
    """

    dtype: np.dtype
    numpy: Callable[[np.ndarray], np.ndarray]
    numpy_text: str
    scale: Factor = None
    offset: Factor = None
    factors_text: str = ""
    torch: Optional[Callable[[Any, Any], Any]] = None
    torch_text: str = ""
    torchvision: Optional[Callable[[Any, Any, Any], Any]] = None
    torchvision_text: str = ""

    def kwargs(self) -> dict[str, Any]:
        """pyflat's keyword arguments: ``dtype``, and the factors given."""
        given = {"scale": self.scale, "offset": self.offset}
        return {"dtype": self.dtype, **{k: v for k, v in given.items() if v is not None}}

    def describe(self, source: np.dtype) -> str:
        """``"uint8 -> float32, scale=1/255"``: the conversion in a few words."""
        text = f"{np.dtype(source)} -> {np.dtype(self.dtype)}"
        return f"{text}, {self.factors_text}" if self.factors_text else text

    def pyflat_text(self, data_format: str) -> str:
        """The pyflat call, as a user writes it."""
        factors = f", {self.factors_text}" if self.factors_text else ""
        return (f"pyflat.batch_flatten(x, data_format={data_format!r}, "
                f"dtype=np.{np.dtype(self.dtype).name}{factors})")


def exact_result(flat: np.ndarray, conversion: Optional[Conversion]) -> np.ndarray:
    """``flat`` (the C-contiguous flattened channels_last view, of shape
    ``(n, ..., C)``, any number of axes) converted with pyflat's meaning and
    reshaped to ``(n, -1)``; ``flat`` itself reshaped without a conversion."""
    n = flat.shape[0]
    if conversion is None:
        return flat.reshape(n, -1)
    dtype = np.dtype(conversion.dtype)
    result = flat.astype(dtype)
    # A per-channel factor broadcasts along the last axis (the channels).
    if conversion.scale is not None:
        result = result * np.asarray(conversion.scale, dtype)
    if conversion.offset is not None:
        result = result + np.asarray(conversion.offset, dtype)
    return np.ascontiguousarray(result).reshape(n, -1)


def close_enough(result: np.ndarray, reference: np.ndarray) -> bool:
    """A peer's result: the same shape, dtype and C order as ``reference``,
    and values within :data:`PEER_RTOL` / :data:`PEER_ATOL` (its own
    expression rounds differently; a wrong layout or factor is far off)."""
    return (result.shape == reference.shape and result.dtype == reference.dtype
            and result.flags.c_contiguous
            and bool(np.allclose(result, reference, rtol=PEER_RTOL, atol=PEER_ATOL)))
