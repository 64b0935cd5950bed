"""Mesh loading: formats, scene transforms, colour sources, normalisation and bad input."""
import json
import shutil
import struct
import warnings

import numpy as np
import pytest
import trimesh
from PIL import Image

from taichi_voxify.color import linear_to_srgb, srgb_to_linear
from taichi_voxify.errors import MeshError, OptionError
from taichi_voxify.mesh import (WRAP_CLAMP, WRAP_MIRROR, WRAP_REPEAT, Texture, load_mesh,
                                sample_texture_linear)
from taichi_voxify.render import BUNDLED_MESH

from conftest import mesh_path

SHIPPED = {  # file: (faces in the file, textured?)
    "BoxVertexColors.glb": (12, False),
    "Fox.glb": (576, True),
    "alien.glb": (292, False),
    "RobotExpressive.glb": (3237, False),
    "kenney_character/character.glb": (550, True),
}


def _write(path, text):
    path.write_text(text)
    return path


def _corner_colors_srgb(mesh, face):
    """sRGB colours at the three corners of one face."""
    return mesh.color_at([face] * 3, np.eye(3))


def _one_line_error(exc_info):
    message = str(exc_info.value)
    assert "\n" not in message and message
    return message


# ---------------------------------------------------------------- shipped meshes


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_meshes_load_normalised(name):
    faces, textured = SHIPPED[name]
    mesh = load_mesh(mesh_path(name))
    assert mesh.face_count + mesh.dropped_degenerate == faces
    assert mesh.triangles.dtype == np.float32 and mesh.triangles.shape == (mesh.face_count, 3, 3)
    lo, hi = mesh.triangles.min(axis=(0, 1)), mesh.triangles.max(axis=(0, 1))
    np.testing.assert_allclose((lo + hi) / 2, 0, atol=1e-6)
    assert abs(float(np.max(hi - lo)) - 1.0) < 1e-6
    assert (len(mesh.textures) > 0) == textured
    assert mesh.name == name.split("/")[-1].rsplit(".", 1)[0]


def test_bundled_spot_is_textured():
    mesh = load_mesh(BUNDLED_MESH)
    assert mesh.face_count == 5856 and mesh.name == "spot"
    assert mesh.summary() == "spot: 5,856 triangles, 1 texture(s), 1 material(s)"
    assert mesh.textures[0].image.shape == (1024, 1024, 3)
    assert mesh.textures[0].image.dtype == np.uint8


@pytest.mark.parametrize("name", ["alien.glb", "RobotExpressive.glb"])
def test_scene_parts_follow_node_transforms(name):
    """Our merged soup equals trimesh's own flattening of the scene graph, normalised alike."""
    mesh = load_mesh(mesh_path(name))
    flat = trimesh.load(str(mesh_path(name)), force="mesh", process=False)
    tris = flat.vertices[flat.faces]
    area = np.linalg.norm(np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0]), axis=1)
    tris = tris[area > area.max() * 1e-12]
    lo, hi = tris.min(axis=(0, 1)), tris.max(axis=(0, 1))
    tris = (tris - (lo + hi) / 2) / np.max(hi - lo)
    key = lambda t: np.lexsort(np.round(t.reshape(len(t), -1), 5).T[::-1])  # noqa: E731
    ours = mesh.triangles[key(mesh.triangles)]
    theirs = tris[key(tris)]
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_vertex_colours_survive_next_to_uvs():
    """BoxVertexColors has COLOR_0 and UVs; the corner colours are COLOR_0 times the factor."""
    mesh = load_mesh(mesh_path("BoxVertexColors.glb"))
    assert "vertex/face colours" in mesh.summary()
    scene = trimesh.load(str(mesh_path("BoxVertexColors.glb")), force="scene", process=False)
    (geom,) = scene.geometry.values()
    linear = geom.visual.vertex_attributes["color"][:, :3] * (204 / 255)
    for face in (0, 5, 11):
        expected = linear_to_srgb(linear[geom.faces[face]])
        np.testing.assert_allclose(_corner_colors_srgb(mesh, face), expected, atol=1e-5)
    assert len(np.unique(np.round(mesh.corner_colors.reshape(-1, 3), 3), axis=0)) >= 6


