"""glTF and OFF features found in real files, each on a tiny file built here: the spec's white
default material, emissive-only materials, TEXCOORD_1, KHR_texture_transform, Draco, texture
alpha (MASK cut-out, BLEND coverage) and OFF colours."""
import io
import json
import struct

import numpy as np
import pytest
from PIL import Image

from taichi_voxify.color import linear_to_srgb
from taichi_voxify.mesh import load_mesh

QUAD = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], np.float32)
QUAD_FACES = np.array([[0, 1, 2], [0, 2, 3]], np.uint32)
# a 2 x 2 texture; glTF uv (0.25, 0.25) is the centre of its top-left texel
RED, GREEN, BLUE, YELLOW = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)
TEXELS = np.array([[RED, GREEN], [BLUE, YELLOW]], np.uint8)
AT_RED, AT_GREEN, AT_BLUE, AT_YELLOW = (0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)
_TYPES = {np.float32: 5126, np.uint8: 5121, np.uint16: 5123, np.uint32: 5125}


def _png(pixels):
    out = io.BytesIO()
    Image.fromarray(np.asarray(pixels, np.uint8)).save(out, format="PNG")
    return out.getvalue()


def write_glb(path, attributes, material=None, images=(), draco=False):
    """A one-primitive GLB of the unit quad (0 errors in the Khronos glTF validator).
    `attributes`: glTF name -> per-vertex array
    (POSITION defaults to the quad); `images`: pixel arrays, texture i shows image i;
    `draco`: POSITION, TEXCOORD_0 and COLOR_0 compressed with DracoPy, as exporters do."""
    attributes = {"POSITION": QUAD, **attributes}
    data, views, accessors = bytearray(), [], []

    def view(blob):
        views.append({"buffer": 0, "byteOffset": len(data), "byteLength": len(blob)})
        data.extend(blob + b"\0" * (-len(blob) % 4))
        return len(views) - 1

    def accessor(array, stored, bounds=False):
        a = np.asarray(array)
        acc = {"componentType": _TYPES[a.dtype.type], "count": len(a),
               "type": "SCALAR" if a.ndim == 1 else f"VEC{a.shape[1]}"}
        if a.dtype.kind == "u" and a.ndim == 2:
            acc["normalized"] = True
        if bounds:  # the spec requires them on POSITION
            acc.update(min=a.min(axis=0).tolist(), max=a.max(axis=0).tolist())
        if stored:
            acc["bufferView"] = view(a.tobytes())
        accessors.append(acc)
        return len(accessors) - 1

    prim = {"attributes": {name: accessor(a, not draco, name == "POSITION")
                           for name, a in attributes.items()},
            "indices": accessor(QUAD_FACES.reshape(-1), not draco)}
    doc = {"asset": {"version": "2.0"}, "scene": 0, "scenes": [{"nodes": [0]}],
           "nodes": [{"mesh": 0}], "meshes": [{"primitives": [prim]}]}
    if draco:
        prim["extensions"] = {"KHR_draco_mesh_compression": _draco(attributes, view)}
        doc["extensionsRequired"] = ["KHR_draco_mesh_compression"]
    if material is not None:
        prim["material"] = 0
        doc["materials"] = [material]
    used = [e for e in ("KHR_draco_mesh_compression", "KHR_texture_transform")
            if e in json.dumps(doc)]
    if used:
        doc["extensionsUsed"] = used
    if len(images):
        doc["images"] = [{"bufferView": view(_png(im)), "mimeType": "image/png"} for im in images]
        doc["textures"] = [{"source": i} for i in range(len(images))]
    doc.update(bufferViews=views, accessors=accessors, buffers=[{"byteLength": len(data)}])
    text = json.dumps(doc).encode()
    text += b" " * (-len(text) % 4)
    header = struct.pack("<III", 0x46546C67, 2, 28 + len(text) + len(data))
    path.write_bytes(header + struct.pack("<II", len(text), 0x4E4F534A) + text
                     + struct.pack("<II", len(data), 0x004E4942) + bytes(data))
    return path


def _draco(attributes, view):
    import DracoPy

    optional = {}
    if "TEXCOORD_0" in attributes:
        optional["tex_coord"] = np.asarray(attributes["TEXCOORD_0"], np.float64)
    if "COLOR_0" in attributes:
        optional["colors"] = np.asarray(attributes["COLOR_0"], np.uint8)
    blob = DracoPy.encode(attributes["POSITION"], QUAD_FACES, preserve_order=True, **optional)
    kinds = {a["attribute_type"]: a["unique_id"] for a in DracoPy.decode(blob).attributes}
    names = {"POSITION": DracoPy.AttributeType.POSITION,
             "TEXCOORD_0": DracoPy.AttributeType.TEX_COORD, "COLOR_0": DracoPy.AttributeType.COLOR}
    return {"bufferView": view(blob),
            "attributes": {n: kinds[k] for n, k in names.items() if n in attributes}}


