"""A Taichi program that embeds taichi_voxify the way a Taichi user would (run by
test_embedding.py in its own process: Taichi has one runtime per process).

    python tests/host_program.py f32|f64 MESH RESOLUTION CONVERSIONS [cpu|cuda [nowindow]]

It starts Taichi itself and makes its own fields first, converts MESH (CONVERSIONS times, the
resident memory measured after each), counts the voxels in its own kernel, draws them into its
own headless GGUI scene, and prints one JSON line of what it saw.
"""
import json
import os
import sys

import numpy as np
import taichi as ti

precision, mesh_path, resolution, conversions = sys.argv[1:5]
arch = sys.argv[5] if len(sys.argv) > 5 else "cpu"
# the library's kernel cache, so the test does not compile every kernel again (a host would
# use its own cache or none; nothing else below depends on it)
ti.init(arch=getattr(ti, arch), default_fp=getattr(ti, precision), log_level=ti.WARN,
        offline_cache_file_path=os.path.join(os.path.expanduser("~"), ".cache",
                                             "taichi_voxify", "ti_cache"))
runtime = ti.lang.impl.get_runtime()
own = ti.field(ti.f32, shape=100)  # the host's own fields, made before the library runs
own_vec = ti.Vector.field(3, ti.f64 if precision == "f64" else ti.f32, shape=(4, 4))
own.from_numpy(np.arange(100, dtype=np.float32))
own_vec.fill(0.5)

import taichi_voxify as tv  # noqa: E402


@ti.kernel
def count_filled(grid: ti.template()) -> ti.i32:
    n = 0
    for I in ti.grouped(grid):
        if grid[I] > 0:
            n += 1
    return n


@ti.kernel
def mean_palette_red(indices: ti.template(), palette: ti.template()) -> ti.f32:
    total, n = 0.0, 0
    for I in ti.grouped(indices):
        if indices[I] > 0:
            total += palette[ti.i32(indices[I]) - 1][0]
            n += 1
    return total / ti.max(n, 1)


def resident_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def frame_pixels(window, scene, camera, canvas, art):
    """Draw `art` into the host's scene over a black background; count lit pixels."""
    canvas.set_background_color((0.0, 0.0, 0.0))
    scene.set_camera(camera)
    scene.ambient_light((0.8, 0.8, 0.8))
    tv.draw_voxels(scene, art)
    canvas.scene(scene)
    return int((window.get_image_buffer_as_numpy()[..., :3].max(axis=-1) > 0.05).sum())


try:
    if "nowindow" in sys.argv[6:]:
        raise RuntimeError("no window asked for")
    window = ti.ui.Window("host", (96, 96), show_window=False, vsync=False)
    scene, canvas, camera = window.get_scene(), window.get_canvas(), ti.ui.Camera()
    camera.position(0.0, 0.6, 2.4)
    camera.lookat(0.0, 0.0, 0.0)
except RuntimeError:  # no Vulkan driver: everything but the drawing is still checked
    window = None

mesh = tv.load_mesh(mesh_path)
report = dict(memory_mb=[], lit_pixels=[])
for seed in range(int(conversions)):
    art = tv.convert(mesh, resolution=int(resolution), colors=4, preset="test", clip="off",
                     seed=seed)
    if window is not None:
        report["lit_pixels"].append(frame_pixels(window, scene, camera, canvas, art))
    report["memory_mb"].append(resident_mb())

field, palette = art.to_field(), art.palette_field()
report.update(
    filled=art.filled_count, shape=list(art.shape), counted_in_host_kernel=count_filled(field),
    mean_red_in_host_kernel=float(mean_palette_red(field, palette)),
    mean_red_numpy=float(np.mean(art.rgb()[art.filled][:, 0]) / 255),
    round_trip=bool(np.array_equal(tv.VoxelArt.from_field(field, palette).indices, art.indices)),
    backend=tv.backend.info(), same_runtime=ti.lang.impl.get_runtime() is runtime,
    default_fp=str(ti.lang.impl.current_cfg().default_fp),
    own_intact=bool(np.array_equal(own.to_numpy(), np.arange(100))
                    and np.all(own_vec.to_numpy() == 0.5)))
try:
    tv.init(arch="cpu")
    report["init_under_host"] = "allowed"
except tv.BackendError as exc:
    report["init_under_host"] = str(exc)
print(json.dumps(report))
