"""Hidden support: columns of neutral bricks in empty cells, under bricks that would hang in the
air while building, and between separate pieces that one vertical column can join.

A column fills the empty cells of one stud position (x, z) from y_low to y_high. Under a floating
brick it runs down to the nearest brick or to the table (inside the model where it is hollow,
below it where it overhangs); the stud position of the brick with the shortest such column is
chosen. Between pieces, every gap in a column whose two ends belong to different pieces is a
candidate, and the shortest gaps that join pieces still apart are taken (Kruskal).
"""
import numpy as np

from .connectivity import UnionFind


def _lowest_layer(brick_grid):
    filled = np.nonzero((brick_grid >= 0).any(axis=(0, 2)))[0]
    return int(filled[0]) if len(filled) else 0


def bridge_columns(brick_grid, component):
    """[(x, z, y_low, y_high)] columns that join separate pieces, shortest first, each joining
    two pieces still apart. component: piece number of each brick."""
    if not len(component):
        return []
    X, Y, Z = brick_grid.shape
    last_y = np.full((X, Z), -1, np.int64)
    last_piece = np.full((X, Z), -1, np.int64)
    gaps = []
    for y in range(Y):
        ids = brick_grid[:, y, :]
        occupied = ids >= 0
        piece = np.where(occupied, component[np.maximum(ids, 0)], -1)
        ends = occupied & (last_y >= 0) & (y - last_y > 1) & (last_piece != piece)
        for x, z in zip(*np.nonzero(ends)):
            gaps.append((y - last_y[x, z] - 1, int(x), int(z), int(last_y[x, z]) + 1, y - 1,
                         int(last_piece[x, z]), int(piece[x, z])))
        last_y[occupied], last_piece[occupied] = y, piece[occupied]
    pieces = UnionFind(int(component.max(initial=-1)) + 1)
    return [(x, z, lo, hi) for _, x, z, lo, hi, a, b in sorted(gaps) if pieces.union(a, b)]


def holding_columns(brick_grid, floating):
    """[(x, z, y_low, y_high)] one column under each floating brick (floating: bool per brick)."""
    X, Y, Z = brick_grid.shape
    ground = _lowest_layer(brick_grid) - 1  # the table
    top_below = np.full((X, Z), ground, np.int64)  # highest occupied cell below the layer
    columns = []
    for y in range(Y):
        ids = brick_grid[:, y, :]
        for b in np.unique(ids[ids >= 0]):
            if floating[b]:
                xs, zs = np.nonzero(ids == b)
                k = int(np.argmax(top_below[xs, zs]))  # the shortest column
                x, z = int(xs[k]), int(zs[k])
                columns.append((x, z, int(top_below[x, z]) + 1, y - 1))
        top_below[ids >= 0] = y
    return columns


def column_cells(shape, columns):
    """Bool grid of the cells the columns fill."""
    cells = np.zeros(shape, bool)
    for x, z, lo, hi in columns:
        cells[x, lo: hi + 1, z] = True
    return cells
