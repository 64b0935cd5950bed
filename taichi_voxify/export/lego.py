"""LEGO build plan: the voxel art as standard bricks, layer by layer, with a bill of materials.

One voxel is one 1 x 1 brick cell (8 mm wide, 9.6 mm tall: the built model stands 1.2 times
taller than the voxel art). Layers run along y (bottom first); a brick's footprint lies in the
x-z plane. The palette is mapped to real LEGO colours (nearest in CIE Lab); palette entries that
land on the same LEGO colour share bricks.

Tiling is greedy, largest brick first; the long side of a brick prefers x on even layers and z
on odd ones, so seams cross between layers and the layers interlock. Each layer keeps the best
of eight greedy variants (orientation, scan corner) for connection to the layer below; then a
local search re-cuts bricks of stray pieces with a same-colour neighbour while that lowers the
number of pieces (down to the lower bound given by colour borders, within a work budget). Connectivity: two bricks
hold together when they are in touching layers and their footprints overlap (studs in tubes);
side-by-side bricks in one layer do not. Union-find over those contacts gives the separate
pieces a builder would end up with.
"""
import csv
import io
import os
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..color import delta_e76, srgb_to_lab
from ..errors import OptionError
from ..palette import named_palette
from ..voxelart import VoxelArt
from .atomic import atomic_dir

# (short side, long side) in studs -> LEGO design id of the plain brick
BRICKS = {(2, 8): "3007", (2, 6): "2456", (2, 4): "3001", (1, 8): "3008", (2, 3): "3002",
          (1, 6): "3009", (2, 2): "3003", (1, 4): "3010", (1, 3): "3622", (1, 2): "3004",
          (1, 1): "3005"}
MAX_SIDE = 128  # studs; a 128-stud model is already about a metre wide
# placement order: largest area first; on ties the 2-wide brick first (it binds more studs)
_ORDER = sorted(BRICKS, key=lambda s: (-s[0] * s[1], -s[0]))


@dataclass
class Brick:
    layer: int  # y
    x: int  # lowest x of the footprint
    z: int  # lowest z of the footprint
    size_x: int
    size_z: int
    color: int  # index into LegoPlan.colors

    @property
    def part(self):
        short, long = sorted((self.size_x, self.size_z))
        return BRICKS[(short, long)]

    @property
    def part_name(self):
        short, long = sorted((self.size_x, self.size_z))
        return f"Brick {short} x {long}"


@dataclass
class LegoPlan:
    shape: tuple  # (X, Y, Z) of the voxel art
    colors: list  # [(name, id, (r, g, b))] LEGO colours the plan uses
    palette_to_color: np.ndarray  # (K,) index into colors for each palette entry
    palette_delta_e: np.ndarray  # (K,) Lab distance of each palette entry to its LEGO colour
    bricks: list  # [Brick]
    brick_grid: np.ndarray  # (X, Y, Z) int32 brick number, -1 where empty
    component: np.ndarray  # (B,) connected piece of each brick, 0 = the largest
    fewest_possible: int = 1  # pieces no tiling can avoid (colour borders that run straight up)
    name: str = "voxel art"
    metadata: dict = field(default_factory=dict)

    @property
    def brick_count(self):
        return len(self.bricks)

    @property
    def voxel_count(self):
        return int(np.count_nonzero(self.brick_grid >= 0))

    @property
    def components(self):
        return int(self.component.max(initial=-1)) + 1

    def bricks_per_layer(self):
        counts = np.bincount([b.layer for b in self.bricks], minlength=self.shape[1])
        return [int(c) for c in counts]

    def bom(self):
        """[(part, colour name, colour id, count)] sorted by colour, then part."""
        tally = {}
        for b in self.bricks:
            key = (f"{b.part} {b.part_name}", b.color)
            tally[key] = tally.get(key, 0) + 1
        rows = [(part, self.colors[c][0], self.colors[c][1], n) for (part, c), n in tally.items()]
        return sorted(rows, key=lambda r: (r[1], r[0]))

    def summary(self):
        """Numbers for the report: bricks vs voxels, per layer, connectivity, colour mapping."""
        outside = int(np.count_nonzero(self.component > 0))
        return dict(
            bricks=self.brick_count, voxels=self.voxel_count,
            bricks_per_voxel=round(self.brick_count / max(self.voxel_count, 1), 4),
            bricks_per_layer=self.bricks_per_layer(), connected_pieces=self.components,
            disconnected_parts=max(self.components - 1, 0), bricks_not_in_largest_part=outside,
            fewest_pieces_possible=self.fewest_possible,
            colors=[dict(palette_index=i + 1, lego_name=self.colors[c][0],
                         lego_id=self.colors[c][1], delta_e=round(float(d), 2))
                    for i, (c, d) in enumerate(zip(self.palette_to_color, self.palette_delta_e))],
        )


