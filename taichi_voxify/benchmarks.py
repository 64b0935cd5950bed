"""Speed and memory of every stage, on the backend in use.

    voxify-bench [--large] [--arch auto|cpu|cuda] [--out benchmark.json]
    (or python examples/benchmark.py ...)

Prints a table and writes JSON: seconds per stage of a whole conversion of the bundled cow
(fast preset, CLIP off) for N = 16, 32, 64 (and 128 with --large); iterations/s and rays/s of
the Stage 1 ray march and of the six-view orthographic renderer; the rasterizer on six 512^2
views of a 200k-triangle mesh; how Stage 2 time grows with N (log-log slope; N^3 would be 3);
the LEGO build plan of a 64^3 sphere.
Peak memory is the process's resident high-water mark after each part (it only grows).
"""
import json
import os
import platform
import resource
import tempfile
import time

import numpy as np

from .commands import CommandParser, run_command

STAGES = ("load", "render", "stage1", "pixel_art", "palette", "stage2", "export", "total")


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_conversions(sizes, seed=0):
    from .outputs import DEFAULT_FORMATS, write_outputs
    from .pipeline import run_pipeline
    from .render import BUNDLED_MESH

    rows = []
    for n in sizes:
        conv = run_pipeline(str(BUNDLED_MESH), resolution=n, colors=6, seed=seed, preset="fast",
                            clip="off")
        t = time.perf_counter()
        with tempfile.TemporaryDirectory() as out:
            write_outputs(conv, out, DEFAULT_FORMATS)
        timings = dict(conv.timings_s, export=time.perf_counter() - t)
        timings["total"] += timings["export"]
        rows.append(dict(resolution=n, timings_s=timings, iou=conv.metrics["iou_mean"],
                         peak_memory_mb=peak_mb()))
    return rows


def bench_lego(n=64):
    """LEGO build plan of a solid n^3 sphere in four colour bands (no Taichi): plan, plan with
    hidden support, and writing STEM_lego/ (BOM, shopping lists, instructions, overview)."""
    from . import VoxelArt
    from .lego import build_plan, catalog, write_lego

    centred = np.indices((n, n, n)) + 0.5 - n / 2
    inside = (centred ** 2).sum(0) < (n / 2) ** 2
    bands = np.indices((n, n, n))[1] * 4 // n + 1
    colors = [catalog.color_named(c).rgb for c in ("Red", "White", "Blue", "Yellow")]
    art = VoxelArt(np.where(inside, bands, 0).astype(np.uint8), colors)
    row = dict(resolution=n)
    for support in (False, True):
        t = time.perf_counter()
        plan = build_plan(art, support=support)
        key = "with_support" if support else "plain"
        row[key] = dict(plan_s=time.perf_counter() - t, bricks=plan.brick_count,
                        support_parts=plan.summary()["support_parts"], pieces=plan.components)
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        write_lego(plan, os.path.join(out, "sphere_lego"))
    row["write_s"] = time.perf_counter() - t
    return row


def bench_ortho(sizes, repeats=20):
    """Forward + backward of the six axis views on a random half-full grid."""
    import taichi as ti

    from . import backend, ndarrays
    from .stage2 import AxisViewRenderer

    rows = []
    rng = np.random.default_rng(0)
    for n in sizes:
        density = ndarrays.from_numpy(np.where(rng.random((n, n, n)) < 0.5, 2.0, -20.0))
        rgb = ndarrays.from_numpy(rng.random((n, n, n, 3)))
        gd, gc = ndarrays.zeros((n, n, n)), ndarrays.zeros((n, n, n, 3))
        r = AxisViewRenderer(n, shift=-13.8)
        grads = [np.ones((6, n, n, 3)), np.ones((6, n, n)), np.ones((6, n, n))]
        r.forward(density, rgb)
        r.backward(density, rgb, *grads, gd, gc)
        ti.sync()
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            r.forward(density, rgb)
            r.backward(density, rgb, *grads, gd, gc)
            ti.sync()
            times.append(time.perf_counter() - t)
        best = min(times)
        rows.append(dict(resolution=n, fwd_bwd_ms=1000 * best, rays_per_s=6 * n * n / best,
                         arch=backend.info()["arch"]))
    return rows


def bench_engines(args):
    """Whole conversions with engine dense and sparse side by side, one child process each."""
    from .bench_engines import in_child
    from .render import BUNDLED_MESH

    rows = []
    for n in (int(s) for s in args.large_sizes.split(",")):
        for engine in args.large_engines.split(","):
            rows += in_child("convert", mesh=str(BUNDLED_MESH), resolution=n, engine=engine,
                             arch=args.arch, threads=args.threads)
    return rows