def _uvs(uv):
    return np.tile(np.asarray(uv, np.float32), (4, 1))


def _colour(mesh, face=0):
    """sRGB colour at the centre of one face, as 0..255 floats."""
    return mesh.color_at([face], [[1 / 3] * 3])[0] * 255


# ---------------------------------------------------------------- material colours


@pytest.mark.parametrize("material", [None, {}, {"pbrMetallicRoughness": {"metallicFactor": 0}}])
def test_gltf_material_without_base_colour_is_white(tmp_path, material):
    """The spec's default baseColorFactor is [1, 1, 1, 1]; we gave such materials grey (0.6),
    about 37 dE76 from what glTF viewers show."""
    mesh = load_mesh(write_glb(tmp_path / "plain.glb", {}, material))
    np.testing.assert_allclose(_colour(mesh), [255, 255, 255], atol=1e-3)


def test_emissive_only_material_takes_its_emission(tmp_path):
    emissive = [0.2, 0.5, 0.05]
    mesh = load_mesh(write_glb(tmp_path / "glow.glb", {}, {"emissiveFactor": emissive}))
    np.testing.assert_allclose(_colour(mesh), linear_to_srgb(np.array(emissive)) * 255, atol=0.05)


def test_emissive_texture_of_an_emissive_only_material(tmp_path):
    material = {"emissiveTexture": {"index": 0}}
    mesh = load_mesh(write_glb(tmp_path / "glowtex.glb", {"TEXCOORD_0": _uvs(AT_GREEN)},
                               material, [TEXELS]))
    np.testing.assert_allclose(_colour(mesh), GREEN, atol=0.05)


def test_base_colour_wins_over_emission(tmp_path):
    material = {"pbrMetallicRoughness": {"baseColorFactor": [0, 0, 1, 1]},
                "emissiveFactor": [1, 0, 0]}
    mesh = load_mesh(write_glb(tmp_path / "both.glb", {}, material))
    np.testing.assert_allclose(_colour(mesh), BLUE, atol=0.05)


# ---------------------------------------------------------------- texture coordinates


def _textured(tex_info):
    return {"pbrMetallicRoughness": {"baseColorTexture": {"index": 0, **tex_info}}}


def test_texcoord_1_where_the_texture_asks_for_it(tmp_path):
    uv_sets = {"TEXCOORD_0": _uvs(AT_RED), "TEXCOORD_1": _uvs(AT_BLUE)}
    for tex_coord, expected in ((0, RED), (1, BLUE)):
        path = write_glb(tmp_path / f"uv{tex_coord}.glb", uv_sets,
                         _textured({"texCoord": tex_coord}), [TEXELS])
        np.testing.assert_allclose(_colour(load_mesh(path)), expected, atol=0.05)


def test_texcoord_1_alone(tmp_path):
    """A primitive with TEXCOORD_1 and no TEXCOORD_0 (trimesh then sees no UVs at all)."""
    path = write_glb(tmp_path / "only1.glb", {"TEXCOORD_1": _uvs(AT_YELLOW)},
                     _textured({"texCoord": 1}), [TEXELS])
    mesh = load_mesh(path)
    assert len(mesh.textures) == 1
    np.testing.assert_allclose(_colour(mesh), YELLOW, atol=0.05)


@pytest.mark.parametrize("transform, expected", [
    ({"offset": [0.5, 0.0]}, GREEN),
    ({"scale": [3.0, 1.0]}, GREEN),  # u 0.25 * 3 = 0.75
    ({"rotation": np.pi / 2}, BLUE),  # (u, v) -> (v, -u) = (0.25, -0.25), repeat: v 0.75
    ({"scale": [1.0, 3.0], "offset": [0.5, 0.0]}, YELLOW),
    ({"texCoord": 1}, GREEN),  # the transform's texCoord overrides the reference's
])
def test_khr_texture_transform(tmp_path, transform, expected):
    uv_sets = {"TEXCOORD_0": _uvs(AT_RED), "TEXCOORD_1": _uvs(AT_GREEN)}
    material = _textured({"extensions": {"KHR_texture_transform": transform}})
    path = write_glb(tmp_path / "transform.glb", uv_sets, material, [TEXELS])
    np.testing.assert_allclose(_colour(load_mesh(path)), expected, atol=0.05)


