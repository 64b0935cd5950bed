"""The `voxify` command (also examples/convert.py): mesh in, voxel art files out.

Exit codes: 0 success, 2 bad arguments or options, 1 any other failure; errors are one line
(no traceback unless --debug).
"""
import argparse
import json
import os
import sys
import time
import warnings

from .errors import OptionError, VoxifyError

BUNDLED_MESH = os.path.join(os.path.dirname(__file__), "data", "spot", "spot.obj")
BUNDLED_FRONT = "-z"  # Spot's head points to -z in its OBJ file
STAGE_LABELS = {"load": "load mesh", "render": "render views", "stage1": "stage 1 (coarse field)",
                "pixel_art": "pixel art + palette", "stage2": "stage 2 (voxel art)"}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit 2, instead of usage + message
        raise OptionError(message)


def build_parser():
    from .outputs import DEFAULT_FORMATS, FORMATS

    p = _Parser(prog="voxify", description="Turn a 3D mesh into palette voxel art "
                "(MagicaVoxel .vox, cube mesh, pictures, LEGO build plan).")
    p.add_argument("mesh", nargs="?", default=None,
                   help="mesh file (OBJ/MTL, GLB, glTF, PLY, STL, OFF); default: the bundled cow")
    p.add_argument("--res", type=int, default=32, help="voxels a side, 8..256 (default 32)")
    p.add_argument("--colors", type=int, default=6, help="palette size K, 2..32 (default 6)")
    p.add_argument("--palette", default="kmeans",
                   help="kmeans | kmeans_rare | maxmin | mediancut | lego | pico8 | "
                        "'#rrggbb,#rrggbb,...' (default kmeans)")
    p.add_argument("--pixel-art", metavar="DIR", default=None,
                   help="folder of six pixel-art PNGs (px nx py ny pz nz .png) to use as targets")
    p.add_argument("--pixel-method", default="kcentroid",
                   help="our pixel-art generator: kcentroid | gerstner | box | nearest")
    p.add_argument("--out", default="voxify_out", help="output folder (default ./voxify_out)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same result)")
    p.add_argument("--preset", default="fast", help="fast (CPU) | paper (authors' counts) | test")
    p.add_argument("--arch", default="auto", help="auto | cpu | cuda | vulkan")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for Taichi")
    p.add_argument("--clip", default="auto", help="auto | off | required (patch CLIP loss)")
    p.add_argument("--clip-weights", metavar="PATH", default=None,
                   help="local open_clip ViT-B-32 checkpoint")
    p.add_argument("--fill", action="store_true", help="fill the closed interior")
    p.add_argument("--depth-source", default="mesh", help="Stage 2 depth target: mesh | stage1")
    p.add_argument("--up", default="y", help="up axis of the file: y (glTF) or z")
    p.add_argument("--front", default=None,
                   help="view the object faces: +x -x +y -y +z -z; its colours weigh x4 in the "
                        "palette (default +z, the glTF front; -z for the bundled cow)")
    p.add_argument("--formats", default=",".join(DEFAULT_FORMATS),
                   help=f"comma list of {','.join(FORMATS)} (default {','.join(DEFAULT_FORMATS)})")
    p.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    p.add_argument("--json", action="store_true", help="print the report JSON on stdout")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


class ProgressBars:
    """One tqdm bar per stage on stderr, with the latest loss."""

    def __init__(self, enabled):
        self.enabled = enabled
        self.bar = None
        self.stage = None

    def __call__(self, stage, step, total, info):
        if not self.enabled:
            return
        from tqdm import tqdm

        if stage != self.stage:
            self.close()
            self.stage = stage
            self.bar = tqdm(total=total, desc=STAGE_LABELS.get(stage, stage), unit="step",
                            leave=True, file=sys.stderr, dynamic_ncols=True)
        self.bar.n = step
        if "loss" in info:
            self.bar.set_postfix(loss=f"{info['loss']:.4g}", refresh=False)
        self.bar.refresh()

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _one_line_warnings():
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"warning: {str(message).splitlines()[0]}", file=sys.stderr)

    warnings.showwarning = show


def _settings(args, formats):
    return {"mesh": args.mesh, "res": args.res, "colors": args.colors, "palette": args.palette,
            "pixel_art": args.pixel_art, "pixel_method": args.pixel_method, "seed": args.seed,
            "preset": args.preset, "arch": args.arch, "clip": args.clip,
            "clip_weights": args.clip_weights, "fill": args.fill,
            "depth_source": args.depth_source, "up": args.up, "front": args.front,
            "formats": list(formats)}