def growth_exponent(rows, key):
    n = np.log([r["resolution"] for r in rows])
    t = np.log([max(1e-9, r["timings_s"][key]) for r in rows])
    return float(np.polyfit(n, t, 1)[0]) if len(rows) > 1 else float("nan")


def main(argv=None):
    return run_command(bench, argv)


def bench(argv):
    p = CommandParser(prog="voxify-bench", description=__doc__.splitlines()[0])
    p.add_argument("--large", action="store_true",
                   help="also N=128, and dense against sparse Stage 2 at N=128 and 256")
    p.add_argument("--large-sizes", default="128,256", help="N of the dense/sparse rows")
    p.add_argument("--large-engines", default="dense,sparse",
                   help="engines of the dense/sparse rows (dense at 256 takes most of an hour)")
    p.add_argument("--arch", default="auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default="benchmark.json")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    args = p.parse_args(argv)

    from . import backend
    from .bench_stage1 import bench_stage1
    from .render import bench_render

    info = backend.init(arch=args.arch, threads=args.threads)
    sizes = [16, 32, 64] + ([128] if args.large else [])
    machine = dict(info, cpu_count=os.cpu_count(), platform=platform.platform(),
                   processor=platform.processor() or platform.machine())
    result = dict(machine=machine)
    result["conversions"] = bench_conversions(sizes)
    result["stage2_growth_exponent"] = growth_exponent(result["conversions"], "stage2")
    result["stage1_raymarch"] = bench_stage1(resolutions=[s for s in sizes if s >= 32])
    result["ortho_renderer"] = bench_ortho(sizes)
    result["rasterizer"] = bench_render(face_count=200_000, size=512)
    result["lego_plan"] = bench_lego(64)
    result["peak_memory_mb"] = peak_mb()
    if args.large:
        result["engines"] = bench_engines(args)

    print(f"machine: {machine['arch']}, {machine['cpu_count']} CPUs, {machine['processor']}")
    print("conversion of the bundled cow (fast preset, CLIP off), seconds per stage:")
    print("   N " + " ".join(f"{s:>9}" for s in STAGES) + "      IoU  peak MB")
    for r in result["conversions"]:
        print(f"{r['resolution']:>4} " + " ".join(f"{r['timings_s'].get(s, 0.0):9.2f}"
                                                   for s in STAGES)
              + f"  {r['iou']:.3f} {r['peak_memory_mb']:8.0f}")
    print(f"Stage 2 time grows like N^{result['stage2_growth_exponent']:.2f}")
    for r in result["stage1_raymarch"]:
        print(f"Stage 1 ray march R={r['resolution']}: {r['ms_per_iteration']:.1f} ms/iteration "
              f"of {r['rays_per_batch']} rays ({r['rays_per_s']:.3g} rays/s, "
              f"{r['iterations_per_s']:.1f} it/s)")
    for r in result["ortho_renderer"]:
        print(f"six-view ortho fwd+bwd N={r['resolution']}: {r['fwd_bwd_ms']:.2f} ms "
              f"({r['rays_per_s']:.3g} rays/s)")
    ras = result["rasterizer"]
    print(f"rasterizer: {ras['views']} views {ras['size']}^2 of {ras['faces']} triangles: "
          f"{ras['best_s']:.2f} s (first call {ras['first_call_s']:.2f} s)")
    lego = result["lego_plan"]
    print(f"LEGO plan of a {lego['resolution']}^3 sphere: {lego['plain']['plan_s']:.2f} s, "
          f"{lego['plain']['bricks']} bricks; with support {lego['with_support']['plan_s']:.2f} s "
          f"(+{lego['with_support']['support_parts']} support parts); writing the files "
          f"{lego['write_s']:.2f} s")
    print(f"peak memory {result['peak_memory_mb']:.0f} MB")
    if args.large:
        from .bench_engines import side_by_side

        print("dense against sparse Stage 2, whole conversions of the bundled cow, each in a "
              "process of its own (peak = its resident high-water mark; active1/active2 = share "
              "of the grid Stage 1's mask / Stage 2's blocks hold at the end):")
        print(side_by_side(result["engines"]))
    from .export.atomic import write_text

    write_text(args.out, json.dumps(result, indent=2, default=float) + "\n")
    print(f"wrote {args.out}")
    return 0

