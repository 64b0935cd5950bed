"""Compare our voxel art with the simple ways of making it, and ablate our parts.

    python examples/evaluate.py --meshes tests/data --res 32 --colors 6 --out eval_out

Writes results.md and results.csv (per mesh and the mean of each method), summary.md (a table
per metric: methods by meshes, as in the README) and one
gallery_<mesh>.png per mesh (the mesh and every method from the front, side and an isometric
angle). CLIP-IQA needs real CLIP weights (--clip-weights); without them its column says so.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from taichi_voxify.errors import OptionError, VoxifyError  # noqa: E402

MESH_SUFFIXES = (".obj", ".glb", ".gltf", ".ply", ".stl", ".off")


def find_meshes(folder):
    found = []
    for root, _, files in os.walk(folder):
        found += [os.path.join(root, f) for f in files if f.lower().endswith(MESH_SUFFIXES)]
    if not found:
        raise OptionError(f"no mesh files in {folder}")
    return sorted(found)


def parse_args(argv):
    from taichi_voxify.evaluation import METHODS

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--meshes", required=True, help="a mesh file or a folder of meshes")
    p.add_argument("--res", type=int, default=32)
    p.add_argument("--colors", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--preset", default="fast")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--clip-weights", default=None, help="open_clip ViT-B-32 checkpoint")
    p.add_argument("--out", default="eval_out")
    return p.parse_args(argv)


def evaluate(args):
    from taichi_voxify import backend
    from taichi_voxify.evaluation import (format_csv, format_summary, format_table,
                                          gallery_images, gallery_png, mesh_gallery_images,
                                          metrics_row, parse_methods, run_method)
    from taichi_voxify.outputs import prepare_out_dir
    from taichi_voxify.pipeline import prepare
    from taichi_voxify.export.atomic import write_text

    methods = parse_methods(args.methods)
    meshes = [args.meshes] if os.path.isfile(args.meshes) else find_meshes(args.meshes)
    out = prepare_out_dir(args.out)
    backend.init(arch=os.environ.get("VOXIFY_ARCH", "auto"), seed=args.seed)
    clip = "required" if args.clip_weights else "off"
    scorer = None
    if args.clip_weights:
        from taichi_voxify.clip_bridge import clip_iqa_scorer

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
    try:
        evaluate(parse_args(argv))
        return 0
    except VoxifyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
