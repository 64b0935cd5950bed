"""Stage 2 renderers: the six axis views marched along voxel columns, and a perspective variant.

Axis views (the paper's orthographic supervision). Pixel (row r, column c) of an N x N image of
an axis view is one ray running along one voxel column of the N^3 grid, entry face first. Each
voxel is a cube of constant density and colour crossed over one voxel length, so

    alpha_i = 1 - exp(-sigma_i),  sigma_i = softplus(density_i + shift)
            = sigmoid(density_i + shift)   (funcs.crossing: one exponential)
    w_i     = T_i * alpha_i,      T_i = prod_{j<i} (1 - alpha_j)
    colour  = sum_i w_i c_i + T_end * white
    depth   = sum_i w_i (i + 0.5) / N + T_end * 1      (entry face 0, far face 1; what the ray
                                                       does not hit is placed on the far face)
    opacity = 1 - T_end

where T_end is the transmittance left when the ray leaves the grid, or when it falls to t_min
(early termination; both passes stop at the same voxel, so the backward is exact for what the
forward computed). Columns outside `span` (the first and last voxel whose density is above a
threshold, see `column_spans`) are skipped. The column layout of each view is read at compile time from
the table of views (taichi_voxify/views.py, LAYOUT); tests/test_ortho.py checks the renders
against twins built from the cameras.

Backward, per column and without atomics (each voxel lies in exactly one column of a view): with
rest_i = sum_{j>i} w_j c_j + T_end * white (likewise for depth),

    d colour / d sigma_i  = T_{i+1} c_i - rest_i
    d depth / d sigma_i   = T_{i+1} t_i - rest_depth_i
    d opacity / d sigma_i = T_end
    d colour / d c_i      = w_i

The six views run one after another inside one launch (a ti.static loop), so every voxel
receives its six contributions in the same order on every run: gradients are bit-reproducible.

Voxel colours come from an rgb grid, or from palette logits quantized where a ray first visits
the voxel in a pass (kernels/gumbel.py; cached_colour), so neither pass costs N^3: with early
termination a step's work follows the surface the views see. The backward collects d loss / d
rgb and the cross-entropy's class histogram per visited voxel and flags the blocks it touched;
logit_grads turns them into logit gradients there, once per voxel, and Adam visits only those
blocks.
"""
import taichi as ti

from ..views import LAYOUT, NUM_VIEWS
from . import gumbel
from .funcs import box_clip, crossing, sigmoid, softplus
from .grid import BLOCK, block_voxel

BACKGROUND = 1.0  # white

@ti.func
def _along(sign: ti.template(), n, k):
    out = k
    if ti.static(sign < 0):
        out = n - 1 - k
    return out


@ti.func
def column_voxel(view: ti.template(), n, r, c, s):
    """Grid index (i, j, k) of step s along the ray of pixel (r, c) of an axis view."""
    march, row, col = ti.static(LAYOUT[view])
    idx = ti.Vector([0, 0, 0])
    idx[march[0]] = _along(march[1], n, s)
    idx[row[0]] = _along(row[1], n, r)
    idx[col[0]] = _along(col[1], n, c)
    return idx


def other_axes(axis):
    """The two grid axes a column of `axis` is indexed by, in increasing order."""
    return tuple(a for a in range(3) if a != axis)


@ti.func
def step_range(view: ti.template(), n, r, c, span: ti.template()):
    """Steps [s0, s1) of the ray of pixel (r, c) that cross its column's occupied span."""
    march = ti.static(LAYOUT[view][0])
    idx = column_voxel(view, n, r, c, 0)
    a, b = ti.static(other_axes(march[0]))
    first = span[march[0], idx[a], idx[b], 0]
    last = span[march[0], idx[a], idx[b], 1]
    s0, s1 = first, last + 1
    if ti.static(march[1] < 0):
        s0, s1 = n - 1 - last, n - first
    return s0, s1


@ti.func
def column_sample(view: ti.template(), density: ti.template(), n, r, c, s, shift):
    """Step s along the ray of pixel (r, c) of an axis view: the voxel's grid index, its
    opacity alpha and the share of light it lets through, 1 - alpha (funcs.crossing; alpha
    is also d softplus / d density). Both column marches read their voxels here, so they
    cannot drift apart."""
    idx = column_voxel(view, n, r, c, s)
    alpha, decay = crossing(density[idx[0], idx[1], idx[2]] + shift)
    return idx, alpha, decay


@ti.func
def _voxel_rgb(rgb: ti.template(), idx):
    return ti.Vector([rgb[idx[0], idx[1], idx[2], ch] for ch in ti.static(range(3))])


