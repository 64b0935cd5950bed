"""Palette-constrained Gumbel-Softmax: per-voxel logits over C palette colours -> voxel colour.

    y_n = (logit_n + g_n) / tau,   s = softmax(y),   rgb = sum_n s_n c_n        (soft phase)
    rgb = c_argmax(s), gradients as in the soft phase                      (straight-through)

Gumbel noise g_n is read from a table of standard Gumbel samples (made by the caller from a
seeded numpy Generator) at a position hashed from (step, voxel, n): no RNG state, so the
result does not depend on thread scheduling (the axis-view marches quantize each voxel they
visit once per step, kernels/ortho.py, instead of a pass over all N^3 voxels).
Backward: d loss / d logit_n = s_n (q_n - sum_m s_m q_m) / tau with q_n = (d loss / d rgb) . c_n.

The palette cross-entropy's gradient for one pixel that asks voxel v for colour t with weight w
is w (softmax(logits_v) - onehot(t)) (no noise, no temperature): its optimum is the weighted
mode of the colours asked for, where a squared colour error would pick their mean. The
marches sum those weights per voxel and colour (a class histogram), so the softmax is taken
once per voxel.
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
def quantize_voxel(logits: ti.template(), palette: ti.template(), noise: ti.template(), idx,
                   quant: ti.template(), soft: ti.template(), rgb: ti.template()):
    """Voxel idx's Gumbel-Softmax at a step, quant = (step key, noise scale, 1/tau, hard):
    its probabilities s into soft (N,N,N,C) and the colour it shows (sum_n s_n c_n, or the
    argmax's palette colour when hard) into rgb (N,N,N,3)."""
    i, j, k = idx[0], idx[1], idx[2]
    top, best = -1e30, 0
    for c in range(logits.shape[3]):
        y = noisy_logit(logits, noise, idx, c, quant[0], quant[1], quant[2])
        soft[i, j, k, c] = y
        if y > top:
            top, best = y, c
    total = 0.0
    for c in range(logits.shape[3]):
        e = ti.exp(soft[i, j, k, c] - top)
        soft[i, j, k, c] = e
        total += e
    mix = ti.Vector([0.0, 0.0, 0.0])
    for c in range(logits.shape[3]):
        p = soft[i, j, k, c] / total
        soft[i, j, k, c] = p
        mix += p * palette_colour(palette, c)
    if quant[3] != 0:
        mix = palette_colour(palette, best)
    for ch in ti.static(range(3)):
        rgb[i, j, k, ch] = mix[ch]


@ti.func
def add_quantizer_grad(grad_logits: ti.template(), soft: ti.template(), palette: ti.template(),
                       idx, grad_rgb: ti.template(), inv_tau):
    """grad_logits[idx] += d/d logits of g . rgb, g = grad_rgb[idx] (d loss / d rgb of the
    voxel, consumed: set to 0), from the probabilities quantize_voxel left in soft."""
    i, j, k = idx[0], idx[1], idx[2]
    g = ti.Vector([grad_rgb[i, j, k, ch] for ch in ti.static(range(3))])
    mean_q = 0.0
    for c in range(soft.shape[3]):
        mean_q += soft[i, j, k, c] * g.dot(palette_colour(palette, c))
    for c in range(soft.shape[3]):
        q = g.dot(palette_colour(palette, c))
        grad_logits[i, j, k, c] += soft[i, j, k, c] * (q - mean_q) * inv_tau
    for ch in ti.static(range(3)):
        grad_rgb[i, j, k, ch] = 0.0


@ti.func
def add_class_cross_entropy(grad_logits: ti.template(), logits: ti.template(),
                            hist: ti.template(), idx, scale, scratch: ti.template()):
    """The palette cross-entropy of voxel idx over its class histogram h (hist[idx], the
    weights its pixels ask for each colour; consumed): grad_logits[idx] += scale * (sum(h)
    softmax(logits) - h); returns the value, -scale * sum_t h_t log softmax_t. The
    exponentials go through scratch[idx] (an (N,N,N,C) array whose values are spent)."""
    i, j, k = idx[0], idx[1], idx[2]
    total, top = 0.0, -1e30
    for c in range(logits.shape[3]):
        total += hist[i, j, k, c]
        top = ti.max(top, logits[i, j, k, c])
    value = 0.0
    if total > 0.0:
        norm = 0.0
        for c in range(logits.shape[3]):
            e = ti.exp(logits[i, j, k, c] - top)
            scratch[i, j, k, c] = e
            norm += e
        log_norm = ti.log(norm)
        for c in range(logits.shape[3]):
            h = hist[i, j, k, c]
            grad_logits[i, j, k, c] += scale * (total * scratch[i, j, k, c] / norm - h)
            value -= scale * h * (logits[i, j, k, c] - top - log_norm)
            hist[i, j, k, c] = 0.0
    return value


@ti.kernel
def gumbel_softmax(logits: ti.types.ndarray(), palette: ti.types.ndarray(),
                   noise: ti.types.ndarray(), step_key: ti.u32, noise_scale: float,
                   inv_tau: float, hard: ti.i32, soft: ti.types.ndarray(),
                   rgb: ti.types.ndarray()):
    """quantize_voxel on every voxel: soft (N,N,N,C) and rgb (N,N,N,3) (for renderers that
    read a colour grid: the perspective ablation)."""
    quant = (step_key, noise_scale, inv_tau, hard)
    for i, j, k in ti.ndrange(logits.shape[0], logits.shape[1], logits.shape[2]):
        quantize_voxel(logits, palette, noise, ti.Vector([i, j, k]), quant, soft, rgb)


@ti.kernel
def gumbel_softmax_backward(soft: ti.types.ndarray(), palette: ti.types.ndarray(),
                            inv_tau: float, grad_rgb: ti.types.ndarray(),
                            grad_logits: ti.types.ndarray()):
    """grad_logits (N,N,N,C) += d loss / d logits from grad_rgb (N,N,N,3, consumed), for the
    gumbel_softmax that left `soft`; the same in the soft and hard phases."""
    for i, j, k in ti.ndrange(soft.shape[0], soft.shape[1], soft.shape[2]):
        add_quantizer_grad(grad_logits, soft, palette, ti.Vector([i, j, k]), grad_rgb, inv_tau)
