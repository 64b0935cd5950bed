"""Stage 2's result: occupancy and palette index per voxel, and the renders of the voxel art."""
from dataclasses import dataclass, field

import numpy as np

from .. import backend, ndarrays
from ..voxelart import VoxelArt
from .ops import AxisViewRenderer, ViewRender

OPAQUE_DENSITY = 40.0  # raw density whose voxel opacity is 1 to float precision (for renders)


def fill_interior(occupancy, color_index):
    """Fill the cavities no path from outside reaches; each new voxel takes the colour of the
    nearest filled voxel. Returns new (occupancy, color_index)."""
    from scipy import ndimage

    solid = ndimage.binary_fill_holes(occupancy)
    new = solid & ~occupancy
    color_index = color_index.copy()
    if new.any():
        _, nearest = ndimage.distance_transform_edt(~occupancy, return_indices=True)
        color_index[new] = color_index[tuple(axis[new] for axis in nearest)]
    return solid, color_index


def render_voxel_art(occupancy, color_index, palette):
    """The six axis views of opaque palette-coloured voxels (what the exports show)."""
    n = occupancy.shape[0]
    fd = backend.float_dtype()  # no float64 copies of N^3 grids (1.2 GB at N=256)
    density = np.where(occupancy, fd(OPAQUE_DENSITY), fd(-OPAQUE_DENSITY))
    renderer = AxisViewRenderer(n, 0.0, skip_alpha=1e-4, t_min=1e-6)
    renderer.forward(ndarrays.from_numpy(density),
                     ndarrays.from_numpy(np.asarray(palette, fd)[color_index]))
    return renderer.images()


@dataclass
class Stage2Result:
    occupancy: np.ndarray  # (N,N,N) bool
    color_index: np.ndarray  # (N,N,N) int, 0-based palette index (argmax of the logits)
    palette: np.ndarray  # (K,3) uint8
    density: np.ndarray  # (N,N,N) trained raw density
    logits: np.ndarray  # (N,N,N,K), None for the use_gumbel=False ablation
    renders: ViewRender  # six axis views of the final voxel art
    history: list = field(default_factory=list)  # loss terms every log_every steps
    metadata: dict = field(default_factory=dict)

    def colors_used(self):
        return sorted(int(i) for i in np.unique(self.color_index[self.occupancy]))

    def to_voxel_art(self, metadata=None):
        return VoxelArt.from_dense(self.occupancy, self.color_index, self.palette,
                                   metadata={**self.metadata, **(metadata or {})})
