"""The command line: options refused with one line and the right exit code, nothing written;
a full run writes every file, whole, with a report whose figures come from the result."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, TEST_ARCH, mesh_path
from taichi_voxify.cli import main
from taichi_voxify.voxelart import VoxelArt

CONVERT = [sys.executable, str(ROOT / "examples" / "convert.py")]


def run_cli(args, tmp_path):
    proc = subprocess.run(CONVERT + args, capture_output=True, text=True, cwd=tmp_path,
                          timeout=300, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize("args, needle", [
    (["--res", "0"], "resolution"),
    (["--res", "10000"], "resolution"),
    (["--colors", "0"], "colour"),
    (["--colors", "300"], "colour"),
    (["--palette", "#12345g,#000000"], "#12345g"),
    (["--formats", "vox,fbx"], "fbx"),
    (["--preset", "slow"], "preset"),
    (["--clip", "maybe"], "clip"),
    (["--front", "+w"], "front"),
    (["--pixel-method", "blur"], "pixel_method"),
    (["--clip-weights", "no_such_checkpoint.pt"], "checkpoint"),
    (["--formats", "lego", "--res", "200"], "LEGO"),
    (["--lego-proportions", "tall"], "lego_proportions"),
    (["--res", "abc"], "--res"),
    (["no_such_mesh.obj"], "does not exist"),
    ([os.path.dirname(__file__)], "is a folder"),  # said 'does not exist'
    (["--seed", "-1"], "seed"),  # these two were internal errors (numpy, Taichi's C int)
    (["--seed", "4294967296"], "seed"),
])
def test_bad_options_exit_2_with_one_line(tmp_path, args, needle):
    code, out, err = run_cli(args + ["--out", str(tmp_path / "out")], tmp_path)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert needle.lower() in lines[0].lower()
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_corrupt_mesh_exits_1_with_one_line(tmp_path):
    bad = tmp_path / "broken.glb"
    bad.write_bytes(b"glTF\x02\x00\x00\x00garbage that is not a glb")
    code, out, err = run_cli([str(bad), "--out", str(tmp_path / "out"), "--preset", "test",
                              "--clip", "off", "--quiet"], tmp_path)
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and "broken.glb" in err, err
    assert not list((tmp_path / "out").glob("broken*"))


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    code, out, err = run_cli(["--out", str(blocker / "sub"), "--preset", "test"], tmp_path)
    assert code == 2 and "output folder" in err and "Traceback" not in err


def test_front_takes_a_negative_view_as_its_value(tmp_path):
    """`--front -z` (as the README writes it) was refused: argparse took -z for an option."""
    code, out, err = run_cli(["--front", "-z", "--res", "0", "--out", str(tmp_path / "o")],
                             tmp_path)
    assert code == 2 and "resolution" in err and "front" not in err, err


@pytest.mark.parametrize("args", [["--threads", "0"], ["--pixel-art", "/no/such/folder"]])
def test_failed_run_leaves_no_output_folder(tmp_path, args):
    """Failures after the output folder was made took back nothing: an empty folder stayed."""
    out = tmp_path / "new" / "out"
    code, _, err = run_cli([str(mesh_path("BoxVertexColors.glb")), "--res", "8", "--preset",
                            "test", "--clip", "off", "--quiet", "--out", str(out)] + args,
                           tmp_path)
    assert code in (1, 2) and err.startswith("error:") and "Traceback" not in err, err
    assert not (tmp_path / "new").exists()


@pytest.fixture(scope="module")
def alien_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("alien_out")
    argv = [str(mesh_path("alien.glb")), "--res", "16", "--colors", "4", "--preset", "test",
            "--clip", "off", "--out", str(out), "--quiet", "--seed", "3",
            "--formats", "vox,glb,obj,ply,npz,png,gif,lego", "--lego-support",
            "--lego-proportions", "brick"]
    assert main(argv) == 0
    return out


def test_full_run_writes_every_file(alien_run):
    names = {p.name for p in alien_run.iterdir()}
    for expected in ["alien.vox", "alien.glb", "alien.obj", "alien.mtl", "alien.ply",
                     "alien.npz", "alien_views.png", "alien_palette.png",
                     "alien_turntable.gif", "alien_lego", "alien_report.json"]:
        assert expected in names
    assert not [n for n in names if ".part" in n]  # no temporary files left behind
    assert (alien_run / "alien_lego" / "bom.csv").stat().st_size > 0


def test_lego_plan_follows_the_lego_flags(alien_run):
    lego = json.loads((alien_run / "alien_report.json").read_text())["exports"]["lego"]
    assert lego["proportions"] == "brick" and len(lego["bricks_per_layer"]) == 13  # 16 * 5/6
    assert lego["floating_bricks"] == 0  # the support holds every brick up
    assert sorted(p.name for p in (alien_run / "alien_lego").iterdir()) == [
        "bom.csv", "bricklink.xml", "instructions.html", "overview.png", "rebrickable.csv"]


def test_report_matches_the_result(alien_run):
    report = json.loads((alien_run / "alien_report.json").read_text())
    art = VoxelArt.load_npz(alien_run / "alien.npz")
    assert set(report["timings_s"]) == {"load", "render", "stage1", "pixel_art", "palette",
                                        "stage2", "export", "total"}
    assert report["result"]["voxels_filled"] == art.filled_count > 0
    assert report["result"]["colors_used"] == len(art.colors_used()) <= 4
    assert report["settings"]["seed"] == 3 and report["settings"]["resolution"] == 16
    assert art.shape == (16, 16, 16) and len(art.palette) <= 4
    # the silhouettes of the voxel art match the mesh's: the pipeline really worked
    assert report["metrics"]["iou_mean"] >= 0.85
    assert report["backend"]["arch"] == TEST_ARCH


def test_json_flag_prints_only_json(tmp_path):
    code, out, err = run_cli([str(mesh_path("BoxVertexColors.glb")), "--res", "8", "--colors",
                              "3", "--preset", "test", "--clip", "off", "--formats", "npz",
                              "--out", str(tmp_path / "o"), "--json"], tmp_path)
    assert code == 0, err
    report = json.loads(out)
    assert report["result"]["shape"] == [8, 8, 8]
    assert report["files"]["npz"] == ["BoxVertexColors.npz"]
