"""The Taichi rasterizer against brute-force ray casting and direct colour lookups."""
import numpy as np
import pytest
import trimesh
from PIL import Image

from taichi_voxify.cameras import Camera, axis_view, axis_views, random_views
from taichi_voxify.errors import OptionError, ResourceError
from taichi_voxify.color import linear_to_srgb
from taichi_voxify.mesh import WRAP_CLAMP, WRAP_MIRROR, WRAP_REPEAT, Mesh, Texture, load_mesh
from taichi_voxify.benchmarks import bench_render, subdivide
from taichi_voxify.render import BUNDLED_MESH, render_views, save_views_png

from conftest import mesh_path

SIZE = 128


def raycast(triangles, cam, n, rows=None):
    """Nearest hit of every pixel-centre ray of an n x rows image, by Moller-Trumbore in
    float64 over the triangles whose image-plane extent spans the pixel row:
    (distance, face, barycentrics)."""
    tris = np.asarray(triangles, np.float64)
    rows = n if rows is None else rows
    origins, dirs = cam.rays(n, rows)
    view = cam.world_to_view(tris.reshape(-1, 3)).reshape(-1, 3, 3)
    plane_v = view[..., 1] if cam.ortho else view[..., 1] / view[..., 2]
    lo, hi = plane_v.min(axis=1), plane_v.max(axis=1)
    rows_v = (0.5 - (np.arange(rows) + 0.5) / rows) * cam.height
    e1, e2 = tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0]
    dist = np.full((rows, n), np.inf)
    face = np.full((rows, n), -1)
    bary = np.zeros((rows, n, 3))
    for r in range(rows):
        cand = np.nonzero((lo <= rows_v[r] + 1e-9) & (hi >= rows_v[r] - 1e-9))[0]
        if len(cand) == 0:
            continue
        o, d = origins[r][:, None, :], dirs[r][:, None, :]
        a, b, p0 = e1[cand][None], e2[cand][None], tris[cand, 0][None]
        p = np.cross(d, b)
        det = np.sum(a * p, axis=-1)
        ok = np.abs(det) > 1e-14
        inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
        s = o - p0
        u = np.sum(s * p, axis=-1) * inv
        q = np.cross(s, a)
        v = np.sum(d * q, axis=-1) * inv
        t = np.sum(b * q, axis=-1) * inv
        hit = ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t >= 0)
        t = np.where(hit, t, np.inf)
        k = np.argmin(t, axis=1)
        cols = np.arange(n)
        dist[r] = t[cols, k]
        covered = np.isfinite(dist[r])
        face[r] = np.where(covered, cand[k], -1)
        bu, bv = u[cols, k], v[cols, k]
        bary[r] = np.stack([1 - bu - bv, bu, bv], axis=-1) * covered[:, None]
    return dist, face, bary


def iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


@pytest.fixture(scope="module")
def spot():
    return load_mesh(BUNDLED_MESH)


def _load(name):
    return load_mesh(BUNDLED_MESH if name == "spot" else mesh_path(name))


# ---------------------------------------------------------------- geometry


@pytest.mark.parametrize("name", ["spot", "Fox.glb", "alien.glb"])
def test_silhouette_depth_and_faces_match_ray_casting(name):
    mesh = _load(name)
    cams = axis_views() + random_views(1, seed=3) + random_views(1, seed=4, ortho=False)
    r = render_views(mesh, cams, SIZE, supersample=1)
    for i, cam in enumerate(cams):
        dist, face, _ = raycast(mesh.triangles, cam, SIZE)
        hit, ours = np.isfinite(dist), r.alpha[i] > 0
        assert iou(hit, ours) >= 0.99, (name, cam.name)
        assert np.array_equal(ours, r.face_id[i] >= 0)
        assert np.array_equal(ours, np.isfinite(r.depth[i]))
        both = hit & ours
        err = np.abs(r.depth[i][both] - dist[both])
        assert np.median(err) < 1e-5 and np.quantile(err, 0.99) < 1e-3, (name, cam.name)
        assert (r.face_id[i][both] == face[both]).mean() > 0.97


def test_supersampled_silhouette_still_matches(spot):
    cams = axis_views()[:3]
    r = render_views(spot, cams, SIZE, supersample=3)
    for i, cam in enumerate(cams):
        hit = np.isfinite(raycast(spot.triangles, cam, SIZE)[0])
        assert iou(hit, r.alpha[i] >= 0.5) >= 0.99
        inner = (r.alpha[i] > 0) & (r.alpha[i] < 1)
        assert inner.sum() > 50  # anti-aliased edge pixels exist


