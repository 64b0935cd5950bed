"""The block-sparse engine (kernels/sparse.py, taichi_voxify/sparse_grid.py, stage2/sparse.py)
against the dense one, in float64: a sparse grid must render, differentiate and train exactly
as a dense grid whose absent voxels are empty, through refreshes of its active blocks."""
import numpy as np
import pytest

from conftest import f64_ndarray

from taichi_voxify.coarse_field import CoarseField, density_shift
from taichi_voxify.sparse_grid import BLOCK, Channel, SparseGrid, block_count, blocks_of
from taichi_voxify.stage2 import (AxisViewRenderer, PaletteQuantizer, Stage2Config,
                                  Stage2Trainer, palette_targets)
from taichi_voxify.stage2.sparse import (EMPTY_DENSITY, SparseAxisViewRenderer, SparseSettings,
                                         SparseStage2Grid, buried_voxels, sparse_channels,
                                         target_band, visual_hull)

pytestmark = pytest.mark.usefixtures("f64_backend")
SHIFT = density_shift(1e-6)
PALETTE = np.array([[0.9, 0.1, 0.1], [0.1, 0.8, 0.2], [0.2, 0.2, 0.9], [0.95, 0.9, 0.8]])


def _grid(n, blocks, density, rgb):
    """A SparseGrid holding density and rgb (and their gradients) of the dense arrays."""
    channels = [Channel("density", 1, EMPTY_DENSITY), Channel("rgb", 3),
                Channel("grad_density"), Channel("grad_rgb", 3)]
    grid = SparseGrid(n, blocks, channels)
    grid.from_dense("density", density)
    grid.from_dense("rgb", rgb)
    return grid


def _random_case(n, seed, fraction=0.6):
    rng = np.random.default_rng(seed)
    density = rng.normal(-SHIFT - 2.0, 2.0, (n, n, n))  # rays cross several voxels
    blocks = rng.random((block_count(n),) * 3) < fraction
    return rng, density, rng.random((n, n, n, 3)), blocks


def _sparse_render(grid, weights, skip_alpha=0.0):
    renderer = SparseAxisViewRenderer(grid, SHIFT, skip_alpha=skip_alpha)
    renderer.forward(grid.arrays["density"], grid.arrays["rgb"])
    grid.arrays["grad_density"].fill(0)
    grid.arrays["grad_rgb"].fill(0)
    renderer.set_output_grads(*weights)
    renderer.backward(grid.arrays["density"], grid.arrays["rgb"],
                      grid.arrays["grad_density"], grid.arrays["grad_rgb"])
    return renderer.images(), grid.to_dense("grad_density"), grid.to_dense("grad_rgb")


def _dense_render(density, rgb, weights, skip_alpha=0.0):
    n = density.shape[0]
    renderer = AxisViewRenderer(n, SHIFT, skip_alpha=skip_alpha)
    d, c = f64_ndarray(density), f64_ndarray(rgb)
    renderer.forward(d, c)
    renderer.set_output_grads(*weights)
    grad_d, grad_c = f64_ndarray(np.zeros((n,) * 3)), f64_ndarray(np.zeros((n,) * 3 + (3,)))
    renderer.backward(d, c, grad_d, grad_c)
    return renderer.images(), grad_d.to_numpy(), grad_c.to_numpy()


def _weights(rng, n):
    return [rng.normal(size=(6, n, n, 3)), rng.normal(size=(6, n, n)),
            rng.normal(size=(6, n, n))]


