"""Stage 2 on a block-sparse grid (taichi_voxify/sparse_grid.py, kernels/sparse.py): the same
trainer, losses and maths as the dense path, with every per-voxel pass over the active blocks.

Which blocks are active:
- the candidates: the blocks of the six-view visual hull (the voxels every view's pixel-art mask
  covers) grown by one voxel; a voxel outside cannot be filled without turning a background
  pixel opaque, which the alpha loss forbids; less the buried blocks, whose voxels all lie more
  than `bury` voxels behind the target depth in every view: the inside of a solid part, which
  no view asks anything of and no ray reaches once the surface is opaque. They keep Stage 1's
  values and are never stored (a box-filling object at N=256 would otherwise hold the whole
  grid);
- at the start, and every `refresh_every` iterations, within the candidates: the blocks holding
  a voxel whose opacity is at least `keep_alpha` (anything still visible or still opaque,
  hidden or not), and the band of `band` voxels around the target depth of every foreground
  pixel (where the views ask for a surface, even while the voxels there are still transparent,
  so a surface can always grow there; the whole column of a foreground pixel with no target
  depth, a thin part). A dropped block is empty space: alpha 0, as a view in front of a surface
  wants it.
A block that comes back after being dropped starts transparent (at most `keep_alpha`), with
palette logits from Stage 1's colour, so a floater the losses removed does not return.
A refresh that would only drop blocks, fewer than `retire_share` of the active ones, keeps the
layout (the blocks train on, as on the dense grid): after the first refresh the cow drops a
few blocks in thousands each time and adds none, and every relayout reallocates and moves each
per-voxel array (about a second at N=256, 32 times a run).
"""
from dataclasses import dataclass

import numpy as np

from .. import ndarrays
from ..errors import OptionError
from ..sparse_grid import BLOCK, Channel, SparseGrid, block_voxel_coords, blocks_of
from ..views import LAYOUT, NUM_VIEWS
from .inputs import softplus_inverse
from .ops import AxisViewRenderer, density_threshold, initial_logits

ENGINES = ("auto", "dense", "sparse")
# `auto` picks sparse from this N, whatever the mesh fills: with this module's buried-block
# rule the box-filling BoxVertexColors is faster sparse (whole conversions, load ~3: N=64 27.5
# vs 46.1 s, N=128 63 vs 129 s, same IoU and colour error). At N=32 sparse is a little faster
# too (quiet, cow: 11.1 vs 11.5 s) but its colour error differs from the dense grid's by up to
# 1.9% on the shipped meshes (examples/engine_quality.py); N=32 stays on the dense reference.
SPARSE_FROM_N = 64
EMPTY_DENSITY = -1e4  # raw density of absent voxels: softplus(-1e4 + shift) is 0 in f32 and f64
BURIED_CHUNK = 1 << 20  # buried voxels filled from Stage 1's field at a time (~0.2 GB of scratch)


@dataclass(frozen=True)
class SparseSettings:
    refresh_every: int = 25  # iterations between refreshes of the active set
    keep_alpha: float = 1e-3  # a block with a voxel at least this opaque stays
    band: int = 2  # voxels in front of and behind the target depth that stay active
    # a block is buried when all its voxels lie more than this behind the target depth in every
    # view; at the band itself (2) alien N=128 lost 0.0018 IoU (rays still cross half-formed
    # surfaces), at 4 it keeps 0.9993 of 0.9995 with 9% of the grid active instead of 14%
    bury: int = 4
    retire_share: float = 0.05  # drop-only refreshes relayout from this share of the blocks


def choose_engine(engine, n, ortho=True, use_gumbel=True):
    """"dense" or "sparse" for a requested engine; the sparse grid serves the axis views with
    palette logits (the ablations run dense)."""
    if engine not in ENGINES:
        raise OptionError(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}")
    if not (ortho and use_gumbel):
        if engine == "sparse":
            raise OptionError("the sparse engine runs the axis views with palette logits; "
                              "the ortho/gumbel ablations need engine='dense'")
        return "dense"
    if engine == "auto":
        return "sparse" if n >= SPARSE_FROM_N else "dense"
    return engine


