"""Minecraft .schem (Sponge Schematic v3): read back with nbtlib, one block per voxel."""
import gzip

import nbtlib
import numpy as np

from taichi_voxify import VoxelArt
from taichi_voxify.palette import named_palette, named_palette_rgb, resolve_palette

from taichi_voxify.export.schem import DATA_VERSION, nearest_blocks, varint_bytes, write_schem


def _decode_varints(data):
    """Plain reference decoder: seven bits a byte, low first, top bit = more bytes follow."""
    out, value, shift = [], 0, 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            out.append(value)
            value, shift = 0, 0
    assert shift == 0, "the data ends inside a varint"
    return out


def test_varints_encode_as_the_specification_says():
    assert varint_bytes([0, 1, 127]) == bytes([0, 1, 127])
    assert varint_bytes([128, 300]) == bytes([0x80, 0x01, 0xAC, 0x02])
    values = [0, 127, 128, 255, 16383, 16384, 2**21, 2**31 - 1, 5]
    assert _decode_varints(varint_bytes(values)) == values


def test_schematic_reads_back_with_one_block_per_voxel(tmp_path):
    rng = np.random.default_rng(4)
    shape = (5, 7, 3)  # x, y (up), z
    idx = rng.integers(0, 4, size=shape).astype(np.uint8)
    mc = {n: rgb for n, _, rgb in named_palette("minecraft")}
    palette = [mc["red_wool"], mc["white_concrete"], [250, 250, 250]]  # the last: near white
    art = VoxelArt(idx, palette)
    info = write_schem(art, tmp_path / "a.schem", name="a")
    raw = (tmp_path / "a.schem").read_bytes()
    assert raw[:2] == b"\x1f\x8b"  # gzip
    root = nbtlib.load(tmp_path / "a.schem")
    assert root.root_name == "" and list(root) == ["Schematic"]
    s = root["Schematic"]
    assert (int(s["Version"]), int(s["DataVersion"])) == (3, DATA_VERSION)
    assert (int(s["Width"]), int(s["Height"]), int(s["Length"])) == shape
    palette_ids = {str(k): int(v) for k, v in s["Blocks"]["Palette"].items()}
    data = _decode_varints(bytes(np.asarray(s["Blocks"]["Data"], np.int8).view(np.uint8)))
    assert len(data) == np.prod(shape)
    by_index = {v: k for k, v in palette_ids.items()}
    blocks = np.array([by_index[d] for d in data], object).reshape(shape[1], shape[2], shape[0])
    blocks = blocks.transpose(2, 0, 1)  # x + z*W + y*W*L -> ours (x, y, z)
    want = np.array(["minecraft:air", "minecraft:red_wool", "minecraft:white_concrete",
                     "minecraft:white_wool"], object)
    assert np.count_nonzero(blocks != "minecraft:air") == art.filled_count == info["blocks"]
    np.testing.assert_array_equal(blocks, want[idx])
    assert info["max_delta_e76"] > 0  # 250-grey is not exactly a block's colour


def test_every_block_colour_maps_to_its_own_block_and_minecraft_palette_fits():
    names = [f"minecraft:{n}" for n, _, _ in named_palette("minecraft")]
    found = nearest_blocks(named_palette_rgb("minecraft"))
    assert [b for b, _ in found] == names and max(d for _, d in found) == 0
    images = np.zeros((1, 2, 2, 3))
    images[0, :, 0] = [0.8, 0.1, 0.1]
    images[0, :, 1] = [0.1, 0.2, 0.7]
    pal = resolve_palette("minecraft", images, np.ones((1, 2, 2), bool), k=2)
    blocks = sorted(b for b, d in nearest_blocks(pal))
    assert all(d == 0 for _, d in nearest_blocks(pal))
    assert any("red" in b for b in blocks) and any("blue" in b for b in blocks)


def test_same_art_same_bytes(tmp_path):
    art = VoxelArt(np.ones((2, 2, 2), np.uint8), [[10, 200, 30]])
    write_schem(art, tmp_path / "a.schem")
    write_schem(art, tmp_path / "b.schem")
    assert (tmp_path / "a.schem").read_bytes() == (tmp_path / "b.schem").read_bytes()
    assert len(gzip.decompress((tmp_path / "a.schem").read_bytes())) > 0
