"""The differentiable voxel engine, for Taichi programs that drive their own training loop.

Everything here lives on the Taichi device and moves nothing to the host unless asked:

    DenseGrid         raw density (N,N,N) and palette logits (N,N,N,K) with their gradients
                      and Adam moments; `adam_step(t)` updates what the last backward touched
    AxisViewRenderer  the six axis views (+x -x +y -y +z -z, one ray per voxel column, table in
                      taichi_voxify/views.py): forward, and the hand-written backward into the
                      grid's gradients (palette logits are quantized where the rays go)
    PaletteQuantizer  the palette Gumbel-Softmax: set_step(step, tau, hard) before a render
    view_losses       pixel, alpha and depth losses of the six views against six target images,
                      writing the renderer's output gradients on the device
    masked_adam       the dense grids' Adam kernel (any (N,N,N[,C]) array, flagged blocks)
    initial_logits, density_shift, VIEWS

A minimal loop (examples/engine_finetune.py is a complete, documented one):

    grid = engine.dense_grid(density, engine.initial_logits(rgb, palette))
    quantizer = engine.PaletteQuantizer(palette, seed=0)
    losses = engine.view_losses(images, masks)
    for step in range(steps):
        quantizer.set_step(step, tau=1.0)
        grid.renderer.forward(grid.density.value, grid.colour.value, quantizer)
        losses.compute(grid.renderer.out, grid.renderer.grads)
        grid.renderer.backward(grid.density.value, grid.colour.value, grid.density.grad,
                               grid.colour.grad, quantizer)
        grid.adam_step(step + 1)

Start Taichi yourself (ti.init) or with taichi_voxify.init() before making any of these; every
array follows the running default float precision.
"""
from .coarse_field import density_shift
from .kernels.adam import masked_adam
from .stage2 import (AdamParam, AxisViewRenderer, DenseGrid, PaletteQuantizer, Stage2Config,
                     ViewLosses, initial_logits)
from .views import VIEWS

ALPHA_INIT = 1e-6  # the opacity a raw density of 0 has (DVGO's activation shift)

__all__ = ["AdamParam", "AxisViewRenderer", "DenseGrid", "PaletteQuantizer", "VIEWS",
           "ViewLosses", "dense_grid", "density_shift", "initial_logits", "masked_adam",
           "view_losses"]


def dense_grid(density, logits, shift=None, lr_density=2e-2, lr_logits=0.1, skip_alpha=1e-4,
               t_min=1e-4):
    """A DenseGrid from numpy raw density (N,N,N) and palette logits (N,N,N,K), with its
    six-view renderer (`grid.renderer`). shift: the density activation's shift (default
    density_shift(ALPHA_INIT)); opacity of one voxel = 1 - exp(-softplus(density + shift)).
    Voxels under skip_alpha opacity are skipped; rays stop at transmittance t_min."""
    from . import backend

    backend.ensure_init()
    shift = density_shift(ALPHA_INIT) if shift is None else float(shift)
    config = Stage2Config(lr_density=lr_density, lr_logits=lr_logits, skip_alpha=skip_alpha,
                          t_min=t_min)
    return DenseGrid(density, logits, shift, config)


def view_losses(images, masks, depth=None, w_pixel=10.0, w_alpha=20.0, w_depth=20.0,
                depth_loss="smooth_l1", depth_beta=0.02):
    """ViewLosses against six target images (6,N,N,3) float sRGB over white, their foreground
    masks (6,N,N) and optionally target depths (6,N,N) from the entry face in box lengths (NaN
    where none). Weights as Stage 2's defaults."""
    import numpy as np

    config = Stage2Config(w_pixel=w_pixel, w_alpha=w_alpha, w_depth=w_depth,
                          depth_loss=depth_loss, depth_beta=depth_beta).validate()
    return ViewLosses(np.asarray(images, np.float64), np.asarray(masks, bool),
                      None if depth is None else np.asarray(depth, np.float64), config)
