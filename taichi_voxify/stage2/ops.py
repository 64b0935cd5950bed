"""Stage 2's differentiable operators over device arrays, each owning its buffers: the six
axis-view renderer (kernels/ortho.py), the perspective renderer of the "w/o ortho" ablation, and
the palette quantizer (kernels/gumbel.py).

The renderers keep their outputs (`out`: colour, depth, opacity) and the loss gradients of
those outputs (`grads`) on the device; `images()` copies the outputs to numpy when a caller
wants them (logging, CLIP, tests), so a training step moves no images to the host."""
from dataclasses import dataclass

import numpy as np

from .. import backend, ndarrays
from ..errors import OptionError
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
    """The six axis views of an N^3 grid, forward and hand-written backward (kernels/ortho.py).

    Colours come from an rgb grid (N,N,N,3), or from palette logits (N,N,N,C) with a
    PaletteQuantizer, quantized where the rays visit. The backward reads the loss gradients of
    the outputs from `grads` (fill them with set_output_grads or a loss kernel), accumulates
    the grid gradients and flags every visited grid.BLOCK^3 block in `touched` (for Adam; the
    caller clears it)."""

    def __init__(self, n, shift, skip_alpha=1e-4, t_min=1e-4):
        import taichi as ti

        from ..kernels import ortho
        from ..kernels.grid import block_count

        self._k = ortho
        self.n, self.shift, self.t_min = n, float(shift), float(t_min)
        self.threshold = density_threshold(skip_alpha, shift)
        self.span = ndarrays.empty((3, n, n, 2), ti.i32)
        self._spans_ready = False
        self.out = _view_images(n)
        self.grads = _view_images(n)
        self.touched = ndarrays.zeros((block_count(n),) * 3, ti.u8)
        self.class_value = ndarrays.zeros((block_count(n),) * 3)
        self._no_target = ndarrays.zeros((1, 1, 1), ti.i32)
        self._cache = None  # the quantizer's per-voxel buffers, made on first use
        self._pass_id = 0  # stamps the voxels a forward quantized
        self._class_scale = 0.0  # of the last backward's cross-entropy, for its value

    def _quantizer_cache(self, colours):
        """Per-voxel buffers of the quantized colours: stamp, soft (probabilities), rgb,
        rgb_grad and the cross-entropy's class histogram (the last two kept at zero between
        steps)."""
        import taichi as ti

        n = self.n
        if self._cache is None or self._cache["soft"].shape[3] != colours:
            self._cache = dict(stamp=ndarrays.full((n,) * 3, -1, ti.i32),
                               soft=ndarrays.empty((n,) * 3 + (colours,)),
                               rgb=ndarrays.empty((n,) * 3 + (3,)),
                               rgb_grad=ndarrays.zeros((n,) * 3 + (3,)),
                               hist=ndarrays.zeros((n,) * 3 + (colours,)))
        return self._cache

    def forward(self, density, colour, quantizer=None, refresh_spans=True):
        """Render the grids (raw density (N,N,N) and colour: rgb, or logits with `quantizer`
        set to this step). refresh_spans: first recompute the occupied span of every column
        (the marches skip the rest; a full pass over the density); the first call always
        does."""
        if refresh_spans or not self._spans_ready:
            self._spans_ready = True
            self._k.column_spans(density, self.threshold, self.span)
        self._pass_id += 1
        if quantizer is None:  # an rgb grid: the quantizer's arguments go unused
            dummy = self.class_value
            self._k.render_axis_views(density, colour, dummy, dummy, self.span, self.shift,
                                      self.t_min, 0, 0.0, 1.0, 0, self._no_target, 0, dummy,
                                      dummy, *self.out, False, 0)
            return
        cache = self._quantizer_cache(colour.shape[3])
        palette, noise, *scalars = quantizer.kernel_args()
        self._k.render_axis_views(density, colour, palette, noise, self.span, self.shift,
                                  self.t_min, *scalars, cache["stamp"], self._pass_id,
                                  cache["soft"], cache["rgb"], *self.out, True,
                                  int(colour.shape[3]))

    def backward(self, density, colour, grad_density, grad_colour, quantizer=None,
                 class_target=None, class_scale=0.0):
        """Accumulate d loss / d density and d loss / d colour (rgb, or logits through the
        quantizer) for the last forward; with logits, class_target (6,N,N) i32 and
        class_scale > 0 add the palette cross-entropy (its value: class_term())."""
        with_classes = quantizer is not None and class_target is not None and class_scale > 0
        self._class_scale = float(class_scale) if with_classes else 0.0
        if quantizer is None:
            self._k.render_axis_views_backward(
                density, colour, self.span, self.shift, self.t_min, *self.out, *self.grads,
                grad_density, grad_colour, self.touched, self._no_target, grad_colour, False)
            return
        cache = self._quantizer_cache(colour.shape[3])
        self._k.render_axis_views_backward(
            density, cache["rgb"], self.span, self.shift, self.t_min, *self.out, *self.grads,
            grad_density, cache["rgb_grad"], self.touched,
            class_target if with_classes else self._no_target,
            cache["hist"] if with_classes else colour, with_classes)
        self._k.logit_grads(self.touched, cache["stamp"], self._pass_id, cache["soft"],
                            quantizer.palette, cache["rgb_grad"], quantizer.inv_tau, colour,
                            cache["hist"], self._class_scale, grad_colour, self.class_value,
                            int(colour.shape[3]))

    def class_term(self):
        """The weighted palette cross-entropy of the last backward (0 without one)."""
        if self._class_scale <= 0:
            return 0.0
        return float(self.class_value.to_numpy().sum())

    def images(self):
        return ViewRender(*(a.to_numpy() for a in self.out))

    def set_output_grads(self, g_rgb, g_depth, g_opacity):
        """Upload numpy loss gradients of the outputs (6,N,N,3), (6,N,N), (6,N,N)."""
        _upload(self.grads, (g_rgb, g_depth, g_opacity))


