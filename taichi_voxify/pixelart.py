"""Algorithmic pixel art from high-resolution renders: the 2D supervision of Stage 2.

Pipeline for each view (all numpy, vectorised over every cell at once):
1. cell colours: each N x N cell of the render gets one colour. The default "kcentroid" runs a
   weighted 2-means in Lab on the cell's foreground pixels and takes the dominant cluster, but
   takes the minority cluster when it is a distinct colour that no neighbouring cell shows
   (thin dark features such as eyes, mouths and lines would otherwise vanish), and closes
   one-cell gaps where a thin strip narrows out of a region of its colour. Cluster colours
   are modes (mean-shift), not means, so blends of two regions do not enter the palette; a
   cell whose two clusters are one region's shades (closer than FEATURE_DELTA) offers its
   mean colour. Each cell offers the palette that colour (CellColors.lab) but is quantised
   by its look (CellColors.look): the mean of its pixels' Lab colours, or its kept feature's
   colour. Between two palette colours the Lab mean sides with the cell's majority (a 70/30
   cell reads its main colour), and where a palette colour lies nearer, as a shade of the
   boundary between two regions does, the cell takes it (at N=32 this lowers the targets'
   mean ΔE76 against the mesh's N x N views: Fox 5.44 -> 5.16, Robot 6.60 -> 3.93, spot
   3.60 -> 2.63, character 7.03 -> 6.81, alien 2.39 -> 1.79). A mean of light (linear
   sRGB) would lower it further but makes a 60% black cell white: eyes and dark lines fade.
   "gerstner" (after Gerstner et al. 2012, simplified): SLIC-like superpixels, one per cell,
   that follow colour edges, with a palette from deterministic annealing; "box" the mean
   colour; "nearest" the centre pixel (the plain downscaling baselines, still quantised).
2. mask: a cell is foreground when its mean alpha exceeds 0.5, or when it is a thin part
   (partly covered with no solid 4-neighbour: tails, legs, antennae thinner than half a cell;
   a part so thin that no cell around covers a fifth, however little of the cell it covers,
   so a needle stays a line) or joins a thin part to the body. A partly covered cell beside
   a solid one is that part's edge, already shown, and stays out as it does in the mesh's
   alpha > 0.5 silhouette (widening it cost the shipped meshes up to 0.05 IoU).
3. palette: one palette shared by all views (see palette.py) from the cells' colours, its
   twins spent on the cells' looks (palette.spend_twins); quantisation of the looks in Lab.
4. cleanup: a pixel whose eight neighbours all share another colour takes that colour, unless
   its own cell colour is clearly farther from that colour than from its own (a real feature).
5. optional outline: silhouette pixels take the nearest clearly darker palette colour.

Inputs are each pixel's covered colour (float sRGB: the mean colour of the object's samples in
that pixel, render.Renders.covered_rgb, with no background in it) and its coverage alpha; a
cell's colour is taken from its covered samples only (pixels weighted by their coverage), so
the edge of a dark object over white stays dark, and nothing needs un-blending. The result is
float32 sRGB in [0, 1] with white background and a boolean foreground mask.
"""
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .color import (delta_e76, lab_to_srgb, linear_to_lab, linear_to_srgb, pil_to_rgba8,
                    segment_distance, srgb_to_lab, srgb_to_linear)
from .errors import InputError, OptionError
from .palette import (DEFAULT_COLORS, check_colors, nearest_palette_index, parse_palette,
                      resolve_palette, spend_twins)
from .views import view_weights

PIXEL_METHODS = ("kcentroid", "gerstner", "box", "nearest")

SOLID_ALPHA = 0.5  # a cell whose mean alpha exceeds this is foreground
THIN_ALPHA = 0.2  # a thin part's cell next to solid cells needs at least this much coverage
FEATURE_DELTA = 25.0  # delta E between a cell's two clusters for the minority to be a feature
FEATURE_SHARE = 0.1  # the minority must cover at least this share of the cell's foreground
MODE_BANDWIDTH = 12.0  # delta E scale of the mean-shift that finds a cluster's typical colour
SIMILAR_DELTA = 15.0  # colours closer than this count as the same feature colour
CLEANUP_MARGIN = 10.0  # an isolated pixel stays when its cell is this much closer to its colour
OUTLINE_DARKER = 10.0  # an outline colour must be at least this much darker (L*)


