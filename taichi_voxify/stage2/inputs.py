"""What Stage 2 starts from: checked inputs, Stage 1's field on the target grid, its depth."""
import numpy as np

from ..cameras import axis_views
from ..coarse_field import CoarseField, softplus
from ..errors import InputError
from ..views import NUM_VIEWS


def softplus_inverse(y):
    y = np.maximum(y, 1e-30)
    return y + np.log(-np.expm1(-y))


def resample_field(coarse, n):
    """(density, rgb) of the coarse field on an n^3 grid (trilinear, cell centres aligned),
    with the density rescaled so the opacity per world length is kept."""
    from scipy.ndimage import map_coordinates

    r = coarse.resolution
    density = np.asarray(coarse.density, dtype=np.float64)
    rgb = np.asarray(coarse.rgb, dtype=np.float64)
    if r == n:
        return density, rgb
    src = (np.arange(n) + 0.5) * r / n - 0.5
    grid = np.stack(np.meshgrid(src, src, src, indexing="ij"))
    sample = lambda a: map_coordinates(a, grid, order=1, mode="nearest")  # noqa: E731
    thickness = softplus(sample(density) + coarse.shift) * (r / n)  # per new voxel length
    rgb = np.stack([sample(rgb[..., ch]) for ch in range(3)], axis=-1)
    return softplus_inverse(thickness) - coarse.shift, np.clip(rgb, 0.0, 1.0)


def _as_unit_float(image):
    a = np.asarray(image)
    return a.astype(np.float64) / 255.0 if a.dtype == np.uint8 else a.astype(np.float64)


def check_inputs(coarse, pixel_art, masks, palette, depth_target, mesh_views_hr, clip):
    pixel_art = _as_unit_float(pixel_art)
    if pixel_art.ndim != 4 or pixel_art.shape[0] != NUM_VIEWS or pixel_art.shape[3] != 3 \
            or pixel_art.shape[1] != pixel_art.shape[2]:
        raise InputError(f"pixel art must be (6, N, N, 3), got {pixel_art.shape}")
    n = pixel_art.shape[1]
    masks = np.asarray(masks, dtype=bool)
    if masks.shape != (NUM_VIEWS, n, n):
        raise InputError(f"masks must be (6, {n}, {n}), got {masks.shape}")
    palette = np.asarray(palette)
    if palette.ndim != 2 or palette.shape[1] != 3 or len(palette) < 1:
        raise InputError(f"palette must be (K, 3) uint8, got {palette.shape}")
    if not isinstance(coarse, CoarseField):
        raise InputError("Stage 2 needs the CoarseField made by Stage 1")
    if not np.all(np.isfinite(pixel_art)) or not np.all(np.isfinite(coarse.density)):
        raise InputError("Stage 2 inputs hold NaN or infinite values")
    if depth_target is not None and np.shape(depth_target) != (NUM_VIEWS, n, n):
        raise InputError(f"depth target must be (6, {n}, {n}), got {np.shape(depth_target)}")
    if clip is not None:
        if mesh_views_hr is None or np.ndim(mesh_views_hr) != 4 \
                or np.shape(mesh_views_hr)[0] != NUM_VIEWS:
            raise InputError("the CLIP loss needs the six high-resolution mesh views (6,H,H,3)")
    return n, pixel_art, masks, _as_unit_float(palette)


def stage1_depth(coarse, n):
    """Stage 1's own rendered depth of the six axis views (N x N), in box lengths from the entry
    face; NaN where the coarse field shows nothing."""
    depth = np.stack([coarse.render(cam, n)[1] for cam in axis_views()]).astype(np.float64)
    return np.where(np.isfinite(depth), depth, np.nan)