# 10: the last block of each axis is half padding; skip_alpha: both engines skip the same
# samples (the leading and trailing voxels of a column below it, nothing in between)
@pytest.mark.parametrize("n, skip_alpha", [(10, 0.0), (8, 0.0), (10, 1e-4), (8, 0.2)])
def test_axis_views_and_gradients_equal_dense_with_absent_voxels_empty(n, skip_alpha):
    rng, density, rgb, blocks = _random_case(n, seed=n)
    grid = _grid(n, blocks, density, rgb)
    weights = _weights(rng, n)
    out, grad_d, grad_c = _sparse_render(grid, weights, skip_alpha)
    ref, ref_d, ref_c = _dense_render(grid.to_dense("density"), grid.to_dense("rgb"), weights,
                                      skip_alpha)
    for got, want in zip((out.rgb, out.depth, out.opacity), (ref.rgb, ref.depth, ref.opacity)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad_d, ref_d, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grad_c, ref_c, rtol=1e-10, atol=1e-12)
    absent = ~np.repeat(np.repeat(np.repeat(blocks, BLOCK, 0), BLOCK, 1), BLOCK, 2)[:n, :n, :n]
    assert absent.any() and np.all(grad_d[absent] == 0)
    assert np.abs(grad_d[~absent]).max() > 1e-3  # the active voxels really get gradient
    assert 0.05 < out.opacity.mean() < 0.95


def test_axis_view_gradients_match_finite_differences():
    n = 6
    rng, density, rgb, blocks = _random_case(n, seed=3, fraction=0.7)
    weights = _weights(rng, n)
    grid = _grid(n, blocks, density, rgb)
    _, grad_d, grad_c = _sparse_render(grid, weights)
    renderer = SparseAxisViewRenderer(grid, SHIFT, skip_alpha=0.0)

    def loss(d, c):
        grid.from_dense("density", d)
        grid.from_dense("rgb", c)
        renderer.forward(grid.arrays["density"], grid.arrays["rgb"])
        out = renderer.images()
        return sum(float(np.sum(w * o)) for w, o in zip(weights, (out.rgb, out.depth,
                                                                   out.opacity)))

    active = np.argwhere(grid.to_dense("density") > EMPTY_DENSITY)
    eps = 1e-6
    for idx in map(tuple, active[rng.choice(len(active), 8, replace=False)]):
        for array, grad in ((density, grad_d), (rgb[..., 1], grad_c[..., 1])):
            plus, minus = density.copy(), density.copy()
            cplus, cminus = rgb.copy(), rgb.copy()
            if array is density:
                plus[idx] += eps
                minus[idx] -= eps
            else:
                cplus[idx + (1,)] += eps
                cminus[idx + (1,)] -= eps
            fd = (loss(plus, cplus) - loss(minus, cminus)) / (2 * eps)
            assert grad[idx] == pytest.approx(fd, rel=1e-5, abs=1e-7)


def test_quantized_render_and_cross_entropy_equal_dense():
    """Logits quantized over the active voxels and the palette cross-entropy through the
    grid's histogram give the dense renderer's images, gradients and class term."""
    n, colours = 9, len(PALETTE)
    rng, density, rgb, blocks = _random_case(n, seed=5)
    grid = SparseGrid(n, blocks, sparse_channels(colours))
    grid.from_dense("density", density)
    grid.from_dense("logits", rng.normal(size=(n, n, n, colours)))
    weights = _weights(rng, n)
    target = palette_targets(rng.random((6, n, n, 3)), rng.random((6, n, n)) < 0.7, PALETTE)
    d_density, d_logits = f64_ndarray(grid.to_dense("density")), f64_ndarray(
        grid.to_dense("logits"))
    for hard in (False, True):
        quantizer = PaletteQuantizer(PALETTE, seed=7)
        quantizer.set_step(11, 0.5, hard)
        sparse_r = SparseAxisViewRenderer(grid, SHIFT, skip_alpha=0.0)
        sparse_r.forward(grid.arrays["density"], grid.arrays["logits"], quantizer)
        sparse_r.set_output_grads(*weights)
        grid.arrays["density_grad"].fill(0)
        logits_grad = f64_ndarray(np.zeros(grid.arrays["logits"].shape))
        sparse_r.backward(grid.arrays["density"], grid.arrays["logits"],
                          grid.arrays["density_grad"], logits_grad, quantizer,
                          _int_ndarray(target), 0.3)
        dense_r = AxisViewRenderer(n, SHIFT, skip_alpha=0.0)
        dense_r.forward(d_density, d_logits, quantizer)
        dense_r.set_output_grads(*weights)
        grad_d, grad_l = (f64_ndarray(np.zeros((n,) * 3)),
                          f64_ndarray(np.zeros((n,) * 3 + (colours,))))
        dense_r.backward(d_density, d_logits, grad_d, grad_l, quantizer, _int_ndarray(target),
                         0.3)
        got, want = sparse_r.images(), dense_r.images()
        for a, b in zip((got.rgb, got.depth, got.opacity), (want.rgb, want.depth, want.opacity)):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(grid.to_dense("density_grad"), grad_d.to_numpy(),
                                   rtol=1e-10, atol=1e-12)
        got_l = np.zeros((n,) * 3 + (colours,))
        keep = grid.inside()
        got_l[tuple(grid.voxel_coords()[keep].T)] = logits_grad.to_numpy().reshape(
            -1, colours)[keep]
        np.testing.assert_allclose(got_l, grad_l.to_numpy(), rtol=1e-10, atol=1e-12)
        assert sparse_r.class_term() == pytest.approx(dense_r.class_term(), rel=1e-10)
        assert dense_r.class_term() > 0.1 and np.abs(grad_l.to_numpy()).max() > 1e-3


