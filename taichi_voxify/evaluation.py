"""Baselines, ablations and their metrics on one mesh (what examples/evaluate.py runs).

Methods share the pipeline's code paths: every Stage 2 variant starts from the same renders,
Stage 1 field, pixel art and palette, so the rows differ only in what the row names.
"""
import time
from dataclasses import replace

import numpy as np

from .errors import OptionError

METHODS = ("voxelize", "pixel3d", "stage1", "full", "no-ortho", "no-clip", "no-gumbel",
           "no-depth")
NO_CLIP_SCORE = "n/a (no CLIP weights)"
GALLERY_VIEWS = ("front", "side", "iso")


def parse_methods(text):
    names = [m.strip() for m in str(text).split(",") if m.strip()]
    bad = [m for m in names if m not in METHODS]
    if bad or not names:
        raise OptionError(f"unknown method {bad[0] if bad else '(none)'!r}: choose from "
                          f"{', '.join(METHODS)}")
    return names


def _pixel3d(prep, seed):
    """The paper's naive Pixel->3D: pixelate every Stage 1 training view, fit Stage 1 to the
    pixelated views, quantise that field to the palette."""
    from .pipeline import coarse_to_voxel_art
    from .pixelart import make_pixel_art_views
    from .render import Renders
    from .stage1 import Stage1Config, train_stage1

    views = prep.train_views
    n = prep.options.resolution
    size = views.rgb.shape[1]
    # one pixel-art cell per voxel length on the screen (the views are sqrt(3) box units wide)
    cells = max(4, min(size, int(round(n * views.cameras[0].width))))
    art = make_pixel_art_views(views.covered_rgb, views.alpha, cells=cells,
                               colors=len(prep.palette), palette=prep.palette, seed=seed)
    cell_of = np.arange(size) * cells // size  # nearest-neighbour upscale back to the views
    up = lambda a: a[:, cell_of][:, :, cell_of]  # noqa: E731
    # pixelated images carry no depth, and DVGO has no depth loss: train on colour and alpha
    pixelated = Renders(cameras=views.cameras, rgb=up(art.images).astype(np.float32),
                        alpha=up(art.masks.astype(np.float32)), depth=None,
                        normal=views.normal, face_id=views.face_id)
    config = replace(Stage1Config.preset(prep.options.preset), w_depth=0.0)
    coarse = train_stage1(pixelated, n, config, seed)
    return coarse_to_voxel_art(coarse, n, prep.palette)


def run_method(method, prep, seed=0, fill=False):
    """VoxelArt of one method on prepared inputs (and the seconds it took beyond them)."""
    from .pipeline import coarse_to_voxel_art, fine_tune
    from .voxelize import voxelize_mesh

    n, k = prep.options.resolution, prep.options.colors
    start = time.perf_counter()
    if method == "voxelize":
        art = voxelize_mesh(prep.mesh, n, colors=k, fill=True, seed=seed)
    elif method == "pixel3d":
        art = _pixel3d(prep, seed)
    elif method == "stage1":
        art = coarse_to_voxel_art(prep.coarse, n, prep.palette)
    else:
        options, overrides = prep.options.replace(fill=fill), {}
        if method == "no-depth":
            overrides = dict(w_depth=0.0)
        elif method != "full":
            options = options.replace(**{"no-ortho": dict(ortho=False), "no-clip": dict(clip="off"),
                                         "no-gumbel": dict(use_gumbel=False)}[method])
        art = fine_tune(prep, options, **overrides).art
    return art, time.perf_counter() - start


def metrics_row(art, prep, clip_scorer=None, name=""):
    from .metrics import evaluate_voxel_art

    m = evaluate_voxel_art(art, prep.axis_lowres)
    row = dict(iou=m["iou_mean"], color_de76=m["color_de76"], feature_recall=m["feature_recall"],
               features=m["features"], depth_voxels=m["depth_error_voxels"],
               colors_used=m["colors_used"], voxels=m["voxels_filled"])
    row["clip_iqa"] = (clip_scorer(gallery_images(art, 224), name) if clip_scorer
                       else NO_CLIP_SCORE)
    return row


