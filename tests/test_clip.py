"""CLIP patch loss with a tiny randomly initialised open_clip model: gradients with respect to
the rendered pixels, their way into the voxel grids, and loading without weights."""
import time
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

from taichi_voxify import clip_bridge  # noqa: E402
from taichi_voxify.coarse_field import density_shift  # noqa: E402
from taichi_voxify.errors import VoxifyError  # noqa: E402
from taichi_voxify.stage2 import AxisViewRenderer  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """Torch's thread pool spins badly on a busy 2-core machine; one thread is fast here."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_clip(dtype=torch.float64):
    torch.manual_seed(0)
    model = open_clip.CLIP(
        embed_dim=16,
        vision_cfg=dict(layers=2, width=64, head_width=32, patch_size=8, image_size=32),
        text_cfg=dict(context_length=8, vocab_size=64, width=32, heads=2, layers=1))
    return clip_bridge.ClipPatchLoss.from_open_clip(model.to(dtype), patch_cells=4)


def _views(n, h, seed):
    rng = np.random.default_rng(seed)
    rendered = rng.random((6, n, n, 3))
    reference = rng.random((6, h, h, 3))
    masks = rng.random((6, n, n)) < 0.5
    return rendered, reference, masks


def test_pixel_gradient_matches_finite_differences():
    clip = tiny_clip()
    rendered, reference, masks = _views(8, 32, seed=1)
    picks = clip.patch_positions(masks, np.random.default_rng(2))
    assert len(picks) == 6
    loss, grad = clip.loss_and_grad(rendered, reference, picks)
    assert 0.0 < loss < 2.0
    touched = np.argwhere(np.abs(grad).sum(-1) > 0)
    assert len(touched) == 6 * 16  # exactly the 4x4 patch of every view
    eps = 1e-6
    for v, r, c in touched[:: len(touched) // 4]:
        for ch in range(3):
            plus, minus = rendered.copy(), rendered.copy()
            plus[v, r, c, ch] += eps
            minus[v, r, c, ch] -= eps
            fd = (clip.loss_and_grad(plus, reference, picks)[0]
                  - clip.loss_and_grad(minus, reference, picks)[0]) / (2 * eps)
            assert fd == pytest.approx(grad[v, r, c, ch], rel=1e-5, abs=1e-9)


def test_gradient_reaches_the_voxels_and_lowers_the_loss():
    import taichi as ti

    clip = tiny_clip()
    n = 8
    rng = np.random.default_rng(3)
    density = rng.normal(-density_shift(1e-6), 2.0, (n, n, n)).astype(np.float32)
    rgb = rng.random((n, n, n, 3)).astype(np.float32)
    nd = {name: ti.ndarray(ti.f32, a.shape) for name, a in (("d", density), ("c", rgb))}
    nd["d"].from_numpy(density)
    nd["c"].from_numpy(rgb)
    renderer = AxisViewRenderer(n, density_shift(1e-6))
    _, reference, masks = _views(n, 32, seed=4)
    picks = clip.patch_positions(masks, np.random.default_rng(5))

    def clip_loss(colours):
        nd["c"].from_numpy(colours.astype(np.float32))
        renderer.forward(nd["d"], nd["c"])
        return clip.loss_and_grad(renderer.images().rgb, reference, picks)

    loss0, pixel_grad = clip_loss(rgb)
    g_d = ti.ndarray(ti.f32, density.shape)
    g_c = ti.ndarray(ti.f32, rgb.shape)
    renderer.set_output_grads(pixel_grad, np.zeros((6, n, n)), np.zeros((6, n, n)))
    renderer.backward(nd["d"], nd["c"], g_d, g_c)
    grad_rgb, grad_density = g_c.to_numpy(), g_d.to_numpy()
    assert np.count_nonzero(grad_rgb) > 0 and np.count_nonzero(grad_density) > 0
    step = 0.05 * grad_rgb / np.abs(grad_rgb).max()
    assert clip_loss(rgb - step)[0] < loss0 < clip_loss(rgb + step)[0]


@pytest.fixture()
def no_hub(monkeypatch, tmp_path):
    monkeypatch.setattr(clip_bridge, "hub_reachable", lambda *a, **k: False)
    monkeypatch.setattr(clip_bridge, "_warned", set())
    return str(tmp_path)  # an empty model cache


def test_required_without_weights_fails_fast_and_clearly(no_hub):
    start = time.perf_counter()
    with pytest.raises(VoxifyError, match="CLIP is required but unavailable"):
        clip_bridge.load("required", cache_dir=no_hub)
    with pytest.raises(VoxifyError, match="does not exist"):
        clip_bridge.load("required", weights_path=no_hub + "/missing.pt")
    assert time.perf_counter() - start < 10


def test_auto_without_weights_warns_once_and_returns_none(no_hub):
    with pytest.warns(clip_bridge.ClipUnavailableWarning, match="CLIP loss disabled"):
        assert clip_bridge.load("auto", cache_dir=no_hub) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert clip_bridge.load("auto", cache_dir=no_hub) is None
    assert clip_bridge.load("off") is None
    with pytest.raises(VoxifyError, match="unknown CLIP mode"):
        clip_bridge.load("sometimes")


def test_clip_term_enters_stage2_training():
    from taichi_voxify.coarse_field import CoarseField
    from taichi_voxify.stage2 import Stage2Config, train_stage2

    n = 8
    rng = np.random.default_rng(6)
    coarse = CoarseField(rng.normal(-density_shift(1e-6), 3.0, (n, n, n)),
                         rng.random((n, n, n, 3)))
    art, reference, masks = _views(n, 32, seed=7)
    palette = np.array([[255, 0, 0], [0, 0, 255], [250, 250, 250]], np.uint8)
    cfg = Stage2Config.preset("test", iterations=4, log_every=1, w_clip=5.0)
    run = lambda clip: train_stage2(coarse, art, masks, palette, mesh_views_hr=reference,  # noqa
                                    config=cfg, clip=clip)
    with_clip, without = run(tiny_clip(torch.float32)), run(None)
    assert all("clip" in h for h in with_clip.history)
    assert not any("clip" in h for h in without.history)
    assert not np.array_equal(with_clip.logits, without.logits)


def test_clip_iqa_scores_matching_prompt_and_refuses_without_weights(tmp_path):
    """CLIP-IQA is 100 x cos(image, "A voxel art of {name}"); without real weights it refuses
    (a number from random weights would be meaningless)."""
    torch.manual_seed(0)
    model = open_clip.CLIP(
        embed_dim=16,
        vision_cfg=dict(layers=2, width=64, head_width=32, patch_size=8, image_size=32),
        text_cfg=dict(context_length=77, vocab_size=49408, width=32, heads=2, layers=1))
    iqa = clip_bridge.ClipIQA(model, open_clip.get_tokenizer("ViT-B-32"))
    images = np.random.default_rng(0).random((3, 40, 40, 3))
    score = iqa(images, "cow")
    with torch.no_grad():
        x = torch.as_tensor(images, dtype=torch.float32).permute(0, 3, 1, 2)
        img = model.encode_image(iqa.images._prepare(x, "bilinear"))
        txt = model.encode_text(open_clip.get_tokenizer("ViT-B-32")(["A voxel art of cow"]))
        expected = 100 * torch.nn.functional.cosine_similarity(img, txt, dim=-1).mean()
    assert score == pytest.approx(float(expected), rel=1e-5)
    assert -100.0 <= score <= 100.0
    assert iqa(images, "cow") != iqa(images, "space station")  # the prompt matters
    with pytest.raises(VoxifyError, match="real CLIP weights"):
        clip_bridge.clip_iqa_scorer(weights_path=str(tmp_path / "missing.pt"))
