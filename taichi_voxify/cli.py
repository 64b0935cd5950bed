"""The `voxify` command (also examples/convert.py): mesh in, voxel art files out.

Exit codes (taichi_voxify.commands): 0 success, 2 bad arguments or options, 1 any other
failure; errors are one line (no traceback unless --debug).
"""
import json
import os
import sys

from .commands import CommandParser, run_command
from .errors import OptionError

BUNDLED_MESH = os.path.join(os.path.dirname(__file__), "data", "spot", "spot.obj")
BUNDLED_FRONT = "-z"  # Spot's head points to -z in its OBJ file
STAGE_LABELS = {"load": "load mesh", "render": "render views", "stage1": "stage 1 (coarse field)",
                "pixel_art": "pixel art + palette", "stage2": "stage 2 (voxel art)"}


def build_parser():
    """The voxify command line: the mesh, every Options field's flag, and the output flags."""
    from .options import Options

    p = CommandParser(prog="voxify", description="Turn a 3D mesh into palette voxel art "
                "(MagicaVoxel .vox, cube mesh, pictures, LEGO build plan).",
                epilog="Many meshes with the same settings: voxify batch --help")
    p.add_argument("mesh", nargs="?", default=None,
                   help="mesh file (OBJ/MTL, GLB, glTF, PLY, STL, OFF); default: the bundled cow")
    Options.add_arguments(p)
    p.add_argument("--out", default="voxify_out", help="output folder (default ./voxify_out)")
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


def options_from_args(args):
    """Options from the parsed command line, checked before any slow work starts; no mesh
    means the bundled cow, which faces -z."""
    from .options import Options

    if args.mesh is not None:
        if os.path.isdir(args.mesh):
            raise OptionError(f"{args.mesh} is a folder: give the mesh file inside it")
        if not os.path.isfile(args.mesh):
            raise OptionError(f"mesh file {args.mesh} does not exist")
    front = {} if args.mesh is not None or args.front is not None else dict(front=BUNDLED_FRONT)
    return Options.from_args(args, **front)


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


def _output_set(args, options, mesh):
    """The run's OutputSet, checked before any work: names fit, no input is replaced, no file
    voxify did not write is replaced unless --force."""
    from .mesh import referenced_files
    from .output_set import OutputSet
    from .outputs import planned_names

    stem = os.path.splitext(os.path.basename(mesh))[0]  # the loaded mesh's name
    inputs = referenced_files(mesh)
    if options.pixel_art is not None and os.path.isdir(options.pixel_art):
        inputs += [os.path.join(options.pixel_art, n) for n in os.listdir(options.pixel_art)]
    inputs += [p for p in (options.clip_weights, options.palette)
               if isinstance(p, str) and os.path.isfile(p)]  # a palette may be a file
    outputs = OutputSet(args.out, stem, planned_names(stem, options.formats), inputs,
                        options.force)
    outputs.check()
    return outputs


def run(argv=None):
    args = build_parser().parse_args(_join_negative_views(argv))
    options = options_from_args(args)
    mesh = args.mesh or BUNDLED_MESH
    from .outputs import write_conversion
    from .pipeline import run_pipeline

    outputs = _output_set(args, options, mesh)
    made = _new_folders(args.out)
    outputs.open()  # the STEM lock, held to the end; files go to its staging folder first
    bars = ProgressBars(not args.quiet)
    try:
        try:
            conv = run_pipeline(mesh, options, progress=bars)
        finally:
            bars.close()
        report = write_conversion(conv, outputs.staging, options, mesh)
        outputs.commit()
    except BaseException:
        outputs.close(remove_lock_file=bool(made))
        _remove_empty(made)
        raise
    outputs.close()
    out_dir = outputs.out_dir
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
    lego = report.get("exports", {}).get("lego")
    if lego:  # pieces and floating bricks, with the flag that fixes them
        rows.append(("LEGO", f"{lego['parts']} parts; {lego['advice']}"))
    rows += [(f"time {k}", f"{v:.1f} s") for k, v in t.items()]
    files = [f for names in report["files"].values() for f in names]
    rows.append(("files", f"{out_dir}: " + ", ".join(files)))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["batch"]:  # voxify batch INPUT... --out DIR
        from .commands.batch import main as batch

        return batch(argv[1:])
    return run_command(_convert, argv)


def _convert(argv):
    run(argv)  # the report is for callers of run(); the command's result is its files


if __name__ == "__main__":
    sys.exit(main())