def test_flat_material_factors_are_linear():
    mesh = load_mesh(mesh_path("alien.glb"))
    expected = {(47, 224, 151), (70, 76, 87), (172, 181, 197), (215, 222, 232), (255, 160, 52)}
    got = {tuple(np.round(srgb_to_linear(c) * 255).astype(int))
           for c in mesh.color_at(np.arange(mesh.face_count), np.full((mesh.face_count, 3), 1 / 3))}
    assert got == expected


def test_external_texture_of_kenney_character():
    mesh = load_mesh(mesh_path("kenney_character/character.glb"))
    palette = np.asarray(Image.open(mesh_path("kenney_character/Textures/colormap.png"))
                         .convert("RGB")).reshape(-1, 3)
    np.testing.assert_array_equal(mesh.textures[0].image.reshape(-1, 3), palette)
    centres = mesh.color_at(np.arange(mesh.face_count), np.full((mesh.face_count, 3), 1 / 3))
    assert len(np.unique(np.round(centres * 255), axis=0)) >= 4


# ---------------------------------------------------------------- formats and colour sources


def _quad(uv_scale=1.0):
    v = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], float)
    return v, np.array([[0, 1, 2], [0, 2, 3]]), v[:, :2] * uv_scale


@pytest.mark.parametrize("material_name", ["quadmat", None])  # unnamed: sampler was lost
def test_gltf_with_external_bin_texture_and_clamp_sampler(tmp_path, material_name):
    v, f, uv = _quad()
    texels = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [255, 255, 0]]], np.uint8)
    material = trimesh.visual.material.PBRMaterial(baseColorTexture=Image.fromarray(texels),
                                                   name=material_name)
    tm = trimesh.Trimesh(v, f, visual=trimesh.visual.TextureVisuals(uv=uv, material=material),
                         process=False)
    files = trimesh.Scene(tm).export(file_type="gltf")
    doc = json.loads(files.pop("model.gltf"))
    assert ("name" in doc["materials"][0]) == (material_name is not None)
    doc["images"] = [{"uri": "tex.png"}]  # the image as an external file, not in a buffer
    doc["samplers"] = [{"wrapS": 33071, "wrapT": 33648}]
    doc["textures"][0]["sampler"] = 0
    for name, blob in files.items():
        (tmp_path / name).write_bytes(blob)
    Image.fromarray(texels).save(tmp_path / "tex.png")
    (tmp_path / "model.gltf").write_text(json.dumps(doc))
    mesh = load_mesh(tmp_path / "model.gltf")
    (tex,) = mesh.textures
    np.testing.assert_array_equal(tex.image, texels)
    assert (tex.wrap_u, tex.wrap_v) == (WRAP_CLAMP, WRAP_MIRROR)
    # uv (0, 0): u clamps onto column 0, v mirrors back onto the bottom row (image row 1)
    corner = mesh.color_at([0], [[1.0, 0.0, 0.0]])
    np.testing.assert_allclose(corner[0], [0, 0, 1], atol=1e-6)


