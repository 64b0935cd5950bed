"""Every palette colour the pixel art uses gets voxels: after Stage 2, a colour that the
targets show but no voxel took (a small feature that lost the argmax to its surroundings, or
one of two close shades) is given back to the voxels whose pixels ask for it.

Each target pixel asks the first filled voxel along its ray for its colour (the same vote as
Stage 2's palette cross-entropy, counted once on the final grid); a voxel takes a missing colour
when at least as many of the pixels that see it ask for that colour as for the one it holds.
"""
import numpy as np

from .metrics import view_volume
from .views import VIEW_NAMES


def first_hits(indices):
    """(6, N, N) flat index of the first filled voxel along each axis-view pixel's ray, -1
    where the ray meets none (views in VIEW_NAMES order)."""
    flat = np.arange(indices.size).reshape(indices.shape)
    hits = []
    for view in VIEW_NAMES:
        filled = view_volume(indices, view) > 0
        step = np.argmax(filled, axis=2)
        first = np.take_along_axis(view_volume(flat, view), step[..., None], axis=2)[..., 0]
        hits.append(np.where(filled.any(axis=2), first, -1))
    return np.stack(hits)


def restore_missing_colors(art, target_index):
    """VoxelArt with every colour of target_index ((6, N, N) 0-based palette index per target
    pixel, -1 for background) on at least the voxels whose pixels ask for it most; `art` itself
    when no colour is missing or no voxel would take one."""
    from .voxelart import VoxelArt

    k = len(art.palette)
    wanted = set(np.unique(target_index[target_index >= 0]).tolist())
    missing = sorted(wanted - set(art.colors_used()))
    if not missing:
        return art
    hits = first_hits(art.indices)
    asked = (hits >= 0) & (target_index >= 0)
    votes = np.zeros((art.indices.size, k), np.int64)
    np.add.at(votes, (hits[asked], target_index[asked]), 1)
    flat = art.indices.reshape(-1).astype(np.int64) - 1  # -1 where empty
    held = np.where(flat >= 0, votes[np.arange(flat.size), np.maximum(flat, 0)], 0)
    new = flat.copy()
    best = np.zeros(flat.size, np.int64)  # the strongest missing colour's votes so far
    for c in missing:
        takes = (flat >= 0) & (votes[:, c] > 0) & (votes[:, c] >= held) & (votes[:, c] > best)
        new[takes], best[takes] = c, votes[takes, c]
    if np.array_equal(new, flat):
        return art
    indices = np.where(flat >= 0, new + 1, 0).astype(np.uint8).reshape(art.indices.shape)
    return VoxelArt(indices, art.palette, dict(art.metadata))
