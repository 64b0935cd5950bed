"""Colours the pixel art uses but Stage 2 dropped are given back to the voxels that show them."""
import numpy as np

from taichi_voxify.metrics import render_voxels_axis
from taichi_voxify.palette import nearest_palette_index
from taichi_voxify.palette_use import first_hits, restore_missing_colors
from taichi_voxify.voxelart import VoxelArt

PALETTE = np.array([[200, 120, 40], [20, 20, 20]], np.uint8)


def _block(eye=False):
    """A 2 x 2 x 2 orange block in a 4^3 grid; with `eye`, the corner voxel (1, 1, 2) black."""
    indices = np.zeros((4, 4, 4), np.uint8)
    indices[1:3, 1:3, 1:3] = 1
    if eye:
        indices[1, 1, 2] = 2
    return VoxelArt(indices, PALETTE)


def _targets(art):
    images, masks, _ = render_voxels_axis(art)
    return np.where(masks, nearest_palette_index(images, PALETTE), -1)


def test_first_hits_are_the_nearest_filled_voxels():
    hits = first_hits(_block().indices)
    assert (hits >= 0).sum() == 6 * 4  # four pixels of each view see the block
    flat = np.ravel_multi_index((1, 1, 2), (4, 4, 4))
    assert (hits == flat).sum() == 3  # the corner is first along three axis rays


def test_a_dropped_colour_returns_to_the_voxel_that_shows_it():
    restored = restore_missing_colors(_block(), _targets(_block(eye=True)))
    np.testing.assert_array_equal(restored.indices, _block(eye=True).indices)


def test_nothing_changes_when_every_colour_is_used():
    art = _block(eye=True)
    assert restore_missing_colors(art, _targets(_block())) is art
