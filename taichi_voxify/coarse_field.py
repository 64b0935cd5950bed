"""CoarseField: what Stage 1 hands to Stage 2 (and to previews).

A dense R^3 grid over the normalised box [-0.5, 0.5]^3; cell (i, j, k) has its centre at
((i + 0.5) / R - 0.5, (j + 0.5) / R - 0.5, (k + 0.5) / R - 0.5), axes as in VoxelArt.
Opacity follows DVGO: alpha = 1 - exp(-softplus(density + shift) * interval), where the interval is
measured in voxel lengths (a ray crossing one whole voxel uses interval 1) and
shift = log(1 / (1 - alpha_init) - 1).
"""
from dataclasses import dataclass, field

import numpy as np


def density_shift(alpha_init):
    return float(np.log(1.0 / (1.0 - alpha_init) - 1.0))


def softplus(x):
    return np.logaddexp(0.0, x)


@dataclass
class CoarseField:
    density: np.ndarray  # (R, R, R) raw density, before softplus and shift
    rgb: np.ndarray  # (R, R, R, 3) colour in [0, 1] (sRGB, as the renders)
    alpha_init: float = 1e-6
    metadata: dict = field(default_factory=dict)

    @property
    def resolution(self):
        return self.density.shape[0]

    @property
    def shift(self):
        return density_shift(self.alpha_init)

    def voxel_alpha(self, interval=1.0):
        """Opacity of each voxel for a ray crossing `interval` voxel lengths of it."""
        return 1.0 - np.exp(-softplus(self.density + self.shift) * interval)

    def render(self, camera, width, height=None, chunk=1 << 18):
        """Ray-march the field from `camera` at `width` x `height` pixels (Stage 1's renderer).

        height defaults to keeping the camera's aspect. Returns float32 arrays:
        rgb (H, W, 3) composited over white; depth (H, W), the expected termination distance
        along the ray from the camera origin in world units, sum(w_i t_i) / opacity, np.inf
        where the opacity is below 1e-4 (nothing there, as in the reference renders);
        opacity (H, W) = 1 - final transmittance.
        """
        from . import backend, ndarrays
        from .ray_march import RayMarch

        backend.ensure_init()
        if height is None:
            height = max(1, int(round(width * camera.height / camera.width)))
        origins, dirs = (a.reshape(-1, 3) for a in camera.rays(width, height))
        rays = RayMarch(origins, dirs, min(chunk, len(origins)), self.shift, RENDER_TERMINATION)
        out_rgb, out_depth, out_trans = rays.render_all(
            ndarrays.from_numpy(self.density), ndarrays.from_numpy(self.rgb),
            ndarrays.from_numpy(self.occupancy_mask()))
        opacity = 1.0 - out_trans
        with np.errstate(divide="ignore", invalid="ignore"):
            depth = np.where(opacity > 1e-4, out_depth / opacity, np.inf)
        shape = (height, width)
        return (out_rgb.reshape(shape + (3,)).astype(np.float32),
                depth.reshape(shape).astype(np.float32), opacity.reshape(shape).astype(np.float32))

    def occupancy_mask(self, thres=1e-7):
        """uint8 (R,R,R) mask of cells a ray must sample: alpha per half-voxel step above
        `thres` (skipped samples change a ray's transmittance by < 1e-4), dilated by one cell."""
        from scipy.ndimage import maximum_filter

        busy = self.voxel_alpha(interval=0.5) > thres
        return np.ascontiguousarray(maximum_filter(busy.astype(np.uint8), size=3))


RENDER_TERMINATION = 1e-4  # transmittance at which a ray stops, as in training
