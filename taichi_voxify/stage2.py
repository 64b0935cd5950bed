"""Stage 2: six-view orthographic pixel-art fine-tuning with a palette-constrained Gumbel-Softmax.

The coarse field from Stage 1 is resampled to the target grid (N^3). Its density keeps training;
its colour is replaced by per-voxel logits over the palette. Every step renders the six axis
views with rays that run along voxel columns (kernels/ortho.py; a perspective variant stands in
for the paper's "w/o ortho" ablation) and fits them to the six pixel-art images:

    loss = w_pixel * MSE(colour, pixel art)                 (all pixels, over white)
         + w_alpha * mean(opacity^2 over background pixels)
         + w_depth * smooth-L1(depth - target) over foreground pixels
         + w_clip  * (1 - cos(CLIP(rendered patch), CLIP(mesh patch)))   every clip_every steps
         + w_class * palette cross-entropy                      (logits only; axis views only)

The palette cross-entropy uses the pixel-voxel alignment directly: every foreground pixel asks
the voxels its ray crosses, in proportion to their visibility, for its own palette index, and
each voxel's logits get sum over those pixels of -visibility * log softmax(logits)[index]. A
voxel that two views see and want in different colours (an eye on the face, cream from above)
then takes the colour most of its visibility asks for, where the squared colour error alone
settles on the palette colour nearest their mean (grey), which neither view shows.

The result is an occupancy grid (voxel opacity above a threshold, optionally with the closed
interior filled) and one palette index per voxel (argmax of its logits), so every filled voxel
holds exactly one palette colour.
"""
import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np

from . import backend
from .cameras import axis_views, Camera
from .coarse_field import CoarseField, softplus
from .errors import InputError, OptionError
from .voxelart import VoxelArt

NUM_VIEWS = 6
OPAQUE_DENSITY = 40.0  # raw density whose voxel opacity is 1 to float precision (for renders)


# --- configuration -------------------------------------------------------------------------------

@dataclass
class Stage2Config:
    """Defaults are the `fast` preset: fewer steps than the authors' 6500, so the density
    learns 4x faster than their 5e-3 (measured on the shipped meshes at N=32: better silhouette
    IoU and colour error than 5e-3 at the same step count)."""

    iterations: int = 800
    lr_density: float = 2e-2
    lr_logits: float = 0.1
    lr_rgb: float = 5e-3  # continuous colours of the use_gumbel=False ablation
    w_pixel: float = 10.0
    w_alpha: float = 20.0
    w_depth: float = 20.0
    w_clip: float = 1.0
    w_class: float = 1.0  # palette cross-entropy on the logits (0: the paper's losses only)
    depth_loss: str = "smooth_l1"  # or "l1"
    depth_beta: float = 0.02  # smooth-L1 knee, in box lengths
    clip_every: int = 25  # a CLIP step every k iterations (~1.3 s each, ViT-B-32, 2 cores)
    clip_patches_per_view: int = 1
    clip_patch_cells: int = 8  # patch width in voxels (pixels of the N x N view)
    # Gumbel temperature: (fraction of iterations, tau) steps; hard (straight-through) after
    # `hard_from` of the iterations, as the authors' 5000 of 6500.
    tau_schedule: tuple = ((0.0, 1.0), (0.2, 0.8), (0.4, 0.5), (0.55, 0.3), (0.7, 0.1))
    hard_from: float = 0.77
    logit_scale: float = 0.1  # initial logit_n = -||rgb - c_n|| / logit_scale
    occupancy_alpha: float = 0.5  # a voxel is filled when its opacity exceeds this
    fill: bool = False  # fill the closed interior
    skip_alpha: float = 1e-4  # columns whose voxels are all below this opacity are skipped
    t_min: float = 1e-4  # rays stop when their transmittance falls to this
    perspective_distance: float = 2.5  # camera distance of the "w/o ortho" ablation
    noise_table_size: int = 1 << 18
    log_every: int = 10

    @classmethod
    def preset(cls, name, **overrides):
        if name not in PRESETS:
            raise OptionError(f"unknown Stage 2 preset {name!r}: choose one of "
                              f"{', '.join(PRESETS)}")
        cfg = dataclasses.replace(cls(), **PRESETS[name])
        return dataclasses.replace(cfg, **overrides) if overrides else cfg

    def validate(self):
        if self.iterations < 1:
            raise OptionError(f"Stage 2 needs at least one iteration, got {self.iterations}")
        if self.depth_loss not in ("smooth_l1", "l1"):
            raise OptionError(f"depth_loss must be 'smooth_l1' or 'l1', got {self.depth_loss!r}")
        if not 0.0 < self.occupancy_alpha < 1.0:
            raise OptionError(f"occupancy_alpha must lie in (0, 1), got {self.occupancy_alpha}")
        if self.clip_every < 1 or self.clip_patch_cells < 1:
            raise OptionError("clip_every and clip_patch_cells must be at least 1")
        if any(tau <= 0 for _, tau in self.tau_schedule) or not self.tau_schedule:
            raise OptionError("the temperature schedule needs positive temperatures")
        return self

    def temperature(self, step):
        """(tau, hard) at iteration `step` (0-based)."""
        frac = step / self.iterations
        tau = self.tau_schedule[0][1]
        for start, value in self.tau_schedule:
            if frac >= start:
                tau = value
        return tau, frac >= self.hard_from


