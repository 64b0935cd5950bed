"""One palette for the whole batch: from all assets' pixel-art colours (each asset counts the
same, front views weighted as for one mesh), or the colours given by --palette; written once
as DIR/palette.json (hex colours and what they came from) and DIR/palette.png (swatches)."""
import json
import os

import numpy as np

from ..color import hex_to_rgb, rgb_to_hex
from ..export.atomic import write_text

PALETTE_JSON = "palette.json"
PALETTE_PNG = "palette.png"


def needs_samples(palette, colors):
    """False when --palette already names at most --colors colours: they are the palette."""
    from ..palette import parse_palette

    spec = parse_palette(palette, colors)
    return not (spec.kind == "colors" and len(spec.colors) <= colors)


def given(palette, colors):
    """The colours --palette names, as the shared palette (when needs_samples is False)."""
    from ..palette import parse_palette

    return as_hex(parse_palette(palette, colors).colors)


def from_samples(samples, palette, colors, seed):
    """uint8 (K, 3): the palette method (or the fit from a named palette) applied to the
    merged samples; each sample is {"colors": [hex...], "weights": [...]} of one asset."""
    from ..palette import resolve_palette

    merged = {}
    for sample in samples:
        for code, weight in zip(sample["colors"], sample["weights"]):
            merged[code] = merged.get(code, 0.0) + weight
    rgb = _rgb(merged)
    # each distinct colour as a one-pixel "view" carrying its weight
    return resolve_palette(palette, rgb[:, None, None, :], np.ones((len(rgb), 1, 1), bool),
                           colors, np.array(list(merged.values())), seed)


def _rgb(hex_colors):
    return np.array([hex_to_rgb(c) for c in hex_colors], np.uint8)


def as_hex(rgb):
    return [rgb_to_hex(c) for c in rgb]


def load_if_same(out_dir, source):
    """The palette written by an earlier run from the same inputs and settings, or None."""
    try:
        with open(os.path.join(out_dir, PALETTE_JSON), encoding="utf-8") as f:
            saved = json.load(f)
    except (OSError, ValueError):
        return None
    if isinstance(saved, dict) and saved.get("source") == source:
        return saved.get("palette")
    return None


def write(out_dir, hex_colors, source):
    from ..export.images import palette_png

    palette_png(_rgb(hex_colors), os.path.join(out_dir, PALETTE_PNG))
    write_text(os.path.join(out_dir, PALETTE_JSON),
               json.dumps({"palette": hex_colors, "source": source}, indent=2) + "\n")
