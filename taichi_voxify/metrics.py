"""Evaluation metrics for voxel art against the mesh, in the six axis views (numpy only).

Views, pixels and depths follow the table in taichi_voxify/views.py: an N x N image of an axis
view has one pixel per voxel column of the N^3 grid; `view_volume` reorders a grid into (row,
col, step along the ray), so step 0 is the cell nearest the camera.

Voxel depth (`render_voxels_axis`) is the distance from the camera origin (on the box face) to
the ENTRY FACE of the first filled cell along the ray: step / N, in box units (0..1), np.inf
where the ray hits nothing: what a renderer of solid cubes sees, and the same quantity as the
mesh renderer's depth, which for a cell whose centre is inside lies within half a cell of it.
"""
import numpy as np

from .color import delta_e76, linear_to_srgb, srgb_to_lab, srgb_to_linear
from .errors import InputError
from .views import VIEW_NAMES, VIEWS, view_index

# --- colour ---------------------------------------------------------------------------------
def color_error_de76(img_a, img_b, mask):
    """Mean CIE ΔE76 between two sRGB images (..., 3) (float in [0, 1] or uint8) over the pixels
    where mask is true; nan when the mask is empty."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return float("nan")
    lab_a = srgb_to_lab(np.asarray(img_a)[mask])
    lab_b = srgb_to_lab(np.asarray(img_b)[mask])
    return float(delta_e76(lab_a, lab_b).mean())


# --- geometry -------------------------------------------------------------------------------
def silhouette_iou(a_mask, b_mask):
    """Intersection over union of two boolean masks (1.0 when both are empty)."""
    a, b = np.asarray(a_mask, dtype=bool), np.asarray(b_mask, dtype=bool)
    if a.shape != b.shape:
        raise InputError(f"masks differ in shape: {a.shape} vs {b.shape}")
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def view_volume(grid, view):
    """Reorder a grid (N, N, N, ...) into (row, col, step) for axis view `view` (name or index):
    out[r, c, s] is the cell that pixel (r, c)'s ray passes at step s from the camera."""
    index = int(view) if isinstance(view, (int, np.integer)) else view_index(view)
    (march, ms), (row, rs), (col, cs) = VIEWS[index].layout  # sign -1: index runs down
    out = np.moveaxis(np.asarray(grid), (row, col, march), (0, 1, 2))
    if rs < 0:
        out = out[::-1]
    if cs < 0:
        out = out[:, ::-1]
    if ms < 0:
        out = out[:, :, ::-1]
    return out


def six_view_silhouettes(occupancy):
    """(6, N, N) bool: which pixels of each axis view see at least one filled cell."""
    occ = np.asarray(occupancy, dtype=bool)
    return np.stack([view_volume(occ, v).any(axis=2) for v in VIEW_NAMES])


def render_voxels_axis(art):
    """Six axis views of VoxelArt at one pixel per column: float32 sRGB images (6, N, N, 3) on
    white, masks (6, N, N) bool, depth (6, N, N) float32 (entry face of the first filled cell,
    box units; np.inf where empty)."""
    n = art.indices.shape[0]
    if art.indices.shape != (n, n, n):
        raise InputError(f"axis views need a cubic grid, got {art.indices.shape}")
    lut = np.concatenate([np.ones((1, 3)), art.palette / 255.0]).astype(np.float32)
    images, masks, depths = [], [], []
    for view in VIEW_NAMES:
        cols = view_volume(art.indices, view)
        hit = cols > 0
        mask = hit.any(axis=2)
        step = np.argmax(hit, axis=2)
        first = np.take_along_axis(cols, step[..., None], axis=2)[..., 0]
        images.append(lut[first])
        masks.append(mask)
        depths.append(np.where(mask, step / n, np.inf).astype(np.float32))
    return np.stack(images), np.stack(masks), np.stack(depths)


def depth_error(depth_a, depth_b, mask):
    """Mean absolute difference of two depth maps over pixels where mask is true and both are
    finite; nan when there are none."""
    a, b = np.asarray(depth_a, np.float64), np.asarray(depth_b, np.float64)
    valid = np.asarray(mask, dtype=bool) & np.isfinite(a) & np.isfinite(b)
    return float(np.abs(a[valid] - b[valid]).mean()) if valid.any() else float("nan")


def mesh_axis_renders(mesh, resolution, supersample=3):
    """The mesh's six axis views at one pixel per voxel column (render.render_views).

    An odd supersample puts a sample on each pixel centre: depth then comes from the centre
    and `alpha > 0.5` is a majority of samples. With supersample=2, `alpha > 0.5` needs 3 of 4
    samples, which shrinks the reference silhouettes (alien at N=24: baseline IoU 0.82 vs 0.99
    with 3) and the depth comes from an off-centre sample.
    """
    from .cameras import axis_views
    from .render import render_views  # imported here: metrics itself needs no Taichi

    return render_views(mesh, axis_views(), resolution, supersample=supersample)


def uncomposite_white(rgb, alpha):
    """The foreground colour of sRGB pixels composited over white in linear light with
    coverage alpha (as render.py does): edge pixels lose their white tint. Pixels with no
    coverage stay white."""
    alpha = np.asarray(alpha, np.float64)[..., None]
    linear = srgb_to_linear(rgb)
    fg = np.where(alpha > 0, (linear - (1.0 - alpha)) / np.maximum(alpha, 1e-6), 1.0)
    return linear_to_srgb(np.clip(fg, 0.0, 1.0))


def evaluate_voxel_art(art, mesh_renders_axis, alpha_threshold=0.5):
    """Compare VoxelArt with the mesh's six axis-view renders (a Renders at N x N, views in
    VIEW_NAMES order; see mesh_axis_renders). A mesh pixel is covered when alpha exceeds
    alpha_threshold. Colour error (mean ΔE76, the mesh colour taken back off its white
    background) and depth error are over pixels both cover, pooled over views; depth error is
    in box units and in voxel lengths."""
    images, masks, depths = render_voxels_axis(art)
    ref = mesh_renders_axis
    _check_renders(ref, masks.shape)
    ref_mask = np.asarray(ref.alpha) > alpha_threshold
    both = masks & ref_mask
    ious = [silhouette_iou(masks[v], ref_mask[v]) for v in range(len(VIEW_NAMES))]
    n = masks.shape[1]
    depth = depth_error(depths, ref.depth, both)
    return {
        "iou_per_view": dict(zip(VIEW_NAMES, ious)),
        "iou_mean": float(np.mean(ious)),
        "color_de76": color_error_de76(images, uncomposite_white(ref.rgb, ref.alpha), both),
        "depth_error": depth,
        "depth_error_voxels": depth * n,
        "colors_used": len(art.colors_used()),
        "voxels_filled": art.filled_count,
    }


def _check_renders(ref, shape):
    for name in ("rgb", "alpha", "depth"):
        if not hasattr(ref, name):
            raise InputError(f"mesh renders lack the {name!r} images")
    if np.asarray(ref.alpha).shape != shape:
        raise InputError(f"mesh renders must be the six axis views at the voxel resolution "
                         f"{shape}, got {np.asarray(ref.alpha).shape}")
    cams = getattr(ref, "cameras", None)
    if cams is not None and [getattr(c, "name", None) for c in cams] != list(VIEW_NAMES):
        raise InputError(f"mesh renders must be the axis views {', '.join(VIEW_NAMES)} in order")