# ---------------------------------------------------------------- Draco


def test_draco_compressed_mesh(tmp_path):
    pytest.importorskip("DracoPy", reason="DracoPy (an install requirement) is not installed")
    colors = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]], np.uint8)
    plain = load_mesh(write_glb(tmp_path / "plain.glb", {"COLOR_0": colors}))
    packed = load_mesh(write_glb(tmp_path / "draco.glb", {"COLOR_0": colors}, draco=True))
    np.testing.assert_allclose(packed.triangles, plain.triangles, atol=1e-3)  # quantised
    corners = packed.color_at([0] * 3, np.eye(3))  # COLOR_0 is linear: 255 stays 255
    np.testing.assert_allclose(corners * 255, colors[QUAD_FACES[0]], atol=0.05)
    textured = write_glb(tmp_path / "draco_tex.glb", {"TEXCOORD_0": _uvs(AT_BLUE)},
                         _textured({}), [TEXELS], draco=True)
    np.testing.assert_allclose(_colour(load_mesh(textured)), BLUE, atol=0.5)


def test_corrupt_draco_blob_is_one_line_naming_the_file(tmp_path):
    from taichi_voxify.errors import MeshError

    pytest.importorskip("DracoPy", reason="DracoPy (an install requirement) is not installed")
    path = write_glb(tmp_path / "broken.glb", {}, draco=True)
    data = bytearray(path.read_bytes())
    start = data.find(b"DRACO")  # the blob's magic
    data[start:start + 40] = b"\xff" * 40
    path.write_bytes(bytes(data))
    with pytest.raises(MeshError, match="broken.glb: .*Draco") as err:
        load_mesh(path)
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------- texture alpha

# alpha 0 on the left half of the texture, 255 on the right; the quad's UVs are its x, y
HALF_CUT = np.concatenate([np.full((2, 8, 3), 200, np.uint8),
                           np.repeat([[0] * 4 + [255] * 4], 2, axis=0)[..., None].astype(np.uint8)],
                          axis=2)
SIZE = 32


def _render_front(mesh):
    from taichi_voxify.cameras import axis_view
    from taichi_voxify.render import render_views

    return render_views(mesh, [axis_view("+z")], SIZE, supersample=2)


def _alpha_quad(tmp_path, alpha_mode, image=HALF_CUT, **extra):
    pbr = {"baseColorTexture": {"index": 0}, **extra.pop("pbr", {})}
    material = {"pbrMetallicRoughness": pbr, **extra}
    if alpha_mode is not None:
        material["alphaMode"] = alpha_mode
    return load_mesh(write_glb(tmp_path / "alpha.glb", {"TEXCOORD_0": QUAD[:, :2]}, material,
                               [image]))


# pixel columns whose texels are wholly transparent / opaque (bilinear blends the middle)
LEFT, RIGHT = slice(3, 13), slice(19, 29)
ROWS = slice(2, 30)


def test_alpha_mask_cuts_out_below_the_cutoff(tmp_path):
    mesh = _alpha_quad(tmp_path, "MASK")
    assert mesh.textures[0].alpha is not None
    r = _render_front(mesh)
    assert (r.alpha[0][ROWS, LEFT] == 0).all() and (r.face_id[0][ROWS, LEFT] == -1).all()
    assert (r.alpha[0][ROWS, RIGHT] == 1).all()
    np.testing.assert_allclose(r.covered_rgb[0][ROWS, RIGHT], 200 / 255, atol=2 / 255)
    # a cutoff above every texel's alpha cuts out the whole quad
    mesh = _alpha_quad(tmp_path, "MASK", image=np.dstack([HALF_CUT[..., :3],
                                                          np.full((2, 8), 128, np.uint8)]),
                       alphaCutoff=0.6)
    assert _render_front(mesh).alpha.max() == 0


def test_opaque_material_ignores_texture_alpha(tmp_path):
    r = _render_front(_alpha_quad(tmp_path, None))
    assert (r.alpha[0][ROWS, LEFT] == 1).all() and (r.alpha[0][ROWS, RIGHT] == 1).all()