def _int_ndarray(array):
    import taichi as ti

    nd = ti.ndarray(ti.i32, array.shape)
    nd.from_numpy(np.ascontiguousarray(array, dtype=np.int32))
    return nd


# --- training: a sphere seen by the six views ---------------------------------------------------

def _sphere_problem(n, radius=0.3, seed=0, inside=None):
    """Stage 1's field (a noisy ball, or `inside`), six pixel-art targets, masks and depth."""
    rng = np.random.default_rng(seed)
    g = (np.arange(n) + 0.5) / n - 0.5
    if inside is None:
        inside = np.sqrt(sum(a * a for a in np.meshgrid(g, g, g, indexing="ij"))) < radius
    density = np.where(inside, 3.0 - SHIFT, -8.0 - SHIFT) + rng.normal(0, 0.5, (n,) * 3)
    coarse = CoarseField(density=density, rgb=rng.random((n, n, n, 3)), alpha_init=1e-6)
    renderer = AxisViewRenderer(n, SHIFT)
    renderer.forward(f64_ndarray(np.where(inside, 40.0, -40.0)),
                     f64_ndarray(np.zeros((n, n, n, 3))))
    views = renderer.images()
    masks = views.opacity > 0.5
    depth = np.where(masks, views.depth, np.nan)
    pixel_art = np.where(masks[..., None], PALETTE[rng.integers(0, 4, masks.shape)], 1.0)
    return coarse, pixel_art, masks, depth


def _config(**kw):
    return Stage2Config.preset("fast", iterations=40, skip_alpha=0.0, **kw)


def _sparse_trainer(coarse, n, config, masks, depth, targets, settings=SparseSettings()):
    """A Stage2Trainer over a SparseStage2Grid; returns (trainer, its grid)."""
    grid = SparseStage2Grid(coarse, n, PALETTE, config, masks, depth, settings)
    return Stage2Trainer(None, None, PALETTE, coarse.shift, config, targets, grid=grid), grid


def _dense_twin(sparse, coarse, n, config, targets):
    """A dense trainer holding the sparse trainer's state (absent voxels empty)."""
    dense = Stage2Trainer(sparse.grid.grid.to_dense("density"), np.zeros((n, n, n, 3)),
                          PALETTE, coarse.shift, config, targets, seed=0)
    _copy_state(sparse, dense)
    return dense


def _params(dense):
    return dict(density=dense.grid.density, logits=dense.grid.colour)


