"""What a worker does with one asset; both functions take a small task dict and return a small
record (plain JSON values, never arrays) and never raise, so one asset cannot stop the others.

task: name, input (mesh path), out_dir (the batch folder), options (an Options, the same for
every asset, with this worker's share of threads).
"""
import os
import socket
import time

from ..color import rgb_to_hex
from ..errors import OUT_OF_MEMORY, VoxifyError


def error_line(exc):
    """The one-line message the command line would print for this exception."""
    if isinstance(exc, VoxifyError):
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, MemoryError):
        return OUT_OF_MEMORY
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"internal error ({type(exc).__name__}: {text})"


def _guarded(job, task):
    from ..benchmarks import peak_rss_mb  # imported here: the driver imports this module too

    start = time.perf_counter()
    record = {"name": task["name"], "worker": f"{socket.gethostname()}:{os.getpid()}"}
    try:
        record.update(job(task), status="ok")
    except Exception as exc:  # noqa: BLE001 - every failure becomes this asset's record
        record.update(status="failed", error=error_line(exc))
    record["seconds"] = round(time.perf_counter() - start, 3)
    record["peak_rss_mb"] = peak_rss_mb()  # over all the assets this worker ran
    return record


def _convert(task):
    from ..export.atomic import atomic_dir, remove_dead_dirs
    from ..outputs import write_conversion
    from ..pipeline import run_pipeline

    conv = run_pipeline(task["input"], task["options"])
    target = os.path.join(task["out_dir"], task["name"])
    remove_dead_dirs(target)  # an earlier try's, killed while writing: one try runs at a time
    with atomic_dir(target) as folder:
        report = write_conversion(conv, folder, task["options"], task["input"])
    art = conv.art
    return {"files": [f"{task['name']}/{f}" for names in report["files"].values() for f in names],
            "voxels": int(art.filled_count), "colors_used": len(art.colors_used()),
            "palette": art.hex_palette(), "timings_s": report["timings_s"]}


def convert_asset(task):
    """Convert one mesh into DIR/NAME/ (the folder appears whole or not at all)."""
    return _guarded(_convert, task)


def _palette_sample(task):
    import numpy as np

    from .. import backend
    from ..color import lab_to_srgb
    from ..mesh import load_mesh
    from ..palette import weighted_colors
    from ..pipeline import axis_cells, axis_renders
    from ..views import view_weights

    options = task["options"]
    backend.ensure_init(arch=options.arch, threads=options.threads)
    mesh = load_mesh(task["input"], up=options.up)
    cells = axis_cells(axis_renders(mesh, options.resolution), options.resolution,
                       options.pixel_method)
    colors, weights = weighted_colors(lab_to_srgb(np.stack([c.lab for c in cells])),
                                      np.stack([c.mask for c in cells]),
                                      view_weights(options.front))
    return {"colors": [rgb_to_hex(c) for c in colors.tolist()],
            "weights": (weights / weights.sum()).round(8).tolist()}


def palette_sample(task):
    """The asset's pixel-art colours (the cells of its six views, front weighted) with their
    weights summing to 1, for a palette shared by the whole batch."""
    return _guarded(_palette_sample, task)