PRESETS = {
    "test": dict(iterations=60, log_every=5, clip_every=1),
    "fast": dict(),
    "paper": dict(iterations=6500, lr_density=5e-3, w_depth=20.0, clip_every=1,
                  clip_patches_per_view=1, hard_from=5000 / 6500),
}


# --- renderers over ti.ndarrays ------------------------------------------------------------------

def _ndarray(shape, dtype=None):
    import taichi as ti

    return ti.ndarray(dtype or backend.ti_float(), shape)


def _from_numpy(array, dtype=None):
    import taichi as ti

    array = np.ascontiguousarray(array, dtype=dtype or backend.float_dtype())
    nd = ti.ndarray(ti.i32 if array.dtype == np.int32 else backend.ti_float(), array.shape)
    nd.from_numpy(array)
    return nd


def density_threshold(alpha, shift):
    """Raw density above which a voxel's opacity exceeds `alpha` (-inf-like for alpha = 0)."""
    if alpha <= 0:
        return -1e30
    return float(np.log(np.expm1(-np.log1p(-alpha))) - shift)


@dataclass
class ViewRender:
    rgb: np.ndarray  # (6, N, N, 3) over white
    depth: np.ndarray  # (6, N, N) in [0, 1], background on the far face
    opacity: np.ndarray  # (6, N, N)


class AxisViewRenderer:
    """The six axis views of an N^3 grid, forward and hand-written backward (kernels/ortho.py)."""

    def __init__(self, n, shift, skip_alpha=1e-4, t_min=1e-4):
        import taichi as ti

        from taichi_voxify.kernels import ortho

        self._k = ortho
        self.n, self.shift, self.t_min = n, float(shift), float(t_min)
        self.threshold = density_threshold(skip_alpha, shift)
        self.span = ti.ndarray(ti.i32, (3, n, n, 2))
        self.out = (_ndarray((NUM_VIEWS, n, n, 3)), _ndarray((NUM_VIEWS, n, n)),
                    _ndarray((NUM_VIEWS, n, n)))
        self.grads = (_ndarray((NUM_VIEWS, n, n, 3)), _ndarray((NUM_VIEWS, n, n)),
                      _ndarray((NUM_VIEWS, n, n)))

    def forward(self, density, rgb):
        self._k.column_spans(density, self.threshold, self.span)
        self._k.render_axis_views(density, rgb, self.span, self.shift, self.t_min, *self.out)
        return ViewRender(*(a.to_numpy() for a in self.out))

    def pixel_classes(self, density, target, weight, hist):
        """hist (N,N,N,C) ndarray += how much each voxel is seen by pixels of each target palette
        index (target (6,N,N) i32 ndarray, -1 for none; weight (6,N,N) per pixel), for the
        density of the last forward."""
        self._k.accumulate_pixel_classes(density, self.span, self.shift, self.t_min, target,
                                         weight, hist)

    def backward(self, density, rgb, g_rgb, g_depth, g_opacity, grad_density, grad_rgb):
        """Accumulate into grad_density / grad_rgb (ndarrays) for the last forward's outputs."""
        for nd, g in zip(self.grads, (g_rgb, g_depth, g_opacity)):
            nd.from_numpy(np.ascontiguousarray(g, dtype=backend.float_dtype()))
        self._k.render_axis_views_backward(density, rgb, self.span, self.shift, self.t_min,
                                           *self.out, *self.grads, grad_density, grad_rgb)


