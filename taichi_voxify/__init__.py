"""taichi_voxify: turn 3D meshes into palette voxel art with a differentiable Taichi engine.

    import taichi_voxify as tv
    tv.init(arch="auto")                       # CUDA when present, else CPU
    art = tv.convert("model.glb", resolution=32, colors=6, seed=0)
    art.indices, art.palette                   # uint8 (X, Y, Z) grid and (K, 3) sRGB palette
"""
import os

os.environ.setdefault("ENABLE_TAICHI_HEADER_PRINT", "0")  # Taichi's banner would spoil --json

from .backend import init  # noqa: E402
from .errors import (BackendError, InputError, MeshError, OptionError, ResourceError,  # noqa: E402
                     VoxifyError)
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
