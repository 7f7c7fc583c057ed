/*
 * pyflat._fastcall: a CPython-level entry for the common calls of the public
 * functions (issue 13, per-call overhead at numpy's level).
 *
 * wrap(func, kind, channels_last, channels_first, api) returns a callable
 * that answers the common case itself and forwards every other call,
 * arguments untouched, to ``func`` (the Python implementation), so results,
 * identity and errors are the Python implementation's:
 *
 *   kind 0, batch_flatten(a), batch_flatten(a, data_format=CHANNELS_LAST or
 *           CHANNELS_FIRST) (the constants, or literals: Python interns them),
 *           either with num_threads=None or an int from 1 to api.MAX_THREADS
 *   kind 1, flatten(a), flatten(a, 0|1), flatten(a, 0|1, -1) (the ints, by
 *           identity, as api.flatten compares them)
 *   kind 2, ascontiguousarray(a) / ascontiguousarray(a, None)
 *   kind 3, Flatten.__call__(self, x) (self.data_format is one of the constants,
 *           and the layer's dtype casts nothing: it has none, x is not
 *           floating point, or has that dtype already)
 *
 * and their conversion calls (keywords dtype, scale and offset, each factor a
 * Python float or None, with the default casting; ascontiguousarray's dtype
 * by position too), where api._CONVERT_NUMPY has remembered that numpy
 * converts that layout for that call: numpy's one pass (astype, then the
 * in-place ufuncs), as convert.numpy_convert computes it;
 *
 * for an exact numpy.ndarray ``a``, as the Python fast paths (pyflat/api.py)
 * do: a view when ``a`` (channels_first: its transpose moving axis 1 to the
 * end) is C-contiguous; else, for a copy that api.numpy_or_kernel admits,
 * numpy's copy or api._kernel_copy(view, batch, num_threads), whichever
 * api.kernel_takes_small has chosen (tiny copies, rows contiguous in the
 * source, or the decision in its cache: read, never written).  A layout not
 * decided yet, and everything else, goes to ``func``.  ``api`` is
 * pyflat.api's globals: its settings (SMALL_COPY_BYTES, ...) are read at
 * each copy, so that switching them (tests do) acts here too.
 *
 * The wrapper is a descriptor like a Python function (Flatten.__call__ binds),
 * has a __dict__ (functools.update_wrapper fills __name__, __doc__,
 * __wrapped__, ...), reads any other attribute from ``func`` (__code__,
 * __defaults__, ...), and pickles by qualified name.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

#include <math.h>
#include <stddef.h>
#include <stdint.h>

enum { KIND_BATCH_FLATTEN, KIND_FLATTEN, KIND_ASCONTIGUOUS, KIND_LAYER_CALL, KIND_COUNT };

typedef struct {
    PyObject_HEAD
    PyObject *func;           /* the Python implementation */
    PyObject *dict;           /* __dict__ */
    PyObject *channels_last;  /* api.CHANNELS_LAST, compared by identity */
    PyObject *channels_first; /* api.CHANNELS_FIRST, likewise */
    vectorcallfunc vectorcall;
    int kind;
    PyObject *api;            /* pyflat.api's globals: its settings, read at each copy */
} FastFunc;

static PyObject *str_data_format;  /* interned "data_format" */
static PyObject *str_num_threads;  /* interned "num_threads" */
static PyObject *str_max_threads;  /* interned "MAX_THREADS": api's limit on num_threads */
static PyObject *str_cast_to;      /* interned "_cast_to": Flatten's compute dtype, or None */
static PyObject *str_plain_format; /* interned "_plain_format": its data_format when it casts nothing */
/* api's names, interned: the settings of its small-copy fast paths, its
 * decision cache and its kernel copy, read live (tests switch them). */
static PyObject *str_small_copy_bytes, *str_simple_copy_bytes, *str_one_thread_bytes,
                *str_kernel_min_bytes, *str_numpy_run_bytes, *str_kernel_takes,
                *str_kernel_copy, *str_kernel_entry;
/* conversions: api's cache of those numpy computes, the keywords taken, and
 * the default castings (batch_flatten and flatten; ascontiguousarray) */
static PyObject *str_convert_numpy, *str_dtype, *str_scale, *str_offset, *str_same_kind,
                *str_unsafe;

/* api's integer setting ``name`` in *value: 1, or 0 where it is not an int
 * (the Python implementation then decides). */
static int
api_setting(FastFunc *self, PyObject *name, npy_intp *value)
{
    PyObject *v = PyDict_GetItemWithError(self->api, name);  /* borrowed */
    if (v == NULL || !PyLong_Check(v)) {
        PyErr_Clear();
        return 0;
    }
    int overflow = 0;
    long long n = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow || (n == -1 && PyErr_Occurred()) || n > NPY_MAX_INTP || n < NPY_MIN_INTP) {
        PyErr_Clear();
        return 0;
    }
    *value = (npy_intp)n;
    return 1;
}

