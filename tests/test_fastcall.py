"""The C entries (pyflat._fastcall, installed by pyflat/_fast.py) give what
the Python implementations give: same values, same identity (the input
itself, a view of it, or a new array), same errors, for any arguments; they
look like the functions they wrap (help, inspect.signature, pickling,
binding as a method); and pyflat works the same without the extension."""

from __future__ import annotations

import copy
import gc
import inspect
import json
import os
import pickle
import pydoc
import subprocess
import sys
import warnings
from typing import Any, Callable, Tuple

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import pyflat
from pyflat import _fast, api, layer

requires_extension = pytest.mark.skipif(not _fast.available(),
                                        reason="pyflat._fastcall not built or disabled")
pytestmark = [
    pytest.mark.filterwarnings("ignore:Casting complex values:Warning"),  # dtype=np.float64
    pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning"),
]

def test_extension_is_in_use() -> None:
    """A build (the wheel, an in-place build) has the C entries: the tests
    above would skip silently without them.  Only PYFLAT_FASTCALL=0 turns
    them off."""
    if os.environ.get("PYFLAT_FASTCALL", "1") == "0":
        pytest.skip("PYFLAT_FASTCALL=0")
    from pyflat import _fastcall  # type: ignore[attr-defined]  # noqa: F401
    assert type(pyflat.batch_flatten).__name__ == "fastfunction"


WRAPPED = {"batch_flatten": pyflat.batch_flatten, "flatten": pyflat.flatten,
           "ascontiguousarray": pyflat.ascontiguousarray}


def python_impl(f: Callable[..., Any]) -> Callable[..., Any]:
    """The Python implementation (the function itself without the extension,
    where every test here still holds, trivially for the comparisons)."""
    return getattr(f, "__wrapped__", f)  # type: ignore[no-any-return]


def outcome(f: Callable[..., Any], a: Any, *args: Any, **kwargs: Any) -> Tuple[Any, ...]:
    """What a call gives, comparable across two implementations: the error
    (type and message), or the result's class, shape, dtype, bytes, and how
    it relates to the input (the input itself, a view of it, a new array)."""
    try:
        r = f(a, *args, **kwargs)
    except Exception as exc:  # noqa: BLE001: compared, not swallowed
        return ("error", type(exc), str(exc))
    rel = ("same" if r is a else
           "view" if isinstance(a, np.ndarray) and np.shares_memory(r, a) else "new")
    data = r.tobytes() if r.dtype != object else repr(r.tolist())
    mask = repr(np.ma.getmaskarray(r).tolist()) if isinstance(r, np.ma.MaskedArray) else None
    return ("ok", type(r), r.shape, r.dtype, r.strides, r.flags.c_contiguous,
            r.flags.writeable, r.flags.owndata, r.base is a, r.base is None, data, mask, rel)


def same_outcome(f: Callable[..., Any], a: Any, *args: Any, **kwargs: Any) -> None:
    fast = outcome(f, a, *args, **kwargs)
    slow = outcome(python_impl(f), a, *args, **kwargs)
    assert fast == slow
    # Again, now that the Python implementation has decided who copies this
    # layout (api._KERNEL_TAKES), which the C entry reads.
    assert outcome(f, a, *args, **kwargs) == slow


# -- arrays of every layout the fast entries see or decline ------------------

@st.composite
def arrays(draw: Any) -> np.ndarray:
    dtype = draw(st.sampled_from([np.float32, np.float64, np.uint8, np.int16, np.bool_,
                                  np.complex64, "V3", object]))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=5))
    a = np.arange(int(np.prod(shape)) if shape else 1).astype(dtype).reshape(shape)
    if a.ndim and draw(st.booleans()):  # a strided or permuted view
        index = tuple(slice(None, None, draw(st.sampled_from([1, 2, -1]))) for _ in shape)
        a = a[index]
        if draw(st.booleans()):
            a = a.transpose(draw(st.permutations(range(a.ndim))))
    if draw(st.booleans()):
        a.flags.writeable = False
    return a


BIG = np.arange(64 * 3 * 32 * 32, dtype=np.float32).reshape(64, 3, 32, 32)
EXTRA = [BIG, BIG[:, :, ::2], BIG.transpose(0, 2, 3, 1), np.zeros((0, 3)), np.zeros((3, 0)),
         np.zeros((0,)), np.float32(3.0), np.array(5), [[1, 2], [3, 4]], [], 7, "text",
         np.asfortranarray(np.ones((4, 4))), np.ndarray.view(np.arange(4).reshape(2, 2), np.memmap),
         np.ma.masked_array(np.arange(12).reshape(3, 4), mask=np.arange(12) % 3 == 0),
         np.memmap, None]

