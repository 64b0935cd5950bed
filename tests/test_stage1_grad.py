"""Stage 1 kernels in float64: the ray march against a slow numpy twin, its hand-written
backward and every regulariser gradient against central finite differences, Adam against numpy."""
import numpy as np
import pytest


RES = 5
SHIFT = float(np.log(1.0 / (1.0 - 1e-6) - 1.0))
TERM = 0.05  # high enough that dense rays stop early in this tiny grid
H = 1e-6
WEIGHTS = dict(w_mse=1.0, w_entropy=0.3, w_alpha=0.5, w_depth=2.0)


pytestmark = pytest.mark.usefixtures("f64_backend")


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(3)
    density = rng.normal(0.0, 6.0, (RES,) * 3) + 13.0  # shift is about -13.8
    rgb = rng.uniform(0.1, 0.9, (RES,) * 3 + (3,))
    mask = (rng.uniform(size=(RES,) * 3) > 0.25).astype(np.uint8)
    count = 16
    targets = rng.uniform(-0.4, 0.4, (count, 3))
    dirs = rng.normal(size=(count, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    origins = targets - 1.2 * dirs
    return dict(density=density, rgb=rgb, mask=mask, origins=origins, dirs=dirs,
                ids=np.arange(count, dtype=np.int32),
                target_rgb=rng.uniform(size=(count, 3)),
                target_alpha=np.where(np.arange(count) % 2, 1.0, rng.uniform(size=count)),
                target_depth=rng.uniform(0.5, 1.5, count))


def render(s, density=None, rgb=None, mask=None, term=TERM):
    from taichi_voxify.kernels.raymarch import render_rays

    n = len(s["ids"])
    out = np.zeros((n, 3)), np.zeros(n), np.zeros(n)
    render_rays(s["density"] if density is None else density, s["rgb"] if rgb is None else rgb,
                s["mask"] if mask is None else mask, s["origins"], s["dirs"], s["ids"], *out,
                SHIFT, term)
    return out


def loss_and_output_grads(s, out):
    from taichi_voxify.kernels.regularizers import ray_losses

    n = len(s["ids"])
    g_rgb, g_op, g_depth, losses = np.zeros((n, 3)), np.zeros(n), np.zeros(n), np.zeros((n, 4))
    ray_losses(out[0], out[1], out[2], s["target_rgb"], s["target_alpha"], s["target_depth"],
               s["ids"], s["origins"], s["dirs"], g_rgb, g_op, g_depth, losses,
               *WEIGHTS.values())
    total = (losses @ np.array(list(WEIGHTS.values()))).sum() / n
    return total, g_rgb, g_op, g_depth


def total_loss(s, **grids):
    return loss_and_output_grads(s, render(s, **grids))[0]


def analytic_grads(s):
    from taichi_voxify.kernels.grid import FIXED_POINT_SCALE
    from taichi_voxify.kernels.raymarch import backward_rays

    out = render(s)
    _, g_rgb, g_op, g_depth = loss_and_output_grads(s, out)
    assert np.count_nonzero(g_depth) >= 4
    fixed_d = np.zeros((RES,) * 3, np.int64)
    fixed_c = np.zeros((RES,) * 3 + (3,), np.int64)
    blocks = np.zeros((1, 1, 1), np.uint8)
    backward_rays(s["density"], s["rgb"], s["mask"], s["origins"], s["dirs"], s["ids"],
                  out[0], out[1], out[2], s["target_depth"], g_rgb, g_op, g_depth, fixed_d,
                  fixed_c, blocks, SHIFT, TERM, FIXED_POINT_SCALE)
    assert blocks[0, 0, 0] == 1
    return fixed_d / FIXED_POINT_SCALE, fixed_c / FIXED_POINT_SCALE


def central_difference(f, array):
    grad = np.zeros_like(array)
    for idx in np.ndindex(array.shape):
        keep = array[idx]
        array[idx] = keep + H
        up = f()
        array[idx] = keep - H
        down = f()
        array[idx] = keep
        grad[idx] = (up - down) / (2 * H)
    return grad


def relative_error(analytic, numeric):
    return np.abs(analytic - numeric).max() / np.abs(numeric).max()


# --- slow numpy twin of the forward ray march ---------------------------------------------

def reference_ray(density, rgb, mask, o, d, term):
    res = density.shape[0]
    with np.errstate(divide="ignore"):
        ta, tb = (-0.5 - o) / d, (0.5 - o) / d
    t0 = max(0.0, np.minimum(ta, tb).max())
    t1 = np.maximum(ta, tb).min()
    colour, depth, trans = np.zeros(3), 0.0, 1.0
    steps = int(np.ceil((t1 - t0) * res / 0.5)) if t1 > t0 else 0
    for k in range(steps):
        t = t0 + (k + 0.5) * 0.5 / res
        g = (o + t * d + 0.5) * res - 0.5
        cell = np.clip(np.floor(g + 0.5), 0, res - 1).astype(int)
        if not mask[tuple(cell)]:
            continue
        gc = np.clip(g, 0, res - 1)
        base = np.minimum(np.floor(gc).astype(int), res - 2)
        f = gc - base
        dens, col = 0.0, np.zeros(3)
        for corner in np.ndindex(2, 2, 2):
            w = np.prod([f[a] if corner[a] else 1 - f[a] for a in range(3)])
            idx = tuple(base + corner)
            dens += w * density[idx]
            col += w * rgb[idx]
        alpha = 1.0 - np.exp(-np.logaddexp(0.0, dens + SHIFT) * 0.5)
        colour += trans * alpha * col
        depth += trans * alpha * t
        trans *= 1.0 - alpha
        if trans < term:
            break
    return colour + trans, depth, trans


def test_forward_matches_numpy_twin(scene):
    rgb, depth, trans = render(scene)
    for n in range(len(scene["ids"])):
        ref = reference_ray(scene["density"], scene["rgb"], scene["mask"], scene["origins"][n],
                            scene["dirs"][n], TERM)
        np.testing.assert_allclose(rgb[n], ref[0], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose([depth[n], trans[n]], ref[1:], rtol=1e-10, atol=1e-12)


def test_scene_exercises_termination_and_mask(scene):
    _, _, trans = render(scene)
    assert (trans < TERM).sum() >= 3 and (trans > 0.5).sum() >= 1
    _, _, unmasked = render(scene, mask=np.ones_like(scene["mask"]))
    assert np.abs(unmasked - trans).max() > 1e-3


def test_density_gradient_matches_finite_differences(scene):
    g_density, _ = analytic_grads(scene)
    density = scene["density"].copy()
    numeric = central_difference(lambda: total_loss(scene, density=density), density)
    assert np.abs(numeric).max() > 1e-4
    assert relative_error(g_density, numeric) < 1e-6


def test_colour_gradient_matches_finite_differences(scene):
    _, g_rgb = analytic_grads(scene)
    rgb = scene["rgb"].copy()
    numeric = central_difference(lambda: total_loss(scene, rgb=rgb), rgb)
    assert np.abs(numeric).max() > 1e-4
    assert relative_error(g_rgb, numeric) < 1e-6


# --- regularisers -------------------------------------------------------------------------

REG = dict(w_tv_density=0.7, w_tv_rgb=1.3, w_noise=2.0)


def regularizer_total(density, rgb):
    from taichi_voxify.kernels.regularizers import regularizer_losses

    out = np.zeros((RES,) * 3 + (3,))
    regularizer_losses(density, rgb, out, SHIFT)
    return (out.reshape(-1, 3).sum(0) @ np.array(list(REG.values()))) / RES ** 3


@pytest.mark.parametrize("term", list(REG))
def test_regularizer_gradients_match_finite_differences(scene, term):
    from taichi_voxify.kernels.regularizers import regularizer_grads

    weights = {k: (v if k == term else 0.0) for k, v in REG.items()}
    density = np.random.default_rng(1).normal(0.0, 8.0, (RES,) * 3) - 6.0  # faint and solid
    rgb = scene["rgb"].copy()
    g_d, g_c = np.zeros_like(density), np.zeros_like(rgb)
    regularizer_grads(density, rgb, g_d, g_c, SHIFT, *weights.values())
    saved = dict(REG)
    REG.update(weights)
    try:
        grid = rgb if term == "w_tv_rgb" else density
        numeric = central_difference(lambda: regularizer_total(density, rgb), grid)
    finally:
        REG.update(saved)
    analytic = g_c if term == "w_tv_rgb" else g_d
    assert np.abs(numeric).max() > 1e-6
    assert relative_error(analytic, numeric) < 1e-6


# --- fixed point and Adam -----------------------------------------------------------------

def test_gather_applies_sigmoid_chain_and_clears_fixed_point(scene):
    from taichi_voxify.kernels.adam import gather_grads
    from taichi_voxify.kernels.grid import FIXED_POINT_SCALE

    rng = np.random.default_rng(5)
    fixed_d = np.zeros((RES,) * 3, np.int64)
    fixed_c = np.zeros((RES,) * 3 + (3,), np.int64)
    fixed_c[1, 2, 3] = (0.25 * FIXED_POINT_SCALE, 0, -FIXED_POINT_SCALE)
    fixed_d[0, 0, 0] = 3 * FIXED_POINT_SCALE
    rgb = rng.uniform(0.1, 0.9, (RES,) * 3 + (3,))
    g_d, g_c = np.ones((RES,) * 3), np.ones((RES,) * 3 + (3,))
    gather_grads(fixed_d, fixed_c, scene["density"], rgb, g_d, g_c, np.ones((1, 1, 1), np.uint8),
                 FIXED_POINT_SCALE, SHIFT, 0.0, 0.0, 0.0)
    s = rgb[1, 2, 3]
    np.testing.assert_allclose(g_c[1, 2, 3], np.array([0.25, 0, -1]) * s * (1 - s), rtol=1e-12)
    assert g_d[0, 0, 0] == 3.0 and g_d[1, 2, 3] == 0.0
    assert np.count_nonzero(g_d) == 1 and np.count_nonzero(g_c) == 2
    assert not fixed_d.any() and not fixed_c.any()


@pytest.mark.parametrize("channels", [None, 3])
def test_masked_adam_matches_numpy_skips_untouched_and_consumes_the_gradient(channels):
    """One Adam kernel for both stages: (R,R,R) and (R,R,R,C) grids, only flagged blocks, only
    entries with gradient; the gradient is zeroed after the step."""
    from taichi_voxify.kernels.adam import masked_adam
    from taichi_voxify.kernels.grid import BLOCK

    rng = np.random.default_rng(7)
    res = BLOCK + 2  # two blocks a side: the second one is left unflagged
    shape = (res,) * 3 + (() if channels is None else (channels,))
    param = rng.normal(size=shape)
    grad = rng.normal(size=shape) * (rng.uniform(size=shape) > 0.5)
    m, v = (np.abs(rng.normal(size=shape)) * 0.1 for _ in range(2))
    before = [a.copy() for a in (param, grad, m, v)]
    blocks = np.zeros((2, 2, 2), np.uint8)
    blocks[0, 0, 0] = 1
    b1, b2, lr, eps, t = 0.9, 0.99, 0.05, 1e-12, 3
    masked_adam(param, grad, m, v, blocks, lr, b1, b2, 1 - b1 ** t, 1 - b2 ** t, eps, -1.5, 1e30)
    m_want = b1 * before[2] + (1 - b1) * before[1]
    v_want = b2 * before[3] + (1 - b2) * before[1] ** 2
    want = np.maximum(before[0] - lr * (m_want / (1 - b1 ** t))
                      / (np.sqrt(v_want / (1 - b2 ** t)) + eps), -1.5)
    inside = np.zeros(shape, bool)
    inside[:BLOCK, :BLOCK, :BLOCK] = True
    moved = inside & (before[1] != 0)
    np.testing.assert_allclose(param[moved], want[moved], rtol=1e-12)
    np.testing.assert_allclose(m[moved], m_want[moved], rtol=1e-12)
    assert (param[~moved] == before[0][~moved]).all() and (m[~moved] == before[2][~moved]).all()
    assert (param[moved] == -1.5).any()  # the clamp acted
    assert not grad[inside].any() and (grad[~inside] == before[1][~inside]).all()
