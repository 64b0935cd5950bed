"""Stage 1: a coarse DVGO-style voxel radiance field (density + colour grids) fitted to the
reference renders of the mesh by ray marching, with hand-written gradients (kernels/).

Loss = w_mse MSE(colour) + w_entropy entropy(opacity) + w_alpha MSE(opacity, coverage)
       + w_depth depth + w_tv_density TV(density) + w_tv_rgb TV(colour) + w_noise noise(density)
(see kernels/regularizers.py). The opacity and depth terms are ours, not DVGO's: the renders give
the exact silhouette and depth. Without them, on white or near-white surfaces the colour loss
cannot tell object from background, and the field settles into a fog a few voxels deep whose
expected depth lies behind the surface (Stage 2 uses that depth as its target).

Empty space is skipped from the first step with the visual hull of the training silhouettes
(a cell that projects onto background in any view cannot hold anything), and after a warm-up,
as DVGO does, with a mask of cells whose opacity passed a threshold, refreshed every few steps.
Stage1Trainer keeps its grids dense; stage1_sparse.SparseStage1Trainer computes the same steps
on a block-sparse grid that stores only the blocks around that mask (train_stage1's engine).
"""
import math
import time
from dataclasses import asdict, dataclass, replace

import numpy as np

from . import backend, ndarrays
from .cameras import BOX_RADIUS, random_views
from .coarse_field import CoarseField, density_shift
from .errors import InputError, OptionError, ResourceError
from .ray_march import RayMarch

MIN_RESOLUTION = 8
PHASES = ("sample", "forward", "loss", "backward", "gather", "adam", "mask")


@dataclass
class Stage1Config:
    iterations: int = 600
    rays_per_batch: int = 4096
    lr_density: float = 0.3  # the authors' 0.1 spends ~140 steps lifting density off alpha_init
    lr_rgb: float = 0.1
    lr_decay: float = 0.1  # learning rate at the last step, as a fraction of the first
    beta1: float = 0.9
    beta2: float = 0.99
    adam_eps: float = 1e-12
    alpha_init: float = 1e-6
    term_thres: float = 1e-4  # stop a ray once its transmittance falls below this
    w_mse: float = 1.0
    w_entropy: float = 0.01
    w_alpha: float = 1.0
    w_depth: float = 10.0
    w_tv_density: float = 1e-4
    w_tv_rgb: float = 1e-4
    w_noise: float = 1e-3
    hull: bool = True  # skip cells outside the visual hull of the training silhouettes
    # fraction of the steps before the opacity mask and the voxel regularisers start: at
    # alpha_init the data gradient is scaled by sigmoid(shift) ~ 1e-6, so TV would pin the
    # density at its start value and the mask would drop every cell...
    warmup: float = 0.25
    formed_fraction: float = 0.02  # ...and until this share of the hull's cells passes mask_thres
    mask_every: int = 25
    mask_thres: float = 1e-4  # per-sample alpha below which a cell counts as empty
    views: int = 40  # training views the caller should render (random orthographic)
    image_scale: float = 3.0  # training image width = image_scale * resolution pixels
    # progressive training: this share of the steps runs at R/2, then the field is upsampled;
    # only for R above half_res_above (at R = 32 it cost ~0.005 IoU and saved only seconds)
    half_res_fraction: float = 0.5
    half_res_above: int = 32
    # the coarse field has the voxel art's resolution N up to this N and N/2 above it (0:
    # always N); Stage 2 resamples it to N. Measured on the cow at N=128 (sparse Stage 2):
    # IoU 0.9985 vs 0.9986, colour error 1.139 vs 1.146, peak memory 980 vs 1419 MB, 30 s less
    full_resolution_up_to: int = 64
    memory_budget_gb: float = 4.0
    report_every: int = 25

    @staticmethod
    def preset(name):
        if name not in PRESETS:
            raise OptionError(f"unknown Stage 1 preset {name!r}: choose {', '.join(PRESETS)}")
        return replace(PRESETS[name])

    def validate(self):
        if self.iterations < 1 or self.rays_per_batch < 1:
            raise OptionError("Stage 1 needs at least one iteration and one ray per batch")
        if not 0.0 < self.alpha_init < 1.0:
            raise OptionError(f"alpha_init must lie in (0, 1), got {self.alpha_init}")
        if self.lr_density <= 0 or self.lr_rgb <= 0 or not 0 < self.lr_decay <= 1:
            raise OptionError("Stage 1 learning rates must be positive, lr_decay in (0, 1]")
        return self


