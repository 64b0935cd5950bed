"""Palette files, read and written: GIMP .gpl, .hex (one colour a line, Lospec's format),
Paint.NET .txt, and images (.png: a strip such as Lospec's or MagicaVoxel's 256x1, or any
picture, whose distinct colours make the palette).

Every file read is untrusted: its size, and an image's pixel count from its header
(budgets.open_image), are checked before it is parsed or decoded, and any fault is one
InputError line naming the file.
"""
import os
import re
from dataclasses import dataclass

import numpy as np

from .color import rgb_to_hex
from .errors import InputError, OptionError

PALETTE_FILE_SUFFIXES = (".gpl", ".hex", ".txt", ".png")
MAX_FILE_COLORS = 256  # a .vox palette's size; more distinct colours is a picture, not a palette
MAX_TEXT_BYTES = 1 << 20  # a 256-colour .gpl with long names is a few kB
MAX_IMAGE_BYTES = 32 << 20  # the pixel count is checked from the header (budgets.open_image)

_HEX6 = re.compile(r"#?([0-9a-fA-F]{6})")


@dataclass(frozen=True)
class PaletteFile:
    """Colours in file order (uint8 (M, 3), no repeats) and their names (None where unnamed)."""

    colors: np.ndarray
    names: tuple


def is_palette_file(text):
    """Whether a --palette value names a palette file (by its suffix)."""
    return isinstance(text, (str, os.PathLike)) and \
        os.fspath(text).lower().endswith(PALETTE_FILE_SUFFIXES)


def read_palette_file(path):
    """Read a .gpl, .hex, .txt or image palette; InputError (one line) on any fault."""
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in PALETTE_FILE_SUFFIXES:
        raise InputError(f"{path}: palette files are {', '.join(PALETTE_FILE_SUFFIXES)}")
    if not os.path.isfile(path):
        raise OptionError(f"palette file {path} does not exist")
    size = os.path.getsize(path)
    limit = MAX_IMAGE_BYTES if suffix == ".png" else MAX_TEXT_BYTES
    if size > limit:
        raise InputError(f"palette file {path} is {size} bytes, over the {limit}-byte limit")
    if suffix == ".png":
        colors = _image_colors(path)
        names = (None,) * len(colors)
    else:
        try:
            with open(path, encoding="utf-8-sig") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read palette file {path}: {exc}") from None
        parse = {".gpl": _parse_gpl, ".hex": _parse_hex, ".txt": _parse_paint_net}[suffix]
        entries = parse(text, path)
        colors, names = _unique(entries)
    if len(colors) == 0:
        raise InputError(f"palette file {path} holds no colours")
    if len(colors) > MAX_FILE_COLORS:
        raise InputError(f"palette file {path} holds {len(colors)} distinct colours; "
                         f"a palette has at most {MAX_FILE_COLORS}")
    return PaletteFile(colors, names)


def _unique(entries):
    """First occurrence of each colour, in file order."""
    seen, colors, names = set(), [], []
    for rgb, name in entries:
        if rgb not in seen:
            seen.add(rgb)
            colors.append(rgb)
            names.append(name)
    return np.array(colors, np.uint8).reshape(-1, 3), tuple(names)


def _parse_gpl(text, path):
    lines = text.splitlines()
    if not lines or lines[0].strip() != "GIMP Palette":
        raise InputError(f"{path} is not a GIMP palette (its first line is not 'GIMP Palette')")
    entries = []
    for number, line in enumerate(lines[1:], start=2):
        line = line.strip()
        if not line or line.startswith("#") or re.match(r"(Name|Columns)\s*:", line):
            continue
        parts = line.split(None, 3)
        try:
            rgb = tuple(int(v) for v in parts[:3])
        except ValueError:
            rgb = ()
        if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
            raise InputError(f"{path} line {number}: expected 'R G B name' with values 0..255")
        name = parts[3].strip() if len(parts) > 3 else ""
        placeholder = name in ("", "Untitled") or name.lower() == rgb_to_hex(rgb)  # as we write
        entries.append((rgb, None if placeholder else name))
    return entries


def _parse_hex(text, path):
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        match = _HEX6.fullmatch(line)
        if not match:
            raise InputError(f"{path} line {number}: expected a colour as rrggbb, "
                             f"got {line[:20]!r}")
        entries.append((_hex_rgb(match.group(1)), None))
    return entries


def _parse_paint_net(text, path):
    """Paint.NET: ';' starts a comment; colours are AARRGGBB (alpha ignored)."""
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split(";", 1)[0].strip()
        if not line:
            continue
        if not re.fullmatch(r"[0-9a-fA-F]{8}", line):
            raise InputError(f"{path} line {number}: expected a colour as AARRGGBB, "
                             f"got {line[:20]!r}")
        entries.append((_hex_rgb(line[2:]), None))
    return entries


def _hex_rgb(six):
    return tuple(int(six[i:i + 2], 16) for i in (0, 2, 4))


def _image_colors(path):
    """Distinct opaque colours of an image in reading order (a strip keeps its order);
    fully transparent pixels are not colours. Its size is checked from the header first."""
    from .budgets import decode_image, open_image
    from .color import pil_to_rgba8

    what = f"palette image {path}"
    rgba = decode_image(open_image(path, what), pil_to_rgba8, what)
    pixels = rgba.reshape(-1, 4)
    pixels = pixels[pixels[:, 3] > 0, :3]
    codes = pixels.astype(np.int64) @ np.array([65536, 256, 1])
    _, first = np.unique(codes, return_index=True)
    return pixels[np.sort(first)]


# --- writing ----------------------------------------------------------------------------------

def gpl_text(palette, title, names=None):
    """A GIMP palette: each colour named by `names` where given, else by its hex code."""
    palette = np.asarray(palette, np.uint8).reshape(-1, 3)
    names = names or (None,) * len(palette)
    lines = ["GIMP Palette", f"Name: {title}", f"Columns: {min(len(palette), 8)}", "#"]
    lines += ["%3d %3d %3d\t%s" % (*map(int, rgb), name or rgb_to_hex(rgb))
              for rgb, name in zip(palette, names)]
    return "\n".join(lines) + "\n"


def hex_text(palette):
    """One rrggbb a line (Lospec's .hex)."""
    return "".join(rgb_to_hex(rgb)[1:] + "\n" for rgb in np.asarray(palette, np.uint8).reshape(-1, 3))


def strip_image(palette):
    """A K x 1 RGB PIL image, one pixel per palette colour in palette order."""
    from PIL import Image

    return Image.fromarray(np.asarray(palette, np.uint8).reshape(1, -1, 3), "RGB")


def write_palette_files(palette, prefix, title, names=None):
    """PREFIX.gpl, PREFIX.hex and PREFIX_strip.png, each whole or not at all; returns the paths."""
    from .export.atomic import atomic_path, write_text

    paths = [prefix + ".gpl", prefix + ".hex", prefix + "_strip.png"]
    write_text(paths[0], gpl_text(palette, title, names))
    write_text(paths[1], hex_text(palette))
    with atomic_path(paths[2]) as tmp:
        strip_image(palette).save(tmp, format="PNG")
    return paths
