"""Stage 2's training loop: the trained grids, one optimisation step, and train_stage2."""
import dataclasses
import time

import numpy as np

from .. import backend, ndarrays
from ..coarse_field import softplus
from ..palette import nearest_palette_index
from ..views import NUM_VIEWS
from .config import Stage2Config
from .inputs import check_inputs, resample_field, stage1_depth
from .losses import palette_cross_entropy, palette_targets, view_losses
from .ops import (AxisViewRenderer, PaletteQuantizer, PerspectiveRenderer, density_threshold,
                  initial_logits)
from .result import Stage2Result, fill_interior, render_voxel_art


class AdamParam:
    """A trained device array with its gradient and Adam moments (kernels/adam.masked_adam).
    The step consumes the gradient (zeroes it), so backward passes accumulate into it."""

    def __init__(self, values, lr, blocks, low=-1e30, high=1e30):
        self.value = ndarrays.from_numpy(values)
        self.grad = ndarrays.zeros(values.shape)
        self.m, self.v = ndarrays.zeros(values.shape), ndarrays.zeros(values.shape)
        self.blocks = blocks  # which grid.BLOCK^3 blocks the step visits
        self.lr, self.low, self.high = lr, low, high

    def step(self, t, beta1=0.9, beta2=0.99, eps=1e-12):
        from ..kernels.adam import masked_adam

        masked_adam(self.value, self.grad, self.m, self.v, self.blocks, self.lr, beta1, beta2,
                    1.0 - beta1 ** t, 1.0 - beta2 ** t, eps, self.low, self.high)