PRESETS = {
    "fast": Stage1Config(),
    "paper": Stage1Config(iterations=8000, rays_per_batch=8192, lr_density=0.1, views=100,
                          image_scale=4.0, half_res_fraction=0.0),
    "test": Stage1Config(iterations=200, rays_per_batch=1024, lr_density=0.5, views=12, warmup=0.5,
                         mask_every=10, report_every=10),
}


def training_cameras(config, seed=0):
    """The random orthographic cameras Stage 1 expects its renders from."""
    return random_views(config.views, seed=seed, ortho=True)


def field_resolution(config, resolution):
    """The coarse field's resolution when the voxel art has `resolution` voxels a side."""
    limit = config.full_resolution_up_to
    return int(resolution) // 2 if 0 < limit < resolution else int(resolution)


def training_image_size(config, resolution):
    return max(16, int(round(config.image_scale * resolution)))


# --- input checks and memory -------------------------------------------------------------

def estimate_bytes(resolution, ray_count, float_bytes=4):
    """Bytes of the training state: grids, Adam moments, gradients, masks and the ray table."""
    voxel = float_bytes * (1 + 3 + 3 + 8 + 4) + 8 * 4 + 3
    return int(resolution ** 3 * voxel + ray_count * float_bytes * 11)


def check_inputs(renders, resolution, config):
    if int(resolution) != resolution or resolution < MIN_RESOLUTION:
        raise OptionError(f"Stage 1 resolution must be an integer >= {MIN_RESOLUTION}, "
                          f"got {resolution}")
    cameras = list(getattr(renders, "cameras", []) or [])
    rgb, alpha = np.asarray(renders.rgb), np.asarray(renders.alpha)
    depth = getattr(renders, "depth", None)
    depth = np.full(alpha.shape, np.inf, np.float32) if depth is None else np.asarray(depth)
    if not cameras or rgb.shape[0] == 0:
        raise InputError("Stage 1 needs at least one rendered view, got 0")
    if rgb.ndim != 4 or rgb.shape[-1] != 3 or alpha.shape != rgb.shape[:3] \
            or depth.shape != alpha.shape or len(cameras) != rgb.shape[0]:
        raise InputError(f"renders do not match: {len(cameras)} cameras, rgb {rgb.shape}, "
                         f"alpha {alpha.shape}")
    for v in range(rgb.shape[0]):
        if not (np.isfinite(rgb[v]).all() and np.isfinite(alpha[v]).all()) \
                or np.isnan(depth[v]).any():
            raise InputError(f"render of view {v} ({cameras[v].name}) contains NaN or inf")
        if not (alpha[v] > 0).any():
            raise InputError(f"view {v} ({cameras[v].name}) misses the object: its alpha is 0 "
                             "everywhere")
    need = estimate_bytes(resolution, rgb.shape[0] * rgb.shape[1] * rgb.shape[2],
                          np.dtype(backend.float_dtype()).itemsize)
    budget = config.memory_budget_gb * 2 ** 30
    if need > budget:
        raise ResourceError(f"Stage 1 at resolution {resolution} needs about "
                            f"{need / 2 ** 30:.1f} GiB, over the {config.memory_budget_gb:g} GiB "
                            "budget: lower the resolution or raise memory_budget_gb")
    return cameras, rgb, alpha, depth


# --- ray table and visual hull ------------------------------------------------------------

def ray_table(cameras, rgb, alpha, depth, dtype):
    """All pixels of all views as one table: origins, dirs, target colour, coverage and depth
    (0 where nothing was hit; the depth loss only reads covered pixels)."""
    height, width = rgb.shape[1:3]
    pixels = height * width
    origins = np.empty((len(cameras) * pixels, 3), dtype)
    dirs = np.empty_like(origins)
    for v, cam in enumerate(cameras):  # a view at a time: the float64 rays of all views
        o, d = cam.rays(width, height)  # took 280 MB at N = 256
        origins[v * pixels:(v + 1) * pixels] = o.reshape(-1, 3)
        dirs[v * pixels:(v + 1) * pixels] = d.reshape(-1, 3)
    flat = lambda a, c: np.ascontiguousarray(np.asarray(a, dtype=dtype).reshape(-1, c))
    depth = np.where(np.isfinite(depth), depth, 0.0)
    return origins, dirs, flat(rgb, 3), flat(alpha, 1)[:, 0], flat(depth, 1)[:, 0]