def test_ply_vertex_and_face_colours(tmp_path):
    v, f, _ = _quad()
    tm = trimesh.Trimesh(v, f, vertex_colors=[[255, 0, 0, 255], [0, 255, 0, 255],
                                              [0, 0, 255, 255], [128, 128, 128, 255]],
                         process=False)
    tm.export(tmp_path / "vc.ply")
    mesh = load_mesh(tmp_path / "vc.ply")
    np.testing.assert_allclose(_corner_colors_srgb(mesh, 0), [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
                               atol=1e-6)
    tm = trimesh.Trimesh(v, f, face_colors=[[255, 0, 0, 255], [10, 200, 30, 255]], process=False)
    tm.export(tmp_path / "fc.ply")
    mesh = load_mesh(tmp_path / "fc.ply")
    np.testing.assert_allclose(mesh.color_at([0, 1], [[0.2, 0.3, 0.5]] * 2),
                               [[1, 0, 0], [10 / 255, 200 / 255, 30 / 255]], atol=1e-5)


def test_obj_with_two_textured_materials(tmp_path):
    for name, rgb in (("a", (255, 0, 0)), ("b", (0, 0, 255))):
        Image.new("RGB", (4, 4), rgb).save(tmp_path / f"{name}.png")
    _write(tmp_path / "two.mtl",
           "newmtl ma\nmap_Kd a.png\nnewmtl mb\nKd 0.5 0.5 0.5\nmap_Kd b.png\n")
    _write(tmp_path / "two.obj", "mtllib two.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 1\n"
                                 "vt 0 0\nvt 1 0\nvt 0 1\nusemtl ma\nf 1/1 2/2 3/3\n"
                                 "usemtl mb\nf 2/2 4/1 3/3\n")
    mesh = load_mesh(tmp_path / "two.obj")
    assert len(mesh.textures) == 2
    colours = {tuple(c) for c in np.round(mesh.color_at([0, 1], [[1 / 3] * 3] * 2), 6)}
    assert colours == {(1.0, 0.0, 0.0), (0.0, 0.0, 1.0)}


def test_sixteen_bit_greyscale_texture_keeps_its_greys(tmp_path):
    """A 16-bit greyscale PNG (PIL mode I;16) came out white: PIL's convert('RGB') clips it."""
    Image.fromarray(np.full((4, 4), 257 * 64, np.uint16)).save(tmp_path / "grey16.png")
    assert Image.open(tmp_path / "grey16.png").mode.startswith("I")
    _write(tmp_path / "g.mtl", "newmtl g\nmap_Kd grey16.png\n")
    _write(tmp_path / "g.obj", "mtllib g.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\n"
                               "vt 0 0\nvt 1 0\nvt 0 1\nusemtl g\nf 1/1 2/2 3/3\n")
    mesh = load_mesh(tmp_path / "g.obj")
    np.testing.assert_allclose(mesh.color_at([0], [[1 / 3] * 3]), [[64 / 255] * 3], atol=1e-6)


def test_gltf_vertex_colours_without_uvs_are_linear(tmp_path):
    v, f, _ = _quad()
    rgba = np.array([[255, 0, 0, 255], [0, 128, 0, 255], [0, 0, 64, 255], [10, 10, 10, 255]])
    trimesh.Trimesh(v, f, vertex_colors=rgba, process=False).export(tmp_path / "vc.glb")
    mesh = load_mesh(tmp_path / "vc.glb")
    np.testing.assert_allclose(_corner_colors_srgb(mesh, 0),
                               linear_to_srgb(rgba[f[0], :3] / 255.0), atol=1e-5)


def _write_glb(path, positions, faces, colors_u16):
    """A minimal GLB whose COLOR_0 is normalised unsigned short, as Blender writes it."""
    blobs = [np.asarray(positions, np.float32).tobytes(),
             np.asarray(faces, np.uint32).tobytes(), np.asarray(colors_u16, np.uint16).tobytes()]
    views, data = [], b""
    for blob in blobs:
        views.append({"buffer": 0, "byteOffset": len(data), "byteLength": len(blob)})
        data += blob + b"\0" * (-len(blob) % 4)
    count = len(positions)
    doc = {"asset": {"version": "2.0"}, "scene": 0, "scenes": [{"nodes": [0]}],
           "nodes": [{"mesh": 0}], "bufferViews": views, "buffers": [{"byteLength": len(data)}],
           "meshes": [{"primitives": [{"attributes": {"POSITION": 0, "COLOR_0": 2},
                                       "indices": 1}]}],
           "accessors": [
               {"bufferView": 0, "componentType": 5126, "count": count, "type": "VEC3",
                "min": np.min(positions, 0).tolist(), "max": np.max(positions, 0).tolist()},
               {"bufferView": 1, "componentType": 5125, "count": np.size(faces), "type": "SCALAR"},
               {"bufferView": 2, "componentType": 5123, "normalized": True, "count": count,
                "type": "VEC4"}]}
    text = json.dumps(doc).encode()
    text += b" " * (-len(text) % 4)
    header = struct.pack("<III", 0x46546C67, 2, 28 + len(text) + len(data))
    path.write_bytes(header + struct.pack("<II", len(text), 0x4E4F534A) + text
                     + struct.pack("<II", len(data), 0x004E4942) + data)
    return path


def test_gltf_unsigned_short_vertex_colours(tmp_path):
    """trimesh casts these to uint8 (32768 -> 0); we decode COLOR_0 ourselves."""
    v, f, _ = _quad()
    colors = np.array([[65535, 0, 0, 65535], [0, 32768, 0, 65535], [0, 0, 16384, 65535],
                       [1000, 1000, 1000, 65535]])
    mesh = load_mesh(_write_glb(tmp_path / "u16.glb", v, f, colors))
    np.testing.assert_allclose(_corner_colors_srgb(mesh, 0),
                               linear_to_srgb(colors[f[0], :3] / 65535.0), atol=1e-5)


def test_identical_parts_keep_their_own_vertex_colours(tmp_path):
    """Two copies of one box, placed by nodes, red on the left and blue on the right: each
    keeps its own COLOR_0 (pairing by positions alone gave both the first part's red)."""
    scene = trimesh.Scene()
    for x, rgba in ((-1.0, [255, 0, 0, 255]), (1.0, [0, 0, 255, 255])):
        box = trimesh.creation.box((0.5, 0.5, 0.5))
        box.visual.vertex_colors = rgba
        scene.add_geometry(box, transform=trimesh.transformations.translation_matrix([x, 0, 0]))
    scene.export(tmp_path / "two_boxes.glb")
    mesh = load_mesh(tmp_path / "two_boxes.glb")
    centres = mesh.triangles.mean(axis=1)
    colours = mesh.color_at(np.arange(mesh.face_count), np.full((mesh.face_count, 3), 1 / 3))
    np.testing.assert_allclose(colours[centres[:, 0] < 0], [[1, 0, 0]] * 12, atol=1e-6)
    np.testing.assert_allclose(colours[centres[:, 0] > 0], [[0, 0, 1]] * 12, atol=1e-6)


def test_stl_and_off_get_neutral_grey(tmp_path):
    tm = trimesh.creation.box()
    tm.export(tmp_path / "box.stl")
    _write(tmp_path / "tri.off", "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n")
    for name in ("box.stl", "tri.off"):
        mesh = load_mesh(tmp_path / name)
        np.testing.assert_allclose(mesh.color_at([0], [[1 / 3] * 3]), [[0.6, 0.6, 0.6]],
                                   atol=1e-6)
    assert load_mesh(tmp_path / "box.stl").face_count == 12


def test_obj_kd_is_srgb(tmp_path):
    _write(tmp_path / "flat.mtl", "newmtl m\nKd 0.5 0.25 1.0\n")
    _write(tmp_path / "flat.obj", "mtllib flat.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nusemtl m\nf 1 2 3\n")
    mesh = load_mesh(tmp_path / "flat.obj")
    np.testing.assert_allclose(mesh.color_at([0], [[1 / 3] * 3]),
                               [[128 / 255, 64 / 255, 1.0]], atol=1e-6)


def test_trimesh_objects_are_accepted():
    mesh = load_mesh(trimesh.creation.box(extents=(2, 1, 1)))
    assert mesh.face_count == 12
    np.testing.assert_allclose(mesh.triangles.max(axis=(0, 1)), [0.5, 0.25, 0.25], atol=1e-6)


def test_padding_and_z_up(tmp_path):
    apex_up_z = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0.2, 0.2, 3]],
                                [[0, 1, 2], [0, 1, 3], [1, 2, 3], [2, 0, 3]], process=False)
    mesh = load_mesh(apex_up_z, up="z", padding=0.1)
    hi = mesh.triangles.max(axis=(0, 1))
    lo = mesh.triangles.min(axis=(0, 1))
    assert abs((hi - lo)[1] - 0.8) < 1e-6  # the tall axis is now y, 1 - 2 * 0.1 long
    apex = mesh.triangles.reshape(-1, 3)[np.argmax(mesh.triangles.reshape(-1, 3)[:, 1])]
    scale = 0.8 / 3.0  # file (x, y, z) -> ours (x, z, -y), centred, scaled
    np.testing.assert_allclose(apex, [-0.3 * scale, 1.5 * scale, 0.3 * scale], atol=1e-6)
    top = load_mesh(apex_up_z).triangles.max(axis=(0, 1))
    assert abs(top[2] - 0.5) < 1e-6  # without up="z" the apex stays on z


