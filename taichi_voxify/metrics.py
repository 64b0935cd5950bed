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

from .color import delta_e76, segment_distance, srgb_to_lab
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


# --- small features: what a viewer recognises a model by -----------------------------------
FEATURE_CONTRAST = 20.0  # ΔE76 a small feature's cell keeps from the cells around it
FEATURE_MAX_CELLS = 6  # a small feature: an eye, a mouth, a button
FEATURE_MIN_NEIGHBOURS = 5  # foreground 8-neighbours: features inside the silhouette, not its rim
_RING = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
_PLACES = [(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)]  # "the right place": the cell or one over


def _shifted(grid, dy, dx, fill):
    """grid (V, N, M, ...) shifted so out[:, r, c] = grid[:, r + dy, c + dx] (fill outside)."""
    pad = [(0, 0), (1, 1), (1, 1)] + [(0, 0)] * (grid.ndim - 3)
    padded = np.pad(grid, pad, constant_values=fill)
    n, m = grid.shape[1:3]
    return padded[:, 1 + dy:1 + dy + n, 1 + dx:1 + dx + m]


def small_features(lab, mask, contrast=FEATURE_CONTRAST):
    """Cells of (V, N, N) views that are small high-contrast features (eyes, buttons, mouths):
    foreground, at least FEATURE_MIN_NEIGHBOURS foreground 8-neighbours, a colour more than
    `contrast` ΔE76 from every one of them but at most two (a feature may be a short line),
    and not a mix of two of those it differs from (a cell on the border of two regions is not
    a feature: its colour lies within contrast / 2 of the Lab segment between theirs), in a
    connected group of at most FEATURE_MAX_CELLS such cells (longer ones are rims and stripes).
    Returns (features (V, N, N) bool, surround (V, N, N, 3): median Lab of the differing
    neighbours, the colour the feature stands out from)."""
    nb_lab = np.stack([_shifted(lab, dy, dx, 0.0) for dy, dx in _RING])
    nb_mask = np.stack([_shifted(mask, dy, dx, False) for dy, dx in _RING])
    differs = nb_mask & (delta_e76(lab[None], nb_lab) > contrast)
    count = nb_mask.sum(0)
    features = mask & (count >= FEATURE_MIN_NEIGHBOURS) & (differs.sum(0) >= count - 2)
    for i in range(len(_RING)):
        for j in range(i + 1, len(_RING)):
            between = segment_distance(lab, nb_lab[i], nb_lab[j]) < contrast / 2
            features &= ~(differs[i] & differs[j] & between)
    features &= ~_large_parts(features)
    around = np.where(differs[..., None], nb_lab, np.nan)
    with np.errstate(all="ignore"):
        surround = np.nanmedian(np.where(features[None, ..., None], around, 0.0), axis=0)
    return features, surround


def _large_parts(cells):
    """Cells of (V, N, N) bool in 8-connected groups of more than FEATURE_MAX_CELLS."""
    from scipy import ndimage

    large = np.zeros_like(cells)
    for v in range(len(cells)):
        labels, _ = ndimage.label(cells[v], structure=np.ones((3, 3)))
        sizes = np.bincount(labels.ravel())
        large[v] = (labels > 0) & (sizes[labels] > FEATURE_MAX_CELLS)
    return large


def _same_family(lab, feature, surround):
    """Whether colours `lab` belong to the feature's colour family: they depart from the
    surround toward the feature by at least half the feature's contrast and lie within that
    contrast of the line from surround to feature. A mesh cell averages a small feature with
    what is around it, so a purer, stronger colour of the same kind (a black eye where the
    cell reads dark brown) counts; a colour off to the side (grey where the eye was) does not."""
    axis = feature - surround
    length2 = np.maximum((axis * axis).sum(-1), 1e-12)
    t = ((lab - surround) * axis).sum(-1) / length2
    off = delta_e76(lab, surround + t[..., None] * axis)
    return (t >= 0.5) & (off <= np.sqrt(length2))