def _footprint_pixels(cam, resolution, width):
    """Radius in pixels that one cell's projection can cover in this view (upper bound)."""
    radius = math.sqrt(3.0) / 2.0 / resolution
    plane = cam.width
    if not cam.ortho:
        plane *= max(np.linalg.norm(cam.origin) - BOX_RADIUS, 1e-3)
    return int(math.ceil(radius * width / plane)) + 1


def visual_hull(cameras, alpha, resolution):
    """uint8 (R,R,R): 1 for cells whose centre projects onto covered pixels in every view."""
    import taichi as ti
    from scipy.ndimage import maximum_filter

    from taichi_voxify.kernels.grid import carve_hull

    width = alpha.shape[2]
    sil = np.stack([maximum_filter((a > 0).astype(np.uint8),
                                   size=2 * _footprint_pixels(c, resolution, width) + 1)
                    for c, a in zip(cameras, alpha)])
    matrices = np.stack([c.matrix() for c in cameras]).astype(np.float64)
    lens = np.array([[1.0 if c.ortho else 0.0, c.width, c.height, 0.0] for c in cameras])
    fd = backend.float_dtype()
    hull = np.zeros((resolution,) * 3, dtype=np.uint8)
    carve_hull(hull, matrices.astype(fd), lens.astype(fd), np.ascontiguousarray(sil))
    ti.sync()
    return hull


def upsample_field(density, rgb, res, shift, cells=None):
    """Resample a coarse field (raw density, colour in [0, 1]) onto res^3 cell centres so it
    renders the same: trilinear raw density and colour as the ray march reads them, with the
    activated density rescaled for the shorter voxel (alpha's interval is in voxel lengths).
    cells (V, 3) int: only those cells of the fine grid, as (V,) and (V, 3) arrays."""
    from scipy.ndimage import map_coordinates

    coarse = density.shape[0]
    if cells is None:
        g = (np.arange(res) + 0.5) * coarse / res - 0.5
        coords = np.stack(np.meshgrid(g, g, g, indexing="ij"))
    else:
        coords = ((np.asarray(cells).T + 0.5) * coarse / res - 0.5)
    sample = lambda a: map_coordinates(a, coords, order=1, mode="nearest")
    sigma = np.logaddexp(0.0, sample(density.astype(np.float64)) + shift) * (coarse / res)
    fine = np.log(np.expm1(np.maximum(sigma, 1e-300))) - shift
    colour = np.stack([sample(rgb[..., c].astype(np.float64)) for c in range(3)], axis=-1)
    return fine, np.clip(colour, 1e-6, 1.0 - 1e-6)


# --- the trainer --------------------------------------------------------------------------

