"""``Flatten``: a callable with the contract of Keras' ``Flatten`` layer."""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np

from numpy.typing import NDArray

from .api import DataFormat, batch_flatten, check_data_format


class Flatten:
    """Flattens each sample of a batch: ``(batch, ...) -> (batch, features)``.

    Like ``keras.layers.Flatten``: ``data_format="channels_first"`` moves axis 1
    to the end first, ``(batch,)`` becomes ``(batch, 1)``, and
    :meth:`compute_output_shape` keeps unknown (``None``) dimensions.  One
    object serves inputs of any shape.

    >>> Flatten()(np.zeros((2, 3, 4))).shape
    (2, 12)
    """

    def __init__(self, data_format: Optional[DataFormat] = "channels_last") -> None:
        # Keras reads None as the global default, which is channels_last.
        self.data_format = check_data_format(
            "channels_last" if data_format is None else data_format)

    def __call__(self, x: Any) -> NDArray[Any]:
        return batch_flatten(x, data_format=self.data_format)

    def compute_output_shape(self, input_shape: Sequence[Optional[int]]
                             ) -> tuple[Optional[int], ...]:
        shape = tuple(input_shape)
        if not shape:
            raise ValueError("input_shape: expected at least 1 dimension (the batch axis)")
        features = [d for d in shape[1:] if d is not None]
        if len(features) < len(shape) - 1:  # an unknown dimension
            return (shape[0], None)
        return (shape[0], math.prod(features))

    def get_config(self) -> dict[str, Any]:
        return {"data_format": self.data_format}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Flatten":
        return cls(**config)

    def __repr__(self) -> str:
        return f"Flatten(data_format={self.data_format!r})"
