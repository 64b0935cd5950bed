"""Stage 2's image losses on the device (kernels/view_losses.py) against a numpy twin, and
their gradients against central finite differences in float64."""
import numpy as np
import pytest

from taichi_voxify.stage2 import Stage2Config, ViewLosses
from taichi_voxify.stage2.losses import surface_voxel_depth
from taichi_voxify import ndarrays

pytestmark = pytest.mark.usefixtures("f64_backend")


def numpy_losses(rgb, depth, opacity, pixel_art, masks, depth_target, cfg):
    """The terms as Stage 2 defines them (package docstring), unweighted, in numpy; the depth
    is fitted to the centre of the first voxel whose centre lies behind the surface (the last
    voxel where none does)."""
    pixel = float(np.mean((rgb - pixel_art) ** 2))
    background = ~masks
    alpha = float(np.sum(opacity ** 2 * background)) / max(int(background.sum()), 1)
    valid = masks & np.isfinite(depth_target)
    n = depth.shape[1]
    voxel = np.minimum(np.floor(np.nan_to_num(depth_target) * n + 0.5), n - 1)
    voxel_centre = (voxel + 0.5) / n
    x = np.where(valid, depth - voxel_centre, 0.0)
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
    depth_target[0, 0, 0] = 0.3
    out[1][0, 0, 0] = 0.75 + 0.01  # inside the smooth-L1 knee of its voxel's centre, 0.75
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


def _solid_column_depth(n, first, alpha_in_front=0.0):
    """The axis renderer's depth of a ray through solid voxels from `first` on, behind a voxel
    of opacity `alpha_in_front` just in front of them (kernels/ortho.py)."""
    return alpha_in_front * (first - 0.5) / n + (1 - alpha_in_front) * (first + 0.5) / n


def test_depth_term_asks_for_the_voxel_whose_centre_is_behind_the_surface():
    """A surface 0.7 into voxel 1 of 4 fills voxel 2 (voxel 1's centre lies in front of it):
    solid voxels from 2 on meet the depth target exactly, and neither the column one voxel
    further forward nor a half-transparent layer in front of it lowers the term (fitting the
    rendered depth to the surface depth itself preferred the column from voxel 1)."""
    n = 4
    masks = np.ones((6, n, n), bool)
    depth_target = np.full((6, n, n), (1 + 0.7) / n)
    losses = ViewLosses(np.zeros((6, n, n, 3)), masks, depth_target, Stage2Config())

    def depth_term(rendered):
        out = (np.zeros((6, n, n, 3)), np.full((6, n, n), rendered), np.ones((6, n, n)))
        return _evaluate(losses, out)[0]["depth"]

    behind = depth_term(_solid_column_depth(n, 2))
    assert behind == pytest.approx(0.0, abs=1e-12)
    assert depth_term(_solid_column_depth(n, 1)) > 0.01
    for alpha in (0.3, 0.5, 0.8):
        assert depth_term(_solid_column_depth(n, 2, alpha)) > 1e-4
    front_half = ViewLosses(np.zeros((6, n, n, 3)), masks, np.full((6, n, n), 1.3 / n),
                            Stage2Config())
    out = (np.zeros((6, n, n, 3)), np.full((6, n, n), _solid_column_depth(n, 1)),
           np.ones((6, n, n)))
    assert _evaluate(front_half, out)[0]["depth"] == pytest.approx(0.0, abs=1e-12)


def test_surface_voxel_depth_matches_a_solid_voxelisation():
    """For surfaces anywhere in the box, the target is the centre of the first voxel whose
    centre lies behind the surface (what a solid voxelisation fills), and NaN stays NaN."""
    n = 8
    depth = np.concatenate([np.linspace(0.0, 1.0, 97), [np.nan]])
    target = surface_voxel_depth(depth, n)
    centres = (np.arange(n) + 0.5) / n
    for d, t in zip(depth[:-1], target[:-1]):
        inside = centres[centres > d]
        assert t == (inside[0] if len(inside) else centres[-1])
    assert np.isnan(target[-1])