# --- colours ----------------------------------------------------------------------------------
def map_to_lego(palette, lego_colors=None):
    """Nearest LEGO colour (CIE Lab, delta E 1976) of each palette entry.
    Returns (index into lego_colors per entry, its delta E)."""
    lego_colors = lego_colors or named_palette("lego")
    lego_lab = srgb_to_lab(np.array([rgb for _, _, rgb in lego_colors], np.uint8))
    dist = delta_e76(srgb_to_lab(np.asarray(palette, np.uint8))[:, None], lego_lab[None])
    nearest = np.argmin(dist, axis=1)
    return nearest, dist[np.arange(len(nearest)), nearest]


# --- tiling -----------------------------------------------------------------------------------
def _integral(mask):
    return np.pad(mask.astype(np.int32).cumsum(0).cumsum(1), ((1, 0), (1, 0)))


def _window_sums(integral, sx, sz):
    """Sums over every sx x sz window from an integral image; (X - sx + 1, Z - sz + 1)."""
    c = integral
    return c[sx:, sz:] - c[:-sx, sz:] - c[sx:, :-sz] + c[:-sx, :-sz]


def tile_layer(labels, long_along_x=True):
    """Cover the cells of a 2-D label grid (X, Z; -1 empty) with one-colour standard bricks.
    Returns [(x, z, size_x, size_z)] covering every labelled cell exactly once."""
    X, Z = labels.shape
    free = labels >= 0
    colors = [(c, _integral(labels == c)) for c in np.unique(labels[free])]
    placed = []
    for short, long in _ORDER:
        shapes = [(long, short), (short, long)] if long_along_x else [(short, long), (long, short)]
        for sx, sz in dict.fromkeys(shapes):  # squares appear once
            if sx > X or sz > Z:
                continue
            all_free = _window_sums(_integral(free), sx, sz) == sx * sz
            for _, same in colors:
                fits = all_free & (_window_sums(same, sx, sz) == sx * sz)
                for x, z in zip(*np.nonzero(fits)):
                    # a cheap look at two corners rejects most anchors a placed brick took
                    if free[x, z] and free[x + sx - 1, z + sz - 1] and \
                            free[x: x + sx, z: z + sz].all():
                        free[x: x + sx, z: z + sz] = False
                        placed.append((int(x), int(z), sx, sz))
    return placed


# --- connectivity -----------------------------------------------------------------------------
class UnionFind:
    def __init__(self, count=0):
        self.parent = list(range(count))

    def add(self, count):
        self.parent.extend(range(len(self.parent), len(self.parent) + count))

    def find(self, i):
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(self, a, b):
        """Join the sets of a and b; True when they were apart."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        self.parent[ra] = rb
        return True


def contact_pairs(below, above):
    """Distinct (id below, id above) pairs of overlapping cells of two id grids (-1 empty)."""
    touching = (below >= 0) & (above >= 0)
    b, a = below[touching].astype(np.int64), above[touching].astype(np.int64)
    span = int(a.max(initial=0)) + 1
    code = np.unique(b * span + a)
    return list(zip((code // span).tolist(), (code % span).tolist()))


def connected_pieces(brick_grid, count):
    """Piece number of each brick (0 = the piece with most bricks), joining bricks whose
    footprints overlap in touching layers."""
    uf = UnionFind(count)
    for a, b in contact_pairs(brick_grid[:, :-1, :], brick_grid[:, 1:, :]):
        uf.union(a, b)
    if not count:
        return np.zeros(0, np.int64)
    roots = np.array([uf.find(i) for i in range(count)], np.int64)
    unique, inverse, sizes = np.unique(roots, return_inverse=True, return_counts=True)
    rank = np.empty(len(unique), np.int64)
    rank[np.argsort(-sizes, kind="stable")] = np.arange(len(unique))
    return rank[inverse]


def fewest_pieces_possible(labels):
    """Connected pieces if bricks could be any shape: voxels join vertically, and sideways
    only within one colour (a brick never spans two colours). A lower bound for any tiling."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    ids = np.full(labels.shape, -1, np.int64)
    filled = labels >= 0
    ids[filled] = np.arange(np.count_nonzero(filled))
    edges = []
    for axis in range(3):
        a = np.moveaxis(ids, axis, 0)
        la = np.moveaxis(labels, axis, 0)
        ok = (a[:-1] >= 0) & (a[1:] >= 0)
        if axis != 1:  # sideways: same colour only
            ok &= la[:-1] == la[1:]
        edges.append(np.stack([a[:-1][ok], a[1:][ok]]))
    e = np.concatenate(edges, axis=1)
    n = int(filled.sum())
    if not n:
        return 0
    graph = coo_matrix((np.ones(e.shape[1]), (e[0], e[1])), shape=(n, n))
    return int(connected_components(graph, directed=False)[0])


