"""Minecraft Java Edition schematics: Sponge Schematic version 3 (.schem), gzip-compressed NBT
written with nbtlib, loaded by WorldEdit (`//schem load NAME`) and Litematica.

One block per voxel, y up: our (x, y, z) is the block at (x, y, z) from the schematic's corner
(Minecraft's x east, y up, z south is right-handed like ours, so nothing is mirrored and the
front, +z, faces south). Each palette colour becomes the block of the shipped Minecraft table
(data/palettes/minecraft.csv: concrete, wool, terracotta) nearest to it in CIE Lab; with
`--palette minecraft` the palette is drawn from those blocks' colours, so every match is exact.
Empty voxels are air. Block data is one varint per block, indexed x + z * Width + y * Width *
Length, as the specification says.
"""
import gzip

import numpy as np

from ..color import delta_e76, srgb_to_lab
from ..palette import named_palette
from .atomic import write_bytes

SPONGE_VERSION = 3
DATA_VERSION = 3578  # Minecraft Java 1.20.2, whose textures gave the table's colours
AIR = "minecraft:air"


def nearest_blocks(palette):
    """(block id, delta E76) of the table's block nearest to each palette colour."""
    table = named_palette("minecraft")
    lab = srgb_to_lab(np.array([rgb for _, _, rgb in table], np.uint8))
    d = delta_e76(srgb_to_lab(np.asarray(palette, np.uint8))[:, None], lab[None])
    best = np.argmin(d, axis=1)
    return [("minecraft:" + table[b][0], float(d[i, b])) for i, b in enumerate(best)]


def varint_bytes(values):
    """Unsigned LEB128 'varint' encoding of non-negative integers below 2**35: seven bits a
    byte, low bits first, the top bit set on every byte but a value's last."""
    v = np.asarray(values, dtype=np.uint64).ravel()
    if not v.size or v.max() < 0x80:  # one byte each: a schematic's few block kinds
        return v.astype(np.uint8).tobytes()
    shifts = 7 * np.arange(5, dtype=np.uint64)
    groups = (v[:, None] >> shifts[None]) & np.uint64(0x7F)
    length = 1 + ((v[:, None] >> shifts[None, 1:]) > 0).sum(axis=1)
    more = np.arange(5)[None] < (length - 1)[:, None]
    encoded = (groups | (more.astype(np.uint64) << np.uint64(7))).astype(np.uint8)
    return encoded[np.arange(5)[None] < length[:, None]].tobytes()


def schem_file(art, name="voxels"):
    """The schematic as an nbtlib File (root compound '' holding 'Schematic'), and the block
    id of each palette colour with its colour distance."""
    from nbtlib import ByteArray, Compound, File, Int, IntArray, Short, String

    blocks = nearest_blocks(art.palette)
    ids = [AIR] + list(dict.fromkeys(b for b, _ in blocks))
    block_index = np.array([0] + [ids.index(b) for b, _ in blocks], np.int64)
    X, Y, Z = art.shape
    data = block_index[art.indices].transpose(1, 2, 0)  # (y, z, x): x fastest, then z, then y
    schematic = Compound({
        "Version": Int(SPONGE_VERSION),
        "DataVersion": Int(DATA_VERSION),
        "Metadata": Compound({"Name": String(name), "Author": String("taichi_voxify")}),
        "Width": Short(X), "Height": Short(Y), "Length": Short(Z),
        "Offset": IntArray([0, 0, 0]),
        "Blocks": Compound({
            "Palette": Compound({b: Int(i) for i, b in enumerate(ids)}),
            "Data": ByteArray(np.frombuffer(varint_bytes(data), np.int8)),
        }),
    })
    return File({"Schematic": schematic}, gzipped=True, root_name=""), blocks


def schem_bytes(art, name="voxels"):
    """The gzip-compressed .schem file (mtime 0, so the same art gives the same bytes)."""
    import io

    nbt, blocks = schem_file(art, name)
    raw = io.BytesIO()
    nbt.write(raw)
    return gzip.compress(raw.getvalue(), mtime=0), blocks


def write_schem(art, path, name="voxels"):
    """Write `art` as a .schem (whole or not at all). Returns the numbers for the report:
    blocks placed, the block id of each palette colour and the largest colour distance."""
    if max(art.shape) > 32767:  # Width/Height/Length are NBT shorts
        raise ValueError(f"a schematic holds at most 32767 blocks a side, got {art.shape}")
    data, blocks = schem_bytes(art, name)
    write_bytes(path, data)
    return {"blocks": art.filled_count, "palette_blocks": [b for b, _ in blocks],
            "max_delta_e76": round(max(d for _, d in blocks), 2)}
