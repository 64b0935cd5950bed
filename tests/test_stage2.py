"""Stage 2 end to end on a synthetic coarse field: a sphere with a red and a blue half."""
import numpy as np
import pytest

from conftest import f64_ndarray

from taichi_voxify.cameras import axis_views
from taichi_voxify.coarse_field import CoarseField, density_shift, softplus
from taichi_voxify.errors import InputError, OptionError
from taichi_voxify.stage2 import (Stage2Config, fill_interior, resample_field, train_stage2)

PALETTE = np.array([[200, 30, 30], [30, 60, 200], [40, 180, 60]], np.uint8)
RADIUS = 0.35


def density_for_alpha(alpha):
    thickness = -np.log1p(-np.clip(alpha, 1e-12, 1 - 1e-12))
    return np.log(np.expm1(thickness)) - density_shift(1e-6)


def sphere_field(r, blob=False):
    """A blurred two-colour sphere, as Stage 1 would leave it; `blob` adds a faint cube of
    fog outside the sphere that the pixel art does not show."""
    x = (np.arange(r) + 0.5) / r - 0.5
    X, Y, Z = np.meshgrid(x, x, x, indexing="ij")
    dist = np.sqrt(X ** 2 + Y ** 2 + Z ** 2)
    alpha = 0.99 / (1 + np.exp((dist - RADIUS) * r / 0.3))
    if blob:
        alpha[(np.abs(X - 0.4) < 0.1) & (np.abs(Y - 0.4) < 0.1) & (np.abs(Z) < 0.1)] = 0.8
    t = (1 / (1 + np.exp(-X * r)))[..., None]  # a purple band where the halves meet
    rgb = (1 - t) * PALETTE[0] / 255 + t * PALETTE[1] / 255
    return CoarseField(density_for_alpha(alpha), rgb)


def sphere_pixel_art(n):
    """The six axis views of the analytic sphere: colour of the half the ray meets first."""
    arts, masks, depths = [], [], []
    for cam in axis_views():
        o, d = cam.rays(n, n)
        b = np.sum(o * d, -1)
        disc = b * b - (np.sum(o * o, -1) - RADIUS ** 2)
        hit = disc > 0
        t = -b - np.sqrt(np.maximum(disc, 0))
        left = (o + t[..., None] * d)[..., 0] < 0
        colour = np.where(left[..., None], PALETTE[0] / 255, PALETTE[1] / 255)
        arts.append(np.where(hit[..., None], colour, 1.0))
        masks.append(hit)
        depths.append(np.where(hit, t, np.nan))
    return np.stack(arts), np.stack(masks), np.stack(depths)


def _iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


@pytest.fixture(scope="module")
def sphere_run():
    coarse = sphere_field(10, blob=True)
    art, masks, _ = sphere_pixel_art(12)
    cfg = Stage2Config.preset("test", lr_density=0.05)
    return train_stage2(coarse, art, masks, PALETTE, config=cfg, seed=3), art, masks


def test_tiny_run_fits_silhouettes_with_palette_colours(sphere_run):
    result, art, masks = sphere_run
    assert result.occupancy.shape == (12, 12, 12)
    seen = result.renders.opacity > 0.5
    assert np.mean([_iou(seen[v], masks[v]) for v in range(6)]) >= 0.9
    used = result.colors_used()
    assert set(used) <= {0, 1, 2} and len(used) <= len(PALETTE)
    shown = np.all(np.isclose(result.renders.rgb[..., None, :], PALETTE / 255.0), -1).any(-1)
    assert shown[seen].all()  # every visible voxel shows exactly a palette colour
    right = np.all(np.abs(result.renders.rgb - art) < 1e-6, -1)[seen & masks]
    assert right.mean() >= 0.9
    loss = [h["loss"] for h in result.history]
    assert loss[-1] < loss[0]


def test_fog_outside_the_pixel_art_is_removed(sphere_run):
    result, _, _ = sphere_run
    start = resample_field(sphere_field(10, blob=True), 12)[0]
    filled_at_start = start > density_for_alpha(0.5)
    outside = filled_at_start & (_voxel_radius(12) > RADIUS + 0.1)  # the blob
    assert outside.sum() >= 4
    assert not result.occupancy[outside].any()


def _voxel_radius(n):
    x = (np.arange(n) + 0.5) / n - 0.5
    X, Y, Z = np.meshgrid(x, x, x, indexing="ij")
    return np.sqrt(X ** 2 + Y ** 2 + Z ** 2)


def _small_run(**kwargs):
    art, masks, depth = sphere_pixel_art(10)
    cfg = Stage2Config.preset("test", iterations=12)
    return train_stage2(sphere_field(10), art, masks, PALETTE, config=cfg, **kwargs)


def test_seeded_runs_are_bit_identical():
    a, b = _small_run(seed=5), _small_run(seed=5)
    assert np.array_equal(a.density, b.density) and np.array_equal(a.logits, b.logits)
    c = _small_run(seed=6)
    assert not np.array_equal(a.logits, c.logits)


@pytest.mark.parametrize("kwargs", [dict(use_gumbel=False), dict(ortho=False)])
def test_ablations_give_palette_voxel_art(kwargs):
    result = _small_run(**kwargs)
    assert result.occupancy.sum() > 0
    assert set(result.colors_used()) <= {0, 1, 2}
    art = result.to_voxel_art()
    assert art.filled_count == result.occupancy.sum() and len(art.palette) == 3


