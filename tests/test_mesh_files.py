"""Files a mesh names: only regular files inside the mesh's folder are read, each once."""
import io
import json
import os
import time
import warnings

import numpy as np
import pytest
from PIL import Image

from taichi_voxify.errors import MeshError
from taichi_voxify.fuzz import triangle_gltf
from taichi_voxify.mesh import load_mesh
from taichi_voxify.mesh_files import MeshFolder, RefusedReference


def _png(color, size=(4, 4)):
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def _lay_out(folder, files):
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def _gltf_case(tmp_path, buffer_uri="tri.bin", image_uri=None):
    """mesh/tri.gltf naming `buffer_uri` (its real buffer also saved as mesh/tri.bin and, red
    and painted, as a 'secret' outside the folder) and optionally `image_uri`."""
    mesh_dir = tmp_path / "mesh"
    files = triangle_gltf(buffer_uri=buffer_uri, image_uri=image_uri)
    _lay_out(mesh_dir, files)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "buf.bin").write_bytes(files["tri.bin"])
    return mesh_dir / "tri.gltf"


@pytest.mark.parametrize("uri", ["../elsewhere/buf.bin", "/dev/zero", "http://example.com/b.bin",
                                 "file:///dev/zero", "%2E%2E/elsewhere/buf.bin"])
def test_gltf_buffer_outside_the_folder_is_a_one_line_error(tmp_path, uri):
    path = _gltf_case(tmp_path, buffer_uri=uri)
    (path.parent / "tri.bin").unlink()  # nothing of that name beside the mesh
    with pytest.raises(MeshError, match="not followed") as e, \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_mesh(path)
    assert "\n" not in str(e.value)
    # said once, as the error line, not also as a warning before it
    assert not [w for w in caught if "not followed" in str(w.message)]