/* Fast paths return a new reference, or NULL: with an exception set, an
 * error to raise (unless it is a TypeError or ValueError: then the Python
 * implementation answers); without one, a call the fast path does not take. */

/* The shape, strides and dtype of a: api.kernel_takes_small's key. */
static PyObject *
layout_key(PyArrayObject *a)
{
    int ndim = PyArray_NDIM(a);
    PyObject *shape = PyTuple_New(ndim);
    PyObject *strides = PyTuple_New(ndim);
    PyObject *key = NULL;
    if (shape == NULL || strides == NULL) {
        goto done;
    }
    for (int i = 0; i < ndim; i++) {
        PyObject *dim = PyLong_FromSsize_t((Py_ssize_t)PyArray_DIM(a, i));
        if (dim == NULL) {
            goto done;
        }
        PyTuple_SET_ITEM(shape, i, dim);
        PyObject *stride = PyLong_FromSsize_t((Py_ssize_t)PyArray_STRIDE(a, i));
        if (stride == NULL) {
            goto done;
        }
        PyTuple_SET_ITEM(strides, i, stride);
    }
    key = PyTuple_Pack(3, shape, strides, (PyObject *)PyArray_DESCR(a));
done:
    Py_XDECREF(shape);
    Py_XDECREF(strides);
    return key;
}

enum { COPIER_UNKNOWN, COPIER_NUMPY, COPIER_KERNEL };

/* Who the Python implementation's fast path copies ``view`` (at least 1-d,
 * not C-contiguous) with, as api.kernel_takes_small decides: numpy for tiny
 * copies, for rows contiguous in the source of NUMPY_RUN_BYTES or more, and
 * for layouts whose decision (in its cache) is False; the kernel for those
 * whose decision is True.  COPIER_UNKNOWN for the rest: a layout not decided
 * yet, a copy too big for that cache (the Python implementation decides). */
static int
copier_of(FastFunc *self, PyArrayObject *view)
{
    npy_intp nbytes = PyArray_NBYTES(view), small, simple, one_thread, kernel_min, run;
    /* api's fast paths copy only what api.numpy_or_kernel(nbytes) admits */
    if (!api_setting(self, str_small_copy_bytes, &small)) {
        return COPIER_UNKNOWN;
    }
    if (nbytes >= small) {
        if (!api_setting(self, str_simple_copy_bytes, &simple)
                || !api_setting(self, str_one_thread_bytes, &one_thread)
                || nbytes >= simple || nbytes >= one_thread) {
            return COPIER_UNKNOWN;
        }
    }
    /* api.kernel_takes_small */
    if (!api_setting(self, str_kernel_min_bytes, &kernel_min)) {
        return COPIER_UNKNOWN;
    }
    if (nbytes < kernel_min) {
        return COPIER_NUMPY;
    }
    if (!api_setting(self, str_numpy_run_bytes, &run)) {
        return COPIER_UNKNOWN;
    }
    int d = PyArray_NDIM(view) - 1;
    npy_intp bytes = PyArray_ITEMSIZE(view);
    if (PyArray_STRIDE(view, d) == bytes) {
        /* trailing axes that continue the run, as api.kernel_takes_small
         * merges them (the product is at most nbytes: no overflow) */
        for (; d >= 0 && (PyArray_DIM(view, d) == 1 || PyArray_STRIDE(view, d) == bytes)
               && bytes < run; d--) {
            bytes *= PyArray_DIM(view, d);
        }
        if (bytes >= run) {
            return COPIER_NUMPY;
        }
    }
    PyObject *decisions = PyDict_GetItemWithError(self->api, str_kernel_takes);  /* borrowed */
    if (decisions == NULL || !PyDict_Check(decisions)) {
        PyErr_Clear();
        return COPIER_UNKNOWN;
    }
    PyObject *key = layout_key(view);
    if (key == NULL) {
        PyErr_Clear();  /* the Python implementation decides */
        return COPIER_UNKNOWN;
    }
    Py_INCREF(decisions);  /* the key's hash or comparison may run Python code */
    PyObject *takes = PyDict_GetItemWithError(decisions, key);  /* borrowed */
    int copier = takes == Py_False ? COPIER_NUMPY
                 : takes == Py_True ? COPIER_KERNEL : COPIER_UNKNOWN;
    Py_DECREF(decisions);
    Py_DECREF(key);
    PyErr_Clear();
    return copier;
}

/* The kernel's C entry, pf_copy_ndarray (the cffi module's glue, see
 * pyflat/_build.py): its address is api.KERNEL_ENTRY. */
typedef int (*copy_ndarray_fn)(uintptr_t src_array, char *dst, int64_t itemsize,
                               int num_threads, int64_t decline_simple_below);

/* np.empty of the result, then the kernel called directly, with the GIL held
 * (so that no thread reshapes ``view`` meanwhile; these copies are small and
 * on one thread): what api._kernel_copy does, without its Python calls
 * (about 0.6 us of a 4 KB copy).  NULL without an exception where the kernel
 * declines or fails: api._kernel_copy then copies (or raises) as it would. */
