"""Fine-tune your own voxel grid against your own six images with the engine's pieces, in your
own loop: no pipeline, no mesh, no Stage 1.

    python examples/engine_finetune.py --images my_views/ [--grid start.npz] [--colors 6]
                                       [--steps 300] [--out result.vox]
    python examples/engine_finetune.py            # a self-contained demo, no files needed

--images: six square PNGs named px nx py ny pz nz .png (or +x -x ...), one pixel per voxel
column, white or transparent background (the views are described in taichi_voxify/views.py).
--grid: a .npz with `density` (N,N,N), raw: opacity = 1 - exp(-softplus(density + shift)), and
optionally `rgb` (N,N,N,3) in [0, 1] to start the palette choice from; without it the grid
starts as a faint ball. The demo's targets are the six views of a two-coloured block, rendered
by the engine itself, and its grid starts as a grey ball.

Each step: set the quantizer's temperature, render the six views (palette logits quantized
where the rays go), compute the losses on the device, backward into the grid's gradients, and
an Adam step on what the backward touched. Nothing but the loss values (when printed) leaves
the device.
"""
import argparse
import sys

import numpy as np

from taichi_voxify import backend, engine
from taichi_voxify.errors import VoxifyError


def ball(n, radius=0.3):
    """A faint grey ball: raw density just above the activation's zero, grey colour."""
    g = (np.arange(n) + 0.5) / n - 0.5
    r = np.sqrt(sum(a ** 2 for a in np.meshgrid(g, g, g, indexing="ij")))
    density = np.where(r < radius, 1.0, -4.0) - engine.density_shift(engine.ALPHA_INIT)
    return density, np.full((n, n, n, 3), 0.5)


def demo_targets(n):
    """Six views of an opaque block, red above a blue base: (images, masks, palette)."""
    from taichi_voxify.stage2 import render_voxel_art

    occupancy = np.zeros((n, n, n), bool)
    lo, hi = n // 4, n - n // 4
    occupancy[lo:hi, lo:hi, lo:hi] = True
    index = np.zeros((n, n, n), int)
    index[:, n // 2:, :] = 1
    palette = np.array([[0.15, 0.25, 0.8], [0.85, 0.2, 0.15]])
    views = render_voxel_art(occupancy, index, palette)
    return views.rgb, views.opacity > 0.5, palette


def load_targets(directory, colors):
    from taichi_voxify.palette import extract_palette
    from taichi_voxify.pixelart import load_pixel_art_dir

    images, masks = load_pixel_art_dir(directory)
    palette = extract_palette(images, masks, colors) / 255.0
    return images.astype(np.float64), masks, palette


def load_grid(path, n):
    with np.load(path) as data:
        density = np.asarray(data["density"], np.float64)
        rgb = np.asarray(data["rgb"], np.float64) if "rgb" in data else np.full(
            density.shape + (3,), 0.5)
    if density.shape != (n, n, n) or rgb.shape != (n, n, n, 3):
        raise VoxifyError(f"{path}: the grid must be ({n},{n},{n}) to match the {n}x{n} images")
    return density, rgb


def temperature(step, steps):
    """Gumbel temperature: from 1 down to 0.2 over the run."""
    return 1.0 - 0.8 * step / max(steps - 1, 1)


def finetune(density, rgb, images, masks, palette, steps, log_every=10, seed=0):
    """The loop. Returns the grid and the loss history [(step, loss), ...]."""
    grid = engine.dense_grid(density, engine.initial_logits(rgb, palette), lr_density=0.1)
    quantizer = engine.PaletteQuantizer(palette, seed=seed)
    losses = engine.view_losses(images, masks, w_depth=0.0)
    renderer, history = grid.renderer, []
    for step in range(steps):
        quantizer.set_step(step, temperature(step, steps))
        renderer.forward(grid.density.value, grid.colour.value, quantizer)
        losses.compute(renderer.out, renderer.grads)
        if step % log_every == 0 or step == steps - 1:
            history.append((step, losses.values()["loss"]))
        renderer.backward(grid.density.value, grid.colour.value, grid.density.grad,
                          grid.colour.grad, quantizer)
        grid.adam_step(step + 1)
    return grid, history


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", help="folder of six pixel-art PNGs (default: the demo targets)")
    p.add_argument("--grid", help=".npz with the starting density (and rgb)")
    p.add_argument("--colors", type=int, default=6, help="palette size taken from the images")
    p.add_argument("--size", type=int, default=16, help="demo grid size")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--out", help="write the result as a MagicaVoxel .vox")
    args = p.parse_args(argv)
    try:
        backend.ensure_init()  # adopts nothing, starts Taichi only if it is not running
        if args.images:
            images, masks, palette = load_targets(args.images, args.colors)
        else:
            images, masks, palette = demo_targets(args.size)
        n = images.shape[1]
        density, rgb = load_grid(args.grid, n) if args.grid else ball(n)
        grid, history = finetune(density, rgb, images, masks, palette, args.steps)
        for step, loss in history:
            print(f"step {step:4d}  loss {loss:.5f}")
        if args.out:
            from taichi_voxify.export.vox import write_vox
            from taichi_voxify.voxelart import VoxelArt

            raw, logits = grid.arrays()
            occupancy = 1.0 - np.exp(-np.logaddexp(0.0, raw + grid.renderer.shift)) > 0.5
            art = VoxelArt.from_dense(occupancy, logits.argmax(-1),
                                      np.round(palette * 255).astype(np.uint8))
            write_vox(art, args.out)
            print(f"wrote {args.out}: {art.filled_count} voxels")
    except (VoxifyError, OSError) as exc:
        print(f"engine_finetune: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
