"""MagicaVoxel .vox files (version 150): MAIN > SIZE, XYZI, RGBA chunks.

Axes: MagicaVoxel is z-up and right-handed, with the model's front facing -y. Our grid is y-up
with the front toward +z, so a voxel at our (x, y, z) is written at
    vox (x, Z - 1 - z, y)      (Z = our grid's z size; SIZE = (X, Z, Y))
which is a rotation (no mirror): the model stands upright and faces MagicaVoxel's front view.
A model holds at most 256 voxels per side. Larger grids are cut into blocks of at most 256,
one model each, placed by the scene graph (nTRN > nGRP > nTRN > nSHP per block): MagicaVoxel
puts a model's voxel v at translation + v - size // 2 (integer division); read_vox undoes that.
Palette: a voxel with our index i (1..K) keeps colour index i in the file, and RGBA entry i - 1
holds palette[i - 1] (the format's entries 0..254 are colour indices 1..255). Entries past our
palette are written with alpha 0, which lets read_vox give back exactly K colours.

Every file holds what newer editors expect (MagicaVoxel 0.99+, Goxel, vengi): the scene graph
(nTRN > nGRP > nTRN > nSHP per model, even for one model), one layer (LAYR), a diffuse material
(MATL) per palette colour and, when the colours have names (LEGO, Minecraft blocks, a named
.gpl), the palette notes (NOTE). MagicaVoxel's notes label palette rows of 8 colours, the last
row first (note n covers colour indices 8 (31 - n) + 1 .. + 8), so each row's note lists the
names of its colours in order.
"""
import os
import stat
import struct

import numpy as np

from ..budgets import MAX_VOXELS
from ..errors import InputError
from ..voxelart import VoxelArt
from .atomic import write_bytes

MAX_SIDE = 256
VERSION = 150
MAX_FILE_BYTES = 4 * MAX_VOXELS + (16 << 20)  # every voxel of the largest scene, and the rest


def to_vox_axes(indices):
    """Our (x, y, z) index grid -> MagicaVoxel's (x, y, z) grid."""
    return np.ascontiguousarray(np.flip(indices, axis=2).transpose(0, 2, 1))


def from_vox_axes(grid):
    """MagicaVoxel's (x, y, z) grid -> our (x, y, z) grid (inverse of to_vox_axes)."""
    return np.ascontiguousarray(np.flip(grid.transpose(0, 2, 1), axis=2))


PALETTE_ROWS, ROW_COLORS = 32, 8
LAYER_NAME = "voxels"


def vox_bytes(art, names=None):
    """The .vox file of `art`; names: one per palette colour (None where unnamed), or None."""
    grid = to_vox_axes(art.indices)
    rgba = np.zeros((256, 4), np.uint8)
    rgba[: len(art.palette), :3] = art.palette
    rgba[: len(art.palette), 3] = 255
    blocks = _blocks(grid.shape)
    children = b""
    for lo, hi in blocks:
        children += _model_chunks(grid[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]])
    children += _scene_graph(blocks, grid.shape)
    children += _chunk(b"LAYR", struct.pack("<i", 0) + _dict({"_name": LAYER_NAME})
                       + struct.pack("<i", -1))
    children += _chunk(b"RGBA", rgba.tobytes())
    for index in range(1, len(art.palette) + 1):  # flat colours: diffuse, as MagicaVoxel's default
        children += _chunk(b"MATL", struct.pack("<i", index) + _dict({"_type": "_diffuse"}))
    if names is not None and any(names):
        children += _chunk(b"NOTE", _palette_notes(names))
    main = b"MAIN" + struct.pack("<ii", 0, len(children)) + children
    return b"VOX " + struct.pack("<i", VERSION) + main


