"""--mesh-style texture: one material whose base colour texture is the K x 1 palette strip."""
import json
import struct

import numpy as np
import pytest
import trimesh
from PIL import Image

from taichi_voxify import OptionError, VoxelArt
from taichi_voxify.export.meshing import glb_bytes, voxel_mesh, write_mesh


def _art(seed=0, shape=(6, 5, 4), colors=5):
    rng = np.random.default_rng(seed)
    idx = (rng.random(shape) < 0.6) * rng.integers(1, colors + 1, shape)
    return VoxelArt(idx.astype(np.uint8), rng.integers(0, 256, (colors, 3)).astype(np.uint8))


def _glb_parts(data):
    js_len = struct.unpack_from("<I", data, 12)[0]
    doc = json.loads(data[20:20 + js_len])
    return doc, data[20 + js_len + 8:]


def _texel_colors(mesh_uv, palette):
    """The strip colour each UV falls in, read at the texel it names."""
    k = len(palette)
    texel = np.floor(mesh_uv[:, 0] * k).astype(int)
    assert np.allclose(mesh_uv[:, 0] * k - texel, 0.5, atol=1e-5)  # texel centres
    assert np.allclose(mesh_uv[:, 1], 0.5)
    return palette[texel]


def test_glb_has_one_material_one_texture_and_each_quad_on_its_colour():
    art = _art()
    mesh = voxel_mesh(art)
    doc, binary = _glb_parts(glb_bytes(mesh, "texture"))
    assert len(doc["materials"]) == 1 and len(doc["textures"]) == 1 and len(doc["images"]) == 1
    (prim,) = doc["meshes"][0]["primitives"]
    assert doc["materials"][0]["pbrMetallicRoughness"]["baseColorTexture"] == {"index": 0}
    assert doc["samplers"][0]["magFilter"] == doc["samplers"][0]["minFilter"] == 9728  # NEAREST
    view = doc["bufferViews"][doc["images"][0]["bufferView"]]
    png = binary[view["byteOffset"]: view["byteOffset"] + view["byteLength"]]
    import io

    strip = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    np.testing.assert_array_equal(strip, art.palette[None])  # K x 1, sRGB as stored
    uv_acc = doc["accessors"][prim["attributes"]["TEXCOORD_0"]]
    uv_view = doc["bufferViews"][uv_acc["bufferView"]]
    uv = np.frombuffer(binary, "<f4", uv_acc["count"] * 2, uv_view["byteOffset"]).reshape(-1, 2)
    np.testing.assert_array_equal(_texel_colors(uv, art.palette), mesh.vertex_colors)
    assert doc["accessors"][prim["indices"]]["count"] == 3 * mesh.triangle_count


def test_trimesh_reads_the_texture_glb_back_to_the_voxel_colours(tmp_path):
    art = _art(seed=1)
    write_mesh(art, tmp_path / "t.glb", style="texture")
    (geom,) = trimesh.load(tmp_path / "t.glb").geometry.values()
    assert geom.visual.kind == "texture"
    sampled = geom.visual.to_color().vertex_colors[:, :3]
    assert len(sampled) == len(voxel_mesh(art).vertices)
    # trimesh samples the texture at each UV: the same colour as the quad's palette entry
    want = {tuple(c) for c in voxel_mesh(art).vertex_colors}
    assert {tuple(c) for c in sampled} == want


@pytest.mark.parametrize("fmt", ["obj", "ply"])
def test_obj_and_ply_name_the_palette_strip_written_beside_them(tmp_path, fmt):
    art = _art(seed=2)
    info = write_mesh(art, tmp_path / f"cow.{fmt}", style="texture")
    strip = tmp_path / "cow_palette_strip.png"
    assert str(strip) in info["files"]
    np.testing.assert_array_equal(np.asarray(Image.open(strip).convert("RGB")), art.palette[None])
    if fmt == "obj":
        mtl = (tmp_path / "cow.mtl").read_text()
        assert mtl.count("newmtl") == 1 and "map_Kd cow_palette_strip.png" in mtl
    else:
        header = (tmp_path / "cow.ply").read_bytes().split(b"end_header")[0]
        assert b"comment TextureFile cow_palette_strip.png" in header
        assert b" s\n" in header and b" t\n" in header  # per-vertex texture coordinates
    loaded = trimesh.load(tmp_path / f"cow.{fmt}", process=False)
    uv = np.asarray(loaded.visual.uv)
    colors = _texel_colors(uv, art.palette)
    assert {tuple(c) for c in colors} == {tuple(art.palette[i]) for i in art.colors_used()}
    assert len(loaded.faces) == voxel_mesh(art).triangle_count


def test_unknown_style_is_refused(tmp_path):
    with pytest.raises(OptionError, match="mesh style"):
        write_mesh(_art(), tmp_path / "x.glb", style="atlas")
