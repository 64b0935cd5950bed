"""LEGO build plan: the voxel art as real parts in real colours, layer by layer.

One voxel is one 1 x 1 brick cell, 8 mm wide and 9.6 mm (1.2 studs) tall. Proportions "cube"
keeps one layer per voxel, so the model stands 1.2 times taller than the voxel art; "brick"
resamples the height by 5/6 first, so it keeps its shape. Layers run along y (bottom first); a
part's footprint lies in the x-z plane. The palette is mapped to the nearest buildable LEGO
colour (CIE Lab); palette entries that land on the same colour share parts. Tiling: tiling.py;
which parts hold together: connectivity.py; hidden support: support.py.
"""
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..color import delta_e76, srgb_to_lab
from ..errors import OptionError
from . import catalog
from .connectivity import connected_pieces, fewest_pieces_possible, floating_bricks
from .support import bridge_columns, column_cells, holding_columns
from .tiling import grid_from_layers, repair_pieces, tile_layers, usable_parts

MAX_SIDE = 128  # studs; a 128-stud model is already about a metre wide
PROPORTIONS = ("cube", "brick")
BRICK_HEIGHT = 1.2  # studs


@dataclass
class Brick:
    """A placed part: a brick, or a stack of three equal plates (kind "plate")."""

    layer: int  # y
    x: int  # lowest x of the footprint
    z: int  # lowest z of the footprint
    size_x: int
    size_z: int
    color: int  # index into LegoPlan.colors
    kind: str = "brick"
    support: bool = False  # hidden support, not part of the model's look

    @property
    def part(self):
        return catalog.parts()[(self.kind, *sorted((self.size_x, self.size_z)))]

    @property
    def quantity(self):
        """Parts to buy for this placement: one brick, or three plates."""
        return 3 if self.kind == "plate" else 1


@dataclass(frozen=True)
class BomLine:
    part: catalog.Part
    color: catalog.LegoColor
    count: int
    support: bool


@dataclass
class LegoPlan:
    shape: tuple  # (X, Y, Z) of the planned grid (Y resampled for proportions "brick")
    colors: list  # [LegoColor] the plan uses; the support colour last when there is support
    palette_to_color: np.ndarray  # (K,) index into colors for each palette entry, -1 unused
    palette_delta_e: np.ndarray  # (K,) Lab distance of each palette entry to its LEGO colour
    bricks: list  # [Brick]
    brick_grid: np.ndarray  # (X, Y, Z) int32 brick number, -1 where empty
    component: np.ndarray  # (B,) connected piece of each brick, 0 = the largest
    fewest_possible: int = 1  # pieces no tiling can avoid (colour borders that run straight up)
    proportions: str = "cube"
    name: str = "voxel art"
    metadata: dict = field(default_factory=dict)

    @property
    def brick_count(self):
        return len(self.bricks)

    @property
    def voxel_count(self):
        return int(sum(b.size_x * b.size_z for b in self.bricks if not b.support))

    @property
    def components(self):
        return int(self.component.max(initial=-1)) + 1

    def bricks_per_layer(self):
        counts = np.bincount([b.layer for b in self.bricks], minlength=self.shape[1])
        return [int(c) for c in counts]

    def floating(self):
        """Bool per brick: hangs in the air when it is placed, building bottom-up."""
        return floating_bricks(self.brick_grid, self.brick_count)

    def bom(self):
        """[BomLine] model parts first, then support; by colour name, then part number."""
        tally = Counter()
        for b in self.bricks:
            tally[(b.part, b.color, b.support)] += b.quantity
        lines = [BomLine(part, self.colors[c], n, support)
                 for (part, c, support), n in tally.items()]
        return sorted(lines, key=lambda l: (l.support, l.color.name, l.part.kind, l.part.width,
                                            l.part.length))

    def summary(self):
        """Numbers for the report: parts, connectivity, floating bricks, colour mapping."""
        outside = int(np.count_nonzero(self.component > 0))
        floating = self.floating()
        per_layer = Counter(b.layer + 1 for b, f in zip(self.bricks, floating) if f)
        bridgeable = len(bridge_columns(self.brick_grid, self.component))
        lines = self.bom()
        return dict(
            bricks=self.brick_count, voxels=self.voxel_count,
            parts=sum(l.count for l in lines),
            support_parts=sum(l.count for l in lines if l.support),
            bricks_per_voxel=round(sum(not b.support for b in self.bricks)
                                   / max(self.voxel_count, 1), 4),
            bricks_per_layer=self.bricks_per_layer(), connected_pieces=self.components,
            disconnected_parts=max(self.components - 1, 0), bricks_not_in_largest_part=outside,
            fewest_pieces_possible=self.fewest_possible, bridgeable_pieces=bridgeable,
            floating_bricks=int(floating.sum()),
            floating_bricks_per_layer={int(k): int(v) for k, v in sorted(per_layer.items())},
            proportions=self.proportions,
            height_studs=round(self.shape[1] * BRICK_HEIGHT, 1),
            colors=[dict(palette_index=i + 1, name=self.colors[c].name,
                         rebrickable_color_id=self.colors[c].rebrickable_id,
                         lego_color_number=self.colors[c].lego_number,
                         bricklink_color_id=self.colors[c].bricklink_id,
                         delta_e=round(float(d), 2))
                    for i, (c, d) in enumerate(zip(self.palette_to_color, self.palette_delta_e))
                    if c >= 0],
            advice=self.advice(floating=int(floating.sum()), bridgeable=bridgeable),
        )

    def advice(self, floating=None, bridgeable=None):
        """One line on what keeps the model from being one firm build, and what would help."""
        if not self.bricks:
            return "nothing to build: the voxel art is empty"
        if floating is None:
            floating = int(self.floating().sum())
        if bridgeable is None:
            bridgeable = len(bridge_columns(self.brick_grid, self.component))
        notes = []
        if self.components > 1:
            outside = int(np.count_nonzero(self.component > 0))
            notes.append(f"the model falls into {self.components} separate pieces "
                         f"({_count(outside, 'brick')} outside the largest)"
                         + (f"; --lego-support joins {bridgeable} of them with hidden bricks"
                            if bridgeable else "; no vertical column of hidden bricks joins them"))
        if floating:
            notes.append(f"{_count(floating, 'brick')} "
                         f"{'hangs' if floating == 1 else 'hang'} in the air while building"
                         + ("" if self.metadata.get("support") else
                            "; --lego-support holds them up with hidden bricks"))
        return "; ".join(notes) or "one piece; every brick rests on the layer below"


