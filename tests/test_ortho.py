"""Stage 2 renderers (kernels/ortho.py) against slow numpy twins, and their hand-written
backward against central finite differences in float64."""
import numpy as np
import pytest

from conftest import f64_ndarray

from taichi_voxify.cameras import axis_views
from taichi_voxify.coarse_field import density_shift, softplus
from taichi_voxify.stage2 import AxisViewRenderer, PerspectiveRenderer, perspective_cameras

SHIFT = density_shift(1e-6)


pytestmark = pytest.mark.usefixtures("f64_backend")
_nd = f64_ndarray


def _random_grid(n, seed, empty_fraction=0.0):
    rng = np.random.default_rng(seed)
    density = rng.normal(-SHIFT, 2.0, (n, n, n))  # opacities spread over (0, 1)
    density[rng.random((n, n, n)) < empty_fraction] = -40.0
    return density, rng.random((n, n, n, 3))


def _composite(samples, alpha_of, rgb_of, depth_of, background_depth):
    """Front-to-back compositing of a list of samples over white."""
    trans, colour, depth = 1.0, np.zeros(3), 0.0
    for smp in samples:
        w = trans * alpha_of(smp)
        colour += w * rgb_of(smp)
        depth += w * depth_of(smp)
        trans *= 1.0 - alpha_of(smp)
    return colour + trans, depth + trans * background_depth, 1.0 - trans


def reference_axis_views(density, rgb):
    """Twin of render_axis_views built from the cameras themselves (not from VIEW_LAYOUT)."""
    n = density.shape[0]
    alpha = 1.0 - np.exp(-softplus(density + SHIFT))
    out_rgb, out_depth, out_opacity = (np.zeros((6, n, n, 3)), np.zeros((6, n, n)),
                                       np.zeros((6, n, n)))
    for v, cam in enumerate(axis_views()):
        origins, dirs = cam.rays(n, n)
        for r in range(n):
            for c in range(n):
                t = (np.arange(n) + 0.5) / n
                cells = np.floor((origins[r, c] + t[:, None] * dirs[r, c] + 0.5) * n).astype(int)
                samples = [(tuple(cell), ti) for cell, ti in zip(cells, t)]
                out_rgb[v, r, c], out_depth[v, r, c], out_opacity[v, r, c] = _composite(
                    samples, lambda s: alpha[s[0]], lambda s: rgb[s[0]], lambda s: s[1], 1.0)
    return out_rgb, out_depth, out_opacity


def _render(renderer, density, rgb):
    renderer.forward(_nd(density), _nd(rgb))
    return renderer.images()


def _backward(renderer, density, rgb, weights):
    d_nd, c_nd = _nd(density), _nd(rgb)
    renderer.forward(d_nd, c_nd)
    renderer.set_output_grads(*weights)
    g_d, g_c = _nd(np.zeros_like(density)), _nd(np.zeros_like(rgb))
    renderer.backward(d_nd, c_nd, g_d, g_c)
    return g_d.to_numpy(), g_c.to_numpy()


def _loss(renderer, density, rgb, weights):
    out = _render(renderer, density, rgb)
    return sum(float(np.sum(w * o)) for w, o in zip(weights, (out.rgb, out.depth, out.opacity)))


def _weights(n, seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(6, n, n, 3)), rng.normal(size=(6, n, n)), rng.normal(size=(6, n, n))


def _central_difference(f, array, eps):
    """d f / d array by central differences; f takes a perturbed copy of the array."""
    grad = np.zeros_like(array)
    for i in np.ndindex(array.shape):
        plus, minus = array.copy(), array.copy()
        plus[i] += eps
        minus[i] -= eps
        grad[i] = (f(plus) - f(minus)) / (2 * eps)
    return grad


def _finite_difference(renderer, density, rgb, weights, eps=1e-6):
    return (_central_difference(lambda d: _loss(renderer, d, rgb, weights), density, eps),
            _central_difference(lambda c: _loss(renderer, density, c, weights), rgb, eps))


