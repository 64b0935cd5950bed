import numpy as np
import pytest
import trimesh

from taichi_voxify import OptionError, VoxelArt
from taichi_voxify.color import linear_to_srgb
from taichi_voxify.export.meshing import greedy_rectangles, voxel_mesh, write_mesh

RED, BLUE = [220, 30, 40], [20, 60, 200]


def _block(shape, color=1, palette=(RED,)):
    return VoxelArt(np.full(shape, color, np.uint8), palette)


def _merged(mesh):
    m = mesh.to_trimesh()
    m.merge_vertices(merge_tex=True, merge_norm=True)
    return m


def test_cube_of_one_colour_is_six_quads_watertight_outward():
    mesh = voxel_mesh(_block((2, 2, 2)))
    assert mesh.triangle_count == 12
    assert mesh.visible_faces == 24
    m = _merged(mesh)
    assert m.is_watertight
    assert m.volume == pytest.approx(8.0)  # positive signed volume: windings face outward


def test_solid_box_watertight_and_normals_match_winding():
    mesh = voxel_mesh(_block((3, 4, 5)), voxel_size=0.5)
    m = _merged(mesh)
    assert m.is_watertight and m.volume == pytest.approx(60 * 0.125)
    wound = np.cross(*(mesh.vertices[mesh.faces[:, k]] - mesh.vertices[mesh.faces[:, 0]]
                       for k in (1, 2)))
    stored = mesh.normals[mesh.faces[:, 0]]
    assert np.all(np.einsum("ij,ij->i", wound, stored) > 0)


def test_placement_one_unit_per_voxel_centred_on_the_ground():
    mesh = voxel_mesh(_block((4, 3, 2)))
    np.testing.assert_allclose(mesh.vertices.min(0), [-2, 0, -1])
    np.testing.assert_allclose(mesh.vertices.max(0), [2, 3, 1])


def test_checkerboard_is_not_merged_across_colours():
    idx = (np.indices((4, 1, 4)).sum(0) % 2 + 1).astype(np.uint8)
    mesh = voxel_mesh(VoxelArt(idx, [RED, BLUE]))
    # top and bottom: 16 unit squares each; the 4 sides: 4 unit squares each
    assert mesh.triangle_count == 2 * (16 + 16 + 4 * 4)
    assert mesh.triangle_count == 2 * mesh.visible_faces


def test_greedy_merge_on_an_l_shape_and_unmerged_option():
    labels = np.array([[[1, 1, 2], [1, 1, 0], [1, 0, 0]]], np.uint8)
    rect = greedy_rectangles(labels)
    covered = np.zeros_like(labels)
    for s, u0, u1, v0, v1, c in rect:
        assert np.all(covered[s, u0:u1, v0:v1] == 0)
        covered[s, u0:u1, v0:v1] = c
    np.testing.assert_array_equal(covered, labels)
    assert len(rect) == 3
    assert len(greedy_rectangles(labels, merge=False)) == 6


def test_merge_reduces_triangles_on_a_sphere():
    g = np.indices((12, 12, 12)) - 5.5
    art = VoxelArt((np.sqrt((g ** 2).sum(0)) < 5.5).astype(np.uint8), [RED])
    merged, naive = voxel_mesh(art), voxel_mesh(art, merge=False)
    assert naive.triangle_count == 2 * naive.visible_faces
    assert merged.triangle_count < 0.5 * naive.triangle_count
    assert _merged(naive).is_watertight  # the unmerged mesh has no T-junctions
    assert _merged(merged).volume == pytest.approx(art.filled_count)


def test_glb_colours_survive_a_trimesh_reload(tmp_path):
    idx = np.zeros((3, 2, 2), np.uint8)
    idx[0], idx[1], idx[2] = 1, 2, 3
    palette = [RED, BLUE, [5, 5, 5]]
    path = tmp_path / "a.glb"
    stats = write_mesh(VoxelArt(idx, palette), path)
    scene = trimesh.load(path)
    geoms = list(scene.geometry.values())
    assert sum(len(g.faces) for g in geoms) == stats["triangles"]
    found = set()
    for g in geoms:
        factor = np.asarray(g.visual.material.baseColorFactor, float)[:3]
        factor = factor / 255.0 if factor.max() > 1 else factor
        found.add(tuple(np.round(linear_to_srgb(factor) * 255).astype(int)))
    # trimesh keeps baseColorFactor as uint8 (linear), so dark values lose a little on reload
    for want in palette:
        assert min(np.abs(np.array(f) - want).max() for f in found) <= 6
    assert len(found) == 3


def test_obj_and_ply_reload_with_colours(tmp_path):
    idx = np.zeros((2, 1, 1), np.uint8)
    idx[0, 0, 0], idx[1, 0, 0] = 1, 2
    art = VoxelArt(idx, [RED, BLUE])
    stats = write_mesh(art, tmp_path / "a.obj")
    assert (tmp_path / "a.mtl").exists()
    assert "Kd 0.862745 0.117647 0.156863" in (tmp_path / "a.mtl").read_text()
    obj = trimesh.load(tmp_path / "a.obj", force="mesh", process=False)
    assert len(obj.faces) == stats["triangles"]
    write_mesh(art, tmp_path / "a.ply")
    ply = trimesh.load(tmp_path / "a.ply", process=False)
    colors = {tuple(c[:3]) for c in ply.visual.vertex_colors}
    assert colors == {tuple(RED), tuple(BLUE)}
    left = ply.vertices[:, 0] < -0.5
    assert {tuple(c[:3]) for c in ply.visual.vertex_colors[left]} == {tuple(RED)}


def test_unknown_mesh_format(tmp_path):
    with pytest.raises(OptionError, match="stl"):
        write_mesh(_block((1, 1, 1)), tmp_path / "a.stl")


def test_empty_grid_writes_a_valid_glb(tmp_path):
    art = VoxelArt(np.zeros((2, 2, 2), np.uint8), [RED])
    assert write_mesh(art, tmp_path / "e.glb")["triangles"] == 0
    assert (tmp_path / "e.glb").read_bytes()[:4] == b"glTF"


@pytest.mark.parametrize("suffix", [".obj", ".ply"])
def test_empty_grid_writes_obj_and_ply(tmp_path, suffix):
    """PLY of an empty grid failed with a numpy ValueError inside trimesh."""
    art = VoxelArt(np.zeros((2, 2, 2), np.uint8), [RED])
    assert write_mesh(art, tmp_path / f"e{suffix}")["triangles"] == 0
    assert len(trimesh.load(tmp_path / f"e{suffix}", force="mesh", process=False).faces) == 0
