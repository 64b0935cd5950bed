import csv

import numpy as np
import pytest
from PIL import Image

from taichi_voxify import VoxelArt
from taichi_voxify.export.lego import BRICKS, build_plan, map_to_lego, tile_layer, write_lego
from taichi_voxify.palette import named_palette

LEGO = named_palette("lego")


def _lego_rgb(name):
    return next(rgb for n, _, rgb in LEGO if n == name)


RED, BLUE, YELLOW = _lego_rgb("Red"), _lego_rgb("Blue"), _lego_rgb("Yellow")


def _assert_exact_cover(plan, art):
    cover = np.zeros(art.shape, np.int64)
    for b in plan.bricks:
        assert tuple(sorted((b.size_x, b.size_z))) in BRICKS
        cover[b.x: b.x + b.size_x, b.layer, b.z: b.z + b.size_z] += 1
        cells = art.indices[b.x: b.x + b.size_x, b.layer, b.z: b.z + b.size_z]
        assert len(np.unique(cells)) == 1 and cells[0, 0] > 0  # one palette colour, all filled
        assert plan.palette_to_color[cells[0, 0] - 1] == b.color
    np.testing.assert_array_equal(cover, (art.indices > 0).astype(np.int64))


def test_random_grid_covered_exactly_once_by_bricks_of_its_colour():
    rng = np.random.default_rng(0)
    idx = rng.integers(1, 4, size=(7, 5, 9)).astype(np.uint8)
    idx[rng.random(idx.shape) < 0.2] = 0
    idx[:, :, :4] = np.where(idx[:, :, :4] > 0, 1, 0)  # a large one-colour area too
    art = VoxelArt(idx, [RED, BLUE, YELLOW])
    plan = build_plan(art)
    _assert_exact_cover(plan, art)
    assert sum(plan.bricks_per_layer()) == plan.brick_count


def test_solid_block_uses_big_interlocking_bricks():
    art = VoxelArt(np.ones((8, 3, 8), np.uint8), [RED])
    plan = build_plan(art)
    _assert_exact_cover(plan, art)
    assert plan.brick_count == 12  # four 2x8 bricks per layer
    assert plan.components == 1
    long_x = [sum(b.size_x > b.size_z for b in plan.bricks if b.layer == y) for y in range(3)]
    assert long_x[0] in (0, 4) and long_x[1] == 4 - long_x[0]  # layers alternate direction


def test_fewer_bricks_than_voxels_and_all_standard_in_an_odd_block():
    art = VoxelArt(np.ones((5, 2, 7), np.uint8), [BLUE])
    plan = build_plan(art)
    _assert_exact_cover(plan, art)
    assert plan.brick_count < art.filled_count / 4


def test_two_islands_are_two_pieces():
    idx = np.zeros((6, 3, 2), np.uint8)
    idx[0:2, :, :] = 1  # one tower
    idx[4:6, 0:2, :] = 1  # another, apart
    plan = build_plan(VoxelArt(idx, [RED]))
    s = plan.summary()
    assert s["connected_pieces"] == 2 and s["disconnected_parts"] == 1
    assert s["bricks_not_in_largest_part"] == 2  # the shorter tower: one 2x2 per layer
    assert s["fewest_pieces_possible"] == 2


def test_side_by_side_colours_join_only_through_a_layer_that_spans_them():
    idx = np.zeros((2, 3, 1), np.uint8)
    idx[0, :2, 0], idx[1, :2, 0] = 1, 2  # two one-stud columns of two colours, touching
    plan = build_plan(VoxelArt(idx, [RED, BLUE]))
    assert plan.components == 2  # nothing holds the columns together
    idx[:, 2, 0] = 1  # a 1x2 red brick on top of both
    plan = build_plan(VoxelArt(idx, [RED, BLUE]))
    assert plan.components == 1


def test_repair_recuts_bricks_to_join_a_stray_column():
    idx = np.zeros((3, 3, 2), np.uint8)  # A = 1, B = 2
    idx[0, 0:3, 0] = 1  # a thin A column at x=0, z=0
    idx[1:3, 0, 0:2] = 2  # B below...
    idx[1:3, 1, 0:2] = 1  # ...a 2x2 of A beside the column in layer 1
    art = VoxelArt(idx, [RED, BLUE])
    import taichi_voxify.export.lego as lego

    greedy, _ = lego.tile_layers(np.where(idx > 0, idx.astype(np.int64) - 1, -1))
    layers = lego._layer_lists(greedy, 3)
    assert lego._pieces(layers, idx.shape) == 2  # largest-first leaves the column apart
    plan = build_plan(art)
    _assert_exact_cover(plan, art)
    assert plan.components == 1 == plan.fewest_possible
    assert any(b.layer == 1 and max(b.size_x, b.size_z) == 3 for b in plan.bricks)


def test_tile_layer_prefers_the_asked_orientation():
    labels = np.zeros((4, 4), np.int64)
    along_x = tile_layer(labels, long_along_x=True)
    along_z = tile_layer(labels, long_along_x=False)
    assert along_x == [(0, 0, 4, 2), (0, 2, 4, 2)]
    assert along_z == [(0, 0, 2, 4), (2, 0, 2, 4)]


def test_palette_maps_to_nearest_lego_colour():
    near_red = np.array(RED) + [3, -4, 2]
    idx, de = map_to_lego(np.array([near_red, YELLOW], np.uint8))
    assert [LEGO[i][0] for i in idx] == ["Red", "Yellow"]
    assert de[0] < 3 and de[1] == pytest.approx(0, abs=1e-9)


def test_write_lego_bom_and_images(tmp_path):
    idx = np.zeros((4, 3, 4), np.uint8)
    idx[:, 0, :] = 1
    idx[1:3, 1:, 1:3] = 2
    art = VoxelArt(idx, [RED, YELLOW])
    plan = build_plan(art)
    out = tmp_path / "cow_lego"
    names = write_lego(plan, out)
    assert names == ["bom.csv", "layer_01.png", "layer_02.png", "layer_03.png", "overview.png"]
    with open(out / "bom.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sum(int(r["count"]) for r in rows) == plan.brick_count
    assert {r["colour name"] for r in rows} == {"Red", "Yellow"}
    assert {r["colour id"] for r in rows} == {str(i) for n, i, _ in LEGO if n in ("Red", "Yellow")}
    layer2 = np.asarray(Image.open(out / "layer_02.png").convert("RGB"))
    assert (np.abs(layer2.astype(int) - YELLOW).sum(-1) < 10).any()  # this layer's bricks
    faded = tuple(int(255 - 0.25 * (255 - v)) for v in RED)
    assert (np.abs(layer2.astype(int) - faded).sum(-1) < 6).any()  # the layer below, faded
    assert not (np.abs(layer2.astype(int) - RED).sum(-1) < 10).any()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cow_lego"]  # no temporary left


def test_too_large_grid_refused_with_a_one_line_option_error():
    from taichi_voxify import OptionError

    with pytest.raises(OptionError, match="--res 128"):
        build_plan(VoxelArt(np.zeros((129, 1, 1), np.uint8), [RED]))
