"""The whole conversion: mesh -> renders -> Stage 1 -> pixel art + palette -> Stage 2 -> VoxelArt.

`run_pipeline` returns everything the exports and reports need; `convert` returns the VoxelArt.
"""
import time
from dataclasses import dataclass, field

import numpy as np

from . import backend
from .cameras import axis_views
from .options import Options
from .views import view_weights

HIRES_PIXELS_PER_CELL = 8  # mesh axis renders for the pixel art and CLIP: 8 pixels per voxel
HIRES_MAX = 1024


@dataclass
class Conversion:
    """Everything one conversion made: the voxel art and what it was made from."""

    art: object  # VoxelArt
    mesh_name: str
    axis_hires: object  # Renders of the six axis views at high resolution
    axis_lowres: object  # Renders of the six axis views at one pixel per voxel column
    pixel_art: np.ndarray  # (6, N, N, 3) float sRGB targets
    masks: np.ndarray  # (6, N, N) bool
    coarse: object  # CoarseField
    stage2: object  # Stage2Result
    metrics: dict
    timings_s: dict = field(default_factory=dict)
    options: Options = None  # the settings it was made with


class _Clock:
    """Seconds per stage, added up over the calls made under each stage's name."""

    def __init__(self, timings=None):
        self.timings = dict(timings or {})

    def run(self, name, fn, *args, **kwargs):
        t = time.perf_counter()
        out = fn(*args, **kwargs)
        self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - t, 3)
        return out


def hires_size(resolution):
    return min(HIRES_MAX, resolution * HIRES_PIXELS_PER_CELL)


def _progress_fn(progress):
    return progress if progress is not None else (lambda *a, **k: None)


def axis_renders(mesh, resolution):
    """The six axis views at the pixel-art generator's resolution."""
    from .render import render_views

    return render_views(mesh, axis_views(), hires_size(resolution))


def axis_cells(axis_hires, resolution, method, threads=1):
    """The six axis renders reduced to pixel-art cells, before a palette is chosen (the
    targets start here, and so does a batch's shared palette); `threads` views at a time."""
    from .pixelart import view_cells

    return view_cells(axis_hires.covered_rgb, axis_hires.alpha, resolution, method, threads)


def _make_targets(clock, axis_hires, opts, user_art, weights):
    """(images, masks, palette) of the six pixel-art targets, ours or the user's (`user_art`:
    loaded images and masks); the user's are snapped to the palette so every target pixel is
    a palette colour."""
    from .palette import resolve_palette
    from .pixelart import apply_palette, cells_palette, quantise_views

    if user_art is None:
        cells = clock.run("pixel_art", axis_cells, axis_hires, opts.resolution,
                          opts.pixel_method, backend.worker_threads())
        pal = clock.run("palette", cells_palette, cells, opts.colors, opts.palette,
                        opts.pixel_method, weights, opts.seed)
        art = clock.run("pixel_art", quantise_views, cells, pal)
        return art.images, art.masks, art.palette
    images, masks = user_art
    pal = clock.run("palette", resolve_palette, opts.palette, images, masks, opts.colors,
                    weights, opts.seed)
    return clock.run("pixel_art", apply_palette, images, masks, pal), masks, pal


@dataclass
class Prepared:
    """Everything before Stage 2: the mesh, its renders, Stage 1's field, the pixel-art targets."""

    mesh: object
    options: dict
    axis_hires: object
    axis_lowres: object
    train_views: object
    coarse: object
    pixel_art: np.ndarray
    masks: np.ndarray
    palette: np.ndarray
    clip_loss: object
    clock: _Clock


def prepare(mesh_or_path, options=None, *, progress=None, **fields):
    """Load, render, train Stage 1 and make the pixel-art targets and palette.

    options: an Options (or None); fields: Options fields to set or change (see `convert`).
    """
    from . import clip_bridge
    from .mesh import load_mesh
    from .metrics import mesh_axis_renders
    from .pixelart import load_pixel_art_dir
    from .render import render_views
    from .stage1 import (Stage1Config, field_resolution, train_stage1, training_cameras,
                         training_image_size)

    opts = Options.make(options, **fields)
    n, seed = opts.resolution, opts.seed
    weights = view_weights(opts.front)
    cfg1 = (opts.stage1_config or Stage1Config.preset(opts.preset)).validate()
    backend.ensure_init(arch=opts.arch, threads=opts.threads)
    backend.require_conversion_arch("a conversion")
    report = _progress_fn(progress)
    clock = _Clock()
    user_art = None  # the user's pixel art is checked before any slow work, not after Stage 1
    if opts.pixel_art is not None:
        user_art = clock.run("pixel_art", load_pixel_art_dir, opts.pixel_art, cells=n)

    mesh = mesh_or_path
    if not hasattr(mesh, "triangles"):
        mesh = clock.run("load", load_mesh, mesh_or_path, up=opts.up)
    report("load", 1, 1, {"faces": mesh.face_count})
    clip_loss = clip_bridge.load(opts.clip, weights_path=opts.clip_weights)  # before long stages

    report("render", 0, 3, {})
    cams = training_cameras(cfg1, seed)
    coarse_n = field_resolution(cfg1, n)
    # odd supersampling: no edge pixel has coverage exactly 0.5 (a tie for "alpha > 0.5")
    train_views = clock.run("render", render_views, mesh, cams,
                            training_image_size(cfg1, coarse_n), supersample=3)
    report("render", 1, 3, {})
    axis_hires = clock.run("render", axis_renders, mesh, n)
    report("render", 2, 3, {})
    axis_lowres = clock.run("render", mesh_axis_renders, mesh, n)
    report("render", 3, 3, {})

    # Stage 1 follows the engine option too ("auto": stage1_sparse.choose_engine by its N)
    coarse = clock.run("stage1", train_stage1, train_views, coarse_n, cfg1, seed, report,
                       opts.engine)

    images, masks, pal = _make_targets(clock, axis_hires, opts, user_art, weights)
    report("pixel_art", 1, 1, {"colors": len(pal)})
    return Prepared(mesh, opts, axis_hires, axis_lowres, train_views, coarse, images, masks,
                    pal, clip_loss, clock)