# --- the plan ---------------------------------------------------------------------------------
def _tile_variant(labels, long_along_x, flip_x, flip_z):
    """tile_layer on the layer mirrored as asked (a different greedy scan start), mapped back."""
    flipped = labels[::-1 if flip_x else 1, ::-1 if flip_z else 1]
    X, Z = labels.shape
    out = []
    for x, z, sx, sz in tile_layer(flipped, long_along_x):
        out.append((X - x - sx if flip_x else x, Z - z - sz if flip_z else z, sx, sz))
    return out


def _id_grid(shape, bricks, first_id=0):
    grid = np.full(shape, -1, np.int64)
    for i, (x, z, sx, sz) in enumerate(bricks):
        grid[x: x + sx, z: z + sz] = first_id + i
    return grid


def _pieces_added(uf, below_ids, bricks, shape):
    """Change in the number of separate pieces if this candidate layer is laid: its bricks,
    minus every join it makes (a brick resting on a piece below, or bridging two of them)."""
    trial, node = UnionFind(), {}

    def node_of(key):
        if key not in node:
            node[key] = len(node)
            trial.add(1)
        return node[key]

    joins = 0
    for b, a in contact_pairs(below_ids, _id_grid(shape, bricks)):
        joins += trial.union(node_of(("below", uf.find(int(b)))), node_of(("new", a)))
    return len(bricks) - joins


def tile_layers(label):
    """Tile every layer (y) of a (X, Y, Z) label grid (-1 empty). Each layer tries eight greedy
    variants (orientation preference, scan corner) and keeps the one that leaves the fewest
    separate pieces so far, then the fewest bricks. Returns (bricks [(y, x, z, sx, sz)], ids)."""
    X, Y, Z = label.shape
    uf = UnionFind()
    grid = np.full(label.shape, -1, np.int32)
    bricks = []
    for y in range(Y):
        layer = label[:, y, :]
        if not (layer >= 0).any():
            continue
        prefer_x = y % 2 == 0
        variants = [(lx, fx, fz) for lx in (prefer_x, not prefer_x)
                    for fx in (False, True) for fz in (False, True)]
        below = grid[:, y - 1, :].astype(np.int64) if y else np.full((X, Z), -1, np.int64)
        best = None
        for v in variants:
            cand = _tile_variant(layer, *v)
            score = (_pieces_added(uf, below, cand, (X, Z)), len(cand))
            if best is None or score < best[0]:
                best = (score, cand)
        first = len(bricks)
        uf.add(len(best[1]))
        ids = _id_grid((X, Z), best[1], first)
        for b, a in contact_pairs(below, ids):
            uf.union(int(b), int(a))
        grid[:, y, :] = ids
        bricks += [(y, *b) for b in best[1]]
    return bricks, grid


# --- repair: join stray pieces by re-cutting bricks -------------------------------------------
REPAIR_WORK = 1_000_000  # bricks looked at, summed over all trials (bounds the repair time)


def _layer_lists(bricks, layers):
    out = [[] for _ in range(layers)]
    for y, x, z, sx, sz in bricks:
        out[y].append((x, z, sx, sz))
    return out


def _grid_from_layers(shape, layers):
    grid = np.full(shape, -1, np.int32)
    count = 0
    for y, bricks in enumerate(layers):
        for x, z, sx, sz in bricks:
            grid[x: x + sx, y, z: z + sz] = count
            count += 1
    return grid, count


def _pieces(layers, shape):
    grid, count = _grid_from_layers(shape, layers)
    return int(connected_pieces(grid, count).max(initial=-1)) + 1