def _rel_err(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


def test_axis_views_match_camera_twin():
    density, rgb = _random_grid(5, seed=1)
    out = _render(AxisViewRenderer(5, SHIFT, skip_alpha=0.0, t_min=0.0), density, rgb)
    ref = reference_axis_views(density, rgb)
    for got, want in zip((out.rgb, out.depth, out.opacity), ref):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_one_pixel_per_column_of_a_single_voxel():
    n = 4
    density = np.full((n, n, n), -40.0)
    density[3, 1, 0] = 40.0  # x = 3 (right end), y = 1, z = 0 (back)
    out = _render(AxisViewRenderer(n, SHIFT), density, np.zeros((n, n, n, 3)))
    hit = out.opacity > 0.5
    assert hit.sum(axis=(1, 2)).tolist() == [1] * 6
    # +z (front view): x=3 -> last column, y=1 -> row n-1-1; it is the back voxel: depth 3.5/4
    assert hit[4, 2, 3] and out.depth[4, 2, 3] == pytest.approx(3.5 / n)
    assert hit[0, 2, 3] and out.depth[0, 2, 3] == pytest.approx(0.5 / n)  # +x sees it first


@pytest.mark.parametrize("empty_fraction,t_min", [(0.0, 0.0), (0.5, 1e-3)])
def test_axis_backward_matches_finite_differences(empty_fraction, t_min):
    n = 4
    density, rgb = _random_grid(n, seed=2, empty_fraction=empty_fraction)
    renderer = AxisViewRenderer(n, SHIFT, skip_alpha=1e-4 if empty_fraction else 0.0,
                                t_min=t_min)
    weights = _weights(n, seed=3)
    g_density, g_rgb = _backward(renderer, density, rgb, weights)
    fd_density, fd_rgb = _finite_difference(renderer, density, rgb, weights)
    assert _rel_err(g_density, fd_density) < 1e-6
    assert _rel_err(g_rgb, fd_rgb) < 1e-6
    assert np.abs(g_density).max() > 1e-3


def test_skipped_columns_and_early_stop_change_little():
    density, rgb = _random_grid(6, seed=4, empty_fraction=0.6)
    exact = _render(AxisViewRenderer(6, SHIFT, skip_alpha=0.0, t_min=0.0), density, rgb)
    fast = _render(AxisViewRenderer(6, SHIFT, skip_alpha=1e-4, t_min=1e-4), density, rgb)
    np.testing.assert_allclose(fast.rgb, exact.rgb, atol=1e-3)
    np.testing.assert_allclose(fast.opacity, exact.opacity, atol=1e-3)


def test_backward_is_bit_reproducible():
    n = 6
    density, rgb = _random_grid(n, seed=5)
    renderer = AxisViewRenderer(n, SHIFT)
    first = _backward(renderer, density, rgb, _weights(n, seed=6))
    second = _backward(renderer, density, rgb, _weights(n, seed=6))
    for a, b in zip(first, second):
        assert np.array_equal(a, b)


def reference_perspective(density, rgb, distance, step):
    n = density.shape[0]
    alpha = 1.0 - np.exp(-softplus(density + SHIFT) * step)
    out = [np.zeros((6, n, n, 3)), np.zeros((6, n, n)), np.zeros((6, n, n))]
    for v, cam in enumerate(perspective_cameras(distance)):
        origins, dirs = cam.rays(n, n)
        for r in range(n):
            for c in range(n):
                o, d = origins[r, c], dirs[r, c]
                with np.errstate(divide="ignore"):
                    ta, tb = (-0.5 - o) / d, (0.5 - o) / d
                t0 = max(0.0, np.minimum(ta, tb).max())
                t1 = np.maximum(ta, tb).min()
                ds = step / n
                ts = t0 + (np.arange(max(int(np.ceil((t1 - t0) / ds)), 0)) + 0.5) * ds
                cells = np.clip(np.floor((o + ts[:, None] * d + 0.5) * n).astype(int), 0, n - 1)
                samples = [(tuple(cell), t - (distance - 0.5)) for cell, t in zip(cells, ts)]
                res = _composite(samples, lambda s: alpha[s[0]], lambda s: rgb[s[0]],
                                 lambda s: s[1], max(t0, t1) - (distance - 0.5))
                for arr, val in zip(out, res):
                    arr[v, r, c] = val
    return out


def test_perspective_matches_twin_and_misaligns():
    n = 5
    density, rgb = _random_grid(n, seed=7)
    out = _render(PerspectiveRenderer(n, SHIFT, distance=2.5), density, rgb)
    ref = reference_perspective(density, rgb, 2.5, 0.5)
    for got, want in zip((out.rgb, out.depth, out.opacity), ref):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    ortho = _render(AxisViewRenderer(n, SHIFT, skip_alpha=0.0, t_min=0.0), density, rgb)
    assert np.abs(ortho.rgb - out.rgb).max() > 0.05  # the ablation really differs


def test_perspective_backward_matches_finite_differences():
    n = 3
    density, rgb = _random_grid(n, seed=8)
    renderer = PerspectiveRenderer(n, SHIFT, distance=2.5)
    weights = _weights(n, seed=9)
    g_density, g_rgb = _backward(renderer, density, rgb, weights)
    fd_density, fd_rgb = _finite_difference(renderer, density, rgb, weights)
    assert _rel_err(g_density, fd_density) < 1e-6
    assert _rel_err(g_rgb, fd_rgb) < 1e-6


def reference_pixel_classes(density, target, weight, palette_size):
    """Twin of accumulate_pixel_classes from the cameras: each pixel adds weight * T_i alpha_i
    to its target colour at every voxel its ray crosses."""
    n = density.shape[0]
    alpha = 1.0 - np.exp(-softplus(density + SHIFT))
    hist = np.zeros((n, n, n, palette_size))
    for v, cam in enumerate(axis_views()):
        origins, dirs = cam.rays(n, n)
        t = (np.arange(n) + 0.5) / n
        for r, c in zip(*np.nonzero(target[v] >= 0)):
            cells = np.floor((origins[r, c] + t[:, None] * dirs[r, c] + 0.5) * n).astype(int)
            trans = 1.0
            for cell in map(tuple, cells):
                hist[cell + (target[v, r, c],)] += weight[v, r, c] * trans * alpha[cell]
                trans *= 1.0 - alpha[cell]
    return hist


PALETTE = np.array([[0.9, 0.1, 0.1], [0.1, 0.8, 0.2], [0.2, 0.2, 0.9]])


def _quantizer(step=5, tau=0.6, hard=False):
    from taichi_voxify.stage2 import PaletteQuantizer

    q = PaletteQuantizer(PALETTE, seed=2, table_size=1 << 10)
    q.set_step(step, tau, hard)
    return q


@pytest.mark.parametrize("hard", [False, True])
def test_logits_quantized_in_the_march_equal_a_quantized_grid(hard):
    n = 4
    density, _ = _random_grid(n, seed=11, empty_fraction=0.3)
    logits = np.random.default_rng(12).normal(0, 2, (n, n, n, len(PALETTE)))
    q = _quantizer(hard=hard)
    renderer = AxisViewRenderer(n, SHIFT)
    renderer.forward(_nd(density), _nd(logits), q)
    fused = renderer.images()
    grid = q.forward(_nd(logits), 5, 0.6, hard).to_numpy()
    separate = _render(AxisViewRenderer(n, SHIFT), density, grid)
    for got, want in zip((fused.rgb, fused.depth, fused.opacity),
                         (separate.rgb, separate.depth, separate.opacity)):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def _logit_grad(density, logits, weights, target, class_scale):
    n = density.shape[0]
    renderer = AxisViewRenderer(n, SHIFT, skip_alpha=1e-4, t_min=1e-3)
    d_nd, l_nd, q = _nd(density), _nd(logits), _quantizer()
    renderer.forward(d_nd, l_nd, q)
    renderer.set_output_grads(*weights)
    g_d, g_l = _nd(np.zeros_like(density)), _nd(np.zeros_like(logits))
    import taichi as ti

    t_nd = ti.ndarray(ti.i32, target.shape)
    t_nd.from_numpy(target)
    renderer.backward(d_nd, l_nd, g_d, g_l, q, t_nd, class_scale)
    return g_d.to_numpy(), g_l.to_numpy(), renderer


def test_logit_backward_through_the_quantizer_matches_finite_differences():
    n, eps = 3, 1e-6
    density, _ = _random_grid(n, seed=13, empty_fraction=0.3)
    logits = np.random.default_rng(14).normal(0, 1, (n, n, n, len(PALETTE)))
    weights = _weights(n, seed=15)
    no_target = np.full((6, n, n), -1, np.int32)
    g_density, g_logits, renderer = _logit_grad(density, logits, weights, no_target, 0.0)

    def loss(d, lg):
        renderer.forward(_nd(d), _nd(lg), _quantizer())
        out = renderer.images()
        return sum(float(np.sum(w * o)) for w, o in zip(weights, (out.rgb, out.depth,
                                                                   out.opacity)))

    fd = _central_difference(lambda lg: loss(density, lg), logits, eps)
    assert _rel_err(g_logits, fd) < 1e-6 and np.abs(fd).max() > 1e-3
    fd_d = _central_difference(lambda d: loss(d, logits), density, eps)
    assert _rel_err(g_density, fd_d) < 1e-6


def test_touched_blocks_cover_every_voxel_with_gradient():
    from taichi_voxify.kernels.grid import BLOCK

    n = BLOCK + 3  # two blocks a side
    density = np.full((n, n, n), -40.0)
    density[1:4, 2:5, BLOCK + 1:BLOCK + 3] = 5.0 - SHIFT  # inside blocks (0, 0, 1)
    renderer = AxisViewRenderer(n, SHIFT)
    g_d = _backward(renderer, density, np.full((n, n, n, 3), 0.5), _weights(n, 16))[0]
    touched = renderer.touched.to_numpy()
    assert touched.tolist() == [[[0, 1], [0, 0]], [[0, 0], [0, 0]]]
    assert np.abs(g_d[:BLOCK, :BLOCK, BLOCK:]).max() > 0 and not g_d[:, :, :BLOCK].any()


def reference_cross_entropy(density, logits, target):
    """The palette cross-entropy from the camera twin: sum over voxels and colours of
    -hist log softmax(logits), hist the visibility each pixel's target colour asks for."""
    hist = reference_pixel_classes(density, target, np.ones(target.shape), logits.shape[-1])
    z = logits - logits.max(axis=-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return float(-(hist * log_p).sum())


def test_fused_cross_entropy_matches_camera_twin_and_finite_differences():
    n, eps, scale = 3, 1e-6, 0.7
    density, _ = _random_grid(n, seed=17, empty_fraction=0.3)
    logits = np.random.default_rng(18).normal(0, 1, (n, n, n, len(PALETTE)))
    target = np.random.default_rng(19).integers(-1, len(PALETTE), (6, n, n)).astype(np.int32)
    zero = tuple(np.zeros_like(w) for w in _weights(n, 0))
    _, g_logits, renderer = _logit_grad(density, logits, zero, target, scale)
    # the renderer's early stop (t_min) is off in the twin: compare with t_min 0
    exact = AxisViewRenderer(n, SHIFT, skip_alpha=0.0, t_min=0.0)
    d_nd, l_nd, q = _nd(density), _nd(logits), _quantizer()
    exact.forward(d_nd, l_nd, q)
    import taichi as ti

    t_nd = ti.ndarray(ti.i32, target.shape)
    t_nd.from_numpy(target)
    g_exact = _nd(np.zeros_like(logits))
    exact.backward(d_nd, l_nd, _nd(np.zeros_like(density)), g_exact, q, t_nd, scale)
    value = reference_cross_entropy(density, logits, target)
    assert exact.class_term() == pytest.approx(scale * value, rel=1e-10)
    fd = _central_difference(lambda lg: scale * reference_cross_entropy(density, lg, target),
                             logits, eps)
    assert _rel_err(g_exact.to_numpy(), fd) < 1e-6
    assert _rel_err(g_logits, fd) < 1e-2  # early termination drops only the last shares