def test_gltf_buffer_fifo_is_refused_without_hanging(tmp_path):
    path = _gltf_case(tmp_path, buffer_uri="pipe.bin")
    os.mkfifo(path.parent / "pipe.bin")
    start = time.monotonic()
    with pytest.raises(MeshError, match="not a regular file"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_mesh(path)
    assert time.monotonic() - start < 30  # it hung forever before


def test_symlink_out_of_the_folder_is_refused_but_inside_is_followed(tmp_path):
    path = _gltf_case(tmp_path, buffer_uri="link.bin")
    os.symlink(tmp_path / "elsewhere" / "buf.bin", path.parent / "link.bin")
    with pytest.raises(MeshError, match="outside"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_mesh(path)
    (path.parent / "link.bin").unlink()
    os.symlink("tri.bin", path.parent / "link.bin")
    assert load_mesh(path).face_count == 1


def test_buffer_read_stops_at_its_declared_length(tmp_path):
    path = _gltf_case(tmp_path)
    declared = json.loads(path.read_text())["buffers"][0]["byteLength"]
    with open(path.parent / "tri.bin", "ab") as fh:
        fh.write(b"\0" * 5_000_000)
    folder = MeshFolder(path)
    assert len(folder.read("tri.bin", limit=declared)) == declared
    assert load_mesh(path).face_count == 1


def test_texture_outside_the_folder_warns_and_uses_the_base_colour(tmp_path):
    path = _gltf_case(tmp_path, image_uri="../elsewhere/red.png")
    (tmp_path / "elsewhere" / "red.png").write_bytes(_png((255, 0, 0)))
    with pytest.warns(UserWarning, match="not followed: it lies outside"):
        mesh = load_mesh(path)
    assert mesh.textures == []


def test_mtl_maps_and_mtllib_outside_the_folder_are_not_read(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "blue.png").write_bytes(_png((0, 0, 255)))
    (outside / "lib.mtl").write_text("newmtl m\nKd 1 0 0\n")
    mesh_dir = tmp_path / "mesh"
    _lay_out(mesh_dir, {
        "a.mtl": f"newmtl m\nKd 1 0 0\nmap_Kd {outside / 'blue.png'}\n".encode(),
        "b.mtl": b"newmtl m\nKd 1 0 0\nmap_Kd ../elsewhere/blue.png\n",
    })
    body = "v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 0 1\nusemtl m\nf 1/1 2/2 3/3\n"
    for lib in ("a.mtl", "b.mtl"):
        (mesh_dir / "m.obj").write_text(f"mtllib {lib}\n" + body)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mesh = load_mesh(mesh_dir / "m.obj")
        assert mesh.textures == []  # blue used to be the texture
        np.testing.assert_allclose(mesh.color_at([0], [[1 / 3] * 3]), [[1, 0, 0]], atol=1e-6)
    for lib in ("/etc/passwd", "../elsewhere/lib.mtl"):
        (mesh_dir / "m.obj").write_text(f"mtllib {lib}\n" + body)
        with pytest.warns(UserWarning, match="not found"):
            mesh = load_mesh(mesh_dir / "m.obj")
        assert not np.allclose(mesh.color_at([0], [[1 / 3] * 3]), [[1, 0, 0]])  # grey, not Kd


def test_resolver_rules(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "t.png").write_bytes(b"x")
    (tmp_path / "r.png").write_bytes(b"x")
    (tmp_path / "m.obj").write_text("")
    folder = MeshFolder(tmp_path / "m.obj", warn=False)
    assert folder.locate("sub\\t.png") == tmp_path / "sub" / "t.png"
    assert folder.locate("sub/../sub/t.png") == tmp_path / "sub" / "t.png"
    assert folder.locate("C:\\work\\r.png") == tmp_path / "r.png"  # the exporter's path
    assert folder.read("sub%2Ft.png") == b"x"
    for name in ("sub", "../m.obj", "https://x/t.png", "", "data:,abc"):
        with pytest.raises(RefusedReference):
            folder.read(name)
    assert folder.refused.keys() >= {"sub", "https://x/t.png"}


def test_shared_data_uri_buffer_is_decoded_once(tmp_path, monkeypatch):
    import taichi_voxify.mesh as mesh_module

    files = triangle_gltf(buffer_uri=None, primitives=40)
    _lay_out(tmp_path, files)
    calls = []
    real = mesh_module.decode_data_uri
    monkeypatch.setattr(mesh_module, "decode_data_uri",
                        lambda uri: calls.append(1) or real(uri))
    assert load_mesh(tmp_path / "tri.gltf").face_count == 40
    assert len(calls) == 1  # once per primitive attribute before


@pytest.mark.parametrize("edit, needle", [
    (lambda d: d["nodes"].append({"children": [1]}) or d["nodes"][0].update(children=[1])
     or d["nodes"][1].update(children=[0]), "cycle|two parents"),
    (lambda d: d["nodes"].__setitem__(0, 7), r"nodes\[0\] is not an object"),
    (lambda d: d.__setitem__("materials", "red"), "materials is not a list"),
    (lambda d: d["meshes"][0]["primitives"].__setitem__(0, None), "not an object"),
])
def test_malformed_gltf_structure_is_a_one_line_error(tmp_path, edit, needle):
    files = triangle_gltf()
    doc = json.loads(files["tri.gltf"])
    edit(doc)
    files["tri.gltf"] = json.dumps(doc).encode()
    _lay_out(tmp_path, files)
    with pytest.raises(MeshError, match=needle):
        load_mesh(tmp_path / "tri.gltf")


def test_deeply_nested_json_is_a_one_line_error(tmp_path):
    (tmp_path / "deep.gltf").write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(MeshError, match="nested too deeply|not an object"):
        load_mesh(tmp_path / "deep.gltf")


def test_texture_size_is_checked_before_decoding(tmp_path):
    """An 8200x8200 one-colour PNG is a few hundred KB on disk and 200 MB decoded."""
    buf = io.BytesIO()
    Image.new("L", (8200, 8200), 0).save(buf, "PNG", optimize=True)
    path = _gltf_case(tmp_path, image_uri="big.png")
    (path.parent / "big.png").write_bytes(buf.getvalue())
    with pytest.raises(MeshError, match="over the limit of 67,108,864 pixels"):
        load_mesh(path)


def test_all_textures_together_have_a_budget(tmp_path, monkeypatch):
    """Many textures under the one-image cap still added up without limit."""
    import taichi_voxify.mesh as mesh_module

    monkeypatch.setattr(mesh_module, "MAX_TEXTURE_PIXELS", 20)  # two 4x4 images: 32 pixels
    _lay_out(tmp_path, {"a.png": _png((255, 0, 0)), "b.png": _png((0, 0, 255)),
                        "m.mtl": b"newmtl a\nmap_Kd a.png\nnewmtl b\nmap_Kd b.png\n"})
    (tmp_path / "m.obj").write_text("mtllib m.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 0\nvt 0 0\n"
                                    "vt 1 0\nvt 0 1\nusemtl a\nf 1/1 2/2 3/3\nusemtl b\n"
                                    "f 2/2 4/1 3/3\n")
    with pytest.raises(MeshError, match="more than the limit of 20 pixels together"):
        load_mesh(tmp_path / "m.obj")
    monkeypatch.setattr(mesh_module, "MAX_TEXTURE_PIXELS", 32)
    assert len(load_mesh(tmp_path / "m.obj").textures) == 2