@ti.kernel
def column_spans(density: ti.types.ndarray(), threshold: float, span: ti.types.ndarray()):
    """span[axis, a, b] = (first, last) index along `axis` of the column at the other two axes
    (a, b in increasing axis order) whose raw density exceeds `threshold`; (n, -1) if none."""
    n = density.shape[0]
    for axis in ti.static(range(3)):
        for a, b in ti.ndrange(n, n):
            first, last = n, -1
            for k in range(n):
                idx = ti.Vector([0, 0, 0])
                idx[axis] = k
                oa, ob = ti.static(other_axes(axis))
                idx[oa] = a
                idx[ob] = b
                if density[idx[0], idx[1], idx[2]] > threshold:
                    first = ti.min(first, k)
                    last = k
            span[axis, a, b, 0] = first
            span[axis, a, b, 1] = last


@ti.func
def cached_colour(colour: ti.template(), palette: ti.template(), noise: ti.template(), idx,
                  quant: ti.template(), stamp: ti.template(), pass_id, soft: ti.template(),
                  rgb: ti.template(), from_logits: ti.template(), colours: ti.template()):
    """The colour voxel idx shows in this pass. `colour` is an rgb grid (N,N,N,3), read
    directly; or palette logits (N,N,N,C), quantized (gumbel.quantize_voxel: quant = (step key,
    noise scale, 1/tau, hard)) into soft and rgb when a ray first visits the voxel in this
    pass (stamp != pass_id, then set) and read back from rgb after, so a step quantizes each
    voxel its rays reach once. Each voxel lies in one column per view and the views run in
    order, so no two threads quantize the same voxel."""
    out = ti.Vector([0.0, 0.0, 0.0])
    if ti.static(from_logits):
        if stamp[idx[0], idx[1], idx[2]] != pass_id:
            gumbel.quantize_voxel(colour, palette, noise, idx, quant, soft, rgb, colours)
            stamp[idx[0], idx[1], idx[2]] = pass_id
        out = _voxel_rgb(rgb, idx)
    else:
        out = _voxel_rgb(colour, idx)
    return out


@ti.kernel
def render_axis_views(density: ti.types.ndarray(), colour: ti.types.ndarray(),
                      palette: ti.types.ndarray(), noise: ti.types.ndarray(),
                      span: ti.types.ndarray(), shift: float, t_min: float, step_key: ti.u32,
                      noise_scale: float, inv_tau: float, hard: ti.i32,
                      stamp: ti.types.ndarray(), pass_id: ti.i32, soft: ti.types.ndarray(),
                      rgb: ti.types.ndarray(), out_rgb: ti.types.ndarray(),
                      out_depth: ti.types.ndarray(), out_opacity: ti.types.ndarray(),
                      from_logits: ti.template(), colours: ti.template()):
    """Colour (6,N,N,3), depth (6,N,N) and opacity (6,N,N) of the six axis views (`colour`,
    palette, noise, the quantizer scalars, the cache stamp/soft/rgb and the palette size
    `colours`: see cached_colour; all but `colour` go unused for an rgb grid)."""
    n = density.shape[0]
    quant = (step_key, noise_scale, inv_tau, hard)
    for view in ti.static(range(NUM_VIEWS)):
        for r, c in ti.ndrange(n, n):
            s0, s1 = step_range(view, n, r, c, span)
            trans = 1.0
            acc = ti.Vector([0.0, 0.0, 0.0])
            depth = 0.0
            for s in range(s0, s1):
                if trans <= t_min:
                    break
                idx, alpha, decay = column_sample(view, density, n, r, c, s, shift)
                w = trans * alpha
                acc += w * cached_colour(colour, palette, noise, idx, quant, stamp, pass_id,
                                         soft, rgb, from_logits, colours)
                depth += w * (s + 0.5) / n
                trans *= decay
            for ch in ti.static(range(3)):
                out_rgb[view, r, c, ch] = acc[ch] + trans * BACKGROUND
            out_depth[view, r, c] = depth + trans
            out_opacity[view, r, c] = 1.0 - trans


