"""Stage 1's gradient gathering and the masked Adam step, on the dense grids of both stages.

Why masked (DVGO's choice) rather than visibility-count learning rates: each step sees a random
batch of rays, so most voxels get no data gradient in a given step. Plain Adam would still move
them along stale momentum, with nothing to say it is right; updating only voxels that received
gradient this step is faster (empty space is skipped) and keeps those voxels still. DVGO's
per-voxel learning rate scaled by view count corrects for voxels seen by few cameras in
forward-facing captures; our training views cover the sphere evenly, so every voxel inside the
box is seen by about as many views and that scaling would be nearly constant.

Stage 1's colour grid is stored raw and shown through a sigmoid (colour = sigmoid(raw), kept in
[0, 1] with a gradient everywhere, where clamping would stall voxels that overshoot); the chain
rule through the sigmoid is applied here, where the gradient is gathered.

Both passes walk only the blocks (grid.BLOCK^3 voxels) that are flagged, one block per thread:
Stage 1 flags the blocks its rays touched, so the cost follows the surface the rays reach
rather than R^3; Stage 2 flags its active blocks. One Adam kernel serves both stages; the
masked step of a single entry (adam_entry, consume_adam_entry) is also what the sparse grids'
fused passes (kernels/sparse.py, kernels/sparse_march.py) apply.
"""
import taichi as ti

from .grid import BLOCK, block_voxel
from .regularizers import colour_reg_grad, density_reg_grad


@ti.kernel
def gather_grads(fixed_density: ti.types.ndarray(), fixed_rgb: ti.types.ndarray(),
                 density: ti.types.ndarray(), rgb: ti.types.ndarray(),
                 grad_density: ti.types.ndarray(), grad_raw_rgb: ti.types.ndarray(),
                 blocks: ti.types.ndarray(), scale: float, shift: float, w_tv_density: float,
                 w_tv_rgb: float, w_noise: float):
    """Float gradients of the whole loss w.r.t. raw density and raw colour, in flagged blocks:
    voxels that received ray gradient (fixed point, cleared here) get it plus the regularisers'
    gradient, the others exactly zero."""
    res = density.shape[0]
    for bi, bj, bk in ti.ndrange(blocks.shape[0], blocks.shape[1], blocks.shape[2]):
        if blocks[bi, bj, bk] != 0:
            for q in range(BLOCK ** 3):
                i, j, k = block_voxel(bi, bj, bk, q)
                if i < res and j < res and k < res:
                    touched = fixed_density[i, j, k] != 0
                    for ch in ti.static(range(3)):
                        touched = touched or fixed_rgb[i, j, k, ch] != 0
                    g_d = 0.0
                    g_c = ti.Vector([0.0, 0.0, 0.0])
                    if touched:
                        g_d = fixed_density[i, j, k] / scale + density_reg_grad(
                            density, i, j, k, shift, w_tv_density, w_noise)
                        for ch in ti.static(range(3)):
                            s = rgb[i, j, k, ch]
                            g_c[ch] = (fixed_rgb[i, j, k, ch] / scale
                                       + colour_reg_grad(rgb, i, j, k, ch, w_tv_rgb)) * s * (
                                           1.0 - s)
                            fixed_rgb[i, j, k, ch] = ti.i64(0)
                        fixed_density[i, j, k] = ti.i64(0)
                    grad_density[i, j, k] = g_d
                    for ch in ti.static(range(3)):
                        grad_raw_rgb[i, j, k, ch] = g_c[ch]


@ti.func
def adam_update(param, grad, m, v, lr, beta1, beta2, bias1, bias2, eps):
    m_new = beta1 * m + (1.0 - beta1) * grad
    v_new = beta2 * v + (1.0 - beta2) * grad * grad
    step = lr * (m_new / bias1) / (ti.sqrt(v_new / bias2) + eps)
    return param - step, m_new, v_new


@ti.func
def adam_entry(param: ti.template(), exp_avg: ti.template(), exp_avg_sq: ti.template(), idx,
               g, lr, beta1, beta2, bias1, bias2, eps, low, high):
    """The masked Adam step of entry idx for gradient g: it moves (clamped to [low, high])
    only when g is nonzero."""
    if g != 0.0:
        p, m, v = adam_update(param[idx], g, exp_avg[idx], exp_avg_sq[idx], lr, beta1, beta2,
                              bias1, bias2, eps)
        param[idx] = ti.math.clamp(p, low, high)
        exp_avg[idx], exp_avg_sq[idx] = m, v


@ti.func
def consume_adam_entry(param: ti.template(), grad: ti.template(), exp_avg: ti.template(),
                       exp_avg_sq: ti.template(), idx, lr, beta1, beta2, bias1, bias2, eps,
                       low, high):
    """adam_entry from a gradient array, consuming the gradient."""
    adam_entry(param, exp_avg, exp_avg_sq, idx, grad[idx], lr, beta1, beta2, bias1, bias2, eps,
               low, high)
    grad[idx] = 0.0


@ti.kernel
def masked_adam(param: ti.types.ndarray(), grad: ti.types.ndarray(),
                exp_avg: ti.types.ndarray(), exp_avg_sq: ti.types.ndarray(),
                blocks: ti.types.ndarray(), lr: float, beta1: float, beta2: float, bias1: float,
                bias2: float, eps: float, low: float, high: float):
    """One Adam step, bias corrections 1 - beta^t passed in, for both stages' grids.

    param, grad and the moments are (R, R, R) or (R, R, R, C). Only voxels of the blocks
    flagged in `blocks` (grid.BLOCK^3 voxels each, shape block_count(R)^3) are visited, and of
    those only entries with a nonzero gradient move (results clamped to [low, high]). The
    gradient is consumed: set back to 0 after the step, so the next backward can accumulate
    into it without a separate clearing pass."""
    res = param.shape[0]
    for bi, bj, bk in ti.ndrange(blocks.shape[0], blocks.shape[1], blocks.shape[2]):
        if blocks[bi, bj, bk] != 0:
            for q in range(BLOCK ** 3):
                i, j, k = block_voxel(bi, bj, bk, q)
                if i < res and j < res and k < res:
                    if ti.static(len(param.shape) == 4):
                        for ch in range(param.shape[3]):
                            consume_adam_entry(param, grad, exp_avg, exp_avg_sq,
                                               ti.Vector([i, j, k, ch]), lr, beta1, beta2,
                                               bias1, bias2, eps, low, high)
                    else:
                        consume_adam_entry(param, grad, exp_avg, exp_avg_sq,
                                           ti.Vector([i, j, k]), lr, beta1, beta2, bias1, bias2,
                                           eps, low, high)
