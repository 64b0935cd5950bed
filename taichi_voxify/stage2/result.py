"""Stage 2's result: occupancy and palette index per voxel, and the renders of the voxel art."""
from dataclasses import dataclass, field

import numpy as np

from ..views import NUM_VIEWS
from ..voxelart import VoxelArt
from .ops import ViewRender


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
    """The six axis views (ViewRender) of opaque palette-coloured voxels, what the exports
    show, as AxisViewRenderer draws solid voxels: a pixel shows the palette colour of the first
    filled voxel along its column at the depth of that voxel's centre, else white at the far
    face. Found per column in numpy: hard voxels need no ray march (nor the renderer's kernels
    and float N^3 grids)."""
    from ..metrics import first_filled

    n = occupancy.shape[0]
    palette = np.asarray(palette, dtype=np.float64)
    rgb, depth = np.ones((NUM_VIEWS, n, n, 3)), np.ones((NUM_VIEWS, n, n))
    opacity = np.zeros((NUM_VIEWS, n, n))
    for view in range(NUM_VIEWS):
        hit, step, index = first_filled(occupancy, view, color_index)
        rgb[view][hit] = palette[index[hit]]
        depth[view][hit] = (step[hit] + 0.5) / n
        opacity[view][hit] = 1.0
    return ViewRender(rgb, depth, opacity)


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
