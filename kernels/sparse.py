"""Block-sparse voxel grids: storage and work only for the active 4^3 blocks of an N^3 grid.

Layout (chosen by measurement, see taichi_voxify/sparse_grid.py): an int32 block map
(nb, nb, nb), nb = ceil(N / 4), holds the slot of each active block or -1; slot s owns the flat
voxel ids s * 64 .. s * 64 + 63 of every per-voxel array, in (i, j, k) order inside the block.
Per-voxel arrays are flat 1-D ndarrays: a scalar at [voxel], C channels at [voxel * C + c]
(flat arrays let elementwise passes such as Adam or clearing run as one contiguous loop).
block_coords (slots, 3) holds each slot's block index; voxels of the last block that lie past
N (when 4 does not divide N) are padding that no ray visits.

An absent block reads as empty space (alpha 0, no colour, no gradient), so every kernel here
equals its dense twin in kernels/ortho.py and kernels/gumbel.py on a dense grid whose absent
voxels hold a density of -inf; tests/test_sparse.py checks that, and the gradients by finite
differences. Rays march the span of their column between the first and the last voxel above
the renderer's skip threshold (voxel_spans, as ortho.column_spans finds it on a dense grid) and
step over absent blocks a whole block at a time.
"""
import taichi as ti

from ..views import LAYOUT, NUM_VIEWS
from .adam import adam_entry, consume_adam_entry
from .funcs import crossing
from .gumbel import class_cross_entropy, grid_entry, quantize, quantizer_grad
from .ortho import BACKGROUND, column_voxel, other_axes, step_range

BLOCK = 4
BLOCK_VOXELS = BLOCK ** 3


@ti.func
def voxel_id(block_map: ti.template(), idx):
    """Flat voxel id of grid index idx, or -1 when its block is absent."""
    b = idx // BLOCK
    slot = block_map[b[0], b[1], b[2]]
    out = -1
    if slot >= 0:
        local = idx - b * BLOCK
        out = slot * BLOCK_VOXELS + (local[0] * BLOCK + local[1]) * BLOCK + local[2]
    return out