def test_alpha_is_the_covered_area():
    """A square turned by 30 degrees in the front view: mean alpha is its area fraction."""
    angle = np.radians(30)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) @ rot.T
    square = trimesh.Trimesh(np.c_[corners, np.zeros(4)], [[0, 1, 2], [0, 2, 3]], process=False)
    mesh = load_mesh(square, padding=0.05)
    side = float(np.linalg.norm(mesh.triangles[0, 1] - mesh.triangles[0, 0]))
    r = render_views(mesh, [axis_view("+z")], 64, supersample=4)
    assert abs(r.alpha.mean() - side * side) < 0.003
    assert r.alpha.max() == 1.0 and 0 < r.alpha[r.alpha < 1].max()
    np.testing.assert_allclose(r.depth[0][r.alpha[0] > 0], 0.5, atol=1e-6)
    np.testing.assert_allclose(np.abs(r.normal[0][r.alpha[0] > 0][:, 2]), 1.0, atol=1e-6)


def test_perspective_cube_projects_as_expected():
    cube = load_mesh(trimesh.creation.box())
    cam = Camera("front", origin=(0, 0, 3), forward=(0, 0, -1), up=(0, 1, 0), ortho=False,
                 width=1.0, height=1.0)
    r = render_views(cube, [cam], 100, supersample=1)
    cols = np.nonzero(r.alpha[0][50] > 0)[0]
    rows = np.nonzero(r.alpha[0][:, 50] > 0)[0]
    # the front face at distance 2.5 spans u, v in [-0.2, 0.2]: pixels 30..69
    assert (cols.min(), cols.max(), rows.min(), rows.max()) == (30, 69, 30, 69)
    _, dirs = cam.rays(100, 100)
    expected = 2.5 / dirs[..., 2].__neg__()
    inside = r.alpha[0] > 0
    np.testing.assert_allclose(r.depth[0][inside], expected[inside], rtol=1e-5)
    np.testing.assert_allclose(r.normal[0][inside], np.tile([0, 0, 1.0], (inside.sum(), 1)),
                               atol=1e-6)


def test_view_orientation_follows_the_documented_table():
    """Coloured markers on the +x, +y, +z sides of a grey block must land where the table in
    cameras.py says: a flipped or swapped axis moves one of them."""
    def block(centre, size, rgb):
        box = trimesh.creation.box(extents=[size] * 3)
        box.apply_translation(centre)
        box.visual.face_colors = list(rgb) + [255]
        return box

    grey = (128, 128, 128)
    parts = [block((0, 0, 0), 0.6, grey)]
    for axis, rgb in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
        offset = np.eye(3)[axis] * 0.4
        parts += [block(offset, 0.2, rgb), block(-offset, 0.2, grey)]
    mesh = load_mesh(trimesh.Scene(parts))
    r = render_views(mesh, axis_views(), 64, supersample=1)
    expected = {  # view: where red (+x), green (+y), blue (+z) markers appear
        "+x": ("centre", "top", "left"), "-x": ("hidden", "top", "right"),
        "+y": ("right", "centre", "bottom"), "-y": ("right", "hidden", "top"),
        "+z": ("right", "top", "centre"), "-z": ("left", "top", "hidden"),
    }
    for i, cam in enumerate(r.cameras):
        for channel, where in enumerate(expected[cam.name]):
            target = np.eye(3)[channel]
            rows, cols = np.nonzero(np.all(np.abs(r.rgb[i] - target) < 0.01, axis=-1))
            if where == "hidden":
                assert len(rows) == 0, (cam.name, channel)
                continue
            assert len(rows) > 20, (cam.name, channel)
            dx, dy = cols.mean() - 31.5, 31.5 - rows.mean()
            got = ("centre" if max(abs(dx), abs(dy)) < 3 else
                   "right" if dx > 10 else "left" if dx < -10 else
                   "top" if dy > 10 else "bottom" if dy < -10 else "?")
            assert got == where, (cam.name, channel, dx, dy)


# ---------------------------------------------------------------- colour


def _matched_pixels(mesh, cams, r):
    """Pixels where our face matches the ray-cast face, with the ray-cast barycentrics."""
    for i, cam in enumerate(cams):
        _, face, bary = raycast(mesh.triangles, cam, r.rgb.shape[1])
        keep = (face >= 0) & (face == r.face_id[i])
        yield i, keep, face[keep], bary[keep]


