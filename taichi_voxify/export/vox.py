"""MagicaVoxel .vox files (version 150): one model, MAIN > SIZE, XYZI, RGBA chunks.

Axes: MagicaVoxel is z-up and right-handed, with the model's front facing -y. Our grid is y-up
with the front toward +z, so a voxel at our (x, y, z) is written at
    vox (x, Z - 1 - z, y)      (Z = our grid's z size; SIZE = (X, Z, Y))
which is a rotation (no mirror): the model stands upright and faces MagicaVoxel's front view.
Palette: a voxel with our index i (1..K) keeps colour index i in the file, and RGBA entry i - 1
holds palette[i - 1] (the format's entries 0..254 are colour indices 1..255). Entries past our
palette are written with alpha 0, which lets read_vox give back exactly K colours.
"""
import struct

import numpy as np

from ..errors import InputError, OptionError
from ..voxelart import VoxelArt
from .atomic import write_bytes

MAX_SIDE = 256
VERSION = 150


def to_vox_axes(indices):
    """Our (x, y, z) index grid -> MagicaVoxel's (x, y, z) grid."""
    return np.ascontiguousarray(np.flip(indices, axis=2).transpose(0, 2, 1))


def from_vox_axes(grid):
    """MagicaVoxel's (x, y, z) grid -> our (x, y, z) grid (inverse of to_vox_axes)."""
    return np.ascontiguousarray(np.flip(grid.transpose(0, 2, 1), axis=2))


def vox_bytes(art):
    grid = to_vox_axes(art.indices)
    if max(grid.shape) > MAX_SIDE:
        raise OptionError(f"MagicaVoxel models hold at most {MAX_SIDE} voxels per side, "
                          f"this grid is {'x'.join(map(str, art.shape))}: use a lower --res")
    xs, ys, zs = np.nonzero(grid)
    xyzi = np.stack([xs, ys, zs, grid[xs, ys, zs]], axis=1).astype(np.uint8)
    rgba = np.zeros((256, 4), np.uint8)
    rgba[: len(art.palette), :3] = art.palette
    rgba[: len(art.palette), 3] = 255
    children = (_chunk(b"SIZE", struct.pack("<3i", *grid.shape))
                + _chunk(b"XYZI", struct.pack("<i", len(xyzi)) + xyzi.tobytes())
                + _chunk(b"RGBA", rgba.tobytes()))
    main = b"MAIN" + struct.pack("<ii", 0, len(children)) + children
    return b"VOX " + struct.pack("<i", VERSION) + main


def write_vox(art, path):
    """Write `art` as a MagicaVoxel .vox file (whole or not at all). Grids over 256 voxels on
    any side raise OptionError."""
    write_bytes(path, vox_bytes(art))


def _chunk(tag, content):
    return tag + struct.pack("<ii", len(content), 0) + content


def read_vox(path):
    """Read a single-model .vox file into a VoxelArt (our axes, see the module docstring)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return _parse(data)
    except (struct.error, ValueError, IndexError) as exc:
        raise InputError(f"{path} is not a valid .vox file: {exc}") from None


def _parse(data):
    if data[:4] != b"VOX ":
        raise ValueError("missing 'VOX ' header")
    chunks = _children(data, 8, len(data))
    if not chunks or chunks[0][0] != b"MAIN":
        raise ValueError("missing MAIN chunk")
    tag, content_at, size, kids_at, kids_end = chunks[0]
    if kids_end > len(data):
        raise ValueError("file is truncated")
    found = {}
    for tag, at, size, _, _ in _children(data, kids_at, kids_end):
        found.setdefault(tag, []).append(data[at: at + size])
    if len(found.get(b"SIZE", [])) != 1 or len(found.get(b"XYZI", [])) != 1:
        raise ValueError(f"expected one model, found {len(found.get(b'SIZE', []))}")
    if b"RGBA" not in found:
        raise ValueError("no RGBA palette chunk (MagicaVoxel's default palette is not supported)")
    shape = struct.unpack_from("<3i", found[b"SIZE"][0])
    if not all(1 <= s <= MAX_SIDE for s in shape):
        raise ValueError(f"model size {shape} out of range")
    return _model(shape, found[b"XYZI"][0], found[b"RGBA"][0])


def _children(data, start, end):
    """(tag, content offset, content size, children offset, children end) of each chunk."""
    out = []
    at = start
    while at < end:
        tag = data[at: at + 4]
        size, kids = struct.unpack_from("<ii", data, at + 4)
        if size < 0 or kids < 0 or at + 12 + size + kids > len(data):
            raise ValueError(f"chunk {tag!r} runs past the end of the file (truncated?)")
        out.append((tag, at + 12, size, at + 12 + size, at + 12 + size + kids))
        at += 12 + size + kids
    return out


def _model(shape, xyzi, rgba_bytes):
    count = struct.unpack_from("<i", xyzi)[0]
    if count < 0 or len(xyzi) < 4 + 4 * count:
        raise ValueError("XYZI chunk is shorter than its voxel count")
    vox = np.frombuffer(xyzi, np.uint8, count * 4, 4).reshape(-1, 4)
    if np.any(vox[:, :3] >= np.array(shape)):
        raise ValueError("a voxel lies outside the model size")
    rgba = np.frombuffer(rgba_bytes, np.uint8, 1024).reshape(256, 4)
    grid = np.zeros(shape, np.uint8)
    grid[vox[:, 0], vox[:, 1], vox[:, 2]] = vox[:, 3]
    opaque = np.nonzero(rgba[:255, 3])[0]
    colors = max(int(grid.max(initial=0)), int(opaque[-1]) + 1 if len(opaque) else 0, 1)
    return VoxelArt(from_vox_axes(grid), rgba[:colors, :3].copy(), {"source": "vox"})