static PyObject *
kernel_copy_direct(copy_ndarray_fn entry, PyArrayObject *view, npy_intp batch, int num_threads)
{
    npy_intp dims2[2];
    const npy_intp *dims = PyArray_DIMS(view);
    int nd = PyArray_NDIM(view);
    if (batch >= 0) {
        dims2[0] = batch;
        dims2[1] = batch > 0 ? PyArray_SIZE(view) / batch : 0;
        dims = dims2;
        nd = 2;
    }
    PyArray_Descr *descr = PyArray_DESCR(view);
    Py_INCREF(descr);  /* PyArray_Empty steals it */
    PyObject *out = PyArray_Empty(nd, (npy_intp *)dims, descr, 0);
    if (out == NULL) {
        PyErr_Clear();  /* api._kernel_copy raises it, in its words */
        return NULL;
    }
    if (entry((uintptr_t)view, PyArray_BYTES((PyArrayObject *)out),
              (int64_t)PyArray_ITEMSIZE(view), num_threads, 0) != 0) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

/* api._kernel_copy(view, batch, num_threads), batch -1 for None and
 * num_threads 0 for None: what the Python fast paths call for a copy the
 * kernel takes; in C where api.KERNEL_ENTRY is set. */
static PyObject *
call_kernel_copy(FastFunc *self, PyArrayObject *view, npy_intp batch, int num_threads)
{
    npy_intp entry;
    if (api_setting(self, str_kernel_entry, &entry) && entry != 0) {
        PyObject *result = kernel_copy_direct((copy_ndarray_fn)(uintptr_t)entry, view, batch,
                                              num_threads);
        if (result != NULL) {
            return result;
        }
    }
    PyObject *kernel_copy = PyDict_GetItemWithError(self->api, str_kernel_copy);  /* borrowed */
    if (kernel_copy == NULL) {
        PyErr_Clear();
        return NULL;  /* the Python implementation copies */
    }
    PyObject *length = batch >= 0 ? PyLong_FromSsize_t((Py_ssize_t)batch) : Py_NewRef(Py_None);
    if (length == NULL) {
        return NULL;
    }
    PyObject *threads = num_threads > 0 ? PyLong_FromLong(num_threads) : Py_NewRef(Py_None);
    if (threads == NULL) {
        Py_DECREF(length);
        return NULL;
    }
    Py_INCREF(kernel_copy);
    PyObject *args[3] = {(PyObject *)view, length, threads};
    PyObject *result = PyObject_Vectorcall(kernel_copy, args, 3, NULL);
    Py_DECREF(kernel_copy);
    Py_DECREF(length);
    Py_DECREF(threads);
    return result;
}

/* a.reshape(len(a), -1) when a is C-contiguous; else, when small, numpy's
 * C-order copy of it (a.copy() for 2-d, a.reshape(len(a), -1) then a copy if
 * that is not contiguous) or the kernel's (api._kernel_copy(a, len(a),
 * num_threads), 0 for None), as api.batch_flatten's fast path does. */
static PyObject *
batch_view_or_small_copy(FastFunc *self, PyArrayObject *a, int num_threads)
{
    int ndim = PyArray_NDIM(a);
    if (ndim < 1) {
        return NULL;
    }
    npy_intp batch = PyArray_DIM(a, 0);
    if (batch <= 0) {
        return NULL;  /* an empty batch: reshape(0, -1) is ambiguous */
    }
    npy_intp dims[2] = {batch, -1};
    PyArray_Dims shape = {dims, 2};
    if (PyArray_IS_C_CONTIGUOUS(a)) {
        return PyArray_Newshape(a, &shape, NPY_CORDER);
    }
    int copier = copier_of(self, a);
    if (copier == COPIER_UNKNOWN) {
        return NULL;
    }
    if (copier == COPIER_KERNEL) {
        return call_kernel_copy(self, a, batch, num_threads);
    }
    if (ndim == 2) {
        return PyArray_NewCopy(a, NPY_CORDER);
    }
    PyObject *flat = PyArray_Newshape(a, &shape, NPY_CORDER);
    if (flat == NULL || PyArray_IS_C_CONTIGUOUS((PyArrayObject *)flat)) {
        return flat;
    }
    PyObject *copy = PyArray_NewCopy((PyArrayObject *)flat, NPY_CORDER);
    Py_DECREF(flat);
    return copy;
}

/* a.transpose(0, 2, ..., ndim-1, 1): axis 1 moved to the end (ndim > 2),
 * the channels_last view of channels_first input; a new reference. */
static PyObject *
channels_last_view(PyArrayObject *a)
{
    int ndim = PyArray_NDIM(a);
    npy_intp axes[NPY_MAXDIMS];
    axes[0] = 0;
    for (int i = 2; i < ndim; i++) {
        axes[i - 1] = i;
    }
    axes[ndim - 1] = 1;
    PyArray_Dims perm = {axes, ndim};
    return PyArray_Transpose(a, &perm);
}

/* channels_first: the same on a.transpose(0, 2, ..., ndim-1, 1) (axis 1 moved
 * to the end), for ndim > 2; with ndim <= 2 there is nothing to move, and
 * it is channels_last's, as in api.batch_flatten's fast path. */
static PyObject *
batch_view_or_small_copy_cf(FastFunc *self, PyArrayObject *a, int num_threads)
{
    int ndim = PyArray_NDIM(a);
    if (ndim <= 2) {
        return batch_view_or_small_copy(self, a, num_threads);
    }
    if (PyArray_DIM(a, 0) <= 0) {
        return NULL;
    }
    PyObject *view = channels_last_view(a);
    if (view == NULL) {
        return NULL;
    }
    /* (ndim > 2: the 2-d copy shortcut of channels_last never applies) */
    PyObject *result = batch_view_or_small_copy(self, (PyArrayObject *)view, num_threads);
    Py_DECREF(view);
    return result;
}

/* The data_format given by identity with the constants: 0 channels_last,
 * 1 channels_first, -1 any other object (the Python implementation's). */
static int
data_format_of(FastFunc *self, PyObject *data_format)
{
    return data_format == self->channels_last ? 0 : data_format == self->channels_first ? 1 : -1;
}

static PyObject *
batch_flatten_as(FastFunc *self, PyArrayObject *a, int format, int num_threads)
{
    return format == 0 ? batch_view_or_small_copy(self, a, num_threads)
                       : batch_view_or_small_copy_cf(self, a, num_threads);
}

/* num_threads as api.batch_flatten's fast path takes it, in *threads (0 for
 * None): None, or an int from 1 to api.MAX_THREADS; else 0 (the Python
 * implementation checks it and answers). */
static int
num_threads_of(FastFunc *self, PyObject *value, int *threads)
{
    if (value == Py_None) {
        *threads = 0;
        return 1;
    }
    npy_intp max_threads;
    if (!PyLong_CheckExact(value) || !api_setting(self, str_max_threads, &max_threads)) {
        return 0;
    }
    int overflow = 0;
    long n = PyLong_AsLongAndOverflow(value, &overflow);
    if (overflow || n < 1 || n > max_threads || n > INT_MAX) {
        PyErr_Clear();
        return 0;
    }
    *threads = (int)n;
    return 1;
}

/* -- conversions (dtype=, scale=, offset=) -------------------------------- */

/* A conversion call's arguments: the dtype, scale and offset arguments
 * (None where not given), the data format (0 or 1). */
typedef struct {
    PyObject *dtype, *scale, *offset;
    int format;
} ConvertArgs;

static int
name_is(PyObject *name, PyObject *interned)
{
    return name == interned
           || (PyUnicode_CheckExact(name) && PyUnicode_Compare(name, interned) == 0);
}

/* The keywords of a call (values after the nargs positional ones) into
 * *conv: 1 when each is dtype (unless conv->dtype is set already: given by
 * position), scale or offset (or data_format, where ``format_ok``, one of the
 * constants), else 0.  A dtype not given is None. */
static int
convert_keywords(FastFunc *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                 int format_ok, ConvertArgs *conv)
{
    Py_ssize_t n = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i), *value = args[nargs + i];
        if (name_is(name, str_dtype)) {
            if (conv->dtype != NULL) {
                return 0;  /* given twice: the Python implementation's TypeError */
            }
            conv->dtype = value;
        } else if (name_is(name, str_scale)) {
            conv->scale = value;
        } else if (name_is(name, str_offset)) {
            conv->offset = value;
        } else if (format_ok && name_is(name, str_data_format)) {
            if ((conv->format = data_format_of(self, value)) < 0) {
                return 0;
            }
        } else {
            return 0;
        }
    }
    if (conv->dtype == NULL) {
        conv->dtype = Py_None;
    }
    return 1;
}

