"""The issue-14 outputs through the command line: palette files, --palette FILE, Minecraft
.schem, --mesh-style texture, --shell, and the .vox's named palette notes."""
import json
import struct

import nbtlib
import numpy as np
import pytest

from conftest import mesh_path
from taichi_voxify.cli import main
from taichi_voxify.palette import named_palette
from taichi_voxify.palette_files import read_palette_file
from taichi_voxify.shell import seen_from_outside
from taichi_voxify.voxelart import VoxelArt

FAST = ["--res", "8", "--preset", "test", "--clip", "off", "--quiet"]


@pytest.fixture(scope="module")
def minecraft_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("mc")
    argv = [str(mesh_path("BoxVertexColors.glb")), *FAST, "--colors", "4", "--palette",
            "minecraft", "--formats", "vox,glb,schem,npz", "--mesh-style", "texture",
            "--shell", "--out", str(out)]
    assert main(argv) == 0
    return out, VoxelArt.load_npz(out / "BoxVertexColors.npz")


def test_every_conversion_writes_its_palette_files(minecraft_run):
    out, art = minecraft_run
    gpl = read_palette_file(out / "BoxVertexColors_palette.gpl")
    np.testing.assert_array_equal(gpl.colors, art.palette)
    blocks = {rgb: name for name, _, rgb in named_palette("minecraft")}
    assert gpl.names == tuple(blocks[tuple(int(v) for v in c)] for c in art.palette)
    for name in ("BoxVertexColors_palette.hex", "BoxVertexColors_palette_strip.png"):
        np.testing.assert_array_equal(read_palette_file(out / name).colors, art.palette)
    report = json.loads((out / "BoxVertexColors_report.json").read_text())
    assert "BoxVertexColors_palette.gpl" in report["files"]["palette"]


def test_schem_has_one_block_per_voxel_in_the_palette_blocks(minecraft_run):
    out, art = minecraft_run
    s = nbtlib.load(out / "BoxVertexColors.schem")["Schematic"]
    palette = {int(v): str(k) for k, v in s["Blocks"]["Palette"].items()}
    data = np.asarray(s["Blocks"]["Data"], np.int8).view(np.uint8)
    assert data.max() < 128  # few block types: one byte per varint, so data[i] is block i
    blocks = np.array([palette[int(d)] for d in data]).reshape(8, 8, 8).transpose(2, 0, 1)
    assert np.count_nonzero(blocks != "minecraft:air") == art.filled_count > 0
    names = {rgb: name for name, _, rgb in named_palette("minecraft")}
    want = ["minecraft:air"] + ["minecraft:" + names[tuple(int(v) for v in c)]
                                for c in art.palette]
    np.testing.assert_array_equal(blocks, np.array(want)[art.indices])


def test_texture_glb_shell_and_vox_notes(minecraft_run):
    out, art = minecraft_run
    data = (out / "BoxVertexColors.glb").read_bytes()
    doc = json.loads(data[20:20 + struct.unpack_from("<I", data, 12)[0]])
    assert len(doc["materials"]) == 1 and len(doc["textures"]) == 1
    filled = art.indices > 0
    np.testing.assert_array_equal(seen_from_outside(filled), filled)  # hollow: all seen
    assert filled.sum() < 8 ** 3 and not filled[2:-2, 2:-2, 2:-2].any()  # the box's inside
    vox = (out / "BoxVertexColors.vox").read_bytes()
    note = vox[vox.index(b"NOTE") + 12:]
    names = {rgb: name for name, _, rgb in named_palette("minecraft")}
    first_row = ", ".join(names[tuple(int(v) for v in c)] for c in art.palette)
    assert first_row.encode() in note


def test_a_palette_file_we_wrote_gives_art_in_exactly_its_colours(minecraft_run, tmp_path):
    out, art = minecraft_run
    argv = [str(mesh_path("alien.glb")), *FAST, "--colors", str(len(art.palette)), "--palette",
            str(out / "BoxVertexColors_palette.gpl"), "--formats", "npz", "--out",
            str(tmp_path)]
    assert main(argv) == 0
    other = VoxelArt.load_npz(tmp_path / "alien.npz")
    # as many colours asked as the file holds: the palette is the file's, exactly
    assert sorted(map(tuple, other.palette)) == sorted(map(tuple, art.palette))
    assert other.filled_count > 0


@pytest.mark.parametrize("args, needle", [
    (["--fill", "--shell"], "fill and shell"),
    (["--mesh-style", "atlas"], "mesh_style"),
    (["--palette", "nothere.gpl"], "does not exist"),
])
def test_bad_format_options_stop_before_any_work(tmp_path, capsys, args, needle):
    code = main([str(mesh_path("BoxVertexColors.glb")), *FAST, "--out", str(tmp_path / "o"),
                 *args])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists()
