"""Metrics: axis-view mapping checked against cameras.py rays, ΔE76 values, IoU, evaluation."""
from types import SimpleNamespace

import numpy as np
import pytest

from taichi_voxify.cameras import VIEW_NAMES as CAMERA_VIEWS
from taichi_voxify.cameras import axis_views
from taichi_voxify.errors import InputError
from taichi_voxify.metrics import (VIEW_NAMES, color_error_de76, depth_error,
                                   evaluate_voxel_art, render_voxels_axis, silhouette_iou,
                                   six_view_silhouettes, view_volume)
from taichi_voxify.voxelart import VoxelArt


def test_view_order_matches_cameras():
    assert VIEW_NAMES == CAMERA_VIEWS


@pytest.mark.parametrize("n", [3, 5])
def test_view_volume_follows_the_camera_rays(n):
    """Cast every pixel's ray of each axis camera; at each step it must pass the cell that
    view_volume puts at (row, col, step)."""
    cell_id = np.arange(n ** 3).reshape(n, n, n)
    for view, cam in enumerate(axis_views()):
        assert cam.name == VIEW_NAMES[view]
        origins, dirs = cam.rays(n, n)
        reordered = view_volume(cell_id, view)
        for step in range(n):
            points = origins + dirs * (step + 0.5) / n
            cells = np.floor((points + 0.5) * n).astype(int)
            assert cells.min() >= 0 and cells.max() < n
            expected = cell_id[cells[..., 0], cells[..., 1], cells[..., 2]]
            assert np.array_equal(reordered[:, :, step], expected), (cam.name, step)


def test_silhouette_of_one_voxel_lands_where_the_camera_projects_it():
    n = 4
    occ = np.zeros((n, n, n), bool)
    occ[3, 1, 0] = True  # +x, low y, back
    sil = six_view_silhouettes(occ)
    centre = (np.array([3, 1, 0]) + 0.5) / n - 0.5
    for view, cam in enumerate(axis_views()):
        u, v, _ = cam.world_to_view(centre)
        col = int((u + 0.5) * n)
        row = int((0.5 - v) * n)
        assert sil[view].sum() == 1 and sil[view, row, col], cam.name


# CIE Lab (D65) of pure sRGB colours, from the CIE formulas
LAB = {"white": (100, 0, 0), "black": (0, 0, 0), "red": (53.24, 80.09, 67.20),
       "green": (87.73, -86.18, 83.18), "blue": (32.30, 79.19, -107.86)}
RGB = {"white": (1, 1, 1), "black": (0, 0, 0), "red": (1, 0, 0), "green": (0, 1, 0),
       "blue": (0, 0, 1)}


def known_de(a, b):
    return float(np.linalg.norm(np.subtract(LAB[a], LAB[b])))


@pytest.mark.parametrize("a, b", [("white", "black"), ("red", "blue"), ("green", "red"),
                                  ("blue", "white")])
def test_delta_e76_of_pure_colours(a, b):
    img_a = np.array([[RGB[a]]], float)
    img_b = np.array([[RGB[b]]], float)
    assert color_error_de76(img_a, img_b, np.ones((1, 1), bool)) == pytest.approx(
        known_de(a, b), abs=0.05)
    as_uint8 = (img_a * 255).astype(np.uint8)
    assert color_error_de76(as_uint8, img_b, np.ones((1, 1), bool)) == pytest.approx(
        known_de(a, b), abs=0.05)


def test_color_error_counts_only_masked_pixels():
    a = np.ones((2, 2, 3))
    b = np.ones((2, 2, 3))
    b[0, 0] = 0  # black where the mask is off
    b[1, 1] = [1, 0, 0]
    mask = np.array([[False, True], [True, True]])
    assert color_error_de76(a, b, mask) == pytest.approx(known_de("white", "red") / 3, abs=0.02)
    assert np.isnan(color_error_de76(a, b, np.zeros((2, 2), bool)))


def test_silhouette_iou_values():
    a = np.array([[1, 1], [0, 0]], bool)
    b = np.array([[1, 0], [1, 0]], bool)
    assert silhouette_iou(a, b) == pytest.approx(1 / 3)
    assert silhouette_iou(a, a) == 1.0
    assert silhouette_iou(np.zeros(3, bool), np.zeros(3, bool)) == 1.0
    with pytest.raises(InputError):
        silhouette_iou(a, np.zeros(3, bool))


