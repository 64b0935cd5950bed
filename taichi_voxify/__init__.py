"""taichi_voxify: turn 3D meshes into palette voxel art with a differentiable Taichi engine.

    import taichi_voxify as tv
    tv.init(arch="auto")                       # CUDA when present, else CPU
    art = tv.convert("model.glb", resolution=32, colors=6, seed=0)   # or tv.convert(path, tv.Options(...))
    art.indices, art.palette                   # uint8 (X, Y, Z) grid and (K, 3) sRGB palette
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


def load_mesh(path, **options):
    """Load and normalise a mesh file (see taichi_voxify.mesh.load_mesh)."""
    from .mesh import load_mesh as _load

    return _load(path, **options)


def show(art, **options):
    """Open the GGUI viewer on a VoxelArt (see taichi_voxify.viewer.show)."""
    from .viewer import show as _show

    return _show(art, **options)