def _validate(args):
    """Check every option before any slow work starts."""
    from .outputs import parse_formats
    from .palette import parse_palette
    from .pipeline import check_memory, check_options, view_weights
    from .pixelart import PIXEL_METHODS

    check_options(args.res, args.colors, args.preset, args.depth_source, args.seed)
    check_memory(args.res, args.colors)
    parse_palette(args.palette, args.colors)
    if args.clip not in ("auto", "off", "required"):
        raise OptionError(f"unknown --clip {args.clip!r}: choose auto, off or required")
    view_weights(args.front)
    if args.clip_weights is not None and not os.path.isfile(args.clip_weights):
        raise OptionError(f"CLIP checkpoint {args.clip_weights} does not exist")
    if args.pixel_method not in PIXEL_METHODS:
        raise OptionError(f"unknown --pixel-method {args.pixel_method!r}: choose one of "
                          f"{', '.join(PIXEL_METHODS)}")
    if args.up not in ("y", "z"):
        raise OptionError(f"unknown --up {args.up!r}: choose y or z")
    if os.path.isdir(args.mesh):
        raise OptionError(f"{args.mesh} is a folder: give the mesh file inside it")
    if not os.path.isfile(args.mesh):
        raise OptionError(f"mesh file {args.mesh} does not exist")
    formats = parse_formats(args.formats)
    if "lego" in formats:
        from .export.lego import check_lego_size

        check_lego_size((args.res,) * 3)
    return formats


def _join_negative_views(argv):
    """`--front -z` as one token `--front=-z`: argparse takes a value that starts with '-' for
    an option and would answer 'expected one argument'."""
    argv = list(sys.argv[1:] if argv is None else argv)
    joined = []
    for arg in argv:
        if joined and joined[-1] == "--front" and arg in ("-x", "-y", "-z"):
            joined[-1] = f"--front={arg}"
        else:
            joined.append(arg)
    return joined


def _new_folders(path):
    """The folders, leaf first, that creating `path` would make."""
    path, made = os.path.abspath(os.fspath(path)), []
    while not os.path.exists(path) and os.path.dirname(path) != path:
        made.append(path)
        path = os.path.dirname(path)
    return made


def _remove_empty(folders):
    """Take back the output folders this run made when it failed before writing anything."""
    for folder in folders:
        try:
            os.rmdir(folder)  # only ever removes an empty folder
        except OSError:
            return


def run(argv=None):
    args = build_parser().parse_args(_join_negative_views(argv))
    if args.front is None:
        args.front = BUNDLED_FRONT if args.mesh is None else "+z"
    args.mesh = args.mesh or BUNDLED_MESH
    formats = _validate(args)
    from . import backend
    from .outputs import build_report, prepare_out_dir, write_outputs, write_report
    from .pipeline import run_pipeline

    made = _new_folders(args.out)
    out_dir = prepare_out_dir(args.out)
    bars = ProgressBars(not args.quiet)
    try:
        backend.init(arch=args.arch, threads=args.threads, seed=args.seed)
        conv = run_pipeline(args.mesh, args.res, args.colors, args.palette, args.seed, args.preset,
                            pixel_art_dir=args.pixel_art, pixel_method=args.pixel_method,
                            clip=args.clip, clip_weights=args.clip_weights, fill=args.fill,
                            depth_source=args.depth_source, up=args.up, front=args.front,
                            progress=bars)
    except BaseException:
        _remove_empty(made)
        raise
    finally:
        bars.close()
    t = time.perf_counter()
    files, numbers = write_outputs(conv, out_dir, formats)
    timings = dict(conv.timings_s)
    timings["export"] = round(time.perf_counter() - t, 3)
    timings["total"] = round(timings["total"] + timings["export"], 3)
    stem = conv.mesh_name
    report = build_report(conv, _settings(args, formats), files, numbers, timings)
    report["files"]["report"] = [stem + "_report.json"]
    write_report(report, os.path.join(out_dir, stem + "_report.json"))
    if args.json:
        print(json.dumps(report, indent=2))
    elif not args.quiet:
        print(summary_table(report, out_dir))
    return report


def summary_table(report, out_dir):
    r, m, t = report["result"], report["metrics"], report["timings_s"]
    rows = [("resolution", "x".join(map(str, r["shape"]))),
            ("voxels filled", r["voxels_filled"]),
            ("colours used", f"{r['colors_used']}  {' '.join(r['palette'])}"),
            ("silhouette IoU", f"{m['iou_mean']:.3f} (six views vs the mesh)"),
            ("colour error", f"{m['color_de76']:.1f} dE76"),
            ("backend", (report.get("backend") or {}).get("arch"))]
    rows += [(f"time {k}", f"{v:.1f} s") for k, v in t.items()]
    files = [f for names in report["files"].values() for f in names]
    rows.append(("files", f"{out_dir}: " + ", ".join(files)))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def main(argv=None):
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    _one_line_warnings()
    try:
        run(argv)
        return 0
    except VoxifyError as exc:
        if debug:
            raise
        print(f"error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
              file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        if debug:
            raise
        print("error: out of memory: lower --res or --colors", file=sys.stderr)
        return 1
    except Exception as exc:  # an internal failure still gets one line without --debug
        if debug:
            raise
        print(f"error: internal error ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
              "run with --debug for the traceback", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