/* A factor's part of the key: the Python float or None itself, and its sign
 * (-0.0 == 0.0 but converts apart), as api._sign gives; 0 for other factors
 * (the Python implementation converts them). */
static int
factor_key(PyObject *factor, PyObject **sign)
{
    if (factor == Py_None) {
        *sign = Py_None;
        return 1;
    }
    if (!PyFloat_CheckExact(factor)) {
        return 0;
    }
    *sign = signbit(PyFloat_AS_DOUBLE(factor)) ? Py_True : Py_False;
    return 1;
}

/* The conversion, (dtype, scale, offset) (borrowed: api._CONVERT_NUMPY's
 * entry, kept alive by the reference to that dict left in *cache), that
 * numpy computes for ``view`` and this call, or NULL where api has not
 * remembered one. */
static PyObject *
numpy_conversion(FastFunc *self, PyArrayObject *view, const ConvertArgs *conv,
                 PyObject *casting, PyObject **cache)
{
    PyObject *scale_sign, *offset_sign;
    if (!factor_key(conv->scale, &scale_sign) || !factor_key(conv->offset, &offset_sign)) {
        return NULL;
    }
    PyObject *layout = layout_key(view);
    if (layout == NULL) {
        PyErr_Clear();
        return NULL;
    }
    PyObject *key = PyTuple_Pack(9, PyTuple_GET_ITEM(layout, 0), PyTuple_GET_ITEM(layout, 1),
                                 PyTuple_GET_ITEM(layout, 2), conv->dtype, casting, conv->scale,
                                 scale_sign, conv->offset, offset_sign);
    Py_DECREF(layout);
    if (key == NULL) {
        PyErr_Clear();
        return NULL;
    }
    *cache = PyDict_GetItemWithError(self->api, str_convert_numpy);  /* borrowed */
    PyObject *conversion = NULL;
    if (*cache != NULL && PyDict_Check(*cache)) {
        Py_INCREF(*cache);  /* the key's hash or comparison may run Python code */
        conversion = PyDict_GetItemWithError(*cache, key);  /* borrowed */
        if (conversion == NULL) {
            Py_CLEAR(*cache);
        }
    } else {
        *cache = NULL;
    }
    Py_DECREF(key);
    PyErr_Clear();  /* an unhashable dtype argument: the Python implementation */
    if (conversion != NULL && !(PyTuple_Check(conversion) && PyTuple_GET_SIZE(conversion) >= 3
                                && PyArray_DescrCheck(PyTuple_GET_ITEM(conversion, 0)))) {
        Py_CLEAR(*cache);
        return NULL;
    }
    return conversion;
}

