"""Dense against sparse Stage 2 (stage2/sparse.py): speed and memory of whole conversions, and
the quality of their voxel art, side by side.

Each conversion runs in a child process of its own, so its peak resident memory (ru_maxrss,
which only grows) is its own. Used by `examples/benchmark.py --large` and
`examples/engine_quality.py`.
"""
import json
import os
import resource
import subprocess
import sys

ENGINES = ("dense", "sparse")


def convert_once(mesh, resolution, engine, seed=0, preset="fast"):
    """One conversion (CLIP off) in this process: its timings, metrics and active fractions."""
    from .pipeline import run_pipeline

    conv = run_pipeline(str(mesh), resolution=resolution, colors=6, seed=seed, preset=preset,
                        clip="off", engine=engine)
    meta = conv.stage2.metadata
    iterations = meta["config"]["iterations"]
    return dict(mesh=os.path.basename(str(mesh)), resolution=resolution, engine=meta["engine"],
                timings_s=dict(conv.timings_s),
                stage2_ms_per_iteration=1000.0 * meta["stage2_seconds"] / iterations,
                iou=conv.metrics["iou_mean"], color_de76=conv.metrics["color_de76"],
                stage1_active_fraction=stage1_active_fraction(conv.coarse),
                stage2_active_fraction=meta.get("active_fraction", [1.0])[-1],
                voxels=int(conv.art.filled_count),
                peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def stage1_active_fraction(coarse):
    """Share of cells Stage 1's final opacity mask keeps (stage1.refresh_mask's rule: a
    half-voxel sample's alpha above mask_thres, grown by one cell): its rays and Adam work there;
    its storage stays dense."""
    from scipy.ndimage import maximum_filter

    from .kernels.raymarch import STEP_VOXELS
    from .stage1 import Stage1Config

    busy = coarse.voxel_alpha(interval=STEP_VOXELS) > Stage1Config().mask_thres
    return float(maximum_filter(busy, size=3).mean())


def compare_once(mesh, resolution, seed=0, preset="fast"):
    """Stage 1 once, then Stage 2 dense and sparse from the same inputs: one row per engine."""
    from .pipeline import fine_tune, prepare

    prep = prepare(str(mesh), resolution=resolution, colors=6, seed=seed, preset=preset,
                   clip="off")
    rows = []
    for engine in ENGINES:
        conv = fine_tune(prep, prep.options.replace(engine=engine))
        meta = conv.stage2.metadata
        rows.append(dict(mesh=os.path.basename(str(mesh)), resolution=resolution,
                         engine=engine, stage2_s=meta["stage2_seconds"], iou=conv.metrics[
                             "iou_mean"], color_de76=conv.metrics["color_de76"],
                         stage2_active_fraction=meta.get("active_fraction", [1.0])[-1]))
    return rows


def in_child(job, **args):
    """convert_once (job "convert") or compare_once (job "compare") in a fresh Python process:
    its own Taichi and its own peak memory. Failures come back as rows with an `error`."""
    args.setdefault("arch", "auto")
    args.setdefault("threads", None)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-m", "taichi_voxify.bench_engines", job,
                           json.dumps(args, default=str)], cwd=root, capture_output=True,
                          text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return [dict(mesh=os.path.basename(str(args["mesh"])), resolution=args["resolution"],
                     engine=args.get("engine", "both"), error=tail[0])]
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    return rows if isinstance(rows, list) else [rows]


def side_by_side(rows):
    """Text table: per (mesh, N), the dense and sparse figures next to each other."""
    head = (f"{'mesh':<16}{'N':>5}  {'engine':<7}{'stage1 s':>9}{'stage2 s':>9}{'ms/it':>8}"
            f"{'total s':>9}{'peak MB':>9}{'active1':>8}{'active2':>8}{'IoU':>7}{'dE76':>7}")
    lines = [head]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['mesh']:<16}{r['resolution']:>5}  {r['engine']:<7}failed: "
                         f"{r['error']}")
            continue
        t = r["timings_s"]
        lines.append(f"{r['mesh']:<16}{r['resolution']:>5}  {r['engine']:<7}"
                     f"{t.get('stage1', 0):9.1f}{t.get('stage2', 0):9.1f}"
                     f"{r['stage2_ms_per_iteration']:8.0f}{t.get('total', 0):9.1f}"
                     f"{r['peak_rss_mb']:9.0f}{r['stage1_active_fraction']:8.3f}"
                     f"{r['stage2_active_fraction']:8.3f}{r['iou']:7.3f}{r['color_de76']:7.2f}")
    return "\n".join(lines)


def quality_table(rows):
    """Markdown: per mesh and N, IoU and colour error dense / sparse and their relative gaps."""
    lines = ["| mesh | N | IoU dense | IoU sparse | gap | dE76 dense | dE76 sparse | gap | "
             "Stage 2 s dense / sparse | sparse active |", "|" + "---|" * 10]
    stage2 = {(r["mesh"], r["resolution"], r["engine"]): r for r in rows if "error" not in r}
    for g in quality_gaps(rows):
        d = stage2[(g["mesh"], g["resolution"], "dense")]
        s = stage2[(g["mesh"], g["resolution"], "sparse")]
        lines.append(f"| {g['mesh']} | {g['resolution']} | {g['iou_dense']:.4f} | "
                     f"{g['iou_sparse']:.4f} | {100 * g['iou_gap']:+.2f}% | "
                     f"{g['de_dense']:.3f} | {g['de_sparse']:.3f} | {100 * g['de_gap']:+.2f}% | "
                     f"{d.get('stage2_s', 0):.0f} / {s.get('stage2_s', 0):.0f} | "
                     f"{s['stage2_active_fraction']:.3f} |")
    lines += [f"| {r['mesh']} | {r['resolution']} | failed: {r['error']} |" for r in rows
              if "error" in r]
    return "\n".join(lines)


def quality_gaps(rows):
    """Per (mesh, N): relative gap of sparse against dense in IoU and colour error."""
    by_key = {}
    for r in rows:
        if "error" not in r:
            by_key.setdefault((r["mesh"], r["resolution"]), {})[r["engine"]] = r
    gaps = []
    for (mesh, n), pair in sorted(by_key.items()):
        if set(pair) == set(ENGINES):
            d, s = pair["dense"], pair["sparse"]
            gaps.append(dict(mesh=mesh, resolution=n, iou_dense=d["iou"], iou_sparse=s["iou"],
                             iou_gap=(s["iou"] - d["iou"]) / d["iou"],
                             de_dense=d["color_de76"], de_sparse=s["color_de76"],
                             de_gap=(s["color_de76"] - d["color_de76"]) / d["color_de76"]))
    return gaps


def _child(job, argument):
    args = json.loads(argument)
    from . import backend

    backend.init(arch=args.pop("arch"), threads=args.pop("threads"))
    run = {"convert": convert_once, "compare": compare_once}[job]
    print(json.dumps(run(**args), default=float))


if __name__ == "__main__":
    _child(*sys.argv[1:3])
