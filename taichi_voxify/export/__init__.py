"""Exporters: MagicaVoxel .vox, cube meshes (.glb/.obj/.ply), Minecraft .schem, images, and the
LEGO build plan (which lives in taichi_voxify.lego). Every writer writes its file whole or not
at all (see atomic.py)."""
from ..lego import LegoPlan, build_plan, write_lego
from .images import palette_png, render_voxels, turntable_gif, views_png
from .meshing import MESH_FORMATS, MESH_STYLES, voxel_mesh, write_mesh
from .schem import write_schem
from .vox import read_vox, write_vox

__all__ = ["LegoPlan", "MESH_FORMATS", "MESH_STYLES", "build_plan", "palette_png", "read_vox",
           "render_voxels", "turntable_gif", "views_png", "voxel_mesh", "write_lego", "write_mesh",
           "write_schem", "write_vox"]