# --- the views as volumes (numpy) ------------------------------------------------------------

def image_to_volume(image, view):
    """An (N, N) image of an axis view as an array broadcastable to the (N, N, N) grid: every
    voxel gets the value of the pixel whose ray crosses it."""
    (march, _), (row, row_sign), (col, col_sign) = LAYOUT[view]
    img = np.asarray(image)
    img = img[::-1] if row_sign < 0 else img
    img = img[:, ::-1] if col_sign < 0 else img
    if row > col:
        img = img.T
    return np.expand_dims(img, march)


def visual_hull(masks):
    """(N, N, N) bool: the voxels that every view's mask covers."""
    hull = np.ones((masks.shape[1],) * 3, dtype=bool)
    for view in range(NUM_VIEWS):
        hull &= image_to_volume(masks[view], view)
    return hull


def dilate_voxels(mask):
    """A voxel mask grown by one voxel (26-neighbourhood)."""
    from scipy.ndimage import binary_dilation

    return binary_dilation(mask, np.ones((3, 3, 3), bool)) if mask.any() else mask


def _planes(view, n):
    """(s, index) of each plane of an (N, N, N) grid across a view's rays, s steps from its
    camera (one plane at a time: an (N, N, N) float64 difference is 134 MB at N=256)."""
    march, sign = LAYOUT[view][0]
    for s in range(n):
        plane = [slice(None)] * 3
        plane[march] = slice(s, s + 1) if sign > 0 else slice(n - 1 - s, n - s)
        yield s, tuple(plane)


def _surface_steps(masks, depth_target, view):
    """(foreground pixels with a target depth, the step of their surface voxel, -1e9 elsewhere)
    of one view; depth in box lengths from the entry face, NaN where there is none."""
    n = masks.shape[1]
    valid = masks[view] & np.isfinite(depth_target[view])
    return valid, np.where(valid, np.nan_to_num(depth_target[view]) * n - 0.5, -1e9)


def target_band(masks, depth_target, band):
    """(N, N, N) bool: voxels within `band` steps of a foreground pixel's target depth, and the
    whole column of a foreground pixel that has none: a part the pixel art keeps but the mesh
    covers less than half of (a thin part) has no depth, and its voxels must stay free to fill
    in."""
    n = masks.shape[1]
    near = np.zeros((n,) * 3, dtype=bool)
    for view in range(NUM_VIEWS):
        valid, surface = _surface_steps(masks, depth_target, view)
        whole_column = masks[view] & ~valid
        for s, plane in _planes(view, n):
            near[plane] |= image_to_volume((np.abs(s - surface) <= band) | whole_column, view)
    return near


def buried_voxels(masks, depth_target, depth):
    """(N, N, N) bool: voxels more than `depth` steps behind the target depth of their pixel in
    every view, i.e. inside a solid part: no view asks anything of them, and once the surface
    in front of them is opaque no ray reaches them."""
    n = masks.shape[1]
    buried = np.ones((n,) * 3, dtype=bool)
    for view in range(NUM_VIEWS):
        valid, surface = _surface_steps(masks, depth_target, view)
        for s, plane in _planes(view, n):
            buried[plane] &= image_to_volume(valid & (s - surface > depth), view)
    return buried


# --- the grid and its passes (stage2/grid.py's interface) ------------------------------------

def sparse_channels(colours):
    """The per-voxel arrays of Stage 2's sparse grid. The logits have no gradient array: their
    gradient goes straight into Adam (SparseAxisViewRenderer.adam_step)."""
    return [Channel("density", 1, EMPTY_DENSITY), Channel("density_grad", 1),
            Channel("density_m", 1), Channel("density_v", 1), Channel("logits", colours, 0.0),
            Channel("logits_m", colours), Channel("logits_v", colours),
            Channel("soft", colours), Channel("rgb", 3), Channel("rgb_grad", 3),
            Channel("hist", colours)]


