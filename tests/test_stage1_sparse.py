"""Stage 1 on the block-sparse grid (kernels/sparse_march.py, taichi_voxify/stage1_sparse.py)
against the dense Stage 1, in float64: the sparse march, its gradients and the regularisers
equal the dense ones when the dense grid holds arbitrary values outside the active blocks (so a
value the sparse grid lacks would show), whole training runs match through mask refreshes that
retire and bring back blocks and through the progressive upscale, and the backward matches
finite differences."""
from dataclasses import replace

import numpy as np
import pytest

from taichi_voxify.coarse_field import density_shift
from taichi_voxify.sparse_grid import block_count

pytestmark = pytest.mark.usefixtures("f64_backend")
SHIFT = density_shift(1e-6)
TERM = 0.02
WEIGHTS = dict(w_mse=1.0, w_entropy=0.3, w_alpha=0.5, w_depth=2.0)
REG = dict(w_tv_density=0.7, w_tv_rgb=1.3, w_noise=2.0)


def _rays(rng, count, n):
    """Random rays through the box, plus rays along the axes, rays grazing its faces and two
    through the single cell of _masks."""
    targets = rng.uniform(-0.45, 0.45, (count, 3))
    targets[9:11] = (np.array([n // 2, 1, n - 3]) + 0.5) / n - 0.5
    dirs = rng.normal(size=(count, 3))
    axes = np.repeat(np.eye(3), 2, axis=0) * np.array([1, -1] * 3)[:, None]
    dirs[:6] = axes
    targets[6:9] = [[0.49, 0.1, 0.0], [-0.2, -0.495, 0.3], [0.1, 0.2, 0.499]]
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    return targets - 1.5 * dirs, dirs


def _case(n, mask, seed=0, count=48):
    rng = np.random.default_rng(seed)
    origins, dirs = _rays(rng, count, n)
    return dict(n=n, mask=mask.astype(np.uint8),
                density=rng.normal(-SHIFT - 1.0, 3.0, (n,) * 3),  # faint to nearly opaque
                rgb=rng.uniform(0.05, 0.95, (n,) * 3 + (3,)), origins=origins, dirs=dirs,
                ids=np.arange(count, dtype=np.int32), target_rgb=rng.uniform(size=(count, 3)),
                target_alpha=np.where(np.arange(count) % 2, 1.0, rng.uniform(size=count)),
                target_depth=rng.uniform(0.5, 1.5, count))


def _ball(n, centre, radius):
    g = np.indices((n,) * 3).transpose(1, 2, 3, 0)
    return np.linalg.norm(g - np.asarray(centre), axis=-1) <= radius


def _masks(n):
    faces = np.zeros((n,) * 3, bool)  # a slab touching two opposite faces and a corner blob
    faces[:, n // 2, :] = True
    faces |= _ball(n, (0, 0, n - 1), 2.5)
    single = np.zeros((n,) * 3, bool)
    single[n // 2, 1, n - 3] = True
    return {"blob": _ball(n, (0.3 * n, 0.6 * n, 0.4 * n), 0.25 * n) | single,
            "faces": faces, "single": single, "full": np.ones((n,) * 3, bool)}


def _sparse_grid(case, density=None, rgb=None):
    from taichi_voxify.stage1_sparse import SparseStage1Grid, covering_blocks

    grid = SparseStage1Grid(case["n"], covering_blocks(case["mask"]))
    grid.from_dense("density", case["density"] if density is None else density)
    grid.from_dense("rgb", case["rgb"] if rgb is None else rgb)
    grid.set_mask(case["mask"])
    return grid


def _to_dense(grid, flat, width=1):
    out = np.zeros((grid.n,) * 3 + (width,), np.asarray(flat).dtype)
    inside = grid.inside()
    out[tuple(grid.voxel_coords()[inside].T)] = np.asarray(flat).reshape(-1, width)[inside]
    return out[..., 0] if width == 1 else out


def _outputs(count):
    return np.zeros((count, 3)), np.zeros(count), np.zeros(count)


def _dense_forward(case, density=None, rgb=None):
    from taichi_voxify.kernels.raymarch import render_rays

    out = _outputs(len(case["ids"]))
    render_rays(case["density"] if density is None else density,
                case["rgb"] if rgb is None else rgb, case["mask"], case["origins"],
                case["dirs"], case["ids"], *out, SHIFT, TERM)
    return out


def _sparse_forward(case, grid):
    from taichi_voxify.kernels.sparse_march import render_rays

    out = _outputs(len(case["ids"]))
    render_rays(grid.block_map, grid.mask, grid.arrays["density"], grid.arrays["rgb"], grid.n,
                case["origins"], case["dirs"], case["ids"], *out, SHIFT, TERM)
    return out


def _loss(case, out):
    from taichi_voxify.kernels.regularizers import ray_losses

    count = len(case["ids"])
    grads = np.zeros((count, 3)), np.zeros(count), np.zeros(count)
    losses = np.zeros((count, 4))
    ray_losses(*out, case["target_rgb"], case["target_alpha"], case["target_depth"],
               case["ids"], case["origins"], case["dirs"], *grads, losses, *WEIGHTS.values())
    return (losses @ np.array(list(WEIGHTS.values()))).sum() / count, grads


def _dense_backward(case):
    from taichi_voxify.kernels.adam import gather_grads
    from taichi_voxify.kernels.grid import FIXED_POINT_SCALE, BLOCK
    from taichi_voxify.kernels.raymarch import backward_rays

    n = case["n"]
    out = _dense_forward(case)
    _, grads = _loss(case, out)
    fixed_d, fixed_c = np.zeros((n,) * 3, np.int64), np.zeros((n,) * 3 + (3,), np.int64)
    blocks = np.zeros((-(-n // BLOCK),) * 3, np.uint8)
    backward_rays(case["density"], case["rgb"], case["mask"], case["origins"], case["dirs"],
                  case["ids"], *out, case["target_depth"], *grads, fixed_d, fixed_c, blocks,
                  SHIFT, TERM, FIXED_POINT_SCALE)
    raw_d, raw_c = fixed_d / FIXED_POINT_SCALE, fixed_c / FIXED_POINT_SCALE
    g_d, g_c = np.zeros((n,) * 3), np.zeros((n,) * 3 + (3,))
    gather_grads(fixed_d, fixed_c, case["density"], case["rgb"], g_d, g_c, blocks,
                 FIXED_POINT_SCALE, SHIFT, *REG.values())
    return out, raw_d, raw_c, g_d, g_c


def _sparse_backward(case, grid):
    from taichi_voxify.kernels.grid import FIXED_POINT_SCALE
    from taichi_voxify.kernels.sparse_march import backward_rays, gather_grads

    out = _sparse_forward(case, grid)
    _, grads = _loss(case, out)
    backward_rays(grid.block_map, grid.mask, grid.arrays["density"], grid.arrays["rgb"], grid.n,
                  case["origins"], case["dirs"], case["ids"], *out, case["target_depth"],
                  *grads, grid.fixed_density, grid.fixed_rgb, grid.touched, SHIFT, TERM,
                  FIXED_POINT_SCALE)
    raw_d = _to_dense(grid, grid.fixed_density.to_numpy()) / FIXED_POINT_SCALE
    raw_c = _to_dense(grid, grid.fixed_rgb.to_numpy(), 3) / FIXED_POINT_SCALE
    a = grid.arrays
    gather_grads(grid.block_map, grid.block_coords, grid.n, grid.fixed_density, grid.fixed_rgb,
                 a["density"], a["rgb"], a["density_grad"], a["raw_rgb_grad"], grid.touched,
                 FIXED_POINT_SCALE, SHIFT, *REG.values())
    return (out, raw_d, raw_c, grid.to_dense("density_grad"), grid.to_dense("raw_rgb_grad"))


@pytest.mark.parametrize("kind", ["blob", "faces", "single", "full"])
@pytest.mark.parametrize("n", [14, 16])  # 14: the last block of each axis is half padding
def test_sparse_march_and_gradients_equal_dense(n, kind):
    """Forward, ray gradients and the gathered gradients with TV and noise: the dense grid
    holds random values everywhere, the sparse one only the blocks covering the mask."""
    case = _case(n, _masks(n)[kind], seed=n)
    grid = _sparse_grid(case)
    ref = _dense_backward(case)
    got = _sparse_backward(case, grid)
    for a, b in zip(got[0], ref[0]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    for a, b in zip(got[1:], ref[1:]):
        assert np.abs(b).max() > 1e-6  # the rays reach the grid and pass gradient
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    opacity = 1.0 - ref[0][2]
    assert opacity.max() > 0.02 and (opacity.min() < 0.01 or kind == "full")
    blocks = grid.blocks.sum()
    assert (blocks == block_count(n) ** 3) == (kind == "full")
    assert not grid.touched.to_numpy()[grid.slots:].any()


def test_sparse_backward_matches_finite_differences():
    from taichi_voxify.kernels.grid import FIXED_POINT_SCALE
    from taichi_voxify.kernels.sparse_march import backward_rays

    n, h = 6, 1e-6
    mask = np.zeros((n,) * 3, bool)
    mask[1:3, 2:5, 1:4] = True
    case = _case(n, mask, seed=2, count=24)
    grid = _sparse_grid(case)
    out = _sparse_forward(case, grid)
    _, grads = _loss(case, out)
    backward_rays(grid.block_map, grid.mask, grid.arrays["density"], grid.arrays["rgb"], n,
                  case["origins"], case["dirs"], case["ids"], *out, case["target_depth"],
                  *grads, grid.fixed_density, grid.fixed_rgb, grid.touched, SHIFT, TERM,
                  FIXED_POINT_SCALE)
    for name, fixed in (("density", grid.fixed_density), ("rgb", grid.fixed_rgb)):
        analytic = fixed.to_numpy() / FIXED_POINT_SCALE
        values = grid.get(name).ravel()
        numeric = np.zeros_like(values)
        for i in np.flatnonzero(np.repeat(grid.inside(), values.size // grid.voxels)):
            for sign in (1, -1):
                bumped = values.copy()
                bumped[i] += sign * h
                grid.set(name, bumped)
                numeric[i] += sign * _loss(case, _sparse_forward(case, grid))[0] / (2 * h)
        grid.set(name, values)
        assert np.abs(numeric).max() > 1e-4
        assert np.abs(analytic - numeric).max() < 1e-6 * np.abs(numeric).max()


@pytest.fixture(scope="module")
def sphere():
    from taichi_voxify.benchmarks import sphere_renders
    from taichi_voxify.stage1 import Stage1Config, training_cameras

    config = replace(Stage1Config.preset("test"), iterations=60, warmup=0.2, mask_every=4,
                     half_res_above=8, half_res_fraction=0.5)
    return config, sphere_renders(training_cameras(config, seed=0), 36)


def test_training_steps_equal_dense_through_refreshes_and_the_upscale(sphere):
    from taichi_voxify.stage1 import Stage1Trainer
    from taichi_voxify.stage1_sparse import SparseStage1Trainer

    config, renders = sphere
    dense = Stage1Trainer(renders, 32, config, seed=0)
    sparse = SparseStage1Trainer(renders, 32, config, seed=0)
    active, came_back = [], False
    for it in range(config.iterations):
        dense.step()
        before = sparse.grid.blocks.copy()
        sparse.step()
        if before.shape == sparse.grid.blocks.shape:
            parked = sparse._park.table >= 0
            came_back |= bool((sparse.grid.blocks & ~before & parked).any())
        active.append(sparse.active_fraction())
        if it % 10 == 9 or it == config.iterations // 2:
            for a, b in zip(sparse.dense_state(), dense.dense_state()):
                np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
            assert sparse.mask_fraction() == dense.mask_fraction()
    assert dense.formed and sparse.grid_resolution == 32
    assert min(active) < 0.9 and came_back  # blocks were retired and brought back
    inside = sparse.grid.inside()
    cells = tuple(sparse.grid.voxel_coords()[inside].T)
    for name, moment in (("density_v", dense.moments_density[1]),
                         ("raw_rgb_m", dense.moments_rgb[0])):
        want = moment.to_numpy()[cells]
        assert np.abs(want).max() > 0
        np.testing.assert_allclose(sparse.grid.get(name)[inside].reshape(want.shape), want,
                                   rtol=1e-9, atol=1e-15)
    a, b = sparse.field(), dense.field()
    np.testing.assert_allclose(a.density, b.density, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(a.rgb, b.rgb, rtol=1e-9, atol=1e-12)
    assert a.metadata["engine"] == "sparse" and b.metadata["engine"] == "dense"


def test_empty_visual_hull_is_an_input_error(sphere):
    from taichi_voxify.errors import InputError
    from taichi_voxify.stage1 import train_stage1

    config, renders = sphere
    alpha = renders.alpha.copy()
    alpha[0] = 0.0
    alpha[0, :2, :2] = 1.0  # view 0 sees only a corner the other views leave empty
    for engine in ("sparse", "dense"):
        with pytest.raises(InputError, match="visual hull .* is empty"):
            train_stage1(replace(renders, alpha=alpha), 16, config, engine=engine)


def test_engine_choice():
    from taichi_voxify.errors import OptionError
    from taichi_voxify.stage1_sparse import SPARSE_FROM, choose_engine

    assert choose_engine("auto", SPARSE_FROM) == "sparse"
    assert choose_engine("auto", SPARSE_FROM // 2) == "dense"
    assert choose_engine("dense", 4 * SPARSE_FROM) == "dense"
    with pytest.raises(OptionError):
        choose_engine("pointer", 64)


def test_thin_shell_state_is_far_smaller_than_dense():
    from taichi_voxify.stage1_sparse import SparseStage1Grid, covering_blocks

    n = 128
    radius = np.linalg.norm(np.indices((n,) * 3).transpose(1, 2, 3, 0) - n / 2 + 0.5, axis=-1)
    shell = np.abs(radius - 0.4 * n) < 0.5
    grid = SparseStage1Grid(n, covering_blocks(shell))
    assert grid.nbytes() < 0.2 * grid.dense_nbytes()  # 18%: blocks within 2 cells of it
    assert grid.dense_nbytes() > n ** 3 * (19 * 8 + 32)  # 19 f64 channels and fixed point


def test_pipeline_trains_stage1_on_the_engine_option():
    from conftest import mesh_path
    from taichi_voxify.pipeline import prepare

    kw = dict(resolution=16, colors=4, preset="test", clip="off", seed=1)
    fields = {e: prepare(str(mesh_path("Fox.glb")), engine=e, **kw).coarse
              for e in ("dense", "sparse")}
    assert {e: f.metadata["engine"] for e, f in fields.items()} == {"dense": "dense",
                                                                    "sparse": "sparse"}
    np.testing.assert_allclose(fields["sparse"].density, fields["dense"].density, rtol=1e-9,
                               atol=1e-12)


def test_covering_blocks_are_the_blocks_of_the_mask_grown_by_two_cells():
    from scipy.ndimage import maximum_filter

    from taichi_voxify.sparse_grid import blocks_of
    from taichi_voxify.stage1_sparse import REACH, covering_blocks

    rng = np.random.default_rng(4)
    for n in (5, 13, 16, 18):
        for share in (0.0, 0.002, 0.02, 0.3):
            mask = rng.random((n,) * 3) < share
            grown = maximum_filter(mask.astype(np.uint8), size=2 * REACH + 1, mode="constant")
            assert np.array_equal(covering_blocks(mask), blocks_of(grown.astype(bool)))
