"""Speed and memory of the engine and of whole conversions.

    voxify-bench [--large] [--engines dense,sparse] [--arch auto|cpu|cuda] [--out FILE.json]
    (or python examples/benchmark.py ...)

- `in_child("convert", ...)`: one whole conversion (`convert_once`) in a fresh process, so its
  peak RSS and its kernel loading are its own: seconds per stage and per export format, Stage 2
  milliseconds per iteration, the active fraction of each stage (metadata "active_fraction" of
  the CoarseField and of the Stage 2 result), silhouette IoU and colour error; `side_by_side`
  prints them a row per engine. `in_child("compare", ...)`: Stage 1 once, Stage 2 dense and
  sparse; `quality_table` (examples/engine_quality.py) their IoU / colour-error gaps.
- `ortho_step(n)`: the six-view renderer's forward + backward with palette logits quantized in
  the march, what every Stage 2 iteration renders.
- `bench_stage1`: Stage 1's ray march on an analytic sphere (so the numbers do not depend on the
  rasterizer); `heldout_quality`: Stage 1 scored on views it did not train on.
- `bench_render`: the rasterizer on six 512^2 views of a 200k-triangle mesh.
- `bench_lego`: the LEGO build plan of a 64^3 sphere.
- `fixed_costs()`: where an N=16 conversion's time goes when it is not the stages' work.
"""
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace

import numpy as np

from . import backend
from .cameras import axis_views, random_views
from .mesh import Mesh, load_mesh
from .render import BUNDLED_MESH, render_views
from .stage1 import PHASES, Stage1Config, Stage1Trainer, estimate_bytes, training_cameras

ENGINES = ("dense", "sparse")  # the table gets a row per engine: one more name, one more


def peak_rss_mb():
    """Peak resident memory of this process so far, in MB to 0.1 (None where the platform has
    no `resource` module, i.e. Windows). Linux reports kilobytes, macOS bytes."""
    try:
        import resource
    except ImportError:
        return None
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 2**20
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale, 1)


# --- whole conversions, one process each ---------------------------------------------------

def convert_once(mesh, resolution, engine="dense", seed=0, preset="fast", formats=None):
    """One conversion (CLIP off, 6 colours) in this process, and each export format written
    to a scratch folder: timings, Stage 2 per iteration, active fractions, peak RSS, quality."""
    from .outputs import DEFAULT_FORMATS, write_outputs
    from .pipeline import run_pipeline

    start = time.perf_counter()
    backend.ensure_init()
    init_s = time.perf_counter() - start
    conv = run_pipeline(str(mesh), resolution=resolution, colors=6, seed=seed, preset=preset,
                        clip="off", engine=engine)
    export = {}
    with tempfile.TemporaryDirectory() as out:
        for fmt in formats or DEFAULT_FORMATS:
            t = time.perf_counter()
            write_outputs(conv, out, (fmt,))
            export[fmt] = time.perf_counter() - t
    meta2, meta1 = conv.stage2.metadata, conv.coarse.metadata
    iterations = meta2["config"]["iterations"]
    return dict(
        mesh=os.path.basename(str(mesh)), resolution=resolution, engine=meta2["engine"],
        stage1_engine=meta1.get("engine"),
        init_s=init_s, timings_s=dict(conv.timings_s, export=sum(export.values())),
        export_s=export, total_s=time.perf_counter() - start,
        stage2_ms_per_iteration=1000 * meta2["loop_seconds"] / max(iterations, 1),
        stage1_iterations=meta1.get("iterations"), stage2_iterations=iterations,
        stage1_active_fraction=meta1.get("active_fraction"),
        stage2_active_fraction=meta2.get("active_fraction", [1.0])[-1],
        voxels=int(conv.art.filled_count), peak_rss_mb=peak_rss_mb(),
        iou=conv.metrics["iou_mean"], color_de76=conv.metrics["color_de76"])