@ti.func
def step_past_block(view: ti.template(), n, s):
    """The first step of a view's ray past the block that step s lies in."""
    march = ti.static(LAYOUT[view][0])
    out = 0
    if ti.static(march[1] > 0):
        out = ti.min((s // BLOCK + 1) * BLOCK, n)  # the last block may pass the grid's end
    else:  # the march coordinate n - 1 - s runs down: leave through the block's low face
        out = n - ((n - 1 - s) // BLOCK) * BLOCK
    return out


def march_stride(view):
    """How a view's flat voxel id moves per step inside a block (ids run (i, j, k) in order)."""
    axis, sign = LAYOUT[view][0]
    return (BLOCK * BLOCK, BLOCK, 1)[axis] * sign


@ti.func
def block_segment(block_map: ti.template(), view: ti.template(), n, r, c, s):
    """The ray of pixel (r, c) at step s: the flat voxel id there (-1 when its block is absent)
    and the first step past its block; in between, the id moves by
    march_stride(view) a step, so a ray looks the block map up once per block."""
    return (voxel_id(block_map, column_voxel(view, n, r, c, s)),
            step_past_block(view, n, s))


@ti.func
def segment_sample(view: ti.template(), density: ti.template(), first, k, shift):
    """Step k into a block segment that starts at flat voxel id `first`: the voxel's id, its
    opacity and the light it lets through (funcs.crossing). The sparse twin of
    ortho.column_sample: both sparse marches read their voxels here, so they cannot drift
    apart."""
    v = first + k * ti.static(march_stride(view))
    alpha, decay = crossing(density[v] + shift)
    return v, alpha, decay


@ti.func
def _rgb_at(rgb: ti.template(), v):
    return ti.Vector([rgb[v * 3 + ch] for ch in ti.static(range(3))])


@ti.kernel
def flag_blocks_above(density: ti.types.ndarray(), threshold: float,
                      flags: ti.types.ndarray()):
    """flags[slot] = 1 when some voxel of the slot has a raw density above threshold."""
    for slot in range(flags.shape[0]):
        hit = 0
        for q in range(BLOCK_VOXELS):
            if density[slot * BLOCK_VOXELS + q] > threshold:
                hit = 1
        flags[slot] = ti.u8(hit)


@ti.kernel
def voxel_spans(block_coords: ti.types.ndarray(), density: ti.types.ndarray(),
                threshold: float, span: ti.types.ndarray()):
    """span[axis, a, b] = (first, last) index along `axis` of the column at the other two axes
    (a, b in increasing axis order) whose raw density exceeds `threshold`, (n, -1) if none:
    ortho.column_spans over the stored voxels (absent ones are empty), so both engines march
    the same samples. Integer min/max commute, so the spans do not depend on thread order."""
    n = span.shape[1]
    for axis, a, b in ti.ndrange(3, n, n):
        span[axis, a, b, 0] = n
        span[axis, a, b, 1] = -1
    for v in range(density.shape[0]):
        if density[v] > threshold:
            idx = grid_index(block_coords, v)
            if idx[0] < n and idx[1] < n and idx[2] < n:  # not the last block's padding
                for axis in ti.static(range(3)):
                    oa, ob = ti.static(other_axes(axis))
                    ti.atomic_min(span[axis, idx[oa], idx[ob], 0], idx[axis])
                    ti.atomic_max(span[axis, idx[oa], idx[ob], 1], idx[axis])


@ti.func
def grid_index(block_coords: ti.template(), v):
    """Grid index (i, j, k) of flat voxel id v (voxel_id's inverse)."""
    slot = v // BLOCK_VOXELS
    q = v - slot * BLOCK_VOXELS
    local = ti.Vector([q // (BLOCK * BLOCK), (q // BLOCK) % BLOCK, q % BLOCK])
    block = ti.Vector([block_coords[slot, a] for a in ti.static(range(3))])
    return block * BLOCK + local


@ti.func
def _entries(flat: ti.template(), v, width: ti.template()):
    """Voxel v's `width` values of a flat per-voxel array, as a vector."""
    return ti.Vector([flat[v * width + c] for c in ti.static(range(width))])


@ti.func
def quantize_voxel(block_coords: ti.template(), n, logits: ti.template(),
                   palette: ti.template(), noise: ti.template(), quant: ti.template(), v,
                   soft: ti.template(), rgb: ti.template(), colours: ti.template()):
    """gumbel.quantize on voxel v of the flat arrays: its probabilities into soft, its colour
    into rgb. The noise is hashed from the voxel's grid index, so sparse and dense grids
    sample the same noise."""
    idx = grid_index(block_coords, v)
    s, mix = quantize(_entries(logits, v, colours), noise, quant,
                      grid_entry(n, idx, colours), palette, colours)
    for c in ti.static(range(colours)):
        soft[v * colours + c] = s[c]
    for ch in ti.static(range(3)):
        rgb[v * 3 + ch] = mix[ch]


@ti.kernel
def render_axis_views(block_map: ti.types.ndarray(), span: ti.types.ndarray(),
                      density: ti.types.ndarray(), rgb: ti.types.ndarray(), shift: float,
                      t_min: float, out_rgb: ti.types.ndarray(), out_depth: ti.types.ndarray(),
                      out_opacity: ti.types.ndarray(), block_coords: ti.types.ndarray(),
                      logits: ti.types.ndarray(), palette: ti.types.ndarray(),
                      noise: ti.types.ndarray(), step_key: ti.u32, noise_scale: float,
                      inv_tau: float, hard: ti.i32, stamp: ti.types.ndarray(), pass_id: ti.i32,
                      soft: ti.types.ndarray(), from_logits: ti.template(),
                      colours: ti.template()):
    """Colour (6,N,N,3), depth (6,N,N) and opacity (6,N,N) of the six axis views, as
    ortho.render_axis_views computes them. Colours are read from `rgb`; with from_logits, a
    voxel is quantized into soft and rgb (quantize_voxel) when a ray first visits it in this
    pass: stamp[v] != pass_id, then set to it. Each voxel lies in one column per view and the
    views run in order, so no two threads quantize the same voxel."""
    n = out_depth.shape[1]
    quant = (step_key, noise_scale, inv_tau, hard)
    for view in ti.static(range(NUM_VIEWS)):
        for r, c in ti.ndrange(n, n):
            trans = 1.0
            colour = ti.Vector([0.0, 0.0, 0.0])
            depth = 0.0
            s, s_end = step_range(view, n, r, c, span)
            while s < s_end and trans > t_min:
                first, end = block_segment(block_map, view, n, r, c, s)
                end = ti.min(end, s_end)  # the span may end inside the block
                if first >= 0:
                    for k in range(end - s):
                        if trans <= t_min:
                            break
                        v, alpha, decay = segment_sample(view, density, first, k, shift)
                        if ti.static(from_logits):
                            if stamp[v] != pass_id:
                                quantize_voxel(block_coords, n, logits, palette, noise, quant,
                                               v, soft, rgb, colours)
                                stamp[v] = pass_id
                        w = trans * alpha
                        colour += w * _rgb_at(rgb, v)
                        depth += w * (s + k + 0.5) / n
                        trans *= decay
                s = end
            for ch in ti.static(range(3)):
                out_rgb[view, r, c, ch] = colour[ch] + trans * BACKGROUND
            out_depth[view, r, c] = depth + trans
            out_opacity[view, r, c] = 1.0 - trans


@ti.kernel
def render_axis_views_backward(block_map: ti.types.ndarray(), span: ti.types.ndarray(),
                               density: ti.types.ndarray(), rgb: ti.types.ndarray(),
                               shift: float, t_min: float, out_rgb: ti.types.ndarray(),
                               out_depth: ti.types.ndarray(), out_opacity: ti.types.ndarray(),
                               g_rgb: ti.types.ndarray(), g_depth: ti.types.ndarray(),
                               g_opacity: ti.types.ndarray(), grad_density: ti.types.ndarray(),
                               grad_rgb: ti.types.ndarray(), touched: ti.types.ndarray(),
                               class_target: ti.types.ndarray(), colours: ti.i32,
                               hist: ti.types.ndarray(), with_classes: ti.template()):
    """Add d loss / d density and d loss / d rgb of the last forward (the maths of
    ortho.render_axis_views_backward; the caller zeroes grad_*) and flag the slot of every
    voxel visited in `touched`. with_classes: also hist[v * colours + t] += w_v for every
    foreground pixel of class_target t (6,N,N) and every voxel v its ray crosses (w_v the
    voxel's share of the pixel; hist holds zeros between steps, logit_grads consumes it).
    Each voxel lies in one column per view and the views run in order, so the sums are
    reproducible."""
    n = out_depth.shape[1]
    for view in ti.static(range(NUM_VIEWS)):
        for r, c in ti.ndrange(n, n):
            final_rgb = ti.Vector([out_rgb[view, r, c, ch] for ch in ti.static(range(3))])
            g_col = ti.Vector([g_rgb[view, r, c, ch] for ch in ti.static(range(3))])
            g_dep = g_depth[view, r, c]
            final_depth = out_depth[view, r, c]
            opacity_term = g_opacity[view, r, c] * (1.0 - out_opacity[view, r, c])
            target = -1
            if ti.static(with_classes):
                target = class_target[view, r, c]
            trans = 1.0
            acc_rgb = ti.Vector([0.0, 0.0, 0.0])
            acc_depth = 0.0
            s, s_end = step_range(view, n, r, c, span)
            while s < s_end and trans > t_min:
                first, end = block_segment(block_map, view, n, r, c, s)
                end = ti.min(end, s_end)  # the span may end inside the block
                if first >= 0:
                    touched[first // BLOCK_VOXELS] = ti.u8(1)
                    for k in range(end - s):
                        if trans <= t_min:
                            break
                        v, alpha, decay = segment_sample(view, density, first, k, shift)
                        w = trans * alpha
                        c_i = _rgb_at(rgb, v)
                        t_i = (s + k + 0.5) / n
                        acc_rgb += w * c_i
                        acc_depth += w * t_i
                        trans_next = trans * decay
                        d_sigma = (g_col.dot(trans_next * c_i - (final_rgb - acc_rgb))
                                   + g_dep * (trans_next * t_i - (final_depth - acc_depth))
                                   + opacity_term)
                        grad_density[v] += d_sigma * alpha
                        for ch in ti.static(range(3)):
                            grad_rgb[v * 3 + ch] += w * g_col[ch]
                        if ti.static(with_classes):
                            if target >= 0:
                                hist[v * colours + target] += w
                        trans = trans_next
                s = end


@ti.func
def _voxel_logit_grad(v, soft: ti.template(), palette: ti.template(), rgb_grad: ti.template(),
                      inv_tau, logits: ti.template(), hist: ti.template(), class_scale,
                      colours: ti.template()):
    """d loss / d logits of voxel v, which the last pass quantized, and its cross-entropy value:
    the quantizer's, gumbel.quantizer_grad, from rgb_grad (consumed: set to 0); with
    class_scale > 0 the palette cross-entropy's, gumbel.class_cross_entropy, over the voxel's
    class histogram (consumed)."""
    grad = quantizer_grad(_entries(soft, v, colours), _rgb_at(rgb_grad, v), palette, inv_tau,
                          colours)
    for ch in ti.static(range(3)):
        rgb_grad[v * 3 + ch] = 0.0
    value = 0.0
    if class_scale > 0.0:
        ce_grad, value = class_cross_entropy(_entries(logits, v, colours),
                                             _entries(hist, v, colours), class_scale)
        grad += ce_grad
        for c in ti.static(range(colours)):
            hist[v * colours + c] = 0.0
    return grad, value


@ti.kernel
def logit_grads(touched: ti.types.ndarray(), stamp: ti.types.ndarray(), pass_id: ti.i32,
                soft: ti.types.ndarray(), palette: ti.types.ndarray(),
                rgb_grad: ti.types.ndarray(), inv_tau: float, logits: ti.types.ndarray(),
                hist: ti.types.ndarray(), class_scale: float, grad_logits: ti.types.ndarray(),
                class_value: ti.types.ndarray(), colours: ti.template()):
    """Add d loss / d logits (_voxel_logit_grad) of the voxels the last pass quantized
    (stamp == pass_id; they lie in touched slots) to grad_logits; the cross-entropy's value
    goes to class_value[slot] (0 elsewhere). One thread per slot, so each slot's value is
    summed in a fixed order. `colours` (the palette size) is a compile-time constant: the
    per-colour loops unroll into registers."""
    for slot in range(touched.shape[0]):
        value = 0.0
        if touched[slot] != 0:
            for q in range(BLOCK_VOXELS):
                v = slot * BLOCK_VOXELS + q
                if stamp[v] == pass_id:
                    grad, ce = _voxel_logit_grad(v, soft, palette, rgb_grad, inv_tau, logits,
                                                 hist, class_scale, colours)
                    value += ce
                    for c in ti.static(range(colours)):
                        grad_logits[v * colours + c] += grad[c]
        class_value[slot] = value


@ti.kernel
def adam_slots(touched: ti.types.ndarray(), stamp: ti.types.ndarray(), pass_id: ti.i32,
               soft: ti.types.ndarray(), palette: ti.types.ndarray(),
               rgb_grad: ti.types.ndarray(), inv_tau: float, hist: ti.types.ndarray(),
               class_scale: float, class_value: ti.types.ndarray(),
               density: ti.types.ndarray(), grad_density: ti.types.ndarray(),
               density_m: ti.types.ndarray(), density_v: ti.types.ndarray(),
               logits: ti.types.ndarray(), logits_m: ti.types.ndarray(),
               logits_v: ti.types.ndarray(), lr_density: float, lr_logits: float,
               beta1: float, beta2: float, bias1: float, bias2: float, eps: float,
               colours: ti.template()):
    """logit_grads and the masked Adam step of density and logits in one pass over the touched
    slots (clearing their flags): each logit gradient goes straight into its Adam update, never
    through memory. The same numbers as logit_grads followed by masked_adam on both, in a
    quarter of the launches and without the logit gradient array's write and read."""
    for slot in range(touched.shape[0]):
        value = 0.0
        if touched[slot] != 0:
            for q in range(BLOCK_VOXELS):
                v = slot * BLOCK_VOXELS + q
                consume_adam_entry(density, grad_density, density_m, density_v, v, lr_density,
                                   beta1, beta2, bias1, bias2, eps, -1e30, 1e30)
                if stamp[v] == pass_id:
                    grad, ce = _voxel_logit_grad(v, soft, palette, rgb_grad, inv_tau, logits,
                                                 hist, class_scale, colours)
                    value += ce
                    for c in ti.static(range(colours)):
                        adam_entry(logits, logits_m, logits_v, v * colours + c, grad[c],
                                   lr_logits, beta1, beta2, bias1, bias2, eps, -1e30, 1e30)
            touched[slot] = ti.u8(0)
        class_value[slot] = value


@ti.kernel
def move_slots(src: ti.types.ndarray(), new_slot: ti.types.ndarray(), per_slot: ti.i32,
               dst: ti.types.ndarray()):
    """dst[new_slot[s] * per_slot + q] = src[s * per_slot + q] for slots s kept (new_slot >= 0):
    how a refresh carries the state of surviving blocks into the new arrays. (Loops here run
    over rows in parallel and along each row in a plain loop: a 2-D ndrange divides every flat
    index by the run-time row length.)"""
    for s in range(new_slot.shape[0]):
        t = new_slot[s]
        if t >= 0:
            for q in range(per_slot):
                dst[t * per_slot + q] = src[s * per_slot + q]


@ti.kernel
def scatter_rows(dst: ti.types.ndarray(), ids: ti.types.ndarray(),
                 values: ti.types.ndarray()):
    """dst[ids[f] * width + c] = values[f, c]: set the rows (voxels) ids of a flat array of
    `width` values per voxel."""
    for f in range(ids.shape[0]):
        for c in range(values.shape[1]):
            dst[ids[f] * values.shape[1] + c] = values[f, c]


@ti.kernel
def fill_rows(dst: ti.types.ndarray(), ids: ti.types.ndarray(), width: ti.i32, value: float):
    """dst[ids[f] * width + c] = value for every c < width."""
    for f in range(ids.shape[0]):
        for c in range(width):
            dst[ids[f] * width + c] = value
