import shutil
import struct
import subprocess

import numpy as np
import pytest

from taichi_voxify import InputError, VoxelArt
from taichi_voxify.export import read_vox, write_vox


def _random_art(shape=(5, 7, 4), colors=6, seed=0):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, colors + 1, size=shape).astype(np.uint8)
    pal = rng.integers(0, 256, size=(colors, 3)).astype(np.uint8)
    return VoxelArt(idx, pal)


def _main_chunks(data):
    """(tag, content) of the MAIN chunk's children: a minimal walk written from the format's
    description, independent of export.vox's reader."""
    assert data[:4] == b"VOX " and data[8:12] == b"MAIN"
    out, at = [], 20
    while at < len(data):
        tag, size, kids = data[at:at + 4], *struct.unpack_from("<ii", data, at + 4)
        out.append((tag, data[at + 12:at + 12 + size]))
        at += 12 + size + kids
    return out


def _strings(content, at, count):
    out = []
    for _ in range(count):
        n = struct.unpack_from("<i", content, at)[0]
        out.append(content[at + 4:at + 4 + n].decode())
        at += 4 + n
    return out, at


@pytest.mark.parametrize("shape", [(5, 7, 4), (300, 3, 4)])  # one model; two, side by side
def test_goxel_opens_the_file_and_sees_every_voxel_and_colour(tmp_path, shape):
    """Goxel (an editor with its own .vox reader) re-exports every voxel with its colour."""
    if not (shutil.which("goxel") and shutil.which("xvfb-run")):
        pytest.skip("Goxel or xvfb-run is not installed (apt-get install goxel xvfb)")
    art = _random_art(shape=shape)
    write_vox(art, tmp_path / "a.vox")
    out = tmp_path / "a.txt"  # Goxel's text export: one 'X Y Z RRGGBB' line per voxel
    run = subprocess.run(["xvfb-run", "-a", "goxel", str(tmp_path / "a.vox"), "-e", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and out.exists(), run.stderr[-500:]
    rows = [line.split() for line in out.read_text().splitlines() if not line.startswith("#")]
    got = np.array([[int(v) for v in r[:3]] for r in rows])
    got_rgb = np.array([[int(r[3][i:i + 2], 16) for i in (0, 2, 4)] for r in rows])
    x, y, z = np.nonzero(art.indices)
    Z = art.shape[2]
    want = np.stack([x, Z - 1 - z, y], 1)  # ours -> MagicaVoxel's z-up axes
    want_rgb = art.palette[art.indices[x, y, z] - 1]
    # Goxel centres the model: positions agree up to one translation
    key = lambda p, c: sorted(map(tuple, np.hstack([p - p.min(0), c])))  # noqa: E731
    assert len(rows) == art.filled_count
    assert key(got, got_rgb) == key(want, want_rgb.astype(int))


def test_every_file_has_scene_graph_layer_materials_and_notes_when_named(tmp_path):
    art = _random_art(colors=10)
    names = [f"colour {i}" if i != 3 else None for i in range(10)]
    write_vox(art, tmp_path / "n.vox", names=names)
    chunks = _main_chunks((tmp_path / "n.vox").read_bytes())
    tags = [t for t, _ in chunks]
    assert tags[:2] == [b"SIZE", b"XYZI"]
    assert tags[2:6] == [b"nTRN", b"nGRP", b"nTRN", b"nSHP"]  # root > group > model transform
    assert tags[6:8] == [b"LAYR", b"RGBA"]
    assert tags[8:] == [b"MATL"] * 10 + [b"NOTE"]
    matl = [struct.unpack_from("<i", c)[0] for t, c in chunks if t == b"MATL"]
    assert matl == list(range(1, 11))
    note = chunks[-1][1]
    notes, _ = _strings(note, 4, struct.unpack_from("<i", note)[0])
    assert len(notes) == 32  # one per palette row of 8, the last row first
    assert notes[31] == "colour 0, colour 1, colour 2, -, colour 4, colour 5, colour 6, colour 7"
    assert notes[30] == "colour 8, colour 9" and notes[:30] == [""] * 30
    write_vox(art, tmp_path / "plain.vox")  # no names: no NOTE, the rest as before
    assert b"NOTE" not in [t for t, _ in _main_chunks((tmp_path / "plain.vox").read_bytes())]
    back = read_vox(tmp_path / "n.vox")
    np.testing.assert_array_equal(back.indices, art.indices)


def test_upright_orientation(tmp_path):
    idx = np.zeros((2, 3, 2), np.uint8)
    idx[0, 2, 1] = 1  # top, front-left voxel
    art = VoxelArt(idx, [[255, 0, 0]])
    path = tmp_path / "o.vox"
    write_vox(art, path)
    size, xyzi = [c for t, c in _main_chunks(path.read_bytes()) if t in (b"SIZE", b"XYZI")]
    assert struct.unpack("<3i", size) == (2, 2, 3)  # MagicaVoxel is z-up
    assert struct.unpack("<i4B", xyzi) == (1, 0, 0, 2, 1)  # left, front (-y), top (z up)


def test_own_reader_round_trip(tmp_path):
    art = _random_art(shape=(3, 9, 6), colors=200, seed=1)
    path = tmp_path / "r.vox"
    write_vox(art, path)
    back = read_vox(path)
    np.testing.assert_array_equal(back.indices, art.indices)
    np.testing.assert_array_equal(back.palette, art.palette)


@pytest.mark.parametrize("shape", [(257, 2, 3), (3, 300, 520)])
def test_large_grid_split_into_models_round_trips(tmp_path, shape):
    rng = np.random.default_rng(2)
    idx = (rng.random(shape) < 0.01).astype(np.uint8) * rng.integers(1, 4, shape).astype(np.uint8)
    idx[0, 0, 0] = idx[-1, -1, -1] = 3  # corners pin the extent
    art = VoxelArt(idx, [[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    path = tmp_path / "big.vox"
    write_vox(art, path)
    data = path.read_bytes()
    blocks = int(np.prod([-(-n // 256) for n in shape]))
    assert data.count(b"SIZE") == blocks and data.count(b"nSHP") == blocks
    back = read_vox(path)
    np.testing.assert_array_equal(back.indices, art.indices)
    np.testing.assert_array_equal(back.palette, art.palette)


@pytest.mark.parametrize("cut", [3, 20, 40, -500, -1])
def test_truncated_file_is_an_input_error(tmp_path, cut):
    path = tmp_path / "t.vox"
    write_vox(_random_art(), path)
    data = path.read_bytes()
    path.write_bytes(data[:cut])
    with pytest.raises(InputError) as err:
        read_vox(path)
    assert "\n" not in str(err.value)


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    from taichi_voxify.export.atomic import atomic_path

    path = tmp_path / "k.vox"
    write_vox(_random_art(), path)
    before = path.read_bytes()
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"half")
            raise RuntimeError("crash in the middle of writing")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["k.vox"]


def test_written_files_get_the_usual_permissions(tmp_path):
    import os
    import stat

    from taichi_voxify.export.atomic import atomic_dir

    old = os.umask(0o022)
    try:
        write_vox(_random_art(), tmp_path / "p.vox")
        with atomic_dir(tmp_path / "d"):
            pass
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "p.vox").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755


def test_npz_that_is_not_voxel_art_is_refused_in_one_line(tmp_path):
    import numpy as np

    from taichi_voxify import InputError, VoxelArt

    np.savez(tmp_path / "other.npz", something=np.zeros(3))
    (tmp_path / "junk.npz").write_bytes(b"not a zip file at all")
    for name in ("other.npz", "junk.npz"):
        try:
            VoxelArt.load_npz(tmp_path / name)
        except InputError as exc:
            assert "taichi_voxify" in str(exc) and "\n" not in str(exc)
        else:
            raise AssertionError(f"{name} was accepted")
