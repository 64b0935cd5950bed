"""Batch conversion: inputs, manifest and resume, shared palette, local pool vs Ray, worker
crashes and the contact sheet. Tiny generated meshes at N=8 with the `test` preset."""
import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from taichi_voxify.batch import make_pool, run_batch, shared_palette
from taichi_voxify.batch.inputs import collect_assets
from taichi_voxify.batch.worker import convert_asset
from taichi_voxify.cli import main
from taichi_voxify.color import delta_e76, srgb_to_lab
from taichi_voxify.errors import OptionError
from taichi_voxify.options import Options

OPTIONS = Options(resolution=8, colors=4, preset="test", clip="off", formats="npz,png",
                  arch="cpu")
FLAGS = ["--res", "8", "--colors", "4", "--preset", "test", "--clip", "off", "--formats",
         "npz,png", "--arch", "cpu", "--quiet"]  # the same settings on the command line
GOOD = ("ball", "box", "post")


def _two_colour(mesh, top, bottom):
    v = mesh.vertices
    rgb = np.where((v[:, 1] > v[:, 1].mean())[:, None], top, bottom)
    mesh.visual.vertex_colors = np.c_[rgb, np.full(len(v), 255)].astype(np.uint8)
    return mesh


@pytest.fixture(scope="module")
def meshes(tmp_path_factory):
    """Three tiny coloured meshes and a corrupt GLB in one folder."""
    import trimesh

    folder = tmp_path_factory.mktemp("meshes")
    _two_colour(trimesh.creation.box((1, 0.6, 0.8)), [200, 40, 40], [40, 40, 200]) \
        .export(folder / "box.ply")
    _two_colour(trimesh.creation.icosphere(2), [240, 200, 20], [20, 160, 60]) \
        .export(folder / "ball.glb")
    _two_colour(trimesh.creation.cylinder(0.3, 1.0, sections=12), [250, 250, 250],
                [90, 50, 20]).export(folder / "post.glb")
    (folder / "broken.glb").write_bytes(b"glTF\x02\x00\x00\x00not a mesh at all")
    return folder


@pytest.fixture(scope="module")
def ray_session():
    pytest.importorskip("ray")
    from taichi_voxify.batch.ray_pool import start_local_ray

    ray = start_local_ray(num_cpus=2)
    yield ray
    ray.shutdown()


def _batch(inputs, out, pool, **kwargs):
    try:
        return run_batch(inputs, out, OPTIONS, pool, **kwargs)
    finally:
        pool.close()


def _manifest(out):
    lines = (out / "manifest.jsonl").read_text().splitlines()
    return {r["name"]: r for r in map(json.loads, lines)}, len(lines)


def _indices(out, name):
    with np.load(out / name / f"{name}.npz") as npz:
        return npz["indices"], npz["palette"]


# --- inputs ---------------------------------------------------------------------------------

