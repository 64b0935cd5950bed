"""--shell: keep only the voxels seen from outside, so a print or a LEGO build is hollow.

A voxel is seen from outside when one of its six faces touches outside air: empty space joined
to the grid's border by face-adjacent empty voxels (the air a closed cavity holds is inside, as
--fill counts it). The six axis views and every outside view look the same after; only what
no one can see goes.
"""
import numpy as np

from .voxelart import VoxelArt

_FACES = np.zeros((3, 3, 3), bool)  # the six face neighbours (and the voxel itself)
_FACES[1, 1, :] = _FACES[1, :, 1] = _FACES[:, 1, 1] = True


def outside_air(filled):
    """(X, Y, Z) bool: empty voxels joined to the grid's border through empty face neighbours
    (the grid's surroundings count as air)."""
    from scipy import ndimage

    padded = np.pad(filled, 1)
    labels, _ = ndimage.label(~padded, structure=_FACES)
    return (labels == labels[0, 0, 0])[1:-1, 1:-1, 1:-1]


def seen_from_outside(filled):
    """(X, Y, Z) bool: filled voxels with a face on outside air."""
    from scipy import ndimage

    air = np.pad(outside_air(filled), 1, constant_values=True)
    return filled & ndimage.binary_dilation(air, structure=_FACES)[1:-1, 1:-1, 1:-1]


def keep_shell(art):
    """A copy of `art` holding only the voxels seen from outside (same palette)."""
    keep = seen_from_outside(art.indices > 0)
    return VoxelArt(np.where(keep, art.indices, 0), art.palette,
                    {**art.metadata, "shell": True})