def perspective_cameras(distance):
    """Six perspective cameras on the axis directions; the box centre plane fills the image."""
    cams = []
    for view in axis_views():
        cams.append(Camera(view.name, -view.forward * distance, view.forward, view.up,
                           ortho=False, width=1.0 / distance, height=1.0 / distance))
    return cams


class PerspectiveRenderer:
    """Six perspective views by nearest-voxel ray marching (the "w/o ortho" ablation only).
    Depth is measured from the plane of the box face nearest the camera, as the axis views."""

    def __init__(self, n, shift, distance=2.5, step=0.5):
        from taichi_voxify.kernels import ortho

        self._k = ortho
        self.n, self.shift, self.step = n, float(shift), float(step)
        self.depth_offset = float(distance - 0.5)
        rays = [cam.rays(n, n) for cam in perspective_cameras(distance)]
        self.origins = _from_numpy(np.stack([o for o, _ in rays]))
        self.dirs = _from_numpy(np.stack([d for _, d in rays]))
        self.out = (_ndarray((NUM_VIEWS, n, n, 3)), _ndarray((NUM_VIEWS, n, n)),
                    _ndarray((NUM_VIEWS, n, n)))
        self.grads = (_ndarray((NUM_VIEWS, n, n, 3)), _ndarray((NUM_VIEWS, n, n)),
                      _ndarray((NUM_VIEWS, n, n)))

    def _args(self):
        return self.origins, self.dirs, self.shift, self.step, self.depth_offset

    def forward(self, density, rgb):
        self._k.render_rays(density, rgb, *self._args(), *self.out)
        return ViewRender(*(a.to_numpy() for a in self.out))

    def backward(self, density, rgb, g_rgb, g_depth, g_opacity, grad_density, grad_rgb):
        for nd, g in zip(self.grads, (g_rgb, g_depth, g_opacity)):
            nd.from_numpy(np.ascontiguousarray(g, dtype=backend.float_dtype()))
        self._k.render_rays_backward(density, rgb, *self._args(), *self.out, *self.grads,
                                     grad_density, grad_rgb)


# --- palette quantizer over ti.ndarrays ----------------------------------------------------------

def gumbel_noise_table(seed, size):
    """`size` standard Gumbel samples from a numpy Generator seeded with `seed`."""
    u = np.random.default_rng(seed).random(size)
    u = np.clip(u, 1e-12, 1.0 - 1e-12)
    return -np.log(-np.log(u))


def initial_logits(rgb, palette, scale=0.1):
    """logit_n = -||rgb - c_n|| / scale for (..., 3) colours and (C, 3) palette in [0, 1]."""
    dist = np.linalg.norm(rgb[..., None, :] - palette, axis=-1)
    return -dist / scale