def _view_images(n):
    return (ndarrays.zeros((NUM_VIEWS, n, n, 3)), ndarrays.zeros((NUM_VIEWS, n, n)),
            ndarrays.zeros((NUM_VIEWS, n, n)))


def _upload(device, arrays):
    for nd, a in zip(device, arrays):
        nd.from_numpy(np.ascontiguousarray(a, dtype=backend.float_dtype()))


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
        self.out = _view_images(n)
        self.grads = _view_images(n)

    def _args(self):
        return self.origins, self.dirs, self.shift, self.step, self.depth_offset

    def forward(self, density, rgb):
        self._k.render_perspective_views(density, rgb, *self._args(), *self.out)

    def backward(self, density, rgb, grad_density, grad_rgb):
        """Accumulate the grid gradients for the last forward, from `grads`."""
        self._k.render_perspective_views_backward(density, rgb, *self._args(), *self.out,
                                                  *self.grads, grad_density, grad_rgb)

    images = AxisViewRenderer.images
    set_output_grads = AxisViewRenderer.set_output_grads


def gumbel_noise_table(seed, size):
    """`size` standard Gumbel samples from a numpy Generator seeded with `seed`."""
    u = np.random.default_rng(seed).random(size)
    u = np.clip(u, 1e-12, 1.0 - 1e-12)
    return -np.log(-np.log(u))


def initial_logits(rgb, palette, scale=0.1):
    """logit_n = -||rgb - c_n|| / scale for (..., 3) colours and (C, 3) palette in [0, 1].
    One palette colour at a time: an (..., C, 3) difference array is 0.7 GB at N=256."""
    rgb = np.asarray(rgb)
    logits = np.empty(rgb.shape[:-1] + (len(palette),), dtype=np.result_type(rgb, palette))
    for n, colour in enumerate(palette):
        logits[..., n] = -np.linalg.norm(rgb - colour, axis=-1) / scale
    return logits


def step_key(step):
    """PCG hash of the step number (u32), as kernels/gumbel.pcg_hash computes it: the kernels
    mix it with each entry's index to pick its noise slot."""
    with np.errstate(over="ignore"):
        x = np.uint32(int(step) & 0xFFFFFFFF)
        state = x * np.uint32(747796405) + np.uint32(2891336453)
        word = ((state >> ((state >> np.uint32(28)) + np.uint32(4))) ^ state) \
            * np.uint32(277803737)
        return int((word >> np.uint32(22)) ^ word)


class PaletteQuantizer:
    """Per-voxel Gumbel-Softmax over a palette (kernels/gumbel.py): logits -> colours, and back.

    set_step(step, tau, hard) fixes this step's noise and temperature; the axis-view renderer
    then quantizes on the fly (kernel_args), and forward/backward do it for a whole grid (for
    renderers that read a colour grid)."""

    def __init__(self, palette, seed=0, table_size=1 << 18):
        if table_size < 1 or table_size & (table_size - 1):
            raise OptionError(f"the Gumbel noise table's size must be a power of two, got "
                              f"{table_size}")
        self.palette = ndarrays.from_numpy(palette)
        self.noise = ndarrays.from_numpy(gumbel_noise_table(seed, table_size))
        self.set_step(0, 1.0)
        self.soft = self.rgb = None

    def set_step(self, step, tau, hard=False, noise=True):
        self.step_key = step_key(step)
        self.noise_scale = 1.0 if noise else 0.0
        self.inv_tau, self.hard = 1.0 / tau, int(bool(hard))

    def kernel_args(self):
        return (self.palette, self.noise, self.step_key, self.noise_scale, self.inv_tau,
                self.hard)

    def forward(self, logits, step, tau, hard=False, noise=True):
        """The colour grid (N,N,N,3) of the logits at this step (kept in self.rgb)."""
        from ..kernels.gumbel import gumbel_softmax

        self.set_step(step, tau, hard, noise)
        if self.soft is None or self.soft.shape != tuple(logits.shape):
            self.soft = ndarrays.empty(tuple(logits.shape))
            self.rgb = ndarrays.empty(tuple(logits.shape[:3]) + (3,))
        gumbel_softmax(logits, *self.kernel_args(), self.soft, self.rgb, int(logits.shape[3]))
        return self.rgb

    def backward(self, logits, grad_rgb, grad_logits):
        """grad_logits += d loss / d logits from d loss / d rgb (consumed: set to 0), for the
        last forward's step."""
        from ..kernels.gumbel import gumbel_softmax_backward

        gumbel_softmax_backward(self.soft, self.palette, self.inv_tau, grad_rgb, grad_logits,
                                int(self.soft.shape[3]))