class Stage2Trainer:
    """The trained grids and one optimisation step; see the module docstring."""

    def __init__(self, density, rgb, palette, shift, config, seed=0, ortho=True,
                 use_gumbel=True):
        import taichi as ti

        from ..kernels.grid import block_count

        n = density.shape[0]
        self.config, self.shift, self.palette, self.n = config, shift, palette, n
        every_block = ndarrays.full((block_count(n),) * 3, 1, ti.u8)  # the dense grid
        self.density = AdamParam(density, config.lr_density, every_block)
        self.use_gumbel = use_gumbel
        if use_gumbel:
            self.logits = AdamParam(initial_logits(rgb, palette, config.logit_scale),
                                    config.lr_logits, every_block)
            self.quantizer = PaletteQuantizer((n, n, n), palette, seed, config.noise_table_size)
            self.logits.grad = self.quantizer.grad_logits  # the quantizer's backward fills it
            self.grad_rgb = ndarrays.empty((n, n, n, 3))
        else:
            self.colour = AdamParam(rgb, config.lr_rgb, every_block, 0.0, 1.0)
            self.grad_rgb = self.colour.grad
        self.renderer_threshold = density_threshold(config.skip_alpha, shift)
        if ortho:
            self.renderer = AxisViewRenderer(n, shift, config.skip_alpha, config.t_min)
        else:
            self.renderer = PerspectiveRenderer(n, shift, config.perspective_distance)
        # the cross-entropy needs one ray per voxel column: axis views and palette logits only
        self.use_class = ortho and use_gumbel and config.w_class > 0
        if self.use_class:
            self.class_hist = ndarrays.empty((n, n, n, len(palette)))
            self.class_weight = ndarrays.empty((NUM_VIEWS, n, n))
            self.class_weight.fill(1)
            self.class_target = None

    def colours(self, step):
        if not self.use_gumbel:
            return self.colour.value
        tau, hard = self.config.temperature(step)
        return self.quantizer.forward(self.logits.value, step, tau, hard,
                                      density=self.density.value,
                                      threshold=self.renderer_threshold)

    def step(self, step, targets, clip=None, mesh_views_hr=None, rng=None, log=False):
        """One iteration: render, losses, backward, Adam. Returns the loss terms (the palette
        cross-entropy's value only when `log`)."""
        cfg = self.config
        pixel_art, masks, depth_target = targets
        rgb = self.colours(step)
        out = self.renderer.forward(self.density.value, rgb)
        terms, g_rgb, g_depth, g_opacity = view_losses(out, pixel_art, masks, depth_target, cfg)
        if clip is not None and step % cfg.clip_every == 0 and cfg.w_clip > 0:
            picks = clip.patch_positions(masks, rng, cfg.clip_patches_per_view,
                                         cells=cfg.clip_patch_cells)
            clip_loss, clip_grad = clip.loss_and_grad(out.rgb, mesh_views_hr, picks)
            g_rgb = g_rgb + cfg.w_clip * clip_grad
            terms.update(clip=clip_loss, loss=terms["loss"] + cfg.w_clip * clip_loss)
        if self.use_gumbel:  # (the density's and the ablation colour's: Adam consumed them)
            self.grad_rgb.fill(0)
        self.renderer.backward(self.density.value, rgb, g_rgb, g_depth, g_opacity,
                               self.density.grad, self.grad_rgb)
        if self.use_gumbel:
            self.quantizer.backward(self.grad_rgb)
            if self.use_class:
                value = self._class_term(pixel_art, masks, log)
                if value is not None:
                    terms.update({"class": value, "loss": terms["loss"] + cfg.w_class * value})
            self.logits.step(step + 1)
        else:
            self.colour.step(step + 1)
        self.density.step(step + 1)
        return terms

    def _class_term(self, pixel_art, masks, log):
        """Add the palette cross-entropy's gradient (for the density of this step's render,
        before its update) to the logits' gradient; its value when `log`."""
        if self.class_target is None:
            target = palette_targets(pixel_art, masks, self.palette)
            self.class_target = ndarrays.from_numpy(target)
            self.class_count = int(np.count_nonzero(target >= 0))
        self.class_hist.fill(0)
        self.renderer.pixel_classes(self.density.value, self.class_target, self.class_weight,
                                    self.class_hist)
        scale = self.config.w_class / max(self.class_count, 1)
        self.quantizer.add_cross_entropy(self.logits.value, self.class_hist, scale)
        if log:
            colours = len(self.palette)  # (the sparse grid's arrays are flat)
            return palette_cross_entropy(self.class_hist.to_numpy().reshape(-1, colours),
                                         self.logits.value.to_numpy().reshape(-1, colours),
                                         self.class_count)
        return None

    def grids(self):
        """(density (N,N,N), colour index (N,N,N) 0-based, logits or None, continuous rgb)."""
        density = self.density.value.to_numpy()
        if self.use_gumbel:
            logits = self.logits.value.to_numpy()
            index = np.argmax(logits, axis=-1)
            return density, index, logits, self.palette[index]
        rgb = self.colour.value.to_numpy()
        return density, nearest_palette_index(rgb, self.palette), None, rgb


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
    from .sparse import SparseStage2Trainer, choose_engine

    cfg = (config or Stage2Config.preset("fast")).validate()
    start = time.perf_counter()
    backend.ensure_init()
    n, pixel_art, masks, palette_f = check_inputs(coarse, pixel_art, masks, palette,
                                                  depth_target, mesh_views_hr, clip)
    engine = choose_engine(engine, n, masks, ortho, use_gumbel)
    depth_source = "given" if depth_target is not None else "stage1"
    if depth_target is None and cfg.w_depth > 0:
        depth_target = stage1_depth(coarse, n)
    if engine == "sparse":
        trainer = SparseStage2Trainer(coarse, n, palette_f, cfg, masks, depth_target, seed)
    else:
        density, rgb = resample_field(coarse, n)
        trainer = Stage2Trainer(density, rgb, palette_f, coarse.shift, cfg, seed, ortho,
                                use_gumbel)
    targets = (pixel_art, masks, depth_target)
    rng = np.random.default_rng(seed)
    history = []
    for step in range(cfg.iterations):
        log = (step + 1) % cfg.log_every == 0 or step + 1 == cfg.iterations
        terms = trainer.step(step, targets, clip, mesh_views_hr, rng, log)
        if log:
            tau, hard = cfg.temperature(step)
            history.append(dict(step=step + 1, tau=tau, hard=hard, **terms))
            if progress is not None:
                progress("stage2", step + 1, cfg.iterations, dict(terms))
    result = _finish(trainer, np.asarray(palette, dtype=np.uint8), history, cfg)
    result.metadata.update(stage2_seconds=time.perf_counter() - start, seed=seed,
                           ortho=ortho, use_gumbel=use_gumbel, clip=clip is not None,
                           depth_target=depth_source, engine=engine,
                           config=dataclasses.asdict(cfg))
    if engine == "sparse":
        result.metadata.update(active_fraction=trainer.active_history)
    return result


def _finish(trainer, palette, history, cfg):
    density, index, logits, rgb = trainer.grids()
    alpha = 1.0 - np.exp(-softplus(density + trainer.shift))
    occupancy = alpha > cfg.occupancy_alpha
    if cfg.fill:
        occupancy, index = fill_interior(occupancy, index)
    renders = render_voxel_art(occupancy, index, palette.astype(np.float64) / 255.0)
    return Stage2Result(occupancy, index, palette, density, logits, rgb, renders, history)