with warnings.catch_warnings():
    warnings.simplefilter("ignore", PendingDeprecationWarning)
    EXTRA.append(np.matrix([[1, 2], [3, 4]]))

DATA_FORMATS = ["channels_last", "channels_first", "Channels_Last", "".join(["channels", "_last"]),
                "nope", None, 3]
DIMS = [0, 1, 2, -1, -2, 5, True, np.int64(1), 1.0, "1"]
NUM_THREADS = [None, 1, 2, api.MAX_THREADS, api.MAX_THREADS + 1, 0, -1, True, 1.5, "2",
               np.int64(2), 10**30]


def batch_flatten_calls(a: Any) -> None:
    same_outcome(pyflat.batch_flatten, a)
    for fmt in DATA_FORMATS:
        same_outcome(pyflat.batch_flatten, a, data_format=fmt)
    same_outcome(pyflat.batch_flatten, a, copy=True)
    same_outcome(pyflat.batch_flatten, a, copy=False)
    for threads in NUM_THREADS:
        same_outcome(pyflat.batch_flatten, a, num_threads=threads)
    same_outcome(pyflat.batch_flatten, a, num_threads=2, data_format="channels_first")
    same_outcome(pyflat.batch_flatten, a, data_format="channels_last", num_threads=None)
    same_outcome(pyflat.batch_flatten, a, num_threads=1, dtype=np.float64)
    same_outcome(pyflat.batch_flatten, a, data_format="channels_last", copy=None)
    same_outcome(pyflat.batch_flatten, a, "channels_last")  # positional: a TypeError
    same_outcome(pyflat.batch_flatten, a, bogus=1)


def flatten_calls(a: Any) -> None:
    same_outcome(pyflat.flatten, a)
    for start in DIMS:
        same_outcome(pyflat.flatten, a, start)
        same_outcome(pyflat.flatten, a, start, -1)
        same_outcome(pyflat.flatten, a, start, 2)
        same_outcome(pyflat.flatten, a, start_dim=start)
    same_outcome(pyflat.flatten, a, 1, end_dim=-1)
    same_outcome(pyflat.flatten, a, 1, -1, copy=True)
    same_outcome(pyflat.flatten, a, 0, -1, 0)


def ascontiguous_calls(a: Any) -> None:
    same_outcome(pyflat.ascontiguousarray, a)
    same_outcome(pyflat.ascontiguousarray, a, None)
    same_outcome(pyflat.ascontiguousarray, a, dtype=None)
    same_outcome(pyflat.ascontiguousarray, a, np.float64)
    same_outcome(pyflat.ascontiguousarray, a, None, num_threads=2)
    same_outcome(pyflat.ascontiguousarray, a, None, None)


def layer_calls(a: Any) -> None:
    for fmt in ("channels_last", "channels_first", "CHANNELS_LAST"):
        f = pyflat.Flatten(fmt)
        fast = outcome(f, a)
        slow = outcome(lambda x: python_impl(pyflat.Flatten.__call__)(f, x), a)
        assert fast == slow == outcome(f, a)


ALL_CALLS = [batch_flatten_calls, flatten_calls, ascontiguous_calls, layer_calls]


@settings(max_examples=150, deadline=None)
@given(arrays())
def test_same_outcome_as_python(a: np.ndarray) -> None:
    for calls in ALL_CALLS:
        calls(a)


@pytest.mark.parametrize("index", range(len(EXTRA)))
@pytest.mark.parametrize("calls", ALL_CALLS, ids=lambda c: c.__name__)
def test_same_outcome_other_inputs(calls: Callable[[Any], None], index: int) -> None:
    calls(EXTRA[index])


