"""Taichi for the library: use the runtime a host program started, or start one.

A program that called ti.init keeps its runtime as it is (arch, default float, threads): the
library reads those and never calls ti.init or ti.reset behind its back, which would free every
field the host made. `init` is for programs that have not started Taichi: it chooses the arch
itself (never ti.gpu, which can segfault on GPU-less machines while probing OpenGL) and sets the
offline cache, thread count and float precision.
"""
import contextlib
import ctypes
import io
import os
import warnings

from .errors import BackendError, OptionError

ARCHS = ("auto", "cpu", "cuda", "vulkan")
PRECISIONS = ("f32", "f64")
CONVERSION_ARCHS = ("cpu", "cuda")  # where every stage runs right (see require_conversion_arch)
_OURS = "_taichi_voxify_started"  # marks the Taichi runtime object that `init` created
_wanted = {}  # the settings of the last `init`, so calling it again with them does nothing


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
    """Start Taichi for a program that has not, and return `info()`.

    Calling again with the same settings does nothing; different settings restart the Taichi
    this function started (freeing every field and ndarray made on it). A runtime the program
    started itself is never restarted: that is a BackendError.
    """
    if arch not in ARCHS:
        raise OptionError(f"unknown arch {arch!r}: choose one of {', '.join(ARCHS)}")
    if precision not in PRECISIONS:
        raise OptionError(f"unknown precision {precision!r}: choose f32 or f64")
    if threads is not None and int(threads) < 1:
        raise OptionError(f"threads must be at least 1, got {threads}")
    if host_runtime():
        raise BackendError(f"this program already started Taichi ({info()['arch']}, "
                           f"{info()['precision']}); taichi_voxify uses it as it is: call "
                           "tv.init only in programs that do not call ti.init")
    cache_dir = cache_dir or os.environ.get("VOXIFY_CACHE_DIR") or default_cache_dir()
    wanted = dict(arch=arch, precision=precision, threads=threads, cache_dir=cache_dir, seed=seed)
    if running() and _wanted == wanted:
        return info()
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
    setattr(ti.lang.impl.get_runtime(), _OURS, True)
    if ti.lang.impl.current_cfg().arch != chosen and not os.environ.get("TI_ARCH"):
        raise BackendError(f"Taichi could not start the {arch} backend on this machine")
    _wanted.clear()
    _wanted.update(wanted)
    return info()


def _choose_arch(ti, arch):
    if arch == "cpu":
        return ti.cpu
    if arch == "cuda":
        if not cuda_device_present():
            raise BackendError("arch 'cuda' requested but no CUDA device or driver was found")
        return ti.cuda
    if arch == "vulkan":  # for the viewer; conversions refuse it (require_conversion_arch)
        return ti.vulkan
    return ti.cuda if cuda_device_present() else ti.cpu


def _runtime():
    return _import_taichi().lang.impl.get_runtime()


def running():
    """True when Taichi has been started (by anyone) and not reset since."""
    return _runtime().prog is not None


def host_runtime():
    """True when the running Taichi was started by the program, not by `init`."""
    runtime = _runtime()
    return runtime.prog is not None and not getattr(runtime, _OURS, False)


def ensure_init(arch="auto", threads=None):
    """The running Taichi, adopted as it is, or one started with `init` when none runs
    ("auto": VOXIFY_ARCH from the environment, else CUDA when present, else CPU).

    An explicit arch or thread count that the running Taichi does not have restarts a Taichi
    that `init` started, and is a BackendError under a host's Taichi (restarting it would free
    the host's fields)."""
    if not running():
        init(arch=os.environ.get("VOXIFY_ARCH", "auto") if arch == "auto" else arch,
             threads=threads)
        return info()
    now = info()
    differs = (arch != "auto" and arch != now["arch"]) or \
        (threads is not None and now["arch"] == "cpu" and threads != now["threads"])
    if differs and host_runtime():
        raise BackendError(f"this program runs Taichi on {now['arch']} with {now['threads']} "
                           f"threads; arch={arch!r}, threads={threads!r} would need ti.init "
                           "again, which frees the program's fields: leave arch 'auto'")
    if differs:
        init(arch=arch if arch != "auto" else now["arch"], precision=now["precision"],
             threads=threads)
    return info()


def info():
    """What the running Taichi is: arch, precision ("f32"/"f64"), threads (CPU), who started
    it ("taichi_voxify" or "host"), its offline cache folder; {} when none runs."""
    if not running():
        return {}
    ti = _import_taichi()
    cfg = ti.lang.impl.current_cfg()
    arch = str(cfg.arch).split(".")[-1]
    arch = "cpu" if arch in ("x64", "arm64") else arch
    return dict(arch=arch, precision="f64" if cfg.default_fp == ti.f64 else "f32",
                threads=cfg.cpu_max_num_threads if arch == "cpu" else None,
                started_by="host" if host_runtime() else "taichi_voxify",
                cache_dir=cfg.offline_cache_file_path if cfg.offline_cache else None)


def worker_threads():
    """How many threads the conversion's numpy work (pixel-art cells, GIF frames) may use:
    Taichi's CPU threads, or every core where Taichi runs on a GPU or has not started."""
    return info().get("threads") or os.cpu_count()


def require_conversion_arch(stage):
    """BackendError naming `stage` when the running arch cannot run the conversion stages."""
    arch = ensure_init()["arch"]
    if arch not in CONVERSION_ARCHS:
        raise BackendError(f"{stage} needs Taichi on cpu or cuda, this program runs it on "
                           f"{arch}: {_ARCH_LIMITS.get(arch, 'not tested there')}")


_ARCH_LIMITS = {"vulkan": "the rasterizer's 64-bit atomic depth test loses updates there "
                          "(measured on Mesa's software Vulkan: 16% of pixels wrong)"}


def ti_float():
    """The Taichi float type of the running backend (ti.f32 or ti.f64)."""
    import taichi as ti

    return ti.f64 if ensure_init()["precision"] == "f64" else ti.f32


def float_dtype():
    """numpy dtype that matches the Taichi default float of the running backend."""
    import numpy as np

    return np.float64 if ensure_init()["precision"] == "f64" else np.float32