/* convert.numpy_convert's one pass, for a view it casts as it is: astype's
 * new C-order array and copy (ndarray.astype is PyArray_NewLikeArray and
 * PyArray_CopyInto), then ``result *= scale`` and ``result += offset``. */
static PyObject *
numpy_convert(PyArrayObject *view, PyObject *conversion)
{
    PyArray_Descr *descr = (PyArray_Descr *)PyTuple_GET_ITEM(conversion, 0);
    PyObject *scale = PyTuple_GET_ITEM(conversion, 1), *offset = PyTuple_GET_ITEM(conversion, 2);
    Py_INCREF(descr);  /* PyArray_NewLikeArray steals it */
    PyObject *result = PyArray_NewLikeArray(view, NPY_CORDER, descr, 0);
    if (result == NULL) {
        return NULL;
    }
    if (PyArray_CopyInto((PyArrayObject *)result, view) < 0) {
        Py_DECREF(result);
        return NULL;
    }
    PyObject *factors[2] = {scale, offset};
    for (int i = 0; i < 2; i++) {
        if (factors[i] == Py_None) {
            continue;
        }
        PyObject *done = i == 0 ? PyNumber_InPlaceMultiply(result, factors[i])
                                : PyNumber_InPlaceAdd(result, factors[i]);
        if (done == NULL) {
            Py_DECREF(result);
            return NULL;
        }
        Py_DECREF(done);  /* result itself */
    }
    return result;
}

/* The converted copy of ``view`` (at least 1-d, with elements) where
 * api._CONVERT_NUMPY says numpy computes it, else NULL without an exception
 * (the Python implementation decides, and remembers). */
static PyObject *
converted(FastFunc *self, PyArrayObject *view, const ConvertArgs *conv, PyObject *casting)
{
    if (PyArray_NDIM(view) < 1 || PyArray_SIZE(view) == 0) {
        return NULL;
    }
    PyObject *cache = NULL;
    PyObject *conversion = numpy_conversion(self, view, conv, casting, &cache);
    if (conversion == NULL) {
        return NULL;
    }
    Py_INCREF(conversion);
    Py_DECREF(cache);
    PyObject *result = numpy_convert(view, conversion);
    Py_DECREF(conversion);
    if (result == NULL && PyErr_ExceptionMatches(PyExc_OverflowError)) {
        PyErr_Clear();  /* the Python implementation raises it, as a ValueError */
    }
    return result;
}

/* batch_flatten(a, dtype=..., scale=..., offset=..., data_format=...): the
 * channels_last view converted, as (len(a), -1). */
static PyObject *
batch_converted(FastFunc *self, PyArrayObject *a, const ConvertArgs *conv)
{
    PyObject *view = (PyObject *)a;
    int ndim = PyArray_NDIM(a);
    if (ndim < 1) {
        return NULL;
    }
    if (conv->format == 1 && ndim > 2) {
        if ((view = channels_last_view(a)) == NULL) {
            return NULL;
        }
    } else {
        Py_INCREF(view);
    }
    PyObject *result = converted(self, (PyArrayObject *)view, conv, str_same_kind);
    Py_DECREF(view);
    if (result == NULL || PyArray_NDIM((PyArrayObject *)result) == 2) {
        return result;
    }
    npy_intp dims[2] = {PyArray_DIM(a, 0), -1};
    PyArray_Dims shape = {dims, 2};
    PyObject *flat = PyArray_Newshape((PyArrayObject *)result, &shape, NPY_CORDER);
    Py_DECREF(result);
    return flat;
}

/* The ints 0, 1 and -1 (CPython's cached small ints): api.flatten's fast path
 * compares start_dim and end_dim with them by identity. */