def two_voxel_art(n=4):
    idx = np.zeros((n, n, n), np.uint8)
    idx[1, 2, 3] = 1  # front voxel (high z), red
    idx[1, 2, 0] = 2  # behind it, green
    return VoxelArt(idx, np.array([[255, 0, 0], [0, 255, 0]], np.uint8))


def test_render_voxels_axis_shows_the_first_voxel():
    n = 4
    images, masks, depth = render_voxels_axis(two_voxel_art(n))
    assert images.shape == (6, n, n, 3) and images.dtype == np.float32
    front, back = VIEW_NAMES.index("+z"), VIEW_NAMES.index("-z")
    row, col = n - 1 - 2, 1  # y = 2 counted from the bottom; x = 1 from the left
    assert masks[front].sum() == 1 and masks[front, row, col]
    assert np.allclose(images[front, row, col], [1, 0, 0])
    assert depth[front, row, col] == pytest.approx(0.0)  # entry face is the box face
    back_col = n - 1 - 1  # the back view's right is -x
    assert np.allclose(images[back, row, back_col], [0, 1, 0])
    assert depth[back, row, back_col] == pytest.approx(0.0)
    side = VIEW_NAMES.index("+x")
    assert depth[side][masks[side]].min() == pytest.approx((n - 1 - 1) / n)
    assert np.all(images[~masks] == 1.0) and np.all(np.isinf(depth[~masks]))


def test_depth_error_ignores_background():
    a = np.array([0.1, 0.5, np.inf])
    b = np.array([0.2, 0.5, 0.3])
    assert depth_error(a, b, np.ones(3, bool)) == pytest.approx(0.05)
    assert np.isnan(depth_error(a, b, np.zeros(3, bool)))


def renders_of(art):
    images, masks, depth = render_voxels_axis(art)
    return SimpleNamespace(cameras=axis_views(), covered_rgb=images,
                           alpha=masks.astype(np.float32), depth=depth)



def test_evaluate_against_itself_and_against_a_changed_render():
    art = two_voxel_art()
    perfect = evaluate_voxel_art(art, renders_of(art))
    assert perfect["iou_mean"] == 1.0 and perfect["color_de76"] == 0.0
    assert perfect["depth_error"] == 0.0
    assert perfect["colors_used"] == 2 and perfect["voxels_filled"] == 2
    assert set(perfect["iou_per_view"]) == set(VIEW_NAMES)

    other = renders_of(art)
    other.covered_rgb[VIEW_NAMES.index("+z")] = [0, 0, 1]  # the mesh is blue from the front
    other.depth = np.where(np.isfinite(other.depth), other.depth + 0.25, np.inf)
    worse = evaluate_voxel_art(art, other)
    assert worse["iou_mean"] == 1.0
    # ten pixels are seen by both (1 in each z view, 2 in the others); one turned blue
    assert worse["color_de76"] == pytest.approx(known_de("red", "blue") / 10, abs=0.01)
    assert worse["depth_error"] == pytest.approx(0.25)
    assert worse["depth_error_voxels"] == pytest.approx(1.0)


def test_evaluate_refuses_renders_of_another_size():
    art = two_voxel_art(4)
    with pytest.raises(InputError):
        evaluate_voxel_art(art, renders_of(two_voxel_art(5)))


def test_baseline_against_real_mesh_renders():
    from taichi_voxify.mesh import load_mesh
    from taichi_voxify.metrics import mesh_axis_renders
    from taichi_voxify.render import BUNDLED_MESH
    from taichi_voxify.voxelize import voxelize_mesh

    mesh = load_mesh(BUNDLED_MESH)
    n, k = 16, 5
    art = voxelize_mesh(mesh, n, colors=k)
    scores = evaluate_voxel_art(art, mesh_axis_renders(mesh, n))
    assert scores["iou_mean"] >= 0.95  # 0.997 when written
    assert min(scores["iou_per_view"].values()) >= 0.9
    assert scores["color_de76"] < 12  # 8.2 when written
    assert scores["depth_error_voxels"] < 0.5  # 0.25 when written: within the first voxel
    assert 1 <= scores["colors_used"] <= k
    assert scores["voxels_filled"] == art.filled_count > 0
