"""A block-sparse N^3 grid: which 4^3 blocks are active, and named per-voxel arrays stored for
those blocks only (the layout of kernels/sparse.py).

Why this layout (measured 2026-11-30 on the 2-core CPU, load ~2, Taichi 1.7.4, f32: one Adam
pass, K=6 logits, N=256, a 3-voxel spherical shell = 2.4% of the voxels):
  pointer(8^3)+bitmasked(8^3) vector SNodes   11.5 ms  (visits only the 2.4% active voxels)
  active 8^3-block list, flat 1-D ndarrays    51 ms    (10.6% of the voxels lie in its blocks)
  active 4^3-block list, flat 1-D ndarrays    15 ms    (5.9%; (S, 64, K) 3-D ndarrays: 38 ms)
  dense with a mask                            78 ms, 1.6 GB of state (4^3 list: 90 MB)
Taichi's SNodes are ~1.3x faster, but memory a pointer SNode takes is never given back (taichi
#5777), each FieldsBuilder cycle leaks (#7242) and a program holds at most 512 SNode trees
(#4023): a host converting hundreds of meshes in one process would grow without bound. Arrays
here are ti.ndarrays, freed with their Python objects, sized to the active blocks on every
refresh: the state of a conversion lives exactly as long as the conversion.
"""
from dataclasses import dataclass

import numpy as np

from . import backend, ndarrays

BLOCK = 4
BLOCK_VOXELS = BLOCK ** 3


