"""Palette-constrained Gumbel-Softmax: per-voxel logits over C palette colours -> voxel colour.

    y_n = (logit_n + g_n) / tau,   s = softmax(y),   rgb = sum_n s_n c_n        (soft phase)
    rgb = c_argmax(s), gradients as in the soft phase                      (straight-through)

Gumbel noise g_n is read from a table of standard Gumbel samples (made by the caller from a
seeded numpy Generator) at a position hashed from (step, voxel, n): no RNG state, so the
result does not depend on thread scheduling, and a voxel's sample can be recomputed wherever it
is needed (the axis-view marches quantize the voxels they visit on the fly, forward and
backward, instead of a pass over all N^3 voxels).
Backward: d loss / d logit_n = s_n (q_n - sum_m s_m q_m) / tau with q_n = (d loss / d rgb) . c_n.

The palette cross-entropy's gradient for one pixel that asks voxel v for colour t with weight w
is w (softmax(logits_v) - onehot(t)) (no noise, no temperature): its optimum is the weighted
mode of the colours asked for, where a squared colour error would pick their mean.
"""
import taichi as ti


@ti.func
def pcg_hash(x):
    """PCG output permutation of a u32 (a well-mixed, stateless integer hash)."""
    state = x * ti.u32(747796405) + ti.u32(2891336453)
    word = ((state >> ((state >> ti.u32(28)) + ti.u32(4))) ^ state) * ti.u32(277803737)
    return (word >> ti.u32(22)) ^ word


@ti.func
def noise_slot(step_key, flat, table_size):
    """Table slot of entry `flat` at a step; step_key is the step's PCG hash (hashed once by
    the caller, stage2.ops.step_key, rather than once per entry)."""
    return ti.cast(pcg_hash(ti.cast(flat, ti.u32) ^ step_key) % ti.u32(table_size), ti.i32)


@ti.func
def palette_colour(palette: ti.template(), c):
    return ti.Vector([palette[c, ch] for ch in ti.static(range(3))])


@ti.func
def noisy_logit(logits: ti.template(), noise: ti.template(), idx, c, step_key, noise_scale,
                inv_tau):
    """y_c of voxel idx: (logit + Gumbel noise) / tau, the noise slot hashed from the step key
    and the flat index of (voxel, c) in an (N, N, N, C) grid."""
    m, l, colours = logits.shape[1], logits.shape[2], logits.shape[3]
    flat = ((idx[0] * m + idx[1]) * l + idx[2]) * colours + c
    g = noise_scale * noise[noise_slot(step_key, flat, noise.shape[0])]
    return (logits[idx[0], idx[1], idx[2], c] + g) * inv_tau


@ti.func
def tempered_softmax(logits: ti.template(), palette: ti.template(), noise: ti.template(), idx,
                     step_key, noise_scale, inv_tau):
    """(top, best, total, soft colour) of voxel idx: the largest y and its index, the sum of
    exp(y - top), and sum_n s_n c_n."""
    top, best = -1e30, 0
    for c in range(logits.shape[3]):
        y = noisy_logit(logits, noise, idx, c, step_key, noise_scale, inv_tau)
        if y > top:
            top, best = y, c
    total = 0.0
    mix = ti.Vector([0.0, 0.0, 0.0])
    for c in range(logits.shape[3]):
        e = ti.exp(noisy_logit(logits, noise, idx, c, step_key, noise_scale, inv_tau) - top)
        total += e
        mix += e * palette_colour(palette, c)
    return top, best, total, mix / total


@ti.func
def quantized_colour(palette: ti.template(), best, soft_mix, hard):
    """The colour the renderer shows: the soft mixture, or the argmax's palette colour."""
    out = soft_mix
    if hard != 0:
        out = palette_colour(palette, best)
    return out


@ti.func
def add_quantizer_grad(grad_logits: ti.template(), logits: ti.template(),
                       palette: ti.template(), noise: ti.template(), idx, g, step_key,
                       noise_scale, inv_tau, top, total, soft_mix):
    """grad_logits[idx] += d/d logits of g . rgb (g = d loss / d rgb of this voxel), from the
    tempered_softmax statistics (top, total, soft_mix) of the same voxel and step."""
    mean_q = g.dot(soft_mix)
    for c in range(logits.shape[3]):
        s = ti.exp(noisy_logit(logits, noise, idx, c, step_key, noise_scale, inv_tau)
                   - top) / total
        q = g.dot(palette_colour(palette, c))
        grad_logits[idx[0], idx[1], idx[2], c] += s * (q - mean_q) * inv_tau


@ti.func
def add_cross_entropy_grad(grad_logits: ti.template(), logits: ti.template(), idx, target,
                           weight):
    """grad_logits[idx] += weight * (softmax(logits[idx]) - onehot(target)); returns the
    term's value, -weight * log softmax(logits[idx])[target]."""
    top = -1e30
    for c in range(logits.shape[3]):
        top = ti.max(top, logits[idx[0], idx[1], idx[2], c])
    norm = 0.0
    for c in range(logits.shape[3]):
        norm += ti.exp(logits[idx[0], idx[1], idx[2], c] - top)
    for c in range(logits.shape[3]):
        p = ti.exp(logits[idx[0], idx[1], idx[2], c] - top) / norm
        hit = ti.select(c == target, 1.0, 0.0)
        grad_logits[idx[0], idx[1], idx[2], c] += weight * (p - hit)
    return -weight * (logits[idx[0], idx[1], idx[2], target] - top - ti.log(norm))


@ti.kernel
def gumbel_softmax(logits: ti.types.ndarray(), palette: ti.types.ndarray(),
                   noise: ti.types.ndarray(), step_key: ti.u32, noise_scale: float,
                   inv_tau: float, hard: ti.i32, rgb: ti.types.ndarray()):
    """rgb (N,N,N,3) = the quantized colour of every voxel (for renderers that read a colour
    grid: the perspective ablation)."""
    for i, j, k in ti.ndrange(logits.shape[0], logits.shape[1], logits.shape[2]):
        idx = ti.Vector([i, j, k])
        _, best, _, mix = tempered_softmax(logits, palette, noise, idx, step_key, noise_scale,
                                           inv_tau)
        colour = quantized_colour(palette, best, mix, hard)
        for ch in ti.static(range(3)):
            rgb[i, j, k, ch] = colour[ch]


@ti.kernel
def gumbel_softmax_backward(logits: ti.types.ndarray(), palette: ti.types.ndarray(),
                            noise: ti.types.ndarray(), step_key: ti.u32, noise_scale: float,
                            inv_tau: float, grad_rgb: ti.types.ndarray(),
                            grad_logits: ti.types.ndarray()):
    """grad_logits (N,N,N,C) += d loss / d logits from grad_rgb (N,N,N,3), for the forward of
    the same step; the same in the soft and hard phases. Voxels without colour gradient are
    skipped."""
    for i, j, k in ti.ndrange(logits.shape[0], logits.shape[1], logits.shape[2]):
        g = ti.Vector([grad_rgb[i, j, k, ch] for ch in ti.static(range(3))])
        if g.norm_sqr() != 0.0:
            idx = ti.Vector([i, j, k])
            top, _, total, mix = tempered_softmax(logits, palette, noise, idx, step_key,
                                                  noise_scale, inv_tau)
            add_quantizer_grad(grad_logits, logits, palette, noise, idx, g, step_key,
                               noise_scale, inv_tau, top, total, mix)