class PaletteQuantizer:
    """Per-voxel Gumbel-Softmax over a palette (kernels/gumbel.py): logits -> colours, and back."""

    def __init__(self, shape, palette, seed=0, table_size=1 << 18):
        from taichi_voxify.kernels import gumbel

        self._k = gumbel
        colours = len(palette)
        self.palette = _from_numpy(palette)
        self.noise = _from_numpy(gumbel_noise_table(seed, table_size))
        self.soft = _ndarray(tuple(shape) + (colours,))
        self.rgb = _ndarray(tuple(shape) + (3,))
        self.grad_logits = _ndarray(tuple(shape) + (colours,))
        for nd in (self.soft, self.rgb):
            nd.fill(0)
        self.inv_tau = 1.0
        self._all = None

    def _everywhere(self, shape):
        if self._all is None:
            self._all = _ndarray(tuple(shape))
            self._all.fill(0)
        return self._all

    def forward(self, logits, step, tau, hard=False, noise=True, density=None, threshold=-1e30):
        """Fill self.rgb (and self.soft) from the logits ndarray; the noise depends on `step`.
        With a density ndarray, voxels whose raw density is not above `threshold` are skipped
        (their colours keep the last value they had; the renderer barely sees them)."""
        self.inv_tau = 1.0 / tau
        if density is None:
            density, threshold = self._everywhere(logits.shape[:3]), -1e30
        self._active = density, float(threshold)
        self._k.gumbel_softmax(logits, self.palette, self.noise, int(step) & 0xFFFFFFFF,
                               1.0 if noise else 0.0, self.inv_tau, int(hard), density,
                               float(threshold), self.soft, self.rgb)
        return self.rgb

    def backward(self, grad_rgb):
        """d loss / d logits (self.grad_logits) from d loss / d rgb, for the last forward."""
        self._k.gumbel_softmax_backward(self.soft, self.palette, grad_rgb, self.inv_tau,
                                        *self._active, self.grad_logits)
        return self.grad_logits

    def add_cross_entropy(self, logits, hist, scale):
        """self.grad_logits += scale * d/d logits sum_n -hist_n log softmax(logits)_n."""
        self._k.add_palette_cross_entropy(logits, hist, float(scale), self.grad_logits)


# --- inputs --------------------------------------------------------------------------------------

def softplus_inverse(y):
    y = np.maximum(y, 1e-30)
    return y + np.log(-np.expm1(-y))


def resample_field(coarse, n):
    """(density, rgb) of the coarse field on an n^3 grid (trilinear, cell centres aligned),
    with the density rescaled so the opacity per world length is kept."""
    from scipy.ndimage import map_coordinates

    r = coarse.resolution
    density = np.asarray(coarse.density, dtype=np.float64)
    rgb = np.asarray(coarse.rgb, dtype=np.float64)
    if r == n:
        return density, rgb
    src = (np.arange(n) + 0.5) * r / n - 0.5
    grid = np.stack(np.meshgrid(src, src, src, indexing="ij"))
    sample = lambda a: map_coordinates(a, grid, order=1, mode="nearest")  # noqa: E731
    thickness = softplus(sample(density) + coarse.shift) * (r / n)  # per new voxel length
    rgb = np.stack([sample(rgb[..., ch]) for ch in range(3)], axis=-1)
    return softplus_inverse(thickness) - coarse.shift, np.clip(rgb, 0.0, 1.0)


def _as_unit_float(image):
    a = np.asarray(image)
    return a.astype(np.float64) / 255.0 if a.dtype == np.uint8 else a.astype(np.float64)


