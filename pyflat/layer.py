"""``Flatten``: a callable with the contract of Keras' ``Flatten`` layer, and a
scikit-learn transformer, without importing either library.

Keras' part: the call, ``compute_output_shape``, ``get_config`` /
``from_config`` (configs round-trip with ``keras.layers.Flatten``'s, JSON
included) and ``data_format`` read as Keras reads it.  It is not a
``keras.layers.Layer``: no weights, no symbolic tensors, no ``build``.

scikit-learn's part: ``get_params`` / ``set_params``, ``fit`` (returns self),
``transform``, ``fit_transform``, ``get_feature_names_out``, ``set_output``
and ``__sklearn_tags__``, so ``clone``, ``Pipeline`` and ``GridSearchCV``
take it as one of their own.
"""

from __future__ import annotations

import math
import operator
import sys
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence, Tuple

import numpy as np

from numpy.typing import NDArray

from .api import CHANNELS_LAST, DataFormat, as_array, batch_flatten, check_data_format

_ndarray = np.ndarray

__all__ = ["Flatten"]

#: The constructor's parameters: the Keras config keys and sklearn's params.
PARAMS = ("data_format", "name", "trainable", "dtype")
OUTPUT_CONTAINERS = ("default", "pandas", "polars")


def default_data_format() -> DataFormat:
    """Keras' global ``image_data_format()`` when Keras is already imported
    (it is never imported here), else ``"channels_last"``."""
    keras = sys.modules.get("keras")
    for owner in ("config", "backend"):  # Keras 3, then tf.keras 2
        try:
            value = getattr(getattr(keras, owner), "image_data_format")()
            return check_data_format(value)
        except Exception:  # no Keras, an older layout, or a strange setting
            continue
    return "channels_last"


def _dimension(d: Any, shape: Any) -> Optional[int]:
    if d is None:
        return None
    if isinstance(d, (bool, np.bool_)) or not hasattr(d, "__index__"):
        raise ValueError(f"input_shape: cannot be read as a shape: {shape!r} holds "
                         f"{d!r} of type {type(d).__name__} (expected integers or None)")
    value = operator.index(d)
    if value < 0:
        raise ValueError(f"input_shape: cannot be read as a shape: {shape!r}; "
                         f"negative dimensions are not allowed")
    return value


