"""Stage 1 measurements.

`bench_stage1`: iterations/s, rays/s, time per phase and peak memory per grid resolution, on an
analytic scene (a coloured sphere ray-cast in numpy) so the numbers do not depend on the mesh
renderer; examples/benchmark.py calls it. `heldout_quality`: PSNR, silhouette IoU and depth
error of a trained field on views it was not trained on, for a real mesh.
"""
import time
from dataclasses import dataclass, replace

import numpy as np

from .cameras import random_views
from .stage1 import (PHASES, Stage1Config, Stage1Trainer, estimate_bytes, peak_memory_bytes,
                     training_cameras)

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
            peak_memory_mb=peak_memory_bytes() / 2 ** 20))
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
    from .render import render_views
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
