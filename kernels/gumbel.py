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
    the caller, stage2.ops.step_key, rather than once per entry). The table size is a power of
    two (PaletteQuantizer checks), so a mask takes the remainder: a runtime-size modulo is an
    integer division, six per voxel quantized."""
    return ti.cast(pcg_hash(ti.cast(flat, ti.u32) ^ step_key) & ti.u32(table_size - 1), ti.i32)


@ti.func
def palette_colour(palette: ti.template(), c):
    return ti.Vector([palette[c, ch] for ch in ti.static(range(3))])


@ti.func
def quantize(z, noise: ti.template(), quant: ti.template(), flat, palette: ti.template(),
             colours: ti.template()):
    """One voxel's Gumbel-Softmax at a step, quant = (step key, noise scale, 1/tau, hard):
    z its logits (a vector of the `colours` palette entries, a compile-time size, so the
    maths stays in registers), flat the index of its entry 0 in an (N, N, N, C) grid (the
    noise slot of entry c is hashed from flat + c, so every grid layout draws the same
    noise). Returns its probabilities s and the colour it shows: sum_n s_n c_n, or the
    argmax's palette colour when hard. Every layout's quantizer is this function."""
    y = ti.Vector([(z[c] + quant[1] * noise[noise_slot(quant[0], flat + c, noise.shape[0])])
                   * quant[2] for c in ti.static(range(colours))])
    top, best = y[0], 0
    for c in ti.static(range(1, colours)):
        if y[c] > top:
            top, best = y[c], c
    e = ti.exp(y - top)
    s = e / e.sum()
    mix = ti.Vector([0.0, 0.0, 0.0])
    for c in ti.static(range(colours)):
        mix += s[c] * palette_colour(palette, c)
    if quant[3] != 0:
        mix = palette_colour(palette, best)
    return s, mix


@ti.func
def quantizer_grad(s, g, palette: ti.template(), inv_tau, colours: ti.template()):
    """d/d logits of g . rgb for a voxel that quantize() gave probabilities s (g: d loss / d
    its colour); the same in the soft and hard phases (straight-through)."""
    q = ti.Vector([g.dot(palette_colour(palette, c)) for c in ti.static(range(colours))])
    return s * (q - (s * q).sum()) * inv_tau


@ti.func
def class_cross_entropy(z, h, scale):
    """The palette cross-entropy of a voxel with logits z over its class histogram h (the
    weights its pixels ask for each colour): the gradient scale * (sum(h) softmax(z) - h)
    and the value -scale * sum_t h_t log softmax_t; zeros when h is empty."""
    grad = ti.zero(z)
    value = 0.0
    total = h.sum()
    if total > 0.0:
        shifted = z - z.max()
        e = ti.exp(shifted)
        norm = e.sum()
        grad = scale * (total * e / norm - h)
        value = -scale * (h * (shifted - ti.log(norm))).sum()
    return grad, value


@ti.func
def grid_entry(n, idx, colours: ti.template()):
    """Flat index of entry 0 of voxel idx in an (n, n, n, colours) grid: quantize's `flat`."""
    return ((idx[0] * n + idx[1]) * n + idx[2]) * colours


@ti.func
def _entries_at(logits: ti.template(), idx, colours: ti.template()):
    return ti.Vector([logits[idx[0], idx[1], idx[2], c] for c in ti.static(range(colours))])


@ti.func
def quantize_voxel(logits: ti.template(), palette: ti.template(), noise: ti.template(), idx,
                   quant: ti.template(), soft: ti.template(), rgb: ti.template(),
                   colours: ti.template()):
    """quantize() on voxel idx of an (N,N,N,C) logits grid: its probabilities into soft
    (N,N,N,C), its colour into rgb (N,N,N,3)."""
    s, mix = quantize(_entries_at(logits, idx, colours), noise, quant,
                      grid_entry(logits.shape[0], idx, colours), palette, colours)
    for c in ti.static(range(colours)):
        soft[idx[0], idx[1], idx[2], c] = s[c]
    for ch in ti.static(range(3)):
        rgb[idx[0], idx[1], idx[2], ch] = mix[ch]


@ti.func
def add_quantizer_grad(grad_logits: ti.template(), soft: ti.template(), palette: ti.template(),
                       idx, grad_rgb: ti.template(), inv_tau, colours: ti.template()):
    """grad_logits[idx] += quantizer_grad of voxel idx, from d loss / d rgb in grad_rgb[idx]
    (consumed: set to 0) and the probabilities quantize_voxel left in soft."""
    i, j, k = idx[0], idx[1], idx[2]
    g = ti.Vector([grad_rgb[i, j, k, ch] for ch in ti.static(range(3))])
    grad = quantizer_grad(_entries_at(soft, idx, colours), g, palette, inv_tau, colours)
    for c in ti.static(range(colours)):
        grad_logits[i, j, k, c] += grad[c]
    for ch in ti.static(range(3)):
        grad_rgb[i, j, k, ch] = 0.0


@ti.func
def add_class_cross_entropy(grad_logits: ti.template(), logits: ti.template(),
                            hist: ti.template(), idx, scale, colours: ti.template()):
    """class_cross_entropy of voxel idx over hist[idx] (consumed): adds its gradient into
    grad_logits[idx], returns its value."""
    grad, value = class_cross_entropy(_entries_at(logits, idx, colours),
                                      _entries_at(hist, idx, colours), scale)
    for c in ti.static(range(colours)):
        grad_logits[idx[0], idx[1], idx[2], c] += grad[c]
        hist[idx[0], idx[1], idx[2], c] = 0.0
    return value


@ti.kernel
def gumbel_softmax(logits: ti.types.ndarray(), palette: ti.types.ndarray(),
                   noise: ti.types.ndarray(), step_key: ti.u32, noise_scale: float,
                   inv_tau: float, hard: ti.i32, soft: ti.types.ndarray(),
                   rgb: ti.types.ndarray(), colours: ti.template()):
    """quantize_voxel on every voxel: soft (N,N,N,C) and rgb (N,N,N,3) (for renderers that
    read a colour grid: the perspective ablation)."""
    quant = (step_key, noise_scale, inv_tau, hard)
    for i, j, k in ti.ndrange(logits.shape[0], logits.shape[1], logits.shape[2]):
        quantize_voxel(logits, palette, noise, ti.Vector([i, j, k]), quant, soft, rgb,
                       colours)


@ti.kernel
def gumbel_softmax_backward(soft: ti.types.ndarray(), palette: ti.types.ndarray(),
                            inv_tau: float, grad_rgb: ti.types.ndarray(),
                            grad_logits: ti.types.ndarray(), colours: ti.template()):
    """grad_logits (N,N,N,C) += d loss / d logits from grad_rgb (N,N,N,3, consumed), for the
    gumbel_softmax that left `soft`; the same in the soft and hard phases."""
    for i, j, k in ti.ndrange(soft.shape[0], soft.shape[1], soft.shape[2]):
        add_quantizer_grad(grad_logits, soft, palette, ti.Vector([i, j, k]), grad_rgb, inv_tau,
                           colours)