def test_common_calls_identity() -> None:
    x = np.zeros((32, 3, 8, 8), np.float32)
    for r in (pyflat.batch_flatten(x), pyflat.batch_flatten(x, data_format="channels_last"),
              pyflat.Flatten()(x), pyflat.flatten(x, 1)):
        assert r.shape == (32, 192) and r.base is x and type(r) is np.ndarray
    assert pyflat.flatten(x).shape == (32 * 192,) and pyflat.flatten(x).base is x
    assert pyflat.ascontiguousarray(x) is x
    v = np.zeros(5)
    assert pyflat.flatten(v) is v and pyflat.flatten(x[0, 0], 1) is not None
    m = np.zeros((3, 4))
    assert pyflat.flatten(m, 1) is m
    s = x[:, :, ::2, :1]  # tiny and strided: a new array, numpy's copy
    r = pyflat.ascontiguousarray(s)
    assert r.flags.c_contiguous and not np.shares_memory(r, x) and np.array_equal(r, s)


@requires_extension
def test_answered_in_c() -> None:
    """batch_flatten with num_threads, and channels_first on 2-d input
    (nothing to move), are common calls too: the C entry answers them
    without running any Python code."""
    x = np.zeros((32, 3, 8, 8), np.float32)
    m = np.zeros((64, 10), np.float32)
    calls = [lambda: pyflat.batch_flatten(x, num_threads=1),
             lambda: pyflat.batch_flatten(x[:, :, ::2], num_threads=2),
             lambda: pyflat.batch_flatten(m, data_format="channels_first"),
             lambda: pyflat.batch_flatten(m[:, ::2], data_format="channels_first", num_threads=1)]
    for call in calls:
        call()  # the layout's copier decided (api._KERNEL_TAKES)
        entered: list = []
        # earlier tests' garbage, collected during the call, may run finalizers
        gc.collect()
        gc.disable()
        sys.setprofile(lambda frame, event, arg: entered.append(frame.f_code.co_name)
                       if event == "call" else None)
        try:
            call()
        finally:
            sys.setprofile(None)
            gc.enable()
        assert [name for name in entered if name != "<lambda>"] == []


def test_results_are_not_kept() -> None:
    """Reference counts: the input's and the results' come back to where
    they were (a missing or extra reference would show here)."""
    x = np.zeros((4, 3, 2), np.float32)
    s = np.zeros((4, 6), np.float32)[:, ::2]
    m = np.zeros((64, 32), np.float32)[:, :16]  # 4 KB: a decision read from api's cache
    c = np.zeros((5, 3, 8, 8))  # channels_first, 4 KB
    layer_ = pyflat.Flatten()
    calls = [lambda: pyflat.batch_flatten(x), lambda: pyflat.batch_flatten(s),
             lambda: pyflat.flatten(x), lambda: pyflat.flatten(x, 1),
             lambda: pyflat.flatten(x[0], 0), lambda: pyflat.ascontiguousarray(x),
             lambda: pyflat.ascontiguousarray(s), lambda: layer_(x), lambda: layer_(s),
             lambda: pyflat.batch_flatten(x, data_format="channels_last"),
             lambda: pyflat.batch_flatten(np.zeros(0)), lambda: pyflat.batch_flatten(m),
             lambda: pyflat.ascontiguousarray(m),
             lambda: pyflat.batch_flatten(c, data_format="channels_first"),
             lambda: pyflat.batch_flatten(c[:, :, ::2], data_format="channels_first")]
    for call in calls:
        call()
    gc.collect()
    before = (sys.getrefcount(x), sys.getrefcount(s), sys.getrefcount(layer_),
              sys.getrefcount(m), sys.getrefcount(c), sys.getrefcount(m.dtype),
              sys.getrefcount("channels_last"), sys.getrefcount("channels_first"))
    for _ in range(1000):
        for call in calls:
            r = call()
            assert sys.getrefcount(r) <= 3  # r, the argument, and x itself for the identity
            del r
    gc.collect()
    after = (sys.getrefcount(x), sys.getrefcount(s), sys.getrefcount(layer_),
             sys.getrefcount(m), sys.getrefcount(c), sys.getrefcount(m.dtype),
             sys.getrefcount("channels_last"), sys.getrefcount("channels_first"))
    assert after == before


# -- looks like the function it wraps ----------------------------------------

