"""Device arrays: the one place that makes the ti.ndarrays the kernels read and write.

Kernels take `ti.types.ndarray()` arguments, so a numpy array (CPU only, zero copy) or a
ti.ndarray (any arch, stays on the device between launches) can be passed. Floats use the
backend's precision (backend.ti_float); integer and boolean arrays keep an integer type.
"""
import numpy as np

from . import backend

_INT_TYPES = {np.dtype(np.int32): "i32", np.dtype(np.int64): "i64",
              np.dtype(np.uint8): "u8", np.dtype(np.bool_): "u8"}


def _ti():
    import taichi as ti

    return ti


def ti_dtype(np_dtype):
    """The Taichi type for a numpy dtype: its integer type, or the backend's float."""
    name = _INT_TYPES.get(np.dtype(np_dtype))
    return getattr(_ti(), name) if name else backend.ti_float()


def np_dtype(ti_type=None):
    """The numpy dtype that holds a Taichi type (None: the backend's float)."""
    ti = _ti()
    if ti_type is None or ti_type == backend.ti_float():
        return np.dtype(backend.float_dtype())
    return np.dtype({ti.i32: np.int32, ti.i64: np.int64, ti.u8: np.uint8}[ti_type])


def empty(shape, dtype=None):
    """An uninitialised ti.ndarray (dtype: a Taichi type; None for the backend's float)."""
    return _ti().ndarray(dtype or backend.ti_float(), tuple(int(s) for s in shape))


def zeros(shape, dtype=None):
    return full(shape, 0, dtype)


def full(shape, value, dtype=None):
    out = empty(shape, dtype)
    if dtype == _ti().u8:  # Taichi's fill kernel warns "u8 <- i32" in the host's log
        out.from_numpy(np.full(out.shape, value, np.uint8))
    else:
        out.fill(value)
    return out


def from_numpy(array, dtype=None):
    """A ti.ndarray holding `array` (floats in the backend's precision unless dtype says)."""
    array = np.asarray(array)
    dtype = dtype or ti_dtype(array.dtype)
    out = empty(array.shape, dtype)
    out.from_numpy(np.ascontiguousarray(array, dtype=np_dtype(dtype)))
    return out


def on_host():
    """True when kernels run on the CPU and can read numpy arrays in place."""
    return backend.info().get("arch") == "cpu"


def for_kernels(array, dtype=None):
    """`array` as the kernels take it: the numpy array itself on the CPU (zero copy), else a
    device copy that stays there across launches."""
    array = np.ascontiguousarray(array)
    return array if on_host() else from_numpy(array, dtype)


def output(shape, dtype=None):
    """An array for a kernel to fill: numpy on the CPU, else a ti.ndarray (read it back with
    `to_numpy`)."""
    return np.empty(shape, np_dtype(dtype)) if on_host() else empty(shape, dtype)


def to_numpy(array):
    """numpy view of a kernel argument made by this module (numpy or ti.ndarray)."""
    return array if isinstance(array, np.ndarray) else array.to_numpy()
