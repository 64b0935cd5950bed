"""Stage 2's training loop: one optimisation step over a grid (stage2/grid.py), and
train_stage2.

A step of the axis-view (paper) path runs four launches and moves nothing between host and
device: render (quantizing the visited voxels), image losses, backward (with the palette
cross-entropy), Adam on the touched blocks. Loss values are read back on logging steps only;
the rendered images only on CLIP steps.
"""
import dataclasses
import time

import numpy as np

from .. import backend, ndarrays
from ..palette import nearest_palette_index
from .config import Stage2Config
from .grid import DenseGrid
from .inputs import check_inputs, resample_field, stage1_depth
from .losses import ViewLosses, palette_targets
from .ops import PaletteQuantizer, density_threshold, initial_logits
from .result import Stage2Result, fill_interior, render_voxel_art


class Stage2Trainer:
    """The trained grid and one optimisation step; see the package docstring.

    targets: (pixel_art (6,N,N,3) float, masks (6,N,N) bool, depth_target (6,N,N) or None).
    grid: a grid object (stage2/grid.py) to train instead of a DenseGrid made from
    `density` and `rgb` (a block-sparse grid provides the same interface)."""

    def __init__(self, density, rgb, palette, shift, config, targets, seed=0, ortho=True,
                 use_gumbel=True, grid=None):
        self.config, self.shift, self.palette = config, shift, palette
        self.ortho, self.use_gumbel = ortho, use_gumbel
        if grid is None:
            colour = initial_logits(rgb, palette, config.logit_scale) if use_gumbel else rgb
            grid = DenseGrid(density, colour, shift, config, ortho, use_gumbel)
        self.grid, self.n = grid, grid.n
        self.quantizer = PaletteQuantizer(palette, seed, config.noise_table_size) \
            if use_gumbel else None
        pixel_art, masks, depth_target = targets
        self.masks = masks
        self.losses = ViewLosses(pixel_art, masks, depth_target, config)
        # the cross-entropy needs one ray per voxel column: axis views and palette logits only
        self.class_scale = 0.0
        if ortho and use_gumbel and config.w_class > 0:
            target = palette_targets(pixel_art, masks, palette)
            self.class_target = ndarrays.from_numpy(target)
            self.class_scale = config.w_class / max(int(np.count_nonzero(target >= 0)), 1)
        if not ortho and use_gumbel:  # the perspective renderer reads a colour grid
            self.grad_rgb = ndarrays.zeros((self.n,) * 3 + (3,))

    def step(self, step, clip=None, mesh_views_hr=None, rng=None, log=False):
        """One iteration: render, losses, backward, Adam. Returns the loss terms when `log`
        (else None; reading them back costs a sync and a copy)."""
        cfg, grid = self.config, self.grid
        grid.begin_step(step)
        renderer, density, colour = grid.renderer, grid.density, grid.colour
        if self.quantizer is not None:
            tau, hard = cfg.temperature(step)
            self.quantizer.set_step(step, tau, hard)
        rgb = self._forward(step)
        self.losses.compute(renderer.out, renderer.grads)
        clip_loss = None
        if clip is not None and step % cfg.clip_every == 0 and cfg.w_clip > 0:
            clip_loss = self._add_clip(clip, mesh_views_hr, rng)
        if self.ortho:
            renderer.backward(density.value, colour.value, density.grad, colour.grad,
                              self.quantizer, getattr(self, "class_target", None),
                              self.class_scale)
        elif self.quantizer is not None:
            renderer.backward(density.value, rgb, density.grad, self.grad_rgb)
            self.quantizer.backward(colour.value, self.grad_rgb, colour.grad)  # consumes it
        else:
            renderer.backward(density.value, colour.value, density.grad, colour.grad)
        grid.adam_step(step + 1)
        # of this render: Adam changes no loss buffer (a sparse grid's step computes the class
        # term it reports)
        return self._terms(clip_loss) if log else None

    def _forward(self, step):
        """Render this step's views; the colour grid the perspective ablation rendered."""
        grid, q = self.grid, self.quantizer
        if self.ortho:
            grid.renderer.forward(grid.density.value, grid.colour.value, q,
                                  refresh_spans=step % self.config.span_every == 0)
            return None
        rgb = grid.colour.value
        if q is not None:
            rgb = q.forward(grid.colour.value, step, 1.0 / q.inv_tau, q.hard)
        grid.renderer.forward(grid.density.value, rgb)
        return rgb

    def _add_clip(self, clip, mesh_views_hr, rng):
        """Add the CLIP patch loss's gradient to the colour gradient images (a host round trip
        of N^2 images, every clip_every steps); returns its value."""
        cfg, renderer = self.config, self.grid.renderer
        picks = clip.patch_positions(self.masks, rng, cfg.clip_patches_per_view,
                                     cells=cfg.clip_patch_cells)
        loss, grad = clip.loss_and_grad(renderer.images().rgb, mesh_views_hr, picks)
        g_rgb = renderer.grads[0]
        g_rgb.from_numpy((g_rgb.to_numpy() + cfg.w_clip * grad).astype(
            backend.float_dtype()))
        return loss

    def _terms(self, clip_loss):
        terms = self.losses.values()
        if self.class_scale > 0:
            weighted = self.grid.renderer.class_term()
            terms.update({"class": weighted / self.config.w_class,
                          "loss": terms["loss"] + weighted})
        if clip_loss is not None:
            terms.update(clip=clip_loss, loss=terms["loss"] + self.config.w_clip * clip_loss)
        return terms

    def grids(self):
        """(density (N,N,N), colour index (N,N,N) 0-based, logits or None)."""
        density, colour = self.grid.arrays()
        if self.use_gumbel:
            return density, np.argmax(colour, axis=-1).astype(np.uint8), colour
        return density, nearest_palette_index(colour, self.palette), None