def _copy_state(sparse, dense):
    for name, param in _params(dense).items():
        for suffix, nd in (("", param.value), ("_m", param.m), ("_v", param.v)):
            nd.from_numpy(sparse.grid.grid.to_dense(name + suffix))


def _assert_same_state(sparse, dense, active_only=None):
    for name, param in _params(dense).items():
        got = sparse.grid.grid.to_dense(name)
        want = param.value.to_numpy()
        if active_only is not None:
            got, want = got[active_only], want[active_only]
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-11)


def _voxels_of(blocks, n):
    return np.repeat(np.repeat(np.repeat(blocks, BLOCK, 0), BLOCK, 1), BLOCK, 2)[:n, :n, :n]


def test_training_equals_dense_through_retired_and_activated_blocks():
    n = 12
    coarse, pixel_art, masks, depth = _sphere_problem(n)
    config = _config()
    targets = (pixel_art, masks, depth)
    sparse, sgrid = _sparse_trainer(coarse, n, config, masks, depth, targets,
                                    SparseSettings(refresh_every=10 ** 6))
    dense = _dense_twin(sparse, coarse, n, config, targets)
    step = 0
    for _ in range(2):
        for _ in range(3):
            got = sparse.step(step, log=True)
            want = dense.step(step, log=True)
            assert got.keys() == want.keys() and "class" in got
            for term in got:
                assert got[term] == pytest.approx(want[term], rel=1e-9, abs=1e-12)
            step += 1
        _assert_same_state(sparse, dense)
        # retire two active blocks and activate every other candidate
        before = sgrid.grid.blocks.copy()
        new = sgrid.candidates.copy()
        new[tuple(sgrid.grid.coords[:2].T)] = False
        assert sgrid.grid.relayout(new, init=sgrid._initial_values)
        kept = _voxels_of(before & new, n)
        _assert_same_state(sparse, dense, active_only=kept)  # survivors moved intact
        assert (new & ~before).any() and (before & ~new).any()
        _copy_state(sparse, dense)
    assert np.abs(sgrid.grid.to_dense("density") - coarse.density)[_voxels_of(
        sgrid.grid.blocks, n)].max() > 1e-3  # training really moved the state


def _ball_grid(retire_share, n=16):
    """(Stage 1's field, the pixel-art masks, a SparseStage2Grid) of a ball."""
    coarse, _, masks, depth = _sphere_problem(n, radius=0.35)
    return coarse, masks, SparseStage2Grid(coarse, n, PALETTE, _config(), masks, depth,
                                           SparseSettings(retire_share=retire_share))


def test_refresh_keeps_opaque_blocks_and_the_target_band_and_drops_empty_space():
    coarse, masks, sparse = _ball_grid(retire_share=0.0)
    grid = sparse.grid
    opaque = blocks_of(coarse.voxel_alpha() >= sparse.settings.keep_alpha)
    assert np.all(grid.blocks[opaque & sparse.candidates])
    assert np.all(grid.blocks[sparse.band & sparse.candidates])
    assert not np.any(grid.blocks & ~sparse.candidates)
    assert grid.blocks.sum() < sparse.candidates.sum()  # empty space around the ball left out
    assert not blocks_of(visual_hull(masks)).all()
    # a block that empties is retired at the next refresh, and comes back transparent
    density = grid.get("density")
    chosen = tuple(grid.coords[0])
    density[:BLOCK ** 3] = -40.0 - SHIFT
    grid.set("density", density)
    sparse.band[chosen] = False
    sparse.refresh()
    assert not grid.blocks[chosen]
    sparse.band[chosen] = True
    sparse.refresh()
    assert grid.blocks[chosen]
    alpha = 1.0 - np.exp(-np.logaddexp(0.0, grid.to_dense("density") + SHIFT))
    block = alpha[tuple(slice(c * BLOCK, c * BLOCK + BLOCK) for c in chosen)]
    assert block.max() <= sparse.settings.keep_alpha * (1 + 1e-9)