def test_texture_sampling_wrap_modes():
    img = np.arange(48, dtype=np.uint8).reshape(4, 4, 3) * 5
    lin = srgb_to_linear(img / 255.0)

    def at(mode, u, v):
        return sample_texture_linear(Texture(img, mode, mode), np.array([[u, v]]))[0]

    np.testing.assert_allclose(at(WRAP_REPEAT, 1.125, 0.875), lin[0, 0])  # texel centre
    np.testing.assert_allclose(at(WRAP_CLAMP, -3.0, 0.875), lin[0, 0])
    np.testing.assert_allclose(at(WRAP_CLAMP, 5.0, -2.0), lin[3, 3])
    np.testing.assert_allclose(at(WRAP_MIRROR, 1.125, 0.875), lin[0, 3])
    np.testing.assert_allclose(at(WRAP_REPEAT, 0.25, 0.875), (lin[0, 0] + lin[0, 1]) / 2)


def test_color_at_rejects_bad_ids():
    mesh = load_mesh(trimesh.creation.box())
    with pytest.raises(OptionError):
        mesh.color_at([12], [[1, 0, 0]])
    with pytest.raises(OptionError):
        mesh.color_at([0, 1], [[1, 0, 0]])


# ---------------------------------------------------------------- bad input


def test_missing_file(tmp_path):
    with pytest.raises(MeshError, match="not found") as e:
        load_mesh(tmp_path / "nope.obj")
    _one_line_error(e)