def feature_recall(images, masks, mesh_rgb, mesh_masks, contrast=FEATURE_CONTRAST):
    """(fraction kept, number) of the mesh's small features (small_features of the mesh's
    N x N axis views) that the voxel views keep in the right place (the same cell or a
    4-neighbour) and colour family (see _same_family). images/mesh_rgb (V, N, N, 3) sRGB,
    masks/mesh_masks (V, N, N) bool; nan when the mesh shows no feature."""
    mesh_lab = srgb_to_lab(np.asarray(mesh_rgb, np.float64))
    features, surround = small_features(mesh_lab, np.asarray(mesh_masks, bool), contrast)
    total = int(features.sum())
    if total == 0:
        return float("nan"), 0
    art_lab = srgb_to_lab(np.asarray(images, np.float64))
    kept = np.zeros_like(features)
    for dy, dx in _PLACES:
        lab = _shifted(art_lab, dy, dx, 0.0)
        there = _shifted(np.asarray(masks, bool), dy, dx, False)
        kept |= there & _same_family(lab, mesh_lab, surround)
    return float((kept & features).sum() / total), total


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
        mask, step, first = first_filled(art.indices > 0, view, art.indices)
        images.append(lut[first])
        masks.append(mask)
        depths.append(np.where(mask, step / n, np.inf).astype(np.float32))
    return np.stack(images), np.stack(masks), np.stack(depths)


def first_filled(occupancy, view, values):
    """The first filled cell of each pixel's column in axis view `view`: (hit (N, N) bool,
    its step from the camera (N, N) int, 0 where none, and `values` (N, N, N) there)."""
    hit = view_volume(occupancy, view)
    step = np.argmax(hit, axis=2)
    first = np.take_along_axis(view_volume(values, view), step[..., None], axis=2)[..., 0]
    return hit.any(axis=2), step, first


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


def mesh_silhouettes(alpha, alpha_threshold=0.5):
    """(6, N, N) bool: mesh pixels covered more than alpha_threshold; a view where none is
    (an object thinner than half a voxel seen edge-on) takes every pixel it touches at all."""
    alpha = np.asarray(alpha)
    masks = alpha > alpha_threshold
    empty = ~masks.reshape(len(masks), -1).any(axis=1)
    masks[empty] = alpha[empty] > 0
    return masks


def evaluate_voxel_art(art, mesh_renders_axis, alpha_threshold=0.5):
    """Compare VoxelArt with the mesh's six axis-view renders (a Renders at N x N, views in
    VIEW_NAMES order; see mesh_axis_renders). A mesh pixel is covered as mesh_silhouettes
    says. Colour error (mean ΔE76 against the mesh's covered colour) and depth error are over
    pixels both cover, pooled over views; depth error is in box units and in voxel lengths.
    Feature recall: see feature_recall (nan when the mesh shows no small feature)."""
    images, masks, depths = render_voxels_axis(art)
    ref = mesh_renders_axis
    _check_renders(ref, masks.shape)
    ref_mask = mesh_silhouettes(ref.alpha, alpha_threshold)
    both = masks & ref_mask
    ious = [silhouette_iou(masks[v], ref_mask[v]) for v in range(len(VIEW_NAMES))]
    n = masks.shape[1]
    depth = depth_error(depths, ref.depth, both)
    recall, features = feature_recall(images, masks, ref.covered_rgb, ref_mask)
    return {
        "iou_per_view": dict(zip(VIEW_NAMES, ious)),
        "iou_mean": float(np.mean(ious)),
        "color_de76": color_error_de76(images, ref.covered_rgb, both),
        "feature_recall": recall,
        "features": features,
        "depth_error": depth,
        "depth_error_voxels": depth * n,
        "colors_used": len(art.colors_used()),
        "voxels_filled": art.filled_count,
    }


def _check_renders(ref, shape):
    for name in ("covered_rgb", "alpha", "depth"):
        if not hasattr(ref, name):
            raise InputError(f"mesh renders lack the {name!r} images")
        if getattr(ref, name) is None:
            raise InputError(f"mesh renders have no {name!r} images (render them with "
                             "render.render_views)")
    if np.asarray(ref.alpha).shape != shape:
        raise InputError(f"mesh renders must be the six axis views at the voxel resolution "
                         f"{shape}, got {np.asarray(ref.alpha).shape}")
    cams = getattr(ref, "cameras", None)
    if cams is not None and [getattr(c, "name", None) for c in cams] != list(VIEW_NAMES):
        raise InputError(f"mesh renders must be the axis views {', '.join(VIEW_NAMES)} in order")