def fine_tune(prep, options=None, *, progress=None, **stage2_overrides):
    """Stage 2 on prepared inputs, then the metrics; returns a Conversion.

    options: the Stage 2 side of the settings when they differ from prep.options (fill, ortho,
    use_gumbel, clip="off" to drop the CLIP loss, stage2_config); stage2_overrides change single
    Stage 2 settings (e.g. w_depth=0 for the no-depth ablation).
    """
    from .metrics import evaluate_voxel_art
    from .palette_use import restore_missing_colors
    from .stage2 import Stage2Config, train_stage2

    opts = options or prep.options
    cfg2 = opts.stage2_config or Stage2Config.preset(opts.preset, fill=opts.fill,
                                                     **stage2_overrides)
    clock = _Clock(prep.clock.timings)
    depth = _depth_target(prep.axis_lowres) if opts.depth_source == "mesh" else None
    clip_loss = prep.clip_loss if opts.clip != "off" else None
    result = clock.run("stage2", train_stage2, prep.coarse, prep.pixel_art, prep.masks,
                       prep.palette, depth, prep.axis_hires.rgb, cfg2, opts.seed,
                       _progress_fn(progress), clip_loss, opts.ortho, opts.use_gumbel,
                       opts.engine)
    art = restore_missing_colors(result.to_voxel_art(), _target_index(prep))
    if opts.shell:
        from .shell import keep_shell

        art = keep_shell(art)
    metrics = evaluate_voxel_art(art, prep.axis_lowres)
    clock.timings["total"] = round(sum(v for k, v in clock.timings.items() if k != "total"), 3)
    art.metadata.update(mesh=prep.mesh.name, **_settings_metadata(opts),
                        clip=result.metadata.get("clip"), backend=backend.info(),
                        timings_s=dict(clock.timings), metrics=metrics)
    return Conversion(art, prep.mesh.name, prep.axis_hires, prep.axis_lowres, prep.pixel_art,
                      prep.masks, prep.coarse, result, metrics, dict(clock.timings), opts)


def _settings_metadata(opts):
    """The settings a VoxelArt records about how it was made (not the output formats or
    backend choices, which say nothing about the voxels)."""
    settings = opts.as_dict()
    for name in ("formats", "arch", "threads", "clip"):
        settings.pop(name)
    return settings


def run_pipeline(mesh_or_path, options=None, *, progress=None, **fields):
    """Run every stage and return a Conversion (see `convert` for the arguments)."""
    prep = prepare(mesh_or_path, options, progress=progress, **fields)
    prep.train_views = None  # Stage 1's 40 training renders: ~280 MB at N=256, no longer read
    return fine_tune(prep, progress=progress)


def coarse_to_voxel_art(coarse, resolution, palette, occupancy_alpha=0.5):
    """Stage 1's field quantised directly: voxels whose opacity exceeds `occupancy_alpha`,
    each given the Lab-nearest palette colour (the "Stage 1 only" baseline)."""
    from .palette import nearest_palette_index
    from .stage2 import resample_field
    from .coarse_field import CoarseField
    from .voxelart import VoxelArt

    density, rgb = resample_field(coarse, resolution)
    alpha = CoarseField(density, rgb, coarse.alpha_init).voxel_alpha()
    occupancy = alpha > occupancy_alpha
    index = nearest_palette_index(np.clip(rgb, 0, 1), palette)
    return VoxelArt.from_dense(occupancy, index, palette)


def _target_index(prep):
    """(6, N, N) palette index of each pixel-art target pixel, -1 for background."""
    from .palette import nearest_palette_index

    return np.where(prep.masks, nearest_palette_index(prep.pixel_art, prep.palette), -1)


def _depth_target(axis_lowres):
    """Mesh depth of the six axis views at N x N, NaN where the mesh is absent."""
    depth = np.array(axis_lowres.depth, dtype=np.float64)
    depth[~np.isfinite(depth) | (axis_lowres.alpha <= 0.5)] = np.nan
    return depth


def convert(mesh_or_path, options=None, *, progress=None, **fields):
    """Turn a mesh (path or loaded Mesh) into VoxelArt.

    options: an `Options`; fields: Options fields to set (or to change in `options`), e.g.
    resolution=32 (voxels a side, 8..256), colors=6 (palette size, 2..32), palette ("kmeans",
    "kmeans_rare", "maxmin", "mediancut", "lego", "pico8", "#rrggbb,..." or a uint8 (K, 3)
    array), preset ("fast" for CPU, "paper" for the authors' iteration counts, "test" tiny),
    seed, front, fill, clip; see `Options` for all. progress(stage, step, total, info).
    The result's metadata holds the settings, per-stage timings (`timings_s`) and metrics.
    """
    return run_pipeline(mesh_or_path, options, progress=progress, **fields).art
