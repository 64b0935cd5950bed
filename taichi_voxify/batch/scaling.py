"""How a batch scales on this machine: small generated meshes converted with `--jobs 1`,
`--jobs 2` and a local Ray; prints assets per minute, the time per asset inside a worker,
the per-asset overhead around it, peak memory per worker, Ray's bare task round trip, the
driver's cost per manifest line and the bytes each asset writes, then the cluster model that
README.md's batch section explains.

    python examples/batch_benchmark.py [--assets 20] [--res 16] [--preset fast]
"""
import argparse
import os
import tempfile
import time

import numpy as np


def make_meshes(folder, count, seed=0):
    """`count` small two-colour meshes (boxes, spheres, cylinders, cones, capsules)."""
    import trimesh

    rng = np.random.default_rng(seed)
    shapes = (lambda s: trimesh.creation.box(s),
              lambda s: trimesh.creation.icosphere(2, radius=s[0]),
              lambda s: trimesh.creation.cylinder(s[0] / 2, s[1], sections=16),
              lambda s: trimesh.creation.cone(s[0] / 2, s[1], sections=16),
              lambda s: trimesh.creation.capsule(s[1], s[0] / 3))
    paths = []
    for i in range(count):
        mesh = shapes[i % len(shapes)](rng.uniform(0.4, 1.0, 3))
        top, bottom = rng.integers(0, 256, (2, 3))
        up = mesh.vertices[:, 1] > np.median(mesh.vertices[:, 1])
        rgb = np.where(up[:, None], top, bottom)
        mesh.visual.vertex_colors = np.c_[rgb, np.full(len(rgb), 255)].astype(np.uint8)
        paths.append(os.path.join(folder, f"prop{i:02d}.{'glb' if i % 2 else 'ply'}"))
        mesh.export(paths[-1])
    return paths


def _folder_bytes(folder):
    return sum(os.path.getsize(os.path.join(root, f))
               for root, _, files in os.walk(folder) for f in files)


def measure(mode, meshes, options, out_dir):
    from .driver import make_pool, run_batch

    workers = 1 if mode == "jobs1" else 2
    start = time.perf_counter()
    pool = make_pool(jobs=workers, ray="local" if mode == "ray" else None)
    ray_start = time.perf_counter() - start if mode == "ray" else 0.0
    try:
        start = time.perf_counter()
        records, _ = run_batch(meshes, out_dir, options, pool)
        wall = time.perf_counter() - start
    finally:
        pool.close()
    ok = [r for r in records if r["status"] == "ok"]
    busy = sum(r["seconds"] for r in ok)
    return dict(mode=mode, workers=workers, assets=len(records), ok=len(ok), wall_s=wall,
                per_min=60 * len(ok) / wall, asset_s=busy / max(1, len(ok)),
                overhead_s=(workers * wall - busy) / max(1, len(ok)),
                peak_rss_mb=max((r.get("peak_rss_mb") or 0) for r in ok) if ok else None,
                ray_start_s=ray_start,
                bytes_per_asset=_folder_bytes(out_dir) / max(1, len(ok)))


def ray_task_round_trip(tasks=200):
    """Seconds per bare Ray task (submit, run, fetch a small result) on a local Ray."""
    from .ray_pool import start_local_ray

    ray = start_local_ray(num_cpus=2)
    try:
        noop = ray.remote(num_cpus=1)(lambda x: {"name": x})
        ray.get([noop.remote(i) for i in range(20)])  # workers started
        start = time.perf_counter()
        ray.get([noop.remote(i) for i in range(tasks)])
        return (time.perf_counter() - start) / tasks * 2  # two run at once
    finally:
        ray.shutdown()


def manifest_line_cost(folder, lines=500):
    """Seconds the driver spends per manifest line (append + fsync), on the output store."""
    from .manifest import Manifest

    manifest = Manifest(folder)
    record = {"name": "x", "status": "ok", "files": ["x/x.vox"] * 8, "settings": {"k": 1} }
    start = time.perf_counter()
    for i in range(lines):
        manifest.add(dict(record, name=f"asset{i}"))
    return (time.perf_counter() - start) / lines


def main(argv=None):
    from ..options import Options

    p = argparse.ArgumentParser(prog="batch_benchmark", description=__doc__.split("\n\n")[0])
    p.add_argument("--assets", type=int, default=20)
    p.add_argument("--res", type=int, default=16)
    p.add_argument("--preset", default="fast")
    p.add_argument("--modes", default="jobs1,jobs2,ray")
    args = p.parse_args(argv)
    options = Options(resolution=args.res, preset=args.preset, clip="off")
    with tempfile.TemporaryDirectory(prefix="voxify_batch_bench_") as tmp:
        meshes = make_meshes(tmp, args.assets)
        rows = [measure(mode, meshes, options, os.path.join(tmp, mode))
                for mode in args.modes.split(",")]
        line_s = manifest_line_cost(os.path.join(tmp, "jobs1"))
    bare = ray_task_round_trip() if "ray" in args.modes else None
    print(f"{args.assets} meshes, N={args.res}, preset {args.preset}, formats "
          f"{','.join(options.formats)}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}")
    print("| run | workers | assets/min | s/asset in worker | overhead s/asset | "
          "peak RSS/worker MB | Ray start s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['mode']} | {r['workers']} | {r['per_min']:.2f} | {r['asset_s']:.1f} | "
              f"{r['overhead_s']:.1f} | {r['peak_rss_mb']} | {r['ray_start_s']:.1f} |")
    by_mode = {r["mode"]: r for r in rows}
    if bare is not None:
        print(f"bare Ray task round trip: {bare * 1000:.1f} ms")
    if "ray" in by_mode and "jobs2" in by_mode:
        print(f"Ray overhead per asset beyond the local pool's: "
              f"{by_mode['ray']['overhead_s'] - by_mode['jobs2']['overhead_s']:+.1f} s")
    print(f"driver: {line_s * 1000:.2f} ms per manifest line (append + fsync)")
    print(f"output: {rows[0]['bytes_per_asset'] / 1e6:.2f} MB per asset")
    ray_row = by_mode.get("ray", rows[-1])
    t = ray_row["asset_s"] + ray_row["overhead_s"]
    print(f"model: assets/hour = 3600 * W / {t:.1f} s, until the driver's limit "
          f"{3600 / line_s:,.0f}/hour or the store's bandwidth "
          f"({ray_row['bytes_per_asset'] / 1e6:.2f} MB per asset)")
    return 0
