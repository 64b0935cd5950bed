"""Cover every layer with one-colour parts that LEGO makes in that colour.

A layer of the plan is one brick tall. A colour's cells are covered by the bricks produced in that
colour, largest first; a colour made in no 1 x 1 brick (Warm Tan) is covered by stacks of three
equal plates instead. The long side of a part prefers x on even layers and z on odd ones, so seams
cross between layers and the layers interlock. Each layer keeps the best of eight greedy variants
(orientation, scan corner) for connection to the layer below; then a local search re-cuts parts
of stray pieces with a same-colour neighbour while that lowers the number of pieces (down to the
lower bound given by colour borders, within a work budget).

A placed part is (x, z, size_x, size_z, kind): lowest corner of its footprint, and "brick" or
"plate" (a stack of three plates).
"""
import numpy as np

from . import catalog
from .connectivity import UnionFind, connected_pieces, contact_pairs

REPAIR_WORK = 1_000_000  # parts looked at, summed over all repair trials (bounds the time)


def usable_parts(color):
    """(kind, width, length) a plan may use in `color`, in placement order: the bricks produced
    in it, largest area first (on ties the 2-wide one: it binds more studs); plates only for a
    colour with no 1 x 1 brick."""
    made = catalog.produced(color)
    kinds = ("brick",) if ("brick", 1, 1) in made else ("brick", "plate")
    return [k for k in sorted(made, key=lambda k: (k[0] != "brick", -k[1] * k[2], -k[1]))
            if k[0] in kinds]


def _integral(mask):
    """Summed-area table with a zero first row and column (np.pad is slow on small arrays)."""
    out = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), np.int32)
    np.cumsum(np.cumsum(mask, 0, dtype=np.int32), 1, out=out[1:, 1:])
    return out


def _window_sums(integral, sx, sz):
    """Sums over every sx x sz window from an integral image; (X - sx + 1, Z - sz + 1)."""
    c = integral
    return c[sx:, sz:] - c[:-sx, sz:] - c[sx:, :-sz] + c[:-sx, :-sz]


def _placement_order(allowed):
    """[(part key, [labels that may use it])] over every part some label may use."""
    keys = sorted({k for parts in allowed for k in parts},
                  key=lambda k: (k[0] != "brick", -k[1] * k[2], -k[1]))
    return [(k, [c for c, parts in enumerate(allowed) if k in parts]) for k in keys]


def tile_layer(labels, allowed, long_along_x=True):
    """Cover the cells of a 2-D label grid (X, Z; -1 empty) with one-colour parts.
    allowed[c]: the part keys label c may use (usable_parts). Returns [(x, z, sx, sz, kind)]
    covering every labelled cell exactly once (provided each label may use a 1 x 1 part)."""
    X, Z = labels.shape
    free = labels >= 0
    present = set(np.unique(labels[free]).tolist())
    same = {}
    placed = []
    for (kind, short, long), users in _placement_order(allowed):
        users = [c for c in users if c in present]
        if not users or not free.any():
            continue
        shapes = [(long, short), (short, long)] if long_along_x else [(short, long), (long, short)]
        for sx, sz in dict.fromkeys(shapes):  # squares appear once
            if sx > X or sz > Z:
                continue
            all_free = _window_sums(_integral(free), sx, sz) == sx * sz
            for c in users:
                if c not in same:
                    same[c] = _integral(labels == c)
                fits = all_free & (_window_sums(same[c], sx, sz) == sx * sz)
                for x, z in zip(*np.nonzero(fits)):
                    # a cheap look at two corners rejects most anchors a placed part took
                    if free[x, z] and free[x + sx - 1, z + sz - 1] and \
                            free[x: x + sx, z: z + sz].all():
                        free[x: x + sx, z: z + sz] = False
                        placed.append((int(x), int(z), sx, sz, kind))
    return placed


def _tile_variant(labels, allowed, long_along_x, flip_x, flip_z):
    """tile_layer on the layer mirrored as asked (a different greedy scan start), mapped back."""
    flipped = labels[::-1 if flip_x else 1, ::-1 if flip_z else 1]
    X, Z = labels.shape
    out = []
    for x, z, sx, sz, kind in tile_layer(flipped, allowed, long_along_x):
        out.append((X - x - sx if flip_x else x, Z - z - sz if flip_z else z, sx, sz, kind))
    return out


def id_grid(shape, parts, first_id=0):
    grid = np.full(shape, -1, np.int64)
    for i, (x, z, sx, sz, _) in enumerate(parts):
        grid[x: x + sx, z: z + sz] = first_id + i
    return grid


def _root_grid(uf, ids):
    """The id grid with each part replaced by the root of its piece so far (-1 stays)."""
    out = np.full(ids.shape, -1, np.int64)
    filled = ids >= 0
    unique, inverse = np.unique(ids[filled], return_inverse=True)
    out[filled] = np.array([uf.find(int(i)) for i in unique], np.int64)[inverse]
    return out


