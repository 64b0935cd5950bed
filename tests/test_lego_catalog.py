"""The shipped LEGO colour table agrees, row by row, with the reference data shipped beside it."""
import csv

from taichi_voxify.color import hex_to_rgb
from taichi_voxify.lego import catalog
from taichi_voxify.palette import named_palette

# BrickLink names these four colours differently from Rebrickable (and LEGO)
BRICKLINK_RENAMES = {"Vibrant Yellow": "Neon Yellow", "Warm Tan": "Medium Tan",
                     "Sienna Brown": "Sienna", "Umber Brown": "Umber"}
NOT_SOLID = ("Metallic", "Pearl", "Chrome", "Glow", "Flat Silver")


def _reference(name):
    with open(catalog.DATA_DIR / name, newline="") as f:
        return list(csv.DictReader(f))


def test_every_colour_row_agrees_with_rebrickable_and_bricklink():
    rebrickable = {int(r["id"]): r for r in _reference("rebrickable_colors.csv")}
    bricklink = {}
    for r in _reference("bricklink_colors.csv"):  # the first row of a LEGO number is the solid one
        bricklink.setdefault(int(r["lego_color_number"]), r)
    colors = catalog.all_colors()
    for c in colors:
        ref = rebrickable[c.rebrickable_id]
        assert c.name == ref["name"] and c.rgb == hex_to_rgb(ref["rgb"]), c
        bl = bricklink[c.lego_number]
        assert c.bricklink_id == int(bl["bricklink_color_id"]), c
        assert bl["bricklink_name"] == BRICKLINK_RENAMES.get(c.name, c.name), c
    for attr in ("name", "rebrickable_id", "lego_number", "bricklink_id"):
        assert len({getattr(c, attr) for c in colors}) == len(colors), attr
    # the two wrong ids: Yellowish Green is 158 and Olive Green 326 at Rebrickable
    assert (catalog.color_named("Yellowish Green").rebrickable_id,
            catalog.color_named("Olive Green").rebrickable_id) == (158, 326)
    assert (catalog.color_named("Black").lego_number,
            catalog.color_named("Black").bricklink_id) == (26, 11)


def test_every_current_solid_colour_is_listed():
    current_solid = {r["name"] for r in _reference("rebrickable_colors.csv")
                     if r["is_trans"] == "False" and r["y2"] == "2026"
                     and not any(word in r["name"] for word in NOT_SOLID)}
    listed = {c.name for c in catalog.all_colors()}
    assert listed == current_solid
    assert {"Reddish Orange", "Vibrant Yellow", "Warm Tan", "Warm Pink", "Blue Violet",
            "Medium Brown"} <= listed


def test_buildable_colours_are_those_with_a_one_stud_part():
    buildable = {c.name for c in catalog.buildable_colors()}
    unbuildable = {c.name for c in catalog.all_colors()} - buildable
    assert unbuildable == {"Medium Brown", "Sienna Brown", "Umber Brown", "Ochre Yellow",
                           "Blue Violet"}
    warm_tan = catalog.produced(catalog.color_named("Warm Tan"))
    assert warm_tan and all(kind == "plate" for kind, _, _ in warm_tan)
    assert [n for n, _, _ in named_palette("lego")] == [c.name for c in catalog.buildable_colors()]


def test_part_table_matches_the_produced_pairs():
    parts = catalog.parts()
    assert len(parts) == 22
    assert {r["part_num"] for r in _reference("part_colors.csv")} == \
        {p.part_num for p in parts.values()}
    for (kind, w, l), p in parts.items():
        assert p.name == f"{kind.capitalize()} {w} x {l}" and w <= l
    dark_brown = catalog.produced(catalog.color_named("Dark Brown"))
    assert ("brick", 1, 1) in dark_brown and ("brick", 2, 8) not in dark_brown
