"""Palette Gumbel-Softmax (kernels/gumbel.py) against a numpy twin, finite differences of the
soft phase in float64, and the straight-through phase."""
import numpy as np
import pytest

from conftest import f64_ndarray

from taichi_voxify.stage2 import PaletteQuantizer, gumbel_noise_table, initial_logits

PALETTE = np.array([[0.9, 0.1, 0.1], [0.1, 0.8, 0.2], [0.2, 0.2, 0.9], [1.0, 1.0, 1.0]])
TABLE = 1 << 12


pytestmark = pytest.mark.usefixtures("f64_backend")
_nd = f64_ndarray


def _pcg(x):
    state = (x * np.uint32(747796405) + np.uint32(2891336453)).astype(np.uint32)
    word = (((state >> ((state >> np.uint32(28)) + np.uint32(4))) ^ state)
            * np.uint32(277803737)).astype(np.uint32)
    return (word >> np.uint32(22)) ^ word


def reference_gumbel(logits, step, tau, hard, seed):
    """Twin of gumbel_softmax: the same hashed noise slots, softmax in numpy."""
    table = gumbel_noise_table(seed, TABLE)
    flat = np.arange(logits.size, dtype=np.uint32).reshape(logits.shape)
    with np.errstate(over="ignore"):
        slots = _pcg(flat ^ _pcg(np.array([step], dtype=np.uint32))) % np.uint32(TABLE)
    y = (logits + table[slots]) / tau
    soft = np.exp(y - y.max(axis=-1, keepdims=True))
    soft /= soft.sum(axis=-1, keepdims=True)
    rgb = PALETTE[np.argmax(y, axis=-1)] if hard else soft @ PALETTE
    return soft, rgb


def _random_logits(n, seed):
    rng = np.random.default_rng(seed)
    return initial_logits(rng.random((n, n, n, 3)), PALETTE) + rng.normal(0, 0.5, (n, n, n, 4))


def _quantizer(n, seed=0):
    return PaletteQuantizer(PALETTE, seed=seed, table_size=TABLE)


@pytest.mark.parametrize("hard", [False, True])
def test_forward_matches_twin(hard):
    logits = _random_logits(5, seed=1)
    q = _quantizer(5, seed=3)
    rgb = q.forward(_nd(logits), step=17, tau=0.7, hard=hard).to_numpy()
    _, want = reference_gumbel(logits, 17, 0.7, hard, seed=3)
    np.testing.assert_allclose(rgb, want, atol=1e-12)


def _loss_and_grad(q, logits, weights, step, tau, hard):
    nd = _nd(logits)
    rgb = q.forward(nd, step, tau, hard).to_numpy()
    grad = _nd(np.zeros_like(logits))
    q.backward(nd, _nd(weights), grad)
    return float(np.sum(weights * rgb)), grad.to_numpy()


def test_soft_backward_matches_finite_differences():
    n, eps = 3, 1e-6
    logits = _random_logits(n, seed=4)
    weights = np.random.default_rng(5).normal(size=(n, n, n, 3))
    q = _quantizer(n)
    _, grad = _loss_and_grad(q, logits, weights, step=3, tau=0.5, hard=False)
    fd = np.zeros_like(logits)
    for i in np.ndindex(logits.shape):
        plus, minus = logits.copy(), logits.copy()
        plus[i] += eps
        minus[i] -= eps
        fd[i] = (_loss_and_grad(q, plus, weights, 3, 0.5, False)[0]
                 - _loss_and_grad(q, minus, weights, 3, 0.5, False)[0]) / (2 * eps)
    assert np.linalg.norm(grad - fd) / np.linalg.norm(fd) < 1e-6


def test_straight_through_uses_palette_colours_and_soft_gradient():
    n = 4
    logits = _random_logits(n, seed=6)
    weights = np.random.default_rng(7).normal(size=(n, n, n, 3))
    q = _quantizer(n)
    _, soft_grad = _loss_and_grad(q, logits, weights, step=9, tau=0.3, hard=False)
    _, hard_grad = _loss_and_grad(q, logits, weights, step=9, tau=0.3, hard=True)
    hard_rgb = q.rgb.to_numpy().reshape(-1, 3)
    assert np.array_equal(hard_grad, soft_grad)
    assert np.all(np.isclose(hard_rgb[:, None, :], PALETTE[None]).all(-1).any(-1))
    assert np.abs(hard_grad).max() > 1e-3


def test_noise_is_seeded_per_step_and_follows_gumbel_max():
    n = 16
    probs = np.array([0.1, 0.2, 0.3, 0.4])
    logits = np.broadcast_to(np.log(probs), (n, n, n, 4)).copy()
    q = _quantizer(n, seed=11)
    first = q.forward(_nd(logits), step=1, tau=1.0, hard=True).to_numpy()
    again = q.forward(_nd(logits), step=1, tau=1.0, hard=True).to_numpy()
    other = q.forward(_nd(logits), step=2, tau=1.0, hard=True).to_numpy()
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    chosen = np.argmin(np.abs(first.reshape(-1, 1, 3) - PALETTE).sum(-1), axis=1)
    freq = np.bincount(chosen, minlength=4) / chosen.size
    np.testing.assert_allclose(freq, probs, atol=0.03)  # Gumbel-max samples the softmax


def test_noise_table_size_must_be_a_power_of_two():
    """The kernels take a slot's remainder with a mask, which is only the remainder for a
    power of two: any other size is refused, not silently skewed."""
    from taichi_voxify.errors import OptionError

    with pytest.raises(OptionError, match="power of two"):
        PaletteQuantizer(PALETTE, seed=0, table_size=3000)
    assert PaletteQuantizer(PALETTE, seed=0, table_size=1 << 10).noise.shape == (1 << 10,)