def test_mesh_depth_target_and_metadata():
    art, masks, depth = sphere_pixel_art(10)
    cfg = Stage2Config.preset("test", iterations=6)
    result = train_stage2(sphere_field(10), art, masks, PALETTE, depth_target=depth, config=cfg)
    assert result.metadata["depth_target"] == "given"
    assert result.history[-1]["depth"] < 0.05  # within half a voxel of the sphere's surface


def test_fill_interior_takes_nearest_surface_colour():
    occ = _voxel_radius(10) < 0.4
    occ &= ~(_voxel_radius(10) < 0.25)  # a hollow ball
    index = np.where(np.arange(10)[:, None, None] < 5, 0, 1) * np.ones((10, 10, 10), int)
    filled, new_index = fill_interior(occ, index)
    assert filled[5, 5, 5] and filled.sum() > occ.sum()
    assert new_index[2 + 1, 5, 5] == 0 and new_index[6, 5, 5] == 1


def test_resampling_keeps_opacity_per_length():
    coarse = CoarseField(np.full((8, 8, 8), density_for_alpha(0.5)), np.full((8, 8, 8, 3), 0.5))
    density, rgb = resample_field(coarse, 16)
    alpha = 1 - np.exp(-softplus(density + coarse.shift))
    np.testing.assert_allclose(alpha, 1 - np.sqrt(0.5), rtol=1e-6)  # two half voxels = one
    assert rgb.shape == (16, 16, 16, 3)


def test_presets_and_temperature_schedule():
    paper = Stage2Config.preset("paper")
    assert paper.iterations == 6500 and paper.lr_density == 5e-3 and paper.lr_logits == 0.1
    assert paper.temperature(0) == (1.0, False)
    assert paper.temperature(4999)[1] is False and paper.temperature(5000)[1] is True
    taus = [paper.temperature(s)[0] for s in range(0, 6500, 50)]
    assert taus == sorted(taus, reverse=True) and taus[-1] == pytest.approx(0.1)
    with pytest.raises(OptionError):
        Stage2Config.preset("slow")
    with pytest.raises(OptionError):
        Stage2Config.preset("fast", iterations=0).validate()


def test_bad_inputs_are_refused():
    art, masks, _ = sphere_pixel_art(10)
    with pytest.raises(InputError, match="pixel art"):
        train_stage2(sphere_field(10), art[:5], masks, PALETTE)
    with pytest.raises(InputError, match="masks"):
        train_stage2(sphere_field(10), art, masks[:, :5], PALETTE)
    with pytest.raises(InputError, match="CLIP"):
        train_stage2(sphere_field(10), art, masks, PALETTE, clip=object())


def _cube_with_conflicting_corner(n=8):
    """A white cube whose top-front-right corner voxel +x and +z want black and +y wants white;
    the palette's grey is their mean, the colour a squared colour error settles on."""
    from taichi_voxify.stage2 import render_voxel_art

    palette = np.array([[255, 255, 255], [0, 0, 0], [85, 85, 85]], np.uint8)
    occ = np.zeros((n, n, n), bool)
    occ[1:-1, 1:-1, 1:-1] = True
    white = render_voxel_art(occ, np.zeros((n, n, n), int), palette / 255.0)
    corner = np.zeros((n, n, n), int)
    corner[n - 2, n - 2, n - 2] = 1
    marked = render_voxel_art(occ, corner, palette / 255.0)
    art = marked.rgb.copy()
    art[2] = white.rgb[2]  # +y (view 2) sees the corner white
    coarse = CoarseField(np.where(occ, density_for_alpha(0.95), density_for_alpha(1e-4)),
                         np.full((n, n, n, 3), 0.7))
    return coarse, art, white.opacity > 0.5, palette, (n - 2,) * 3


@pytest.mark.parametrize("w_class,colour", [(1.0, 1), (0.0, 2)])
def test_conflicting_views_give_the_majority_colour_not_the_mean(w_class, colour):
    coarse, art, masks, palette, corner = _cube_with_conflicting_corner()
    cfg = Stage2Config.preset("test", iterations=80, w_class=w_class)
    result = train_stage2(coarse, art, masks, palette, config=cfg, seed=1)
    assert result.occupancy[corner]
    assert result.color_index[corner] == colour  # black (2 views of 3) with the cross-entropy
    if w_class:
        assert "class" in result.history[-1]


def test_voxel_art_views_are_what_the_axis_renderer_draws_of_solid_voxels():
    """render_voxel_art finds the first filled voxel per column in numpy; the differentiable
    axis renderer, given the same voxels as fully opaque cells, must draw the same images."""
    from taichi_voxify.stage2 import AxisViewRenderer, render_voxel_art

    n, rng = 7, np.random.default_rng(4)
    occupancy = rng.random((n, n, n)) < 0.15
    occupancy[0, 0, :] = False  # some columns see nothing
    index = rng.integers(0, len(PALETTE), (n, n, n))
    palette = PALETTE / 255.0
    renderer = AxisViewRenderer(n, 0.0, skip_alpha=1e-4, t_min=1e-6)
    renderer.forward(f64_ndarray(np.where(occupancy, 40.0, -40.0)), f64_ndarray(palette[index]))
    want, got = renderer.images(), render_voxel_art(occupancy, index, palette)
    assert 0 < got.opacity.mean() < 1
    for a, b in ((got.rgb, want.rgb), (got.depth, want.depth), (got.opacity, want.opacity)):
        np.testing.assert_allclose(a, b, atol=1e-12)
