"""taichi_voxify: turn 3D meshes into palette voxel art with a differentiable Taichi engine."""
import os

os.environ.setdefault("ENABLE_TAICHI_HEADER_PRINT", "0")  # Taichi's banner would spoil --json
from .backend import init
from .errors import (BackendError, InputError, MeshError, OptionError, ResourceError,
                     VoxifyError)
from .voxelart import VoxelArt

__version__ = "0.1.0"
