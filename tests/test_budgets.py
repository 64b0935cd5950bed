"""Memory budgets checked before decoding: images, .npz arrays and .vox scenes."""
import functools
import io
import struct
import zipfile

import numpy as np
import pytest
from PIL import Image, ImageFile

from taichi_voxify.budgets import MAX_VOXELS
from taichi_voxify.errors import InputError, OptionError
from taichi_voxify.export import vox
from taichi_voxify.pixelart import load_pixel_art_dir
from taichi_voxify.voxelart import VoxelArt


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if PIL decodes any pixel data."""
    def refuse(self, *args, **kwargs):
        raise AssertionError(f"decoded a {self.size} image")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


@functools.lru_cache(maxsize=None)
def _big_png(side):
    buf = io.BytesIO()
    Image.new("L", (side, side), 0).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def test_oversized_pixel_art_view_is_refused_from_its_header(tmp_path, no_decoding):
    """A 6000x6000 PNG (about 100 KB) was decoded first: 3.6 GB, then 'views differ in size'."""
    for stem in ("px", "nx", "py", "ny", "pz"):
        Image.new("RGBA", (8, 8)).save(tmp_path / f"{stem}.png")
    (tmp_path / "nz.png").write_bytes(_big_png(6000))
    with pytest.raises(InputError, match="nz.png is 6000x6000.*views differ|nz.png is 6000x6000"):
        load_pixel_art_dir(tmp_path, cells=8)


def test_pixel_art_larger_than_the_image_cap_is_refused_by_name(tmp_path, no_decoding):
    for stem in ("px", "nx", "py", "ny", "pz", "nz"):
        (tmp_path / f"{stem}.png").write_bytes(_big_png(8200) if stem == "px" else b"")
    with pytest.raises(InputError, match="over the limit of 67,108,864 pixels"):
        load_pixel_art_dir(tmp_path)


def test_reference_picture_is_measured_before_decoding(tmp_path, no_decoding):
    from taichi_voxify.viewer import _as_rgb_float

    (tmp_path / "ref.png").write_bytes(_big_png(8200))
    with pytest.raises(OptionError, match="over the limit"):
        _as_rgb_float(str(tmp_path / "ref.png"))


def _npz_with_header(shape, dtype="|u1", payload=b"\0" * 16):
    """An .npz whose indices.npy header claims `shape` but holds only `payload`."""
    header = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (-(10 + len(header) + 1) % 64) + b"\n"
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + payload
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("indices.npy", npy)
        z.writestr("palette.npy", _npy(np.zeros((2, 3), np.uint8)))
    return buf.getvalue()


def _npy(array):
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


@pytest.mark.parametrize("shape, dtype, needle", [
    ((4096, 4096, 4096), "|u1", f"over the limit of {MAX_VOXELS:,} bytes"),
    ((4,), "|O", "Python objects"),
])
def test_npz_shapes_are_checked_from_the_npy_header(tmp_path, shape, dtype, needle):
    (tmp_path / "claim.npz").write_bytes(_npz_with_header(shape, dtype))
    with pytest.raises(InputError, match=needle) as e:
        VoxelArt.load_npz(tmp_path / "claim.npz")
    assert "\n" not in str(e.value)


def test_npz_round_trip_still_loads(tmp_path):
    art = VoxelArt(np.eye(3, dtype=np.uint8)[:, :, None].repeat(2, 2), np.ones((1, 3), np.uint8),
                   {"mesh": "x"})
    np.savez_compressed(tmp_path / "a.npz", **art.to_npz_dict())
    back = VoxelArt.load_npz(tmp_path / "a.npz")
    assert np.array_equal(back.indices, art.indices) and back.metadata == {"mesh": "x"}


def test_vox_scene_bounding_box_is_checked_before_the_grid_is_made(tmp_path):
    """Forty 256^3 models of one voxel each, placed side by side: 6.6 KB that made 3.5 GB."""
    count, side = 40, 256
    model = (vox._chunk(b"SIZE", struct.pack("<3i", side, side, side))
             + vox._chunk(b"XYZI", struct.pack("<i", 1) + bytes([0, 0, 0, 1])))
    blocks = [((side * i, 0, 0), (side * (i + 1), side, side)) for i in range(count)]
    children = model * count + vox._scene_graph(blocks, (side * count, side, side))
    children += vox._chunk(b"RGBA", bytes([255] * 1024))
    data = b"VOX " + struct.pack("<i", 150) + b"MAIN" + struct.pack("<ii", 0, len(children)) \
        + children
    (tmp_path / "tiles.vox").write_bytes(data)
    assert len(data) < 8000
    with pytest.raises(InputError, match=f"over the limit of {MAX_VOXELS:,} voxels"):
        vox.read_vox(tmp_path / "tiles.vox")


def test_pils_own_decompression_bomb_error_is_one_line_everywhere(tmp_path, monkeypatch):
    """DecompressionBombError escaped as a traceback from the pixel art, the viewer's
    reference and mesh textures."""
    import warnings

    from taichi_voxify.mesh import load_mesh
    from taichi_voxify.viewer import _as_rgb_float

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # PIL refuses over 2x this: 20 pixels
    for stem in ("px", "nx", "py", "ny", "pz", "nz"):
        Image.new("RGBA", (8, 8)).save(tmp_path / f"{stem}.png")
    with pytest.raises(InputError, match="decompression bomb") as e:
        load_pixel_art_dir(tmp_path, cells=8)
    assert "\n" not in str(e.value)
    with pytest.raises(OptionError, match="decompression bomb"):
        _as_rgb_float(str(tmp_path / "px.png"))
    (tmp_path / "m.mtl").write_text("newmtl m\nKd 1 0 0\nmap_Kd -s 1 1 1 px.png\n")
    (tmp_path / "m.obj").write_text("mtllib m.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvt 1 0\n"
                                    "vt 0 1\nusemtl m\nf 1/1 2/2 3/3\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mesh = load_mesh(tmp_path / "m.obj")  # the texture is dropped with a warning
    assert mesh.textures == [] and any("texture" in str(w.message) for w in caught)
