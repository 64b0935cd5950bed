"""VoxelArt: the result of a conversion, a grid of palette indices plus its palette.

Axes are the mesh's own after normalisation: index x grows along +x (right), y along +y (up),
z along +z (toward the front). indices[x, y, z] == 0 means empty; i > 0 means palette[i - 1].
"""
import json
from dataclasses import dataclass, field

import numpy as np

from .color import rgb_to_hex
from .errors import InputError, OptionError

MAX_PALETTE_ENTRIES = 255  # uint8 indices with 0 for empty (and .vox's 255 colours)


@dataclass
class VoxelArt:
    indices: np.ndarray  # uint8 (X, Y, Z)
    palette: np.ndarray  # uint8 (K, 3) sRGB
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        self.indices = np.ascontiguousarray(self.indices, dtype=np.uint8)
        self.palette = np.ascontiguousarray(self.palette, dtype=np.uint8).reshape(-1, 3)
        if self.indices.ndim != 3:
            raise InputError(f"indices must be a 3-D grid, got shape {self.indices.shape}")
        if not 1 <= len(self.palette) <= MAX_PALETTE_ENTRIES:
            raise InputError(f"palette must hold 1 to {MAX_PALETTE_ENTRIES} colours, "
                             f"got {len(self.palette)}")
        if self.indices.max(initial=0) > len(self.palette):
            raise InputError("indices refer to palette entries that do not exist")

    @property
    def shape(self):
        return self.indices.shape

    @property
    def filled(self):
        return self.indices > 0

    @property
    def filled_count(self):
        return int(np.count_nonzero(self.indices))

    def colors_used(self):
        """Sorted palette entries (0-based) that at least one voxel uses."""
        used = np.unique(self.indices)
        return [int(i) - 1 for i in used if i > 0]

    def rgb(self):
        """(X, Y, Z, 3) uint8 colours; empty voxels are black."""
        lut = np.concatenate([np.zeros((1, 3), np.uint8), self.palette])
        return lut[self.indices]

    def hex_palette(self):
        return [rgb_to_hex(c) for c in self.palette]

    # --- numpy / Taichi interop -------------------------------------------------------------
    @classmethod
    def from_dense(cls, occupancy, color_index, palette, metadata=None):
        """From a boolean occupancy grid and 0-based palette indices of the same shape."""
        occupancy = np.asarray(occupancy, dtype=bool)
        idx = np.where(occupancy, np.asarray(color_index, dtype=np.int64) + 1, 0)
        return cls(idx.astype(np.uint8), palette, dict(metadata or {}))

    def to_field(self):
        """The indices as a Taichi u8 field (X, Y, Z) on the running Taichi (a host program's
        own, or one started with defaults): 0 empty, i > 0 palette entry i - 1."""
        import taichi as ti

        from .backend import ensure_init

        ensure_init()
        f = ti.field(ti.u8, shape=self.shape)
        f.from_numpy(self.indices)
        return f

    def palette_field(self):
        """The palette as a Taichi vector field (K,) of f32 RGB in [0, 1] (sRGB)."""
        import taichi as ti

        from .backend import ensure_init

        ensure_init()
        f = ti.Vector.field(3, ti.f32, shape=len(self.palette))
        f.from_numpy(self.palette.astype(np.float32) / 255.0)
        return f

    @classmethod
    def from_field(cls, index_field, palette, metadata=None):
        """From a Taichi field or ndarray of indices (0 empty, i > 0 palette entry i - 1) and a
        palette: uint8 (K, 3), or a field like palette_field()'s (float RGB in [0, 1])."""
        indices = np.asarray(index_field.to_numpy())
        if indices.ndim != 3 or not np.issubdtype(indices.dtype, np.integer):
            raise InputError(f"an index field must be a 3-D integer grid, got {indices.dtype} "
                             f"{indices.shape}")
        if hasattr(palette, "to_numpy"):
            palette = np.clip(np.round(palette.to_numpy() * 255), 0, 255).astype(np.uint8)
        if indices.min(initial=0) < 0 or indices.max(initial=0) > len(palette):
            raise InputError(f"index field values must be 0..{len(palette)} for a "
                             f"{len(palette)}-colour palette")
        return cls(indices.astype(np.uint8), palette, metadata)

    # --- files ------------------------------------------------------------------------------
    def to_npz_dict(self):
        return dict(indices=self.indices, palette=self.palette,
                    metadata=np.array(json.dumps(self.metadata, default=str)))

    @classmethod
    def load_npz(cls, path):
        """Voxel art saved by to_npz_dict; shapes are checked from the .npy headers first."""
        from .budgets import MAX_VOXELS, read_npz

        data = read_npz(path, {"indices": MAX_VOXELS, "palette": 8 * 3 * MAX_PALETTE_ENTRIES,
                               "metadata": 4 << 20})
        if not {"indices", "palette"} <= set(data):
            raise InputError(f"{path} is not taichi_voxify voxel art: it lacks the indices and "
                             "palette arrays")
        try:
            meta = json.loads(str(data["metadata"])) if "metadata" in data else {}
        except (ValueError, RecursionError):
            meta = {}  # the picture stands without its notes
        if data["indices"].dtype.kind not in "ui" or data["palette"].dtype.kind not in "ui":
            raise InputError(f"{path}: indices and palette must be integer arrays")
        return cls(data["indices"], data["palette"], meta if isinstance(meta, dict) else {})


def parse_resolution(n, low=4, high=512):
    try:
        n = int(n)
    except (TypeError, ValueError):
        raise OptionError(f"resolution must be an integer, got {n!r}") from None
    if not low <= n <= high:
        raise OptionError(f"resolution must be between {low} and {high}, got {n}")
    return n