# Keras' policy names that are not dtype names: their compute dtype.
_MIXED_POLICIES = {"mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}


def compute_dtype(dtype: Any) -> Optional[np.dtype]:
    """The dtype a Keras layer ``dtype`` argument casts floating inputs to:
    None for None; the compute dtype of a policy name, of a policy's config
    dict, or of a policy object; else numpy's reading of it."""
    if dtype is None:
        return None
    value = dtype
    if isinstance(value, dict):  # Keras' serialized DTypePolicy
        value = value.get("config", {}).get("name") if isinstance(
            value.get("config"), dict) else None
    elif hasattr(value, "compute_dtype") and not isinstance(value, (np.dtype, type)):
        value = value.compute_dtype  # a keras.DTypePolicy
    if isinstance(value, str):
        value = _MIXED_POLICIES.get(value, value)
        if value == "bfloat16" and "ml_dtypes" in sys.modules:
            value = sys.modules["ml_dtypes"].bfloat16
    try:
        if value is None:
            raise TypeError("no policy name in it")
        return np.empty(0, dtype=value).dtype
    except (TypeError, ValueError) as exc:
        raise TypeError(f"dtype: expected a numpy dtype, a Keras dtype policy (name, "
                        f"config dict or object) or None, got {dtype!r} ({exc})") from exc


def is_floating(dtype: Any) -> bool:
    """Whether Keras casts an input of ``dtype``: floating point (float16 to
    float64 and longer, and ml_dtypes' bfloat16 and float8 types)."""
    return isinstance(dtype, np.dtype) and (
        dtype.kind == "f" or dtype.kind == "V" and dtype.name.startswith(("bfloat", "float")))


class Flatten:
    """Flattens each sample of a batch: ``(batch, ...) -> (batch, features)``.

    Like ``keras.layers.Flatten``: ``data_format="channels_first"`` moves axis 1
    to the end first, ``(batch,)`` becomes ``(batch, 1)``, and
    :meth:`compute_output_shape` keeps unknown (``None``) dimensions.  One
    object serves inputs of any shape.

    Parameters
    ----------
    data_format : {"channels_last", "channels_first"} or None
        Case-insensitive.  ``None``: Keras' ``keras.config.image_data_format()``
        when Keras is already imported, else ``"channels_last"`` (read once,
        here, as Keras does).
    dtype : data-type, Keras dtype policy, or None
        Keras' meaning of a layer's ``dtype``: floating-point inputs are cast
        to its compute dtype (numpy's ``astype``, fused into the copy), other
        inputs pass unchanged.  A numpy dtype-like, a Keras policy name
        (``"float32"``, ``"mixed_float16"``: float16), its config dict (what
        Keras' ``get_config`` gives) or a policy object.  ``None``: no cast
        (Keras' ``None`` means its global policy instead, float32 by
        default).  Kept as given, so that configs round-trip.
    name, trainable
        Keras' layer arguments, kept so that configs round-trip; they change
        nothing here.

    >>> Flatten()(np.zeros((2, 3, 4))).shape
    (2, 12)
    """

    def __init__(self, data_format: Optional[DataFormat] = None, *, name: Optional[str] = None,
                 trainable: bool = True, dtype: Any = None) -> None:
        self.data_format = check_data_format(
            default_data_format() if data_format is None else data_format)
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name: expected a string or None, got {type(name).__name__}")
        if not isinstance(trainable, (bool, np.bool_)):
            raise TypeError(f"trainable: expected True or False, got {trainable!r}")
        self.name = "flatten" if name is None else name
        self.trainable = trainable
        self.dtype = dtype

    @property
    def dtype(self) -> Any:
        """The ``dtype`` argument, as given (see the class docstring)."""
        return self._dtype

    @dtype.setter
    def dtype(self, dtype: Any) -> None:
        # _cast_to, the compute dtype (None: no cast), is what calls read; the
        # C entry of __call__ (pyflat/_fastcall.c) reads it too.
        self._cast_to = compute_dtype(dtype)
        self._dtype = dtype

    # -- Keras ------------------------------------------------------------------

    def __call__(self, x: Any) -> NDArray[Any]:
        if (type(x) is _ndarray and self.data_format is CHANNELS_LAST and self._cast_to is None
                and x.flags.c_contiguous):
            try:  # the common call, a view, at close to numpy's cost
                return x.reshape(len(x), -1)
            except (TypeError, ValueError):
                pass  # 0-d, or an empty batch: batch_flatten says what to do
        cast_to = self._cast_to
        if cast_to is not None and not isinstance(x, np.ndarray):
            x = as_array(x, "x")  # (an ndarray subclass, masked arrays too, is kept)
        if cast_to is not None and is_floating(x.dtype):
            # Keras' autocast: floating inputs to the compute dtype, unsafe as
            # Keras' cast is (float -> int truncates); other inputs as they are.
            return batch_flatten(x, data_format=self.data_format, dtype=cast_to,
                                 casting="unsafe")
        return batch_flatten(x, data_format=self.data_format)

    def compute_output_shape(self, input_shape: Sequence[Optional[int]]
                             ) -> Tuple[Optional[int], Optional[int]]:
        """``(batch, d1, ..., dk) -> (batch, d1*...*dk)``, ``None`` (unknown)
        when any ``di`` is; ``(batch,) -> (batch, 1)``.  Dimensions must be
        non-negative integers or None, as Keras requires of a shape."""
        if isinstance(input_shape, (str, bytes)) or not hasattr(input_shape, "__iter__"):
            raise ValueError(f"input_shape: expected a sequence of dimensions (integers "
                             f"or None), got {input_shape!r}")
        shape = tuple(_dimension(d, input_shape) for d in input_shape)
        if not shape:
            raise ValueError("input_shape: expected at least 1 dimension (the batch axis)")
        features = shape[1:]
        if any(d is None for d in features):
            return (shape[0], None)
        return (shape[0], math.prod(d for d in features if d is not None))

    def get_config(self) -> Dict[str, Any]:
        """Keras' config keys: ``name``, ``trainable``, ``dtype``, ``data_format``."""
        return {"name": self.name, "trainable": self.trainable, "dtype": self.dtype,
                "data_format": self.data_format}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Flatten":
        """A layer from :meth:`get_config`'s dict, or from Keras' ``Flatten``'s."""
        if not isinstance(config, dict):
            raise TypeError(f"config: expected a dict, got {type(config).__name__}")
        unknown = sorted(set(config) - set(PARAMS))
        if unknown:
            raise TypeError(f"config: unknown keys {unknown} (expected some of "
                            f"{list(PARAMS)})")
        return cls(**config)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.get_config() == other.get_config()

    def __hash__(self) -> int:
        # Equal layers must hash alike, and set_params may change the config:
        # one hash for the class keeps both true (and layers usable in sets).
        return hash(type(self))

    def __repr__(self) -> str:
        dtype = "" if self.dtype is None else f", dtype={self.dtype!r}"
        return f"Flatten(data_format={self.data_format!r}{dtype})"

    # -- scikit-learn -------------------------------------------------------------

    def get_params(self, deep: bool = True) -> Dict[str, Any]:
        """The constructor's parameters (scikit-learn's estimator API)."""
        return {key: getattr(self, key) for key in PARAMS}

    def set_params(self, **params: Any) -> "Flatten":
        """Change parameters; all are checked before any changes."""
        unknown = sorted(set(params) - set(PARAMS))
        if unknown:
            raise ValueError(f"Invalid parameter {unknown[0]!r} for estimator {self!r}. "
                             f"Valid parameters are: {sorted(PARAMS)!r}.")
        checked = type(self)(**{**self.get_params(), **params})
        for key in params:
            setattr(self, key, getattr(checked, key))
        return self

    def fit(self, X: Any, y: Any = None, **fit_params: Any) -> "Flatten":
        """Nothing to learn: records the sample shape (for
        :meth:`get_feature_names_out`) and returns ``self``."""
        arr = as_array(X, "X")
        if arr.ndim == 0:
            raise ValueError("X: expected at least 1 dimension (the batch axis), got a 0-d array")
        self.sample_shape_ = tuple(arr.shape[1:])
        self.n_features_in_ = math.prod(self.sample_shape_)
        columns = getattr(X, "columns", None)  # a data frame's column names
        if columns is not None and all(isinstance(c, str) for c in columns):
            self.feature_names_in_ = np.asarray(list(columns), dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return self

    def transform(self, X: Any) -> Any:
        """``batch_flatten(X, data_format=...)``, in the container chosen by
        :meth:`set_output` (a numpy array by default)."""
        arr = as_array(X, "X")
        expected = getattr(self, "n_features_in_", None)
        if expected is not None and arr.ndim and math.prod(arr.shape[1:]) != expected:
            raise ValueError(f"X has {math.prod(arr.shape[1:])} features, but Flatten is "
                             f"expecting {expected} features as input")
        result = self(X)
        container = self._output_container()
        if container == "default":
            return result
        names = self._names(tuple(arr.shape[1:]), getattr(self, "feature_names_in_", None))
        if container == "pandas":
            import pandas as pd  # type: ignore[import-untyped, import-not-found, unused-ignore]  # only when asked for: set_output(transform="pandas")
            index = getattr(X, "index", None) if isinstance(X, pd.DataFrame) else None
            return pd.DataFrame(np.asarray(result), columns=list(names), index=index)
        import polars as pl  # type: ignore[import-untyped, import-not-found, unused-ignore]  # only when asked for: set_output(transform="polars")
        return pl.DataFrame(np.asarray(result), schema=list(names), orient="row")

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        return self.fit(X, y).transform(X)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of the output columns, in the flattened order.

        The input's names are ``input_features``, else the column names seen by
        :meth:`fit`, else ``x0, x1, ...`` numbering the sample's elements in C
        order; channels_first reorders them as it reorders the values.
        """
        if not hasattr(self, "sample_shape_"):
            if input_features is None:
                raise ValueError("Flatten is not fitted: call fit first, or pass "
                                 "input_features")
            return self._names((len(input_features),), np.asarray(input_features, object))
        names = getattr(self, "feature_names_in_", None)
        if input_features is not None:
            given = np.asarray(input_features, dtype=object)
            if len(given) != self.n_features_in_:
                raise ValueError(f"input_features should have length equal to number of "
                                 f"features ({self.n_features_in_}), got {len(given)}")
            if names is not None and not np.array_equal(given, names):
                raise ValueError("input_features is not equal to feature_names_in_")
            names = given
        return self._names(self.sample_shape_, names)

    def _names(self, sample_shape: Tuple[int, ...], names: Optional[np.ndarray]) -> np.ndarray:
        count = math.prod(sample_shape)
        if names is None or len(names) != count:
            names = np.asarray([f"x{i}" for i in range(count)], dtype=object)
        grid = np.asarray(names, dtype=object).reshape((1, *sample_shape))
        return np.asarray(batch_flatten(grid, data_format=self.data_format)[0])

    def set_output(self, *, transform: Optional[str] = None) -> "Flatten":
        """The container :meth:`transform` returns: ``"default"`` (numpy),
        ``"pandas"`` or ``"polars"``; ``None`` leaves it unchanged."""
        if transform is None:
            return self
        if transform not in OUTPUT_CONTAINERS:
            raise ValueError(f"transform: expected one of {list(OUTPUT_CONTAINERS)} or "
                             f"None, got {transform!r}")
        self._sklearn_output_config = {"transform": transform}
        return self

    def _output_container(self) -> str:
        config = getattr(self, "_sklearn_output_config", {}).get("transform")
        if config is None:  # scikit-learn's global setting, if it is loaded
            sklearn = sys.modules.get("sklearn")
            config = sklearn.get_config().get("transform_output") if sklearn else None
        return config if config in OUTPUT_CONTAINERS else "default"

    def __sklearn_is_fitted__(self) -> bool:
        return True  # stateless: transform needs no fit

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's tags (only scikit-learn calls this, so it is loaded)."""
        from sklearn.utils import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
            InputTags, Tags, TargetTags, TransformerTags)
        return Tags(estimator_type=None, target_tags=TargetTags(required=False),
                    transformer_tags=TransformerTags(preserves_dtype=[]),
                    requires_fit=False,
                    input_tags=InputTags(one_d_array=True, two_d_array=True,
                                         three_d_array=True, allow_nan=True))


if not TYPE_CHECKING:  # a C entry for the common call (pyflat/_fast.py); mypy sees the def
    from ._fast import wrap as _wrap
    Flatten.__call__ = _wrap(Flatten.__call__, "layer_call")