def check_inputs(coarse, pixel_art, masks, palette, depth_target, mesh_views_hr, clip):
    pixel_art = _as_unit_float(pixel_art)
    if pixel_art.ndim != 4 or pixel_art.shape[0] != NUM_VIEWS or pixel_art.shape[3] != 3 \
            or pixel_art.shape[1] != pixel_art.shape[2]:
        raise InputError(f"pixel art must be (6, N, N, 3), got {pixel_art.shape}")
    n = pixel_art.shape[1]
    masks = np.asarray(masks, dtype=bool)
    if masks.shape != (NUM_VIEWS, n, n):
        raise InputError(f"masks must be (6, {n}, {n}), got {masks.shape}")
    palette = np.asarray(palette)
    if palette.ndim != 2 or palette.shape[1] != 3 or len(palette) < 1:
        raise InputError(f"palette must be (K, 3) uint8, got {palette.shape}")
    if not isinstance(coarse, CoarseField):
        raise InputError("Stage 2 needs the CoarseField made by Stage 1")
    if not np.all(np.isfinite(pixel_art)) or not np.all(np.isfinite(coarse.density)):
        raise InputError("Stage 2 inputs hold NaN or infinite values")
    if depth_target is not None and np.shape(depth_target) != (NUM_VIEWS, n, n):
        raise InputError(f"depth target must be (6, {n}, {n}), got {np.shape(depth_target)}")
    if clip is not None:
        if mesh_views_hr is None or np.ndim(mesh_views_hr) != 4 \
                or np.shape(mesh_views_hr)[0] != NUM_VIEWS:
            raise InputError("the CLIP loss needs the six high-resolution mesh views (6,H,H,3)")
    return n, pixel_art, masks, _as_unit_float(palette)


def palette_targets(pixel_art, masks, palette):
    """(6,N,N) int32: the palette index nearest each foreground pixel-art colour, -1 elsewhere."""
    dist = np.linalg.norm(pixel_art[..., None, :] - palette, axis=-1)
    return np.where(masks, np.argmin(dist, axis=-1), -1).astype(np.int32)