def compare_once(mesh, resolution, seed=0, preset="fast"):
    """Stage 1 once, then Stage 2 dense and sparse from the same inputs: one row per engine."""
    from .pipeline import fine_tune, prepare

    prep = prepare(str(mesh), resolution=resolution, colors=6, seed=seed, preset=preset,
                   clip="off")
    rows = []
    for engine in ("dense", "sparse"):
        conv = fine_tune(prep, prep.options.replace(engine=engine))
        meta = conv.stage2.metadata
        rows.append(dict(mesh=os.path.basename(str(mesh)), resolution=resolution,
                         engine=engine, stage2_s=meta["stage2_seconds"], iou=conv.metrics[
                             "iou_mean"], color_de76=conv.metrics["color_de76"],
                         stage2_active_fraction=meta.get("active_fraction", [1.0])[-1]))
    return rows


def in_child(job, **args):
    """convert_once (job "convert") or compare_once (job "compare") in a fresh Python process:
    its own Taichi, kernel loading and peak memory. A failure comes back as a row with an
    `error`."""
    args.setdefault("arch", os.environ.get("VOXIFY_ARCH", "auto"))
    args.setdefault("threads", None)
    import taichi_voxify

    root = os.path.dirname(os.path.dirname(os.path.abspath(taichi_voxify.__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    done = subprocess.run([sys.executable, "-m", "taichi_voxify.benchmarks", job,
                           json.dumps(args, default=str)], env=env, capture_output=True,
                          text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return [dict(mesh=os.path.basename(str(args["mesh"])), resolution=args["resolution"],
                     engine=args.get("engine", "both"), error=tail[0])]
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    return rows if isinstance(rows, list) else [rows]


def bench_conversions(sizes, engines=ENGINES, seed=0, mesh=BUNDLED_MESH):
    """One conversion row per (size, engine), each in its own process."""
    return [row for n in sizes for engine in engines
            for row in in_child("convert", mesh=str(mesh), resolution=n, engine=engine,
                                seed=seed)]


def growth_exponent(rows, key="stage2"):
    """Log-log slope of a stage's seconds against N (N^3 would be 3)."""
    rows = [r for r in rows if "error" not in r]
    if len(rows) < 2:
        return float("nan")
    n = np.log([r["resolution"] for r in rows])
    t = np.log([max(1e-9, r["timings_s"][key]) for r in rows])
    return float(np.polyfit(n, t, 1)[0])


# --- the six-view renderer as Stage 2 runs it ------------------------------------------------

def ortho_step(sizes, colours=6, repeats=10, seed=0):
    """Best-of-`repeats` milliseconds of the six-view forward + backward on a random grid whose
    voxels are empty or opaque half and half, with palette logits quantized in the march."""
    import taichi as ti

    from . import ndarrays
    from .stage2 import AxisViewRenderer, PaletteQuantizer

    rows = []
    rng = np.random.default_rng(seed)
    for n in sizes:
        density = ndarrays.from_numpy(np.where(rng.random((n, n, n)) < 0.5, 20.0, -20.0))
        logits = ndarrays.from_numpy(rng.normal(size=(n, n, n, colours)))
        quantizer = PaletteQuantizer(rng.random((colours, 3)))
        quantizer.set_step(1, 0.5)
        grads = ndarrays.zeros((n, n, n)), ndarrays.zeros((n, n, n, colours))
        renderer = AxisViewRenderer(n, shift=-13.8)
        renderer.set_output_grads(np.ones((6, n, n, 3)), np.ones((6, n, n)), np.ones((6, n, n)))
        times = []
        for _ in range(repeats + 1):  # the first loads the kernels
            ti.sync()
            t = time.perf_counter()
            renderer.forward(density, logits, quantizer)
            renderer.backward(density, logits, *grads, quantizer)
            ti.sync()
            times.append(time.perf_counter() - t)
        best = min(times[1:])
        rows.append(dict(resolution=n, fwd_bwd_ms=1000 * best, rays_per_s=6 * n * n / best))
    return rows


# --- Stage 1 on an analytic scene --------------------------------------------------------------

SPHERE_CENTRE = np.array([0.05, -0.02, 0.0])
SPHERE_RADIUS = 0.32


@dataclass
class AnalyticRenders:
    """The fields of render.Renders that Stage 1 reads."""

    cameras: list
    rgb: np.ndarray
    alpha: np.ndarray
    depth: np.ndarray


def sphere_colour(points):
    """Albedo on the sphere: smooth hue from the normal plus a dark band around the equator."""
    n = (points - SPHERE_CENTRE) / SPHERE_RADIUS
    rgb = 0.5 + 0.4 * n
    band = np.abs(n[..., 1]) < 0.2
    rgb[band] = (0.15, 0.15, 0.6)
    return rgb


def _cast_sphere(origins, dirs):
    oc = origins - SPHERE_CENTRE
    b = np.einsum("...i,...i", oc, dirs)
    c = np.einsum("...i,...i", oc, oc) - SPHERE_RADIUS ** 2
    disc = b * b - c
    hit = disc > 0
    t = np.where(hit, -b - np.sqrt(np.maximum(disc, 0.0)), np.inf)
    return hit, t


def sphere_renders(cameras, width, supersample=2):
    """Renders of the analytic sphere: sRGB over white, coverage from supersample^2 rays."""
    views = len(cameras)
    rgb = np.zeros((views, width, width, 3), np.float32)
    alpha = np.zeros((views, width, width), np.float32)
    depth = np.full((views, width, width), np.inf, np.float32)
    s = supersample
    for v, cam in enumerate(cameras):
        o, d = cam.rays(width * s, width * s)
        hit, t = _cast_sphere(o, d)
        col = np.ones(o.shape)
        col[hit] = sphere_colour(o[hit] + t[hit, None] * d[hit])
        rgb[v] = col.reshape(width, s, width, s, 3).mean(axis=(1, 3))
        alpha[v] = hit.reshape(width, s, width, s).mean(axis=(1, 3))
        o1, d1 = cam.rays(width, width)
        _, t1 = _cast_sphere(o1, d1)
        depth[v] = t1
    return AnalyticRenders(list(cameras), rgb, alpha, depth)


def bench_stage1(resolutions=(32, 64, 128), iterations=30, warmup_iterations=300,
                 rays_per_batch=8192, views=20, seed=0, config=None):
    """Time `iterations` training steps per resolution on the analytic sphere, after
    `warmup_iterations` untimed steps (kernel compilation, and a field far enough along that
    empty-space skipping and early termination act as they do in a real run).

    Returns one dict per resolution: iterations_per_s, rays_per_s, ms_per_iteration,
    phase_ms (per iteration, each phase synced), setup_s (ray table, visual hull, buffers),
    state_mb (estimated training state), field_formed and batch_mse (how far the warm-up got:
    the step cost depends on it through empty-space skipping) and peak_memory_mb (process peak
    RSS so far, from resource.getrusage: monotone, so run resolutions in increasing order).
    """
    results = []
    base = config or Stage1Config.preset("fast")
    total = warmup_iterations + iterations
    for res in resolutions:
        cfg = replace(base, iterations=total, rays_per_batch=rays_per_batch, views=views,
                      warmup=0.5 * warmup_iterations / total, half_res_fraction=0.0)
        renders = sphere_renders(training_cameras(cfg, seed), min(384, 3 * res))
        setup = time.perf_counter()
        trainer = Stage1Trainer(renders, res, cfg, seed)
        setup = time.perf_counter() - setup
        for _ in range(warmup_iterations):
            trainer.step()
        trainer.timings = dict.fromkeys(PHASES, 0.0)
        start = time.perf_counter()
        for _ in range(iterations):
            trainer.step(timed=True)
        elapsed = time.perf_counter() - start
        results.append(dict(
            resolution=res, iterations=iterations, rays_per_batch=rays_per_batch,
            setup_s=setup, seconds=elapsed, iterations_per_s=iterations / elapsed,
            rays_per_s=iterations * rays_per_batch / elapsed,
            ms_per_iteration=1000 * elapsed / iterations,
            phase_ms={k: 1000 * v / iterations for k, v in trainer.timings.items()},
            state_mb=estimate_bytes(res, trainer.ray_count) / 2 ** 20,
            field_formed=trainer.formed, batch_mse=float(trainer.batch_losses()[0]),
            peak_memory_mb=peak_rss_mb()))
    return results


def silhouette_iou(opacity, coverage):
    """IoU of opacity > 0.5 against coverage > 0.5 (render the reference with an odd
    supersampling so no pixel sits exactly at 0.5)."""
    ours, theirs = opacity > 0.5, coverage > 0.5
    union = np.count_nonzero(ours | theirs)
    return np.count_nonzero(ours & theirs) / union if union else 1.0


def heldout_quality(mesh, resolution, config=None, held_out=6, seed=0):
    """Train Stage 1 on the mesh's training views and score it on `held_out` other random
    orthographic views at the training image size: PSNR against the reference render, silhouette
    IoU, and the median depth error in voxels over fully covered pixels."""
    from .stage1 import train_stage1, training_image_size

    config = config or Stage1Config.preset("fast")
    width = training_image_size(config, resolution)
    start = time.perf_counter()
    renders = render_views(mesh, training_cameras(config, seed), width)
    render_s = time.perf_counter() - start
    field = train_stage1(renders, resolution, config, seed)
    cams = random_views(held_out, seed=seed + 1000)
    reference = render_views(mesh, cams, width, supersample=3)
    psnr, iou, depth_err = [], [], []
    for v, cam in enumerate(cams):
        rgb, depth, opacity = field.render(cam, width)
        psnr.append(-10 * np.log10(np.mean((rgb - reference.rgb[v]) ** 2)))
        iou.append(silhouette_iou(opacity, reference.alpha[v]))
        solid = (reference.alpha[v] > 0.99) & np.isfinite(depth)
        depth_err.append(np.median(np.abs(depth[solid] - reference.depth[v][solid])) * resolution)
    return dict(mesh=getattr(mesh, "name", "mesh"), resolution=resolution, image_size=width,
                train_views=len(renders.cameras), render_s=render_s,
                train_s=field.metadata["seconds"], psnr_mean=float(np.mean(psnr)),
                psnr_min=float(np.min(psnr)), iou_mean=float(np.mean(iou)),
                iou_min=float(np.min(iou)), depth_err_voxels=float(np.median(depth_err)))


# --- the rasterizer -------------------------------------------------------------------------

def subdivide(mesh):
    """Split every triangle into four at its edge midpoints (uvs and colours follow)."""
    def split(a):
        m01, m12, m20 = (a[:, 0] + a[:, 1]) / 2, (a[:, 1] + a[:, 2]) / 2, (a[:, 2] + a[:, 0]) / 2
        parts = [(a[:, 0], m01, m20), (m01, a[:, 1], m12), (m20, m12, a[:, 2]), (m01, m12, m20)]
        return np.concatenate([np.stack(p, axis=1) for p in parts]).astype(a.dtype)

    return Mesh(name=mesh.name, triangles=split(mesh.triangles), uvs=split(mesh.uvs),
                corner_colors=split(mesh.corner_colors),
                face_material=np.tile(mesh.face_material, 4),
                material_colors=mesh.material_colors, material_textures=mesh.material_textures,
                textures=mesh.textures, source=mesh.source)


def benchmark_mesh(face_count=200_000):
    """The bundled textured Spot, subdivided and cut to exactly `face_count` triangles."""
    mesh = load_mesh(BUNDLED_MESH)
    while mesh.face_count < face_count:
        mesh = subdivide(mesh)
    keep = slice(0, int(face_count))
    return Mesh(name=mesh.name, triangles=mesh.triangles[keep], uvs=mesh.uvs[keep],
                corner_colors=mesh.corner_colors[keep], face_material=mesh.face_material[keep],
                material_colors=mesh.material_colors, material_textures=mesh.material_textures,
                textures=mesh.textures, source=mesh.source)


def bench_render(mesh=None, face_count=200_000, size=512, cameras=None, supersample=2,
                 repeats=3):
    """Time render_views: the first call (compiles or loads kernels), then wall and CPU
    seconds (all threads) of `repeats` more; CPU time is less sensitive to other load."""
    mesh = benchmark_mesh(face_count) if mesh is None else mesh
    cameras = axis_views() if cameras is None else cameras
    start = time.perf_counter()
    render_views(mesh, cameras, size, supersample=supersample)
    first = time.perf_counter() - start
    times, cpu_times = [], []
    for _ in range(max(1, int(repeats))):
        start, cpu_start = time.perf_counter(), time.process_time()
        render_views(mesh, cameras, size, supersample=supersample)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    return dict(faces=mesh.face_count, views=len(cameras), size=size, supersample=supersample,
                first_call_s=first, best_s=min(times), median_s=float(np.median(times)),
                best_cpu_s=min(cpu_times), arch=backend.info().get("arch"),
                threads=backend.info().get("threads"))


# --- the LEGO build plan ---------------------------------------------------------------------

def bench_lego(n=64):
    """LEGO build plan of a solid n^3 sphere in four colour bands (no Taichi): plan, plan with
    hidden support, and writing STEM_lego/ (BOM, shopping lists, instructions, overview)."""
    from .lego import build_plan, catalog, write_lego
    from .voxelart import VoxelArt

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


# --- fixed costs ------------------------------------------------------------------------------

def fixed_costs(n=16, seed=0):
    """Where an N = n conversion's time goes besides the stages' own work: start-up (Taichi and
    the offline kernel cache), each export format, and Stage 1's iteration budget (its seconds
    per iteration times its fixed iteration count)."""
    (row,) = in_child("convert", mesh=str(BUNDLED_MESH), resolution=n, engine="dense",
                      seed=seed)
    if "error" in row:
        return row
    return dict(resolution=n, init_s=row["init_s"], export_s=row["export_s"],
                stage_s=row["timings_s"], total_s=row["total_s"],
                stage1_iterations=row["stage1_iterations"],
                stage1_ms_per_iteration=1000 * row["timings_s"]["stage1"]
                / max(row["stage1_iterations"] or 1, 1))


# --- the command line ------------------------------------------------------------------------

STAGES = ("load", "render", "stage1", "pixel_art", "palette", "stage2", "export")


def _fraction(value):
    return "-" if value is None else f"{value:.3f}"


def side_by_side(rows, ortho=()):
    """Text table of conversion rows, one per (mesh, N, engine): the engines of Stage 1 and
    Stage 2, seconds per stage, Stage 2 ms per iteration (next to the six-view ortho fwd+bwd at
    that N, from `ortho` rows), active fractions, peak RSS, IoU and colour error."""
    ortho_ms = {r["resolution"]: r["fwd_bwd_ms"] for r in ortho}
    lines = [f"{'mesh':<12}{'N':>4} {'engines':<14}" + "".join(f"{s:>10}" for s in STAGES)
             + f"{'total':>9}{'s2 ms/it':>9}{'ortho ms':>9}{'active1':>8}{'active2':>8}"
             f"{'peak MB':>8}{'IoU':>7}{'dE76':>7}"]
    for r in rows:
        engines = f"{r.get('stage1_engine') or '-'}/{r['engine']}"
        head = f"{r['mesh']:<12}{r['resolution']:>4} {engines:<14}"
        if "error" in r:
            lines.append(head + f"failed: {r['error']}")
            continue
        t = r["timings_s"]
        lines.append(head + "".join(f"{t.get(s, 0.0):10.2f}" for s in STAGES)
                     + f"{r.get('total_s', t.get('total', 0.0)):9.2f}"
                     f"{r['stage2_ms_per_iteration']:9.1f}"
                     f"{ortho_ms.get(r['resolution'], float('nan')):9.1f}"
                     f"{_fraction(r['stage1_active_fraction']):>8}"
                     f"{_fraction(r['stage2_active_fraction']):>8}"
                     f"{r['peak_rss_mb']:8.0f}{r['iou']:7.3f}{r['color_de76']:7.2f}")
    return "\n".join(lines)


def quality_gaps(rows):
    """Per (mesh, N): relative gap of sparse against dense in IoU and colour error."""
    by_key = {}
    for r in rows:
        if "error" not in r:
            by_key.setdefault((r["mesh"], r["resolution"]), {})[r["engine"]] = r
    gaps = []
    for (mesh, n), pair in sorted(by_key.items()):
        if set(pair) == {"dense", "sparse"}:
            d, s = pair["dense"], pair["sparse"]
            gaps.append(dict(mesh=mesh, resolution=n, iou_dense=d["iou"], iou_sparse=s["iou"],
                             iou_gap=(s["iou"] - d["iou"]) / d["iou"],
                             de_dense=d["color_de76"], de_sparse=s["color_de76"],
                             de_gap=(s["color_de76"] - d["color_de76"]) / d["color_de76"]))
    return gaps


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


def main(argv=None):
    """voxify-bench (and examples/benchmark.py): one-line errors through run_command."""
    from .commands import run_command

    return run_command(bench, argv)


def bench(argv):
    from .commands import CommandParser

    p = CommandParser(prog="voxify-bench", description="Speed and memory of every stage, on "
                      "the backend in use; see taichi_voxify/benchmarks.py.")
    p.add_argument("--large", action="store_true", help="also N=128 and N=256")
    p.add_argument("--engines", default=",".join(ENGINES),
                   help="comma-separated engines, one table row each (default: %(default)s)")
    p.add_argument("--arch", default="auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default="benchmark.json")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    args = p.parse_args(argv)

    from .export.atomic import write_text

    info = backend.init(arch=args.arch, threads=args.threads)
    os.environ["VOXIFY_ARCH"] = info["arch"]  # the conversions' own processes use it too
    engines = tuple(e.strip() for e in args.engines.split(",") if e.strip())
    sizes = [16, 32, 64] + ([128, 256] if args.large else [])
    machine = dict(info, cpu_count=os.cpu_count(), platform=platform.platform(),
                   processor=platform.processor() or platform.machine())
    result = dict(machine=machine)
    result["ortho_step"] = ortho_step(sizes)
    result["conversions"] = bench_conversions(sizes, engines)
    result["stage2_growth_exponent"] = {
        e: growth_exponent([r for r in result["conversions"] if r["engine"] == e])
        for e in engines}
    result["stage1_raymarch"] = bench_stage1(resolutions=[s for s in sizes if 32 <= s <= 128])
    result["rasterizer"] = bench_render(face_count=200_000, size=512)
    result["lego_plan"] = bench_lego(64)
    result["fixed_costs_n16"] = fixed_costs(16)

    print(f"machine: {machine['arch']}, {machine['cpu_count']} CPUs, {machine['processor']}")
    print("whole conversions of the bundled cow (fast preset, CLIP off), each in a process of "
          "its own: seconds per stage; active1/active2 = share of the grid Stage 1's rays "
          "sample / Stage 2's engine holds at the end; peak = the process's resident peak")
    print(side_by_side(result["conversions"], result["ortho_step"]))
    for e, slope in result["stage2_growth_exponent"].items():
        print(f"Stage 2 time ({e}) grows like N^{slope:.2f}")
    for r in result["stage1_raymarch"]:
        print(f"Stage 1 ray march R={r['resolution']}: {r['ms_per_iteration']:.1f} ms/iteration "
              f"of {r['rays_per_batch']} rays ({r['rays_per_s']:.3g} rays/s)")
    ras = result["rasterizer"]
    print(f"rasterizer: {ras['views']} views {ras['size']}^2 of {ras['faces']} triangles: "
          f"{ras['best_s']:.2f} s (first call {ras['first_call_s']:.2f} s)")
    lego = result["lego_plan"]
    print(f"LEGO plan of a {lego['resolution']}^3 sphere: {lego['plain']['plan_s']:.2f} s, "
          f"{lego['plain']['bricks']} bricks; with support {lego['with_support']['plan_s']:.2f} s "
          f"(+{lego['with_support']['support_parts']} support parts); writing the files "
          f"{lego['write_s']:.2f} s")
    fixed = result["fixed_costs_n16"]
    if "error" not in fixed:
        print(f"fixed costs at N=16 (total {fixed['total_s']:.1f} s): start-up "
              f"{fixed['init_s']:.2f} s, Stage 1 {fixed['stage_s']['stage1']:.1f} s for "
              f"{fixed['stage1_iterations']} iterations, export "
              + ", ".join(f"{k} {v:.2f} s" for k, v in fixed["export_s"].items()))
    write_text(args.out, json.dumps(result, indent=2, default=float) + "\n")
    print(f"wrote {args.out}")
    return 0


def _child(job, argument):
    """What `in_child` runs in its own process."""
    args = json.loads(argument)
    backend.init(arch=args.pop("arch"), threads=args.pop("threads"))
    run = {"convert": convert_once, "compare": compare_once}[job]
    print(json.dumps(run(**args), default=float))


if __name__ == "__main__":
    _child(*sys.argv[1:3])