def _cells(brick):
    x, z, sx, sz = brick
    return {(x + i, z + k) for i in range(sx) for k in range(sz)}


def _recuts(labels, bricks, i):
    """Other cuts of brick i and a same-colour neighbour: one standard brick spanning both,
    the rest of their cells tiled greedily. Yields the layer's new brick lists."""
    mine = _cells(bricks[i])
    x0, z0 = bricks[i][:2]
    color = labels[x0, z0]
    ring = {(x + dx, z + dz) for x, z in mine for dx, dz in ((1, 0), (-1, 0), (0, 1), (0, -1))}
    for j, other in enumerate(bricks):
        theirs = _cells(other)
        if j == i or labels[other[0], other[1]] != color or not ring & theirs:
            continue
        union = mine | theirs
        xs, zs = [c[0] for c in union], [c[1] for c in union]
        for short, long in _ORDER:
            for sx, sz in dict.fromkeys([(long, short), (short, long)]):
                for bx in range(min(xs), max(xs) - sx + 2):
                    for bz in range(min(zs), max(zs) - sz + 2):
                        spanning = _cells((bx, bz, sx, sz))
                        if not (spanning <= union and spanning & mine and spanning & theirs):
                            continue
                        rest = np.full(labels.shape, -1, np.int64)
                        for c in union - spanning:
                            rest[c] = color
                        keep = [b for k, b in enumerate(bricks) if k not in (i, j)]
                        yield keep + [(bx, bz, sx, sz)] + tile_layer(rest)


def repair_pieces(label, layers, fewest):
    """Local search: for bricks of the smaller pieces, try re-cutting them with a neighbour
    (see _recuts) and keep a cut when the model falls into fewer pieces. Stops at `fewest`
    (the lower bound), when no cut helps, or when the work budget is spent."""
    shape = label.shape
    pieces = _pieces(layers, shape)
    budget = REPAIR_WORK
    while pieces > fewest and budget > 0:
        grid, count = _grid_from_layers(shape, layers)
        piece = connected_pieces(grid, count)
        where = [(y, i) for y, bricks in enumerate(layers) for i in range(len(bricks))]
        improved = False
        for k in np.argsort(-piece, kind="stable"):  # smallest pieces first
            if piece[k] == 0 or improved or budget <= 0:
                break
            y, i = where[k]
            for new_layer in _recuts(label[:, y, :], layers[y], i):
                budget -= count
                trial = layers[:y] + [new_layer] + layers[y + 1:]
                now = _pieces(trial, shape)
                if now < pieces:
                    layers, pieces, improved = trial, now, True
                    break
                if budget <= 0:
                    break
        if not improved:
            break
    return layers


def check_lego_size(shape):
    """OptionError when a grid is too big for a build plan (call before a long conversion)."""
    if max(shape) > MAX_SIDE:
        raise OptionError(f"LEGO build plans are limited to {MAX_SIDE} voxels a side, this grid "
                          f"is {'x'.join(map(str, shape))}: use --res {MAX_SIDE} or less")


def build_plan(art, lego_colors=None, name=None):
    """Map `art` (a VoxelArt) to LEGO colours and tile every layer with standard bricks."""
    check_lego_size(art.shape)
    lego_colors = lego_colors or named_palette("lego")
    nearest, de = map_to_lego(art.palette, lego_colors)
    used = np.unique(nearest[np.array(art.colors_used(), np.int64)]) if art.filled_count else []
    compact = {int(u): i for i, u in enumerate(used)}
    palette_to_color = np.array([compact.get(int(n), -1) for n in nearest], np.int64)
    index0 = np.maximum(art.indices.astype(np.int64) - 1, 0)
    label = np.where(art.indices > 0, palette_to_color[index0], -1)
    placed, grid = tile_layers(label)
    fewest = fewest_pieces_possible(label)
    layers = repair_pieces(label, _layer_lists(placed, art.shape[1]), fewest)
    grid, _ = _grid_from_layers(label.shape, layers)
    bricks = [Brick(y, x, z, sx, sz, int(label[x, y, z]))
              for y, row in enumerate(layers) for x, z, sx, sz in row]
    return LegoPlan(
        shape=tuple(art.shape), colors=[lego_colors[int(u)] for u in used],
        palette_to_color=palette_to_color, palette_delta_e=de, bricks=bricks, brick_grid=grid,
        component=connected_pieces(grid, len(bricks)),
        fewest_possible=fewest,
        name=name or art.metadata.get("name", "voxel art"))


