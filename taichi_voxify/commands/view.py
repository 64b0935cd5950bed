"""Look at voxel art in a Taichi GGUI window, or render it headless to a PNG.

    python examples/view.py cow.vox
    python examples/view.py cow.npz --reference cow_views.png
    python examples/view.py cow.vox --headless --screenshot cow.png --azimuth 30 --elevation 20

Mouse: left drag orbits, right drag pans, middle drag zooms. Keys: Up/Down layers, R reference,
P screenshot. GGUI needs Vulkan (CPU machines: apt-get install -y mesa-vulkan-drivers libvulkan1).
"""
import argparse
import os
import sys

try:
    import taichi_voxify  # noqa: F401  (installed with pip)
except ImportError:  # run from a source checkout
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("file", help="voxel art: a MagicaVoxel .vox or a taichi_voxify .npz")
    p.add_argument("--headless", action="store_true", help="render without a window")
    p.add_argument("--screenshot", help="PNG path (required with --headless)")
    p.add_argument("--azimuth", type=float, default=30.0, help="degrees, 0 = front")
    p.add_argument("--elevation", type=float, default=20.0, help="degrees above the horizon")
    p.add_argument("--size", default="960x720", help="image size WxH")
    p.add_argument("--layers", type=int, help="show only the bottom N layers")
    p.add_argument("--reference", help="an image to show beside the voxels")
    p.add_argument("--arch", default="cpu", help="Taichi backend: cpu (default), cuda, vulkan")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p.parse_args(argv)


def load_art(path):
    from taichi_voxify import InputError, VoxelArt
    from taichi_voxify.export import read_vox

    if not os.path.isfile(path):
        raise InputError(f"no such file: {path}")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".vox":
        return read_vox(path)
    if ext == ".npz":
        return VoxelArt.load_npz(path)
    raise InputError(f"cannot view {path}: expected a .vox or .npz file")


def parse_size(text):
    from taichi_voxify import OptionError

    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise OptionError(f"--size must look like 960x720, got {text!r}") from None
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise OptionError(f"--size must be between 16 and 8192 pixels per side, got {text}")
    return w, h


def main(argv=None):
    args = parse_args(argv)
    from taichi_voxify import OptionError, VoxifyError, backend, errors, viewer

    try:
        if args.headless and not args.screenshot:
            raise OptionError("--headless needs --screenshot PATH")
        size = parse_size(args.size)
        art = load_art(args.file)
        backend.init(arch=args.arch)
        if args.headless:
            viewer.screenshot(art, args.screenshot, size, args.azimuth, args.elevation,
                              args.layers, args.reference)
            print(args.screenshot)
            return 0
        v = viewer.Viewer(art, size, True, args.reference, args.azimuth, args.elevation)
        if args.layers is not None:
            v.drawable.set_layers(args.layers)
        if args.screenshot:
            v.screenshot_path = args.screenshot
        v.run()
        return 0
    except VoxifyError as exc:
        if args.debug:
            raise
        print(f"error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
              file=sys.stderr)
        return exc.exit_code
    except MemoryError:
        if args.debug:
            raise
        print(f"error: {errors.OUT_OF_MEMORY}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
