"""convert(): the API end to end on a real mesh, its reproducibility and its Taichi interop."""
import numpy as np
import pytest

from conftest import mesh_path
import taichi_voxify
from taichi_voxify import OptionError, ResourceError
from taichi_voxify.options import check_memory
from taichi_voxify.pipeline import run_pipeline


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
                                dict(preset="nope"), dict(depth_source="laser"),
                                dict(seed=-1), dict(seed=2**31), dict(seed=1.5)])
def test_impossible_options(kw):
    args = dict(resolution=16, colors=4, preset="test", clip="off")
    args.update(kw)
    with pytest.raises(OptionError):
        run_pipeline(str(mesh_path("alien.glb")), **args)


def test_too_large_grid_is_refused_with_estimate():
    with pytest.raises(ResourceError, match="GB"):
        check_memory(256, 32, budget_gb=1.0)


VIEW_FILES = ["px.png", "nx.png", "py.png", "ny.png", "pz.png", "nz.png"]


def _save_views(folder, images, masks):
    """The six views as RGBA PNGs named as a user's pixel-art folder would be."""
    from PIL import Image

    folder.mkdir()
    for img, mask, name in zip(images, masks, VIEW_FILES):
        rgba = np.concatenate([img, mask[..., None].astype(np.float32)], axis=-1)
        Image.fromarray((rgba * 255).round().astype(np.uint8), "RGBA").save(folder / name)


def test_own_pixel_art_drives_the_result(tmp_path):
    """Six user PNGs replace our generator: their colours become the palette and their
    silhouettes the shape."""
    from taichi_voxify.pipeline import prepare

    box = str(mesh_path("BoxVertexColors.glb"))
    n = 16
    # a red square in the middle of every view, transparent elsewhere
    masks = np.zeros((6, n, n), bool)
    masks[:, 4:12, 4:12] = True
    images = np.where(masks[..., None], np.array([0.8, 0.1, 0.1], np.float32), 1.0)
    images[:, 6:10, 6:10] = (0.1, 0.1, 0.8)  # a blue centre: a second colour
    _save_views(tmp_path / "art", images, masks)
    prep = prepare(box, resolution=n, colors=4, preset="test", clip="off",
                   pixel_art=str(tmp_path / "art"))
    assert {tuple(c) for c in prep.palette} == {(204, 26, 26), (26, 26, 204)}
    np.testing.assert_array_equal(prep.masks, masks)


def test_own_pixel_art_is_checked_before_stage1(tmp_path, monkeypatch):
    """A wrong pixel-art folder was only read after Stage 1 had run: minutes lost at N=64."""
    from taichi_voxify import InputError, stage1

    def no_stage1(*args, **kwargs):
        raise AssertionError("Stage 1 ran before the pixel art was checked")

    monkeypatch.setattr(stage1, "train_stage1", no_stage1)
    images = np.ones((6, 8, 8, 3), np.float32)
    masks = np.ones((6, 8, 8), bool)
    _save_views(tmp_path / "art", images, masks)
    with pytest.raises(InputError, match="cells=16"):
        run_pipeline(str(mesh_path("alien.glb")), resolution=16, colors=4, preset="test",
                     clip="off", pixel_art=str(tmp_path / "art"))
    with pytest.raises(InputError, match="does not exist"):
        run_pipeline(str(mesh_path("alien.glb")), resolution=16, colors=4, preset="test",
                     clip="off", pixel_art=str(tmp_path / "no_such_folder"))


@pytest.mark.parametrize("palette", ["lego", "pico8", "#ff0000,#00ff00,#0000ff,#ffffff"])
def test_named_and_hex_palettes_are_used_exactly(palette):
    from taichi_voxify.palette import named_palette_rgb, parse_hex_list

    art = taichi_voxify.convert(str(mesh_path("alien.glb")), resolution=16, colors=4,
                                palette=palette, preset="test", clip="off")
    allowed = (parse_hex_list(palette) if palette.startswith("#")
               else named_palette_rgb(palette))
    allowed = {tuple(int(v) for v in c) for c in np.asarray(allowed)}
    assert {tuple(int(v) for v in c) for c in art.palette} <= allowed
    assert 2 <= len(art.palette) <= 4 and art.filled_count > 0


def test_fill_reaches_stage2_and_leaves_no_closed_cavity():
    """fill_interior itself is tested in test_stage2.py; here: the option gets there and the
    voxel art has no enclosed empty voxels."""
    from scipy import ndimage

    conv = run_pipeline(str(mesh_path("spot/spot.obj")), resolution=16, colors=4,
                        preset="test", clip="off", fill=True)
    assert conv.stage2.metadata["config"]["fill"] is True
    filled = conv.art.filled
    assert filled.any()
    np.testing.assert_array_equal(ndimage.binary_fill_holes(filled), filled)


def test_large_grids_train_a_half_resolution_coarse_field():
    """Above Stage1Config.full_resolution_up_to the coarse field has N/2 voxels a side (the
    memory of Stage 1 at N=256), and Stage 2 still makes N^3 voxel art that follows the mesh
    about as well as from a full-resolution field."""
    from dataclasses import replace

    from taichi_voxify.stage1 import Stage1Config

    runs = {}
    for limit in (8, 0):
        config = replace(Stage1Config.preset("test"), full_resolution_up_to=limit)
        runs[limit] = run_pipeline(str(mesh_path("Fox.glb")), resolution=16, colors=5,
                                   clip="off", preset="test", seed=7, stage1_config=config)
    half, full = runs[8], runs[0]
    assert half.coarse.resolution == 8 and full.coarse.resolution == 16
    assert half.art.shape == full.art.shape == (16, 16, 16)
    assert half.metrics["iou_mean"] >= full.metrics["iou_mean"] - 0.05
    assert half.metrics["iou_mean"] >= 0.8