static PyObject *int_zero, *int_one, *int_minus_one;

static PyObject *
fast_batch_flatten(FastFunc *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs != 1 || !PyArray_CheckExact(args[0])) {
        return NULL;
    }
    int format = 0, num_threads = 0;
    Py_ssize_t n = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i), *value = args[nargs + i];
        if (name_is(name, str_data_format)) {
            format = data_format_of(self, value);
            if (format < 0) {
                return NULL;  /* other strings (and errors): the Python implementation */
            }
        } else if (name_is(name, str_num_threads)) {
            if (!num_threads_of(self, value, &num_threads)) {
                return NULL;
            }
        } else {  /* a conversion (with num_threads: the Python implementation) */
            ConvertArgs conv = {NULL, Py_None, Py_None, 0};
            if (!convert_keywords(self, args, nargs, kwnames, 1, &conv)) {
                return NULL;
            }
            return batch_converted(self, (PyArrayObject *)args[0], &conv);
        }
    }
    return batch_flatten_as(self, (PyArrayObject *)args[0], format, num_threads);
}

/* flatten(a, 0|1[, -1], dtype=..., scale=..., offset=...): the converted
 * copy reshaped as api.flatten does, to (-1,) or (len(a), -1). */
static PyObject *
flatten_converted(FastFunc *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyArrayObject *a = (PyArrayObject *)args[0];
    int start = nargs == 1 || args[1] == int_zero ? 0 : args[1] == int_one ? 1 : -1;
    ConvertArgs conv = {NULL, Py_None, Py_None, 0};
    if (start < 0 || (nargs == 3 && args[2] != int_minus_one) || PyArray_NDIM(a) < start + 1
            || !convert_keywords(self, args, nargs, kwnames, 0, &conv)) {
        return NULL;
    }
    PyObject *result = converted(self, a, &conv, str_same_kind);
    if (result == NULL) {
        return NULL;
    }
    npy_intp dims[2] = {start == 0 ? -1 : PyArray_DIM(a, 0), -1};
    PyArray_Dims shape = {dims, start + 1};
    PyObject *flat = PyArray_Newshape((PyArrayObject *)result, &shape, NPY_CORDER);
    Py_DECREF(result);
    return flat;
}

static PyObject *
fast_flatten(FastFunc *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs < 1 || nargs > 3 || !PyArray_CheckExact(args[0])) {
        return NULL;
    }
    if (kwnames != NULL) {
        return flatten_converted(self, args, nargs, kwnames);
    }
    PyArrayObject *a = (PyArrayObject *)args[0];
    if (!PyArray_IS_C_CONTIGUOUS(a) || (nargs == 3 && args[2] != int_minus_one)) {
        return NULL;
    }
    int ndim = PyArray_NDIM(a);
    if (nargs == 1 || args[1] == int_zero) {
        if (ndim > 1) {
            npy_intp dims[1] = {-1};
            PyArray_Dims shape = {dims, 1};
            return PyArray_Newshape(a, &shape, NPY_CORDER);
        }
        if (ndim == 1) {
            Py_INCREF(a);
            return (PyObject *)a;  /* nothing merged: the input itself, as in torch */
        }
        return NULL;
    }
    if (args[1] == int_one) {
        if (ndim > 2 && PyArray_DIM(a, 0) > 0) {
            npy_intp dims[2] = {PyArray_DIM(a, 0), -1};
            PyArray_Dims shape = {dims, 2};
            return PyArray_Newshape(a, &shape, NPY_CORDER);
        }
        if (ndim == 2) {
            Py_INCREF(a);
            return (PyObject *)a;
        }
    }
    return NULL;
}

static PyObject *
fast_ascontiguous(FastFunc *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs < 1 || nargs > 2 || !PyArray_CheckExact(args[0])) {
        return NULL;
    }
    PyArrayObject *a = (PyArrayObject *)args[0];
    if (kwnames != NULL || (nargs == 2 && args[1] != Py_None)) {
        ConvertArgs conv = {nargs == 2 ? args[1] : NULL, Py_None, Py_None, 0};
        if (!convert_keywords(self, args, nargs, kwnames, 0, &conv)) {
            return NULL;
        }
        return converted(self, a, &conv, str_unsafe);
    }
    if (PyArray_NDIM(a) < 1) {
        return NULL;
    }
    if (PyArray_IS_C_CONTIGUOUS(a)) {
        Py_INCREF(a);
        return (PyObject *)a;  /* numpy returns the input itself too */
    }
    switch (copier_of(self, a)) {
    case COPIER_NUMPY:
        return PyArray_NewCopy(a, NPY_CORDER);
    case COPIER_KERNEL:
        return call_kernel_copy(self, a, -1, 0);
    default:
        return NULL;
    }
}

/* The data format of a layer call that leaves the dtype of ``a`` as it is
 * (a new reference), or NULL for a call the fast path does not take.  The
 * layer keeps ``_plain_format``: its data_format when it casts nothing, else
 * None; then ``a`` keeps its dtype when it is not floating point or has the
 * layer's compute dtype ``_cast_to`` already (Keras' autocast, see
 * pyflat/layer.py). */
