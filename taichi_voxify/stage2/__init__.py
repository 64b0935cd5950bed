"""Stage 2: six-view orthographic pixel-art fine-tuning with a palette-constrained Gumbel-Softmax.

The coarse field from Stage 1 is resampled to the target grid (N^3). Its density keeps training;
its colour is replaced by per-voxel logits over the palette. Every step renders the six axis
views with rays that run along voxel columns (kernels/ortho.py; a perspective variant stands in
for the paper's "w/o ortho" ablation) and fits them to the six pixel-art images:

    loss = w_pixel * MSE(colour, pixel art)                 (all pixels, over white)
         + w_alpha * mean(opacity^2 over background pixels)
         + w_depth * smooth-L1(depth - target) over foreground pixels
         + w_clip  * (1 - cos(CLIP(rendered patch), CLIP(mesh patch)))   every clip_every steps
         + w_class * palette cross-entropy                      (logits only; axis views only)

The palette cross-entropy uses the pixel-voxel alignment directly: every foreground pixel asks
the voxels its ray crosses, in proportion to their visibility, for its own palette index, and
each voxel's logits get sum over those pixels of -visibility * log softmax(logits)[index]. A
voxel that two views see and want in different colours (an eye on the face, cream from above)
then takes the colour most of its visibility asks for, where the squared colour error alone
settles on the palette colour nearest their mean (grey), which neither view shows.

The package, by job: config (settings, presets), inputs (checks, Stage 1's field on the grid),
ops (renderers, quantizer), losses (image losses on the device), grid (per-voxel state and its
passes; dense here, block-sparse elsewhere), trainer (the loop), result (occupancy, indices).

The result is an occupancy grid (voxel opacity above a threshold, optionally with the closed
interior filled) and one palette index per voxel (argmax of its logits), so every filled voxel
holds exactly one palette colour.
"""
from .config import PRESETS, Stage2Config
from .grid import AdamParam, DenseGrid
from .inputs import check_inputs, resample_field, stage1_depth
from .losses import ViewLosses, palette_targets
from .ops import (AxisViewRenderer, PaletteQuantizer, PerspectiveRenderer, ViewRender,
                  density_threshold, gumbel_noise_table, initial_logits, perspective_cameras)
from .result import Stage2Result, fill_interior, render_voxel_art
from .trainer import Stage2Trainer, train_stage2

__all__ = ["AdamParam", "AxisViewRenderer", "DenseGrid", "PRESETS",
           "PaletteQuantizer", "PerspectiveRenderer", "Stage2Config", "Stage2Result",
           "Stage2Trainer", "ViewLosses", "ViewRender", "check_inputs", "density_threshold",
           "fill_interior", "gumbel_noise_table", "initial_logits", "palette_targets",
           "perspective_cameras", "render_voxel_art", "resample_field", "stage1_depth",
           "train_stage2"]
