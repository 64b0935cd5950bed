"""Dense voxel grids over the box [-0.5, 0.5]^3: trilinear sampling, fixed-point gradient
scatter, the occupancy mask that lets rays skip empty space, and visual-hull carving.

Cell (i, j, k) of an R^3 grid has its centre at ((i + 0.5) / R - 0.5, ...), so a world point p
has the continuous grid coordinate g = (p + 0.5) * R - 0.5 (cell i's centre sits at g = i).
Sampling clamps g to the span of cell centres, so points in the outer half-voxel shell read the
edge values. Gradients are accumulated as int64 fixed point (value * scale, rounded): integer
atomics commute, so the sum does not depend on thread order and runs are bit-identical.
"""
import taichi as ti

from .funcs import sigmoid, voxel_alpha

FIXED_POINT_SCALE = 2.0 ** 40  # resolution ~1e-12; int64 then holds sums up to ~8e6
BLOCK = 8  # voxels per side of a block in the touched-block map


def block_count(res):
    return (res + BLOCK - 1) // BLOCK


@ti.func
def block_voxel(bi, bj, bk, q):
    """Grid index of voxel q (0 .. BLOCK^3 - 1, in (i, j, k) order) of block (bi, bj, bk).
    Loops over a flagged block's voxels run q over range(BLOCK ** 3) and skip indices past the
    grid's end (the last block may be cut short): the divisors are constants, where an ndrange
    over the block's spans divided by run-time extents at every voxel (3x slower on a 64^3
    Adam pass)."""
    return ti.Vector([bi * BLOCK + q // (BLOCK * BLOCK), bj * BLOCK + (q // BLOCK) % BLOCK,
                      bk * BLOCK + q % BLOCK])


@ti.func
def grid_coord(p, res):
    """Continuous grid coordinate of world point p (cell i's centre at i)."""
    return (p + 0.5) * res - 0.5


@ti.func
def corner_base(g, res):
    """Lower corner index and fractional offsets of the 2x2x2 cell block around g."""
    gc = ti.math.clamp(g, 0.0, res - 1.0)
    base = ti.min(ti.cast(ti.floor(gc), ti.i32), res - 2)
    return base, gc - base


@ti.func
def nearest_cell(g, res):
    return ti.cast(ti.math.clamp(ti.round(g), 0.0, res - 1.0), ti.i32)


@ti.func
def corner_weight(frac, c: ti.template()):
    """Trilinear weight of corner c (0..7, bit a = offset along axis a)."""
    w = 1.0
    for a in ti.static(range(3)):
        bit = (c >> a) & 1
        w *= frac[a] * bit + (1.0 - frac[a]) * (1 - bit)
    return w


@ti.func
def sample_scalar(grid: ti.template(), base, frac):
    v = 0.0
    for c in ti.static(range(8)):
        v += corner_weight(frac, c) * grid[base[0] + (c & 1), base[1] + ((c >> 1) & 1),
                                          base[2] + ((c >> 2) & 1)]
    return v


@ti.func
def sample_rgb(grid: ti.template(), base, frac):
    v = ti.Vector([0.0, 0.0, 0.0])
    for c in ti.static(range(8)):
        w = corner_weight(frac, c)
        i, j, k = base[0] + (c & 1), base[1] + ((c >> 1) & 1), base[2] + ((c >> 2) & 1)
        for ch in ti.static(range(3)):
            v[ch] += w * grid[i, j, k, ch]
    return v


@ti.func
def to_fixed(x, scale):
    return ti.cast(ti.round(x * scale), ti.i64)


@ti.func
def scatter_scalar(grad: ti.template(), base, frac, value, scale):
    """Add value * trilinear weight to the 8 corners of grad (int64 fixed point)."""
    for c in ti.static(range(8)):
        q = to_fixed(corner_weight(frac, c) * value, scale)
        if q != 0:
            ti.atomic_add(grad[base[0] + (c & 1), base[1] + ((c >> 1) & 1),
                               base[2] + ((c >> 2) & 1)], q)


@ti.func
def scatter_rgb(grad: ti.template(), base, frac, value, scale):
    for c in ti.static(range(8)):
        w = corner_weight(frac, c)
        i, j, k = base[0] + (c & 1), base[1] + ((c >> 1) & 1), base[2] + ((c >> 2) & 1)
        for ch in ti.static(range(3)):
            q = to_fixed(w * value[ch], scale)
            if q != 0:
                ti.atomic_add(grad[i, j, k, ch], q)