static PyObject *
layer_data_format(PyObject *layer, PyArrayObject *a)
{
    PyObject *plain = PyObject_GetAttr(layer, str_plain_format);
    if (plain == NULL || plain != Py_None) {
        if (plain == NULL) {
            PyErr_Clear();  /* the Python implementation raises it again */
        }
        return plain;
    }
    Py_DECREF(plain);
    PyObject *cast_to = PyObject_GetAttr(layer, str_cast_to);
    if (cast_to == NULL) {
        PyErr_Clear();
        return NULL;
    }
    int keeps = PyArray_DescrCheck(cast_to)
                && (PyArray_DESCR(a)->kind != 'f'
                    || PyArray_EquivTypes(PyArray_DESCR(a), (PyArray_Descr *)cast_to));
    Py_DECREF(cast_to);
    if (!keeps) {
        return NULL;
    }
    PyObject *data_format = PyObject_GetAttr(layer, str_data_format);
    if (data_format == NULL) {
        PyErr_Clear();
    }
    return data_format;
}

static PyObject *
fast_layer_call(FastFunc *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (kwnames != NULL || nargs != 2 || !PyArray_CheckExact(args[1])) {
        return NULL;
    }
    PyObject *data_format = layer_data_format(args[0], (PyArrayObject *)args[1]);
    if (data_format == NULL) {
        return NULL;
    }
    int format = data_format_of(self, data_format);
    Py_DECREF(data_format);
    if (format < 0) {
        return NULL;
    }
    return batch_flatten_as(self, (PyArrayObject *)args[1], format, 0);
}

static PyObject *
fastfunc_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    FastFunc *self = (FastFunc *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *result = NULL;
    switch (self->kind) {
    case KIND_BATCH_FLATTEN:
        result = fast_batch_flatten(self, args, nargs, kwnames);
        break;
    case KIND_FLATTEN:
        result = fast_flatten(self, args, nargs, kwnames);
        break;
    case KIND_ASCONTIGUOUS:
        result = fast_ascontiguous(self, args, nargs, kwnames);
        break;
    case KIND_LAYER_CALL:
        result = fast_layer_call(self, args, nargs, kwnames);
        break;
    default:
        break;
    }
    if (result != NULL) {
        return result;
    }
    if (PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_TypeError) && !PyErr_ExceptionMatches(PyExc_ValueError)) {
            return NULL;  /* MemoryError and the like: the Python path would raise it too */
        }
        PyErr_Clear();
    }
    return PyObject_Vectorcall(self->func, args, nargsf, kwnames);
}

/* -- the object: a function-like wrapper ----------------------------------- */

static int
fastfunc_traverse(FastFunc *self, visitproc visit, void *arg)
{
    Py_VISIT(self->func);
    Py_VISIT(self->dict);
    Py_VISIT(self->channels_last);
    Py_VISIT(self->channels_first);
    Py_VISIT(self->api);
    return 0;
}

static int
fastfunc_clear(FastFunc *self)
{
    Py_CLEAR(self->func);
    Py_CLEAR(self->dict);
    Py_CLEAR(self->channels_last);
    Py_CLEAR(self->channels_first);
    Py_CLEAR(self->api);
    return 0;
}

static void
fastfunc_dealloc(FastFunc *self)
{
    PyObject_GC_UnTrack(self);
    (void)fastfunc_clear(self);
    PyObject_GC_Del(self);
}

static PyObject *
fastfunc_descr_get(PyObject *self, PyObject *obj, PyObject *type)
{
    (void)type;
    if (obj == NULL || obj == Py_None) {
        Py_INCREF(self);
        return self;  /* as a function: accessed on the class, itself */
    }
    return PyMethod_New(self, obj);
}

static PyObject *
fastfunc_getattro(PyObject *self, PyObject *name)
{
    PyObject *value = PyObject_GenericGetAttr(self, name);
    if (value == NULL && PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();  /* __code__, __defaults__, ...: the Python function's */
        value = PyObject_GetAttr(((FastFunc *)self)->func, name);
    }
    return value;
}

static PyObject *
fastfunc_repr(FastFunc *self)
{
    return PyObject_Repr(self->func);
}

static PyObject *
fastfunc_reduce(PyObject *self, PyObject *unused)
{
    (void)unused;
    /* pickled as a global, by qualified name, as functions are */
    return PyObject_GetAttrString(self, "__qualname__");
}