@pytest.mark.parametrize("factor_alpha, texel_alpha", [(0.5, 255), (1.0, 128), (0.25, 255)])
def test_alpha_blend_becomes_coverage(tmp_path, factor_alpha, texel_alpha):
    """BLEND: base alpha * texture alpha is the covered fraction of each pixel's samples (at
    supersample 2, each pixel's four dither thresholds lie a quarter apart)."""
    image = np.dstack([HALF_CUT[..., :3], np.full((2, 8), texel_alpha, np.uint8)])
    mesh = _alpha_quad(tmp_path, "BLEND", image=image,
                       pbr={"baseColorFactor": [1, 1, 1, factor_alpha]})
    r = _render_front(mesh)
    expected = np.floor(factor_alpha * texel_alpha / 255 * 4 + 0.01) / 4
    np.testing.assert_allclose(r.alpha[0][1:-1, 1:-1], expected)
    np.testing.assert_allclose(r.covered_rgb[0][1:-1, 1:-1], 200 / 255, atol=2 / 255)


def test_what_lies_behind_a_cut_out_shows_through():
    """A masked quad in front of an opaque red one: where it is cut out, the red quad is the
    covered surface (the z-buffer skips the cut-out samples)."""
    from taichi_voxify.mesh import ALPHA_MASK, ALPHA_OPAQUE, Mesh, Texture

    quad = (QUAD - [0.5, 0.5, 0])[QUAD_FACES]
    tris = np.concatenate([quad, quad - [0, 0, 0.4]]).astype(np.float32)
    mesh = Mesh(name="two", triangles=tris, uvs=np.tile(quad[..., :2] + 0.5, (2, 1, 1)),
                corner_colors=np.ones((4, 3, 3), np.float32),
                face_material=np.array([0, 0, 1, 1], np.int32),
                material_colors=np.array([[1, 1, 1], [1, 0, 0]], np.float32),
                material_textures=np.array([0, -1], np.int32),
                textures=[Texture(HALF_CUT[..., :3].copy(), alpha=HALF_CUT[..., 3].copy())],
                material_alpha_modes=np.array([ALPHA_MASK, ALPHA_OPAQUE], np.int32),
                material_alphas=np.array([[1, 0.5], [1, 0.5]], np.float32))
    r = _render_front(mesh)
    assert set(np.unique(r.face_id[0][ROWS, LEFT])) <= {2, 3}
    assert set(np.unique(r.face_id[0][ROWS, RIGHT])) <= {0, 1}
    assert np.allclose(r.covered_rgb[0][ROWS, LEFT], [1, 0, 0], atol=1e-6)


# ---------------------------------------------------------------- OFF colours


def test_off_face_colours_integer_and_float(tmp_path):
    """Per-face colours after the indices (a quad cut into two triangles keeps its colour);
    trimesh's OFF reader dropped them and the mesh came out grey."""
    (tmp_path / "faces.off").write_text(
        "OFF\n# a quad and a triangle\n5 2 0\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n2 2 1\n"
        "4 0 1 2 3 255 0 0\n3 1 4 2 0 128 255 255\n")
    mesh = load_mesh(tmp_path / "faces.off")
    assert mesh.face_count == 3
    colours = mesh.color_at(np.arange(3), np.full((3, 3), 1 / 3)) * 255
    np.testing.assert_allclose(colours, [RED, RED, (0, 128, 255)], atol=0.05)
    (tmp_path / "floats.off").write_text("OFF 3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2 0.0 0.5 1\n")
    np.testing.assert_allclose(_colour(load_mesh(tmp_path / "floats.off")), [0, 128, 255],
                               atol=0.05)


def test_coff_vertex_colours(tmp_path):
    (tmp_path / "v.off").write_text("COFF\n3 1 0\n0 0 0 255 0 0 255\n1 0 0 0 255 0 255\n"
                                    "0 1 0 0 0 255 255\n3 0 1 2\n")
    mesh = load_mesh(tmp_path / "v.off")
    np.testing.assert_allclose(mesh.color_at([0] * 3, np.eye(3)) * 255, [RED, GREEN, BLUE],
                               atol=0.05)


def test_off_without_colours_stays_grey_and_broken_off_is_one_line(tmp_path):
    from taichi_voxify.errors import MeshError

    (tmp_path / "plain.off").write_text("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n")
    np.testing.assert_allclose(_colour(load_mesh(tmp_path / "plain.off")), [153, 153, 153],
                               atol=0.05)
    (tmp_path / "bad.off").write_text("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n")
    with pytest.raises(MeshError, match="bad.off: .*vertex that does not exist") as err:
        load_mesh(tmp_path / "bad.off")
    assert "\n" not in str(err.value)