@dataclass
class CellColors:
    """One view reduced to cells, before palette quantisation."""

    lab: np.ndarray  # (N, M, 3) the colour each cell offers the palette (white where empty)
    mask: np.ndarray  # (N, M) bool foreground
    feature: np.ndarray  # (N, M) bool: the colour is a kept minority feature
    look: np.ndarray = None  # (N, M, 3) the colour quantised to the palette (None: lab)

    def __post_init__(self):
        if self.look is None:
            self.look = self.lab


@dataclass
class PixelArtViews:
    images: np.ndarray  # (V, N, N, 3) float32 sRGB, white background
    masks: np.ndarray  # (V, N, N) bool
    indices: np.ndarray  # (V, N, N) int, palette index, -1 for background
    palette: np.ndarray  # (K, 3) uint8


# --- input checks ---------------------------------------------------------------------------

def _cell_shape(cells, height, width):
    shape = (cells, cells) if np.ndim(cells) == 0 else tuple(cells)
    if len(shape) != 2 or any(isinstance(c, bool) or not isinstance(c, (int, np.integer))
                              for c in shape):
        raise OptionError(f"cells must be an integer or a (rows, columns) pair, got {cells!r}")
    if min(shape) < 2:
        raise OptionError(f"cells must be at least 2, got {cells}")
    if shape[0] > height or shape[1] > width:
        raise OptionError(f"cells {shape[0]}x{shape[1]} exceed the image size {height}x{width}")
    return int(shape[0]), int(shape[1])


def _check_render(rgb, alpha):
    rgb = np.asarray(rgb)
    rgb = rgb.astype(np.float64) / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float64)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise InputError(f"render colour must be (H, W, 3), got {rgb.shape}")
    if alpha is None:
        alpha = alpha_from_white(rgb)
    else:
        alpha = np.asarray(alpha)
        alpha = alpha / 255.0 if alpha.dtype == np.uint8 else alpha.astype(np.float64)
    if alpha.shape != rgb.shape[:2]:
        raise InputError(f"render alpha {alpha.shape} does not match colour {rgb.shape[:2]}")
    if not (np.isfinite(rgb).all() and np.isfinite(alpha).all()):
        raise InputError("render holds NaN or infinite values")
    return np.clip(rgb, 0.0, 1.0), np.clip(alpha, 0.0, 1.0)


def alpha_from_white(rgb, tolerance=4.0 / 255.0):
    """Coverage for an image without alpha: everything but (near) pure white is foreground."""
    return (np.asarray(rgb).min(axis=-1) < 1.0 - tolerance).astype(np.float64)


# --- splitting a render into cells ----------------------------------------------------------

def _to_cells(array, rows, cols):
    """(H, W, ...) -> (rows, cols, P, ...) sub-pixels per cell.

    Sizes that are not multiples of the cell count are resampled (nearest) up to one.
    """
    h, w = array.shape[:2]
    sr, sc = -(-h // rows), -(-w // cols)  # ceil: never drop render detail
    if h != sr * rows:
        array = array[((np.arange(sr * rows) + 0.5) * h / (sr * rows)).astype(int)]
    if w != sc * cols:
        array = array[:, ((np.arange(sc * cols) + 0.5) * w / (sc * cols)).astype(int)]
    tail = array.shape[2:]
    blocks = array.reshape(rows, sr, cols, sc, *tail).swapaxes(1, 2)
    return blocks.reshape(rows, cols, sr * sc, *tail)


_OFFSETS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]


def _neighbours(grid, fill):
    """The eight shifted copies of a (N, M, ...) grid in _OFFSETS order, `fill` outside."""
    pad = [(1, 1), (1, 1)] + [(0, 0)] * (grid.ndim - 2)
    padded = np.pad(grid, pad, constant_values=fill)
    n, m = grid.shape[:2]
    return [padded[1 + dy:1 + dy + n, 1 + dx:1 + dx + m] for dy, dx in _OFFSETS]


