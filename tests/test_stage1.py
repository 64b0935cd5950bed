"""Stage 1 training end to end on an analytic sphere: it learns the shape and colours, is
bit-identical run to run, renders depth in world units, and refuses bad input with one line."""
from dataclasses import replace

import numpy as np
import pytest

from taichi_voxify.benchmarks import sphere_renders
from taichi_voxify.cameras import axis_view, random_views
from taichi_voxify.errors import InputError, OptionError, ResourceError
from taichi_voxify.stage1 import Stage1Config, Stage1Trainer, train_stage1, training_cameras

RES = 16
WIDTH = 48


@pytest.fixture(scope="module")
def renders():
    return sphere_renders(training_cameras(Stage1Config.preset("test"), seed=0), WIDTH)


@pytest.fixture(scope="module")
def trained(renders):
    calls = []
    field = train_stage1(renders, RES, Stage1Config.preset("test"), seed=0,
                         progress=lambda *a: calls.append(a))
    return field, calls


def psnr_and_iou(field, cameras):
    reference = sphere_renders(cameras, WIDTH)
    psnrs, ious = [], []
    for v, cam in enumerate(cameras):
        rgb, _, opacity = field.render(cam, WIDTH)
        psnrs.append(-10 * np.log10(((rgb - reference.rgb[v]) ** 2).mean()))
        ours, theirs = opacity > 0.5, reference.alpha[v] > 0.5
        ious.append((ours & theirs).sum() / (ours | theirs).sum())
    return min(psnrs), min(ious)


def test_training_recovers_held_out_views(trained):
    field, _ = trained
    psnr, iou = psnr_and_iou(field, random_views(3, seed=123))
    assert iou > 0.9
    assert psnr > 20.0


def test_untrained_field_fails_the_same_check(renders):
    untrained = Stage1Trainer(renders, RES, Stage1Config.preset("test"), seed=0).field()
    psnr, iou = psnr_and_iou(untrained, random_views(3, seed=123))
    assert iou < 0.5 and psnr < 15.0


def test_progress_reports_falling_loss(trained):
    _, calls = trained
    assert calls[-1][:3] == ("stage1", 200, 200)
    assert calls[-1][3]["loss"] < 0.5 * calls[0][3]["loss"]


def test_rendered_depth_is_world_distance_to_the_surface(trained):
    field, _ = trained
    cam = axis_view("+z")  # origin on the z = 0.5 face, looking down -z
    _, depth, opacity = field.render(cam, WIDTH)
    centre = depth[WIDTH // 2 - 1: WIDTH // 2 + 1, WIDTH // 2 - 2: WIDTH // 2].mean()
    assert abs(centre - (0.5 - 0.32)) < 1.5 / RES  # sphere front near z = 0.32
    assert np.isinf(depth[0, 0]) and opacity[0, 0] < 1e-3


def test_same_seed_gives_bit_identical_grids(renders):
    config = replace(Stage1Config.preset("test"), iterations=30)
    a = train_stage1(renders, 12, config, seed=4)
    b = train_stage1(renders, 12, config, seed=4)
    c = train_stage1(renders, 12, config, seed=5)
    assert np.array_equal(a.density, b.density) and np.array_equal(a.rgb, b.rgb)
    assert not np.array_equal(a.density, c.density)


def test_bad_inputs_raise_one_line_errors(renders):
    config = Stage1Config.preset("test")
    cases = []
    with pytest.raises(OptionError) as e:
        train_stage1(renders, 4, config)
    cases.append(e)
    with pytest.raises(InputError) as e:
        train_stage1(replace(renders, cameras=[], rgb=renders.rgb[:0], alpha=renders.alpha[:0]),
                     RES, config)
    cases.append(e)
    nan_rgb = renders.rgb.copy()
    nan_rgb[2, 5, 5, 1] = np.nan
    with pytest.raises(InputError, match="NaN") as e:
        train_stage1(replace(renders, rgb=nan_rgb), RES, config)
    cases.append(e)
    blank = renders.alpha.copy()
    blank[3] = 0.0
    with pytest.raises(InputError, match="misses the object") as e:
        train_stage1(replace(renders, alpha=blank), RES, config)
    cases.append(e)
    with pytest.raises(ResourceError, match="GiB") as e:
        train_stage1(renders, 2048, config)
    cases.append(e)
    with pytest.raises(OptionError):
        Stage1Config.preset("slow")
    assert all("\n" not in str(c.value) for c in cases)


def test_visual_hull_keeps_the_sphere_and_carves_the_corners(renders):
    from taichi_voxify.benchmarks import SPHERE_CENTRE, SPHERE_RADIUS
    from taichi_voxify.stage1 import visual_hull

    hull = visual_hull(renders.cameras, renders.alpha, RES).astype(bool)
    centres = (np.indices((RES,) * 3).transpose(1, 2, 3, 0) + 0.5) / RES - 0.5
    dist = np.linalg.norm(centres - SPHERE_CENTRE, axis=-1)
    assert hull[dist < SPHERE_RADIUS].all()
    assert not hull[dist > SPHERE_RADIUS + 0.25].any()


def test_short_run_keeps_the_hull_mask_until_the_field_forms(renders):
    config = replace(Stage1Config.preset("test"), iterations=20, warmup=0.0, mask_every=5)
    trainer = Stage1Trainer(renders, RES, config, seed=0)
    for _ in range(config.iterations):
        trainer.step()
    assert not trainer.formed
    assert np.array_equal(trainer.mask.to_numpy(), trainer.hull.to_numpy())


def test_upsampled_field_renders_like_the_coarse_one(trained):
    from taichi_voxify.coarse_field import CoarseField
    from taichi_voxify.stage1 import upsample_field

    coarse, _ = trained
    density, rgb = upsample_field(coarse.density, coarse.rgb, 2 * RES, coarse.shift)
    fine = CoarseField(density, rgb, coarse.alpha_init)
    cam = random_views(1, seed=7)[0]
    (rgb_c, _, op_c), (rgb_f, _, op_f) = coarse.render(cam, WIDTH), fine.render(cam, WIDTH)
    assert np.abs(op_c - op_f).mean() < 0.02
    assert -10 * np.log10(((rgb_c - rgb_f) ** 2).mean()) > 30.0


def test_progressive_training_ends_at_full_resolution(renders):
    config = replace(Stage1Config.preset("test"), half_res_fraction=0.5, half_res_above=8)
    trainer = Stage1Trainer(renders, RES, config, seed=0)
    assert trainer.grid_resolution == RES // 2
    for _ in range(config.iterations):
        trainer.step()
    assert trainer.grid_resolution == RES
    psnr, iou = psnr_and_iou(trainer.field(), random_views(3, seed=123))
    assert iou > 0.85 and psnr > 20.0


def test_perspective_training_views_work_too():
    cams = random_views(12, seed=0, ortho=False)
    field = train_stage1(sphere_renders(cams, WIDTH), RES, Stage1Config.preset("test"))
    psnr, iou = psnr_and_iou(field, random_views(3, seed=123, ortho=False))
    assert iou > 0.85 and psnr > 20.0