def _pieces_added(below_roots, parts, shape):
    """Change in the number of separate pieces if this candidate layer is laid: its parts,
    minus every join it makes (a part resting on a piece below, or bridging two of them)."""
    trial, node = UnionFind(), {}

    def node_of(key):
        if key not in node:
            node[key] = len(node)
            trial.add(1)
        return node[key]

    joins = 0
    for root, a in contact_pairs(below_roots, id_grid(shape, parts)):
        joins += trial.union(node_of(("below", root)), node_of(("new", a)))
    return len(parts) - joins


def tile_layers(label, allowed):
    """Tile every layer (y) of a (X, Y, Z) label grid (-1 empty). Each layer tries eight greedy
    variants (orientation preference, scan corner) and keeps the one that leaves the fewest
    separate pieces so far, then the fewest parts. Returns one list of parts per layer."""
    X, Y, Z = label.shape
    uf = UnionFind()
    below = np.full((X, Z), -1, np.int64)
    layers, count = [], 0
    for y in range(Y):
        layer = label[:, y, :]
        if not (layer >= 0).any():
            layers.append([])
            below = np.full((X, Z), -1, np.int64)
            continue
        prefer_x = y % 2 == 0
        below_roots = _root_grid(uf, below)
        best = None
        for v in [(lx, fx, fz) for lx in (prefer_x, not prefer_x)
                  for fx in (False, True) for fz in (False, True)]:
            cand = _tile_variant(layer, allowed, *v)
            score = (_pieces_added(below_roots, cand, (X, Z)), len(cand))
            if best is None or score < best[0]:
                best = (score, cand)
        uf.add(len(best[1]))
        ids = id_grid((X, Z), best[1], count)
        for b, a in contact_pairs(below, ids):
            uf.union(int(b), int(a))
        count += len(best[1])
        layers.append(best[1])
        below = ids
    return layers


# --- repair: join stray pieces by re-cutting parts --------------------------------------------
def grid_from_layers(shape, layers):
    """(X, Y, Z) part number of every cell (-1 empty), numbering parts layer by layer."""
    grid = np.full(shape, -1, np.int32)
    count = 0
    for y, parts in enumerate(layers):
        for x, z, sx, sz, _ in parts:
            grid[x: x + sx, y, z: z + sz] = count
            count += 1
    return grid, count


def count_pieces(layers, shape):
    grid, count = grid_from_layers(shape, layers)
    return int(connected_pieces(grid, count).max(initial=-1)) + 1


def _cells(part):
    x, z, sx, sz = part[:4]
    return {(x + i, z + k) for i in range(sx) for k in range(sz)}


def _recuts(labels, allowed, parts, i):
    """Other cuts of part i and a same-colour neighbour: one part spanning both, the rest of
    their cells tiled greedily. Yields the layer's new part lists."""
    mine = _cells(parts[i])
    x0, z0 = parts[i][:2]
    color = labels[x0, z0]
    ring = {(x + dx, z + dz) for x, z in mine for dx, dz in ((1, 0), (-1, 0), (0, 1), (0, -1))}
    for j, other in enumerate(parts):
        theirs = _cells(other)
        if j == i or labels[other[0], other[1]] != color or not ring & theirs:
            continue
        union = mine | theirs
        xs, zs = [c[0] for c in union], [c[1] for c in union]
        for kind, short, long in allowed[color]:
            for sx, sz in dict.fromkeys([(long, short), (short, long)]):
                for bx in range(min(xs), max(xs) - sx + 2):
                    for bz in range(min(zs), max(zs) - sz + 2):
                        spanning = _cells((bx, bz, sx, sz))
                        if not (spanning <= union and spanning & mine and spanning & theirs):
                            continue
                        rest = np.full(labels.shape, -1, np.int64)
                        for c in union - spanning:
                            rest[c] = color
                        keep = [p for k, p in enumerate(parts) if k not in (i, j)]
                        yield keep + [(bx, bz, sx, sz, kind)] + tile_layer(rest, allowed)


def repair_pieces(label, allowed, layers, fewest):
    """Local search: for parts of the smaller pieces, try re-cutting them with a neighbour
    (see _recuts) and keep a cut when the model falls into fewer pieces. Stops at `fewest`
    (the lower bound), when no cut helps, or when the work budget is spent."""
    shape = label.shape
    pieces = count_pieces(layers, shape)
    budget = REPAIR_WORK
    while pieces > fewest and budget > 0:
        grid, count = grid_from_layers(shape, layers)
        piece = connected_pieces(grid, count)
        where = [(y, i) for y, parts in enumerate(layers) for i in range(len(parts))]
        improved = False
        for k in np.argsort(-piece, kind="stable"):  # smallest pieces first
            if piece[k] == 0 or improved or budget <= 0:
                break
            y, i = where[k]
            for new_layer in _recuts(label[:, y, :], allowed, layers[y], i):
                budget -= count
                trial = layers[:y] + [new_layer] + layers[y + 1:]
                now = count_pieces(trial, shape)
                if now < pieces:
                    layers, pieces, improved = trial, now, True
                    break
                if budget <= 0:
                    break
        if not improved:
            break
    return layers