def cell_mask(coverage):
    """Foreground cells from mean alpha: solid cells plus thin parts (see module docstring).

    A thin part's cell has no solid 4-neighbour and THIN_ALPHA coverage, or any
    coverage when no neighbour has more than THIN_ALPHA (the part is thinner than a fifth of
    a cell wherever it goes, and the only thing there: a needle, a wire stays a line, while
    the faint tip beyond a thicker part is left out); a partly covered cell between a thin
    part and a solid cell joins too, so a leg stays attached to the body.
    """
    solid = coverage > SOLID_ALPHA
    partial = (coverage > THIN_ALPHA) & ~solid
    faint = (coverage > 0) & ~partial & ~solid
    densest_neighbour = np.max(_neighbours(coverage, 0.0), axis=0)
    side = [_OFFSETS.index(o) for o in ((-1, 0), (0, -1), (0, 1), (1, 0))]
    touches_solid = np.any([_neighbours(solid, False)[i] for i in side], axis=0)
    thin = (partial & ~touches_solid) | (faint & (densest_neighbour <= THIN_ALPHA))
    touches_thin = np.any([_neighbours(thin, False)[i] for i in side], axis=0)
    return solid | thin | (partial & touches_thin & touches_solid)


# --- cell colour methods --------------------------------------------------------------------

def _two_means(lab, w, iterations=5):
    """Weighted 2-means in every cell at once. lab (C, P, 3), w (C, P) -> centres, masses.

    Each centre then moves to its cluster's mode (see _seek_mode), so a cluster holding
    mostly white plus a little black reads white, not grey.
    """
    total = w.sum(1)
    c0 = _weighted_mean(lab, w, total, np.zeros((len(lab), 3), lab.dtype))
    far = np.where(w > 0, _squared_distance(lab, c0), -1.0).argmax(1)
    c1 = lab[np.arange(len(lab)), far]
    for _ in range(iterations):
        # nearer to c1 than to c0  <=>  x . (c1 - c0) > (|c1|^2 - |c0|^2) / 2
        proj = np.einsum("cpk,ck->cp", lab, c1 - c0)
        w1 = w * (proj > 0.5 * ((c1 * c1).sum(1) - (c0 * c0).sum(1))[:, None])
        w0 = w - w1
        m0, m1 = w0.sum(1), w1.sum(1)
        c0, c1 = _weighted_mean(lab, w0, m0, c0), _weighted_mean(lab, w1, m1, c1)
    return _seek_mode(lab, w0, c0), _seek_mode(lab, w1, c1), m0, m1


def _seek_mode(lab, w, centre, bandwidth=MODE_BANDWIDTH, steps=3):
    """Gaussian mean-shift steps toward the densest colour of a cluster (per cell)."""
    for _ in range(steps):
        d2 = _squared_distance(lab, centre)
        k = w * np.exp(-d2 / (2.0 * bandwidth ** 2))
        centre = _weighted_mean(lab, k, k.sum(1), centre)
    return centre


def _squared_distance(lab, centre):
    """Per-pixel squared distance (C, P) from its cell's centre (C, 3). The channels are added
    as np.sum adds them, but without its slow reduction over an axis three long."""
    d = lab - centre[:, None]
    d *= d
    return d[..., 0] + d[..., 1] + d[..., 2]


def _weighted_mean(lab, w, mass, fallback):
    """Per-cell weighted mean colour; `fallback` where a cell has no weight."""
    mean = np.einsum("cp,cpk->ck", w, lab) / np.maximum(mass, 1e-12)[:, None]
    return np.where(mass[:, None] > 1e-9, mean, fallback)


def _keep_features(major, minor, share, mask):
    """Cells whose minority colour is a distinct feature that no neighbour shows already.

    A minority that a neighbour shows as its main colour, or that lies between this cell's
    colour and a neighbour's (the blurred edge of a large patch), is not a feature.

    Kept: a minority covering FEATURE_SHARE of its cell (unless a neighbour holds clearly more
    of the same colour), and a smaller minority that is the largest piece of a feature split
    over a few cells whose pieces add up to FEATURE_SHARE (a nose straddling a cell corner).
    """
    cand = mask & (share > 0) & (delta_e76(major, minor) >= FEATURE_DELTA)
    shown = np.zeros_like(cand)
    for nb_major, nb_mask in zip(_neighbours(major, 1e3), _neighbours(mask, False)):
        shown |= nb_mask & (segment_distance(minor, major, nb_major) < SIMILAR_DELTA)
    cand &= ~shown
    order = np.arange(share.size).reshape(share.shape)
    piece_sum, beaten, not_largest = share * cand, np.zeros_like(cand), np.zeros_like(cand)
    for nb_cand, nb_minor, nb_share, nb_order in zip(
            _neighbours(cand, False), _neighbours(minor, 1e3), _neighbours(share, 0.0),
            _neighbours(order, -1)):
        same = nb_cand & (delta_e76(minor, nb_minor) < SIMILAR_DELTA)
        piece_sum = piece_sum + np.where(same, nb_share, 0.0)
        beaten |= same & (nb_share > 1.5 * share)
        not_largest |= same & ((nb_share > share) | ((nb_share == share) & (nb_order < order)))
    large = (share >= FEATURE_SHARE) & ~beaten
    gathered = ~not_largest & (piece_sum >= FEATURE_SHARE)
    keep = cand & (large | gathered)
    return keep | _bridges(major, minor, share, mask, keep)


