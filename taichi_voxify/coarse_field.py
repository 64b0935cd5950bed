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
