import numpy as np
import pytest
from PIL import Image

from taichi_voxify import VoxelArt
from taichi_voxify.cameras import axis_view
from taichi_voxify.export.images import (BACKGROUND, iso_camera, palette_png, raycast,
                                         render_voxels, turntable_gif, views_image, views_png)


def _random_art(n=6, seed=0):
    rng = np.random.default_rng(seed)
    idx = (rng.integers(0, 4, size=(n, n, n)) * (rng.random((n, n, n)) < 0.3)).astype(np.uint8)
    return VoxelArt(idx, rng.integers(0, 256, size=(3, 3)))


def test_front_view_sees_the_first_voxel_of_every_column():
    art = _random_art()
    n = art.shape[0]
    origins, dirs = axis_view("+z").rays(n, n)  # right = +x, up = +y, looking along -z
    label, normal, _ = raycast(art.indices, origins, dirs)
    for x in range(n):
        for y in range(n):
            column = art.indices[x, y, ::-1]  # from the front (+z) backwards
            first = column[np.argmax(column > 0)] if column.any() else 0
            assert label[n - 1 - y, x] == first
    assert np.all(normal[label > 0] == [0, 0, 1])


def test_non_cubic_grid_is_centred_in_the_box():
    rng = np.random.default_rng(4)
    idx = rng.integers(1, 3, size=(4, 2, 3)).astype(np.uint8)  # full, two colours
    origins, dirs = axis_view("+z").rays(4, 4)
    label, _, _ = raycast(idx, origins, dirs)
    assert np.all(label[[0, 3]] == 0)  # 2 voxels tall in a box 4 voxels tall: rows 1-2
    np.testing.assert_array_equal(label[1:3], idx[:, ::-1, -1].T)  # front slice, top row first


def test_oblique_ray_walks_the_grid():
    idx = np.zeros((4, 4, 4), np.uint8)
    idx[3, 0, 3] = 2  # only the corner voxel at +x, bottom, front
    art = VoxelArt(idx, [[0, 0, 0], [255, 0, 0]])
    d = -np.ones(3) / np.sqrt(3)
    label, normal, point = raycast(art.indices, np.array([[0.9, 0.9, 0.9]]), d[None])
    assert label[0] == 0  # the diagonal through the box centre misses it
    start = np.array([[0.45, -0.2, 0.45]]) + 0.5 * np.array([[-0.3, 0.9, -0.3]])
    label, normal, point = raycast(art.indices, start, np.array([[0.3, -0.9, 0.3]]))
    assert label[0] == 2 and np.allclose(normal[0], [0, 1, 0])


def test_red_cube_in_the_centre_renders_red_on_background():
    idx = np.zeros((5, 5, 5), np.uint8)
    idx[1:4, 1:4, 1:4] = 1
    art = VoxelArt(idx, [[255, 0, 0]])
    img = render_voxels(art, iso_camera(30, 20), 64)
    centre = img[28:36, 28:36].reshape(-1, 3)
    assert np.all(centre[:, 0] > 0.4) and np.all(centre[:, 1:] < 0.05)
    np.testing.assert_allclose(img[0, 0], BACKGROUND, atol=1e-6)


def test_views_png_layout_and_labels(tmp_path):
    art = _random_art(8)
    renders = np.ones((6, 20, 20, 3), np.float32)
    path = tmp_path / "v.png"
    views_png(art, path, mesh_views=renders, pixel_art=np.zeros((6, 8, 8, 3)), tile=64)
    img = np.asarray(Image.open(path))
    assert img.shape[1] == 6 + 7 * (64 + 6)  # six axis views and the isometric one
    assert img.shape[0] == 6 + 3 * (64 + 14 + 6)  # voxel art, mesh, pixel art rows
    # the pixel-art row is black where the voxel art row is not
    assert img[-10, 20].max() == 0 and img[40, 20].max() > 0
    assert [p.name for p in tmp_path.iterdir()] == ["v.png"]


def test_palette_png_draws_each_swatch(tmp_path):
    pal = np.array([[255, 0, 0], [0, 255, 0], [10, 20, 30]], np.uint8)
    palette_png(pal, tmp_path / "p.png", counts=[3, 2, 1])
    img = np.asarray(Image.open(tmp_path / "p.png").convert("RGB"))
    for i, rgb in enumerate(pal):
        assert tuple(img[6 + i * 54 + 24, 30]) == tuple(rgb)


def test_turntable_gif_turns(tmp_path):
    iio = pytest.importorskip("imageio.v3")
    idx = np.zeros((4, 4, 4), np.uint8)
    idx[:2, :, :] = 1  # left half red, right half blue: the turn changes what is seen
    idx[2:, :, :] = 2
    art = VoxelArt(idx, [[255, 0, 0], [0, 0, 255]])
    turntable_gif(art, tmp_path / "t.gif", frames=4, size=48)
    frames = iio.imread(tmp_path / "t.gif")
    assert frames.shape[:3] == (4, 48, 48)
    red = [(f[..., 0] > 150) & (f[..., 2] < 80) for f in frames]
    assert red[0].sum() > 50  # azimuth 0: the front; red on the left
    assert red[2].sum() > 50 and red[1].sum() < red[3].sum()  # at 90 the right (blue) side faces us


def test_white_parts_of_mesh_and_pixel_art_stay_visible_on_the_grey_background(tmp_path):
    from types import SimpleNamespace

    art = _random_art(8)
    alpha = np.zeros((6, 16, 16), np.float32)
    alpha[:, 4:12, 4:12] = 1.0  # a white object in the middle of each render
    alpha[:, 4:12, 3] = 0.5  # a half-covered edge column
    rgb = np.ones((6, 16, 16, 3), np.float32)  # white over white: invisible before
    renders = SimpleNamespace(rgb=rgb, alpha=alpha)
    masks = alpha > 0.9
    img = np.asarray(views_image(art, mesh_views=renders, pixel_art=rgb, pixel_masks=masks,
                                 tile=64))
    grey = round(BACKGROUND[0] * 255)
    for row in (1, 2):  # mesh, pixel art
        y0 = 6 + row * (64 + 14 + 6) + 14
        tile = img[y0:y0 + 64, 6:6 + 64]
        assert np.all(tile[:8, :8] == grey)  # background: the voxel views' grey
        assert np.all(tile[24:40, 24:40] == 255)  # the white object, now distinct from it
    y0 = 6 + (64 + 14 + 6) + 14
    half = img[y0 + 24:y0 + 40, 6 + 3 * 4 + 1]  # the mesh's half-covered column: in between
    assert np.all((half > grey) & (half < 255))
