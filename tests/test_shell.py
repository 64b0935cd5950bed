"""--shell keeps exactly the voxels seen from outside."""
import numpy as np

from taichi_voxify import VoxelArt
from taichi_voxify.export.images import render_voxels
from taichi_voxify.shell import keep_shell, seen_from_outside
from taichi_voxify.cameras import axis_views


def test_solid_box_keeps_its_one_voxel_thick_skin():
    art = VoxelArt(np.full((5, 6, 7), 2, np.uint8), [[1, 2, 3], [200, 10, 10]])
    shell = keep_shell(art)
    assert shell.filled_count == 5 * 6 * 7 - 3 * 4 * 5
    assert not shell.indices[1:-1, 1:-1, 1:-1].any() and shell.indices[0].all()
    np.testing.assert_array_equal(shell.palette, art.palette)
    assert shell.metadata["shell"] is True


def test_closed_cavity_walls_go_but_a_tunnel_to_outside_stays():
    filled = np.ones((7, 7, 7), bool)
    filled[2:5, 2:5, 2:5] = False  # a closed cavity: its inner walls are not seen
    seen = seen_from_outside(filled)
    assert not seen[1:-1, 1:-1, 1:-1].any()
    assert seen.sum() == 7 ** 3 - 5 ** 3
    filled[3, 3, 5:] = False  # a tunnel from the cavity to the +z face: now the cavity is outside
    seen = seen_from_outside(filled)
    assert seen[3, 3, 1]  # the cavity's far wall is seen through the tunnel
    assert seen[1, 3, 3] and seen[3, 2, 5]  # a cavity side wall, a tunnel wall


def test_edge_contact_is_not_a_face_and_outside_views_do_not_change():
    rng = np.random.default_rng(0)
    idx = (rng.random((10, 9, 8)) < 0.7) * rng.integers(1, 4, (10, 9, 8))
    art = VoxelArt(idx.astype(np.uint8), [[255, 0, 0], [0, 255, 0], [0, 0, 255]])
    shell = keep_shell(art)
    assert 0 < shell.filled_count < art.filled_count
    assert np.all(shell.indices[shell.indices > 0] == art.indices[shell.indices > 0])
    for camera in axis_views():  # what the six views show is unchanged
        np.testing.assert_array_equal(render_voxels(shell, camera, 40),
                                      render_voxels(art, camera, 40))
    solid = np.ones((5, 5, 5), bool)
    solid[0, 0, 0] = solid[1, 1, 1] = False  # a pocket touching outside air by a corner only
    seen = seen_from_outside(solid)
    assert not seen[1, 1, 2] and not seen[2, 1, 1]  # their face on the pocket is not seen
    assert seen.sum() == 5 ** 3 - 3 ** 3 - 1  # the border, less its empty corner