@pytest.mark.parametrize("name", ["spot", "BoxVertexColors.glb", "kenney_character/character.glb"])
def test_kernel_colours_match_the_numpy_twin(name):
    """Texture, vertex-colour and material lookups in the kernel equal Mesh.color_at at the
    ray-cast barycentrics, in orthographic and (perspective-corrected) perspective views."""
    mesh = _load(name)
    cams = [axis_view("-z"), axis_view("+x")] + random_views(1, seed=7, ortho=False)
    r = render_views(mesh, cams, 96, supersample=1)
    for i, keep, face, bary in _matched_pixels(mesh, cams, r):
        diff = np.abs(r.rgb[i][keep] - mesh.color_at(face, bary)).max(axis=1)
        assert keep.sum() > 500
        assert np.quantile(diff, 0.99) < 2 / 255 and np.median(diff) < 0.5 / 255, name


def test_spot_texels_appear_in_the_render(spot):
    """Where the texture is flat around the hit, the pixel shows that texel exactly."""
    tm = trimesh.load(str(BUNDLED_MESH), force="mesh", process=False)
    texture = np.asarray(Image.open(BUNDLED_MESH.parent / "spot_texture.png").convert("RGB"))
    h, w = texture.shape[:2]
    cams = [axis_view("-z"), axis_view("+x"), axis_view("+y")]
    r = render_views(spot, cams, SIZE, supersample=1)
    checked = []
    for i, keep, face, bary in _matched_pixels(spot, cams, r):
        uv = np.einsum("nk,nkc->nc", bary, tm.visual.uv[tm.faces[face]])
        x = np.clip(np.round(uv[:, 0] * w - 0.5).astype(int), 1, w - 2)
        y = np.clip(np.round((1 - uv[:, 1]) * h - 0.5).astype(int), 1, h - 2)
        patch = np.stack([texture[y + dy, x + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
        flat = np.all(patch == patch[4], axis=(0, 2))
        expected = texture[y, x][flat] / 255.0
        np.testing.assert_allclose(r.rgb[i][keep][flat], expected, atol=1.5 / 255)
        checked.append(expected)
    checked = np.concatenate(checked)
    assert len(checked) > 1000
    assert len(np.unique(np.round(checked * 255), axis=0)) >= 4


def test_vertex_colours_of_box():
    mesh = load_mesh(mesh_path("BoxVertexColors.glb"))
    scene = trimesh.load(str(mesh_path("BoxVertexColors.glb")), force="scene", process=False)
    (geom,) = scene.geometry.values()
    colors = geom.visual.vertex_attributes["color"][:, :3] * (204 / 255)  # COLOR_0 * factor
    cams = axis_views()
    r = render_views(mesh, cams, 64, supersample=1)
    for i, keep, face, bary in _matched_pixels(mesh, cams, r):
        expected = linear_to_srgb(np.einsum("nk,nkc->nc", bary, colors[geom.faces[face]]))
        np.testing.assert_allclose(r.rgb[i][keep], expected, atol=2 / 255)
    assert r.rgb.reshape(-1, 3).std(axis=0).min() > 0.1  # a gradient, not one flat colour


def test_alien_shows_its_five_flat_materials():
    mesh = load_mesh(mesh_path("alien.glb"))
    r = render_views(mesh, axis_views(), 96, supersample=1)
    factors = np.array([(47, 224, 151), (70, 76, 87), (172, 181, 197), (215, 222, 232),
                        (255, 160, 52)]) / 255.0
    expected = linear_to_srgb(factors)
    pixels = r.rgb[r.alpha == 1]
    nearest = np.abs(pixels[:, None, :] - expected[None]).max(axis=-1)
    assert (nearest.min(axis=1) < 1 / 255).mean() > 0.999
    counts = np.bincount(nearest.argmin(axis=1), minlength=5)
    assert counts.min() >= 20, counts


def test_kenney_character_uses_its_external_palette_texture():
    mesh = load_mesh(mesh_path("kenney_character/character.glb"))
    palette = np.asarray(Image.open(mesh_path("kenney_character/Textures/colormap.png"))
                         .convert("RGB")).reshape(-1, 3)
    r = render_views(mesh, axis_views(), 96, supersample=1)
    pixels = np.round(r.rgb[r.alpha == 1] * 255).astype(np.int64)
    code = lambda c: (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]  # noqa: E731
    assert np.isin(code(pixels), code(palette.astype(np.int64))).mean() > 0.9
    assert len(np.unique(pixels, axis=0)) >= 4


@pytest.mark.parametrize("wrap", [WRAP_REPEAT, WRAP_CLAMP, WRAP_MIRROR])
def test_wrap_modes_in_the_kernel(wrap):
    """UVs from -1.25 to 2.25 over a front-facing square, with a random 5 x 3 texture."""
    rng = np.random.default_rng(1)
    tris = np.array([[[-0.5, -0.5, 0], [0.5, -0.5, 0], [0.5, 0.5, 0]],
                     [[-0.5, -0.5, 0], [0.5, 0.5, 0], [-0.5, 0.5, 0]]], np.float32)
    mesh = Mesh(name="quad", triangles=tris, uvs=(tris[..., :2] * 3.5 + 0.5).astype(np.float32),
                corner_colors=np.ones((2, 3, 3), np.float32), face_material=np.zeros(2, np.int32),
                material_colors=np.ones((1, 3), np.float32),
                material_textures=np.zeros(1, np.int32),
                textures=[Texture(rng.integers(0, 256, (3, 5, 3), dtype=np.uint8), wrap, wrap)])
    cams = [axis_view("+z")]
    r = render_views(mesh, cams, 48, supersample=1)
    (_, keep, face, bary), = _matched_pixels(mesh, cams, r)
    assert keep.sum() > 0.95 * 48 * 48
    np.testing.assert_allclose(r.rgb[0][keep], mesh.color_at(face, bary), atol=2 / 255)


def test_background_is_white_and_empty_buffers_are_marked(spot):
    r = render_views(spot, [axis_view("+z")], 32, supersample=2)
    empty = r.alpha[0] == 0
    assert empty.any()
    np.testing.assert_array_equal(r.rgb[0][empty], 1.0)
    assert np.isinf(r.depth[0][empty]).all() and (r.face_id[0][empty] == -1).all()
    np.testing.assert_array_equal(r.normal[0][empty], 0.0)
    assert r.rgb.dtype == np.float32 and r.face_id.dtype == np.int32


def test_renders_are_deterministic(spot):
    cams = random_views(2, seed=5)
    a = render_views(spot, cams, 48)
    b = render_views(spot, cams, 48)
    for field in ("rgb", "alpha", "depth", "normal", "face_id"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_non_square_images(spot):
    cam = Camera("wide", origin=(0, 0, 0.5), forward=(0, 0, -1), up=(0, 1, 0), width=2.0)
    r = render_views(spot, [cam], 96, 48, supersample=1)
    assert r.rgb.shape == (1, 48, 96, 3)
    dist = raycast(spot.triangles, cam, 96, 48)[0]
    assert iou(np.isfinite(dist), r.alpha[0] > 0) >= 0.99


# ---------------------------------------------------------------- outputs and options


def test_save_views_png(spot, tmp_path):
    r = render_views(spot, axis_views(), 40, supersample=1)
    path = save_views_png(r, tmp_path / "sub" / "views.png")
    img = np.asarray(Image.open(path))
    assert img.shape == (2 * (40 + 14 + 2), 3 * (40 + 2), 3)
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["views.png"]  # no temp left
    tile = img[14 + 1:14 + 1 + 40, 1:41] / 255.0  # first view's image under its label
    np.testing.assert_allclose(tile, r.rgb[0], atol=1 / 255 + 1e-6)


def test_bench_render_reports_timings(spot):
    out = bench_render(mesh=spot, size=32, repeats=1)
    assert out["faces"] == spot.face_count and out["views"] == 6
    assert 0 < out["best_s"] < 60


def test_subdivide_keeps_colours(spot):
    fine = subdivide(spot)
    assert fine.face_count == 4 * spot.face_count
    centre = np.full((1, 3), 1 / 3)
    # the centre of the middle child triangle is the centre of its parent
    np.testing.assert_allclose(fine.color_at([3 * spot.face_count + 17], centre),
                               spot.color_at([17], centre), atol=1e-6)


def test_bad_render_requests(spot):
    with pytest.raises(OptionError):
        render_views(spot, [], 32)
    with pytest.raises(OptionError):
        render_views(spot, axis_views(), 0)
    with pytest.raises(OptionError):
        render_views(spot, axis_views(), 32, supersample=9)
    with pytest.raises(OptionError):
        render_views("spot.obj", axis_views(), 32)
    with pytest.raises(ResourceError, match="GiB"):
        render_views(spot, axis_views(), 20000)  # refused before anything is allocated
