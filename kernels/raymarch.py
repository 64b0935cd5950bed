"""Ray marching a dense density + colour grid (DVGO style), forward and hand-written backward.

A ray is clipped to the box [-0.5, 0.5]^3 and sampled at t0 + (k + 0.5) * step with
step = half a voxel. Sample opacity alpha = 1 - exp(-softplus(d + shift) * interval), interval
in voxel lengths (0.5 here), d the trilinear raw density; colour is the trilinear colour grid
(values in [0, 1]). Samples whose nearest cell is off in the occupancy mask are skipped
(alpha = 0). Compositing runs front to back over a white background and stops once the
transmittance falls below `term`; the background then fills the remaining transmittance:

    rgb = sum_i T_i alpha_i c_i + T_end,  opacity = 1 - T_end,  depth_sum = sum_i T_i alpha_i t_i

depth_sum is in world units along the ray (distance from the ray origin), not divided by the
opacity. The depth loss uses the depth error E = sum_i w_i (t_i - t*) + T_end (t_exit - t*) for
a target depth t*: the expected depth when the leftover transmittance ends at the box exit, so a
transparent ray is not a cheap way to zero it. Taichi's autodiff is silently wrong on these
loops, so the backward is written by hand: it recomputes each ray front to back and uses, with
sigma = softplus(d + shift),

    dC/dc_i = T_i alpha_i,   dC/dsigma_i = interval * (T_{i+1} c_i - (C - sum_{j<=i} w_j c_j)),
    dO/dsigma_i = interval * T_end,
    dE/dsigma_i = interval * (T_{i+1} e_i - (E - sum_{j<=i} w_j e_j)),  e_i = t_i - t*
    (the colour formula with t_exit - t* as the background),

which needs no division by (1 - alpha). Grid gradients go out as int64 fixed point (grid.py).
"""
import taichi as ti

from .funcs import box_clip, sigmoid, softplus, voxel_alpha
from .grid import (corner_base, grid_coord, mark_blocks, nearest_cell, sample_rgb,
                   sample_scalar, scatter_rgb, scatter_scalar)

STEP_VOXELS = 0.5  # sample spacing in voxel lengths (the authors' stepsize)


@ti.func
def load_ray(origins: ti.template(), dirs: ti.template(), r):
    o = ti.Vector([origins[r, 0], origins[r, 1], origins[r, 2]])
    d = ti.Vector([dirs[r, 0], dirs[r, 1], dirs[r, 2]])
    return o, d


@ti.func
def sample_count(t0, t1, res):
    n = 0
    if t1 > t0:
        n = ti.cast(ti.ceil((t1 - t0) * res / STEP_VOXELS), ti.i32)
    return n


@ti.func
def ray_sample(o, d, t0, k, res, mask: ti.template()):
    """Sample k of a ray entering the box at t0: its distance t, whether the occupancy mask
    keeps it, and its trilinear corner and weights. The forward march and its backward both
    call this, so they visit exactly the same samples."""
    t = t0 + (k + 0.5) * (STEP_VOXELS / res)
    g = grid_coord(o + t * d, res)
    cell = nearest_cell(g, res)
    base, frac = corner_base(g, res)
    return t, mask[cell[0], cell[1], cell[2]] != 0, base, frac


@ti.kernel
def render_rays(density: ti.types.ndarray(), rgb: ti.types.ndarray(), mask: ti.types.ndarray(),
                origins: ti.types.ndarray(), dirs: ti.types.ndarray(), ids: ti.types.ndarray(),
                out_rgb: ti.types.ndarray(), out_depth: ti.types.ndarray(),
                out_trans: ti.types.ndarray(), shift: float, term: float):
    """Render ray ids[n] of the (origins, dirs) table into row n of the outputs."""
    res = density.shape[0]
    for n in range(ids.shape[0]):
        o, d = load_ray(origins, dirs, ids[n])
        t0, t1 = box_clip(o, d)
        color = ti.Vector([0.0, 0.0, 0.0])
        depth, trans = 0.0, 1.0
        for k in range(sample_count(t0, t1, res)):
            t, kept, base, frac = ray_sample(o, d, t0, k, res, mask)
            if kept:
                alpha = voxel_alpha(sample_scalar(density, base, frac), shift, STEP_VOXELS)
                w = trans * alpha
                color += w * sample_rgb(rgb, base, frac)
                depth += w * t
                trans *= 1.0 - alpha
                if trans < term:
                    break
        for ch in ti.static(range(3)):
            out_rgb[n, ch] = color[ch] + trans
        out_depth[n] = depth
        out_trans[n] = trans


@ti.kernel
def backward_rays(density: ti.types.ndarray(), rgb: ti.types.ndarray(),
                  mask: ti.types.ndarray(), origins: ti.types.ndarray(),
                  dirs: ti.types.ndarray(), ids: ti.types.ndarray(),
                  out_rgb: ti.types.ndarray(), out_depth: ti.types.ndarray(),
                  out_trans: ti.types.ndarray(), target_depth: ti.types.ndarray(),
                  grad_rgb_out: ti.types.ndarray(), grad_opacity: ti.types.ndarray(),
                  grad_depth_err: ti.types.ndarray(), grad_density: ti.types.ndarray(),
                  grad_rgb: ti.types.ndarray(), blocks: ti.types.ndarray(), shift: float,
                  term: float, scale: float):
    """Accumulate dL/d(density grid) and dL/d(colour grid) (fixed point, times `scale`) from
    dL/d(rgb out), dL/d(opacity) and dL/dE (E the depth error moment against target_depth[ids])
    of each ray, given render_rays' outputs for the same rays; flags the touched blocks."""
    res = density.shape[0]
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
            for k in range(sample_count(t0, t1, res)):
                t, kept, base, frac = ray_sample(o, d, t0, k, res, mask)
                if kept:
                    raw = sample_scalar(density, base, frac) + shift
                    alpha = 1.0 - ti.exp(-softplus(raw) * STEP_VOXELS)
                    c = sample_rgb(rgb, base, frac)
                    w = trans * alpha
                    e = t - t_star
                    acc += w * c
                    acc_e += w * e
                    trans_next = trans * (1.0 - alpha)
                    scatter_rgb(grad_rgb, base, frac, w * g_c, scale)
                    g_sigma = STEP_VOXELS * (g_c.dot(trans_next * c - (c_total - acc))
                                             + g_o * t_end
                                             + g_e * (trans_next * e - (e_total - acc_e)))
                    scatter_scalar(grad_density, base, frac, g_sigma * sigmoid(raw), scale)
                    mark_blocks(blocks, base)
                    trans = trans_next
                    if trans < term:
                        break
