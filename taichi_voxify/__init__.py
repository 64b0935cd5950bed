"""taichi_voxify: turn 3D meshes into palette voxel art with a differentiable Taichi engine.

    import taichi_voxify as tv
    art = tv.convert("model.glb", resolution=32, colors=6, seed=0)  # or (path, tv.Options(...))
    art.indices, art.palette                   # uint8 (X, Y, Z) grid and (K, 3) sRGB palette
    art.to_field(), art.palette_field()        # Taichi fields for your own kernels

A program that called ti.init keeps its Taichi as it is; otherwise the first conversion starts
one (CUDA when present, else CPU), or call tv.init(arch=...) first.
"""
import importlib.util
import os
import sys

os.environ.setdefault("ENABLE_TAICHI_HEADER_PRINT", "0")  # Taichi's banner would spoil --json


def _kernels_from_source_checkout():
    """kernels/ sits at the repository's top level and installs as taichi_voxify.kernels
    (setup.cfg package_dir). In a source checkout (editable install, git worktree) bind the
    kernels/ beside this package, so each checkout runs its own kernels."""
    here = os.path.dirname(os.path.abspath(__file__))
    beside = os.path.join(os.path.dirname(here), "kernels", "__init__.py")
    if os.path.isdir(os.path.join(here, "kernels")) or not os.path.isfile(beside):
        return
    spec = importlib.util.spec_from_file_location(
        __name__ + ".kernels", beside, submodule_search_locations=[os.path.dirname(beside)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)


_kernels_from_source_checkout()

from .backend import init  # noqa: E402
from .errors import (BackendError, InputError, MeshError, OptionError, ResourceError,  # noqa: E402
                     VoxifyError)
from .options import Options  # noqa: E402
from .voxelart import VoxelArt  # noqa: E402
from .pipeline import convert, run_pipeline  # noqa: E402

__version__ = "0.1.0"

# imported on first use, so `import taichi_voxify` stays quick (no mesh, image or GUI modules)
_LAZY = {"load_mesh": ("mesh", "load_mesh"), "make_pixel_art": ("pixelart", "make_pixel_art"),
         "extract_palette": ("palette", "extract_palette"), "show": ("viewer", "show"),
         "draw_voxels": ("viewer", "draw_voxels"), "engine": ("engine", None)}

__all__ = ["init", "convert", "run_pipeline", "Options", "VoxelArt", *_LAZY, "VoxifyError",
           "OptionError", "InputError", "MeshError", "ResourceError", "BackendError"]


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module_name, attr = _LAZY[name]
    module = importlib.import_module(f"{__name__}.{module_name}")
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
