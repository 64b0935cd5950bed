"""Stage 2's settings: learning rates, loss weights, the temperature schedule, presets."""
import dataclasses
from dataclasses import dataclass

from ..errors import OptionError


@dataclass
class Stage2Config:
    """Defaults are the `fast` preset: fewer steps than the authors' 6500, so the density
    learns 4x faster than their 5e-3 (measured on the shipped meshes at N=32: better silhouette
    IoU and colour error than 5e-3 at the same step count)."""

    iterations: int = 800
    lr_density: float = 2e-2
    lr_logits: float = 0.1
    lr_rgb: float = 5e-3  # continuous colours of the use_gumbel=False ablation
    w_pixel: float = 10.0
    w_alpha: float = 20.0
    w_depth: float = 20.0
    w_clip: float = 1.0
    w_class: float = 1.0  # palette cross-entropy on the logits (0: the paper's losses only)
    depth_loss: str = "smooth_l1"  # or "l1"
    depth_beta: float = 0.02  # smooth-L1 knee, in box lengths
    clip_every: int = 25  # a CLIP step every k iterations (~1.3 s each, ViT-B-32, 2 cores)
    clip_patches_per_view: int = 1
    clip_patch_cells: int = 8  # patch width in voxels (pixels of the N x N view)
    # Gumbel temperature: (fraction of iterations, tau) steps; hard (straight-through) after
    # `hard_from` of the iterations, as the authors' 5000 of 6500.
    tau_schedule: tuple = ((0.0, 1.0), (0.2, 0.8), (0.4, 0.5), (0.55, 0.3), (0.7, 0.1))
    hard_from: float = 0.77
    logit_scale: float = 0.1  # initial logit_n = -||rgb - c_n|| / logit_scale
    occupancy_alpha: float = 0.5  # a voxel is filled when its opacity exceeds this
    fill: bool = False  # fill the closed interior
    skip_alpha: float = 1e-4  # columns whose voxels are all below this opacity are skipped
    t_min: float = 1e-4  # rays stop when their transmittance falls to this
    # refresh the skipped columns' spans every k steps (a full pass over the density): a voxel
    # outside every view's span gets no gradient, so spans only grow through voxels another
    # view reaches, and a few steps' delay there changes nothing measurable
    span_every: int = 10
    perspective_distance: float = 2.5  # camera distance of the "w/o ortho" ablation
    noise_table_size: int = 1 << 18
    log_every: int = 10

    @classmethod
    def preset(cls, name, **overrides):
        if name not in PRESETS:
            raise OptionError(f"unknown Stage 2 preset {name!r}: choose one of "
                              f"{', '.join(PRESETS)}")
        cfg = dataclasses.replace(cls(), **PRESETS[name])
        return dataclasses.replace(cfg, **overrides) if overrides else cfg

    def validate(self):
        if self.iterations < 1:
            raise OptionError(f"Stage 2 needs at least one iteration, got {self.iterations}")
        if self.depth_loss not in ("smooth_l1", "l1"):
            raise OptionError(f"depth_loss must be 'smooth_l1' or 'l1', got {self.depth_loss!r}")
        if not 0.0 < self.occupancy_alpha < 1.0:
            raise OptionError(f"occupancy_alpha must lie in (0, 1), got {self.occupancy_alpha}")
        if self.clip_every < 1 or self.clip_patch_cells < 1 or self.span_every < 1:
            raise OptionError("clip_every, clip_patch_cells and span_every must be at least 1")
        if any(tau <= 0 for _, tau in self.tau_schedule) or not self.tau_schedule:
            raise OptionError("the temperature schedule needs positive temperatures")
        return self

    def temperature(self, step):
        """(tau, hard) at iteration `step` (0-based)."""
        frac = step / self.iterations
        tau = self.tau_schedule[0][1]
        for start, value in self.tau_schedule:
            if frac >= start:
                tau = value
        return tau, frac >= self.hard_from


PRESETS = {
    "test": dict(iterations=60, log_every=5, clip_every=1),
    "fast": dict(),
    "paper": dict(iterations=6500, lr_density=5e-3, w_depth=20.0, clip_every=1,
                  clip_patches_per_view=1, hard_from=5000 / 6500),
}