class SparseAxisViewRenderer:
    """The six axis views of a SparseGrid (kernels/sparse.py), with the interface of
    stage2.AxisViewRenderer: forward(density, colour, quantizer), backward(...) from `grads`,
    images(), set_output_grads(...). `colour` is the grid's rgb channel, or its logits with a
    PaletteQuantizer set to the step: then the forward quantizes each voxel it visits once
    (into the grid's "soft" and "rgb"), the backward collects d loss / d rgb ("rgb_grad") and
    the palette cross-entropy's class histogram ("hist") of the voxels it visits, and one pass
    over the touched slots turns them into logit gradients. `touched` flags the slots the
    backward visited (for Adam; the grid clears it).

    defer_logit_grads: the backward leaves the logit gradients to adam_step, which computes
    each one inside its Adam update (what SparseStage2Grid trains with); otherwise backward
    adds them to grad_colour, as the dense renderer does."""

    def __init__(self, grid, shift, skip_alpha=1e-4, t_min=1e-4, defer_logit_grads=False):
        import taichi as ti

        n = grid.n
        self.grid, self.shift, self.t_min = grid, float(shift), float(t_min)
        self.defer_logit_grads = defer_logit_grads
        self._pending = None  # the quantizer of a backward whose logit gradients wait
        self.threshold = density_threshold(skip_alpha, shift)
        self.out = (ndarrays.zeros((NUM_VIEWS, n, n, 3)), ndarrays.zeros((NUM_VIEWS, n, n)),
                    ndarrays.zeros((NUM_VIEWS, n, n)))
        self.grads = (ndarrays.zeros((NUM_VIEWS, n, n, 3)), ndarrays.zeros((NUM_VIEWS, n, n)),
                      ndarrays.zeros((NUM_VIEWS, n, n)))
        self._layout = None  # the grid layout the per-slot and per-voxel buffers below fit
        self._pass_id = 0  # stamps the voxels a forward quantized
        self._class_scale = 0.0  # of the last backward's cross-entropy, for its value
        self._no_target = ndarrays.zeros((1, 1, 1), ti.i32)
        self.span = ndarrays.empty((3, n, n, 2), ti.i32)  # kernels/sparse.voxel_spans

    def _fit_layout(self):
        """(Re)make the buffers sized by the grid's slots after a relayout."""
        import taichi as ti

        if self._layout == self.grid.layout_version:
            return False
        self._layout = self.grid.layout_version
        self.touched = ndarrays.zeros((self.grid.capacity,), ti.u8)
        self.class_value = ndarrays.zeros((self.grid.capacity,))
        self._stamp = ndarrays.full((self.grid.voxels,), -1, ti.i32)
        return True

    def forward(self, density, colour, quantizer=None, refresh_spans=True):
        """As AxisViewRenderer.forward; the spans are also recomputed after a relayout (a block
        that comes back may hold a voxel above the skip threshold)."""
        from ..kernels import sparse

        if self._fit_layout() or refresh_spans:
            sparse.voxel_spans(self.grid.block_coords, density, self.threshold, self.span)
        self._pass_id += 1
        arrays = self.grid.arrays
        if quantizer is None:  # an rgb grid: the logits, palette, noise and soft go unused
            sparse.render_axis_views(self.grid.block_map, self.span, density, colour, self.shift,
                                     self.t_min, *self.out, self.grid.block_coords,
                                     density, density, density, 0, 0.0, 1.0, 0, self._stamp,
                                     self._pass_id, density, False, 0)
            return
        sparse.render_axis_views(self.grid.block_map, self.span, density, arrays["rgb"],
                                 self.shift, self.t_min, *self.out, self.grid.block_coords,
                                 colour, *quantizer.kernel_args(), self._stamp, self._pass_id,
                                 arrays["soft"], True, quantizer.palette.shape[0])

    def backward(self, density, colour, grad_density, grad_colour, quantizer=None,
                 class_target=None, class_scale=0.0):
        from ..kernels import sparse

        arrays = self.grid.arrays
        with_classes = quantizer is not None and class_target is not None and class_scale > 0
        self._class_scale = float(class_scale) if with_classes else 0.0
        colours = self.grid.channels["hist"].width if "hist" in self.grid.channels else 1
        rgb, grad_rgb = ((colour, grad_colour) if quantizer is None
                         else (arrays["rgb"], arrays["rgb_grad"]))
        sparse.render_axis_views_backward(
            self.grid.block_map, self.span, density, rgb, self.shift, self.t_min,
            *self.out, *self.grads, grad_density, grad_rgb, self.touched,
            class_target if with_classes else self._no_target, colours,
            arrays["hist"] if with_classes else density, with_classes)
        if quantizer is not None and self.defer_logit_grads:
            self._pending = quantizer
        elif quantizer is not None:
            sparse.logit_grads(self.touched, self._stamp, self._pass_id, arrays["soft"],
                               quantizer.palette, arrays["rgb_grad"], quantizer.inv_tau, colour,
                               arrays["hist"], self._class_scale, grad_colour,
                               self.class_value, colours)

    def adam_step(self, t, density, logits, beta1=0.9, beta2=0.99, eps=1e-12):
        """After a deferred backward: one masked Adam step (iteration t >= 1) of the density
        and logits (_GridParam) in the touched slots, each logit's gradient computed inside
        its update (kernels/sparse.adam_slots); consumes the gradients, clears the flags."""
        from ..kernels import sparse

        quantizer, self._pending = self._pending, None
        if quantizer is None:
            raise RuntimeError("adam_step needs a backward with a quantizer before it")
        arrays = self.grid.arrays
        sparse.adam_slots(self.touched, self._stamp, self._pass_id, arrays["soft"],
                          quantizer.palette, arrays["rgb_grad"], quantizer.inv_tau,
                          arrays["hist"], self._class_scale, self.class_value, density.value,
                          density.grad, density.m, density.v, logits.value, logits.m,
                          logits.v, density.lr, logits.lr, beta1, beta2, 1.0 - beta1 ** t,
                          1.0 - beta2 ** t, eps, quantizer.palette.shape[0])

    class_term = AxisViewRenderer.class_term  # from class_value and _class_scale, as dense
    images = AxisViewRenderer.images
    set_output_grads = AxisViewRenderer.set_output_grads


