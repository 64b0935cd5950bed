import csv
from xml.etree import ElementTree

import numpy as np
import pytest

from taichi_voxify import OptionError, VoxelArt
from taichi_voxify.lego import build_plan, catalog, map_to_lego, write_lego
from taichi_voxify.lego.tiling import tile_layer, usable_parts

LEGO = catalog.buildable_colors()


def _lego_rgb(name):
    return catalog.color_named(name).rgb


RED, BLUE, YELLOW = _lego_rgb("Red"), _lego_rgb("Blue"), _lego_rgb("Yellow")


def _assert_exact_cover(plan, art):
    cover = np.zeros(art.shape, np.int64)
    for b in plan.bricks:
        assert b.part.key in catalog.produced(plan.colors[b.color])
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
    from taichi_voxify.lego import tiling

    allowed = [usable_parts(catalog.color_named(n)) for n in ("Red", "Blue")]
    layers = tiling.tile_layers(np.where(idx > 0, idx.astype(np.int64) - 1, -1), allowed)
    assert tiling.count_pieces(layers, idx.shape) == 2  # largest-first leaves the column apart
    plan = build_plan(art)
    _assert_exact_cover(plan, art)
    assert plan.components == 1 == plan.fewest_possible
    assert any(b.layer == 1 and max(b.size_x, b.size_z) == 3 for b in plan.bricks)


def test_tile_layer_prefers_the_asked_orientation():
    labels = np.zeros((4, 4), np.int64)
    allowed = [usable_parts(catalog.color_named("Red"))]
    along_x = tile_layer(labels, allowed, long_along_x=True)
    along_z = tile_layer(labels, allowed, long_along_x=False)
    assert along_x == [(0, 0, 4, 2, "brick"), (0, 2, 4, 2, "brick")]
    assert along_z == [(0, 0, 2, 4, "brick"), (2, 0, 2, 4, "brick")]


def test_palette_maps_to_nearest_lego_colour():
    near_red = np.array(RED) + [3, -4, 2]
    idx, de = map_to_lego(np.array([near_red, YELLOW], np.uint8))
    assert [LEGO[i].name for i in idx] == ["Red", "Yellow"]
    assert de[0] < 3 and de[1] == pytest.approx(0, abs=1e-9)


