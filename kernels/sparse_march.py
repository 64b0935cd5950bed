"""Stage 1's ray march, gradient gathering and colour refresh on a block-sparse grid (the
layout of kernels/sparse.py: a block map of 4^3 blocks, flat per-voxel arrays of the active
blocks). Each kernel is the twin of a dense one in raymarch.py / adam.py / grid.py and does
the same arithmetic in the same order, so a sparse grid computes what the dense grid does.

What the dense grid holds outside the active blocks is never read: a sample is kept only when
its nearest cell lies in the occupancy mask, its trilinear corners lie within one cell of
that cell and the neighbours the total-variation gradient reads within two, so an active set
covering the mask grown by two cells (stage1_sparse.covering_blocks) holds every value a step
reads. A voxel outside the active blocks reads as masked out (its samples are skipped);
a corner or neighbour outside them, which that active set rules out, would read as 0.

Rays step over absent blocks: from a sample whose nearest cell lies in an absent block, a ray
jumps to its last sample among that block's cells (looked at again, so rounding never skips a
sample past the block); the samples kept, and their order, are the dense march's.
"""
import taichi as ti

from .adam import adam_entry, consume_adam_entry
from .funcs import box_clip, sigmoid, softplus, voxel_alpha
from .grid import corner_base, corner_weight, grid_coord, nearest_cell, to_fixed
from .raymarch import STEP_VOXELS, load_ray, sample_count
from .regularizers import noise_grad_at
from .sparse import BLOCK, BLOCK_VOXELS, grid_index, voxel_id


@ti.func
def corner_ids(block_map: ti.template(), base):
    """Flat ids of the 2x2x2 corners at base, in corner order c (bit a = offset along a):
    one block lookup when they share a block (27 times in 64), else one per corner."""
    ids = ti.Vector([0, 0, 0, 0, 0, 0, 0, 0], dt=ti.i32)
    local = base % BLOCK
    if local[0] < BLOCK - 1 and local[1] < BLOCK - 1 and local[2] < BLOCK - 1:
        first = voxel_id(block_map, base)
        for c in ti.static(range(8)):
            ids[c] = first + ti.static((c & 1) * BLOCK * BLOCK + ((c >> 1) & 1) * BLOCK
                                       + ((c >> 2) & 1))
        if first < 0:
            ids = ti.Vector([-1, -1, -1, -1, -1, -1, -1, -1], dt=ti.i32)
    else:
        for c in ti.static(range(8)):
            ids[c] = voxel_id(block_map,
                                  base + ti.Vector([c & 1, (c >> 1) & 1, (c >> 2) & 1]))
    return ids


@ti.func
def _read(grid: ti.template(), v, width: ti.template(), ch: ti.template()):
    out = 0.0
    if v >= 0:
        out = grid[v * width + ch]
    return out


@ti.func
def sample_scalar(grid: ti.template(), ids, frac):
    v = 0.0
    for c in ti.static(range(8)):
        v += corner_weight(frac, c) * _read(grid, ids[c], 1, 0)
    return v


@ti.func
def sample_rgb(grid: ti.template(), ids, frac):
    v = ti.Vector([0.0, 0.0, 0.0])
    for c in ti.static(range(8)):
        w = corner_weight(frac, c)
        for ch in ti.static(range(3)):
            v[ch] += w * _read(grid, ids[c], 3, ch)
    return v


@ti.func
def skip_to(o, d, t0, k, res, cell):
    """The sample to look at after sample k, whose nearest cell `cell` lies in an absent
    block: the last sample before the ray leaves the region of points whose nearest cell lies
    in that block (one sample early, so rounding never skips a sample past it)."""
    b = cell // BLOCK
    t_exit = 1e30
    for a in ti.static(range(3)):
        if ti.abs(d[a]) > 1e-12:
            # grid coordinates whose nearest cell lies in block b: [4b - 0.5, 4b + 3.5)
            lo, hi = b[a] * BLOCK - 0.5, b[a] * BLOCK + BLOCK - 0.5
            if b[a] == 0:
                lo = -1e9  # the nearest cell is clamped to the grid
            if (b[a] + 1) * BLOCK >= res:
                hi = 1e9
            # world coordinate p = (g + 0.5) / res - 0.5
            bound = (ti.select(d[a] > 0, hi, lo) + 0.5) / res - 0.5
            t_exit = ti.min(t_exit, (bound - o[a]) / d[a])
    step = STEP_VOXELS / res
    nxt = ti.cast(ti.floor((t_exit - t0) / step - 0.5), ti.i32)
    return ti.max(k + 1, nxt)