def _bridges(major, minor, share, mask, keep):
    """Cells that close a one-cell gap in a thin strip of their minority colour.

    A strip that narrows next to a region of its colour would otherwise alternate: the cell
    touching the region is not a feature (the region shows that colour), the next one is. A
    cell bridges when cells on two opposite sides show its minority colour, unless its main
    colour runs through it the other way (then the cell is part of a thin line of that colour)
    or fewer than three neighbours show its main colour, or more than three show the minority
    colour (then the main colour is a small feature, say an eye, inside a region of the
    minority colour, and must not be painted over).
    """
    shown = np.where(keep[..., None], minor, major)
    nb_shown, nb_mask = _neighbours(shown, 1e3), _neighbours(mask, False)
    has_minor = [m & (delta_e76(minor, c) < SIMILAR_DELTA) for c, m in zip(nb_shown, nb_mask)]
    has_major = [m & (delta_e76(major, c) < SIMILAR_DELTA) for c, m in zip(nb_shown, nb_mask)]
    index = {offset: i for i, offset in enumerate(_OFFSETS)}
    bridge = np.zeros_like(keep)
    for (dy, dx), i in index.items():
        j, a, b = index[(-dy, -dx)], index[(dx, -dy)], index[(-dx, dy)]
        bridge |= has_minor[i] & has_minor[j] & ~(has_major[a] & has_major[b])
    sizeable = mask & (share >= FEATURE_SHARE) & (delta_e76(major, minor) >= FEATURE_DELTA)
    strip = (np.sum(has_major, axis=0) >= 3) & (np.sum(has_minor, axis=0) <= 3)
    return bridge & sizeable & strip & ~keep


def _kcentroid(cell_rgb, w, mask):
    rows, cols, p = w.shape
    w = w.reshape(-1, p)
    busy = w.sum(1) > 0  # only cells the object touches: the rest is background
    w = w[busy]
    # each pixel of those converted once for the three reductions (colour conversions of
    # every pixel of the large renders are most of the cost)
    linear = srgb_to_linear(cell_rgb.reshape(-1, p, 3)[busy])
    lab = linear_to_lab(linear)
    c0, c1, m0, m1 = _two_means(lab.astype(np.float32), w.astype(np.float32))
    major, minor = np.full((2, rows * cols, 3), 100.0)
    share = np.zeros(rows * cols)
    first = (m0 >= m1)[:, None]
    major[busy] = np.where(first, c0, c1)
    minor[busy] = np.where(first, c1, c0)
    share[busy] = np.minimum(m0, m1) / np.maximum(m0 + m1, 1e-12)
    major, minor = major.reshape(rows, cols, 3), minor.reshape(rows, cols, 3)
    feature = _keep_features(major, minor, share.reshape(rows, cols), mask)
    # one region's shading (no second colour in the cell): its mean, as a box filter reads it
    shading = delta_e76(major, minor) < FEATURE_DELTA
    box = _box_lab(_on_grid(_cell_mean(linear, w), busy, (rows, cols)))
    major = np.where(shading[..., None], box, major)
    look = np.where(feature[..., None], minor, _on_grid(_cell_mean(lab, w), busy, (rows, cols)))
    return np.where(feature[..., None], minor, major), look, feature


def _on_grid(values, busy, shape):
    """Values (B, C) of the busy cells on the (rows, cols) grid, 0 (no pixels' mean) elsewhere."""
    grid = np.zeros((busy.size, values.shape[-1]))
    grid[busy] = values
    return grid.reshape(*shape, -1)


def _cell_mean(values, w):
    """Per-cell mean of the pixels' values (..., P, C), weighted by their coverage w (..., P)."""
    return (w[..., None] * values).sum(-2) / np.maximum(w.sum(-1), 1e-12)[..., None]


def _box_lab(mean_linear):
    """Lab of a box filter's colours: means taken in linear light, through sRGB as stored."""
    return srgb_to_lab(linear_to_srgb(mean_linear))