def block_count(n):
    return -(-n // BLOCK)


def block_voxel_coords(coords):
    """(K * 64, 3) grid index of every voxel of the blocks coords (K, 3), in voxel id order
    ((i, j, k) order inside each block, as kernels/sparse.py lays them out)."""
    q = np.arange(BLOCK_VOXELS)
    local = np.stack([q // (BLOCK * BLOCK), (q // BLOCK) % BLOCK, q % BLOCK], axis=1)
    return (np.asarray(coords)[:, None, :] * BLOCK + local[None]).reshape(-1, 3)


def blocks_of(voxel_mask):
    """(nb, nb, nb) bool: the blocks holding any True voxel of an (N, N, N) mask."""
    n = voxel_mask.shape[0]
    nb = block_count(n)
    padded = np.zeros((nb * BLOCK,) * 3, dtype=bool)
    padded[:n, :n, :n] = voxel_mask
    return padded.reshape(nb, BLOCK, nb, BLOCK, nb, BLOCK).any(axis=(1, 3, 5))


@dataclass(frozen=True)
class Channel:
    """A named per-voxel array: `width` values per voxel, `fill` for voxels of absent blocks."""
    name: str
    width: int = 1
    fill: float = 0.0


class SparseGrid:
    """Active blocks of an N^3 grid and per-voxel ndarrays for them (kernels/sparse.py)."""

    def __init__(self, n, blocks, channels, init=None):
        """blocks: (nb, nb, nb) bool of the active blocks; channels: Channels to store;
        init(coords) -> {name: (V, width) values} for voxels at grid coords (V, 3) (absent
        names start at their fill)."""
        self.n = int(n)
        self.channels = {c.name: c for c in channels}
        self.arrays = {}
        self.layout_version = -1  # counts layouts: buffers sized by slots follow it
        self._set_layout(np.asarray(blocks, dtype=bool))
        self._allocate()
        self._initialise(np.ones(self.capacity, dtype=bool), init)

    # --- layout ---------------------------------------------------------------------------

    def _set_layout(self, blocks):
        nb = block_count(self.n)
        if blocks.shape != (nb,) * 3:
            raise ValueError(f"block mask must be {(nb,) * 3}, got {blocks.shape}")
        self.blocks = blocks
        self.layout_version += 1
        self.coords = np.argwhere(blocks).astype(np.int32)  # (S, 3), slot order
        self.slots = len(self.coords)
        # one spare slot keeps every array non-empty (Taichi has no zero-size ndarray); no
        # block maps to it and its block index lies outside the grid, so nothing visits it
        self.capacity = max(self.slots, 1)
        table = np.full((nb,) * 3, -1, dtype=np.int32)
        table[tuple(self.coords.T)] = np.arange(self.slots, dtype=np.int32)
        self.slot_table = table
        self.block_map = ndarrays.from_numpy(table)
        coords = self.coords if self.slots else np.full((1, 3), nb, np.int32)
        self.block_coords = ndarrays.from_numpy(coords)

    def _allocate(self):
        for c in self.channels.values():
            self.arrays[c.name] = ndarrays.empty((self.capacity * BLOCK_VOXELS * c.width,))

    def _initialise(self, fresh_slots, init):
        """Fill the voxels of the slots fresh_slots (capacity,) bool: init's values, else the
        channel fill. Only those voxels are written (a refresh at N=256 used to copy every
        channel to the host and back)."""
        from .kernels.sparse import fill_rows, scatter_rows

        slots = np.flatnonzero(fresh_slots)
        if not len(slots):
            return
        ids = ndarrays.from_numpy((slots[:, None] * BLOCK_VOXELS
                                   + np.arange(BLOCK_VOXELS)).ravel().astype(np.int32))
        values = init(self.voxel_coords(slots)) if init is not None else {}
        for name, c in self.channels.items():
            if name in values:
                rows = np.reshape(values[name], (-1, c.width))
                scatter_rows(self.arrays[name], ids, ndarrays.from_numpy(
                    np.ascontiguousarray(rows, dtype=backend.float_dtype())))
            else:
                fill_rows(self.arrays[name], ids, c.width, c.fill)

    def voxel_coords(self, slots=None):
        """(V, 3) int grid index of every stored voxel (padding voxels lie at >= N), or of the
        voxels of `slots` only, in voxel id order."""
        coords = self.coords if self.slots else np.full((1, 3), block_count(self.n), np.int32)
        return block_voxel_coords(coords if slots is None else coords[slots])

    def inside(self):
        """(V,) bool: the stored voxels that lie inside the grid (not padding, not spare)."""
        return (self.voxel_coords() < self.n).all(axis=1) & (self.slots > 0)

    @property
    def voxels(self):
        return self.capacity * BLOCK_VOXELS

    def active_fraction(self):
        """Share of the N^3 voxels inside active blocks (the last block of an axis may be cut
        short by the grid's end)."""
        sides = np.minimum(BLOCK, self.n - self.coords * BLOCK)
        return float(np.prod(sides, axis=1).sum()) / self.n ** 3

    # --- values ---------------------------------------------------------------------------

    def get(self, name):
        """(V, width) numpy copy of a channel."""
        return self.arrays[name].to_numpy().reshape(self.voxels, self.channels[name].width)

    def set(self, name, values):
        """Store (V, width) values into a channel."""
        self.arrays[name].from_numpy(np.ascontiguousarray(np.reshape(values, -1),
                                                          dtype=backend.float_dtype()))

    def to_dense(self, name):
        """(N, N, N[, width]) numpy array of a channel, its fill outside the active blocks."""
        c = self.channels[name]
        values = self.get(name)
        dense = np.full((self.n,) * 3 + (c.width,), c.fill, dtype=values.dtype)
        keep = self.inside()
        dense[tuple(self.voxel_coords()[keep].T)] = values[keep]
        return dense[..., 0] if c.width == 1 else dense

    def from_dense(self, name, dense):
        """Store the active voxels' values of an (N, N, N[, width]) array."""
        c = self.channels[name]
        coords = np.minimum(self.voxel_coords(), self.n - 1)
        self.set(name, np.asarray(dense)[tuple(coords.T)].reshape(-1, c.width))

    # --- activation -----------------------------------------------------------------------

    def relayout(self, blocks, init=None):
        """Make `blocks` the active set: surviving blocks keep their state, new ones get
        init(coords) (or the channel fills), retired ones are dropped. Arrays are reallocated
        to the new size; the old ones are freed with their Python objects."""
        from .kernels.sparse import move_slots

        blocks = np.asarray(blocks, dtype=bool)
        if np.array_equal(blocks, self.blocks):
            return False
        old_coords, old_slots = self.coords, self.slots
        old_arrays = self.arrays
        self._set_layout(blocks)
        self.arrays = {}
        self._allocate()
        new_slot = np.full(max(old_slots, 1), -1, dtype=np.int32)
        if old_slots:
            new_slot[:old_slots] = self.slot_table[tuple(old_coords.T)]
        mapping = ndarrays.from_numpy(new_slot)
        for name, c in self.channels.items():
            move_slots(old_arrays[name], mapping, BLOCK_VOXELS * c.width, self.arrays[name])
        fresh = np.ones(self.capacity, dtype=bool)
        fresh[new_slot[new_slot >= 0]] = False
        self._initialise(fresh, init)
        return True

    # --- memory ---------------------------------------------------------------------------

    def nbytes(self):
        """Bytes the grid holds on the device: the per-voxel arrays plus the block tables."""
        total = self.slot_table.nbytes + self.capacity * 3 * 4
        for c in self.channels.values():
            total += self.voxels * c.width * self._itemsize()
        return total

    def dense_nbytes(self):
        """Bytes the same channels take on a dense N^3 grid."""
        return sum(self.n ** 3 * c.width * self._itemsize() for c in self.channels.values())

    @staticmethod
    def _itemsize():
        return np.dtype(backend.float_dtype()).itemsize