@ti.func
def mark_blocks(blocks: ti.template(), base):
    """Flag the blocks holding the 2x2x2 corners at base as touched. Every writer stores 1, so
    the unsynchronised writes give the same map whatever the thread order."""
    lo, hi = base // BLOCK, (base + 1) // BLOCK
    step = hi - lo
    for c in ti.static(range(8)):
        blocks[lo[0] + step[0] * (c & 1), lo[1] + step[1] * ((c >> 1) & 1),
               lo[2] + step[2] * ((c >> 2) & 1)] = ti.u8(1)


@ti.kernel
def sigmoid_grid(raw: ti.types.ndarray(), out: ti.types.ndarray()):
    for I in ti.grouped(raw):
        out[I] = sigmoid(raw[I])


@ti.kernel
def refresh_sigmoid_blocks(raw: ti.types.ndarray(), out: ti.types.ndarray(),
                           blocks: ti.types.ndarray()):
    """out = sigmoid(raw) (R, R, R, C) in the flagged blocks, then clear the flags: the colour
    a step's Adam moved is shown again, and the next step starts with no block touched."""
    res = raw.shape[0]
    for bi, bj, bk in ti.ndrange(blocks.shape[0], blocks.shape[1], blocks.shape[2]):
        if blocks[bi, bj, bk] != 0:
            for q in range(BLOCK ** 3):
                i, j, k = block_voxel(bi, bj, bk, q)
                if i < res and j < res and k < res:
                    for ch in range(raw.shape[3]):
                        out[i, j, k, ch] = sigmoid(raw[i, j, k, ch])
            blocks[bi, bj, bk] = ti.u8(0)


@ti.kernel
def threshold_alpha(density: ti.types.ndarray(), hull: ti.types.ndarray(),
                    out: ti.types.ndarray(), shift: float, interval: float, thres: float):
    """out = 1 where the voxel lies in the hull and its alpha exceeds thres."""
    for I in ti.grouped(density):
        out[I] = ti.u8(0)
        if hull[I] != 0 and voxel_alpha(density[I], shift, interval) > thres:
            out[I] = ti.u8(1)


@ti.kernel
def dilate(src: ti.types.ndarray(), hull: ti.types.ndarray(), out: ti.types.ndarray()):
    """out = 1 where any of the 3x3x3 neighbours of a hull voxel is set in src.

    A sample reads the 8 corners around it, all within one cell of its nearest cell, so a mask
    dilated by one cell never skips a sample whose alpha could pass the threshold.
    """
    res = src.shape[0]
    for i, j, k in ti.ndrange(res, res, res):
        hit = 0
        if hull[i, j, k] != 0:
            for di, dj, dk in ti.static(ti.ndrange((-1, 2), (-1, 2), (-1, 2))):
                a, b, c = i + di, j + dj, k + dk
                if 0 <= a < res and 0 <= b < res and 0 <= c < res:
                    hit |= ti.cast(src[a, b, c], ti.i32)
        out[i, j, k] = ti.cast(hit, ti.u8)


@ti.kernel
def carve_hull(hull: ti.types.ndarray(), matrices: ti.types.ndarray(),
               lens: ti.types.ndarray(), silhouettes: ti.types.ndarray()):
    """Visual hull: clear every cell whose centre projects onto background in some view.

    matrices (V, 3, 4) world-to-view [R | -R o] (rows right, up, forward); lens (V, 4) holds
    (ortho flag, image-plane width, height, unused); silhouettes (V, H, W) are coverage masks
    already dilated by the footprint of one cell, so a cell touching the object survives.
    """
    res = hull.shape[0]
    views, rows, cols = silhouettes.shape[0], silhouettes.shape[1], silhouettes.shape[2]
    for i, j, k in ti.ndrange(res, res, res):
        p = (ti.Vector([i, j, k]) + 0.5) / res - 0.5
        keep = 1
        for v in range(views):
            q = ti.Vector([0.0, 0.0, 0.0])
            for r in ti.static(range(3)):
                q[r] = (matrices[v, r, 0] * p[0] + matrices[v, r, 1] * p[1]
                        + matrices[v, r, 2] * p[2] + matrices[v, r, 3])
            u, w = q[0], q[1]
            if lens[v, 0] < 0.5:  # perspective: project onto the plane at distance 1
                u, w = u / ti.max(q[2], 1e-6), w / ti.max(q[2], 1e-6)
            c = ti.cast(ti.floor((u / lens[v, 1] + 0.5) * cols), ti.i32)
            r = ti.cast(ti.floor((0.5 - w / lens[v, 2]) * rows), ti.i32)
            if 0 <= c < cols and 0 <= r < rows and q[2] > 0.0:
                if silhouettes[v, r, c] == 0:
                    keep = 0
        hull[i, j, k] = ti.cast(keep, ti.u8)
