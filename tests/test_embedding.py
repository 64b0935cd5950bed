"""taichi_voxify inside a host Taichi program (tests/host_program.py, in its own process):
the host's runtime and fields survive, the results work in the host's kernels and scene, and
repeated conversions do not grow memory."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, mesh_path


def run_host(precision, mesh, resolution, conversions, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))  # this checkout's taichi_voxify
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "host_program.py"), precision,
                           str(mesh), str(resolution), str(conversions)],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    # exit 139 (a segfault reading the host's own field) was the bug this guards against
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check_host_program(report, precision):
    assert report["same_runtime"] and report["own_intact"]
    assert report["backend"]["started_by"] == "host"
    assert report["backend"]["precision"] == precision and precision in report["default_fp"]
    assert "already started Taichi" in report["init_under_host"]
    assert report["filled"] > 0 and report["counted_in_host_kernel"] == report["filled"]
    assert report["mean_red_in_host_kernel"] == pytest.approx(report["mean_red_numpy"],
                                                              abs=1e-5)
    assert report["round_trip"]
    if not report["lit_pixels"]:
        pytest.skip("GGUI needs Vulkan: apt-get install -y mesa-vulkan-drivers libvulkan1")
    assert min(report["lit_pixels"]) > 200  # the voxels cover part of the host's 96x96 frame


def test_f32_host_keeps_its_runtime_and_memory_stays_bounded(tmp_path):
    """Eight conversions of the cow at 16^3 in one host process. Kept alive, each one holds
    about 3.6 MB (measured: 268 -> 302 MB over eight); freed, the resident size stays flat
    (measured: +0.0 MB). The bound allows allocator noise, not a conversion's worth per run."""
    report = run_host("f32", mesh_path("spot/spot.obj"), 16, 8, tmp_path)
    memory = report["memory_mb"]
    assert memory[-1] - memory[1] < 8.0, memory  # from after the second (warm) conversion
    check_host_program(report, "f32")


def test_f64_host(tmp_path):
    report = run_host("f64", mesh_path("BoxVertexColors.glb"), 8, 1, tmp_path)
    check_host_program(report, "f64")
    assert report["shape"] == [8, 8, 8]


VULKAN_HOST = """
import json, sys
import numpy as np, taichi as ti
ti.init(arch=ti.vulkan)
if ti.lang.impl.current_cfg().arch != ti.vulkan:
    print(json.dumps(None)); sys.exit()
import taichi_voxify as tv
idx = np.zeros((6, 6, 6), np.uint8)
idx[2:4, 2:4, 2:4] = 1
art = tv.VoxelArt(idx, [[200, 30, 30]])
back = tv.VoxelArt.from_field(art.to_field(), art.palette_field())
try:
    tv.convert(sys.argv[1], resolution=8, preset="test", clip="off")
    refusal = None
except tv.BackendError as exc:
    refusal = str(exc)
print(json.dumps(dict(round_trip=bool(np.array_equal(back.indices, idx)), refusal=refusal)))
"""


def test_vulkan_host_keeps_fields_and_is_refused_conversions_in_one_line(tmp_path):
    mesh = str(mesh_path("BoxVertexColors.glb"))
    proc = subprocess.run([sys.executable, "-c", VULKAN_HOST, mesh], capture_output=True,
                          text=True, cwd=tmp_path, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    if report is None:
        pytest.skip("no Vulkan driver: apt-get install -y mesa-vulkan-drivers libvulkan1")
    assert report["round_trip"]
    assert "needs Taichi on cpu or cuda" in report["refusal"] and "vulkan" in report["refusal"]
    assert "\n" not in report["refusal"]


def test_public_names_from_the_top_level():
    import taichi_voxify as tv

    for name in ("convert", "VoxelArt", "load_mesh", "make_pixel_art", "extract_palette", "show",
                 "draw_voxels", "Options"):
        assert callable(getattr(tv, name)), name
    from taichi_voxify import extract_palette, make_pixel_art  # failed before: submodules only
    from taichi_voxify.palette import extract_palette as in_palette
    assert extract_palette is in_palette and make_pixel_art.__module__ == "taichi_voxify.pixelart"


def test_from_field_takes_a_palette_field_and_refuses_bad_indices():
    import numpy as np
    import taichi as ti

    from taichi_voxify import InputError, VoxelArt

    idx = np.zeros((3, 4, 5), np.uint8)
    idx[1, 2, 3], idx[0, 0, 0] = 2, 1
    art = VoxelArt(idx, [[255, 0, 0], [10, 200, 30]])
    back = VoxelArt.from_field(art.to_field(), art.palette_field())
    np.testing.assert_array_equal(back.indices, idx)
    np.testing.assert_array_equal(back.palette, art.palette)
    wide = ti.field(ti.i32, shape=(2, 2, 2))
    wide.fill(3)  # entry 3 of a 2-colour palette
    with pytest.raises(InputError, match="0..2"):
        VoxelArt.from_field(wide, art.palette)
    wide.fill(-1)
    with pytest.raises(InputError, match="0..2"):
        VoxelArt.from_field(wide, art.palette)


def test_embed_example_renders_the_voxels_with_its_own_kernel(tmp_path):
    """examples/embed.py: its own ti.init, a conversion, its own ray-marching kernel."""
    import numpy as np
    from PIL import Image

    shot = tmp_path / "embed.png"
    env = dict(os.environ, PYTHONPATH=str(ROOT),  # this checkout; the library's kernel cache
               TI_OFFLINE_CACHE_FILE_PATH=os.path.join(os.path.expanduser("~"), ".cache",
                                                       "taichi_voxify", "ti_cache"))
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "embed.py"), "--headless",
                           "--screenshot", str(shot), "--res", "16", "--preset", "test",
                           "--size", "96", "64"], capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    image = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert image.shape == (64, 96, 3)
    # floor, shadows and hazy sky have a saturation (max - min channel) up to 30; the cow's
    # muzzle and horns are the strongly coloured pixels (253 of them when measured), in the
    # middle of the frame
    ys, xs = np.nonzero(image.max(axis=-1) - image.min(axis=-1) > 40)
    assert len(ys) > 50 and 24 < xs.mean() < 72 and 8 < ys.mean() < 48, (len(ys), xs, ys)
