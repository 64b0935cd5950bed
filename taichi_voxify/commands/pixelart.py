"""voxify-pixelart: turn any image into pixel art with a small palette (the generator behind
Stage 2's targets).

    voxify-pixelart photo.png               (or python examples/pixelart.py ...)
    voxify-pixelart sprite.png --cells 48 --colors 6 --scale 8 --out sprite_px.png
    voxify-pixelart cow.png --palette pico8 --outline
    voxify-pixelart cow.png --palette "#1d2b53,#ff004d,#fff1e8,#000000"

Transparent pixels (or, without an alpha channel, pure white ones) are background and stay
transparent in the output. --cells counts cells along the longer side of the image.
Exit codes: 0 done, 2 bad option, 1 bad input.
"""
import os

from . import CommandParser, run_command


def parse_args(argv):
    from ..palette import NAMED_PALETTES, PALETTE_METHODS
    from ..pixelart import PIXEL_METHODS

    summary = " ".join(__doc__.split("\n\n")[0].split())  # the first paragraph, one line
    p = CommandParser(prog="voxify-pixelart", description=summary)
    p.add_argument("image", help="input image (PNG, JPEG, ...)")
    p.add_argument("--cells", type=int, default=32, help="cells along the longer side (32)")
    p.add_argument("--colors", type=int, default=8, help="palette size, 2 to 32 (8)")
    p.add_argument("--method", default="kcentroid", choices=PIXEL_METHODS,
                   help="how a cell gets its colour (kcentroid)")
    p.add_argument("--palette", default=None,
                   help=f"{', '.join(PALETTE_METHODS + NAMED_PALETTES)} or hex colours "
                        "'#rrggbb,#rrggbb,...' (default: kmeans_rare; anneal for gerstner)")
    p.add_argument("--outline", action="store_true", help="darken the silhouette's edge")
    p.add_argument("--no-cleanup", action="store_true", help="keep isolated pixels")
    p.add_argument("--scale", type=int, default=1, help="upscale the result by this factor (1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="output PNG (default: <image>_pixel.png beside the input)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p.parse_args(argv)


def cell_grid(height, width, cells):
    """(rows, columns) with `cells` along the longer side, keeping the aspect ratio."""
    from ..errors import OptionError

    if cells < 2:
        raise OptionError(f"--cells must be at least 2, got {cells}")
    if height >= width:
        return cells, max(2, round(cells * width / height))
    return max(2, round(cells * height / width)), cells


def save_rgba(image, mask, scale, path):
    import numpy as np
    from PIL import Image

    from ..color import to_uint8
    from ..errors import OptionError
    from ..export.atomic import atomic_path

    if not 1 <= scale <= 64:
        raise OptionError(f"--scale must be from 1 to 64, got {scale}")
    rgba = np.concatenate([to_uint8(image), (mask[..., None] * 255).astype(np.uint8)], -1)
    rgba = np.repeat(np.repeat(rgba, scale, axis=0), scale, axis=1)
    with atomic_path(path) as tmp:  # the whole picture or none
        Image.fromarray(rgba, "RGBA").save(tmp, format="PNG")


def main(argv=None):
    return run_command(pixelate, argv)


def pixelate(argv):
    args = parse_args(argv)
    from ..errors import InputError, OptionError
    from ..pixelart import load_image, make_pixel_art

    if not os.path.isfile(args.image):
        raise InputError(f"no such image: {args.image}")
    rgb, alpha = load_image(args.image)
    cells = cell_grid(*alpha.shape, args.cells)
    image, mask = make_pixel_art(rgb, alpha, cells, args.colors, args.method, args.palette,
                                 args.outline, not args.no_cleanup, args.seed)
    out = args.out or os.path.splitext(args.image)[0] + "_pixel.png"
    if os.path.exists(out) and os.path.samefile(out, args.image):
        raise OptionError(f"--out {out} is the input image: choose another name")
    try:
        save_rgba(image, mask, args.scale, out)
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror or exc}") from None
    print(out)
    return 0