@pytest.mark.parametrize("name", sorted(WRAPPED))
def test_metadata(name: str) -> None:
    f = WRAPPED[name]
    impl = python_impl(f)
    assert inspect.isfunction(impl) and impl.__name__ == name
    assert f.__name__ == name and f.__qualname__ == name
    assert f.__module__ == "pyflat.api" and f.__doc__ == impl.__doc__
    assert inspect.signature(f) == inspect.signature(impl)
    assert f.__defaults__ == impl.__defaults__ and f.__kwdefaults__ == impl.__kwdefaults__
    assert f.__code__ is impl.__code__ and f.__annotations__ == impl.__annotations__
    assert getattr(pyflat, name) is f is getattr(api, name)
    assert pickle.loads(pickle.dumps(f)) is f
    assert copy.copy(f) is f and copy.deepcopy(f) is f
    assert repr(f) == repr(impl)
    # help(f)'s text: the function's, but the first line ("function NAME in
    # module pyflat.api" for the Python function)
    text = pydoc.plain(pydoc.render_doc(f))
    assert text.split("\n", 1)[1] == pydoc.plain(pydoc.render_doc(impl)).split("\n", 1)[1]
    assert text.split("\n", 1)[0].endswith("in module pyflat.api")
    assert name in text and impl.__doc__.splitlines()[0] in text
    with pytest.raises(AttributeError):
        f.no_such_attribute  # noqa: B018


def test_layer_call_metadata() -> None:
    call = pyflat.Flatten.__call__
    impl = python_impl(call)
    assert call.__qualname__ == "Flatten.__call__" and call.__module__ == "pyflat.layer"
    assert str(inspect.signature(pyflat.Flatten())) == "(x: 'Any') -> 'NDArray[Any]'"
    assert inspect.signature(call) == inspect.signature(impl)
    f = pyflat.Flatten()
    bound = f.__call__
    assert bound.__self__ is f and bound.__func__ is call
    x = np.zeros((2, 3, 4))
    assert bound(x).shape == (2, 12) and call(f, x).shape == (2, 12)
    assert pickle.loads(pickle.dumps(call)) is call
    assert pickle.loads(pickle.dumps(f)) == f  # the layer itself still pickles


def test_binds_as_a_method() -> None:
    class Holder:
        flat = pyflat.batch_flatten

    assert Holder.flat is pyflat.batch_flatten
    x = np.zeros((2, 3))
    with pytest.raises(TypeError) as fast:
        Holder().flat(x)  # bound: (holder, x), as a Python function would be
    with pytest.raises(TypeError) as slow:
        python_impl(pyflat.batch_flatten)(Holder(), x)
    assert str(fast.value) == str(slow.value)


def test_subclass_of_layer() -> None:
    class Mine(pyflat.Flatten):
        @property
        def data_format(self) -> str:  # type: ignore[override]
            return "channels_first"

        @data_format.setter
        def data_format(self, value: str) -> None:
            pass

    x = np.arange(24.0).reshape(2, 3, 4)
    assert np.array_equal(Mine()(x), np.moveaxis(x, 1, -1).reshape(2, -1))


# -- without the extension ---------------------------------------------------

FALLBACK = """
import inspect, json, sys
import numpy as np
{block}
import pyflat
from pyflat import _fast
x = np.arange(24.0).reshape(2, 3, 4)
print(json.dumps({{
    "available": _fast.available(),
    "functions": [inspect.isfunction(f) for f in (pyflat.batch_flatten, pyflat.flatten,
                  pyflat.ascontiguousarray, pyflat.Flatten.__call__)],
    "results": [pyflat.batch_flatten(x).tolist(), pyflat.flatten(x, 1).tolist(),
                pyflat.Flatten("channels_first")(x).tolist()],
    "identity": pyflat.ascontiguousarray(x) is x,
}}))
"""


