"""Stage 2's image losses on the device (kernels/view_losses.py) and the palette cross-entropy's
targets."""
import numpy as np

from .. import ndarrays
from ..views import NUM_VIEWS


def palette_targets(pixel_art, masks, palette):
    """(6,N,N) int32: the palette index nearest each foreground pixel-art colour, -1 elsewhere."""
    dist = np.linalg.norm(pixel_art[..., None, :] - palette, axis=-1)
    return np.where(masks, np.argmin(dist, axis=-1), -1).astype(np.int32)


def surface_voxel_depth(depth, n):
    """The axis views' rendered depth of a ray whose first solid voxel holds the surface, for
    surface depths `depth` (box lengths from the entry face, NaN where none).

    The axis renderer places a solid voxel at its centre, (s + 0.5) / N. The voxel a surface at
    depth d fills is the first whose centre lies behind it, s = floor(d N + 0.5) (a solid
    voxelisation keeps the cells whose centres are inside; the metrics' depth is that voxel's
    entry face). Fitting the renderer's depth to d itself asked for the voxel whose centre is
    nearest d, one voxel too far forward where d lies in the back half of a voxel, so the depth
    term grew a layer on flat surfaces (the back of the Kenney character's head at N=32: side
    views' IoU 0.96). This target is one solid voxels meet exactly, so no half-transparent layer
    lowers the term."""
    steps = np.clip(np.floor(np.asarray(depth, np.float64) * n + 0.5), 0, n - 1)
    return (steps + 0.5) / n


class ViewLosses:
    """The pixel, alpha and depth losses of the six rendered views against their targets,
    which live on the device; `compute` writes the loss gradients into a renderer's `grads`
    without a host round trip, `values` reads the terms back (for logging only).

    depth_target: the surface's depth (box lengths from the entry face, NaN where none); the
    rendered depth is fitted to its surface_voxel_depth (the perspective ablation's rays do not
    follow the voxel columns, nor the mesh's axis views, and get the same target)."""

    def __init__(self, pixel_art, masks, depth_target, config):
        n = pixel_art.shape[1]
        cfg = config
        use_depth = depth_target is not None and cfg.w_depth > 0
        valid = masks & np.isfinite(depth_target) if use_depth else np.zeros_like(masks)
        if use_depth:
            depth_target = surface_voxel_depth(depth_target, n)
        self.targets = (ndarrays.from_numpy(pixel_art), ndarrays.from_numpy(masks),
                        ndarrays.from_numpy(np.where(valid, depth_target, 0.0)),
                        ndarrays.from_numpy(valid))
        scales = (1.0 / (NUM_VIEWS * n * n * 3), 1.0 / max(int((~masks).sum()), 1),
                  1.0 / max(int(valid.sum()), 1))
        self.weights = (cfg.w_pixel, cfg.w_alpha, cfg.w_depth if use_depth else 0.0)
        self.scalars = scales + self.weights + (cfg.depth_beta, int(cfg.depth_loss == "l1"))
        self.terms = ndarrays.zeros((NUM_VIEWS, n, n, 3))

    def compute(self, out, grads):
        """grads (g_rgb, g_depth, g_opacity) = the loss gradients of the outputs `out`."""
        from ..kernels.view_losses import axis_view_losses

        axis_view_losses(*out, *self.targets, *self.scalars, *grads, self.terms)

    def values(self):
        """{'loss', 'pixel', 'alpha', 'depth'} of the last compute."""
        pixel, alpha, depth = (float(v) for v in self.terms.to_numpy().sum(axis=(0, 1, 2)))
        total = sum(w * v for w, v in zip(self.weights, (pixel, alpha, depth)))
        return dict(loss=total, pixel=pixel, alpha=alpha, depth=depth)
