"""``Flatten``: a callable with the contract of Keras' ``Flatten`` layer."""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np

from .api import batch_flatten, check_data_format


class Flatten:
    """Flattens each sample of a batch: ``(batch, ...) -> (batch, features)``.

    Like ``keras.layers.Flatten``: ``data_format="channels_first"`` moves axis 1
    to the end first, ``(batch,)`` becomes ``(batch, 1)``, and
    :meth:`compute_output_shape` keeps unknown (``None``) dimensions.  One
    object serves inputs of any shape.

    >>> Flatten()(np.zeros((2, 3, 4))).shape
    (2, 12)
    """

    def __init__(self, data_format: Optional[str] = "channels_last") -> None:
        # Keras reads None as the global default, which is channels_last.
        self.data_format = check_data_format(
            "channels_last" if data_format is None else data_format)

    def __call__(self, x: Any) -> np.ndarray:
        return batch_flatten(x, data_format=self.data_format)

    def compute_output_shape(self, input_shape: Sequence[Optional[int]]) -> tuple:
        shape = tuple(input_shape)
        if not shape:
            raise ValueError("input_shape: expected at least 1 dimension (the batch axis)")
        features = shape[1:]
        if any(d is None for d in features):
            return (shape[0], None)
        return (shape[0], math.prod(features))

    def get_config(self) -> dict:
        return {"data_format": self.data_format}

    @classmethod
    def from_config(cls, config: dict) -> "Flatten":
        return cls(**config)

    def __repr__(self) -> str:
        return f"Flatten(data_format={self.data_format!r})"