class Stage1Trainer:
    """Training state on the Taichi device and one `step()` of fwd + loss + bwd + Adam."""

    engine = "dense"

    def __init__(self, renders, resolution, config=None, seed=0):
        backend.ensure_init()
        self.config = (config or Stage1Config.preset("fast")).validate()
        self.resolution = int(resolution)
        cameras, rgb, alpha, depth = check_inputs(renders, resolution, self.config)
        fd = backend.float_dtype()
        self.rng = np.random.default_rng(seed)
        self.shift = density_shift(self.config.alpha_init)
        origins, dirs, *targets = ray_table(cameras, rgb, alpha, depth, fd)
        self.target_rgb, self.target_alpha, self.target_depth = (
            ndarrays.from_numpy(a) for a in targets)
        self.ray_count = origins.shape[0]
        self.rays = RayMarch(origins, dirs, self.config.rays_per_batch, self.shift,
                             self.config.term_thres)
        del origins, dirs, targets  # the device holds them now
        self._silhouettes = (cameras, alpha)
        res = self.resolution
        if (self.config.half_res_fraction > 0 and res > self.config.half_res_above
                and res // 2 >= MIN_RESOLUTION):
            res //= 2
        self._start(res)
        self.losses = ndarrays.zeros((self.config.rays_per_batch, 4))
        self.formed = False  # regularisers and the opacity mask wait for the field to form
        self.iteration = 0
        self.timings = dict.fromkeys(PHASES, 0.0)

    def _start(self, res):
        fd = backend.float_dtype()
        self._allocate(res, np.zeros((res,) * 3, fd), np.zeros((res,) * 3 + (3,), fd))

    def _hull(self, res):
        """uint8 (res,)*3: the visual hull at res (all ones with hull=False); an empty one is an
        InputError (the training views' silhouettes share no cell)."""
        cameras, alpha = self._silhouettes
        hull = (visual_hull(cameras, alpha, res) if self.config.hull
                else np.ones((res,) * 3, dtype=np.uint8))
        if not hull.any():
            raise InputError(f"the visual hull of the {len(cameras)} training views is empty at "
                             f"resolution {res}: their silhouettes do not overlap in any cell")
        self.hull_cells = int(np.count_nonzero(hull))
        return hull

    def _allocate(self, res, density, raw_rgb):
        """Per-voxel state at resolution res from raw density and raw colour (numpy); the Adam
        moments start at zero, the mask at the visual hull."""
        import taichi as ti

        from taichi_voxify.kernels import grid

        self.grid_resolution = res
        hull = self._hull(res)
        self.hull = ndarrays.from_numpy(hull)
        self.mask = ndarrays.from_numpy(hull)
        self.mask_tmp = ndarrays.zeros((res,) * 3, ti.u8)
        self.density = ndarrays.from_numpy(density)
        self.raw_rgb = ndarrays.from_numpy(raw_rgb)
        self.rgb = ndarrays.empty((res,) * 3 + (3,))
        grid.sigmoid_grid(self.raw_rgb, self.rgb)
        self.moments_density = (ndarrays.zeros((res,) * 3), ndarrays.zeros((res,) * 3))
        self.moments_rgb = (ndarrays.zeros((res,) * 3 + (3,)), ndarrays.zeros((res,) * 3 + (3,)))
        self.fixed_density = ndarrays.zeros((res,) * 3, ti.i64)
        self.fixed_rgb = ndarrays.zeros((res,) * 3 + (3,), ti.i64)
        self.grad_density = ndarrays.zeros((res,) * 3)
        self.grad_rgb = ndarrays.zeros((res,) * 3 + (3,))
        self.blocks = ndarrays.zeros((grid.block_count(res),) * 3, ti.u8)

    def upscale(self):
        """Continue at full resolution from the half-resolution field (progressive training):
        density and colour are resampled so the field renders the same."""
        density, rgb = upsample_field(*self.dense_state(), self.resolution, self.shift)
        raw = np.log(rgb) - np.log1p(-rgb)
        self._allocate(self.resolution, density.astype(backend.float_dtype()),
                       raw.astype(backend.float_dtype()))
        if self.formed:
            self.refresh_mask()

    def learning_rate_factor(self):
        return self.config.lr_decay ** (self.iteration / max(1, self.config.iterations))

    def step(self, timed=False):
        """One training iteration; with timed=True, syncs after each phase to time it."""
        from taichi_voxify.kernels.regularizers import ray_losses

        cfg, rays = self.config, self.rays
        clock = _PhaseClock(self.timings, timed)
        ids = self.rng.integers(0, self.ray_count, cfg.rays_per_batch, dtype=np.int64)
        clock.lap("sample")
        self._forward(ids)
        clock.lap("forward")
        ray_losses(rays.rgb, rays.depth, rays.trans, self.target_rgb, self.target_alpha,
                   self.target_depth, rays.ids, rays.origins, rays.dirs, rays.grad_rgb,
                   rays.grad_opacity, rays.grad_depth_err, self.losses, cfg.w_mse,
                   cfg.w_entropy, cfg.w_alpha, cfg.w_depth)
        clock.lap("loss")
        self._backward()
        clock.lap("backward")
        reg = 1.0 if self.formed else 0.0
        self._gather(reg * cfg.w_tv_density, reg * cfg.w_tv_rgb, reg * cfg.w_noise)
        clock.lap("gather")
        self.iteration += 1
        t, lr = self.iteration, self.learning_rate_factor()
        adam = (cfg.beta1, cfg.beta2, 1.0 - cfg.beta1 ** t, 1.0 - cfg.beta2 ** t, cfg.adam_eps,
                -1e30, 1e30)
        self._adam(cfg.lr_density * lr, cfg.lr_rgb * lr, adam)
        clock.lap("adam")
        if self.grid_resolution < self.resolution and t >= cfg.half_res_fraction * cfg.iterations:
            self.upscale()
        if t >= cfg.warmup * cfg.iterations and t % cfg.mask_every == 0:
            self.refresh_mask()
            clock.lap("mask")

    # --- the passes over the grid (SparseStage1Trainer has its own) -----------------------

    def _forward(self, ids):
        self.rays.forward(self.density, self.rgb, self.mask, ids)

    def _backward(self):
        self.rays.backward(self.density, self.rgb, self.mask, self.target_depth,
                           self.fixed_density, self.fixed_rgb, self.blocks)

    def _gather(self, w_tv_density, w_tv_rgb, w_noise):
        from taichi_voxify.kernels.adam import gather_grads
        from taichi_voxify.kernels.grid import FIXED_POINT_SCALE

        gather_grads(self.fixed_density, self.fixed_rgb, self.density, self.rgb,
                     self.grad_density, self.grad_rgb, self.blocks, FIXED_POINT_SCALE, self.shift,
                     w_tv_density, w_tv_rgb, w_noise)

    def _adam(self, lr_density, lr_rgb, adam):
        from taichi_voxify.kernels.adam import masked_adam
        from taichi_voxify.kernels.grid import refresh_sigmoid_blocks

        masked_adam(self.density, self.grad_density, *self.moments_density, self.blocks,
                    lr_density, *adam)
        masked_adam(self.raw_rgb, self.grad_rgb, *self.moments_rgb, self.blocks, lr_rgb, *adam)
        refresh_sigmoid_blocks(self.raw_rgb, self.rgb, self.blocks)  # and clears the flags

    def refresh_mask(self):
        """Skip cells whose opacity stayed below mask_thres (dilated by a cell), once the field
        has formed: a run too short for the density to rise keeps training inside the hull."""
        from taichi_voxify.kernels.grid import dilate, threshold_alpha
        from taichi_voxify.kernels.raymarch import STEP_VOXELS

        threshold_alpha(self.density, self.hull, self.mask_tmp, self.shift, STEP_VOXELS,
                        self.config.mask_thres)
        if not self.formed:
            busy = np.count_nonzero(self.mask_tmp.to_numpy())
            self.formed = busy >= self.config.formed_fraction * self.hull_cells
        if self.formed:
            dilate(self.mask_tmp, self.hull, self.mask)

    def batch_losses(self):
        """Mean (mse, entropy, alpha, depth) terms of the last batch, unweighted."""
        return self.losses.to_numpy().mean(axis=0)

    def mask_fraction(self):
        """Share of the grid's cells the occupancy mask keeps."""
        return float(np.count_nonzero(self.mask.to_numpy())) / self.grid_resolution ** 3

    def dense_state(self):
        """(raw density (R,R,R), colour (R,R,R,3)) numpy at the current grid resolution."""
        return self.density.to_numpy(), self.rgb.to_numpy()

    def field(self, **metadata):
        if self.grid_resolution < self.resolution:
            self.upscale()
        density, rgb = self.dense_state()
        return CoarseField(density=density, rgb=rgb, alpha_init=self.config.alpha_init,
                           metadata=dict(metadata, iterations=self.iteration,
                                         resolution=self.resolution, engine=self.engine,
                                         active_fraction=self.mask_fraction()))


class _PhaseClock:
    def __init__(self, totals, timed):
        self.totals, self.timed = totals, timed
        self.last = time.perf_counter()

    def lap(self, phase):
        if self.timed:
            import taichi as ti

            ti.sync()
            now = time.perf_counter()
            self.totals[phase] += now - self.last
            self.last = now


def make_trainer(renders, resolution, config=None, seed=0, engine="dense"):
    """A Stage1Trainer on the dense grid or a SparseStage1Trainer (stage1_sparse.py) on the
    block-sparse one; engine "auto" picks by resolution (stage1_sparse.choose_engine)."""
    from .stage1_sparse import SparseStage1Trainer, choose_engine

    engine = choose_engine(engine, resolution)
    cls = SparseStage1Trainer if engine == "sparse" else Stage1Trainer
    return cls(renders, resolution, config, seed)


def train_stage1(renders, resolution, config=None, seed=0, progress=None, engine="dense"):
    """Fit a CoarseField of `resolution`^3 voxels to `renders` (cameras, rgb over white, alpha).

    progress(stage, step, total, info) is called every `report_every` steps with the batch
    losses. Deterministic on CPU for a given seed. engine: "dense", "sparse" or "auto"
    (make_trainer); both engines compute the same field.
    """
    start = time.perf_counter()
    trainer = make_trainer(renders, resolution, config, seed, engine)
    cfg = trainer.config
    for it in range(cfg.iterations):
        trainer.step()
        report = (it + 1) % cfg.report_every == 0 or it + 1 == cfg.iterations
        if progress is not None and report:
            mse, entropy, alpha, depth = trainer.batch_losses()
            progress("stage1", it + 1, cfg.iterations,
                     {"loss": float(mse), "mse": float(mse), "entropy": float(entropy),
                      "alpha_mse": float(alpha), "depth_mse": float(depth)})
    mse = float(trainer.batch_losses()[0])
    return trainer.field(seconds=time.perf_counter() - start, final_mse=mse,
                         config=asdict(cfg), seed=seed)