def train_stage2(coarse, pixel_art, masks, palette, depth_target=None, mesh_views_hr=None,
                 config=None, seed=0, progress=None, clip=None, ortho=True, use_gumbel=True,
                 engine="auto"):
    """Fine-tune the coarse field into palette voxel art fitted to six pixel-art views.

    coarse: Stage 1's CoarseField (resampled when its resolution is not N);
    pixel_art (6,N,N,3) float sRGB over white; masks (6,N,N) bool foreground;
    palette (K,3) uint8; depth_target (6,N,N) distance from the entry face in box lengths,
    NaN/inf where there is none, or None for Stage 1's own rendered depth;
    mesh_views_hr (6,H,H,3) the mesh's axis views at high resolution (for CLIP);
    clip: a clip_bridge.ClipPatchLoss or None; ortho=False / use_gumbel=False: ablations;
    engine: "dense", "sparse" (stage2/sparse.py) or "auto" (sparse.choose_engine).
    """
    from .sparse import SparseStage2Grid, choose_engine

    cfg = (config or Stage2Config.preset("fast")).validate()
    start = time.perf_counter()
    backend.ensure_init()
    n, pixel_art, masks, palette_f = check_inputs(coarse, pixel_art, masks, palette,
                                                  depth_target, mesh_views_hr, clip)
    engine = choose_engine(engine, n, ortho, use_gumbel)
    depth_source = "given" if depth_target is not None else "stage1"
    if depth_target is None and cfg.w_depth > 0:
        depth_target = stage1_depth(coarse, n)
    density = rgb = grid = None
    if engine == "sparse":
        grid = SparseStage2Grid(coarse, n, palette_f, cfg, masks, depth_target)
    else:
        density, rgb = resample_field(coarse, n)
    trainer = Stage2Trainer(density, rgb, palette_f, coarse.shift, cfg,
                            (pixel_art, masks, depth_target), seed, ortho, use_gumbel, grid)
    rng = np.random.default_rng(seed)
    history = []
    loop_start = time.perf_counter()
    for step in range(cfg.iterations):
        log = (step + 1) % cfg.log_every == 0 or step + 1 == cfg.iterations
        terms = trainer.step(step, clip, mesh_views_hr, rng, log)
        if log:
            tau, hard = cfg.temperature(step)
            history.append(dict(step=step + 1, tau=tau, hard=hard, **terms))
            if progress is not None:
                progress("stage2", step + 1, cfg.iterations, dict(terms))
    loop_seconds = time.perf_counter() - loop_start
    result = _finish(trainer, np.asarray(palette, dtype=np.uint8), history, cfg)
    result.metadata.update(stage2_seconds=time.perf_counter() - start, seed=seed,
                           loop_seconds=loop_seconds,
                           ortho=ortho, use_gumbel=use_gumbel, clip=clip is not None,
                           depth_target=depth_source, engine=engine,
                           config=dataclasses.asdict(cfg))
    if engine == "sparse":
        result.metadata.update(active_fraction=grid.active_history)
    return result


def _finish(trainer, palette, history, cfg):
    density, index, logits = trainer.grids()
    occupancy = density > density_threshold(cfg.occupancy_alpha, trainer.shift)
    if cfg.fill:
        occupancy, index = fill_interior(occupancy, index)
    renders = render_voxel_art(occupancy, index, palette.astype(np.float64) / 255.0)
    return Stage2Result(occupancy, index, palette, density, logits, renders, history)
