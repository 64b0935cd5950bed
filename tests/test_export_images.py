import numpy as np
import pytest
from PIL import Image

from taichi_voxify import VoxelArt
from taichi_voxify.cameras import Camera, axis_view, axis_views
from taichi_voxify.errors import OptionError
from taichi_voxify.export import images
from taichi_voxify.export.images import (BACKGROUND, EDGE_DARKEN, VoxelSurface, filled_sphere,
                                         iso_camera, palette_png, render_voxels, turntable_gif,
                                         views_image, views_png)


def _random_art(n=6, seed=0):
    rng = np.random.default_rng(seed)
    idx = (rng.integers(0, 4, size=(n, n, n)) * (rng.random((n, n, n)) < 0.3)).astype(np.uint8)
    return VoxelArt(idx, rng.integers(0, 256, size=(3, 3)))


def _first_hits_by_brute_force(art, camera, width, height, grow=0.0):
    """Reference for VoxelSurface.hits: every pixel's ray against the box of every filled voxel
    (slab test), the nearest entry wins; the normal is the entry face's. A ray that runs
    exactly along a slab sees [cell, cell + 1) of it; the other sides of the boxes move out by
    `grow` voxels."""
    full = np.array(art.shape, np.float64)
    voxel = 1.0 / full.max()
    origins, dirs = camera.rays(width, height)
    o = (origins.reshape(-1, 1, 3) + 0.5 * voxel * full) / voxel  # from the grid corner
    d = dirs.reshape(-1, 1, 3)
    cells = np.argwhere(art.indices > 0)[None]  # (1, V, 3)
    parallel = d == 0  # inside that slab for every t, or for none
    lo, hi = cells - grow * ~parallel, cells + 1 + grow * ~parallel
    with np.errstate(divide="ignore", invalid="ignore"):
        ta, tb = (lo - o) / d, (hi - o) / d
    within = (o >= lo) & (o < hi)
    near = np.where(parallel, np.where(within, -np.inf, np.inf), np.minimum(ta, tb))
    far = np.where(parallel, np.where(within, np.inf, -np.inf), np.maximum(ta, tb))
    t_in, t_out = near.max(-1), far.min(-1)
    t_in = np.where((t_in < t_out) & (t_in >= -1e-6), t_in, np.inf)
    best = t_in.argmin(1)
    rays = np.arange(len(o))
    t = t_in[rays, best]
    hit = np.isfinite(t)
    label = np.where(hit, art.indices[tuple(cells[0, best].T)], 0).astype(np.uint8)
    entry = np.sort(near[rays, best], -1)
    with np.errstate(invalid="ignore"):  # inf - inf on rays that miss
        edge = hit & (entry[:, 2] - entry[:, 1] < 1e-9)  # by an edge: either normal is right
    axis = near[rays, best].argmax(-1)
    normal = np.zeros((len(o), 3))
    normal[rays[hit], axis[hit]] = -np.sign(d[rays, 0, axis])[hit]
    point = np.where(hit[:, None], o[:, 0] + d[:, 0] * np.where(hit, t, 0)[:, None], 0.0)
    return (label.reshape(height, width), normal.reshape(height, width, 3),
            point.reshape(height, width, 3), edge.reshape(height, width))


def _assert_same_hits(art, camera, width, height=None):
    """VoxelSurface.hits equals the reference at every pixel but ties, where any answer is
    right: rays that meet an edge, so that boxes a hair larger or smaller give another voxel,
    or that enter a voxel by an edge (either face's normal)."""
    height = height or width
    got = VoxelSurface(art).hits(camera, width, height)
    *want, edge = _first_hits_by_brute_force(art, camera, width, height)
    clear = ~edge
    for grow in (1e-7, -1e-7):
        other = _first_hits_by_brute_force(art, camera, width, height, grow)
        clear &= (other[0] == want[0]) & (other[1] == want[1]).all(-1)
    assert clear.mean() > 0.75  # the comparison is not empty
    np.testing.assert_array_equal(got[0][clear], want[0][clear])
    np.testing.assert_array_equal(got[1][clear], want[1][clear])
    np.testing.assert_allclose(got[2][clear], want[2][clear], atol=1e-6)
    return got[0]


TURNTABLE_AND_ODD_ANGLES = [(15.0 * i, 25.0) for i in range(0, 24, 5)] + [
    (45.0, 30.0), (37.0, 21.0), (200.0, -35.0), (300.0, 60.0), (0.0, 0.0)]