def _solid_cube(n, lo, hi):
    inside = np.zeros((n,) * 3, bool)
    inside[lo:hi, lo:hi, lo:hi] = True
    return inside


def test_buried_voxels_lie_more_than_a_depth_behind_the_surface_in_every_view():
    n = 16
    _, _, masks, depth = _sphere_problem(n, inside=_solid_cube(n, 2, 14))
    # the surface voxel is 2 steps in from every face; buried: more than 2 or 3 behind it
    np.testing.assert_array_equal(buried_voxels(masks, depth, 2), _solid_cube(n, 5, 11))
    np.testing.assert_array_equal(buried_voxels(masks, depth, 3), _solid_cube(n, 6, 10))
    depth[0][~np.isnan(depth[0])] = np.nan  # one view without depth asks for whole columns
    assert not buried_voxels(masks, depth, 2).any()


def test_buried_blocks_are_never_stored_and_keep_stage1_values_as_on_the_dense_grid():
    """A solid opaque cube: its inside is out of every ray's reach, so the dense grid leaves it
    at Stage 1's values; the sparse grid never stores it and gives the same arrays."""
    n = 24
    cube = _solid_cube(n, 2, 22)
    coarse, pixel_art, masks, depth = _sphere_problem(n, inside=cube)
    coarse.density[cube] = 12.0 - SHIFT  # opaque: no ray passes the first voxel
    config = _config()
    targets = (pixel_art, masks, depth)
    sparse, sgrid = _sparse_trainer(coarse, n, config, masks, depth, targets)
    # surface voxels at 2 and 21, buried (more than `bury` = 4 behind them): 7..16
    inside = _solid_cube(block_count(n), 2, 4)  # blocks 2..3: voxels 8..15, all buried
    np.testing.assert_array_equal(sgrid.buried, inside)
    assert not (sgrid.grid.blocks & sgrid.buried).any()
    start = sgrid.arrays()
    dense = _dense_twin(sparse, coarse, n, config, targets)
    dense.grid.density.value.from_numpy(start[0])
    dense.grid.colour.value.from_numpy(start[1])
    for step in range(6):
        sparse.step(step)
        dense.step(step)
    got, want = sgrid.arrays(), (dense.grid.density.value.to_numpy(),
                                 dense.grid.colour.value.to_numpy())
    for a, b, before in zip(got, want, start):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)
        assert np.abs(a - before).max() > 1e-3  # the surface trained
    assert np.abs(got[0] - coarse.density)[_voxels_of(inside, n)].max() < 1e-9