def palette_cross_entropy(hist, logits, count):
    """The cross-entropy term's value: sum -hist log softmax(logits) / count."""
    z = logits - logits.max(axis=-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return float(-(hist * log_p).sum() / max(count, 1))


def stage1_depth(coarse, n):
    """Stage 1's own rendered depth of the six axis views (N x N), in box lengths from the entry
    face; NaN where the coarse field shows nothing."""
    depth = np.stack([coarse.render(cam, n)[1] for cam in axis_views()]).astype(np.float64)
    return np.where(np.isfinite(depth), depth, np.nan)


# --- losses --------------------------------------------------------------------------------------

def view_losses(out, pixel_art, masks, depth_target, cfg):
    """Weighted loss terms and their gradients w.r.t. the rendered colour, depth and opacity."""
    diff = out.rgb - pixel_art
    pixel = float(np.mean(diff * diff))
    g_rgb = cfg.w_pixel * 2.0 * diff / diff.size
    background = ~masks
    count = max(int(background.sum()), 1)
    alpha = float(np.sum(out.opacity ** 2 * background)) / count
    g_opacity = cfg.w_alpha * 2.0 * out.opacity * background / count
    depth, g_depth = 0.0, np.zeros_like(out.depth)
    if depth_target is not None and cfg.w_depth > 0:
        valid = masks & np.isfinite(depth_target)
        x = np.where(valid, out.depth - np.nan_to_num(depth_target), 0.0)
        count = max(int(valid.sum()), 1)
        if cfg.depth_loss == "l1":
            depth, slope = np.abs(x).sum() / count, np.sign(x)
        else:
            beta = cfg.depth_beta
            small = np.abs(x) < beta
            depth = np.where(small, 0.5 * x * x / beta, np.abs(x) - 0.5 * beta).sum() / count
            slope = np.where(small, x / beta, np.sign(x))
        g_depth = cfg.w_depth * slope * valid / count
    total = cfg.w_pixel * pixel + cfg.w_alpha * alpha + cfg.w_depth * float(depth)
    terms = dict(loss=total, pixel=pixel, alpha=alpha, depth=float(depth))
    return terms, g_rgb, g_depth, g_opacity


# --- training ------------------------------------------------------------------------------------

class _AdamParam:
    """A trained ti.ndarray with its gradient and Adam moments (kernels/adam.masked_adam_step)."""

    def __init__(self, values, lr, low=-1e30, high=1e30):
        self.value = _from_numpy(values)
        self.grad = _ndarray(values.shape)
        self.m, self.v = _ndarray(values.shape), _ndarray(values.shape)
        self.m.fill(0)
        self.v.fill(0)
        self.lr, self.low, self.high = lr, low, high

    def step(self, t, beta1=0.9, beta2=0.99, eps=1e-12):
        from taichi_voxify.kernels.adam import masked_adam_step

        masked_adam_step(self.value, self.grad, self.m, self.v, self.lr, beta1, beta2,
                         1.0 - beta1 ** t, 1.0 - beta2 ** t, eps, self.low, self.high)


class Stage2Trainer:
    """The trained grids and one optimisation step; see the module docstring."""

    def __init__(self, density, rgb, palette, shift, config, seed=0, ortho=True,
                 use_gumbel=True):
        n = density.shape[0]
        self.config, self.shift, self.palette, self.n = config, shift, palette, n
        self.density = _AdamParam(density, config.lr_density)
        self.use_gumbel = use_gumbel
        if use_gumbel:
            self.logits = _AdamParam(initial_logits(rgb, palette, config.logit_scale),
                                     config.lr_logits)
            self.quantizer = PaletteQuantizer((n, n, n), palette, seed, config.noise_table_size)
            self.logits.grad = self.quantizer.grad_logits  # the quantizer's backward fills it
            self.grad_rgb = _ndarray((n, n, n, 3))
        else:
            self.colour = _AdamParam(rgb, config.lr_rgb, 0.0, 1.0)
            self.grad_rgb = self.colour.grad
        self.renderer_threshold = density_threshold(config.skip_alpha, shift)
        if ortho:
            self.renderer = AxisViewRenderer(n, shift, config.skip_alpha, config.t_min)
        else:
            self.renderer = PerspectiveRenderer(n, shift, config.perspective_distance)
        # the cross-entropy needs one ray per voxel column: axis views and palette logits only
        self.use_class = ortho and use_gumbel and config.w_class > 0
        if self.use_class:
            self.class_hist = _ndarray((n, n, n, len(palette)))
            self.class_weight = _ndarray((NUM_VIEWS, n, n))
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
        self.density.grad.fill(0)
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
            self.class_target = _from_numpy(target, np.int32)
            self.class_count = int(np.count_nonzero(target >= 0))
        self.class_hist.fill(0)
        self.renderer.pixel_classes(self.density.value, self.class_target, self.class_weight,
                                    self.class_hist)
        scale = self.config.w_class / max(self.class_count, 1)
        self.quantizer.add_cross_entropy(self.logits.value, self.class_hist, scale)
        if log:
            return palette_cross_entropy(self.class_hist.to_numpy(), self.logits.value.to_numpy(),
                                         self.class_count)
        return None

    def initial_depth(self):
        """Depth of the six views of the grids as they are (used before the first step)."""
        return self.renderer.forward(self.density.value, self.colours(0)).depth

    def grids(self):
        """(density (N,N,N), colour index (N,N,N) 0-based, logits or None, continuous rgb)."""
        density = self.density.value.to_numpy()
        if self.use_gumbel:
            logits = self.logits.value.to_numpy()
            index = np.argmax(logits, axis=-1)
            return density, index, logits, self.palette[index]
        rgb = self.colour.value.to_numpy()
        return density, nearest_palette_index(rgb, self.palette), None, rgb


def nearest_palette_index(rgb, palette):
    """Index of the palette colour nearest in CIE Lab to each (..., 3) colour."""
    from .color import srgb_to_lab

    lab, pal = srgb_to_lab(rgb), srgb_to_lab(palette)
    return np.argmin(np.linalg.norm(lab[..., None, :] - pal, axis=-1), axis=-1)


def fill_interior(occupancy, color_index):
    """Fill the cavities no path from outside reaches; each new voxel takes the colour of the
    nearest filled voxel. Returns new (occupancy, color_index)."""
    from scipy import ndimage

    solid = ndimage.binary_fill_holes(occupancy)
    new = solid & ~occupancy
    color_index = color_index.copy()
    if new.any():
        _, nearest = ndimage.distance_transform_edt(~occupancy, return_indices=True)
        color_index[new] = color_index[tuple(axis[new] for axis in nearest)]
    return solid, color_index


def render_voxel_art(occupancy, color_index, palette):
    """The six axis views of opaque palette-coloured voxels (what the exports show)."""
    n = occupancy.shape[0]
    density = np.where(occupancy, OPAQUE_DENSITY, -OPAQUE_DENSITY)
    renderer = AxisViewRenderer(n, 0.0, skip_alpha=1e-4, t_min=1e-6)
    return renderer.forward(_from_numpy(density), _from_numpy(palette[color_index]))


@dataclass
class Stage2Result:
    occupancy: np.ndarray  # (N,N,N) bool
    color_index: np.ndarray  # (N,N,N) int, 0-based palette index (argmax of the logits)
    palette: np.ndarray  # (K,3) uint8
    density: np.ndarray  # (N,N,N) trained raw density
    logits: np.ndarray  # (N,N,N,K), None for the use_gumbel=False ablation
    rgb: np.ndarray  # (N,N,N,3) colour before quantisation (palette colour of the argmax)
    renders: ViewRender  # six axis views of the final voxel art
    history: list = field(default_factory=list)  # loss terms every log_every steps
    metadata: dict = field(default_factory=dict)

    def colors_used(self):
        return sorted(int(i) for i in np.unique(self.color_index[self.occupancy]))

    def to_voxel_art(self, metadata=None):
        return VoxelArt.from_dense(self.occupancy, self.color_index, self.palette,
                                   metadata={**self.metadata, **(metadata or {})})


def train_stage2(coarse, pixel_art, masks, palette, depth_target=None, mesh_views_hr=None,
                 config=None, seed=0, progress=None, clip=None, ortho=True, use_gumbel=True):
    """Fine-tune the coarse field into palette voxel art fitted to six pixel-art views.

    coarse: Stage 1's CoarseField (resampled when its resolution is not N);
    pixel_art (6,N,N,3) float sRGB over white; masks (6,N,N) bool foreground;
    palette (K,3) uint8; depth_target (6,N,N) distance from the entry face in box lengths,
    NaN/inf where there is none, or None for Stage 1's own rendered depth;
    mesh_views_hr (6,H,H,3) the mesh's axis views at high resolution (for CLIP);
    clip: a clip_bridge.ClipPatchLoss or None; ortho=False / use_gumbel=False: ablations.
    """
    cfg = (config or Stage2Config.preset("fast")).validate()
    start = time.perf_counter()
    backend.ensure_init()
    n, pixel_art, masks, palette_f = check_inputs(coarse, pixel_art, masks, palette,
                                                  depth_target, mesh_views_hr, clip)
    density, rgb = resample_field(coarse, n)
    depth_source = "given" if depth_target is not None else "stage1"
    if depth_target is None and cfg.w_depth > 0:
        depth_target = stage1_depth(coarse, n)
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
                           depth_target=depth_source,
                           config=dataclasses.asdict(cfg))
    return result


def _finish(trainer, palette, history, cfg):
    density, index, logits, rgb = trainer.grids()
    alpha = 1.0 - np.exp(-softplus(density + trainer.shift))
    occupancy = alpha > cfg.occupancy_alpha
    if cfg.fill:
        occupancy, index = fill_interior(occupancy, index)
    renders = render_voxel_art(occupancy, index, palette.astype(np.float64) / 255.0)
    return Stage2Result(occupancy, index, palette, density, logits, rgb, renders, history)