def test_unknown_format(tmp_path):
    _write(tmp_path / "mesh.xyz", "1 2 3\n")
    with pytest.raises(MeshError, match="unknown mesh format '.xyz'") as e:
        load_mesh(tmp_path / "mesh.xyz")
    _one_line_error(e)


@pytest.mark.parametrize("name,content", [
    ("bad.glb", b"this is not a glb file"),
    ("bad.gltf", b"{ not json"),
    ("bad.ply", b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nend_header\n1 2\n"),
    ("bad.obj", b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n"),
])
def test_corrupt_files(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(MeshError) as e:
        load_mesh(tmp_path / name)
    _one_line_error(e)


def test_empty_and_truncated_files_say_so(tmp_path):
    """These read 'IndexError: index 0 is out of bounds...' and 'chunk was not expected
    length!' (trimesh's words) before."""
    (tmp_path / "empty.glb").write_bytes(b"")
    with pytest.raises(MeshError, match="empty.glb: the file is empty") as e:
        load_mesh(tmp_path / "empty.glb")
    _one_line_error(e)
    whole = mesh_path("BoxVertexColors.glb").read_bytes()
    (tmp_path / "cut.glb").write_bytes(whole[:len(whole) // 2])
    with pytest.raises(MeshError, match=f"cut.glb: the file is truncated \\({len(whole) // 2:,} "
                                        f"of the {len(whole):,} bytes") as e:
        load_mesh(tmp_path / "cut.glb")
    _one_line_error(e)


def test_gltf_requiring_an_unknown_extension_says_so(tmp_path):
    doc = {"asset": {"version": "2.0"}, "extensionsRequired": ["EXT_made_up_compression"],
           "extensionsUsed": ["EXT_made_up_compression"], "scenes": [{"nodes": []}]}
    (tmp_path / "made_up.gltf").write_text(json.dumps(doc))
    with pytest.raises(MeshError, match="requires glTF extensions EXT_made_up_compression"):
        load_mesh(tmp_path / "made_up.gltf")


@pytest.mark.parametrize("name,content", [
    ("empty.obj", ""), ("points.obj", "v 0 0 0\nv 1 0 0\n"),
    ("empty.stl", "solid x\nendsolid x\n")])
def test_zero_faces(tmp_path, name, content):
    with pytest.raises(MeshError, match="no triangle faces") as e:
        load_mesh(_write(tmp_path / name, content))
    _one_line_error(e)


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf"])
def test_non_finite_vertices_are_refused(tmp_path, bad):
    path = _write(tmp_path / "nan.obj",
                  f"v 0 0 0\nv 1 0 0\nv {bad} 1 0\nv 0 0 1\nf 1 2 3\nf 1 2 4\n")
    with pytest.raises(MeshError, match="NaN or infinity") as e:
        load_mesh(path)
    _one_line_error(e)


def test_degenerate_triangles_are_dropped_and_counted(tmp_path):
    path = _write(tmp_path / "deg.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 2 0 0\n"
                                        "f 1 2 3\nf 1 2 4\nf 1 1 3\n")
    mesh = load_mesh(path)
    assert (mesh.face_count, mesh.dropped_degenerate) == (1, 2)
    assert mesh.summary().endswith("2 degenerate dropped")
    with pytest.raises(MeshError, match="degenerate"):
        load_mesh(_write(tmp_path / "all.obj", "v 0 0 0\nv 1 0 0\nv 2 0 0\nf 1 2 3\n"))


@pytest.mark.parametrize("map_kd, image", [
    ("maps\\blue tex.png", "maps/blue tex.png"),         # Windows separators, a space
    ("C:\\Users\\bob\\Desktop\\blue.png", "blue.png"),  # the exporter's absolute path
    ("-s 1 1 1 -bm 0.5 -clamp on blue.png", "blue.png"),  # map options before the name
])
def test_obj_texture_paths_as_exporters_write_them(tmp_path, map_kd, image):
    """All three read as 'texture image is missing' (grey or Kd) before."""
    (tmp_path / image).parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4), (0, 0, 255)).save(tmp_path / image)
    _write(tmp_path / "w.mtl", f"newmtl m\nKd 0.5 0 0\nmap_Kd {map_kd}\n")
    _write(tmp_path / "w.obj", "mtllib w.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\n"
                               "vt 0 0\nvt 1 0\nvt 0 1\nusemtl m\nf 1/1 2/2 3/3\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mesh = load_mesh(tmp_path / "w.obj")
    assert len(mesh.textures) == 1
    np.testing.assert_allclose(mesh.color_at([0], [[1 / 3] * 3]), [[0, 0, 1]], atol=1e-6)


def test_missing_texture_warns_once_and_uses_base_colour(tmp_path):
    _write(tmp_path / "m.mtl", "newmtl red\nKd 1 0 0\nmap_Kd missing.png\n")
    _write(tmp_path / "m.obj", "mtllib m.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 0\n"
                               "vt 0 0\nvt 1 0\nvt 0 1\nvt 1 1\nusemtl red\n"
                               "f 1/1 2/2 3/3\nf 2/2 4/4 3/3\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mesh = load_mesh(tmp_path / "m.obj")
    ours = [w for w in caught if "missing" in str(w.message)]
    assert len(ours) == 1 and "red" in str(ours[0].message)
    np.testing.assert_allclose(mesh.color_at([0, 1], [[1 / 3] * 3] * 2), [[1, 0, 0]] * 2)


def test_glb_whose_external_texture_is_absent_warns(tmp_path):
    shutil.copy(mesh_path("kenney_character/character.glb"), tmp_path / "character.glb")
    with pytest.warns(UserWarning, match="texture image of material 'colormap' is missing"):
        mesh = load_mesh(tmp_path / "character.glb")
    assert mesh.textures == []  # its base colour: no factor, so the spec's white
    np.testing.assert_allclose(mesh.color_at([0], [[1 / 3] * 3]), [[1.0, 1.0, 1.0]], atol=1e-6)


def test_gltf_with_unnamed_material_and_absent_texture_warns(tmp_path):
    """An unnamed glTF material whose external PNG is absent came out grey without a word:
    our material names ('material_0') never matched trimesh's (None)."""
    v, f, uv = _quad()
    material = trimesh.visual.material.PBRMaterial(
        baseColorTexture=Image.new("RGB", (2, 2), (255, 0, 0)))
    tm = trimesh.Trimesh(v, f, visual=trimesh.visual.TextureVisuals(uv=uv, material=material),
                         process=False)
    files = trimesh.Scene(tm).export(file_type="gltf")
    doc = json.loads(files["model.gltf"])
    assert "name" not in doc["materials"][0]
    doc["images"] = [{"uri": "gone.png"}]
    (tmp_path / "model.gltf").write_text(json.dumps(doc))
    for other in set(files) - {"model.gltf"}:
        (tmp_path / other).write_bytes(files[other])
    with pytest.warns(UserWarning, match="texture image 'gone.png' is missing"):
        load_mesh(tmp_path / "model.gltf")


def test_missing_material_library_warns(tmp_path):
    path = _write(tmp_path / "m.obj", "mtllib gone.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    with pytest.warns(UserWarning, match="gone.mtl"):
        load_mesh(path)


def test_face_limit_is_stated():
    with pytest.raises(MeshError, match="5,856 faces is more than the limit of 1,000") as e:
        load_mesh(BUNDLED_MESH, max_faces=1000)
    _one_line_error(e)


@pytest.mark.parametrize("ext", [".ply", ".stl", ".off"])
def test_face_limit_is_checked_from_the_header(tmp_path, ext, monkeypatch):
    """A file whose header states too many faces is refused before trimesh reads it."""
    sphere = trimesh.creation.icosphere(subdivisions=3)  # 1,280 faces
    sphere.export(tmp_path / f"s{ext}")
    monkeypatch.setattr(trimesh, "load", lambda *a, **k: pytest.fail("file was loaded"))
    with pytest.raises(MeshError, match="1,280 faces is more than the limit of 1,000"):
        load_mesh(tmp_path / f"s{ext}", max_faces=1000)


def test_200k_faces_load():
    sphere = trimesh.creation.uv_sphere(count=[320, 320])
    assert len(sphere.faces) > 200_000
    mesh = load_mesh(sphere)
    assert mesh.face_count + mesh.dropped_degenerate == len(sphere.faces)
    assert mesh.face_count > 200_000


def test_bad_options():
    box = trimesh.creation.box()
    with pytest.raises(OptionError, match="up axis"):
        load_mesh(box, up="x")
    with pytest.raises(OptionError, match="padding"):
        load_mesh(box, padding=0.5)
    with pytest.raises(MeshError, match="expected a mesh file path"):
        load_mesh(42)
