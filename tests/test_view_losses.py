"""Stage 2's image losses on the device (kernels/view_losses.py) against a numpy twin, and
their gradients against central finite differences in float64."""
import numpy as np
import pytest

from taichi_voxify.stage2 import Stage2Config, ViewLosses
from taichi_voxify import ndarrays

pytestmark = pytest.mark.usefixtures("f64_backend")


def numpy_losses(rgb, depth, opacity, pixel_art, masks, depth_target, cfg):
    """The terms as Stage 2 defines them (package docstring), unweighted, in numpy."""
    pixel = float(np.mean((rgb - pixel_art) ** 2))
    background = ~masks
    alpha = float(np.sum(opacity ** 2 * background)) / max(int(background.sum()), 1)
    valid = masks & np.isfinite(depth_target)
    x = np.where(valid, depth - np.nan_to_num(depth_target), 0.0)
    if cfg.depth_loss == "l1":
        per = np.abs(x)
    else:
        per = np.where(np.abs(x) < cfg.depth_beta, 0.5 * x * x / cfg.depth_beta,
                       np.abs(x) - 0.5 * cfg.depth_beta)
    depth_term = float((per * valid).sum()) / max(int(valid.sum()), 1)
    return pixel, alpha, depth_term


def _case(n=2, seed=0):
    rng = np.random.default_rng(seed)
    out = (rng.random((6, n, n, 3)), rng.random((6, n, n)), rng.random((6, n, n)))
    masks = rng.random((6, n, n)) < 0.6
    depth_target = np.where(rng.random((6, n, n)) < 0.8, rng.random((6, n, n)), np.nan)
    depth_target[0, 0, 0] = out[1][0, 0, 0] + 0.01  # inside the smooth-L1 knee
    masks[0, 0, 0] = True
    return out, rng.random((6, n, n, 3)), masks, depth_target


def _evaluate(losses, out):
    device_out = tuple(ndarrays.from_numpy(a) for a in out)
    grads = tuple(ndarrays.zeros(a.shape) for a in out)
    losses.compute(device_out, grads)
    return losses.values(), tuple(g.to_numpy() for g in grads)


@pytest.mark.parametrize("kind", ["smooth_l1", "l1"])
def test_losses_match_numpy_twin_and_finite_differences(kind):
    cfg = Stage2Config(depth_loss=kind, w_pixel=3.0, w_alpha=5.0, w_depth=7.0)
    out, pixel_art, masks, depth_target = _case()
    losses = ViewLosses(pixel_art, masks, depth_target, cfg)
    values, grads = _evaluate(losses, out)
    want = numpy_losses(*out, pixel_art, masks, depth_target, cfg)
    for name, w in zip(("pixel", "alpha", "depth"), want):
        assert values[name] == pytest.approx(w, rel=1e-12)
    assert values["loss"] == pytest.approx(3 * want[0] + 5 * want[1] + 7 * want[2], rel=1e-12)
    eps = 1e-7
    for k, grad in enumerate(grads):
        fd = np.zeros_like(out[k])
        for i in np.ndindex(out[k].shape):
            plus = [a.copy() for a in out]
            minus = [a.copy() for a in out]
            plus[k][i] += eps
            minus[k][i] -= eps
            fd[i] = (_evaluate(losses, plus)[0]["loss"]
                     - _evaluate(losses, minus)[0]["loss"]) / (2 * eps)
        np.testing.assert_allclose(grad, fd, atol=1e-6)
        assert np.abs(fd).max() > 0.01


def test_without_depth_target_the_depth_term_is_off():
    out, pixel_art, masks, _ = _case(seed=1)
    values, grads = _evaluate(ViewLosses(pixel_art, masks, None, Stage2Config()), out)
    assert values["depth"] == 0.0 and not grads[1].any()
    assert values["alpha"] > 0 and grads[2][~masks].all() and not grads[2][masks].any()
