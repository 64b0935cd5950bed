"""Stage 1 losses and their gradients.

Per ray (n rays in the batch, all means over the batch):
  mse      = mean_n mean_ch (C - C*)^2                       colour against the reference
  entropy  = mean_n H(T_end), H(p) = -p log p - (1-p) log(1-p) pushes opacity to 0 or 1 (DVGO's
             background entropy on the last transmittance)
  alpha    = mean_n (O - A*)^2                               opacity against the coverage
  depth    = mean_n [A* > 0.999] E^2, E = depth_sum + T_end t_exit - t*, the expected depth
             error (raymarch.py) on fully covered pixels, in world units
Per voxel (R^3 voxels, sums divided by R^3 so weights do not depend on the resolution):
  tv       = sum over neighbour pairs along x, y, z of (g[v+e] - g[v])^2 / R^3, on the raw
             density and on each colour channel
  noise    = sum_v alpha_v (1 - alpha_v) / R^3, alpha_v the opacity of one whole voxel: zero
             for empty and for solid voxels, it suppresses faint, half-transparent density.
Voxel gradients are gathered (each voxel reads its neighbours), so no atomics are needed.
"""
import taichi as ti

from .funcs import box_clip, sigmoid, voxel_alpha

ENTROPY_EPS = 1e-6
COVERED = 0.999  # depth supervision only where the pixel is fully covered


@ti.kernel
def ray_losses(out_rgb: ti.types.ndarray(), out_depth: ti.types.ndarray(),
               out_trans: ti.types.ndarray(), target_rgb: ti.types.ndarray(),
               target_alpha: ti.types.ndarray(), target_depth: ti.types.ndarray(),
               ids: ti.types.ndarray(), origins: ti.types.ndarray(), dirs: ti.types.ndarray(),
               grad_rgb_out: ti.types.ndarray(),
               grad_opacity: ti.types.ndarray(), grad_depth_err: ti.types.ndarray(),
               losses: ti.types.ndarray(), w_mse: float, w_entropy: float, w_alpha: float,
               w_depth: float):
    """Per-ray unweighted terms into losses[n] (mse, entropy, alpha, depth) and dL/d(rgb),
    dL/d(opacity), dL/dE of the weighted batch-mean loss. Targets are read at ids[n] of the
    ray table."""
    count = ids.shape[0]
    for n in range(count):
        r = ids[n]
        mse = 0.0
        for ch in ti.static(range(3)):
            diff = out_rgb[n, ch] - target_rgb[r, ch]
            mse += diff * diff / 3.0
            grad_rgb_out[n, ch] = w_mse * 2.0 * diff / (3.0 * count)
        p = ti.math.clamp(out_trans[n], ENTROPY_EPS, 1.0 - ENTROPY_EPS)
        entropy = -(p * ti.log(p) + (1.0 - p) * ti.log(1.0 - p))
        g_entropy = 0.0
        if ENTROPY_EPS < out_trans[n] < 1.0 - ENTROPY_EPS:
            g_entropy = ti.log(p / (1.0 - p))  # dH/dO, with O = 1 - p
        opacity_err = 1.0 - out_trans[n] - target_alpha[r]
        grad_opacity[n] = (w_entropy * g_entropy + w_alpha * 2.0 * opacity_err) / count
        depth_err = 0.0
        if target_alpha[r] > COVERED:
            o = ti.Vector([origins[r, 0], origins[r, 1], origins[r, 2]])
            d = ti.Vector([dirs[r, 0], dirs[r, 1], dirs[r, 2]])
            t_exit = box_clip(o, d)[1]
            depth_err = out_depth[n] + out_trans[n] * t_exit - target_depth[r]
        grad_depth_err[n] = w_depth * 2.0 * depth_err / count
        losses[n, 0] = mse
        losses[n, 1] = entropy
        losses[n, 2] = opacity_err * opacity_err
        losses[n, 3] = depth_err * depth_err


