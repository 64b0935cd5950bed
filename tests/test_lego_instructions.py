"""Building instructions: one step per layer, parts per step, and a real browser renders them
(headless Chromium, when installed) with one printed page per step after the cover."""
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from taichi_voxify import VoxelArt
from taichi_voxify.color import rgb_to_hex
from taichi_voxify.lego import build_plan, catalog, write_lego
from taichi_voxify.lego.instructions import instructions_html

RED, BLUE = catalog.color_named("Red"), catalog.color_named("Blue")
CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser",
                                                "google-chrome"))), None)


def _plan(support=False):
    """Red tower, a blue ledge that hangs in the air at layer 3, a red slab on top."""
    idx = np.zeros((4, 4, 2), np.uint8)
    idx[0:2, 0:3, :] = 1
    idx[2:4, 2, :] = 2
    idx[:, 3, :] = 1
    return build_plan(VoxelArt(idx, [RED.rgb, BLUE.rgb]), name="ledge", support=support)


def test_one_step_per_layer_with_its_parts_and_the_hanging_brick_marked():
    plan = _plan()
    page = instructions_html(plan)
    steps = re.findall(r"<h2>Step (\d+) of (\d+): layer (\d+)</h2>", page)
    assert [(int(k), int(n), int(y)) for k, n, y in steps] == [(k, 4, k) for k in range(1, 5)]
    sections = page.split('<section class="page" id="step-')[1:]
    for (k, _, _), section in zip(steps, sections):
        layer = int(k) - 1
        new = [b for b in plan.bricks if b.layer == layer]
        counts = [int(n) for n in re.findall(r'<td class="n">(\d+)&times;', section)]
        assert sum(counts) == len(new)
        assert section.count('stroke="#111"') == len(new)  # new parts drawn in full colour
        for b in new:
            assert rgb_to_hex(plan.colors[b.color].rgb) in section
    assert "stroke-dasharray" in sections[2] and "stroke-dasharray" not in sections[1]
    assert "Parts list" in page and page.count('class="sw"') >= len(plan.bom())
    held = instructions_html(_plan(support=True))
    assert "hidden support" in held and "stroke-dasharray" not in held


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed "
                    "(apt-get install chromium) to render the instructions")
def test_chromium_renders_the_instructions_one_printed_page_per_step(tmp_path):
    plan = _plan()
    write_lego(plan, tmp_path / "ledge_lego")
    page = (tmp_path / "ledge_lego" / "instructions.html").as_uri()
    common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer"]
    pdf, shot = tmp_path / "ledge.pdf", tmp_path / "cover.png"
    subprocess.run(common + [f"--print-to-pdf={pdf}", page], capture_output=True, timeout=120)
    subprocess.run(common + [f"--screenshot={shot}", "--window-size=900,1200", page],
                   capture_output=True, timeout=120)
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf.read_bytes()))
    assert pages == 1 + 4  # the cover, then one page per layer
    cover = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    for color in (RED, BLUE):  # parts-list swatches and the model picture in LEGO colours
        assert (np.abs(cover - color.rgb).sum(-1) < 12).sum() > 50, color.name
