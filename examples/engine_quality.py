"""Dense against sparse Stage 2 on the same Stage 1: silhouette IoU and colour error per mesh.

    python examples/engine_quality.py [--meshes tests/data] [--res 32,64] [--out engines.md]

Each mesh and N runs in a child process: Stage 1 once, then Stage 2 with engine="dense" and
engine="sparse" (fast preset, CLIP off, seed 0). Prints and writes a Markdown table with the
relative gaps (the sparse engine's target: within 1% of dense).
"""
import argparse
import os
import sys


def main(argv=None):
    from taichi_voxify.benchmarks import in_child, quality_table
    from taichi_voxify.commands.evaluate import find_meshes
    from taichi_voxify.export.atomic import write_text

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--meshes", default="tests/data", help="a mesh file or a folder of meshes")
    p.add_argument("--res", default="32,64", help="comma list of resolutions")
    p.add_argument("--arch", default="cpu")
    p.add_argument("--out", default="engines.md")
    args = p.parse_args(argv)
    meshes = [args.meshes] if os.path.isfile(args.meshes) else find_meshes(args.meshes)
    rows = []
    for n in (int(r) for r in args.res.split(",")):
        for mesh in meshes:
            rows += in_child("compare", mesh=os.path.abspath(mesh), resolution=n, arch=args.arch)
            print(*rows[-2:], sep="\n", flush=True)
    table = quality_table(rows)
    print(table)
    write_text(args.out, table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