def _nearest_pixel(rgb, w, sub_rows, sub_cols):
    """Colour of the foreground sub-pixel closest to each cell centre."""
    r, c = np.divmod(np.arange(sub_rows * sub_cols), sub_cols)
    dist = (r + 0.5 - sub_rows / 2) ** 2 + (c + 0.5 - sub_cols / 2) ** 2
    pick = np.where(w > 0, dist, np.inf).argmin(2)
    return srgb_to_lab(np.take_along_axis(rgb, pick[..., None, None], axis=2)[:, :, 0])


def cell_colors(render_rgb, render_alpha, cells, method="kcentroid"):
    """Reduce one render to cells: CellColors(lab, mask, feature) before quantisation.

    render_rgb: each pixel's covered colour (see the module docstring); render_alpha: its
    coverage (None: pure white is background)."""
    if method not in PIXEL_METHODS:
        raise OptionError(f"unknown pixel-art method {method!r}: "
                          f"choose from {', '.join(PIXEL_METHODS)}")
    rgb, alpha = _check_render(render_rgb, render_alpha)
    rows, cols = _cell_shape(cells, *alpha.shape)
    cell_alpha = _to_cells(alpha, rows, cols)
    mask = cell_mask(cell_alpha.mean(2))
    w = cell_alpha  # each pixel weighs by its covered samples: the background none
    cell_rgb = _to_cells(rgb, rows, cols)
    feature = np.zeros(mask.shape, bool)
    look = None
    if method in ("kcentroid", "gerstner"):
        lab, look, feature = _kcentroid(cell_rgb, w, mask)
        if method == "gerstner":  # superpixel colours, but kept features stay as they are
            lab = np.where(feature[..., None], lab, _superpixel_colors(rgb, alpha, mask, lab))
            look = None
    elif method == "box":
        lab = _box_lab(_cell_mean(srgb_to_linear(cell_rgb), w))
    else:
        sub_rows = -(-alpha.shape[0] // rows)
        lab = _nearest_pixel(cell_rgb, w, sub_rows, cell_rgb.shape[2] // sub_rows)
    white = np.array([100.0, 0.0, 0.0])
    lab = np.where(mask[..., None], lab, white)
    look = None if look is None else np.where(mask[..., None], look, white)
    return CellColors(lab=lab, mask=mask, feature=feature & mask, look=look)


# --- Gerstner et al. 2012: SLIC-like superpixels, one per output pixel -----------------------

SLIC_COMPACTNESS = 20.0  # Lab units per cell width: how strongly superpixels keep their place
SLIC_ITERATIONS = 5
SLIC_PIXELS_PER_CELL = 4  # renders are box-reduced to about this many pixels per cell side


def _superpixel_colors(rgb, alpha, mask, start_lab):
    """Mean colour of one adaptive superpixel per foreground cell (Gerstner et al. 2012).

    Each foreground render pixel joins the nearest of the superpixels of the 3 x 3 cells
    around it by distance  |Lab - colour|^2 + (compactness * |position - centre| / cell)^2;
    centres and colours move to their members' means, and centres are smoothed toward their
    neighbours (Laplacian), so superpixels follow colour edges while staying on the grid.
    start_lab: the initial colours (the k-centroid cell colours).
    Simplified from the paper: superpixels settle first and the palette is annealed on their
    colours afterwards (palette.py "anneal"), instead of interleaving the two.
    """
    rows, cols = mask.shape
    rgb, alpha = _reduce(rgb, alpha, int(min(alpha.shape[0] / rows, alpha.shape[1] / cols))
                         // SLIC_PIXELS_PER_CELL)
    h, w = alpha.shape
    cell = np.array([h / rows, w / cols])
    ys, xs = np.nonzero(alpha > 0)
    lab = srgb_to_lab(rgb[ys, xs])
    pos = np.stack([ys + 0.5, xs + 0.5], axis=1) / cell  # in cell units
    home = np.floor(pos).astype(int)
    cand = home[:, None, :] + np.array([(0, 0)] + _OFFSETS)[None]  # (n, 9, 2): own + 8 around
    inside = ((cand >= 0) & (cand < [rows, cols])).all(-1)
    cand = np.where(inside[..., None], cand, 0)
    cand_flat = cand[..., 0] * cols + cand[..., 1]
    valid = inside & mask.reshape(-1)[cand_flat]
    grid = np.stack(np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij"), -1) + 0.5
    centre, colour = grid.reshape(-1, 2).astype(np.float64), start_lab.reshape(-1, 3).copy()
    weight = alpha[ys, xs]
    for _ in range(SLIC_ITERATIONS):
        d = (((lab[:, None] - colour[cand_flat]) ** 2).sum(-1)
             + SLIC_COMPACTNESS ** 2 * ((pos[:, None] - centre[cand_flat]) ** 2).sum(-1))
        d = np.where(valid, d, np.inf)
        best = d.argmin(1)
        has = np.isfinite(d[np.arange(len(d)), best])
        label = cand_flat[np.arange(len(d)), best][has]
        mass = np.bincount(label, weights=weight[has], minlength=rows * cols)
        filled = mass > 0
        for target, values in ((colour, lab[has]), (centre, pos[has])):
            sums = np.stack([np.bincount(label, weights=weight[has] * values[:, i],
                                         minlength=rows * cols) for i in range(values.shape[1])], 1)
            target[filled] = sums[filled] / mass[filled, None]
        centre = _smooth_centres(centre.reshape(rows, cols, 2), mask).reshape(-1, 2)
    return np.where(mask[..., None], colour.reshape(rows, cols, 3), start_lab)


def _reduce(rgb, alpha, factor):
    """Average factor x factor blocks: coverage, and covered colour weighted by coverage."""
    if factor <= 1:
        return rgb, alpha
    h, w = (alpha.shape[0] // factor) * factor, (alpha.shape[1] // factor) * factor
    blocks = (h // factor, factor, w // factor, factor)
    a = alpha[:h, :w].reshape(blocks)
    covered = (rgb[:h, :w].reshape(*blocks, 3) * a[..., None]).sum((1, 3))
    mass = a.sum((1, 3))
    colour = np.where(mass[..., None] > 0, covered / np.maximum(mass, 1e-12)[..., None], 1.0)
    return colour, a.mean((1, 3))


def _smooth_centres(centre, mask, keep=0.6):
    """Laplacian smoothing: each centre moves toward the mean of its foreground 4-neighbours."""
    padded = np.pad(centre, ((1, 1), (1, 1), (0, 0)), mode="edge")
    pm = np.pad(mask, 1, constant_values=False)
    total, count = np.zeros_like(centre), np.zeros(mask.shape)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        nb_mask = pm[dy:dy + mask.shape[0], dx:dx + mask.shape[1]]
        total += padded[dy:dy + mask.shape[0], dx:dx + mask.shape[1]] * nb_mask[..., None]
        count += nb_mask
    mean = total / np.maximum(count, 1)[..., None]
    return np.where((count > 0)[..., None], keep * centre + (1 - keep) * mean, centre)


# --- palette, cleanup, outline --------------------------------------------------------------

def remove_isolated(index, cells, palette_lab):
    """A pixel whose 8 neighbours all share one other colour takes it, unless it is a feature.

    It stays when it was kept as a feature, or when its cell colour is clearly (CLEANUP_MARGIN)
    closer to its own palette colour than to the surrounding one: a one-cell eye stays, a pixel
    that only flipped because its colour sat between two palette entries goes.
    """
    nbs = _neighbours(index, -1)
    same = np.all([nb == nbs[0] for nb in nbs[1:]], axis=0)
    other = nbs[0]
    isolated = cells.mask & same & (other >= 0) & (other != index)
    own_d = delta_e76(cells.look, palette_lab[np.maximum(index, 0)])
    other_d = delta_e76(cells.look, palette_lab[np.maximum(other, 0)])
    replace = isolated & ~cells.feature & (other_d <= own_d + CLEANUP_MARGIN)
    return np.where(replace, other, index)


def darker_colors(palette_lab):
    """For each palette colour, the nearest colour at least OUTLINE_DARKER darker (or itself)."""
    target = palette_lab * np.array([0.55, 1.0, 1.0])
    d = delta_e76(target[:, None], palette_lab[None])
    too_light = palette_lab[None, :, 0] > palette_lab[:, None, 0] - OUTLINE_DARKER
    d[too_light] = np.inf
    best = d.argmin(1)
    return np.where(np.isfinite(d.min(1)), best, np.arange(len(palette_lab)))


def add_outline(index, mask, palette_lab):
    """Silhouette pixels (a 4-neighbour is background or outside) take a darker palette colour."""
    n = np.pad(mask, 1, constant_values=False)
    edge = mask & ~(n[:-2, 1:-1] & n[2:, 1:-1] & n[1:-1, :-2] & n[1:-1, 2:])
    return np.where(edge, darker_colors(palette_lab)[np.maximum(index, 0)], index)


def _quantise(cells, palette, palette_lab, outline, cleanup):
    index = np.where(cells.mask, nearest_palette_index(lab_to_srgb(cells.look), palette), -1)
    if cleanup:
        index = remove_isolated(index, cells, palette_lab)
    if outline:
        index = add_outline(index, cells.mask, palette_lab)
    return np.where(cells.mask, index, -1)


# --- public entry points --------------------------------------------------------------------

def make_pixel_art_views(renders_rgb, renders_alpha, cells=32, colors=DEFAULT_COLORS,
                         method="kcentroid", palette=None, weights=None, outline=False,
                         cleanup=True, seed=0):
    """Pixel art of several views sharing one palette (what Stage 2 learns from).

    renders_rgb (V, H, W, 3) float sRGB over white, renders_alpha (V, H, W) (or None: white is
    background). palette: None (kmeans_rare over the cell colours of all views; anneal for
    method "gerstner"), a method or named palette or hex list (see palette.parse_palette), or
    a uint8 (K, 3) array; named and given palettes with more than `colors` entries contribute
    the `colors` that fit the views best. weights: per view for the palette (default front x4
    when there are six views, in views.VIEW_NAMES order).
    Returns PixelArtViews(images, masks, indices, palette).
    """
    colors = check_colors(colors)
    per_view = view_cells(renders_rgb, renders_alpha, cells, method)
    pal = cells_palette(per_view, colors, palette, method, weights, seed)
    return quantise_views(per_view, pal, outline, cleanup)


def view_cells(renders_rgb, renders_alpha, cells=32, method="kcentroid", threads=1):
    """Each view reduced to cells (CellColors), before any palette is chosen; `threads` views
    at a time (numpy lets go of the GIL in the large array operations; the cells are the same
    whatever the number)."""
    if len(renders_rgb) == 0:
        raise InputError("no views to make pixel art from")
    alphas = [None] * len(renders_rgb) if renders_alpha is None else renders_alpha
    if len(alphas) != len(renders_rgb):
        raise InputError(f"{len(renders_rgb)} colour views but {len(alphas)} alpha views")
    with ThreadPoolExecutor(max(1, int(threads))) as pool:
        per_view = list(pool.map(lambda rgb, a: cell_colors(rgb, a, cells, method),
                                 renders_rgb, alphas))
    if not any(c.mask.any() for c in per_view):
        raise InputError("the renders are empty: no cell is covered by the object")
    return per_view


def cells_palette(per_view, colors, palette=None, method="kcentroid", weights=None, seed=0):
    """The shared uint8 (K, 3) palette of the views' cells (see make_pixel_art_views)."""
    lab = np.stack([c.lab for c in per_view])
    masks = np.stack([c.mask for c in per_view])
    if weights is None and len(per_view) == 6:
        weights = view_weights()
    if palette is None:
        palette = "anneal" if method == "gerstner" else "kmeans_rare"
    spec = parse_palette(palette, check_colors(colors))
    pal = resolve_palette(spec, lab_to_srgb(lab), masks, spec.k, weights, seed)
    if spec.kind != "method":  # named and given colours are the user's
        return pal
    looks = lab_to_srgb(np.stack([c.look for c in per_view]))
    return spend_twins(pal, looks, masks, weights)


def quantise_views(per_view, palette, outline=False, cleanup=True):
    """PixelArtViews of the cells, every foreground pixel a colour of `palette`."""
    pal = np.asarray(palette, dtype=np.uint8)
    pal_lab = srgb_to_lab(pal)
    indices = np.stack([_quantise(c, pal, pal_lab, outline, cleanup) for c in per_view])
    images = np.where(indices[..., None] >= 0, pal[np.maximum(indices, 0)] / 255.0, 1.0)
    masks = np.stack([c.mask for c in per_view])
    return PixelArtViews(images.astype(np.float32), masks, indices, pal)


def make_pixel_art(render_rgb, render_alpha, cells=32, colors=DEFAULT_COLORS, method="kcentroid",
                   palette=None, outline=False, cleanup=True, seed=0):
    """One render (H, W, 3) sRGB over white + alpha (H, W) -> (image (N, N, 3) float32, mask).

    cells: N, or (rows, columns) for non-square images; at most `colors` colours (2 to 32).
    H and W need not be multiples of N (the render is resampled to the next multiple).
    """
    alpha = None if render_alpha is None else [render_alpha]
    art = make_pixel_art_views([render_rgb], alpha, cells, colors, method, palette, None,
                               outline, cleanup, seed)
    return art.images[0], art.masks[0]


def apply_palette(images, masks, palette):
    """Snap every foreground pixel to its Lab-nearest palette colour (e.g. for one's own pixel
    art); background turns white. images (..., 3) float sRGB or uint8 -> float32."""
    palette = np.asarray(palette, dtype=np.uint8)
    masks = np.asarray(masks, dtype=bool)
    snapped = palette[nearest_palette_index(images, palette)] / 255.0
    return np.where(masks[..., None], snapped, 1.0).astype(np.float32)


# --- bring your own pixel art ---------------------------------------------------------------

VIEW_FILE_STEMS = {  # cameras.VIEW_NAMES order; each view accepts either spelling
    "+x": ("+x", "px"), "-x": ("-x", "nx"), "+y": ("+y", "py"),
    "-y": ("-y", "ny"), "+z": ("+z", "pz"), "-z": ("-z", "nz"),
}


def _find_view_file(directory, view):
    found = [directory / f"{stem}.png" for stem in VIEW_FILE_STEMS[view]
             if (directory / f"{stem}.png").is_file()]
    if len(found) > 1:
        raise InputError(f"both {found[0].name} and {found[1].name} in {directory}: keep one")
    return found[0] if found else None


def load_image(path, size=None):
    """Any image file -> (rgb (H, W, 3) float sRGB, alpha (H, W) float).

    rgb is the covered colour: the pixel's own colour, not composited (white where alpha is
    0), as cell_colors takes it. Without an alpha channel, pure white counts as background
    (see alpha_from_white). `size` (width, height), when given, is checked from the file's
    header before decoding.
    """
    from .budgets import decode_image, open_image

    image = open_image(path, f"image {path}", size=size)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    rgba = decode_image(image, pil_to_rgba8, f"image {path}").astype(np.float64) / 255.0
    alpha = rgba[..., 3] if has_alpha else alpha_from_white(rgba[..., :3])
    rgb = np.where(alpha[..., None] > 0, rgba[..., :3], 1.0)
    return rgb, alpha


def _header_size(path):
    from .budgets import open_image

    with open_image(path, f"pixel-art view {path}") as image:
        return image.size


def _read_png(path, size):
    rgb, alpha = load_image(path, size)
    mask = alpha > 0.5
    return np.where(mask[..., None], rgb, 1.0), mask


def load_pixel_art_dir(directory, cells=None):
    """Six pixel-art PNGs from any generator -> (images (6, N, N, 3) float32, masks (6, N, N)).

    Files are named by view, in either spelling: px.png nx.png py.png ny.png pz.png nz.png or
    +x.png -x.png +y.png -y.png +z.png -z.png (see cameras.py for what each view shows). The
    alpha channel is the mask (> 50%); without alpha, pure white is background. All six must be
    square, the same size, and N == cells when cells is given.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"pixel-art folder {directory} does not exist")
    paths = {view: _find_view_file(directory, view) for view in VIEW_FILE_STEMS}
    missing = [f"{VIEW_FILE_STEMS[v][1]}.png" for v, p in paths.items() if p is None]
    if missing:
        raise InputError(f"pixel-art folder {directory} lacks {', '.join(missing)} "
                         "(six views named px nx py ny pz nz .png, or +x -x ... .png)")
    sizes = {view: _header_size(path) for view, path in paths.items()}  # before decoding
    for view, (w, h) in sizes.items():
        if h != w:
            raise InputError(f"pixel-art view {paths[view].name} is {w}x{h}: views must be square")
        if h != sizes["+x"][1]:
            raise InputError(f"pixel-art views differ in size: {paths[view].name} is {w}x{h}, "
                             f"{paths['+x'].name} is {sizes['+x'][1]} pixels wide")
    size = sizes["+x"][1]
    if cells is not None and size != cells:
        raise InputError(f"pixel-art views are {size}x{size} but cells={cells} was asked for")
    loaded = [_read_png(paths[v], (size, size)) for v in VIEW_FILE_STEMS]
    images = np.stack([rgb for rgb, _ in loaded]).astype(np.float32)
    masks = np.stack([m for _, m in loaded])
    if not masks.any():
        raise InputError(f"pixel-art views in {directory} are all background")
    return images, masks
