"""Stage 2: six-view orthographic pixel-art fine-tuning with a palette-constrained Gumbel-Softmax.

The coarse field from Stage 1 is resampled to the target grid (N^3). Its density keeps training;
its colour is replaced by per-voxel logits over the palette. Every step renders the six axis
views with rays that run along voxel columns (kernels/ortho.py; a perspective variant stands in
for the paper's "w/o ortho" ablation) and fits them to the six pixel-art images:

    loss = w_pixel * MSE(colour, pixel art)                 (all pixels, over white)
         + w_alpha * mean(opacity^2 over background pixels)
         + w_depth * smooth-L1(depth - target) over foreground pixels
         + w_clip  * (1 - cos(CLIP(rendered patch), CLIP(mesh patch)))   every clip_every steps

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
    iterations: int = 400
    lr_density: float = 5e-3
    lr_logits: float = 0.1
    lr_rgb: float = 5e-3  # continuous colours of the use_gumbel=False ablation
    w_pixel: float = 10.0
    w_alpha: float = 20.0
    w_depth: float = 20.0
    w_clip: float = 1.0
    depth_loss: str = "smooth_l1"  # or "l1"
    depth_beta: float = 0.02  # smooth-L1 knee, in box lengths
    clip_every: int = 1  # a CLIP step every k iterations
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
    "test": dict(iterations=60, log_every=5),
    "fast": dict(iterations=400),
    "paper": dict(iterations=6500, w_depth=20.0, clip_every=1, clip_patches_per_view=1,
                  hard_from=5000 / 6500),
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

        from kernels import ortho

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
        from kernels import ortho

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
        from kernels import gumbel

        self._k = gumbel
        colours = len(palette)
        self.palette = _from_numpy(palette)
        self.noise = _from_numpy(gumbel_noise_table(seed, table_size))
        self.soft = _ndarray(tuple(shape) + (colours,))
        self.rgb = _ndarray(tuple(shape) + (3,))
        self.grad_logits = _ndarray(tuple(shape) + (colours,))
        self.inv_tau = 1.0

    def forward(self, logits, step, tau, hard=False, noise=True):
        """Fill self.rgb (and self.soft) from the logits ndarray; the noise depends on `step`."""
        self.inv_tau = 1.0 / tau
        self._k.gumbel_softmax(logits, self.palette, self.noise, int(step) & 0xFFFFFFFF,
                               1.0 if noise else 0.0, self.inv_tau, int(hard), self.soft,
                               self.rgb)
        return self.rgb

    def backward(self, grad_rgb):
        """d loss / d logits (self.grad_logits) from d loss / d rgb, for the last forward."""
        self._k.gumbel_softmax_backward(self.soft, self.palette, grad_rgb, self.inv_tau,
                                        self.grad_logits)
        return self.grad_logits