@pytest.mark.parametrize("seed", range(2))
def test_hits_match_a_brute_force_ray_caster_from_every_camera(seed):
    art = _random_art(7, seed)
    # cubic, and not: there the pixel centres of odd sizes lie on voxel boundaries
    for a in (art, VoxelArt(art.indices[:, :5, 1:], art.palette)):
        for camera in axis_views():
            for width in (7, 22):
                assert (_assert_same_hits(a, camera, width) > 0).any()
        for azimuth, elevation in TURNTABLE_AND_ODD_ANGLES:
            for framed in (a, None):  # on the filled voxels, on the whole box
                _assert_same_hits(a, iso_camera(azimuth, elevation, art=framed), 32, 28)


def test_a_ray_along_an_edge_sees_the_voxel_it_runs_into_not_the_one_it_grazes():
    idx = np.zeros((2, 2, 2), np.uint8)
    idx[1, 1, 0] = 1  # x [1, 2), z [0, 1): the ray below only touches its edge x = z = 1
    camera = Camera("diagonal", (0.5, 0.25, 0.5), (-1, 0, -1), (0, 1, 0), True, 0.5, 0.5)
    # one pixel: its ray runs from (2, 1.5, 2) in voxel units along -x -z, through x = z = 1
    palette = [[255, 0, 0], [0, 0, 255]]
    assert VoxelSurface(VoxelArt(idx, palette)).hits(camera, 1, 1)[0][0, 0] == 0
    idx[0, 1, 0] = 2  # x [0, 1), z [0, 1): the ray goes on into it from that edge
    label, normal, point = VoxelSurface(VoxelArt(idx, palette)).hits(camera, 1, 1)
    assert label[0, 0] == 2 and normal[0, 0, 1] == 0 and abs(normal[0, 0]).sum() == 1
    np.testing.assert_array_equal(point[0, 0], [1, 1.5, 1])


def test_non_cubic_grid_drawn_at_its_size_shows_every_voxel_row():
    idx = np.zeros((5, 4, 3), np.uint8)  # 4 rows in a box 5 tall: pixel rows meet voxel rows on
    idx[:, :, :] = (np.arange(4) + 1)[None, :, None]  # their boundaries; each row its colour
    art = VoxelArt(idx, [[10, 0, 0], [20, 0, 0], [30, 0, 0], [40, 0, 0]])
    label, _, _ = VoxelSurface(art).hits(axis_view("+z"), 5, 5)
    np.testing.assert_array_equal(label[:, 0], [0, 4, 3, 2, 1])


def test_hits_of_full_empty_and_single_voxel_grids():
    full = VoxelArt(np.full((3, 4, 5), 2, np.uint8), [[9, 9, 9], [200, 0, 0]])  # fills the box
    one = np.zeros((5, 5, 5), np.uint8)
    one[4, 0, 2] = 1  # touches three box faces
    for art in (full, VoxelArt(one, [[0, 0, 255]])):
        for camera in [*axis_views(), iso_camera(37, 21), iso_camera(37, 21, art=art)]:
            assert (_assert_same_hits(art, camera, 30) > 0).any()
    empty = VoxelArt(np.zeros((4, 4, 4), np.uint8), [[1, 2, 3]])
    label, _, _ = VoxelSurface(empty).hits(iso_camera(), 16, 16)
    assert not label.any()
    np.testing.assert_allclose(render_voxels(empty, iso_camera(), 8), np.broadcast_to(
        BACKGROUND, (8, 8, 3)), atol=1e-6)


def test_pictures_drawn_in_many_small_batches_are_the_same(monkeypatch):
    art = _random_art(8, 5)
    camera = iso_camera(37, 21, art=art)
    whole = render_voxels(art, camera, 64)
    monkeypatch.setattr(images, "_CHUNK", 7)  # a few faces at a time
    np.testing.assert_array_equal(render_voxels(art, camera, 64), whole)
    _assert_same_hits(art, camera, 64)


def test_front_view_sees_the_first_voxel_of_every_column():
    art = _random_art()
    n = art.shape[0]
    label, normal, _ = VoxelSurface(art).hits(axis_view("+z"), n, n)  # right +x, up +y, to -z
    for x in range(n):
        for y in range(n):
            column = art.indices[x, y, ::-1]  # from the front (+z) backwards
            first = column[np.argmax(column > 0)] if column.any() else 0
            assert label[n - 1 - y, x] == first
    assert np.all(normal[label > 0] == [0, 0, 1])


def test_non_cubic_grid_is_centred_in_the_box():
    rng = np.random.default_rng(4)
    idx = rng.integers(1, 3, size=(4, 2, 3)).astype(np.uint8)  # full, two colours
    label, _, _ = VoxelSurface(VoxelArt(idx, [[1, 1, 1], [2, 2, 2]])).hits(axis_view("+z"), 4, 4)
    assert np.all(label[[0, 3]] == 0)  # 2 voxels tall in a box 4 voxels tall: rows 1-2
    np.testing.assert_array_equal(label[1:3], idx[:, ::-1, -1].T)  # front slice, top row first