def _blocks(shape):
    """(lo, hi) corners of the blocks (at most MAX_SIDE per side) tiling a grid, x fastest."""
    edges = [np.linspace(0, n, -(-n // MAX_SIDE) + 1).round().astype(int) for n in shape]
    return [((x0, y0, z0), (x1, y1, z1))
            for z0, z1 in zip(edges[2][:-1], edges[2][1:])
            for y0, y1 in zip(edges[1][:-1], edges[1][1:])
            for x0, x1 in zip(edges[0][:-1], edges[0][1:])]


def _model_chunks(grid):
    xs, ys, zs = np.nonzero(grid)
    xyzi = np.stack([xs, ys, zs, grid[xs, ys, zs]], axis=1).astype(np.uint8)
    return (_chunk(b"SIZE", struct.pack("<3i", *grid.shape))
            + _chunk(b"XYZI", struct.pack("<i", len(xyzi)) + xyzi.tobytes()))


def _scene_graph(blocks, shape):
    """Root transform > group > (transform > shape) per block, blocks placed edge to edge."""
    centre = np.array(shape) // 2
    ids = [2 + 2 * i for i in range(len(blocks))]
    out = _chunk(b"nTRN", _transform(0, 1, {}, layer=-1))
    out += _chunk(b"nGRP", struct.pack("<i", 1) + _dict({}) + struct.pack("<i", len(ids))
                  + struct.pack(f"<{len(ids)}i", *ids))
    for i, (lo, hi) in enumerate(blocks):
        size = np.array(hi) - np.array(lo)
        t = np.array(lo) + size // 2 - centre
        out += _chunk(b"nTRN", _transform(ids[i], ids[i] + 1, {"_t": " ".join(map(str, t))}))
        out += _chunk(b"nSHP", struct.pack("<i", ids[i] + 1) + _dict({})
                      + struct.pack("<ii", 1, i) + _dict({}))
    return out


def _palette_notes(names):
    """The NOTE chunk: 32 row notes, the last palette row's first; a row's note lists the
    names of its colours ('-' for an unnamed one)."""
    notes = [""] * PALETTE_ROWS
    for row in range(-(-len(names) // ROW_COLORS)):
        colors = names[row * ROW_COLORS:(row + 1) * ROW_COLORS]
        notes[PALETTE_ROWS - 1 - row] = ", ".join(n or "-" for n in colors)
    out = struct.pack("<i", len(notes))
    for note in notes:
        text = note.encode()
        out += struct.pack("<i", len(text)) + text
    return out


def _transform(node, child, frame, layer=0):
    return (struct.pack("<i", node) + _dict({}) + struct.pack("<iiii", child, -1, layer, 1)
            + _dict(frame))


def _dict(d):
    out = struct.pack("<i", len(d))
    for k, v in d.items():
        for text in (k.encode(), v.encode()):
            out += struct.pack("<i", len(text)) + text
    return out


def write_vox(art, path, names=None):
    """Write `art` as a MagicaVoxel .vox file (whole or not at all); grids over 256 voxels on
    a side become several models placed edge to edge. names: see vox_bytes."""
    write_bytes(path, vox_bytes(art, names))


def _chunk(tag, content):
    return tag + struct.pack("<ii", len(content), 0) + content


def read_vox(path):
    """Read a single-model .vox file into a VoxelArt (our axes, see the module docstring)."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise InputError(f"{path} is not a regular file")
            if size > MAX_FILE_BYTES:
                raise InputError(f"{path} is {size:,} bytes, over the limit of "
                                 f"{MAX_FILE_BYTES:,} bytes for a .vox file")
            data = f.read()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return _parse(data)
    except (struct.error, ValueError, IndexError, OverflowError) as exc:
        raise InputError(f"{path} is not a valid .vox file: {exc}") from None


def _parse(data):
    if data[:4] != b"VOX ":
        raise ValueError("missing 'VOX ' header")
    chunks = _children(data, 8, len(data))
    if not chunks or chunks[0][0] != b"MAIN":
        raise ValueError("missing MAIN chunk")
    models, nodes, rgba = [], {}, None
    for tag, at, size, _, _ in _children(data, chunks[0][3], chunks[0][4]):
        content = data[at: at + size]
        if tag == b"SIZE":
            models.append([struct.unpack_from("<3i", content), None])
        elif tag == b"XYZI":
            if not models or models[-1][1] is not None:
                raise ValueError("XYZI chunk without its SIZE chunk")
            models[-1][1] = content
        elif tag == b"RGBA":
            rgba = content
        elif tag in (b"nTRN", b"nGRP", b"nSHP"):
            node = _node(tag, content)
            nodes[node["id"]] = node
    if not models or models[-1][1] is None:
        raise ValueError("no model (SIZE + XYZI chunks) found")
    if rgba is None:
        raise ValueError("no RGBA palette chunk (MagicaVoxel's default palette is not supported)")
    for shape, _ in models:
        if not all(1 <= s <= MAX_SIDE for s in shape):
            raise ValueError(f"model size {shape} out of range")
    placements = _placements(nodes, len(models)) if nodes else [(0, (0, 0, 0))]
    return _assemble(models, placements, rgba)


def _node(tag, content):
    """id, translation and children (node ids, or model ids for a shape) of a scene node."""
    reader = _Reader(content)
    node = dict(id=reader.int(), tag=tag, t=(0, 0, 0), children=[], models=[])
    reader.dict()
    if tag == b"nTRN":
        node["children"] = [reader.int()]
        reader.int(), reader.int()  # reserved, layer
        for _ in range(reader.int()):
            frame = reader.dict()
            if frame.get("_r", "4") != "4":  # 4 encodes the identity rotation
                raise ValueError("rotated models are not supported")
            if "_t" in frame and node["t"] == (0, 0, 0):
                node["t"] = tuple(int(v) for v in frame["_t"].split())
    elif tag == b"nGRP":
        node["children"] = [reader.int() for _ in range(reader.int())]
    else:
        for _ in range(reader.int()):
            node["models"].append(reader.int())
            reader.dict()
    return node


class _Reader:
    def __init__(self, data):
        self.data, self.at = data, 0

    def int(self):
        self.at += 4
        return struct.unpack_from("<i", self.data, self.at - 4)[0]

    def text(self):
        n = self.int()
        if n < 0 or self.at + n > len(self.data):
            raise ValueError("string runs past its chunk")
        self.at += n
        return self.data[self.at - n: self.at].decode("utf-8", "replace")

    def dict(self):
        return {self.text(): self.text() for _ in range(self.int())}


def _placements(nodes, model_count):
    """(model id, summed translation) of every shape reachable from the root node 0."""
    out, stack, seen = [], [(0, np.zeros(3, int))], set()
    while stack:
        node_id, t = stack.pop()
        if node_id in seen or node_id not in nodes:
            raise ValueError(f"broken scene graph at node {node_id}")
        seen.add(node_id)
        node = nodes[node_id]
        t = t + np.array(node["t"])
        out += [(m, tuple(t)) for m in node["models"]]
        stack += [(c, t) for c in node["children"]]
    if any(not 0 <= m < model_count for m, _ in out):
        raise ValueError("scene graph refers to a missing model")
    return sorted(out)


def _assemble(models, placements, rgba_bytes):
    """One grid (vox axes) holding every placed model, then our VoxelArt."""
    boxes = []
    for m, t in placements:
        shape = np.array(models[m][0], np.int64)
        lo = np.array(t, np.int64) - shape // 2
        boxes.append((lo, lo + shape))
    origin = np.min([lo for lo, _ in boxes], axis=0)
    extent = np.max([hi for _, hi in boxes], axis=0) - origin
    if float(np.prod(extent, dtype=np.float64)) > MAX_VOXELS:  # before allocating the grid
        raise ValueError(f"the assembled scene is {'x'.join(map(str, extent))} voxels, over "
                         f"the limit of {MAX_VOXELS:,} voxels")
    grid = np.zeros(extent, np.uint8)
    for (m, _), (lo, _) in zip(placements, boxes):
        shape, xyzi = models[m]
        vox = _voxels(shape, xyzi)
        at = vox[:, :3].astype(np.int64) + (lo - origin)
        grid[at[:, 0], at[:, 1], at[:, 2]] = vox[:, 3]
    rgba = np.frombuffer(rgba_bytes, np.uint8, 1024).reshape(256, 4)
    opaque = np.nonzero(rgba[:255, 3])[0]
    colors = max(int(grid.max(initial=0)), int(opaque[-1]) + 1 if len(opaque) else 0, 1)
    return VoxelArt(from_vox_axes(grid), rgba[:colors, :3].copy(), {"source": "vox"})


def _voxels(shape, xyzi):
    count = struct.unpack_from("<i", xyzi)[0]
    if count < 0 or len(xyzi) < 4 + 4 * count:
        raise ValueError("XYZI chunk is shorter than its voxel count")
    vox = np.frombuffer(xyzi, np.uint8, count * 4, 4).reshape(-1, 4)
    if np.any(vox[:, :3] >= np.array(shape)):
        raise ValueError("a voxel lies outside the model size")
    return vox


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