def test_inputs_folders_globs_and_unique_names(tmp_path):
    for rel in ("a/chair.obj", "b/deep/chair.glb", "b/table.stl", "b/notes.txt", "c/lamp.ply",
                "out/old/chair.glb", "b/.hidden/x.glb"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    out = tmp_path / "out"
    assets = collect_assets([tmp_path / "a", tmp_path / "b", str(tmp_path / "c" / "*.ply"),
                             tmp_path / "a" / "chair.obj"], out)
    paths = [os.path.relpath(a.path, tmp_path) for a in assets]
    assert paths == ["a/chair.obj", "b/table.stl", "b/deep/chair.glb", "c/lamp.ply"]
    names = [a.name for a in assets]
    assert len(set(names)) == 4 and names[1] == "table" and names[3] == "lamp"
    assert names[0].startswith("chair-") and names[2].startswith("chair-")
    assert [a.name for a in collect_assets([tmp_path / "a", tmp_path / "b"], out)] == \
        names[:3]  # the same names on a re-run
    # the whole tree, with the output folder inside it, finds the outputs' meshes nowhere
    assert "out/old/chair.glb" not in [os.path.relpath(a.path, tmp_path)
                                       for a in collect_assets([tmp_path], out)]
    for bad, message in (([tmp_path / "nope.glb"], "does not exist"),
                         ([str(tmp_path / "*.fbx")], "matches no mesh"),
                         ([out / "old" / "chair.glb"], "inside the output folder"),
                         ([out / "old"], "inside the output folder"),
                         ([out], "also an input folder")):
        with pytest.raises(OptionError, match=message):
            collect_assets(bad, out)


# --- Ray and the local pool -----------------------------------------------------------------

def _voxify(*argv):
    """(exit status, what it printed on stderr) of `voxify ARGV...`."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        status = main(list(map(str, argv)))
    return status, err.getvalue()


def test_bad_batch_arguments_exit_2(tmp_path, meshes):
    for argv, message in ((["--out", tmp_path], "at least one INPUT"),
                          ([meshes, "--out", tmp_path, "--jobs", "0"], "--jobs"),
                          ([tmp_path / "nope", "--out", tmp_path], "does not exist"),
                          ([meshes, "--out", tmp_path, "--res", "7"], "resolution"),
                          ([meshes, "--out", tmp_path, "--pixel-art", tmp_path], "one mesh")):
        status, err = _voxify("batch", *argv)
        assert status == 2 and message in err and len(err.strip().splitlines()) == 1, err


@pytest.fixture(scope="module")
def ray_run(meshes, ray_session, tmp_path_factory):
    """`voxify batch` on the three meshes and the corrupt one on a local Ray, run twice into
    one folder."""
    out = tmp_path_factory.mktemp("ray") / "out"
    first = _voxify("batch", meshes, "--out", out, "--ray", *FLAGS)
    manifest_after_first = _manifest(out)
    second = _voxify("batch", meshes, "--out", out, "--ray", *FLAGS)
    return out, first, manifest_after_first, second


def test_ray_batch_manifest_and_resume(ray_run):
    out, (status, err), (manifest, lines), (status2, err2) = ray_run
    assert status == 1 and status2 == 1
    assert err.startswith("failed: broken (") and err2.startswith("failed: broken (")
    assert lines == 4 and manifest["broken"]["status"] == "failed"
    assert {n: r["status"] for n, r in manifest.items()} == {**dict.fromkeys(GOOD, "ok"),
                                                            "broken": "failed"}
    assert "truncated" in manifest["broken"]["error"] or "broken.glb" in manifest["broken"]["error"]
    for name in GOOD:
        record = manifest[name]
        assert record["sha256"] and record["settings"]["resolution"] == 8
        assert record["voxels"] > 0 and record["worker"]
        assert all((out / f).is_file() for f in record["files"])
        assert np.count_nonzero(_indices(out, name)[0]) == record["voxels"]
    # the re-run skips the three and tries the broken one again
    again, lines = _manifest(out)
    assert {n: r["status"] for n, r in again.items()} == {**dict.fromkeys(GOOD, "skipped"),
                                                         "broken": "failed"}
    assert lines == 4  # rewritten: still one line per asset
    assert again["ball"]["files"] == manifest["ball"]["files"]
    assert again["ball"]["finished"] == manifest["ball"]["finished"]


def test_local_pool_gives_the_same_voxels_as_ray(ray_run, meshes, tmp_path):
    ray_out = ray_run[0]
    status, err = _voxify("batch", meshes / "ball.glb", meshes / "box.ply",
                          str(meshes / "p*.glb"), "--out", tmp_path / "local", "--jobs", "2",
                          *FLAGS)
    assert status == 0 and err == ""
    for name in GOOD:
        local, ray = _indices(tmp_path / "local", name), _indices(ray_out, name)
        assert np.array_equal(local[0], ray[0]) and np.array_equal(local[1], ray[1])


def _rgb(hex_colors):
    return np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in hex_colors], np.uint8)


def test_ray_shared_palette(meshes, ray_run, tmp_path):
    records, shared = _batch([meshes], tmp_path, make_pool(ray="local"), shared=True)
    status = {r["name"]: r["status"] for r in records}
    assert status == {**dict.fromkeys(GOOD, "ok"), "broken": "failed"}
    saved = json.loads((tmp_path / "palette.json").read_text())
    assert saved["palette"] == shared and 2 <= len(shared) <= OPTIONS.colors
    assert (tmp_path / "palette.png").is_file()
    for name in GOOD:
        palette = ["#%02x%02x%02x" % tuple(c) for c in _indices(tmp_path, name)[1]]
        assert palette == shared
    # drawn from every asset: each asset's own palette (ray_run) has a colour near a shared one
    own = _manifest(ray_run[0])[0]
    for name in GOOD:
        lab_own, lab_shared = srgb_to_lab(_rgb(own[name]["palette"])), srgb_to_lab(_rgb(shared))
        assert delta_e76(lab_own[:, None], lab_shared[None]).min() < 20, (name, shared)


def test_shared_palette_merges_samples_and_takes_given_colours():
    red_asset = {"colors": ["#ff0000", "#f00000"], "weights": [0.5, 0.5]}
    blue_asset = {"colors": ["#0000ff"], "weights": [1.0]}
    merged = shared_palette.as_hex(shared_palette.from_samples([red_asset, blue_asset],
                                                               "kmeans", 2, 0))
    blue, red = sorted(merged)  # red's two shades weigh as much as blue: one colour each
    assert blue == "#0000ff" and red[3:] == "0000" and "f0" <= red[1:3] <= "ff"
    assert not shared_palette.needs_samples("#112233,#445566", 4)
    assert shared_palette.needs_samples("#112233,#445566,#778899", 2)  # must pick 2 of 3
    assert shared_palette.needs_samples("pico8", 4)
    assert shared_palette.given("#112233,#445566", 4) == ["#112233", "#445566"]


def convert_killed_once(task):
    """The real conversion, but the worker is killed half a second into its first try."""
    marker = os.path.join(task["out_dir"], f".killed-{task['name']}")
    if not os.path.exists(marker):
        open(marker, "w").close()
        threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGKILL)).start()
    return convert_asset(task)


@pytest.mark.parametrize("runner", ["local", "ray"])
def test_worker_killed_mid_asset_is_retried(runner, meshes, tmp_path, request):
    if runner == "ray":
        ray = request.getfixturevalue("ray_session")
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers lack tests/
        pool = make_pool(ray="local")
    else:
        pool = make_pool(jobs=1)
    records, _ = _batch([meshes / "box.ply", meshes / "broken.glb"], tmp_path, pool,
                        job=convert_killed_once)
    assert {r["name"]: r["status"] for r in records} == {"box": "ok", "broken": "failed"}
    assert (tmp_path / ".killed-box").exists()  # the first try really died
    if runner == "local":
        assert records[0]["attempts"] == 2
    manifest, lines = _manifest(tmp_path)  # every line parses
    assert lines == 2 and manifest["box"]["status"] == "ok"
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".box")]  # no half folder


def sleep_forever(task):
    time.sleep(60)


def test_local_pool_timeout(tmp_path, meshes):
    start = time.monotonic()
    records, _ = _batch([meshes / "box.ply"], tmp_path, make_pool(jobs=1, timeout=1.0),
                        job=sleep_forever)
    assert records[0]["status"] == "failed" and "timed out after 1 s" in records[0]["error"]
    assert time.monotonic() - start < 30


def test_contact_sheet_in_headless_chromium(ray_run, tmp_path):
    """The page a person opens: one card per asset, every picture found and shown by the
    browser, the failure with its error."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium: apt-get install -y chromium")
    page = (ray_run[0] / "index.html").as_uri()
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                          f"--user-data-dir={tmp_path}", "--virtual-time-budget=5000",
                          "--dump-dom", page], capture_output=True, text=True, timeout=120).stdout
    assert dom.count('class="card"') == 4
    assert dom.count('class="status skipped"') == 3 and dom.count('class="status failed"') == 1
    assert dom.count('class="loaded"') == 3  # onload ran: each views picture was found
    error = dom.split('class="error">')[1].split("</p>")[0]
    assert "broken.glb" in error
