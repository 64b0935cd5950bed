"""The voxelize baseline: solid voxelisation against analytic shapes, thin parts, colours."""
import pathlib

import numpy as np
import pytest
import trimesh

from conftest import mesh_path
from taichi_voxify.cameras import axis_views
from taichi_voxify.errors import InputError, OptionError, ResourceError
from taichi_voxify.metrics import silhouette_iou, six_view_silhouettes
from taichi_voxify.voxelize import (shell, solid_voxels, voxelize_mesh, voxelize_occupancy)

HAVE_MESH_MODULE = (pathlib.Path(__file__).resolve().parents[1] / "taichi_voxify" / "mesh.py").exists()


def cell_centres(n):
    return (np.indices((n, n, n)).transpose(1, 2, 3, 0) + 0.5) / n - 0.5


def triangles_of(tm):
    return np.asarray(tm.vertices)[np.asarray(tm.faces)]


def sphere(radius=0.45, centre=(0, 0, 0)):
    return trimesh.creation.icosphere(subdivisions=3, radius=radius).apply_translation(centre)


def projected_silhouettes(tris, n):
    """(6, N, N): pixel centres of each axis camera inside the projection of some triangle,
    computed straight from the cameras' rays (independent of metrics.view_volume)."""
    out = []
    for cam in axis_views():
        u, v = cam.plane_coords(n, n)
        pts = np.stack([u.ravel(), v.ravel()], 1)[None]
        p = cam.world_to_view(tris.reshape(-1, 3)).reshape(-1, 3, 3)[..., :2]
        e1, e2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
        p = p[np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]) > 1e-12]
        hit = np.zeros(pts.shape[1], bool)
        for chunk in np.array_split(p, max(1, len(p) // 256)):
            w = []
            for i in range(3):
                o, e = chunk[:, i, None], chunk[:, (i + 1) % 3, None]
                w.append((e[..., 0] - o[..., 0]) * (pts[..., 1] - o[..., 1])
                         - (e[..., 1] - o[..., 1]) * (pts[..., 0] - o[..., 0]))
            w = np.stack(w)
            hit |= (np.all(w >= 0, axis=0) | np.all(w <= 0, axis=0)).any(axis=0)
        out.append(hit.reshape(n, n))
    return np.stack(out)


def mean_view_iou(a, b):
    return float(np.mean([silhouette_iou(x, y) for x, y in zip(a, b)]))


# --- occupancy ------------------------------------------------------------------------------
def test_sphere_and_box_match_analytic_occupancy():
    n = 24
    c = cell_centres(n)
    ball = np.linalg.norm(c, axis=-1) < 0.45
    assert silhouette_iou(voxelize_occupancy(triangles_of(sphere()), n), ball) >= 0.95
    half = np.array([0.35, 0.25, 0.165])
    box = np.all(np.abs(c) < half, axis=-1)
    got = voxelize_occupancy(triangles_of(trimesh.creation.box(extents=2 * half)), n)
    assert silhouette_iou(got, box) >= 0.95


def test_fill_has_interior_and_hollow_does_not():
    n = 16
    tris = triangles_of(sphere())
    solid = voxelize_occupancy(tris, n, fill=True)
    hollow = voxelize_occupancy(tris, n, fill=False)
    centre_cells = np.linalg.norm(cell_centres(n), axis=-1) < 0.25
    assert solid[centre_cells].all()
    assert not hollow[centre_cells].any()
    assert np.array_equal(hollow, shell(solid))
    # the hollow shell looks the same from outside
    assert np.array_equal(six_view_silhouettes(hollow), six_view_silhouettes(solid))


def test_overlapping_closed_parts_fill_their_union():
    # two interpenetrating spheres as one soup, as in skinned meshes: parity would hollow the
    # overlap, the winding number keeps it
    n = 20
    a, b = sphere(0.3, (-0.12, 0, 0)), sphere(0.3, (0.12, 0, 0))
    tris = np.concatenate([triangles_of(a), triangles_of(b)])
    c = cell_centres(n)
    union = (np.linalg.norm(c - [-0.12, 0, 0], axis=-1) < 0.3) | (
        np.linalg.norm(c - [0.12, 0, 0], axis=-1) < 0.3)
    assert silhouette_iou(voxelize_occupancy(tris, n), union) >= 0.95


def test_mesh_with_a_hole_still_fills():
    n = 20
    tm = sphere()
    keep = np.ones(len(tm.faces), bool)
    keep[np.argsort(tm.triangles_center[:, 1])[-12:]] = False  # cut a hole at the top
    ball = np.linalg.norm(cell_centres(n), axis=-1) < 0.45
    assert silhouette_iou(voxelize_occupancy(triangles_of(tm)[keep], n), ball) >= 0.9


def test_thin_triangle_is_not_lost():
    n = 16
    sliver = np.array([[[-0.43, -0.31, -0.22], [0.41, 0.37, 0.29], [0.41, 0.3705, 0.2905]]])
    occ = voxelize_occupancy(sliver, n)
    t = np.linspace(0, 1, 2001)[:, None]
    samples = sliver[0, 0] + t * (sliver[0, 1] - sliver[0, 0])
    cells = np.clip(np.floor((samples + 0.5) * n).astype(int), 0, n - 1)
    assert occ[tuple(cells.T)].all()
    assert occ.sum() <= 4 * len(np.unique(cells, axis=0))  # a line of cells, not a slab


def test_open_sheet_has_no_holes_in_any_axis_view():
    n = 16
    sheet = np.array([[[-0.45, -0.4, -0.3], [0.45, -0.2, 0.1], [0.0, 0.45, 0.35]]])
    occ = voxelize_occupancy(sheet, n)
    expected = projected_silhouettes(sheet, n)
    got = six_view_silhouettes(occ)
    assert np.all(got[expected])  # every pixel the triangle covers sees a cell
    thickness = occ.sum(axis=2)[expected[4]]  # cells per z column (z is the dominant axis)
    assert thickness.max() <= 2


def test_surface_cells_record_their_nearest_point():
    n = 12
    tris = triangles_of(sphere())
    vox = solid_voxels(tris, n)
    cells = np.argwhere(vox.face_ids >= 0)
    assert len(cells) > 0
    bary = vox.bary[tuple(cells.T)]
    assert np.allclose(bary.sum(-1), 1, atol=1e-5) and bary.min() >= -1e-6
    tri = tris[vox.face_ids[tuple(cells.T)]]
    points = np.einsum("mi,mij->mj", bary, tri)
    dist = np.linalg.norm(points - ((cells + 0.5) / n - 0.5), axis=1)
    assert dist.max() <= np.sqrt(3) / 2 / n * 1.001  # inside (or on) the overlapping cell
    # every filled cell near the sphere's surface has a surface point
    near = np.abs(np.linalg.norm(cell_centres(n), axis=-1) - 0.45) < 0.4 / n
    assert np.all(vox.face_ids[near] >= 0)


def clip_overlaps(tri, lo, hi):
    """Brute-force twin of the separating-axis test: clip the triangle by the box's six planes
    (Sutherland-Hodgman) and see whether anything is left."""
    poly = list(tri)
    for axis in range(3):
        for bound, sign in ((lo[axis], 1), (hi[axis], -1)):
            out = []
            for i, p in enumerate(poly):
                q = poly[(i + 1) % len(poly)]
                dp, dq = sign * (p[axis] - bound), sign * (q[axis] - bound)
                if dp >= 0:
                    out.append(p)
                if dp * dq < 0:
                    out.append(p + (q - p) * dp / (dp - dq))
            poly = out
            if not poly:
                return False
    return True


def closest_distance(tri, point, samples=60):
    """Distance from point to a dense barycentric sampling of the triangle."""
    u, v = np.meshgrid(np.linspace(0, 1, samples), np.linspace(0, 1, samples))
    keep = u + v <= 1
    w = np.stack([1 - u[keep] - v[keep], u[keep], v[keep]], 1)
    return np.linalg.norm(w @ tri - point, axis=1).min()


def test_surface_cells_match_brute_force_twins():
    from taichi_voxify.voxelize import solid_voxels

    rng = np.random.default_rng(3)
    n = 5
    for _ in range(6):
        tri = rng.uniform(-0.5, 0.5, (1, 3, 3))
        vox = solid_voxels(tri, n)
        for cell in np.ndindex(n, n, n):
            lo = np.array(cell) / n - 0.5
            centre = lo + 0.5 / n
            assert (vox.face_ids[cell] == 0) == clip_overlaps(tri[0], lo, lo + 1 / n), cell
            if vox.face_ids[cell] == 0:
                point = vox.bary[cell] @ tri[0]
                assert np.linalg.norm(point - centre) <= closest_distance(tri[0], centre) + 1e-6


def test_bad_input_is_refused():
    with pytest.raises(InputError):
        voxelize_occupancy(np.zeros((3, 3)), 8)
    with pytest.raises(InputError):
        voxelize_occupancy(np.full((1, 3, 3), np.nan), 8)
    with pytest.raises(ResourceError, match="GiB"):  # refused before allocating anything
        voxelize_occupancy(triangles_of(sphere()), 512)


# --- the baseline with colours --------------------------------------------------------------
class FaceColorMesh:
    """Stand-in for taichi_voxify.mesh.Mesh: flat colour per face, normalised like load_mesh."""

    def __init__(self, triangles, face_rgb, name="stub"):
        lo, hi = triangles.reshape(-1, 3).min(0), triangles.reshape(-1, 3).max(0)
        self.triangles = ((triangles - (lo + hi) / 2) / (hi - lo).max()).astype(np.float32)
        self.face_rgb = np.asarray(face_rgb, np.float32)
        self.name = name

    @property
    def face_count(self):
        return len(self.triangles)

    def color_at(self, face_ids, barycentrics):
        return self.face_rgb[np.asarray(face_ids)]


def load_alien_stub():
    scene = trimesh.load(mesh_path("alien.glb"))
    tris, rgb = [], []
    for node in scene.graph.nodes_geometry:
        transform, geom_name = scene.graph[node]
        geom = scene.geometry[geom_name].copy().apply_transform(transform)
        colour = np.asarray(geom.visual.material.baseColorFactor[:3], np.float32) / 255.0
        tris.append(triangles_of(geom))
        rgb.append(np.repeat(colour[None], len(geom.faces), axis=0))
    return FaceColorMesh(np.concatenate(tris), np.concatenate(rgb), "alien")


def load_alien():
    if HAVE_MESH_MODULE:
        from taichi_voxify.mesh import load_mesh

        return load_mesh(mesh_path("alien.glb"))
    return load_alien_stub()


def test_baseline_on_a_shipped_mesh():
    mesh = load_alien()
    n, k = 20, 4
    art = voxelize_mesh(mesh, n, colors=k, seed=0)
    assert art.shape == (n, n, n)
    used = art.colors_used()
    assert 1 <= len(used) <= k and len(art.palette) <= k
    assert art.indices.max() <= len(art.palette)
    iou = mean_view_iou(six_view_silhouettes(art.filled),
                        projected_silhouettes(np.asarray(mesh.triangles, np.float64), n))
    assert iou >= 0.9
    again = voxelize_mesh(mesh, n, colors=k, seed=0)
    assert np.array_equal(art.indices, again.indices)
    assert np.array_equal(art.palette, again.palette)


def test_surface_colours_follow_the_mesh():
    # a box with a red -x end, a blue +x end and grey sides
    tris = triangles_of(trimesh.creation.box(extents=(0.9, 0.6, 0.6)))
    end = tris.mean(axis=1)[:, 0]
    red, blue, grey = [0.9, 0.1, 0.1], [0.1, 0.2, 0.9], [0.5, 0.5, 0.5]
    rgb = np.where(end[:, None] < -0.4, red, np.where(end[:, None] > 0.4, blue, grey))
    art = voxelize_mesh(FaceColorMesh(tris, rgb), 12, colors=3)
    colours = art.rgb().astype(float) / 255
    assert np.abs(colours[0, 5, 5] - red).max() < 0.02
    assert np.abs(colours[-1, 5, 5] - blue).max() < 0.02
    assert np.abs(colours[5, -3, 5] - grey).max() < 0.02  # top side (y spans cells 2..9)
    assert art.filled[6, 6, 6]  # the interior is filled, coloured from the nearest surface


@pytest.mark.parametrize("source", ["nearest", "visible"])
def test_each_side_of_a_box_keeps_its_colour(source):
    n = 10
    tm = trimesh.creation.box(extents=(1.0, 0.7, 0.8))
    side_colours = np.array([[0.9, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.2, 0.9],
                             [0.9, 0.9, 0.1], [0.1, 0.9, 0.9], [0.9, 0.1, 0.9]])
    normals = np.asarray(tm.face_normals)
    axis = np.argmax(np.abs(normals), axis=1)
    side = 2 * axis + (normals[np.arange(len(axis)), axis] < 0)  # +x -x +y -y +z -z
    art = voxelize_mesh(FaceColorMesh(triangles_of(tm), side_colours[side]), n, colors=6,
                        color_source=source)
    filled = np.argwhere(art.filled)
    lo, hi = filled.min(0), filled.max(0)
    mid = (lo + hi) // 2
    for s_index, colour in enumerate(side_colours):
        cell = mid.copy()
        ax = s_index // 2
        cell[ax] = hi[ax] if s_index % 2 == 0 else lo[ax]
        got = art.rgb()[tuple(cell)] / 255
        assert np.abs(got - colour).max() < 0.02, (s_index, got)


def test_visible_colours_see_a_decal_in_front_of_a_surface():
    # a grey box with a thin red "decal" a fifth of a voxel in front of its +z face: the cells
    # behind it are nearer to the box face, but the front view sees the decal
    n = 12
    tris = triangles_of(trimesh.creation.box(extents=(1.0, 1.0, 0.5)))
    z = 0.25 + 0.2 / n
    decal = np.array([[[-0.2, -0.2, z], [0.2, -0.2, z], [0.2, 0.2, z]],
                      [[-0.2, -0.2, z], [0.2, 0.2, z], [-0.2, 0.2, z]]])
    red, grey = [0.9, 0.1, 0.1], [0.5, 0.5, 0.5]
    rgb = np.array([grey] * len(tris) + [red] * 2)
    mesh = FaceColorMesh(np.concatenate([tris, decal]), rgb)
    front_cell = (n // 2, n // 2, 8)  # z cells 3..8 are filled
    seen = voxelize_mesh(mesh, n, colors=2, color_source="visible")
    assert seen.filled[front_cell] and not seen.filled[n // 2, n // 2, 9]
    assert np.abs(seen.rgb()[front_cell] / 255 - red).max() < 0.02
    assert np.abs(seen.rgb()[n // 2, n // 2, 3] / 255 - grey).max() < 0.02  # the back
    nearest = voxelize_mesh(mesh, n, colors=2, color_source="nearest")
    assert np.abs(nearest.rgb()[front_cell] / 255 - grey).max() < 0.02


def test_given_palette_is_used_as_is():
    mesh = load_alien_stub()
    pal = np.array([[255, 255, 255], [0, 0, 0], [40, 200, 60]], np.uint8)
    art = voxelize_mesh(mesh, 12, palette=pal)
    assert np.array_equal(art.palette, pal)
    assert 0 < art.filled_count


def test_bad_options_are_refused():
    mesh = load_alien_stub()
    with pytest.raises(OptionError):
        voxelize_mesh(mesh, 12, colors=0)
    with pytest.raises(OptionError):
        voxelize_mesh(mesh, 12, palette=np.zeros((2, 4)))
    with pytest.raises(OptionError):
        voxelize_mesh(mesh, 0)
    with pytest.raises(OptionError):
        voxelize_mesh(mesh, 12, color_source="average")