@ti.func
def sparse_sample(o, d, t0, k, res, block_map: ti.template(), mask: ti.template()):
    """raymarch.ray_sample on the sparse grid: the distance t, whether the mask keeps the
    sample, its corner ids and weights, and the next sample to visit."""
    t = t0 + (k + 0.5) * (STEP_VOXELS / res)
    g = grid_coord(o + t * d, res)
    cell = nearest_cell(g, res)
    base, frac = corner_base(g, res)
    v = voxel_id(block_map, cell)
    kept = False
    nxt = k + 1
    ids = ti.Vector([-1, -1, -1, -1, -1, -1, -1, -1], dt=ti.i32)
    if v < 0:
        nxt = skip_to(o, d, t0, k, res, cell)
    elif mask[v] != 0:
        kept = True
        ids = corner_ids(block_map, base)
    return t, kept, ids, frac, nxt


@ti.kernel
def render_rays(block_map: ti.types.ndarray(), mask: ti.types.ndarray(),
                density: ti.types.ndarray(), rgb: ti.types.ndarray(), res: ti.i32,
                origins: ti.types.ndarray(), dirs: ti.types.ndarray(), ids: ti.types.ndarray(),
                out_rgb: ti.types.ndarray(), out_depth: ti.types.ndarray(),
                out_trans: ti.types.ndarray(), shift: float, term: float):
    """raymarch.render_rays on a res^3 sparse grid."""
    for n in range(ids.shape[0]):
        o, d = load_ray(origins, dirs, ids[n])
        t0, t1 = box_clip(o, d)
        color = ti.Vector([0.0, 0.0, 0.0])
        depth, trans = 0.0, 1.0
        k, count = 0, sample_count(t0, t1, res)
        while k < count:
            t, kept, corners, frac, nxt = sparse_sample(o, d, t0, k, res, block_map, mask)
            k = nxt
            if kept:
                alpha = voxel_alpha(sample_scalar(density, corners, frac), shift, STEP_VOXELS)
                w = trans * alpha
                color += w * sample_rgb(rgb, corners, frac)
                depth += w * t
                trans *= 1.0 - alpha
                if trans < term:
                    break
        for ch in ti.static(range(3)):
            out_rgb[n, ch] = color[ch] + trans
        out_depth[n] = depth
        out_trans[n] = trans


@ti.func
def _scatter(grad: ti.template(), corners, frac, value, width: ti.template(), ch: ti.template(),
             scale):
    for c in ti.static(range(8)):
        q = to_fixed(corner_weight(frac, c) * value, scale)
        if q != 0 and corners[c] >= 0:
            ti.atomic_add(grad[corners[c] * width + ch], q)


