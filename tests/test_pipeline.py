"""convert(): the API end to end on a real mesh, its reproducibility and its Taichi interop."""
import numpy as np
import pytest

from conftest import mesh_path
import taichi_voxify
from taichi_voxify import OptionError, ResourceError
from taichi_voxify.pipeline import check_memory, run_pipeline


@pytest.fixture(scope="module")
def fox_runs():
    kw = dict(resolution=16, colors=5, preset="test", clip="off", seed=7)
    return [run_pipeline(str(mesh_path("Fox.glb")), **kw) for _ in range(2)]


def test_same_seed_same_voxels(fox_runs):
    a, b = (c.art for c in fox_runs)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.palette, b.palette)


def test_every_voxel_is_a_palette_colour(fox_runs):
    conv = fox_runs[0]
    art = conv.art
    assert art.filled_count > 0
    assert set(np.unique(art.indices)) <= set(range(len(art.palette) + 1))
    assert len(art.colors_used()) <= 5
    # the voxel colours are exactly the palette colours
    colours = {tuple(c) for c in art.rgb()[art.filled]}
    assert colours <= {tuple(c) for c in art.palette}


def test_shape_follows_the_mesh(fox_runs):
    assert fox_runs[0].metrics["iou_mean"] >= 0.85


def test_timings_and_metadata(fox_runs):
    meta = fox_runs[0].art.metadata
    assert {"load", "render", "stage1", "pixel_art", "palette", "stage2", "total"} <= set(
        meta["timings_s"])
    assert meta["seed"] == 7 and meta["resolution"] == 16


def test_taichi_field_round_trip(fox_runs):
    art = fox_runs[0].art
    field = art.to_field()
    back = taichi_voxify.VoxelArt.from_field(field, art.palette)
    np.testing.assert_array_equal(back.indices, art.indices)
    pal = art.palette_field().to_numpy()
    np.testing.assert_allclose(pal * 255, art.palette, atol=1e-3)


def test_convert_returns_voxel_art():
    art = taichi_voxify.convert(str(mesh_path("BoxVertexColors.glb")), resolution=8, colors=3,
                                preset="test", clip="off")
    assert isinstance(art, taichi_voxify.VoxelArt) and art.shape == (8, 8, 8)
    # a cube fills its whole box
    assert art.filled_count >= 0.9 * 8 ** 3 - 6 * 8 * 8


@pytest.mark.parametrize("kw", [dict(resolution=4), dict(colors=1), dict(colors=40),
                                dict(preset="nope"), dict(depth_source="laser")])
def test_impossible_options(kw):
    args = dict(resolution=16, colors=4, preset="test", clip="off")
    args.update(kw)
    with pytest.raises(OptionError):
        run_pipeline(str(mesh_path("alien.glb")), **args)


def test_too_large_grid_is_refused_with_estimate():
    with pytest.raises(ResourceError, match="GB"):
        check_memory(256, 32, budget_gb=1.0)
