"""Which bricks hold together, and which would hang in the air while the model is built.

Two bricks hold together when they lie in touching layers and their footprints overlap (studs in
tubes); side by side in one layer they do not. Union-find over those contacts gives the separate
pieces a builder ends up with. A stack of three equal plates behaves as one brick here.
"""
import numpy as np


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


def floating_bricks(brick_grid, count):
    """Bricks that hang in the air when the model is built bottom-up, layer by layer: nothing
    under them, and nothing above yet. The lowest layer stands on the table.
    Returns a bool array (count,)."""
    floating = np.zeros(count, bool)
    filled_layers = np.nonzero((brick_grid >= 0).any(axis=(0, 2)))[0]
    if not len(filled_layers):
        return floating
    for y in range(int(filled_layers[0]) + 1, brick_grid.shape[1]):
        here, below = brick_grid[:, y, :], brick_grid[:, y - 1, :]
        ids = np.unique(here[here >= 0])
        held = np.unique(here[(here >= 0) & (below >= 0)])
        floating[np.setdiff1d(ids, held)] = True
    return floating
