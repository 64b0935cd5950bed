import numpy as np
import pytest

from taichi_voxify import InputError, VoxelArt
from taichi_voxify.export import read_vox, write_vox


def _random_art(shape=(5, 7, 4), colors=6, seed=0):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, colors + 1, size=shape).astype(np.uint8)
    pal = rng.integers(0, 256, size=(colors, 3)).astype(np.uint8)
    return VoxelArt(idx, pal)


def test_independent_reader_sees_every_voxel_and_colour(tmp_path):
    parser = pytest.importorskip("pyvox.parser", reason="py-vox-io (the [test] extra) not installed")
    art = _random_art()
    path = tmp_path / "a.vox"
    write_vox(art, path)
    vox = parser.VoxParser(str(path)).parse()
    (model,) = vox.models
    X, Y, Z = art.shape
    assert tuple(model.size) == (X, Z, Y)  # MagicaVoxel is z-up
    got = np.zeros(art.shape, np.uint8)
    for v in model.voxels:  # vox (x, y, z) = ours (x, Z-1-z, y)
        got[v.x, v.z, Z - 1 - v.y] = v.c
    np.testing.assert_array_equal(got, art.indices)
    # the format's RGBA entry j holds colour index j + 1 (pyvox keeps that raw list)
    rgb = np.array([tuple(c)[:3] for c in vox.palette[: len(art.palette)]], np.uint8)
    np.testing.assert_array_equal(rgb, art.palette)


def test_upright_orientation(tmp_path):
    idx = np.zeros((2, 3, 2), np.uint8)
    idx[0, 2, 1] = 1  # top, front-left voxel
    art = VoxelArt(idx, [[255, 0, 0]])
    path = tmp_path / "o.vox"
    write_vox(art, path)
    parser = pytest.importorskip("pyvox.parser")
    (v,) = parser.VoxParser(str(path)).parse().models[0].voxels
    assert (v.x, v.y, v.z) == (0, 0, 2)  # left, front (-y in MagicaVoxel), top (z up)


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