@ti.kernel
def render_axis_views_backward(density: ti.types.ndarray(), rgb: ti.types.ndarray(),
                               span: ti.types.ndarray(), shift: float, t_min: float,
                               out_rgb: ti.types.ndarray(), out_depth: ti.types.ndarray(),
                               out_opacity: ti.types.ndarray(), g_rgb: ti.types.ndarray(),
                               g_depth: ti.types.ndarray(), g_opacity: ti.types.ndarray(),
                               grad_density: ti.types.ndarray(), grad_rgb: ti.types.ndarray(),
                               blocks: ti.types.ndarray(), class_target: ti.types.ndarray(),
                               hist: ti.types.ndarray(), with_classes: ti.template()):
    """Backward of `render_axis_views` for the same inputs, given the loss gradients g_* of
    its outputs: adds d loss / d density into grad_density and d loss / d rgb into grad_rgb
    (rgb: the colours the forward showed, the rgb grid or the quantizer's cache) and flags
    the blocks (grid.BLOCK^3 voxels) of every voxel it visits in `blocks`.

    with_classes (the palette cross-entropy): each pixel whose class_target (6,N,N) is a
    palette index t >= 0 asks each voxel its ray crosses for t with weight w_i = T_i alpha_i,
    the voxel's share of the pixel: hist[voxel, t] += w_i (logit_grads turns hist into the
    term's gradient and value)."""
    n = density.shape[0]
    for view in ti.static(range(NUM_VIEWS)):
        for r, c in ti.ndrange(n, n):
            s0, s1 = step_range(view, n, r, c, span)
            final_rgb = ti.Vector([out_rgb[view, r, c, ch] for ch in ti.static(range(3))])
            g_col = ti.Vector([g_rgb[view, r, c, ch] for ch in ti.static(range(3))])
            g_dep = g_depth[view, r, c]
            opacity_term = g_opacity[view, r, c] * (1.0 - out_opacity[view, r, c])
            target = -1
            if ti.static(with_classes):
                target = class_target[view, r, c]
            trans = 1.0
            acc_rgb = ti.Vector([0.0, 0.0, 0.0])
            acc_depth = 0.0
            for s in range(s0, s1):
                if trans <= t_min:
                    break
                idx, alpha, decay = column_sample(view, density, n, r, c, s, shift)
                w = trans * alpha
                c_i = _voxel_rgb(rgb, idx)
                t_i = (s + 0.5) / n
                acc_rgb += w * c_i
                acc_depth += w * t_i
                trans_next = trans * decay
                d_sigma = (g_col.dot(trans_next * c_i - (final_rgb - acc_rgb))
                           + g_dep * (trans_next * t_i - (out_depth[view, r, c] - acc_depth))
                           + opacity_term)
                grad_density[idx[0], idx[1], idx[2]] += d_sigma * alpha
                for ch in ti.static(range(3)):
                    grad_rgb[idx[0], idx[1], idx[2], ch] += w * g_col[ch]
                if ti.static(with_classes):
                    if target >= 0:
                        hist[idx[0], idx[1], idx[2], target] += w
                blocks[idx[0] // BLOCK, idx[1] // BLOCK, idx[2] // BLOCK] = ti.u8(1)
                trans = trans_next


@ti.kernel
def logit_grads(blocks: ti.types.ndarray(), stamp: ti.types.ndarray(), pass_id: ti.i32,
                soft: ti.types.ndarray(), palette: ti.types.ndarray(),
                rgb_grad: ti.types.ndarray(), inv_tau: float, logits: ti.types.ndarray(),
                hist: ti.types.ndarray(), class_scale: float, grad_logits: ti.types.ndarray(),
                class_value: ti.types.ndarray(), colours: ti.template()):
    """d loss / d logits of the voxels the last pass quantized (stamp == pass_id; they lie in
    the flagged blocks), added to grad_logits: the quantizer's (gumbel.add_quantizer_grad,
    from rgb_grad, consumed) and, with class_scale > 0, the palette cross-entropy's over the
    voxel's class histogram (gumbel.add_class_cross_entropy, hist consumed), whose value goes
    to class_value[block] (0 elsewhere). One thread per block: each block's value is summed in
    a fixed order. `colours`, the palette size, is a compile-time constant."""
    n = stamp.shape[0]
    for bi, bj, bk in ti.ndrange(blocks.shape[0], blocks.shape[1], blocks.shape[2]):
        value = 0.0
        if blocks[bi, bj, bk] != 0:
            for q in range(BLOCK ** 3):
                i, j, k = block_voxel(bi, bj, bk, q)
                if i < n and j < n and k < n:
                    if stamp[i, j, k] == pass_id:
                        idx = ti.Vector([i, j, k])
                        gumbel.add_quantizer_grad(grad_logits, soft, palette, idx, rgb_grad,
                                                  inv_tau, colours)
                        if class_scale > 0.0:
                            value += gumbel.add_class_cross_entropy(grad_logits, logits, hist,
                                                                    idx, class_scale, colours)
        class_value[bi, bj, bk] = value


# --- perspective variant (only for the paper's "w/o ortho" ablation) ---------------------------

@ti.func
def _nearest_voxel(p, n):
    return ti.math.clamp(ti.cast(ti.floor((p + 0.5) * n), ti.i32), 0, n - 1)


@ti.func
def _ray(origins: ti.template(), dirs: ti.template(), v, r, c):
    o = ti.Vector([origins[v, r, c, ax] for ax in ti.static(range(3))])
    d = ti.Vector([dirs[v, r, c, ax] for ax in ti.static(range(3))])
    return o, d


@ti.kernel
def render_perspective_views(density: ti.types.ndarray(), rgb: ti.types.ndarray(),
                origins: ti.types.ndarray(), dirs: ti.types.ndarray(), shift: float,
                step: float, depth_offset: float, out_rgb: ti.types.ndarray(),
                out_depth: ti.types.ndarray(), out_opacity: ti.types.ndarray()):
    """General rays (V,H,W,3) through the grid, nearest-voxel samples every `step` voxel
    lengths (each sample's interval = step). Depth = distance - depth_offset, background on the
    box's exit point."""
    n = density.shape[0]
    ds = step / n  # world length of one step
    for v, r, c in ti.ndrange(origins.shape[0], origins.shape[1], origins.shape[2]):
        o, d = _ray(origins, dirs, v, r, c)
        t0, t1 = box_clip(o, d)
        trans = 1.0
        colour = ti.Vector([0.0, 0.0, 0.0])
        depth = 0.0
        steps = ti.max(ti.cast(ti.ceil((t1 - t0) / ds), ti.i32), 0)
        for s in range(steps):
            t = t0 + (s + 0.5) * ds
            idx = _nearest_voxel(o + t * d, n)
            decay = ti.exp(-softplus(density[idx[0], idx[1], idx[2]] + shift) * step)
            w = trans * (1.0 - decay)
            colour += w * _voxel_rgb(rgb, idx)
            depth += w * (t - depth_offset)
            trans *= decay
        for ch in ti.static(range(3)):
            out_rgb[v, r, c, ch] = colour[ch] + trans * BACKGROUND
        out_depth[v, r, c] = depth + trans * (ti.max(t1, t0) - depth_offset)
        out_opacity[v, r, c] = 1.0 - trans


@ti.kernel
def render_perspective_views_backward(density: ti.types.ndarray(), rgb: ti.types.ndarray(),
                         origins: ti.types.ndarray(), dirs: ti.types.ndarray(), shift: float,
                         step: float, depth_offset: float, out_rgb: ti.types.ndarray(),
                         out_depth: ti.types.ndarray(), out_opacity: ti.types.ndarray(),
                         g_rgb: ti.types.ndarray(), g_depth: ti.types.ndarray(),
                         g_opacity: ti.types.ndarray(), grad_density: ti.types.ndarray(),
                         grad_rgb: ti.types.ndarray()):
    """Backward of `render_perspective_views` (accumulates into grad_*). Rays may sample a voxel many times
    and share voxels, so the ray loop runs serially to keep the sums reproducible."""
    n = density.shape[0]
    ds = step / n
    ti.loop_config(serialize=True)
    for v, r, c in ti.ndrange(origins.shape[0], origins.shape[1], origins.shape[2]):
        o, d = _ray(origins, dirs, v, r, c)
        t0, t1 = box_clip(o, d)
        final_rgb = ti.Vector([out_rgb[v, r, c, ch] for ch in ti.static(range(3))])
        g_col = ti.Vector([g_rgb[v, r, c, ch] for ch in ti.static(range(3))])
        g_dep = g_depth[v, r, c]
        opacity_term = g_opacity[v, r, c] * (1.0 - out_opacity[v, r, c])
        trans = 1.0
        acc_rgb = ti.Vector([0.0, 0.0, 0.0])
        acc_depth = 0.0
        steps = ti.max(ti.cast(ti.ceil((t1 - t0) / ds), ti.i32), 0)
        for s in range(steps):
            t = t0 + (s + 0.5) * ds
            idx = _nearest_voxel(o + t * d, n)
            x = density[idx[0], idx[1], idx[2]] + shift
            decay = ti.exp(-softplus(x) * step)
            w = trans * (1.0 - decay)
            c_i = _voxel_rgb(rgb, idx)
            acc_rgb += w * c_i
            acc_depth += w * (t - depth_offset)
            trans_next = trans * decay
            d_tau = (g_col.dot(trans_next * c_i - (final_rgb - acc_rgb))
                     + g_dep * (trans_next * (t - depth_offset) - (out_depth[v, r, c] - acc_depth))
                     + opacity_term)
            grad_density[idx[0], idx[1], idx[2]] += d_tau * step * sigmoid(x)
            for ch in ti.static(range(3)):
                grad_rgb[idx[0], idx[1], idx[2], ch] += w * g_col[ch]
            trans = trans_next