static PyMethodDef fastfunc_methods[] = {
    {"__reduce__", fastfunc_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef fastfunc_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject FastFuncType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "pyflat._fastcall.fastfunction",
    .tp_doc = "A pyflat function with a C entry for its common call.",
    .tp_basicsize = sizeof(FastFunc),
    .tp_itemsize = 0,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL
                | Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_vectorcall_offset = offsetof(FastFunc, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_dealloc = (destructor)fastfunc_dealloc,
    .tp_traverse = (traverseproc)fastfunc_traverse,
    .tp_clear = (inquiry)fastfunc_clear,
    .tp_repr = (reprfunc)fastfunc_repr,
    .tp_getattro = fastfunc_getattro,
    .tp_setattro = PyObject_GenericSetAttr,
    .tp_descr_get = fastfunc_descr_get,
    .tp_dictoffset = offsetof(FastFunc, dict),
    .tp_methods = fastfunc_methods,
    .tp_getset = fastfunc_getset,
};

static PyObject *
fastcall_wrap(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError,
                        "wrap(func, kind, channels_last, channels_first, api): 5 arguments");
        return NULL;
    }
    if (!PyCallable_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "wrap: func must be callable");
        return NULL;
    }
    long kind = PyLong_AsLong(args[1]);
    if (kind == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (kind < 0 || kind >= KIND_COUNT) {
        PyErr_SetString(PyExc_ValueError, "wrap: unknown kind");
        return NULL;
    }
    if (!PyUnicode_CheckExact(args[2]) || !PyUnicode_CheckExact(args[3])) {
        PyErr_SetString(PyExc_TypeError, "wrap: channels_last and channels_first must be str");
        return NULL;
    }
    if (!PyDict_Check(args[4])) {
        PyErr_SetString(PyExc_TypeError, "wrap: api must be a dict (pyflat.api's globals)");
        return NULL;
    }
    FastFunc *self = PyObject_GC_New(FastFunc, &FastFuncType);
    if (self == NULL) {
        return NULL;
    }
    Py_INCREF(args[0]);
    self->func = args[0];
    self->dict = NULL;
    Py_INCREF(args[2]);
    self->channels_last = args[2];
    Py_INCREF(args[3]);
    self->channels_first = args[3];
    Py_INCREF(args[4]);
    self->api = args[4];
    self->vectorcall = fastfunc_vectorcall;
    self->kind = (int)kind;
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

static PyMethodDef module_methods[] = {
    {"wrap", (PyCFunction)(void (*)(void))fastcall_wrap, METH_FASTCALL,
     "wrap(func, kind, channels_last, channels_first, api): func with a C entry for its "
     "common call (kind: 0 batch_flatten, 1 flatten, 2 ascontiguousarray, "
     "3 Flatten.__call__)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef fastcall_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "pyflat._fastcall",
    .m_doc = "C entries for the common calls of pyflat's public functions.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__fastcall(void)
{
    import_array();  /* returns NULL, with numpy's ImportError, on failure */
    if (PyType_Ready(&FastFuncType) < 0) {
        return NULL;
    }
    static const struct { PyObject **str; const char *text; } names[] = {
        {&str_data_format, "data_format"},
        {&str_num_threads, "num_threads"},
        {&str_max_threads, "MAX_THREADS"},
        {&str_cast_to, "_cast_to"},
        {&str_plain_format, "_plain_format"},
        {&str_small_copy_bytes, "SMALL_COPY_BYTES"},
        {&str_simple_copy_bytes, "SIMPLE_COPY_BYTES"},
        {&str_one_thread_bytes, "ONE_THREAD_BYTES"},
        {&str_kernel_min_bytes, "KERNEL_MIN_BYTES"},
        {&str_numpy_run_bytes, "NUMPY_RUN_BYTES"},
        {&str_kernel_takes, "_KERNEL_TAKES"},
        {&str_kernel_copy, "_kernel_copy"},
        {&str_kernel_entry, "KERNEL_ENTRY"},
        {&str_convert_numpy, "_CONVERT_NUMPY"},
        {&str_dtype, "dtype"},
        {&str_scale, "scale"},
        {&str_offset, "offset"},
        {&str_same_kind, "same_kind"},
        {&str_unsafe, "unsafe"},
    };
    if (int_zero == NULL && ((int_zero = PyLong_FromLong(0)) == NULL
                             || (int_one = PyLong_FromLong(1)) == NULL
                             || (int_minus_one = PyLong_FromLong(-1)) == NULL)) {
        return NULL;
    }
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (*names[i].str == NULL) {
            *names[i].str = PyUnicode_InternFromString(names[i].text);
            if (*names[i].str == NULL) {
                return NULL;
            }
        }
    }
    PyObject *module = PyModule_Create(&fastcall_module);
    if (module == NULL) {
        return NULL;
    }
    Py_INCREF(&FastFuncType);
    if (PyModule_AddObject(module, "fastfunction", (PyObject *)&FastFuncType) < 0) {
        Py_DECREF(&FastFuncType);
        Py_DECREF(module);
        return NULL;
    }
    if (PyModule_AddIntConstant(module, "BATCH_FLATTEN", KIND_BATCH_FLATTEN) < 0
            || PyModule_AddIntConstant(module, "FLATTEN", KIND_FLATTEN) < 0
            || PyModule_AddIntConstant(module, "ASCONTIGUOUSARRAY", KIND_ASCONTIGUOUS) < 0
            || PyModule_AddIntConstant(module, "LAYER_CALL", KIND_LAYER_CALL) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
