"""Turn any image into pixel art with a small palette (the generator behind Stage 2's targets).

    python examples/pixelart.py photo.png
    python examples/pixelart.py sprite.png --cells 48 --colors 6 --scale 8 --out sprite_px.png
    python examples/pixelart.py cow.png --palette pico8 --outline
    python examples/pixelart.py cow.png --palette "#1d2b53,#ff004d,#fff1e8,#000000"

Transparent pixels (or, without an alpha channel, pure white ones) are background and stay
transparent in the output. --cells counts cells along the longer side of the image.
Exit codes: 0 done, 2 bad option, 1 bad input.
"""
import argparse
import os
import sys

try:
    import taichi_voxify  # noqa: F401  (installed with pip)
except ImportError:  # run from a source checkout
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv):
    from taichi_voxify.palette import NAMED_PALETTES, PALETTE_METHODS
    from taichi_voxify.pixelart import PIXEL_METHODS

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    from taichi_voxify import OptionError

    if cells < 2:
        raise OptionError(f"--cells must be at least 2, got {cells}")
    if height >= width:
        return cells, max(2, round(cells * width / height))
    return max(2, round(cells * height / width)), cells


def save_rgba(image, mask, scale, path):
    import numpy as np
    from PIL import Image

    from taichi_voxify import OptionError
    from taichi_voxify.color import to_uint8

    if not 1 <= scale <= 64:
        raise OptionError(f"--scale must be from 1 to 64, got {scale}")
    rgba = np.concatenate([to_uint8(image), (mask[..., None] * 255).astype(np.uint8)], -1)
    rgba = np.repeat(np.repeat(rgba, scale, axis=0), scale, axis=1)
    Image.fromarray(rgba, "RGBA").save(path)


def main(argv=None):
    args = parse_args(argv)
    from taichi_voxify import InputError, VoxifyError
    from taichi_voxify.pixelart import load_image, make_pixel_art

    try:
        if not os.path.isfile(args.image):
            raise InputError(f"no such image: {args.image}")
        rgb, alpha = load_image(args.image)
        cells = cell_grid(*alpha.shape, args.cells)
        image, mask = make_pixel_art(rgb, alpha, cells, args.colors, args.method, args.palette,
                                     args.outline, not args.no_cleanup, args.seed)
        out = args.out or os.path.splitext(args.image)[0] + "_pixel.png"
        try:
            save_rgba(image, mask, args.scale, out)
        except OSError as exc:
            raise InputError(f"cannot write {out}: {exc.strerror or exc}") from None
        print(out)
        return 0
    except VoxifyError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
