"""Stage 1 on the block-sparse grid (sparse_grid.py, kernels/sparse_march.py): the trainer of
stage1.py with every per-voxel array (raw density, raw and shown colour, Adam moments,
gradients, the occupancy mask) stored for the active 4^3 blocks only.

Which blocks are active: those within REACH = 2 cells of the occupancy mask (the visual hull at
the start; after warm-up the dilated opacity mask, refreshed with it every `mask_every` steps).
A kept sample's nearest cell lies in the mask, its trilinear corners within one cell of it and
the neighbours the total-variation gradient reads within two, so a step reads and writes only
active voxels, and it computes exactly what the dense trainer computes (tests in float64; in
float32 the two compiled kernels round the last bit differently here and there, and over 600
steps the fields drift a little apart: on the cow the raw densities differ by at most 0.2, and
the conversions' IoU and colour error agree to 0.3%).

What the dense grid would hold elsewhere is kept too, so the field and the progressive upscale
are the dense trainer's: a block that leaves the active set is parked on the host (its values
and Adam moments, frozen as they are in the dense grid: nothing reaches a voxel outside the
active set) and comes back from there; a block never active holds the level's start values
(0 before the upscale, the upsampled coarse field after it), computed when they are needed.
"""
import numpy as np

from . import backend, ndarrays
from .errors import OptionError
from .sparse_grid import (BLOCK, BLOCK_VOXELS, Channel, SparseGrid, block_count,
                          block_voxel_coords)
from .stage1 import Stage1Trainer, upsample_field

ENGINES = ("auto", "dense", "sparse")
REACH = 2  # cells around the mask a step reads: trilinear corners (1) and their neighbours (2)
# `auto` trains the coarse field sparse from this resolution. Measured on the bundled cow
# (fast preset, 600 steps, CPU seconds of the process after kernel loading, 2 cores at load
# 4.6-6.5): coarse 32 dense 7.3 / sparse 7.1 s (the active blocks hold 63% of the box),
# coarse 64 12.3 / 9.3 s (40%), coarse 128 37.2 / 24.7 s (27%; the dense gather and Adam walk
# 8^3 blocks mostly empty); a box filling the grid, coarse 64: 15.4 / 13.1 s, so the occupied
# share does not enter the choice. At 32 the two are even and dense, the reference, stays: it
# needs none of the sparse grid's kernels when Stage 2 runs dense too (auto does below 64).
SPARSE_FROM = 64
CHANNELS = (Channel("density"), Channel("raw_rgb", 3), Channel("rgb", 3),
            Channel("density_m"), Channel("density_v"), Channel("raw_rgb_m", 3),
            Channel("raw_rgb_v", 3), Channel("density_grad"), Channel("raw_rgb_grad", 3))
WIDTHS = {c.name: c.width for c in CHANNELS}
PARKED = ("density", "raw_rgb", "density_m", "density_v", "raw_rgb_m", "raw_rgb_v")


def choose_engine(engine, resolution):
    """"dense" or "sparse" for Stage 1's coarse field at `resolution` cells a side."""
    if engine not in ENGINES:
        raise OptionError(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}")
    if engine == "auto":
        return "sparse" if resolution >= SPARSE_FROM else "dense"
    return engine


def covering_blocks(mask):
    """(nb, nb, nb) bool: the blocks within REACH cells (Chebyshev) of a (R, R, R) cell mask,
    i.e. blocks_of(the mask grown by REACH cells), worked out on blocks: a cell of block A
    lies within REACH of block A + d, d in {-1, 0, 1}^3, when along each axis it lies in A's
    first REACH cells (d = -1), anywhere (d = 0) or in its last REACH cells (d = 1). (The
    cell-level dilation took 30 ms a refresh at R = 128.)"""
    n = mask.shape[0]
    nb = block_count(n)
    padded = np.zeros((nb * BLOCK,) * 3, dtype=bool)
    padded[:n, :n, :n] = mask
    parts = padded.reshape(nb, BLOCK, nb, BLOCK, nb, BLOCK)
    for axis in (1, 3, 5):  # the cells along an axis of a block -> (first, any, last)
        cut = lambda sl: parts[(slice(None),) * axis + (sl,)].any(axis=axis, keepdims=True)
        parts = np.concatenate([cut(slice(0, REACH)), cut(slice(None)),
                                cut(slice(BLOCK - REACH, None))], axis=axis)
    out = np.zeros((nb,) * 3, dtype=bool)
    for d in np.ndindex(3, 3, 3):
        src = parts[:, d[0], :, d[1], :, d[2]]
        to = tuple(slice(max(0, k - 1), nb + min(0, k - 1)) for k in d)
        frm = tuple(slice(max(0, 1 - k), nb + min(0, 1 - k)) for k in d)
        out[to] |= src[frm]
    return out


