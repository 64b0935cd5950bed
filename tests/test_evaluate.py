"""voxify-eval (examples/evaluate.py) end to end on one small mesh: the table has a row per method and a mean
per method, the gallery is written, and our method keeps the mesh's shape at least as well as
plain voxelisation."""
import csv

import pytest

from conftest import mesh_path
from taichi_voxify.evaluation import METHODS, NO_CLIP_SCORE


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    from taichi_voxify.commands.evaluate import main

    code = main(["--meshes", str(mesh_path("alien.glb")), "--res", "16", "--colors", "5",
                        "--preset", "fast", "--out", str(out)])
    assert code == 0
    return out


def test_table_has_every_method_and_means(evaluation):
    lines = (evaluation / "results.md").read_text().strip().splitlines()
    assert len(lines) == 2 + 2 * len(METHODS)  # header, rule, rows, means
    assert all(line.count("|") == 12 for line in lines)
    assert [line.split("|")[2].strip() for line in lines[2:2 + len(METHODS)]] == list(METHODS)
    rows = list(csv.DictReader((evaluation / "results.csv").open()))
    assert [r["method"] for r in rows] == list(METHODS)
    assert all(r["clip_iqa"] == NO_CLIP_SCORE for r in rows)  # never a number from no weights
    assert all(int(r["colors_used"]) <= 5 for r in rows)
    assert all(0.0 <= float(r["feature_recall"]) <= 1.0 for r in rows)  # alien has features


def test_summary_has_a_table_per_metric(evaluation):
    text = (evaluation / "summary.md").read_text()
    assert text.count("| method | alien | mean |") == 4
    assert all(f"| {m} |" in text for m in METHODS)


def test_full_keeps_the_shape_as_well_as_voxelize(evaluation):
    rows = {r["method"]: r for r in csv.DictReader((evaluation / "results.csv").open())}
    assert float(rows["full"]["iou"]) >= float(rows["voxelize"]["iou"]) - 0.05
    assert float(rows["full"]["iou"]) >= 0.85


def test_gallery_written(evaluation):
    from PIL import Image

    with Image.open(evaluation / "gallery_alien.png") as im:
        assert im.width > len(METHODS) * 100 and im.height > 300
