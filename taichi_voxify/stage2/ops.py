"""Stage 2's differentiable operators over device arrays, each owning its buffers: the six
axis-view renderer (kernels/ortho.py), the perspective renderer of the "w/o ortho" ablation, and
the palette quantizer (kernels/gumbel.py)."""
from dataclasses import dataclass

import numpy as np

from .. import backend, ndarrays
from ..cameras import Camera, axis_views
from ..views import NUM_VIEWS


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

        from ..kernels import ortho

        self._k = ortho
        self.n, self.shift, self.t_min = n, float(shift), float(t_min)
        self.threshold = density_threshold(skip_alpha, shift)
        self.span = ndarrays.empty((3, n, n, 2), ti.i32)
        self.out = (ndarrays.empty((NUM_VIEWS, n, n, 3)), ndarrays.empty((NUM_VIEWS, n, n)),
                    ndarrays.empty((NUM_VIEWS, n, n)))
        self.grads = (ndarrays.empty((NUM_VIEWS, n, n, 3)), ndarrays.empty((NUM_VIEWS, n, n)),
                      ndarrays.empty((NUM_VIEWS, n, n)))

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
        from ..kernels import ortho

        self._k = ortho
        self.n, self.shift, self.step = n, float(shift), float(step)
        self.depth_offset = float(distance - 0.5)
        rays = [cam.rays(n, n) for cam in perspective_cameras(distance)]
        self.origins = ndarrays.from_numpy(np.stack([o for o, _ in rays]))
        self.dirs = ndarrays.from_numpy(np.stack([d for _, d in rays]))
        self.out = (ndarrays.empty((NUM_VIEWS, n, n, 3)), ndarrays.empty((NUM_VIEWS, n, n)),
                    ndarrays.empty((NUM_VIEWS, n, n)))
        self.grads = (ndarrays.empty((NUM_VIEWS, n, n, 3)), ndarrays.empty((NUM_VIEWS, n, n)),
                      ndarrays.empty((NUM_VIEWS, n, n)))

    def _args(self):
        return self.origins, self.dirs, self.shift, self.step, self.depth_offset

    def forward(self, density, rgb):
        self._k.render_perspective_views(density, rgb, *self._args(), *self.out)
        return ViewRender(*(a.to_numpy() for a in self.out))

    def backward(self, density, rgb, g_rgb, g_depth, g_opacity, grad_density, grad_rgb):
        for nd, g in zip(self.grads, (g_rgb, g_depth, g_opacity)):
            nd.from_numpy(np.ascontiguousarray(g, dtype=backend.float_dtype()))
        self._k.render_perspective_views_backward(density, rgb, *self._args(), *self.out, *self.grads,
                                     grad_density, grad_rgb)


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
        from ..kernels import gumbel

        self._k = gumbel
        colours = len(palette)
        self.palette = ndarrays.from_numpy(palette)
        self.noise = ndarrays.from_numpy(gumbel_noise_table(seed, table_size))
        self.soft = ndarrays.empty(tuple(shape) + (colours,))
        self.rgb = ndarrays.empty(tuple(shape) + (3,))
        self.grad_logits = ndarrays.empty(tuple(shape) + (colours,))
        for nd in (self.soft, self.rgb):
            nd.fill(0)
        self.inv_tau = 1.0
        self._all = None

    def _everywhere(self, shape):
        if self._all is None:
            self._all = ndarrays.empty(tuple(shape))
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
