"""Palette-constrained Gumbel-Softmax: per-voxel logits over C palette colours -> voxel colour.

    y_n = (logit_n + g_n) / tau,   s = softmax(y),   rgb = sum_n s_n c_n        (soft phase)
    rgb = c_argmax(s), gradients as in the soft phase                      (straight-through)

Gumbel noise g_n is read from a table of standard Gumbel samples (made by the caller from a
seeded numpy Generator) at a position hashed from (step key, voxel, n): no RNG state, so the
result does not depend on thread scheduling and the backward needs no copy of the noise.
Backward: d loss / d logit_n = s_n (q_n - sum_m s_m q_m) / tau with q_n = (d loss / d rgb) . c_n.
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
    return ti.cast(pcg_hash(ti.cast(flat, ti.u32) ^ pcg_hash(step_key)) % ti.u32(table_size),
                   ti.i32)


@ti.kernel
def gumbel_softmax(logits: ti.types.ndarray(), palette: ti.types.ndarray(),
                   noise_table: ti.types.ndarray(), step_key: ti.u32, noise_scale: float,
                   inv_tau: float, hard: ti.i32, density: ti.types.ndarray(),
                   threshold: float, soft: ti.types.ndarray(), rgb: ti.types.ndarray()):
    """soft (N,N,N,C) = tempered softmax of logits + noise; rgb (N,N,N,3) its palette colour
    (the soft mixture, or the argmax colour when `hard`). Voxels whose raw density is not
    above `threshold` (nearly transparent: the renderer skips or barely sees them) are left
    as they are."""
    n, m, l, colours = logits.shape[0], logits.shape[1], logits.shape[2], logits.shape[3]
    table_size = noise_table.shape[0]
    for i, j, k in ti.ndrange(n, m, l):
        if density[i, j, k] <= threshold:
            continue
        base = ((i * m + j) * l + k) * colours
        top, best = -1e30, 0
        for c in range(colours):
            g = noise_scale * noise_table[noise_slot(step_key, base + c, table_size)]
            y = (logits[i, j, k, c] + g) * inv_tau
            soft[i, j, k, c] = y
            if y > top:
                top, best = y, c
        total = 0.0
        for c in range(colours):
            e = ti.exp(soft[i, j, k, c] - top)
            soft[i, j, k, c] = e
            total += e
        mix = ti.Vector([0.0, 0.0, 0.0])
        for c in range(colours):
            s = soft[i, j, k, c] / total
            soft[i, j, k, c] = s
            mix += s * ti.Vector([palette[c, ch] for ch in ti.static(range(3))])
        if hard:
            mix = ti.Vector([palette[best, ch] for ch in ti.static(range(3))])
        for ch in ti.static(range(3)):
            rgb[i, j, k, ch] = mix[ch]


@ti.kernel
def gumbel_softmax_backward(soft: ti.types.ndarray(), palette: ti.types.ndarray(),
                            grad_rgb: ti.types.ndarray(), inv_tau: float,
                            density: ti.types.ndarray(), threshold: float,
                            grad_logits: ti.types.ndarray()):
    """grad_logits (N,N,N,C) from grad_rgb (N,N,N,3); the same in the soft and hard phases.
    Voxels without colour gradient (unseen) or skipped by the forward get exactly zero."""
    n, m, l, colours = soft.shape[0], soft.shape[1], soft.shape[2], soft.shape[3]
    for i, j, k in ti.ndrange(n, m, l):
        g = ti.Vector([grad_rgb[i, j, k, ch] for ch in ti.static(range(3))])
        if g.norm_sqr() == 0.0 or density[i, j, k] <= threshold:
            for c in range(colours):
                grad_logits[i, j, k, c] = 0.0
            continue
        mean_q = 0.0
        for c in range(colours):
            q = g.dot(ti.Vector([palette[c, ch] for ch in ti.static(range(3))]))
            mean_q += soft[i, j, k, c] * q
        for c in range(colours):
            q = g.dot(ti.Vector([palette[c, ch] for ch in ti.static(range(3))]))
            grad_logits[i, j, k, c] = soft[i, j, k, c] * (q - mean_q) * inv_tau


@ti.kernel
def add_palette_cross_entropy(logits: ti.types.ndarray(), hist: ti.types.ndarray(),
                              scale: float, grad_logits: ti.types.ndarray()):
    """grad_logits += scale * d/d logits of sum_n -hist_n log softmax(logits)_n, i.e.
    scale * (sum(hist) softmax(logits) - hist), per voxel: a cross-entropy pulling each voxel's
    palette choice toward the colours the pixels that see it ask for. Its optimum is the
    (weighted) mode of those colours, where a squared colour error would pick their mean."""
    n, m, l, colours = logits.shape[0], logits.shape[1], logits.shape[2], logits.shape[3]
    for i, j, k in ti.ndrange(n, m, l):
        total, top = 0.0, -1e30
        for c in range(colours):
            total += hist[i, j, k, c]
            top = ti.max(top, logits[i, j, k, c])
        if total > 0.0:
            norm = 0.0
            for c in range(colours):
                norm += ti.exp(logits[i, j, k, c] - top)
            for c in range(colours):
                p = ti.exp(logits[i, j, k, c] - top) / norm
                grad_logits[i, j, k, c] += scale * (total * p - hist[i, j, k, c])