def _put_blocks(dense, coords, values):
    """Write values (K, 64, w) of the blocks coords (K, 3) into dense (nb*4, nb*4, nb*4, w)."""
    nb = dense.shape[0] // BLOCK
    width = dense.shape[3]
    view = dense.reshape(nb, BLOCK, nb, BLOCK, nb, BLOCK, width).transpose(0, 2, 4, 1, 3, 5, 6)
    view[tuple(np.asarray(coords).T)] = values.reshape(-1, BLOCK, BLOCK, BLOCK, width)


class SparseStage1Grid(SparseGrid):
    """A SparseGrid of Stage 1's channels plus, sized to its slots, the int64 fixed-point
    gradients (fixed_density (V,), fixed_rgb (V * 3,)), the occupancy mask (V,) u8 and the
    touched flags of the slots (capacity,) u8. "rgb" always holds sigmoid("raw_rgb")."""

    def __init__(self, n, blocks, init=None):
        self._cells_layout = None  # the layout `cells()` was worked out for
        super().__init__(n, blocks, CHANNELS, init)
        self._fit_slots()

    def _fit_slots(self):
        import taichi as ti

        from .kernels.grid import sigmoid_grid

        self.fixed_density = ndarrays.zeros((self.voxels,), ti.i64)
        self.fixed_rgb = ndarrays.zeros((self.voxels * 3,), ti.i64)
        self.mask = ndarrays.zeros((self.voxels,), ti.u8)
        self.touched = ndarrays.zeros((self.capacity,), ti.u8)
        sigmoid_grid(self.arrays["raw_rgb"], self.arrays["rgb"])

    def relayout(self, blocks, init=None):
        changed = super().relayout(blocks, init)
        if changed:
            self._fit_slots()
        return changed

    def cells(self):
        """(inside (V,) bool, grid index (V, 3) of those voxels) of the stored voxels, made
        once a layout."""
        if self._cells_layout != self.layout_version:
            inside = self.inside()
            self._cells = inside, self.voxel_coords()[inside]
            self._cells_layout = self.layout_version
        return self._cells

    def set_mask(self, mask):
        """Store the cells of a (n, n, n) bool mask that lie in active blocks."""
        flat = np.zeros(self.voxels, np.uint8)
        inside, cells = self.cells()
        flat[inside] = np.asarray(mask)[tuple(cells.T)]
        self.mask.from_numpy(flat)

    def nbytes(self):
        return super().nbytes() + self.voxels * (8 * 4 + 1) + self.capacity

    def dense_nbytes(self):
        """The same state on a dense grid: channels, fixed point, mask, 8^3 touched flags."""
        return super().dense_nbytes() + self.n ** 3 * (8 * 4 + 1) + (-(-self.n // 8)) ** 3


class _Park:
    """Host copies of the blocks that left the active set: their PARKED channels as they were
    when they left (nothing changes them while they are out)."""

    def __init__(self, nb):
        self.table = np.full((nb,) * 3, -1, dtype=np.int64)
        self.data = {}

    def store(self, coords, values):
        rows = self.table[tuple(coords.T)]
        new = rows < 0
        count = len(next(iter(self.data.values()))) if self.data else 0
        rows[new] = count + np.arange(new.sum())
        self.table[tuple(coords[new].T)] = rows[new]
        for name, v in values.items():
            old = self.data.get(name, np.zeros((0,) + v.shape[1:], v.dtype))
            grown = np.concatenate([old, np.zeros((new.sum(),) + v.shape[1:], v.dtype)])
            grown[rows] = v
            self.data[name] = grown

    def rows(self, coords):
        """Row of each block coords (K, 3) in the park, -1 for blocks not parked (and for the
        spare slot of an empty grid, whose block lies past the grid)."""
        coords = np.asarray(coords)
        inside = (coords < self.table.shape[0]).all(axis=1)
        rows = np.full(len(coords), -1, dtype=np.int64)
        rows[inside] = self.table[tuple(coords[inside].T)]
        return rows


class _StartValues:
    """Raw density and raw colour a level's voxels start at: 0 and 0 (colour 0.5), or the
    upsampled coarse field (coarse = (raw density, colour) of the level below)."""

    def __init__(self, res, shift, coarse=None):
        self.res, self.shift, self.coarse = res, shift, coarse

    CHUNK = 1 << 18  # cells upsampled at a time: the float64 temporaries stay ~50 MB

    def at(self, cells):
        fd = backend.float_dtype()
        out = {"density": np.zeros((len(cells), 1), fd), "raw_rgb": np.zeros((len(cells), 3), fd)}
        if self.coarse is not None:
            for start in range(0, len(cells), self.CHUNK):
                part = slice(start, start + self.CHUNK)
                density, rgb = upsample_field(*self.coarse, self.res, self.shift, cells[part])
                out["density"][part, 0] = density
                out["raw_rgb"][part] = np.log(rgb) - np.log1p(-rgb)
        return out


class SparseStage1Trainer(Stage1Trainer):
    """Stage1Trainer on a SparseStage1Grid: the same steps, losses and field."""

    engine = "sparse"

    def _start(self, res):
        self._new_level(res, _StartValues(res, self.shift))

    def _new_level(self, res, start):
        """The grid at resolution res from `start` values, the mask at the visual hull, Adam
        moments at zero (Stage1Trainer._allocate)."""
        self.grid_resolution = res
        self.hull = self._hull(res).astype(bool)
        self.cell_mask = self.hull.copy()
        self._start_values = start
        self._park = _Park(block_count(res))
        self.grid = None  # the old level's arrays go before the new ones are made
        self.grid = SparseStage1Grid(res, covering_blocks(self.hull), self._initial_values)
        self.grid.set_mask(self.cell_mask)

    def _initial_values(self, cells):
        """Values of the voxels at cells (F * 64, 3) (whole blocks) entering the active set:
        parked blocks come back as they left, the others at the level's start values."""
        n = self.grid_resolution
        blocks = cells[::BLOCK_VOXELS] // BLOCK
        rows = self._park.rows(blocks)
        values = self._start_values.at(np.minimum(cells, n - 1)) if (rows < 0).any() else {}
        back = rows >= 0
        if back.any():
            for name in PARKED:
                width = WIDTHS[name]
                out = values.get(name)
                if out is None:
                    out = np.zeros((len(cells), width), backend.float_dtype())
                out.reshape(len(blocks), BLOCK_VOXELS, width)[back] = self._park.data[name][
                    rows[back]]
                values[name] = out
        return values

    # --- the passes over the grid ------------------------------------------------------------

    def _forward(self, ids):
        self.rays.forward_sparse(self.grid, ids)

    def _backward(self):
        self.rays.backward_sparse(self.grid, self.target_depth)

    def _gather(self, w_tv_density, w_tv_rgb, w_noise):
        from .kernels.grid import FIXED_POINT_SCALE
        from .kernels.sparse_march import gather_grads

        g, a = self.grid, self.grid.arrays
        gather_grads(g.block_map, g.block_coords, g.n, g.fixed_density, g.fixed_rgb,
                     a["density"], a["rgb"], a["density_grad"], a["raw_rgb_grad"], g.touched,
                     FIXED_POINT_SCALE, self.shift, w_tv_density, w_tv_rgb, w_noise)

    def _adam(self, lr_density, lr_rgb, adam):
        from .kernels.sparse_march import adam_slots

        a = self.grid.arrays
        adam_slots(a["density"], a["density_grad"], a["density_m"], a["density_v"], a["raw_rgb"],
                   a["raw_rgb_grad"], a["raw_rgb_m"], a["raw_rgb_v"], a["rgb"], self.grid.touched,
                   lr_density, lr_rgb, *adam)  # and clears the flags

    # --- the active set --------------------------------------------------------------------

    def refresh_mask(self):
        """Stage1Trainer.refresh_mask: the cells above mask_thres (only active voxels can be:
        a parked or never active cell of the hull stayed below it), dilated by a cell within
        the hull; then the active blocks follow the mask."""
        import taichi as ti

        from .kernels.raymarch import STEP_VOXELS
        from .kernels.sparse_march import threshold_alpha

        g, n = self.grid, self.grid_resolution
        above = ndarrays.empty((g.voxels,), ti.u8)
        threshold_alpha(g.arrays["density"], above, self.shift, STEP_VOXELS,
                        self.config.mask_thres)
        inside, cells = g.cells()
        busy = np.zeros((n,) * 3, dtype=bool)
        busy[tuple(cells[above.to_numpy()[inside] != 0].T)] = True
        busy &= self.hull
        if not self.formed:
            self.formed = np.count_nonzero(busy) >= self.config.formed_fraction * self.hull_cells
        if self.formed:
            from scipy.ndimage import maximum_filter

            grown = maximum_filter(busy.astype(np.uint8), size=3, mode="constant")
            self._set_mask(grown.astype(bool) & self.hull)

    def _set_mask(self, mask):
        g = self.grid
        blocks = covering_blocks(mask)
        retired = np.argwhere(g.blocks & ~blocks)
        if len(retired):
            slots = g.slot_table[tuple(retired.T)]
            self._park.store(retired, {
                name: g.get(name).reshape(g.capacity, BLOCK_VOXELS, -1)[slots]
                for name in PARKED})
        g.relayout(blocks, self._initial_values)
        self.cell_mask = mask
        g.set_mask(mask)

    def upscale(self):
        """Stage1Trainer.upscale: the next level starts from the upsampled field."""
        coarse = self.dense_state()
        self._new_level(self.resolution, _StartValues(self.resolution, self.shift, coarse))
        if self.formed:
            self.refresh_mask()

    # --- what the dense grid holds ---------------------------------------------------------

    def mask_fraction(self):
        return float(np.count_nonzero(self.cell_mask)) / self.grid_resolution ** 3

    def active_fraction(self):
        """Share of the grid's cells inside active blocks."""
        return self.grid.active_fraction()

    def dense_state(self):
        """(raw density (R,R,R), colour (R,R,R,3)) numpy: the active blocks, the parked ones
        and the start values elsewhere, as the dense trainer would hold them."""
        from .kernels.grid import sigmoid_grid

        g, n = self.grid, self.grid_resolution
        nb, fd = block_count(n), backend.float_dtype()
        density = np.empty((nb * BLOCK,) * 3 + (1,), fd)
        raw = np.empty((nb * BLOCK,) * 3 + (3,), fd)
        parked = self._park.table >= 0
        for coords, values in (
                (np.argwhere(~(g.blocks | parked)), None),
                (np.argwhere(parked & ~g.blocks), "park"),
                (g.coords, "grid")):
            if not len(coords):
                continue
            if values is None:
                values = self._start_values.at(np.minimum(block_voxel_coords(coords), n - 1))
            elif values == "park":
                rows = self._park.rows(coords)
                values = {name: self._park.data[name][rows] for name in ("density", "raw_rgb")}
            else:
                values = {name: g.get(name)[:g.slots * BLOCK_VOXELS]
                          for name in ("density", "raw_rgb")}
            _put_blocks(density, coords, np.asarray(values["density"]).reshape(
                len(coords), BLOCK_VOXELS, 1))
            _put_blocks(raw, coords, np.asarray(values["raw_rgb"]).reshape(
                len(coords), BLOCK_VOXELS, 3))
        density = np.ascontiguousarray(density[:n, :n, :n, 0])
        raw = np.ascontiguousarray(raw[:n, :n, :n])
        rgb = np.empty_like(raw)
        sigmoid_grid(raw, rgb)
        return density, rgb