# --- files ------------------------------------------------------------------------------------
def bom_csv(plan):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["part", "colour name", "colour id", "count"])
    writer.writerows(plan.bom())
    return out.getvalue()


def _cell_size(plan, limit=960):
    X, _, Z = plan.shape
    return int(np.clip(limit // max(X, Z), 4, 24))


def layer_image(plan, y, cell=None):
    """The bricks of layer y seen from above (x right, front (+z) at the bottom), outlined,
    with the layer below faded behind them."""
    cell = cell or _cell_size(plan)
    X, _, Z = plan.shape
    header = 18
    img = Image.new("RGB", (X * cell + 1, Z * cell + 1 + header), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    by_layer = [b for b in plan.bricks if b.layer == y]
    if y > 0:
        for b in (b for b in plan.bricks if b.layer == y - 1):
            faded = tuple(int(255 - 0.25 * (255 - v)) for v in plan.colors[b.color][2])
            draw.rectangle(_brick_box(b, cell, header), fill=faded, outline=(215, 215, 215))
    for b in by_layer:
        rgb = plan.colors[b.color][2]
        box = _brick_box(b, cell, header)
        draw.rectangle(box, fill=tuple(rgb), outline=(0, 0, 0), width=max(1, cell // 10))
        stud = tuple(int(v * 0.8) for v in rgb)
        for i in range(b.size_x):
            for k in range(b.size_z):
                cx, cz = (b.x + i + 0.5) * cell, header + (b.z + k + 0.5) * cell
                r = cell * 0.3
                draw.ellipse([cx - r, cz - r, cx + r, cz + r], outline=stud)
    draw.text((2, 2), f"layer {y + 1} of {plan.shape[1]}: {len(by_layer)} bricks",
              fill=(0, 0, 0), font=ImageFont.load_default())
    return img


def _brick_box(b, cell, header):
    return [b.x * cell, header + b.z * cell, (b.x + b.size_x) * cell, header + (b.z + b.size_z) * cell]


def overview_image(plan, size=360):
    """An isometric picture of the model in LEGO colours beside the plan's numbers."""
    from .images import iso_camera, render_voxels

    lut = np.array([rgb for _, _, rgb in plan.colors] or [(0, 0, 0)], np.uint8)
    art = VoxelArt((np.where(plan.brick_grid >= 0, _grid_colors(plan) + 1, 0)).astype(np.uint8),
                   lut)
    picture = Image.fromarray((render_voxels(art, iso_camera(art=art), size) * 255).astype(np.uint8))
    s = plan.summary()
    lines = [plan.name, f"{s['bricks']} bricks for {s['voxels']} voxels",
             f"{s['connected_pieces']} connected piece(s); {s['bricks_not_in_largest_part']} "
             "bricks outside the largest", ""]
    lines += [f"{n:4d}  {part}  {cname}" for part, cname, _, n in plan.bom()]
    font = ImageFont.load_default()
    text_h = 14 * len(lines) + 10
    img = Image.new("RGB", (size + 320, max(size, text_h)), (255, 255, 255))
    img.paste(picture, (0, 0))
    ImageDraw.Draw(img).multiline_text((size + 10, 10), "\n".join(lines), fill=(0, 0, 0),
                                       font=font, spacing=4)
    return img


def _grid_colors(plan):
    color = np.array([b.color for b in plan.bricks] or [0], np.int64)
    return np.where(plan.brick_grid >= 0, color[np.maximum(plan.brick_grid, 0)], 0)


def write_lego(plan, out_dir):
    """Write the plan into the folder `out_dir` (replaced whole, or left as it was on failure):
    bom.csv, one layer_NN.png per non-empty layer (bottom = 01) and overview.png.
    Returns the written file names."""
    digits = max(2, len(str(plan.shape[1])))
    names = []
    with atomic_dir(out_dir) as tmp:
        with open(os.path.join(tmp, "bom.csv"), "w", newline="") as f:
            f.write(bom_csv(plan))
        names.append("bom.csv")
        cell = _cell_size(plan)
        for y, count in enumerate(plan.bricks_per_layer()):
            if count:
                name = f"layer_{y + 1:0{digits}d}.png"
                layer_image(plan, y, cell).save(os.path.join(tmp, name))
                names.append(name)
        overview_image(plan).save(os.path.join(tmp, "overview.png"))
        names.append("overview.png")
    return names
