"""pyflat.Flatten as a scikit-learn transformer (issue 15, item 5): checked
with scikit-learn itself when it is installed; pyflat never imports it."""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

import pyflat

sklearn = pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer, StandardScaler  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)  # bundled with scikit-learn: no download
    return X.reshape(-1, 8, 8), y


def test_readme_example(digits):
    images, y = digits  # (1797, 8, 8)
    model = make_pipeline(pyflat.Flatten(), StandardScaler(),
                          LogisticRegression(max_iter=1000))
    model.fit(images[:1500], y[:1500])
    assert model.score(images[1500:], y[1500:]) > 0.9
    # the same as flattening by hand
    by_hand = make_pipeline(FunctionTransformer(lambda x: x.reshape(len(x), -1)),
                            StandardScaler(), LogisticRegression(max_iter=1000))
    by_hand.fit(images[:1500], y[:1500])
    assert np.array_equal(model.predict(images[1500:]), by_hand.predict(images[1500:]))


def test_pipeline_accepts_it_as_an_intermediate_step(digits):
    images, y = digits
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no FutureWarning about fitting or tags
        pipe = Pipeline([("flatten", pyflat.Flatten("channels_first")),
                         ("clf", LogisticRegression(max_iter=200))])
        pipe.fit(images[:300], y[:300])
        pipe.predict(images[300:400])


def test_clone_keeps_the_parameters():
    layer = pyflat.Flatten("Channels_First", name="f", trainable=False)
    copy = clone(layer)
    assert copy is not layer and copy == layer
    assert copy.get_params() == {"data_format": "channels_first", "name": "f",
                                 "trainable": False, "dtype": None}


def test_grid_search_over_data_format(digits):
    images, y = digits
    images = np.stack([images, images[:, ::-1]], axis=1)  # (n, 2, 8, 8): channels first
    pipe = make_pipeline(pyflat.Flatten(), LogisticRegression(max_iter=300))
    search = GridSearchCV(pipe, param_grid={"flatten__data_format":
                                            ["channels_last", "channels_first"]}, cv=2)
    search.fit(images[:400], y[:400])
    assert search.best_params_["flatten__data_format"] in ("channels_last", "channels_first")
    assert len(search.cv_results_["params"]) == 2


def test_set_params_validates_and_returns_self():
    layer = pyflat.Flatten()
    assert layer.set_params(data_format="channels_first") is layer
    assert layer.data_format == "channels_first"
    with pytest.raises(ValueError, match="data_format"):
        layer.set_params(data_format="nchw")
    assert layer.data_format == "channels_first"  # unchanged by the refused call
    with pytest.raises(ValueError, match="Invalid parameter 'bogus'"):
        layer.set_params(bogus=1)


def test_fit_returns_self_and_transform_flattens(digits):
    images, _ = digits
    layer = pyflat.Flatten()
    assert layer.fit(images) is layer
    assert np.array_equal(layer.transform(images), images.reshape(len(images), -1))
    assert np.array_equal(pyflat.Flatten().fit_transform(images),
                          images.reshape(len(images), -1))
    with pytest.raises(ValueError, match="X has 12 features, but Flatten is expecting 64"):
        layer.transform(np.zeros((2, 3, 4)))


def test_pickling_round_trips(digits):
    images, y = digits
    pipe = make_pipeline(pyflat.Flatten("channels_first"), LogisticRegression(max_iter=200))
    pipe.fit(images[:300], y[:300])
    again = pickle.loads(pickle.dumps(pipe))
    assert np.array_equal(again.predict(images[300:]), pipe.predict(images[300:]))
    assert again[0] == pipe[0]


def test_feature_names_follow_the_flattened_order():
    layer = pyflat.Flatten("channels_first").fit(np.zeros((1, 2, 2, 3)))
    names = layer.get_feature_names_out()
    x = np.arange(12).reshape(1, 2, 2, 3)  # element i of a sample is named x{i}
    assert list(names) == [f"x{i}" for i in pyflat.batch_flatten(
        x, data_format="channels_first")[0]]
    assert names.dtype == object
    flat = pyflat.Flatten().fit(np.zeros((3, 4)))
    assert list(flat.get_feature_names_out(["a", "b", "c", "d"])) == ["a", "b", "c", "d"]
    with pytest.raises(ValueError, match="input_features"):
        flat.get_feature_names_out(["a"])
    pipe = make_pipeline(pyflat.Flatten(), StandardScaler()).fit(np.zeros((3, 2, 2)))
    assert list(pipe.get_feature_names_out()) == ["x0", "x1", "x2", "x3"]


def test_set_output():
    layer = pyflat.Flatten()
    assert layer.set_output(transform="default") is layer
    assert layer.set_output(transform=None) is layer
    assert isinstance(layer.fit_transform(np.zeros((2, 3))), np.ndarray)
    with pytest.raises(ValueError, match="transform"):
        layer.set_output(transform="excel")
    pd = pytest.importorskip("pandas")
    frame = make_pipeline(pyflat.Flatten(), StandardScaler()).set_output(
        transform="pandas").fit_transform(np.arange(12.0).reshape(3, 2, 2))
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == ["x0", "x1", "x2", "x3"]


def test_sklearn_tags_say_stateless():
    from sklearn.utils import get_tags
    tags = get_tags(pyflat.Flatten())
    assert tags.requires_fit is False and tags.transformer_tags is not None
    from sklearn.utils.validation import check_is_fitted
    check_is_fitted(pyflat.Flatten())  # stateless: usable without fit


def test_import_pyflat_does_not_import_sklearn():
    code = ("import sys, numpy, pyflat; f = pyflat.Flatten(); f.get_params(); "
            "f.fit_transform(numpy.zeros((2, 3))); print('sklearn' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "False"


def test_clone_keeps_the_layer_dtype():
    clone_ = clone(pyflat.Flatten(dtype="float32"))
    assert clone_.dtype == "float32"
    assert clone_(np.ones((2, 3, 2), np.float64)).dtype == np.float32