def gallery_images(art, size=160):
    """The voxel art from the front, the side and an isometric angle."""
    from .cameras import axis_view
    from .export.images import iso_camera, render_voxels

    return [render_voxels(art, axis_view("+z"), size), render_voxels(art, axis_view("+x"), size),
            render_voxels(art, iso_camera(art=art), size)]


def gallery_png(rows, path, mesh_images=None, tile=160):
    """One labelled PNG: a column per method (the mesh first), GALLERY_VIEWS as rows."""
    from PIL import Image, ImageDraw, ImageFont

    from .export.atomic import atomic_path

    columns = ([("mesh", mesh_images)] if mesh_images is not None else []) + list(rows)
    font, label_h, pad = ImageFont.load_default(), 14, 6
    canvas = Image.new("RGB", (pad + len(columns) * (tile + pad),
                               label_h + pad + len(GALLERY_VIEWS) * (tile + pad)), "white")
    draw = ImageDraw.Draw(canvas)
    for c, (name, images) in enumerate(columns):
        x = pad + c * (tile + pad)
        draw.text((x, 2), name, fill=(0, 0, 0), font=font)
        for r, img in enumerate(images):
            pil = Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8))
            canvas.paste(pil.resize((tile, tile), Image.NEAREST), (x, label_h + pad + r * (tile + pad)))
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")


def mesh_gallery_images(mesh, size=160):
    from .cameras import axis_view
    from .export.images import iso_camera
    from .render import render_views

    cams = [axis_view("+z"), axis_view("+x"), iso_camera()]
    return list(render_views(mesh, cams, size).rgb)


def format_table(results, methods):
    """Markdown table: one row per (mesh, method), then the mean of each method."""
    cols = ("iou", "color_de76", "feature_recall", "features", "depth_voxels", "colors_used",
            "voxels", "seconds", "clip_iqa")
    head = "| mesh | method | " + " | ".join(cols) + " |"
    lines = [head, "|" + "---|" * (len(cols) + 2)]
    fmt = lambda v: v if isinstance(v, str) else (f"{v:.3f}" if isinstance(v, float) else str(v))  # noqa
    for r in results:
        lines.append(f"| {r['mesh']} | {r['method']} | " + " | ".join(fmt(r[c]) for c in cols) + " |")
    for m in methods:
        rows = [r for r in results if r["method"] == m]
        # nanmean: a mesh without small features has no feature recall
        means = [fmt(float(np.nanmean([r[c] for r in rows]))) if not isinstance(rows[0][c], str)
                 else rows[0][c] for c in cols]
        lines.append(f"| **mean** | {m} | " + " | ".join(means) + " |")
    return "\n".join(lines) + "\n"


SUMMARY_METRICS = (  # column, title, format of a mesh's value, format of the mean
    ("iou", "Six-view silhouette IoU (higher is better)", "{:.3f}", "{:.3f}"),
    ("color_de76", "Colour error, mean ΔE76 (lower is better)", "{:.2f}", "{:.2f}"),
    ("feature_recall", "Feature recall (higher is better)", "{:.2f}", "{:.2f}"),
    ("colors_used", "Palette colours used", "{:.0f}", "{:.1f}"))


def format_summary(results, methods):
    """Markdown: one table per metric, a row per method, a column per mesh and the mean."""
    meshes = list(dict.fromkeys(r["mesh"] for r in results))
    value = {(r["mesh"], r["method"]): r for r in results}
    blocks = []
    for key, title, fmt, mean_fmt in SUMMARY_METRICS:
        lines = [f"{title}:", "", "| method | " + " | ".join(meshes) + " | mean |",
                 "|" + "---|" * (len(meshes) + 2)]
        for m in methods:
            cells = [value[(mesh, m)][key] if (mesh, m) in value else float("nan")
                     for mesh in meshes]
            text = ["n/a" if np.isnan(v) else fmt.format(v) for v in cells]
            mean = float(np.nanmean(cells)) if not np.all(np.isnan(cells)) else float("nan")
            lines.append(f"| {m} | " + " | ".join(text) + f" | **{mean_fmt.format(mean)}** |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def format_csv(results):
    cols = ("mesh", "method", "iou", "color_de76", "feature_recall", "features", "depth_voxels",
            "colors_used", "voxels", "seconds", "clip_iqa")
    out = [",".join(cols)]
    for r in results:
        out.append(",".join(str(r[c]) for c in cols))
    return "\n".join(out) + "\n"