def test_a_foreground_pixel_without_target_depth_keeps_its_whole_column():
    n = 16
    g = (np.arange(n) + 0.5) / n - 0.5
    ball = np.sqrt(sum(a * a for a in np.meshgrid(g, g, g, indexing="ij"))) < 0.2
    line = np.zeros((n,) * 3, bool)
    line[:, 1, 14] = True  # a thin part far from the ball, along the x axis
    coarse, pixel_art, masks, depth = _sphere_problem(n, inside=ball | line)
    _, _, ball_masks, _ = _sphere_problem(n, inside=ball)
    # the pixel art keeps the thin part, but the mesh covers less than half of its pixels (no
    # depth there) and Stage 1 left it transparent
    depth[masks & ~ball_masks] = np.nan
    coarse.density[line] = -8.0 - SHIFT
    assert not target_band(masks, np.where(masks & ~ball_masks, 0.5, depth), band=1)[line].all()
    assert target_band(masks, depth, band=1)[line].all()
    sparse = SparseStage2Grid(coarse, n, PALETTE, _config(), masks, depth,
                              SparseSettings(retire_share=0.0))
    assert sparse.grid.blocks[tuple((np.argwhere(line) // BLOCK).T)].all()


def test_a_refresh_that_drops_only_a_few_blocks_keeps_the_layout():
    _, _, sparse = _ball_grid(retire_share=0.25)
    grid = sparse.grid
    version, slots = grid.layout_version, grid.slots
    assert slots >= 8

    def empty_out(count):  # the first `count` slots' blocks turn transparent and leave the band
        density = grid.get("density")
        density[:count * BLOCK ** 3] = -40.0 - SHIFT
        grid.set("density", density)
        emptied = grid.coords[:count].copy()
        sparse.band[tuple(emptied.T)] = False
        return tuple(emptied.T)

    emptied = empty_out(1)
    sparse.refresh()  # 1 block of >= 8: under a quarter, nothing moves
    assert grid.layout_version == version and grid.slots == slots and grid.blocks[emptied]
    emptied = empty_out(slots // 2)
    sparse.refresh()  # half of them: the layout follows
    assert grid.layout_version == version + 1 and grid.slots <= slots - slots // 2
    assert not grid.blocks[emptied].any()


# --- edge cases and memory ----------------------------------------------------------------------

def _filled(n, where):
    density = np.where(where, 40.0, -40.0)
    rgb = np.broadcast_to(np.array([0.2, 0.4, 0.6]), (n, n, n, 3)).copy()
    return density, rgb


@pytest.mark.parametrize("case", ["touches_faces", "fills_box", "single_voxel", "empty"])
def test_edge_grids_render_as_dense(case):
    n = 7
    occupied = np.zeros((n,) * 3, bool)
    if case == "touches_faces":
        occupied[0, :, 3] = occupied[n - 1, 2, :] = occupied[:, 0, n - 1] = True
    elif case == "fills_box":
        occupied[:] = True
    elif case == "single_voxel":
        occupied[n - 1, 0, n - 1] = True
    density, rgb = _filled(n, occupied)
    grid = _grid(n, blocks_of(occupied), density, rgb)
    rng = np.random.default_rng(1)
    weights = _weights(rng, n)
    out, grad_d, _ = _sparse_render(grid, weights)
    ref, ref_d, _ = _dense_render(density, rgb, weights)
    for got, want in zip((out.rgb, out.depth, out.opacity), (ref.rgb, ref.depth, ref.opacity)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad_d, ref_d, rtol=1e-10, atol=1e-12)
    covered = (out.opacity > 0.5).sum(axis=(1, 2))
    expected = {"touches_faces": None, "fills_box": n * n, "single_voxel": 1, "empty": 0}[case]
    if expected is not None:
        assert np.all(covered == expected)
    if case == "empty":
        assert grid.slots == 0 and np.all(out.rgb == 1.0) and np.all(out.depth == 1.0)


@pytest.mark.parametrize("case", ["single_voxel", "empty"])
def test_trainer_on_tiny_and_empty_targets(case):
    n = 8
    inside = np.zeros((n,) * 3, bool)
    inside[3, 4, 5] = case == "single_voxel"
    coarse, pixel_art, masks, depth = _sphere_problem(n, inside=inside)
    assert masks.sum() == (6 if case == "single_voxel" else 0)
    sparse, sgrid = _sparse_trainer(coarse, n, _config(), masks, depth,
                                    (pixel_art, masks, depth))
    for step in range(3):
        terms = sparse.step(step, log=True)
        assert np.isfinite(terms["loss"])
    density, index, logits = sparse.grids()
    assert density.shape == (n,) * 3 and logits.shape == (n,) * 3 + (len(PALETTE),)
    if case == "empty":
        assert sgrid.grid.slots == 0 and np.all(density == EMPTY_DENSITY)
    else:
        assert 0 < sgrid.grid.slots <= 8 and index.shape == (n,) * 3
        assert density[3, 4, 5] > density.max() - 1e-9  # the voxel the views ask for


def test_thin_shell_at_256_takes_far_less_memory_than_dense():
    n = 256
    g = (np.arange(n) + 0.5) / n - 0.5
    x, y, z = np.meshgrid(g, g, g, indexing="ij", sparse=True)
    shell = np.abs(np.sqrt(x * x + y * y + z * z) * n - 0.4 * n) < 1.5  # 3 voxels thick
    grid = SparseGrid(n, blocks_of(shell), sparse_channels(6))
    assert 0.02 < grid.active_fraction() < 0.1
    assert grid.nbytes() < 0.1 * grid.dense_nbytes()
    assert grid.dense_nbytes() > 2 ** 30  # dense Stage 2 state at 256^3 with 6 colours


# --- choosing the engine ------------------------------------------------------------------------

def test_auto_engine_follows_resolution_and_ablations_stay_dense():
    from taichi_voxify.errors import OptionError
    from taichi_voxify.options import Options
    from taichi_voxify.stage2.sparse import SPARSE_FROM_N, choose_engine

    n = SPARSE_FROM_N
    assert choose_engine("auto", n) == "sparse"
    assert choose_engine("auto", n // 2) == "dense"  # small grid
    assert choose_engine("sparse", 8) == "sparse"
    assert choose_engine("dense", 4 * n) == "dense"
    assert choose_engine("auto", n, ortho=False) == "dense"
    with pytest.raises(OptionError):
        choose_engine("sparse", n, use_gumbel=False)
    with pytest.raises(OptionError, match="engine"):
        Options(engine="blocks")
    with pytest.raises(OptionError, match="ablations"):
        Options(engine="sparse", ortho=False)
    assert Options(engine="sparse").engine == "sparse"


def test_train_stage2_sparse_gives_the_dense_voxel_art():
    from taichi_voxify.stage2 import train_stage2

    n = 16
    coarse, pixel_art, masks, depth = _sphere_problem(n, radius=0.35)
    palette = np.round(PALETTE * 255).astype(np.uint8)
    config = Stage2Config.preset("test", iterations=30)
    results = {engine: train_stage2(coarse, pixel_art, masks, palette, depth, config=config,
                                    engine=engine) for engine in ("dense", "sparse")}
    dense, sparse = results["dense"], results["sparse"]
    assert sparse.metadata["engine"] == "sparse" and dense.metadata["engine"] == "dense"
    assert 0 < sparse.metadata["active_fraction"][-1] < 1
    iou = (dense.occupancy & sparse.occupancy).sum() / (dense.occupancy | sparse.occupancy).sum()
    assert iou > 0.97 and dense.occupancy.sum() > 100
    both = dense.occupancy & sparse.occupancy
    assert np.mean(dense.color_index[both] == sparse.color_index[both]) > 0.97


def test_engine_comparison_tables_pair_dense_and_sparse_rows():
    from taichi_voxify.benchmarks import quality_gaps, quality_table, side_by_side

    rows = [dict(mesh="cow", resolution=32, engine="dense", iou=0.98, color_de76=8.0,
                 stage2_s=10.0, stage2_active_fraction=1.0),
            dict(mesh="cow", resolution=32, engine="sparse", iou=0.97, color_de76=8.4,
                 stage2_s=5.0, stage2_active_fraction=0.25),
            dict(mesh="fox", resolution=32, engine="sparse", error="out of memory")]
    (gap,) = quality_gaps(rows)
    assert gap["iou_gap"] == pytest.approx(-0.01 / 0.98) and gap["de_gap"] == pytest.approx(0.05)
    table = quality_table(rows)
    assert "-1.02%" in table and "+5.00%" in table and "fox | 32 | failed: out of memory" in table
    convert = dict(mesh="cow", resolution=128, engine="sparse", stage2_ms_per_iteration=90.0,
                   timings_s=dict(stage1=20.0, stage2=70.0, total=100.0), peak_rss_mb=900.0,
                   stage1_active_fraction=0.3, stage2_active_fraction=0.1, iou=0.99,
                   color_de76=5.0, stage1_engine="dense")
    text = side_by_side([convert, rows[2]])
    assert "0.100" in text and "failed: out of memory" in text and "dense/sparse" in text