def _count(n, noun):
    return f"{n} {noun}{'' if n == 1 else 's'}"


# --- colours ----------------------------------------------------------------------------------
def map_to_lego(palette, lego_colors=None):
    """Nearest LEGO colour (CIE Lab, delta E 1976) of each palette entry.
    Returns (index into lego_colors per entry, its delta E)."""
    lego_colors = lego_colors or catalog.buildable_colors()
    lego_lab = srgb_to_lab(np.array([c.rgb for c in lego_colors], np.uint8))
    dist = delta_e76(srgb_to_lab(np.asarray(palette, np.uint8))[:, None], lego_lab[None])
    nearest = np.argmin(dist, axis=1)
    return nearest, dist[np.arange(len(nearest)), nearest]


def resample_height(label, proportions):
    """The label grid with its height scaled for the proportions: "brick" keeps 5 layers in 6,
    so the built model keeps its shape. Each new layer takes the old layer at its centre, and
    where that cell is empty the cell of the other old layer it overlaps, so that thin walls and
    slopes keep every column instead of losing one layer in six."""
    if proportions == "cube":
        return label
    Y = label.shape[1]
    new_y = max(1, int(round(Y / BRICK_HEIGHT)))
    step = Y / new_y
    out = np.empty((label.shape[0], new_y, label.shape[2]), label.dtype)
    for j in range(new_y):
        centre = min(int((j + 0.5) * step), Y - 1)
        layer = label[:, centre, :].copy()
        for other in range(int(j * step), min(int(np.ceil((j + 1) * step)), Y)):
            empty = layer < 0
            layer[empty] = label[:, other, :][empty]
        out[:, j, :] = layer
    return out


# --- the plan ---------------------------------------------------------------------------------
def check_lego_size(shape):
    """OptionError when a grid is too big for a build plan (call before a long conversion)."""
    if max(shape) > MAX_SIDE:
        raise OptionError(f"LEGO build plans are limited to {MAX_SIDE} voxels a side, this grid "
                          f"is {'x'.join(map(str, shape))}: use --res {MAX_SIDE} or less")


def _tile(label, allowed):
    layers = tile_layers(label, allowed)
    fewest = fewest_pieces_possible(label)
    layers = repair_pieces(label, allowed, layers, fewest)
    grid, count = grid_from_layers(label.shape, layers)
    return layers, grid, count, fewest


def build_plan(art, name=None, support=False, proportions="cube"):
    """Map `art` (a VoxelArt) to LEGO colours and cover every layer with parts produced in
    those colours. support: add hidden support columns (support.py) in Light Bluish Gray."""
    if proportions not in PROPORTIONS:
        raise OptionError(f"unknown LEGO proportions {proportions!r}: choose cube or brick")
    check_lego_size(art.shape)
    buildable = catalog.buildable_colors()
    nearest, de = map_to_lego(art.palette, buildable)
    used = np.unique(nearest[np.array(art.colors_used(), np.int64)]) if art.filled_count else []
    compact = {int(u): i for i, u in enumerate(used)}
    palette_to_color = np.array([compact.get(int(n), -1) for n in nearest], np.int64)
    colors = [buildable[int(u)] for u in used]
    index0 = np.maximum(art.indices.astype(np.int64) - 1, 0)
    label = resample_height(np.where(art.indices > 0, palette_to_color[index0], -1), proportions)
    allowed = [usable_parts(c) for c in colors]
    layers, grid, count, fewest = _tile(label, allowed)
    support_label = len(colors)  # a label of its own, so no part mixes model and support
    if support:
        # the model's parts stay as they are; support parts go only into empty cells, and each
        # support cell has support, a model part or the table under it, so none of them floats
        columns = bridge_columns(grid, connected_pieces(grid, count))
        columns += holding_columns(grid, floating_bricks(grid, count))
        cells = column_cells(label.shape, columns)
        if cells.any():
            support_color = catalog.color_named(catalog.SUPPORT_COLOR)
            colors.append(support_color)
            below = tile_layers(np.where(cells, 0, -1), [usable_parts(support_color)])
            layers = [model + extra for model, extra in zip(layers, below)]
            label = np.where(cells, support_label, label)
            grid, count = grid_from_layers(label.shape, layers)
    bricks = []
    for y, row in enumerate(layers):
        for x, z, sx, sz, kind in row:
            c = int(label[x, y, z])
            bricks.append(Brick(y, x, z, sx, sz, c, kind, support=c == support_label))
    return LegoPlan(
        shape=tuple(label.shape), colors=colors, palette_to_color=palette_to_color,
        palette_delta_e=de, bricks=bricks, brick_grid=grid, component=connected_pieces(grid, count),
        fewest_possible=fewest, proportions=proportions,
        name=name or art.metadata.get("name", "voxel art"),
        metadata={"support": bool(support), "front": art.metadata.get("front", "+z")})
