"""What LEGO makes: colours with their ids in each catalogue, plain parts, and which part exists
in which colour. Read from taichi_voxify/data/lego/ (sources in SOURCES.md there).

Three catalogues number colours differently: Rebrickable's colour id, LEGO's own colour number
and BrickLink's colour id (Black is 0, 26 and 11). Every colour carries all three, named.
"""
import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..color import hex_to_rgb

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "lego"
SUPPORT_COLOR = "Light Bluish Gray"  # hidden support bricks: neutral, made in every size


@dataclass(frozen=True)
class LegoColor:
    name: str  # Rebrickable's (and, but for four colours, BrickLink's) name
    rebrickable_id: int
    lego_number: int
    bricklink_id: int
    rgb: tuple


@dataclass(frozen=True)
class Part:
    part_num: str  # LEGO design id = Rebrickable part number
    bricklink_item: str
    kind: str  # "brick" (three plates tall) or "plate"
    width: int  # studs, width <= length
    length: int
    name: str

    @property
    def key(self):
        return (self.kind, self.width, self.length)


def _rows(name):
    with open(DATA_DIR / name, newline="") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


@lru_cache(maxsize=None)
def all_colors():
    """Every current solid LEGO colour, in the order of colors.csv."""
    return tuple(LegoColor(r["name"], int(r["rebrickable_color_id"]), int(r["lego_color_number"]),
                           int(r["bricklink_color_id"]), hex_to_rgb(r["hex"]))
                 for r in _rows("colors.csv"))


@lru_cache(maxsize=None)
def parts():
    """{(kind, width, length): Part} for the plain bricks and plates."""
    return {p.key: p for p in (Part(r["part_num"], r["bricklink_item"], r["kind"], int(r["width"]),
                                    int(r["length"]), r["name"]) for r in _rows("parts.csv"))}


@lru_cache(maxsize=None)
def _produced_by_color():
    by_num = {p.part_num: p.key for p in parts().values()}
    out = {}
    for r in _rows("part_colors.csv"):
        out.setdefault(int(r["color_id"]), set()).add(by_num[r["part_num"]])
    return {c: frozenset(keys) for c, keys in out.items()}


def produced(color):
    """The (kind, width, length) of every plain part LEGO has made in `color` (a LegoColor)."""
    return _produced_by_color().get(color.rebrickable_id, frozenset())


def can_fill_one_voxel(color):
    """True when a single voxel can be built in this colour: a 1 x 1 brick, or 1 x 1 plates."""
    return bool({("brick", 1, 1), ("plate", 1, 1)} & produced(color))


@lru_cache(maxsize=None)
def buildable_colors():
    """The colours a build plan (and the "lego" palette) offers: those that can fill any voxel."""
    return tuple(c for c in all_colors() if can_fill_one_voxel(c))


def color_named(name):
    return next(c for c in all_colors() if c.name == name)
