"""Write a conversion's files into one folder: every file whole or not at all.

STEM.vox, STEM.glb / .obj / .ply, STEM.schem, STEM.npz, STEM_views.png, STEM_palette.png,
STEM_turntable.gif, STEM_lego/, and always STEM_palette.gpl / .hex / _strip.png and
STEM_report.json.
"""
import io
import json
import os
import platform
import time

import numpy as np

from . import backend
from .errors import OptionError, VoxifyError

FORMATS = ("vox", "glb", "obj", "ply", "schem", "npz", "png", "gif", "lego")
DEFAULT_FORMATS = ("vox", "glb", "npz", "png", "gif")


# the names each format writes after STEM (a folder for lego), and those every run writes
FORMAT_SUFFIXES = {"vox": (".vox",), "glb": (".glb",), "obj": (".obj", ".mtl"), "ply": (".ply",),
                   "schem": (".schem",), "npz": (".npz",), "png": ("_views.png", "_palette.png"),
                   "gif": ("_turntable.gif",), "lego": ("_lego",)}
ALWAYS_SUFFIXES = ("_palette.gpl", "_palette.hex", "_palette_strip.png", "_report.json")


def planned_names(stem, formats):
    """The names a conversion of STEM writes into --out, known before it starts (the output
    set checks them before any work, and again whatever was written before moving it in)."""
    return [stem + s for f in formats for s in FORMAT_SUFFIXES.get(f, ())] + \
        [stem + s for s in ALWAYS_SUFFIXES]


def parse_formats(text):
    names = [t.strip().lower() for t in str(text).split(",") if t.strip()]
    if not names:
        raise OptionError("--formats needs at least one format")
    bad = [n for n in names if n not in FORMATS]
    if bad:
        raise OptionError(f"unknown output format {bad[0]!r}: choose from {', '.join(FORMATS)}")
    return tuple(dict.fromkeys(names))


def prepare_out_dir(path):
    """Create the output folder (and parents) and check it can be written, before any work."""
    path = os.path.abspath(os.fspath(path))
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise OptionError(f"cannot create output folder {path}: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise OptionError(f"output folder {path} is not writable")
    return path


def _write_npz(conv, path):
    from .export.atomic import write_bytes

    buf = io.BytesIO()
    np.savez_compressed(buf, **conv.art.to_npz_dict())
    write_bytes(path, buf.getvalue())


def write_outputs(conv, out_dir, formats=DEFAULT_FORMATS, stem=None):
    """Write the requested formats; returns {format: [file names]} and extra numbers per format."""
    from . import lego
    from .export import images, meshing, schem, vox
    from .palette import palette_names
    from .palette_files import write_palette_files

    stem = stem or conv.mesh_name
    art = conv.art
    names = palette_names(art.palette, conv.options.palette)  # LEGO, Minecraft, a named .gpl
    files, numbers = {}, {}
    path = lambda suffix: os.path.join(out_dir, stem + suffix)  # noqa: E731
    for fmt in formats:
        if fmt == "vox":
            vox.write_vox(art, path(".vox"), names)
            files[fmt] = [stem + ".vox"]
        elif fmt in ("glb", "obj", "ply"):
            info = meshing.write_mesh(art, path("." + fmt), style=conv.options.mesh_style)
            files[fmt] = [os.path.basename(f) for f in info["files"]]
            numbers[fmt] = {"triangles": info["triangles"]}
        elif fmt == "schem":
            numbers[fmt] = schem.write_schem(art, path(".schem"), name=stem)
            files[fmt] = [stem + ".schem"]
        elif fmt == "npz":
            _write_npz(conv, path(".npz"))
            files[fmt] = [stem + ".npz"]
        elif fmt == "png":
            images.views_png(art, path("_views.png"), mesh_views=conv.axis_hires,
                             pixel_art=conv.pixel_art, pixel_masks=conv.masks,
                             front=conv.options.front)
            counts = np.bincount(art.indices.ravel(), minlength=len(art.palette) + 1)[1:]
            images.palette_png(art.palette, path("_palette.png"), counts=counts)
            files[fmt] = [stem + "_views.png", stem + "_palette.png"]
        elif fmt == "gif":
            images.turntable_gif(art, path("_turntable.gif"),
                                 threads=backend.worker_threads())
            files[fmt] = [stem + "_turntable.gif"]
        elif fmt == "lego":
            plan = lego.build_plan(art, name=stem, support=conv.options.lego_support,
                                   proportions=conv.options.lego_proportions)
            lego.write_lego(plan, path("_lego"))
            files[fmt] = [stem + "_lego/"]
            numbers[fmt] = plan.summary()
    palette_files = write_palette_files(art.palette, path("_palette"), stem, names)
    files["palette"] = [os.path.basename(p) for p in palette_files]
    return files, numbers


def versions():
    import taichi
    import trimesh

    from . import __version__

    return {"taichi_voxify": __version__, "taichi": ".".join(map(str, taichi.__version__)),
            "numpy": np.__version__, "trimesh": trimesh.__version__,
            "python": platform.python_version()}


def _plain(value):
    """JSON-safe copy: numpy scalars and arrays become Python numbers and lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def build_report(conv, settings, files, numbers, timings):
    art = conv.art
    last = conv.stage2.history[-1] if conv.stage2.history else {}
    return _plain({
        "mesh": conv.mesh_name,
        "settings": settings,
        "backend": art.metadata.get("backend"),
        "versions": versions(),
        "result": {"shape": list(art.shape), "voxels_filled": art.filled_count,
                   "colors_used": len(art.colors_used()), "palette": art.hex_palette()},
        "metrics": conv.metrics,
        "losses": {"stage1_final_mse": conv.coarse.metadata.get("final_mse"),
                   "stage2_final": last},
        "exports": numbers,
        "files": files,
        "timings_s": timings,
    })


def write_conversion(conv, folder, options, mesh):
    """Every requested format and STEM_report.json into `folder`; returns the report."""
    start = time.perf_counter()
    files, numbers = write_outputs(conv, folder, options.formats)
    timings = dict(conv.timings_s)
    timings["export"] = round(time.perf_counter() - start, 3)
    timings["total"] = round(timings["total"] + timings["export"], 3)
    files["report"] = [conv.mesh_name + "_report.json"]
    report = build_report(conv, dict(mesh=mesh, **options.as_dict()), files, numbers, timings)
    write_report(report, os.path.join(folder, files["report"][0]))
    return report


def write_report(report, path):
    from .export.atomic import write_text

    try:
        write_text(path, json.dumps(report, indent=2) + "\n")
    except (TypeError, ValueError) as exc:
        raise VoxifyError(f"cannot write the report: {exc}") from None
