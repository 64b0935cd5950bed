import numpy as np
import pytest

from taichi_voxify import VoxelArt
from taichi_voxify.errors import BackendError

RED, BLUE = [230, 20, 20], [20, 20, 230]


@pytest.fixture(scope="module", autouse=True)
def _in_scratch_folder(tmp_path_factory):
    """GGUI's Dear ImGui writes imgui.ini into the working folder: keep it out of the repo."""
    import os

    old = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("ggui"))
    yield
    os.chdir(old)


@pytest.fixture(scope="module")
def viewer():
    from taichi_voxify import viewer as module

    if not module.vulkan_available():
        pytest.skip("GGUI needs Vulkan: apt-get install -y mesa-vulkan-drivers libvulkan1")
    return module


def _centre_cube(color=1):
    idx = np.zeros((6, 6, 6), np.uint8)
    idx[2:4, 2:4, 2:4] = color
    return VoxelArt(idx, [RED, BLUE])


def _reddish(px):
    px = px.astype(int)
    return px[..., 0] > 2 * px[..., 1] + 40 and px[..., 0] > 2 * px[..., 2] + 40


def test_headless_render_shows_the_red_cube_on_the_background(viewer):
    img = viewer.render_image(_centre_cube(), size=(96, 64), azimuth=30, elevation=20)
    assert img.shape == (64, 96, 3) and img.dtype == np.uint8
    assert _reddish(img[32, 48]) and _reddish(img[30, 46])
    for corner in (img[0, 0], img[0, -1], img[-1, 0], img[-1, -1]):
        assert tuple(corner) == (255, 255, 255)


def test_image_is_upright(viewer):
    idx = np.zeros((4, 4, 4), np.uint8)
    idx[:, 2:, :] = 1  # red on top
    idx[:, :2, :] = 2  # blue below
    img = viewer.render_image(VoxelArt(idx, [RED, BLUE]), size=(64, 64), elevation=0,
                              azimuth=0).astype(int)
    assert _reddish(img[24, 32]) and img[40, 32, 2] > img[40, 32, 0] + 60


def test_slicing_and_recolouring(viewer):
    art = _centre_cube()
    empty = viewer.render_image(art, size=(48, 48), layers=2)  # the cube starts at layer 2
    assert np.all(empty == 255)
    blue = viewer.render_image(art, size=(48, 48), palette=[BLUE, BLUE]).astype(int)
    assert blue[24, 24, 2] > blue[24, 24, 0] + 60


def test_reference_is_shown_on_the_left_and_screenshot_written(viewer, tmp_path):
    from PIL import Image

    ref = np.zeros((10, 10, 3), np.uint8)
    ref[..., 1] = 200  # green
    path = viewer.screenshot(_centre_cube(), tmp_path / "s.png", size=(128, 64), reference=ref)
    img = np.asarray(Image.open(path).convert("RGB")).astype(int)
    assert tuple(img[32, 32]) == (0, 200, 0)  # reference in the left half
    assert _reddish(img[32, 96])  # the model moved to the right half
    assert [p.name for p in tmp_path.iterdir()] == ["s.png"]


def test_draw_voxels_into_a_host_scene(viewer):
    import taichi as ti

    window = viewer.open_window("host", (48, 48), show_window=False)
    try:
        scene, canvas, cam = window.get_scene(), window.get_canvas(), ti.ui.Camera()
        cam.position(0.0, 0.0, 3.0)
        cam.lookat(0.0, 0.0, 0.0)
        canvas.set_background_color((1.0, 1.0, 1.0))
        scene.set_camera(cam)
        scene.ambient_light((1.0, 1.0, 1.0))
        art = _centre_cube()
        drawable = viewer.draw_voxels(scene, art)
        assert viewer.draw_voxels(scene, art) is drawable  # fields reused across frames
        canvas.scene(scene)
        buf = window.get_image_buffer_as_numpy()
        assert _reddish(np.round(buf[24, 24, :3] * 255))
    finally:
        window.destroy()


def test_missing_display_is_a_clear_error(viewer, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(BackendError, match="--headless"):
        viewer.open_window("x", (8, 8), show_window=True)


def test_missing_vulkan_names_what_to_install():
    import os
    import subprocess
    import sys

    code = ("from taichi_voxify import backend, viewer\n"
            "backend.init(arch='cpu')\n"
            "try:\n    viewer.open_window('x', (8, 8), show_window=False)\n"
            "except Exception as e:\n    print(type(e).__name__, e)\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, VK_ICD_FILENAMES="/nonexistent/icd.json",
               VK_DRIVER_FILES="/nonexistent/icd.json",
               PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert "BackendError" in out.stdout and "mesa-vulkan-drivers" in out.stdout


def test_palette_set_snaps_to_minecraft_blocks(viewer):
    from taichi_voxify.palette import named_palette_rgb

    blocks = {tuple(rgb) for rgb in named_palette_rgb("minecraft")}
    snapped = viewer.snapped_palette(np.array([[220, 30, 20], [250, 250, 250]], np.uint8),
                                     "minecraft")
    assert {tuple(rgb) for rgb in snapped} <= blocks and len({tuple(c) for c in snapped}) == 2
    assert "minecraft" in viewer.PALETTE_SETS


def test_palette_set_snaps_to_lego_colours(viewer):
    from taichi_voxify.palette import named_palette

    lego_red = next(rgb for n, _, rgb in named_palette("lego") if n == "Red")
    snapped = viewer.snapped_palette(np.array([[220, 30, 20], [20, 20, 230]], np.uint8), "lego")
    assert tuple(snapped[0]) == tuple(lego_red)
    v = viewer.Viewer(_centre_cube(), (32, 32), show_window=False)
    try:
        v.use_palette_set(1)
        np.testing.assert_array_equal(v.drawable.palette[0], lego_red)
        v.use_palette_set(0)
        np.testing.assert_array_equal(v.drawable.palette, v.art.palette)
    finally:
        v.window.destroy()


def test_interactive_frame_with_control_panel_runs_headless(viewer):
    v = viewer.Viewer(_centre_cube(), (160, 120), show_window=False)
    try:
        for _ in range(2):
            v.frame()  # panel widgets (sliders, colour edit, buttons) and render
        assert v.drawable.layers == 6 and v.selected == 0
        np.testing.assert_array_equal(v.drawable.palette, v.art.palette)
        assert _reddish(v.image()[60, 80])
    finally:
        v.window.destroy()


def _view_script():
    from taichi_voxify.commands import view

    return view


def test_view_script_headless_screenshot_and_one_line_errors(viewer, tmp_path, capsys):
    from taichi_voxify.export import write_vox

    view = _view_script()
    vox = tmp_path / "cube.vox"
    write_vox(_centre_cube(), vox)
    shot = tmp_path / "shot.png"
    assert view.main([str(vox), "--headless", "--screenshot", str(shot), "--size", "64x48",
                      "--azimuth", "10", "--elevation", "30"]) == 0
    assert shot.exists()
    vox.write_bytes(vox.read_bytes()[:40])  # truncated
    assert view.main([str(vox), "--headless", "--screenshot", str(shot)]) == 1
    assert view.main([str(vox), "--headless"]) == 2
    assert view.main([str(tmp_path / "cube.stl")]) == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3 and all(line.startswith("error: ") for line in errors)