class _GridParam:
    """A trained channel of a SparseGrid with its gradient (None for the logits, see
    sparse_channels) and Adam moments; the arrays are looked up on every use: a refresh
    replaces them."""

    def __init__(self, grid, name, lr):
        self.grid, self.name, self.lr = grid, name, lr

    value = property(lambda self: self.grid.arrays[self.name])
    grad = property(lambda self: self.grid.arrays.get(self.name + "_grad"))
    m = property(lambda self: self.grid.arrays[self.name + "_m"])
    v = property(lambda self: self.grid.arrays[self.name + "_v"])


class SparseStage2Grid:
    """Stage 2's grid on a SparseGrid (axis views and palette logits only), with the interface
    of stage2.grid.DenseGrid; begin_step refreshes the active blocks every refresh_every
    iterations (see the module docstring)."""

    def __init__(self, coarse, n, palette, config, masks, depth_target,
                 settings=SparseSettings()):
        self.n, self.config, self.palette, self.settings = n, config, palette, settings
        self._coarse = coarse
        self.keep_density = density_threshold(settings.keep_alpha, coarse.shift)
        self.candidates = blocks_of(dilate_voxels(visual_hull(masks)))
        self.buried = np.zeros_like(self.candidates)
        if depth_target is not None:
            self.band = blocks_of(target_band(masks, depth_target, settings.band))
            self.buried = ~blocks_of(~buried_voxels(masks, depth_target, settings.bury))
            self.candidates &= ~self.buried
        else:
            self.band = self.candidates
        self.seen = np.zeros_like(self.candidates)  # blocks whose state lived on the grid
        self.grid = SparseGrid(n, self.candidates, sparse_channels(len(palette)),
                               init=self._initial_values)
        self.seen |= self.candidates
        self.density = _GridParam(self.grid, "density", config.lr_density)
        self.colour = _GridParam(self.grid, "logits", config.lr_logits)
        self.renderer = SparseAxisViewRenderer(self.grid, coarse.shift, config.skip_alpha,
                                               config.t_min, defer_logit_grads=True)
        self.active_history = []
        self.refresh()

    def _initial_values(self, coords):
        """Density and logits of voxels at grid coords (V, 3) from Stage 1's field; a block that
        lived on the grid before comes back transparent."""
        density, rgb = sample_coarse(self._coarse, self.n, coords)
        returning = self.seen[tuple(np.minimum(coords // BLOCK, len(self.seen) - 1).T)]
        density = np.where(returning, np.minimum(density, self.keep_density), density)
        logits = initial_logits(rgb, self.palette, self.config.logit_scale)
        return dict(density=density, logits=logits)

    def refresh(self):
        """Make the active set the opaque blocks and the target band within the candidates,
        unless that only drops a few blocks; see the module docstring."""
        import taichi as ti

        from ..kernels.sparse import flag_blocks_above

        flags = ti.ndarray(ti.u8, (self.grid.capacity,))
        flag_blocks_above(self.grid.arrays["density"], self.keep_density, flags)
        opaque = np.zeros_like(self.grid.blocks)
        kept = flags.to_numpy()[:self.grid.slots] != 0
        opaque[tuple(self.grid.coords[kept].T)] = True
        blocks = (opaque | self.band) & self.candidates
        adds = np.any(blocks & ~self.grid.blocks)
        drops = np.count_nonzero(self.grid.blocks & ~blocks)
        if adds or drops >= self.settings.retire_share * self.grid.slots:
            self.grid.relayout(blocks, init=self._initial_values)
        self.seen |= blocks
        self.active_history.append(self.grid.active_fraction())

    def begin_step(self, step):
        if step > 0 and step % self.settings.refresh_every == 0:
            self.refresh()

    def adam_step(self, t):
        self.renderer.adam_step(t, self.density, self.colour)

    def arrays(self):
        """Dense (density, logits): the buried blocks hold Stage 1's values (no ray reached
        them), the other absent voxels are empty."""
        density, logits = self.grid.to_dense("density"), self.grid.to_dense("logits")
        coords = block_voxel_coords(np.argwhere(self.buried))
        coords = coords[(coords < self.n).all(axis=1)]
        for start in range(0, len(coords), BURIED_CHUNK):  # bounded scratch memory
            part = coords[start:start + BURIED_CHUNK]
            values = self._initial_values(part)
            density[tuple(part.T)] = values["density"]
            logits[tuple(part.T)] = values["logits"]
        return density, logits


def sample_coarse(coarse, n, coords):
    """(density, rgb) of Stage 1's field at voxels `coords` (V, 3) of an n^3 grid: the values
    stage2.resample_field gives those voxels (trilinear, density rescaled per voxel length)."""
    from scipy.ndimage import map_coordinates

    from ..coarse_field import softplus

    r = coarse.resolution
    points = ((np.minimum(coords, n - 1) + 0.5) * r / n - 0.5).T
    density = np.asarray(coarse.density, dtype=np.float64)
    rgb = np.asarray(coarse.rgb, dtype=np.float64)
    if r == n:
        index = tuple(np.minimum(coords, n - 1).T)
        return density[index], rgb[index]
    sample = lambda a: map_coordinates(a, points, order=1, mode="nearest")  # noqa: E731
    thickness = softplus(sample(density) + coarse.shift) * (r / n)
    colour = np.stack([sample(rgb[..., ch]) for ch in range(3)], axis=-1)
    return softplus_inverse(thickness) - coarse.shift, np.clip(colour, 0.0, 1.0)