def test_axis_view_draws_each_voxel_as_a_square_with_a_darker_rim_from_3_pixels_on():
    idx = np.zeros((2, 2, 2), np.uint8)
    idx[0, 1, 1] = 1  # front, top left
    art = VoxelArt(idx, [[200, 100, 50]])
    img = render_voxels(art, axis_view("+z"), 16, shade=False)  # 8 pixels a voxel
    colour = np.array([200, 100, 50]) / 255.0
    square = img[:8, :8]
    np.testing.assert_allclose(square[1:-1, 1:-1], np.broadcast_to(colour, (6, 6, 3)), atol=1e-6)
    rim = np.ones((8, 8), bool)
    rim[1:-1, 1:-1] = False
    np.testing.assert_allclose(square[rim], np.broadcast_to(colour * EDGE_DARKEN, (28, 3)),
                               atol=1e-6)
    np.testing.assert_allclose(img[8:], np.broadcast_to(BACKGROUND, (8, 16, 3)), atol=1e-6)
    np.testing.assert_allclose(img[:8, 8:], np.broadcast_to(BACKGROUND, (8, 8, 3)), atol=1e-6)
    small = render_voxels(art, axis_view("+z"), 5, shade=False)  # 2.5 pixels a voxel: no rim
    plain = [np.abs(small - c).max(-1) < 1e-6 for c in (colour, BACKGROUND)]
    assert plain[0].any() and np.all(plain[0] | plain[1])


def test_perspective_cameras_are_refused():
    camera = Camera("p", (0, 0, 2), (0, 0, -1), (0, 1, 0), ortho=False, width=0.8, height=0.8)
    with pytest.raises(OptionError, match="orthographic"):
        render_voxels(_random_art(), camera, 16)


def test_filled_sphere_surrounds_the_filled_voxels_box():
    idx = np.zeros((4, 8, 4), np.uint8)  # voxel 1/8, grid centred: x, z span [-0.25, 0.25]
    idx[0, 7, 1] = idx[1, 5, 1] = 1  # bounding box x [0, 2), y [5, 8), z [1, 2)
    centre, radius = filled_sphere(VoxelArt(idx, [[1, 1, 1]]))
    np.testing.assert_allclose(centre, [(1 - 2) / 8, (6.5 - 4) / 8, (1.5 - 2) / 8])
    np.testing.assert_allclose(radius, np.sqrt(2 ** 2 + 3 ** 2 + 1) / 2 / 8)
    framed = iso_camera(30, 20, art=VoxelArt(idx, [[1, 1, 1]]))
    given = iso_camera(30, 20, sphere=(centre, radius))
    np.testing.assert_allclose(framed.origin, given.origin)
    assert framed.width == given.width


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


def test_pictures_are_shrunk_at_the_pixels_pil_picks():
    rng = np.random.default_rng(2)
    for h, w, size in [(1024, 1024, 160), (37, 53, 160), (16, 16, 64), (300, 200, 7)]:
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        pil = np.asarray(Image.fromarray(img).resize((size, size), Image.NEAREST))
        np.testing.assert_array_equal(images._nearest(img, size), pil)
        np.testing.assert_array_equal(images._nearest(np.stack([img, img[::-1]]), size)[1],
                                      np.asarray(Image.fromarray(img[::-1]).resize(
                                          (size, size), Image.NEAREST)))


def test_palette_png_draws_each_swatch(tmp_path):
    pal = np.array([[255, 0, 0], [0, 255, 0], [10, 20, 30]], np.uint8)
    palette_png(pal, tmp_path / "p.png", counts=[3, 2, 1])
    img = np.asarray(Image.open(tmp_path / "p.png").convert("RGB"))
    for i, rgb in enumerate(pal):
        assert tuple(img[6 + i * 54 + 24, 30]) == tuple(rgb)


def test_turntable_gif_turns(tmp_path):
    import imageio.v3 as iio

    idx = np.zeros((4, 4, 4), np.uint8)
    idx[:2, :, :] = 1  # left half red, right half blue: the turn changes what is seen
    idx[2:, :, :] = 2
    art = VoxelArt(idx, [[255, 0, 0], [0, 0, 255]])
    turntable_gif(art, tmp_path / "t.gif", frames=4, size=48, seconds=2.0)
    frames = iio.imread(tmp_path / "t.gif")
    assert frames.shape[:3] == (4, 48, 48)
    gif = Image.open(tmp_path / "t.gif")
    assert gif.info["loop"] == 0 and gif.info["duration"] == 500
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
