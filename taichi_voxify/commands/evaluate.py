"""Compare our voxel art with the simple ways of making it, and ablate our parts.

    voxify-eval --meshes tests/data --res 32 --colors 6 --out eval_out
    (or python examples/evaluate.py ...)

Writes results.md and results.csv (per mesh and the mean of each method), summary.md (a table
per metric: methods by meshes, as in the README) and one
gallery_<mesh>.png per mesh (the mesh and every method from the front, side and an isometric
angle). CLIP-IQA needs real CLIP weights (--clip-weights); without them its column says so.
"""
import os

from ..errors import OptionError
from . import CommandParser, run_command

MESH_SUFFIXES = (".obj", ".glb", ".gltf", ".ply", ".stl", ".off")


def find_meshes(folder):
    found = []
    for root, _, files in os.walk(folder):
        found += [os.path.join(root, f) for f in files if f.lower().endswith(MESH_SUFFIXES)]
    if not found:
        raise OptionError(f"no mesh files in {folder}")
    return sorted(found)


def parse_args(argv):
    from ..evaluation import METHODS

    p = CommandParser(prog="voxify-eval", description=__doc__.splitlines()[0])
    p.add_argument("--meshes", required=True, help="a mesh file or a folder of meshes")
    p.add_argument("--res", type=int, default=32)
    p.add_argument("--colors", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--preset", default="fast")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--clip-weights", default=None, help="open_clip ViT-B-32 checkpoint")
    p.add_argument("--out", default="eval_out")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p.parse_args(argv)


def evaluate(args):
    from .. import backend
    from ..evaluation import (format_csv, format_summary, format_table, gallery_images,
                              gallery_png, mesh_gallery_images, metrics_row, parse_methods,
                              run_method)
    from ..outputs import prepare_out_dir
    from ..pipeline import prepare
    from ..export.atomic import write_text

    methods = parse_methods(args.methods)
    meshes = [args.meshes] if os.path.isfile(args.meshes) else find_meshes(args.meshes)
    out = prepare_out_dir(args.out)
    backend.init(arch=os.environ.get("VOXIFY_ARCH", "auto"), seed=args.seed)
    clip = "required" if args.clip_weights else "off"
    scorer = None
    if args.clip_weights:
        from ..clip_bridge import clip_iqa_scorer

        scorer = clip_iqa_scorer(args.clip_weights)
    results = []
    for path in meshes:
        prep = prepare(path, resolution=args.res, colors=args.colors, seed=args.seed,
                       preset=args.preset, clip=clip, clip_weights=args.clip_weights)
        base = sum(v for k, v in prep.clock.timings.items() if k != "total")
        columns = []
        for method in methods:
            art, seconds = run_method(method, prep, args.seed)
            shared = 0.0 if method == "voxelize" else base  # voxelize needs none of prepare()
            row = metrics_row(art, prep, scorer, prep.mesh.name)
            results.append(dict(mesh=prep.mesh.name, method=method, seconds=seconds + shared,
                                **row))
            columns.append((method, gallery_images(art)))
            print(f"{prep.mesh.name:>16} {method:>10}  IoU {row['iou']:.3f}  "
                  f"dE {row['color_de76']:.2f}  features {row['feature_recall']:.2f}  "
                  f"colours {row['colors_used']}  {seconds + shared:.1f} s", flush=True)
        gallery_png(columns, os.path.join(out, f"gallery_{prep.mesh.name}.png"),
                    mesh_images=mesh_gallery_images(prep.mesh))
    table = format_table(results, methods)
    write_text(os.path.join(out, "results.md"), table)
    write_text(os.path.join(out, "results.csv"), format_csv(results))
    write_text(os.path.join(out, "summary.md"), format_summary(results, methods))
    print(table)
    return results


def main(argv=None):
    return run_command(_evaluate, argv)


def _evaluate(argv):
    evaluate(parse_args(argv))  # the results are for callers of evaluate(); here, the files