@pytest.mark.parametrize("how", ["blocked", "environment"])
def test_fallback_without_the_extension(how: str) -> None:
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(pyflat.__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    block = ""
    if how == "blocked":
        block = "sys.modules['pyflat._fastcall'] = None  # import raises ImportError"
    else:
        env["PYFLAT_FASTCALL"] = "0"
    out = subprocess.run([sys.executable, "-c", FALLBACK.format(block=block)], env=env,
                         capture_output=True, text=True, timeout=120, check=True)
    got = json.loads(out.stdout)
    x = np.arange(24.0).reshape(2, 3, 4)
    assert got == {"available": False, "functions": [True] * 4,
                   "results": [x.reshape(2, -1).tolist(), x.reshape(2, -1).tolist(),
                               np.moveaxis(x, 1, -1).reshape(2, -1).tolist()],
                   "identity": True}


@requires_extension
def test_wrap_checks_its_arguments() -> None:
    from pyflat import _fastcall  # type: ignore[attr-defined]
    good = (len, 0, "channels_last", "channels_first", {})
    _fastcall.wrap(*good)
    for index, bad, error in [(0, 3, TypeError), (1, 9, ValueError), (1, "0", TypeError),
                              (3, None, TypeError), (4, [], TypeError)]:
        with pytest.raises(error):
            _fastcall.wrap(*good[:index], bad, *good[index + 1:])
    with pytest.raises(TypeError):
        _fastcall.wrap(*good[:-1])
    assert python_impl(layer.Flatten.__call__).__name__ == "__call__"


@pytest.mark.parametrize("takes", [True, False, None])
def test_decisions_read_from_the_cache(monkeypatch: pytest.MonkeyPatch, takes: Any) -> None:
    """Whoever copies (the kernel, numpy in C, numpy in Python), the result
    is the same; the C entry follows api's decision cache, whatever it says."""
    a = np.arange(6 * 64 * 8, dtype=np.float32).reshape(6, 64, 8).transpose(0, 2, 1)  # 12 KB
    cf = np.arange(5 * 3 * 8 * 8, dtype=np.float64).reshape(5, 3, 8, 8)[:, :, :, ::2]
    for view, call, want in [
            (a, pyflat.batch_flatten, a.reshape(6, -1)),
            (a, pyflat.ascontiguousarray, a.copy()),
            (np.moveaxis(cf, 1, -1), lambda x: pyflat.batch_flatten(cf, data_format="channels_first"),
             np.moveaxis(cf, 1, -1).reshape(5, -1))]:
        key = (view.shape, view.strides, view.dtype)
        if takes is None:
            monkeypatch.delitem(api._KERNEL_TAKES, key, raising=False)
        else:
            monkeypatch.setitem(api._KERNEL_TAKES, key, takes)
        for _ in range(2):
            r = call(view)
            assert type(r) is np.ndarray and r.flags.c_contiguous and r.flags.writeable
            assert r.tobytes() == want.tobytes() and r.shape == want.shape
            assert not np.shares_memory(r, a) and not np.shares_memory(r, cf)


def test_api_settings_are_read_at_each_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """The C entry follows api's switches as the Python paths do: with
    SMALL_COPY_BYTES = SIMPLE_COPY_BYTES = 0 (the tests' "all through the
    kernel"), even a tiny copy is the kernel's; api._kernel_copy is looked up
    when called."""
    from pyflat import _kernel
    tiny = np.arange(64, dtype=np.float32).reshape(8, 8)[:, ::2]  # 128 B
    monkeypatch.setattr(api, "KERNEL_ENTRY", 0)  # the C entry copies through _kernel_copy
    calls: list = []
    real = _kernel.copy_into
    monkeypatch.setattr(_kernel, "copy_into", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert np.array_equal(pyflat.batch_flatten(tiny), tiny) and not calls
    monkeypatch.setattr(api, "SMALL_COPY_BYTES", 0)
    monkeypatch.setattr(api, "SIMPLE_COPY_BYTES", 0)
    for f in (pyflat.batch_flatten, pyflat.ascontiguousarray, pyflat.Flatten()):
        calls.clear()
        assert np.array_equal(f(tiny), tiny) and calls
    monkeypatch.undo()
    monkeypatch.setattr(api, "KERNEL_ENTRY", 0)
    a = np.arange(6 * 64 * 8, dtype=np.float32).reshape(6, 64, 8).transpose(0, 2, 1)
    monkeypatch.setitem(api._KERNEL_TAKES, (a.shape, a.strides, a.dtype), True)
    copies: list = []
    real_copy = api._kernel_copy
    monkeypatch.setattr(api, "_kernel_copy", lambda *args: copies.append(args[1:]) or real_copy(*args))
    assert np.array_equal(pyflat.batch_flatten(a), a.reshape(6, -1))
    assert np.array_equal(pyflat.ascontiguousarray(a), a)
    assert copies == [(6, None), (None, None)]


def _sized_layouts() -> Any:
    """Copying layouts of 128 B to 200 KB: every branch of api's choice of copier."""
    for rows in (8, 64, 1024, 3200):
        yield np.arange(rows * 32, dtype=np.float32).reshape(rows, 32)[:, :16], "channels_last"
        yield np.arange(rows * 32, dtype=np.float32).reshape(rows, 32)[:, ::2], "channels_last"
        yield np.asfortranarray(np.ones((rows, 16), np.float32)), "channels_last"
        yield np.ones((rows, 16), np.float64)[:, ::-1], "channels_last"
        yield np.ones((max(rows // 16, 1), 3, 8, 8), np.uint8), "channels_first"
        yield np.ones((max(rows // 16, 1), 3, 4, 4), np.float64), "channels_first"
        yield np.ones((max(rows // 16, 1), 3, 8, 8), np.float32).transpose(0, 2, 3, 1), \
            "channels_last"
        yield np.ones((rows * 2, 20, 6))[::2], "channels_last"
        yield np.ones((6, rows)).T, "channels_last"


@pytest.mark.parametrize("a,data_format", list(_sized_layouts()),
                         ids=lambda v: getattr(v, "nbytes", v))
def test_same_copier_as_python(monkeypatch: pytest.MonkeyPatch, a: np.ndarray,
                               data_format: str) -> None:
    """The C entry copies with the kernel exactly where the Python
    implementation does (it mirrors api.numpy_or_kernel and
    api.kernel_takes_small: a change there must be made in
    pyflat/_fastcall.c too, which this test tells)."""
    from pyflat import _kernel
    calls: list = []
    real = _kernel.copy_into
    monkeypatch.setattr(_kernel, "copy_into", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(api, "KERNEL_ENTRY", 0)  # the C entry copies through _kernel_copy
    layer_ = pyflat.Flatten(data_format)  # type: ignore[arg-type]
    for fast, slow in [
            (lambda: pyflat.batch_flatten(a, data_format=data_format),
             lambda: python_impl(pyflat.batch_flatten)(a, data_format=data_format)),
            (lambda: layer_(a), lambda: python_impl(pyflat.Flatten.__call__)(layer_, a)),
            (lambda: pyflat.ascontiguousarray(a),
             lambda: python_impl(pyflat.ascontiguousarray)(a))]:
        slow()  # the layout decided (api._KERNEL_TAKES), as in a pipeline
        calls.clear()
        want = slow()
        by_python = len(calls)
        calls.clear()
        got = fast()
        assert len(calls) == by_python
        assert got.tobytes() == want.tobytes() and got.shape == want.shape


@requires_extension
@pytest.mark.parametrize("a,data_format", list(_sized_layouts()),
                         ids=lambda v: getattr(v, "nbytes", v))
def test_kernel_called_from_c(monkeypatch: pytest.MonkeyPatch, a: np.ndarray,
                              data_format: str) -> None:
    """Where the kernel copies, the C entry calls it directly (api.KERNEL_ENTRY,
    not _kernel_copy) and gives what the Python implementation gives: the
    same bytes, shape, dtype and flags (a new array owning its data)."""
    from pyflat import _kernel
    layer_ = pyflat.Flatten(data_format)  # type: ignore[arg-type]
    pairs = [(lambda: pyflat.batch_flatten(a, data_format=data_format),
              lambda: python_impl(pyflat.batch_flatten)(a, data_format=data_format)),
             (lambda: pyflat.batch_flatten(a, data_format=data_format, num_threads=1),
              lambda: python_impl(pyflat.batch_flatten)(a, data_format=data_format,
                                                        num_threads=1)),
             (lambda: layer_(a), lambda: python_impl(pyflat.Flatten.__call__)(layer_, a)),
             (lambda: pyflat.ascontiguousarray(a),
              lambda: python_impl(pyflat.ascontiguousarray)(a))]
    wants = [slow() for _, slow in pairs]  # the layouts decided (api._KERNEL_TAKES)
    view = np.moveaxis(a, 1, -1) if data_format == "channels_first" and a.ndim > 2 else a
    decided = [api._KERNEL_TAKES.get((v.shape, v.strides, v.dtype)) for v in (view, a)]
    calls: list = []
    real = _kernel.copy_into
    monkeypatch.setattr(_kernel, "copy_into", lambda *a, **k: calls.append(1) or real(*a, **k))
    for (fast, _), want in zip(pairs, wants):
        got = fast()
        assert type(got) is np.ndarray and got.dtype == want.dtype and got.shape == want.shape
        assert got.tobytes() == want.tobytes()
        flags = ("OWNDATA", "WRITEABLE", "C_CONTIGUOUS")
        assert [got.flags[f] for f in flags] == [want.flags[f] for f in flags]
        assert np.shares_memory(got, a) == np.shares_memory(want, a)
    if True in decided:
        assert calls == []  # the kernel's copies went straight to C


# -- conversions (dtype=, scale=, offset=): numpy's one pass in C ------------

def convert_calls(a: Any) -> None:
    """The conversion calls the C entries take once api has remembered that
    numpy computes them (api._CONVERT_NUMPY), and their near misses."""
    for fmt in ("channels_last", "channels_first"):
        same_outcome(pyflat.batch_flatten, a, data_format=fmt, dtype=np.float64)
        same_outcome(pyflat.batch_flatten, a, dtype=np.float32, data_format=fmt, scale=0.5)
    same_outcome(pyflat.batch_flatten, a, dtype="f4", scale=-0.0, offset=0.0)
    same_outcome(pyflat.batch_flatten, a, dtype=np.float32, offset=-1.5)
    same_outcome(pyflat.batch_flatten, a, scale=2.0)  # dtype None: the input's
    same_outcome(pyflat.batch_flatten, a, dtype=np.int16)  # refused from floats (same_kind)
    same_outcome(pyflat.batch_flatten, a, dtype=np.float32, scale=2)  # an int: Python's
    same_outcome(pyflat.batch_flatten, a, dtype=np.float32, scale=[1.0])
    same_outcome(pyflat.batch_flatten, a, dtype=np.float32, scale=float("nan"))
    same_outcome(pyflat.batch_flatten, a, dtype=np.float32, data_format="nope")
    same_outcome(pyflat.batch_flatten, a, dtype=np.float32, casting="unsafe")
    same_outcome(pyflat.batch_flatten, a, dtype=[])  # unhashable
    for start in (0, 1, 2, -1):
        same_outcome(pyflat.flatten, a, start, dtype=np.float64)
        same_outcome(pyflat.flatten, a, start, -1, dtype=np.float32, scale=0.25, offset=1.0)
    same_outcome(pyflat.flatten, a, dtype=np.float64, end_dim=-1)
    same_outcome(pyflat.ascontiguousarray, a, np.float64)
    same_outcome(pyflat.ascontiguousarray, a, np.uint8)  # unsafe: numpy's wrap-around
    same_outcome(pyflat.ascontiguousarray, a, dtype=np.float32, scale=3.0)
    same_outcome(pyflat.ascontiguousarray, a, None, scale=-2.0)
    same_outcome(pyflat.ascontiguousarray, a, np.float32, dtype=np.float32)  # twice: an error


@settings(max_examples=100, deadline=None)
@given(arrays())
def test_conversions_same_outcome_as_python(a: np.ndarray) -> None:
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        convert_calls(a)


@pytest.mark.parametrize("index", range(len(EXTRA)))
def test_conversions_other_inputs(index: int) -> None:
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        convert_calls(EXTRA[index])


def _convert_key(view: np.ndarray, dtype: Any, casting: str, scale: Any = None,
                 offset: Any = None) -> Tuple[Any, ...]:
    return (view.shape, view.strides, view.dtype, dtype, casting, scale, api._sign(scale),
            offset, api._sign(offset))


@requires_extension
def test_conversion_read_from_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """The C entry computes what api._CONVERT_NUMPY holds for the layout and
    call (here a planted conversion to another dtype, which shows it did),
    each factor's sign apart; without an entry, the Python implementation."""
    monkeypatch.setattr(api, "_CONVERT_NUMPY", {})
    x = np.linspace(-3, 3, 40, dtype=np.float32).reshape(4, 10)
    planted = (np.dtype(np.float16), np.asarray(0.5, np.float16), None)
    api._CONVERT_NUMPY[_convert_key(x, np.float64, "same_kind", 0.5)] = planted
    r = pyflat.batch_flatten(x, dtype=np.float64, scale=0.5)
    assert r.dtype == np.float16 and r.tobytes() == (x.astype(np.float16) * np.float16(0.5)).tobytes()
    r = pyflat.batch_flatten(x, dtype=np.float64, scale=-0.5)  # not planted: Python's
    assert r.dtype == np.float64 and r.tobytes() == (x.astype(np.float64) * -0.5).tobytes()
    api._CONVERT_NUMPY.clear()
    x3 = x.reshape(4, 2, 5)
    for call, view, casting in [
            (lambda: pyflat.batch_flatten(x3, dtype=np.float64, scale=0.5), x3, "same_kind"),
            (lambda: pyflat.flatten(x3, 1, dtype=np.float64, scale=0.5), x3, "same_kind"),
            (lambda: pyflat.ascontiguousarray(x3, np.float64, scale=0.5), x3, "unsafe")]:
        want = x3.astype(np.float64) * 0.5
        first = call()  # Python's, which remembers
        assert api._CONVERT_NUMPY[_convert_key(view, np.float64, casting, 0.5)][0] == np.float64
        second = call()  # the C entry's
        for r in (first, second):
            assert r.tobytes() == want.tobytes() and r.dtype == np.float64
        assert second.shape == first.shape and second.strides == first.strides


@pytest.mark.parametrize("shape, data_format, dtype, scale", [
    ((16, 10), "channels_last", np.float64, None),
    ((8, 3, 4, 4), "channels_first", np.float32, 1 / 255),
    ((64, 3, 16, 16), "channels_first", np.float32, 1 / 255),  # 24 KiB of output: the kernel
    ((500, 20), "fortran", np.float64, None),
    ((2000, 20), "fortran", np.float32, 0.5)])
def test_conversion_same_path_as_explain(monkeypatch: pytest.MonkeyPatch, shape: Tuple[int, ...],
                                          data_format: str, dtype: Any, scale: Any) -> None:
    """The C entry repeats only what numpy computes: a layout that explain()
    gives to the kernel is never remembered (the Python implementation, and
    its kernel call, answer each time)."""
    monkeypatch.setattr(api, "_CONVERT_NUMPY", {})
    src = np.uint8 if scale is not None else (np.float32 if dtype == np.float64 else np.float64)
    x = (np.arange(int(np.prod(shape))) % 200).astype(src).reshape(shape)
    if data_format == "fortran":
        x, data_format = np.asfortranarray(x), "channels_last"
    view = np.moveaxis(x, 1, -1) if data_format == "channels_first" else x
    for _ in range(2):
        r = pyflat.batch_flatten(x, data_format=data_format, dtype=dtype, scale=scale)
        want = view.reshape(len(x), -1).astype(dtype)
        if scale is not None:
            want = want * np.asarray(scale, dtype)
        assert r.tobytes() == want.tobytes()
    path = pyflat.explain(x, data_format=data_format, dtype=dtype, scale=scale).path
    remembered = _convert_key(view, dtype, "same_kind", scale) in api._CONVERT_NUMPY
    assert remembered == (path == "numpy")


@requires_extension
def test_conversion_results_are_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reference counts of the input, the dtype and factor arguments and the
    remembered Conversions come back to where they were after C conversions."""
    monkeypatch.setattr(api, "_CONVERT_NUMPY", {})
    x = np.zeros((4, 3, 2, 2), np.uint8)
    f64, scale, offset = np.dtype(np.float64), 0.5, -1.0
    calls = [lambda: pyflat.batch_flatten(x, dtype=f64),
             lambda: pyflat.batch_flatten(x, data_format="channels_first", dtype=np.float32,
                                          scale=scale, offset=offset),
             lambda: pyflat.flatten(x, 1, dtype=f64, scale=scale),
             lambda: pyflat.flatten(x, dtype=np.float16),
             lambda: pyflat.ascontiguousarray(x[:, ::2], f64, offset=offset)]
    for call in calls:
        call()
    assert len(api._CONVERT_NUMPY) == len(calls)
    gc.collect()

    def counts() -> Tuple[int, ...]:
        return (sys.getrefcount(x), sys.getrefcount(f64), sys.getrefcount(scale),
                sys.getrefcount(offset),
                *(sys.getrefcount(c) for c in api._CONVERT_NUMPY.values()))
    before = counts()
    for _ in range(1000):
        for call in calls:
            r = call()
            assert sys.getrefcount(r) == 2 and not np.shares_memory(r, x)
            del r
    gc.collect()
    assert counts() == before


@pytest.mark.parametrize("errors", ["ignore", "warn", "raise"])
def test_conversion_float_errors_as_python(errors: str) -> None:
    """NaN and out-of-range floats cast to integers: numpy's warning or
    error (np.errstate) from the C entry as from the Python implementation."""
    x = np.array([[np.nan, 1e30, -1.5, 2.0]] * 3, np.float32)
    with np.errstate(invalid=errors, over=errors), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        same_outcome(pyflat.ascontiguousarray, x, np.int32)
        same_outcome(pyflat.ascontiguousarray, x, np.float16, scale=2.0)
        same_outcome(pyflat.batch_flatten, x, dtype=np.float16, offset=1e4)
