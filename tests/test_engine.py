"""The engine namespace driven from a user's own loop: examples/engine_finetune.py at a tiny
size, with its own grid and its own six target images."""
import importlib.util

import numpy as np

from conftest import ROOT


def _example():
    spec = importlib.util.spec_from_file_location("engine_finetune",
                                                  ROOT / "examples" / "engine_finetune.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_finetune_example_loss_falls_and_the_grid_takes_the_targets_shape():
    example = _example()
    n = 8
    images, masks, palette = example.demo_targets(n)
    density, rgb = example.ball(n)
    grid, history = example.finetune(density, rgb, images, masks, palette, steps=60)
    losses = [loss for _, loss in history]
    assert losses[-1] < 0.2 * losses[0]
    raw, logits = grid.arrays()
    opacity = 1.0 - np.exp(-np.logaddexp(0.0, raw + grid.renderer.shift))
    block = np.zeros((n, n, n), bool)
    block[2:6, 2:6, 2:6] = True
    filled = opacity > 0.5
    assert (filled & block).sum() / (filled | block).sum() > 0.7
    top = logits[2:6, 5, 2:6].argmax(-1)  # the block's upper half is red (palette entry 1)
    assert (top == 1).mean() > 0.7


def test_finetune_example_command_line_writes_vox(tmp_path):
    out = tmp_path / "result.vox"
    assert _example().main(["--size", "8", "--steps", "20", "--out", str(out)]) == 0
    assert out.stat().st_size > 0
    assert _example().main(["--images", str(tmp_path / "missing")]) == 1
