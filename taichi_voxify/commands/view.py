"""voxify-view: look at voxel art in a Taichi GGUI window, or render it headless to a PNG.

    voxify-view cow.vox                     (or python examples/view.py ...)
    voxify-view cow.npz --reference cow_views.png
    voxify-view cow.vox --headless --screenshot cow.png --azimuth 30 --elevation 20

Mouse: left drag orbits, right drag pans, middle drag zooms. Keys: Up/Down layers, R reference,
P screenshot. GGUI needs Vulkan (CPU machines: apt-get install -y mesa-vulkan-drivers libvulkan1).
"""
import os

from . import CommandParser, run_command


def parse_args(argv):
    p = CommandParser(prog="voxify-view", description=__doc__.splitlines()[0])
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
    from ..errors import InputError
    from ..export import read_vox
    from ..voxelart import VoxelArt

    if not os.path.isfile(path):
        raise InputError(f"no such file: {path}")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".vox":
        return read_vox(path)
    if ext == ".npz":
        return VoxelArt.load_npz(path)
    raise InputError(f"cannot view {path}: expected a .vox or .npz file")


def parse_size(text):
    from ..errors import OptionError

    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise OptionError(f"--size must look like 960x720, got {text!r}") from None
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise OptionError(f"--size must be between 16 and 8192 pixels per side, got {text}")
    return w, h


def main(argv=None):
    return run_command(view, argv)


def view(argv):
    args = parse_args(argv)
    from .. import backend, viewer
    from ..errors import OptionError

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