@ti.kernel
def backward_rays(block_map: ti.types.ndarray(), mask: ti.types.ndarray(),
                  density: ti.types.ndarray(), rgb: ti.types.ndarray(), res: ti.i32,
                  origins: ti.types.ndarray(), dirs: ti.types.ndarray(), ids: ti.types.ndarray(),
                  out_rgb: ti.types.ndarray(), out_depth: ti.types.ndarray(),
                  out_trans: ti.types.ndarray(), target_depth: ti.types.ndarray(),
                  grad_rgb_out: ti.types.ndarray(), grad_opacity: ti.types.ndarray(),
                  grad_depth_err: ti.types.ndarray(), fixed_density: ti.types.ndarray(),
                  fixed_rgb: ti.types.ndarray(), touched: ti.types.ndarray(), shift: float,
                  term: float, scale: float):
    """raymarch.backward_rays on a res^3 sparse grid: int64 fixed-point gradients into the
    flat fixed_density (V,) / fixed_rgb (V * 3,), the slots of every corner flagged in
    touched."""
    for n in range(ids.shape[0]):
        g_c = ti.Vector([grad_rgb_out[n, 0], grad_rgb_out[n, 1], grad_rgb_out[n, 2]])
        c_total = ti.Vector([out_rgb[n, 0], out_rgb[n, 1], out_rgb[n, 2]])
        t_end = out_trans[n]
        g_o, g_e = grad_opacity[n], grad_depth_err[n]
        if g_c.norm_sqr() + g_o * g_o + g_e * g_e > 0.0:
            o, d = load_ray(origins, dirs, ids[n])
            t_star = target_depth[ids[n]]
            t0, t1 = box_clip(o, d)
            e_total = out_depth[n] + t_end * t1 - t_star
            acc = ti.Vector([0.0, 0.0, 0.0])
            acc_e, trans = 0.0, 1.0
            k, count = 0, sample_count(t0, t1, res)
            while k < count:
                t, kept, corners, frac, nxt = sparse_sample(o, d, t0, k, res, block_map, mask)
                k = nxt
                if kept:
                    raw = sample_scalar(density, corners, frac) + shift
                    alpha = 1.0 - ti.exp(-softplus(raw) * STEP_VOXELS)
                    c = sample_rgb(rgb, corners, frac)
                    w = trans * alpha
                    e = t - t_star
                    acc += w * c
                    acc_e += w * e
                    trans_next = trans * (1.0 - alpha)
                    value = w * g_c
                    for ch in ti.static(range(3)):
                        _scatter(fixed_rgb, corners, frac, value[ch], 3, ch, scale)
                    g_sigma = STEP_VOXELS * (g_c.dot(trans_next * c - (c_total - acc))
                                             + g_o * t_end
                                             + g_e * (trans_next * e - (e_total - acc_e)))
                    _scatter(fixed_density, corners, frac, g_sigma * sigmoid(raw), 1, 0, scale)
                    for c_ in ti.static(range(8)):
                        if corners[c_] >= 0:
                            touched[corners[c_] // BLOCK_VOXELS] = ti.u8(1)
                    trans = trans_next
                    if trans < term:
                        break


@ti.func
def neighbour_ids(block_map: ti.template(), idx, res):
    """Flat ids of the 6 face neighbours of grid index idx (order: axis, then -1, +1); -2 for
    those outside the grid, -1 for those in absent blocks."""
    ids = ti.Vector([-2, -2, -2, -2, -2, -2], dt=ti.i32)
    for a in ti.static(range(3)):
        for s in ti.static(range(2)):
            e = ti.Vector([0, 0, 0])
            e[a] = 2 * s - 1
            nb = idx + e
            if 0 <= nb[0] < res and 0 <= nb[1] < res and 0 <= nb[2] < res:
                ids[2 * a + s] = voxel_id(block_map, nb)
    return ids


@ti.func
def tv_grad_at(grid: ti.template(), v, neighbours, width: ti.template(), ch: ti.template()):
    """regularizers.tv_grad_at at flat id v with its neighbour_ids: neighbours inside the
    grid."""
    g = 0.0
    centre = grid[v * width + ch]
    for m in ti.static(range(6)):
        if neighbours[m] != -2:
            g += 2.0 * (centre - _read(grid, neighbours[m], width, ch))
    return g


@ti.kernel
def gather_grads(block_map: ti.types.ndarray(), block_coords: ti.types.ndarray(), res: ti.i32,
                 fixed_density: ti.types.ndarray(), fixed_rgb: ti.types.ndarray(),
                 density: ti.types.ndarray(), rgb: ti.types.ndarray(),
                 grad_density: ti.types.ndarray(), grad_raw_rgb: ti.types.ndarray(),
                 touched: ti.types.ndarray(), scale: float, shift: float, w_tv_density: float,
                 w_tv_rgb: float, w_noise: float):
    """adam.gather_grads on the flat arrays, in the touched slots: voxels that received ray
    gradient get it plus the regularisers' (all / res^3), the others exactly zero."""
    volume = res * res * res
    for slot, q in ti.ndrange(touched.shape[0], BLOCK_VOXELS):
        if touched[slot] != 0:
            v = slot * BLOCK_VOXELS + q
            touched_voxel = fixed_density[v] != 0
            for ch in ti.static(range(3)):
                touched_voxel = touched_voxel or fixed_rgb[v * 3 + ch] != 0
            g_d = 0.0
            g_c = ti.Vector([0.0, 0.0, 0.0])
            if touched_voxel:
                neighbours = neighbour_ids(block_map, grid_index(block_coords, v), res)
                reg = 0.0
                if w_tv_density != 0.0:
                    reg += w_tv_density * tv_grad_at(density, v, neighbours, 1, 0)
                if w_noise != 0.0:
                    reg += w_noise * noise_grad_at(density[v], shift)
                g_d = fixed_density[v] / scale + reg / volume
                for ch in ti.static(range(3)):
                    s = rgb[v * 3 + ch]
                    reg_c = 0.0
                    if w_tv_rgb != 0.0:
                        reg_c = w_tv_rgb * tv_grad_at(rgb, v, neighbours, 3, ch) / volume
                    g_c[ch] = (fixed_rgb[v * 3 + ch] / scale + reg_c) * s * (1.0 - s)
                    fixed_rgb[v * 3 + ch] = ti.i64(0)
                fixed_density[v] = ti.i64(0)
            grad_density[v] = g_d
            for ch in ti.static(range(3)):
                grad_raw_rgb[v * 3 + ch] = g_c[ch]


@ti.kernel
def adam_slots(density: ti.types.ndarray(), grad_density: ti.types.ndarray(),
               density_m: ti.types.ndarray(), density_v: ti.types.ndarray(),
               raw_rgb: ti.types.ndarray(), grad_raw_rgb: ti.types.ndarray(),
               rgb_m: ti.types.ndarray(), rgb_v: ti.types.ndarray(), rgb: ti.types.ndarray(),
               touched: ti.types.ndarray(), lr_density: float, lr_rgb: float, beta1: float,
               beta2: float, bias1: float, bias2: float, eps: float, low: float, high: float):
    """adam.masked_adam on the density and the raw colour of the touched slots (gradients
    consumed), the shown colour rgb = sigmoid(raw) of each raw colour it moved, and the flags
    cleared: one pass over the slots where three launches each walked them (and took the
    sigmoid of every colour there, moved or not)."""
    for slot in range(touched.shape[0]):
        if touched[slot] != 0:
            for q in range(BLOCK_VOXELS):
                v = slot * BLOCK_VOXELS + q
                consume_adam_entry(density, grad_density, density_m, density_v, v, lr_density,
                                   beta1, beta2, bias1, bias2, eps, low, high)
                for ch in ti.static(range(3)):
                    e = v * 3 + ch
                    g = grad_raw_rgb[e]
                    if g != 0.0:
                        adam_entry(raw_rgb, rgb_m, rgb_v, e, g, lr_rgb, beta1, beta2, bias1,
                                   bias2, eps, low, high)
                        rgb[e] = sigmoid(raw_rgb[e])
                        grad_raw_rgb[e] = 0.0
            touched[slot] = ti.u8(0)


@ti.kernel
def threshold_alpha(density: ti.types.ndarray(), out: ti.types.ndarray(), shift: float,
                    interval: float, thres: float):
    """out[v] = 1 where voxel v's alpha over `interval` voxel lengths exceeds thres."""
    for v in range(density.shape[0]):
        out[v] = ti.u8(0)
        if voxel_alpha(density[v], shift, interval) > thres:
            out[v] = ti.u8(1)
