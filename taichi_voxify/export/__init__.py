"""Exporters: MagicaVoxel .vox, cube meshes (.glb/.obj/.ply), images, and the LEGO build plan.
Every writer writes its file whole or not at all (see atomic.py)."""
from .vox import read_vox, write_vox
