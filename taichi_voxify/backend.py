"""Starting Taichi: choose the arch ourselves (never ti.gpu, which can segfault on GPU-less
machines while probing OpenGL), set the offline cache, thread count and float precision."""
import contextlib
import ctypes
import io
import os
import warnings

from .errors import BackendError, OptionError

ARCHS = ("auto", "cpu", "cuda", "vulkan")
PRECISIONS = ("f32", "f64")

_state = {}


def default_cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "taichi_voxify", "ti_cache")


def cuda_device_present():
    """True when a CUDA driver answers with at least one device (checked without Taichi)."""
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        count = ctypes.c_int(0)
        if lib.cuInit(0) != 0 or lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
            return False
        return count.value > 0
    return False


def _import_taichi():
    os.environ.setdefault("ENABLE_TAICHI_HEADER_PRINT", "0")  # keep stdout clean for --json
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import taichi as ti
    return ti


def init(arch="auto", precision="f32", threads=None, cache_dir=None, seed=0, verbose=False):
    """Start (or keep) the Taichi runtime and return a dict describing what was picked.

    Calling again with the same settings does nothing; different settings restart Taichi,
    which frees every field and ndarray made before.
    """
    if arch not in ARCHS:
        raise OptionError(f"unknown arch {arch!r}: choose one of {', '.join(ARCHS)}")
    if precision not in PRECISIONS:
        raise OptionError(f"unknown precision {precision!r}: choose f32 or f64")
    if threads is not None and int(threads) < 1:
        raise OptionError(f"threads must be at least 1, got {threads}")
    cache_dir = cache_dir or os.environ.get("VOXIFY_CACHE_DIR") or default_cache_dir()
    wanted = dict(arch=arch, precision=precision, threads=threads, cache_dir=cache_dir, seed=seed)
    if _state.get("wanted") == wanted:
        return dict(_state["info"])
    ti = _import_taichi()
    chosen = _choose_arch(ti, arch)
    os.makedirs(cache_dir, exist_ok=True)
    kwargs = dict(
        arch=chosen,
        default_fp=ti.f64 if precision == "f64" else ti.f32,
        offline_cache=True,
        offline_cache_file_path=cache_dir,
        random_seed=int(seed),
        log_level=ti.INFO if verbose else ti.WARN,
    )
    if threads is not None and chosen == ti.cpu:
        kwargs["cpu_max_num_threads"] = int(threads)
    with contextlib.redirect_stdout(io.StringIO()):  # ti.init prints "Starting on arch=..."
        ti.init(**kwargs)
    picked = ti.lang.impl.current_cfg().arch
    if picked != chosen and not os.environ.get("TI_ARCH"):
        raise BackendError(f"Taichi could not start the {arch} backend on this machine")
    arch_name = str(picked).split(".")[-1]
    info = dict(arch="cpu" if arch_name in ("x64", "arm64") else arch_name,
                precision=precision, threads=threads,
                cache_dir=cache_dir, seed=seed)
    _state.update(wanted=wanted, info=info)
    return dict(info)


def _choose_arch(ti, arch):
    if arch == "cpu":
        return ti.cpu
    if arch == "cuda":
        if not cuda_device_present():
            raise BackendError("arch 'cuda' requested but no CUDA device or driver was found")
        return ti.cuda
    if arch == "vulkan":
        # measured on Mesa's software Vulkan: the rasterizer's 2-D ndarray atomics lose updates
        warnings.warn("the Vulkan backend is experimental here: on Mesa's software Vulkan the "
                      "mesh renders came out wrong; use cpu or cuda for conversions")
        return ti.vulkan
    return ti.cuda if cuda_device_present() else ti.cpu


def ensure_init(arch="auto", threads=None):
    """Start Taichi if nothing has started it yet ("auto": VOXIFY_ARCH from the environment,
    else CUDA when present, else CPU)."""
    if not _state:
        if arch == "auto":
            arch = os.environ.get("VOXIFY_ARCH", "auto")
        init(arch=arch, threads=threads)
    return dict(_state["info"])


def info():
    return dict(_state.get("info", {}))


def ti_float():
    """The Taichi float type of the running backend (ti.f32 or ti.f64)."""
    import taichi as ti

    ensure_init()
    return ti.f64 if _state["info"]["precision"] == "f64" else ti.f32


def float_dtype():
    """numpy dtype that matches the Taichi default float of the running backend."""
    import numpy as np

    ensure_init()
    return np.float64 if _state["info"]["precision"] == "f64" else np.float32