def _read_bom(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_write_lego_files_bom_ids_and_shopping_lists_agree(tmp_path):
    idx = np.zeros((4, 3, 4), np.uint8)
    idx[:, 0, :] = 1
    idx[1:3, 1:, 1:3] = 2
    art = VoxelArt(idx, [RED, YELLOW])
    plan = build_plan(art)
    out = tmp_path / "cow_lego"
    names = write_lego(plan, out)
    assert names == ["bom.csv", "rebrickable.csv", "bricklink.xml", "instructions.html",
                     "overview.png"]
    bom = _read_bom(out / "bom.csv")
    assert sum(int(r["count"]) for r in bom) == plan.brick_count
    red, yellow = catalog.color_named("Red"), catalog.color_named("Yellow")
    assert {(r["color_name"], r["rebrickable_color_id"], r["lego_color_number"],
             r["bricklink_color_id"]) for r in bom} == \
        {("Red", "4", "21", "5"), ("Yellow", "14", "24", "3")}
    assert {r["use"] for r in bom} == {"model"}
    wanted = {}
    for r in bom:
        key = (r["part_num"], r["rebrickable_color_id"])
        wanted[key] = wanted.get(key, 0) + int(r["count"])
    with open(out / "rebrickable.csv", newline="") as f:
        rebrickable = list(csv.DictReader(f))
    assert list(rebrickable[0]) == ["Part", "Color", "Quantity"]
    assert {(r["Part"], r["Color"]): int(r["Quantity"]) for r in rebrickable} == wanted
    by_bricklink = {str(c.bricklink_id): str(c.rebrickable_id) for c in (red, yellow)}
    root = ElementTree.parse(out / "bricklink.xml").getroot()
    assert root.tag == "INVENTORY"
    items = {(i.findtext("ITEMID"), by_bricklink[i.findtext("COLOR")]): int(i.findtext("MINQTY"))
             for i in root.findall("ITEM")}
    assert {i.findtext("ITEMTYPE") for i in root.findall("ITEM")} == {"P"}
    assert items == wanted and len(root.findall("ITEM")) == len(wanted)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cow_lego"]  # no temporary left


def test_too_large_grid_refused_with_a_one_line_option_error():
    with pytest.raises(OptionError, match="--res 128"):
        build_plan(VoxelArt(np.zeros((129, 1, 1), np.uint8), [RED]))


def test_every_colour_plans_only_parts_produced_in_it():
    rng = np.random.default_rng(1)
    idx = np.ones((10, 2, 9), np.uint8)
    idx[rng.random(idx.shape) < 0.12] = 0  # holes, so that every size has a place somewhere
    used_sizes = set()
    for color in catalog.buildable_colors():
        art = VoxelArt(idx, [color.rgb])
        plan = build_plan(art)
        assert [c.name for c in plan.colors] == [color.name]
        _assert_exact_cover(plan, art)
        made = catalog.produced(color)
        assert all(line.part.key in made for line in plan.bom()), color.name
        used_sizes |= {line.part.key for line in plan.bom()}
    assert ("brick", 2, 8) in used_sizes and ("brick", 1, 1) in used_sizes
    dark_brown = build_plan(VoxelArt(np.ones((8, 1, 2), np.uint8), [_lego_rgb("Dark Brown")]))
    assert {b.part.name for b in dark_brown.bricks} == {"Brick 2 x 6", "Brick 2 x 2"}  # no 2 x 8


def test_a_colour_made_only_as_plates_is_built_from_stacks_of_three_plates():
    warm_tan = catalog.color_named("Warm Tan")
    art = VoxelArt(np.ones((4, 2, 3), np.uint8), [warm_tan.rgb])
    plan = build_plan(art)
    _assert_exact_cover(plan, art)
    assert {b.kind for b in plan.bricks} == {"plate"}
    lines = plan.bom()
    assert all(line.part.kind == "plate" and line.part.key in catalog.produced(warm_tan)
               for line in lines)
    assert sum(line.count for line in lines) == 3 * plan.brick_count


def _overhang():
    """A 2x2 red tower two layers tall with a blue 2x2 ledge beside its top layer, joined to
    the tower only by a red 2x4 layer on top: the ledge hangs in the air while building."""
    idx = np.zeros((4, 4, 2), np.uint8)
    idx[0:2, 0:3, :] = 1
    idx[2:4, 2, :] = 2
    idx[:, 3, :] = 1
    return VoxelArt(idx, [RED, BLUE])


def test_bricks_hanging_in_the_air_are_flagged_per_layer_and_support_holds_them():
    art = _overhang()
    plan = build_plan(art)
    s = plan.summary()
    assert s["connected_pieces"] == 1
    assert s["floating_bricks"] == 1 and s["floating_bricks_per_layer"] == {3: 1}
    assert "1 brick hangs in the air" in s["advice"] and "--lego-support" in s["advice"]
    held = build_plan(art, support=True)
    hs = held.summary()
    assert hs["floating_bricks"] == 0 and hs["connected_pieces"] == 1
    support = [b for b in held.bricks if b.support]
    assert support and all(held.colors[b.color].name == "Light Bluish Gray" for b in support)
    for b in support:  # only in cells the model leaves empty, under the ledge
        assert not art.indices[b.x: b.x + b.size_x, b.layer, b.z: b.z + b.size_z].any()
    model = [b for b in held.bricks if not b.support]
    cover = np.zeros(art.shape, np.int64)
    for b in model:
        cover[b.x: b.x + b.size_x, b.layer, b.z: b.z + b.size_z] += 1
    np.testing.assert_array_equal(cover, (art.indices > 0).astype(np.int64))
    lines = held.bom()
    assert [l for l in lines if not l.support] == plan.bom()  # the model's parts stay the same
    assert hs["support_parts"] == sum(l.count for l in lines if l.support) == len(support)
    assert [l.support for l in lines] == sorted(l.support for l in lines)  # support listed last


def test_separate_pieces_are_reported_and_support_bridges_them():
    idx = np.zeros((2, 5, 2), np.uint8)
    idx[:, 0:2, :] = 1
    idx[:, 4, :] = 2  # a loose slab two layers above the block
    art = VoxelArt(idx, [RED, BLUE])
    s = build_plan(art).summary()
    assert s["connected_pieces"] == 2 and s["bridgeable_pieces"] == 1
    assert "2 separate pieces" in s["advice"] and "joins 1 of them" in s["advice"]
    joined = build_plan(art, support=True)
    assert joined.components == 1 and joined.summary()["floating_bricks"] == 0
    assert sum(b.support for b in joined.bricks) == 2  # one 2x2 per empty layer


def test_brick_proportions_resample_the_height_by_five_sixths():
    idx = np.zeros((2, 12, 2), np.uint8)
    idx[:, :6, :] = 1
    idx[:, 6:, :] = 2
    art = VoxelArt(idx, [RED, BLUE])
    cube, brick = build_plan(art), build_plan(art, proportions="brick")
    assert cube.shape == (2, 12, 2) and brick.shape == (2, 10, 2)
    layers = [brick.colors[b.color].name for b in sorted(brick.bricks, key=lambda b: b.layer)]
    assert layers == ["Red"] * 5 + ["Blue"] * 5  # each half keeps its share of the height
    assert brick.summary()["height_studs"] == 12.0 == 12 * 1.0
    with pytest.raises(OptionError, match="cube or brick"):
        build_plan(art, proportions="tall")


def test_command_line_summary_reports_pieces_and_offers_support():
    from taichi_voxify.cli import summary_table

    idx = np.zeros((2, 5, 2), np.uint8)
    idx[:, 0:2, :] = 1
    idx[:, 4, :] = 2
    report = dict(result=dict(shape=[2, 5, 2], voxels_filled=12, colors_used=2, palette=[]),
                  metrics=dict(iou_mean=1.0, color_de76=0.0), timings_s={}, files={},
                  exports=dict(lego=build_plan(VoxelArt(idx, [RED, BLUE])).summary()))
    line = next(l for l in summary_table(report, "out").splitlines() if l.startswith("LEGO"))
    assert "2 separate pieces" in line and "--lego-support joins 1" in line


def test_empty_art_gives_an_empty_plan_and_files(tmp_path):
    plan = build_plan(VoxelArt(np.zeros((4, 4, 4), np.uint8), [RED]), support=True)
    s = plan.summary()
    assert s["parts"] == 0 and s["connected_pieces"] == 0 and "nothing to build" in s["advice"]
    write_lego(plan, tmp_path / "empty_lego")
    assert (tmp_path / "empty_lego" / "rebrickable.csv").read_text() == "Part,Color,Quantity\n"


def test_brick_proportions_keep_every_column_of_a_thin_slope():
    idx = np.zeros((12, 12, 1), np.uint8)
    idx[np.arange(12), np.arange(12), 0] = 1  # a one-voxel staircase
    plan = build_plan(VoxelArt(idx, [RED]), proportions="brick")
    assert plan.shape[1] == 10
    assert {x for b in plan.bricks for x in range(b.x, b.x + b.size_x)} == set(range(12))