@ti.func
def tv_grad_at(grid: ti.template(), i, j, k, ch: ti.template()):
    """d/dg[i,j,k] of sum over neighbour pairs (g[v+e] - g[v])^2, for channel ch (-1: scalar)."""
    res = grid.shape[0]
    g = 0.0
    centre = value_at(grid, i, j, k, ch)
    for a in ti.static(range(3)):
        for s in ti.static((-1, 1)):
            e = ti.Vector([0, 0, 0])
            e[a] = s
            ni, nj, nk = i + e[0], j + e[1], k + e[2]
            if 0 <= ni < res and 0 <= nj < res and 0 <= nk < res:
                g += 2.0 * (centre - value_at(grid, ni, nj, nk, ch))
    return g


@ti.func
def value_at(grid: ti.template(), i, j, k, ch: ti.template()):
    v = 0.0
    if ti.static(ch < 0):
        v = grid[i, j, k]
    else:
        v = grid[i, j, k, ch]
    return v


@ti.func
def noise_grad_at(d, shift):
    a = voxel_alpha(d, shift, 1.0)
    return (1.0 - 2.0 * a) * (1.0 - a) * sigmoid(d + shift)


@ti.kernel
def regularizer_losses(density: ti.types.ndarray(), rgb: ti.types.ndarray(),
                       out: ti.types.ndarray(), shift: float):
    """Per-voxel terms into out[v, 0..2] = (tv density, tv colour, noise), not yet / R^3
    (pairs counted once, at their lower voxel)."""
    res = density.shape[0]
    for i, j, k in ti.ndrange(res, res, res):
        tv_d, tv_c = 0.0, 0.0
        for a in ti.static(range(3)):
            e = ti.Vector([0, 0, 0])
            e[a] = 1
            ni, nj, nk = i + e[0], j + e[1], k + e[2]
            if ni < res and nj < res and nk < res:
                diff = density[ni, nj, nk] - density[i, j, k]
                tv_d += diff * diff
                for ch in ti.static(range(3)):
                    dc = rgb[ni, nj, nk, ch] - rgb[i, j, k, ch]
                    tv_c += dc * dc
        a = voxel_alpha(density[i, j, k], shift, 1.0)
        out[i, j, k, 0] = tv_d
        out[i, j, k, 1] = tv_c
        out[i, j, k, 2] = a * (1.0 - a)


@ti.func
def density_reg_grad(density: ti.template(), i, j, k, shift, w_tv, w_noise):
    res = density.shape[0]
    g = 0.0
    if w_tv != 0.0:
        g += w_tv * tv_grad_at(density, i, j, k, -1)
    if w_noise != 0.0:
        g += w_noise * noise_grad_at(density[i, j, k], shift)
    return g / (res * res * res)


@ti.func
def colour_reg_grad(rgb: ti.template(), i, j, k, ch: ti.template(), w_tv):
    res = rgb.shape[0]
    g = 0.0
    if w_tv != 0.0:
        g = w_tv * tv_grad_at(rgb, i, j, k, ch) / (res * res * res)
    return g


@ti.kernel
def regularizer_grads(density: ti.types.ndarray(), rgb: ti.types.ndarray(),
                      grad_density: ti.types.ndarray(), grad_rgb: ti.types.ndarray(),
                      shift: float, w_tv_density: float, w_tv_rgb: float, w_noise: float):
    """Gradient of w_tv_density*tv(density) + w_tv_rgb*tv(rgb) + w_noise*noise, all / R^3."""
    for i, j, k in ti.ndrange(density.shape[0], density.shape[1], density.shape[2]):
        grad_density[i, j, k] = density_reg_grad(density, i, j, k, shift, w_tv_density, w_noise)
        for ch in ti.static(range(3)):
            grad_rgb[i, j, k, ch] = colour_reg_grad(rgb, i, j, k, ch, w_tv_rgb)
