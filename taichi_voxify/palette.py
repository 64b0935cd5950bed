"""Palettes: extracted from pixel-art views, named (LEGO, PICO-8), or given as hex colours.

All clustering happens in CIE Lab. Palettes are uint8 (K, 3) sRGB, ordered from the colour that
covers the most (weighted) pixels to the least. Extraction never invents duplicates: when the
images hold fewer than K distinct colours, the palette holds each of them once (fewer than K).

Methods (`extract_palette`):
- kmeans: weighted K-means (seeded k-means++ starts) on the distinct colours, then a few
  weighted-median steps (mean ΔE, not squared, is what is seen and measured);
- kmeans_rare: K-means, then while some colour lies farther from every centre than the two
  closest centres lie from each other, merge that pair and give the outlier its own centre,
  so small but distinct features (eyes, markings) keep their colour;
- maxmin: farthest-point sampling, starting from the most common colour;
- mediancut: split the box of largest weighted squared error along its widest Lab axis until
  K boxes, each box's mean being a colour; the cut goes where the two halves' squared error is
  least (the variance-based variant of median cut, which separates distinct clusters that a
  cut at the median would slice through);
- anneal: mass-constrained deterministic annealing (Rose 1998, as in Gerstner et al. 2012):
  soft assignments at a falling temperature; each colour carries a twin and splits in two
  when the twins drift apart, until K colours.
maxmin and mediancut are deterministic and ignore the seed; anneal uses it for the twins' nudge.
Every method ends the same way: two colours closer than TWIN_DELTA (shades of one region) merge
when a distinct colour with enough support is left out, which takes the freed slot; so when
the views hold K distinct colour regions, the palette gives each its colour.
"""
import csv
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .color import delta_e76, hex_to_rgb, lab_to_srgb, srgb_to_lab, to_uint8
from .errors import InputError, OptionError
from .palette_files import PALETTE_FILE_SUFFIXES, is_palette_file, read_palette_file
from .views import view_weights

PALETTE_METHODS = ("kmeans", "kmeans_rare", "maxmin", "mediancut", "anneal")
NAMED_PALETTES = ("lego", "pico8", "minecraft")
MIN_COLORS, MAX_COLORS = 2, 32
DEFAULT_COLORS = 8

RARE_MIN_SHARE = 0.001  # a rare colour must cover at least this share of the weighted pixels
RARE_RADIUS = 10.0  # delta E around a rare colour that counts as its support
# palette colours closer than this are twins: one region's shades, which Stage 2 splits the
# region between or drops one of; the slot goes to a distinct colour when the views have one
TWIN_DELTA = 10.0
KMEANS_STARTS = 4  # k-means++ starts; the least squared error wins
KMEANS_TOL = 1e-4  # Lloyd stops when the centres move less than this times the colours' variance
KMEANS_BLOCK = 256  # colours per distance product in a Lloyd step (scikit-learn's: bits)
_DATA_DIR = Path(__file__).resolve().parent / "data" / "palettes"


@dataclass(frozen=True)
class PaletteSpec:
    """What the user asked for: an extraction method, a named palette or explicit colours."""

    kind: str  # "method", "named" or "colors"
    method: str = None
    name: str = None
    colors: np.ndarray = None  # uint8 (M, 3) for kind "colors"
    k: int = None
    names: tuple = None  # a palette file's colour names, aligned with colors (None: unnamed)


def check_colors(k, what="number of colours"):
    """K must be an int from 2 to 32."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise OptionError(f"{what} must be an integer from {MIN_COLORS} to {MAX_COLORS}, got {k!r}")
    if not MIN_COLORS <= k <= MAX_COLORS:
        raise OptionError(f"{what} must be from {MIN_COLORS} to {MAX_COLORS}, got {k}")
    return int(k)


# --- named palettes ------------------------------------------------------------------------

@lru_cache(maxsize=None)
def _read_named(name):
    path = _DATA_DIR / f"{name}.csv"
    with open(path, newline="") as f:
        rows = csv.DictReader(line for line in f if not line.startswith("#"))
        return tuple((r["name"], int(r["id"]), hex_to_rgb(r["hex"])) for r in rows)


def named_palette(name):
    """[(colour name, id, (r, g, b)), ...] of a shipped palette (see NAMED_PALETTES); for "lego"
    the LEGO colours a build plan can use, id = Rebrickable colour id."""
    key = str(name).strip().lower()
    if key not in NAMED_PALETTES:
        raise OptionError(f"unknown named palette {name!r}: "
                          f"choose from {', '.join(NAMED_PALETTES)}")
    if key == "lego":
        from .lego.catalog import buildable_colors

        return [(c.name, c.rebrickable_id, c.rgb) for c in buildable_colors()]
    return list(_read_named(key))


def named_palette_rgb(name):
    return np.array([rgb for _, _, rgb in named_palette(name)], dtype=np.uint8)


# --- parsing user input ---------------------------------------------------------------------

def parse_hex_list(text):
    """'#ff0000,#0f0 ...' -> uint8 (M, 3); one-line OptionError naming a bad token."""
    tokens = [t for t in text.replace(",", " ").split() if t]
    colors = []
    for token in tokens:
        rgb = hex_to_rgb(token)
        if rgb is None:
            raise OptionError(f"bad colour {token!r} in palette: write colours as #rrggbb or #rgb")
        if rgb in colors:
            raise OptionError(f"colour {token!r} appears twice in the palette")
        colors.append(rgb)
    if not MIN_COLORS <= len(colors) <= MAX_COLORS:
        raise OptionError(f"a palette needs {MIN_COLORS} to {MAX_COLORS} colours, "
                          f"got {len(colors)}")
    return np.array(colors, dtype=np.uint8)


def parse_palette(spec, k=None):
    """A palette request -> PaletteSpec.

    spec: None (kmeans), a method name (kmeans, kmeans_rare, maxmin, mediancut), a named palette
    (lego, pico8, minecraft), a string of hex colours ('#ff0000,#00ff00,...'), a palette file
    (.gpl, .hex, Paint.NET .txt, .png; see palette_files), or an array of uint8 RGB.
    k: the number of colours wanted (2 to 32) or None for the default (8; all given colours for
    an explicit list).
    """
    if k is not None:
        k = check_colors(k)
    if spec is None:
        return PaletteSpec("method", method="kmeans", k=k)
    if isinstance(spec, PaletteSpec):
        return spec if k is None else PaletteSpec(spec.kind, spec.method, spec.name, spec.colors, k,
                                                  spec.names)
    if is_palette_file(spec):
        found = read_palette_file(spec)
        if len(found.colors) < MIN_COLORS:
            raise InputError(f"palette file {spec} holds {len(found.colors)} colour; "
                             f"a palette needs at least {MIN_COLORS}")
        return PaletteSpec("colors", colors=found.colors, k=k, names=found.names)
    if not isinstance(spec, str):
        colors = np.asarray(spec)
        if colors.ndim != 2 or colors.shape[1] != 3 or not MIN_COLORS <= len(colors) <= MAX_COLORS:
            raise OptionError(f"a palette array must be (K, 3) with K from {MIN_COLORS} to "
                              f"{MAX_COLORS}, got shape {colors.shape}")
        if colors.dtype != np.uint8:
            colors = to_uint8(colors)
        return PaletteSpec("colors", colors=colors, k=k)
    key = spec.strip().lower()
    if key in PALETTE_METHODS:
        return PaletteSpec("method", method=key, k=k)
    if key in NAMED_PALETTES:
        return PaletteSpec("named", name=key, k=k)
    if "," in key or key.startswith("#"):
        return PaletteSpec("colors", colors=parse_hex_list(key), k=k)
    raise OptionError(f"unknown palette {spec!r}: use {', '.join(PALETTE_METHODS + NAMED_PALETTES)},"
                      " hex colours like '#ff0000,#00ff00' or a palette file "
                      f"({', '.join(PALETTE_FILE_SUFFIXES)})")


# --- gathering pixels -----------------------------------------------------------------------

def _as_views(images, masks):
    images = np.asarray(images)
    masks = np.asarray(masks, dtype=bool)
    if images.ndim == 3:
        images, masks = images[None], masks[None]
    if images.ndim != 4 or images.shape[-1] != 3 or masks.shape != images.shape[:3]:
        raise InputError(f"palette input must be images (V, H, W, 3) with masks (V, H, W), got "
                         f"{images.shape} and {masks.shape}")
    return images, masks


def weighted_colors(images, masks, weights=None):
    """Distinct foreground colours (uint8 (U, 3)) and their summed per-view weights (U,)."""
    images, masks = _as_views(images, masks)
    if weights is None:
        weights = view_weights() if len(images) == 6 else np.ones(len(images))
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (len(images),) or np.any(weights < 0):
        raise OptionError(f"weights must be {len(images)} non-negative numbers, "
                          f"got {weights.tolist()}")
    rgb = images if images.dtype == np.uint8 else to_uint8(images)
    pixel_weight = np.broadcast_to(weights[:, None, None], masks.shape)[masks]
    pixels = rgb[masks]
    keep = pixel_weight > 0
    if not np.any(keep):
        raise InputError("no foreground pixels to take a palette from (all masks are empty)")
    codes = pixels[keep].astype(np.int64) @ np.array([65536, 256, 1])
    unique, inverse = np.unique(codes, return_inverse=True)
    summed = np.bincount(inverse, weights=pixel_weight[keep])
    colors = np.stack([unique >> 16, (unique >> 8) & 255, unique & 255], axis=1).astype(np.uint8)
    return colors, summed


# --- clustering in Lab ----------------------------------------------------------------------

def _nearest(points, centres):
    """Index of the nearest centre for each point, and the squared distance to it."""
    d2 = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
    idx = np.argmin(d2, axis=1)
    return idx, d2[np.arange(len(points)), idx]


def _kmeans(lab, w, k, seed):
    """Weighted K-means of the colours, then _median_steps.

    The best (least weighted squared error) of KMEANS_STARTS k-means++ starts, each refined by
    Lloyd steps: scikit-learn's KMeans(n_clusters=k, n_init=4, random_state=seed), step for
    step and with the same arithmetic, so the palettes are the ones it gave; importing it took
    half a second of every conversion, the clustering itself a tenth of that.
    """
    rng = np.random.RandomState(seed)
    tol = KMEANS_TOL * np.mean(np.var(lab, axis=0))
    mean = lab.mean(axis=0)
    x = lab - mean  # centred: the distances |c|^2 - 2 x.c lose less to rounding
    best = None
    for _ in range(KMEANS_STARTS):
        labels, error, centres = _lloyd_run(x, w, _kmeans_plusplus(x, w, k, rng), tol)
        # the same grouping with a hair less error is rounding, not a better clustering
        if best is None or (error < best[1] and not _same_partition(labels, best[0])):
            best = labels, error, centres
    return _median_steps(lab, w, best[2] + mean)


def _kmeans_plusplus(x, w, k, rng):
    """k-means++ starting centres: each next one the best (least weighted squared error) of
    2 + ln k candidates drawn with probability weight x squared distance to the centres."""
    norms = np.einsum("ij,ij->i", x, x)
    centres = np.empty((k, x.shape[1]))
    centres[0] = x[rng.choice(len(x), p=w / w.sum())]
    closest = _squared_distances(centres[:1], x, norms)
    error = closest @ w
    for c in range(1, k):
        draws = rng.uniform(size=2 + int(np.log(k))) * error
        picks = np.minimum(np.searchsorted(np.cumsum(w * closest), draws), closest.size - 1)
        dist = np.minimum(closest, _squared_distances(x[picks], x, norms))
        errors = dist @ w.reshape(-1, 1)
        best = np.argmin(errors)
        error, closest = errors[best], dist[best]
        centres[c] = x[picks[best]]
    return centres


def _squared_distances(a, x, x_norms):
    """(A, N) squared distances from points a to x, as |a|^2 + |x|^2 - 2 a.x, at least 0."""
    d = -2 * (a @ x.T)
    d += np.einsum("ij,ij->i", a, a)[:, None]
    d += x_norms[None, :]
    return np.maximum(d, 0, out=d)


def _lloyd_run(x, w, centres, tol, max_steps=300):
    """Lloyd steps until no colour changes centre, or the centres move less than `tol` (sum of
    squared shifts); then (labels, weighted squared error, centres)."""
    previous = None
    for _ in range(max_steps):
        labels = _assign(x, centres)
        centres, shift = _update_centres(x, w, centres, labels)
        if np.array_equal(labels, previous):
            break
        previous = labels
        if (shift ** 2).sum() <= tol:
            labels = _assign(x, centres)
            break
    else:
        labels = _assign(x, centres)
    return labels, _weighted_error(x, w, centres, labels), centres


def _assign(x, centres):
    """Nearest centre of each colour by |c|^2 - 2 x.c, in blocks of KMEANS_BLOCK colours, each
    one BLAS call alpha = -2, beta = 1 (the products of scikit-learn's Lloyd step, bit for bit)."""
    from scipy.linalg.blas import dgemm

    norms = np.einsum("ij,ij->i", centres, centres)
    labels = np.empty(len(x), np.int32)
    for start in range(0, len(x), KMEANS_BLOCK):
        block = x[start:start + KMEANS_BLOCK]
        dist = np.asfortranarray(np.repeat(norms[:, None], len(block), axis=1))
        dist = dgemm(-2.0, centres.T, block.T, 1.0, dist, trans_a=1, overwrite_c=1)
        labels[start:start + len(block)] = np.argmin(dist, axis=0)
    return labels


def _update_centres(x, w, old, labels):
    """The weighted mean of each centre's colours (summed in colour order); an empty centre
    takes the colour farthest from its own centre, or the heaviest centre when every colour
    sits on one. Returns (centres, how far each moved)."""
    sums, mass = np.zeros_like(old), np.zeros(len(old))
    np.add.at(sums, labels, x * w[:, None])
    np.add.at(mass, labels, w)
    empty = np.flatnonzero(mass == 0)
    if len(empty):
        dist = ((x - old[labels]) ** 2).sum(axis=1)
        far = np.argpartition(dist, -len(empty))[:-len(empty) - 1:-1]
        if dist.max() != 0:
            for new, i in zip(empty, far):
                sums[labels[i]] -= x[i] * w[i]
                sums[new] = x[i] * w[i]
                mass[new] = w[i]
                mass[labels[i]] -= w[i]
    heaviest = np.argmax(mass)
    for j in range(len(old)):  # in order: an empty centre copies the heaviest as it is then
        sums[j] = sums[j] * (1.0 / mass[j]) if mass[j] > 0 else sums[heaviest]
    return sums, np.sqrt(_row_squares(sums - old))


def _row_squares(d):
    """Squared length of each row of (N, 3) d, its terms added in order."""
    d = d * d
    return d[:, 0] + d[:, 1] + d[:, 2]


def _weighted_error(x, w, centres, labels):
    """Weighted sum of squared distances to the assigned centres, summed in colour order."""
    return np.cumsum(_row_squares(x - centres[labels]) * w)[-1]


def _same_partition(a, b):
    """Whether labels a group the colours as b does (each group of a within one group of b)."""
    pairs = np.unique(np.stack([a, b], 1), axis=0)
    return len(pairs) == len(np.unique(a))


def _median_steps(lab, w, centres, steps=10):
    """Weiszfeld steps: each centre moves toward the weighted geometric median of its colours.
    K-means minimises the squared colour error; the eye and the evaluation average the plain
    ΔE, which medians lower (spot at N=32: 3.89 -> 3.60) and outliers pull less."""
    centres = np.array(centres, dtype=np.float64)
    for _ in range(steps):
        owner, _ = _nearest(lab, centres)
        for j in range(len(centres)):
            mine = owner == j
            if mine.any():
                pull = w[mine] / np.maximum(delta_e76(lab[mine], centres[j]), 1e-3)
                centres[j] = pull @ lab[mine] / pull.sum()
    return centres


def _kmeans_rare(lab, w, k, seed):
    return _trade_twins_for_outliers(_kmeans(lab, w, k, seed), lab, w)


def _trade_twins_for_outliers(centres, lab, w, closer_than=np.inf, must_improve=False):
    """While some supported colour lies farther from every centre than the two closest
    centres (closer than `closer_than`) lie from each other, merge that pair and give the
    outlier its own centre; with `must_improve`, only while that lowers the colours' mean
    ΔE76 to the centres."""
    k = len(centres)
    min_support = max(RARE_MIN_SHARE * w.sum(), w.min())
    for _ in range(k - 1):
        rare = _supported_outlier(lab, w, centres, min_support)
        if rare is None:
            break
        pair_d = delta_e76(centres[:, None], centres[None])
        pair_d[np.diag_indices(k)] = np.inf
        a, b = np.unravel_index(np.argmin(pair_d), pair_d.shape)
        if rare[1] <= pair_d[a, b] or pair_d[a, b] >= closer_than:
            break
        owner, _ = _nearest(lab, centres)
        mass = np.array([w[owner == a].sum(), w[owner == b].sum()]) + 1e-12
        merged = (centres[a] * mass[0] + centres[b] * mass[1]) / mass.sum()
        traded = np.vstack([np.delete(centres, [a, b], axis=0), merged, rare[0]])
        if must_improve and _mean_error(lab, w, traded) >= _mean_error(lab, w, centres):
            break
        centres = traded
    return centres


def _mean_error(lab, w, centres):
    """Weighted mean ΔE76 from each colour to its nearest centre."""
    _, d2 = _nearest(lab, centres)
    return float(w @ np.sqrt(d2) / w.sum())


def _supported_outlier(lab, w, centres, min_support):
    """(colour, distance to the nearest centre) of the farthest supported colour, or None.

    Among the 64 colours farthest from every centre, each with at least `min_support` weight
    within RARE_RADIUS, the one whose support's mean colour (what would join the palette)
    lies farthest from the centres: the farthest single colour's support can centre on a
    colour the palette has already (a dark cluster's stray shade), and adding that would
    make a twin, not a new colour."""
    _, d2 = _nearest(lab, centres)
    best = None
    for i in np.argsort(-d2, kind="stable")[:64]:
        near = delta_e76(lab, lab[i]) < RARE_RADIUS
        if w[near].sum() >= min_support:
            colour = np.average(lab[near], axis=0, weights=w[near])
            dist = float(delta_e76(colour, centres).min())
            if best is None or dist > best[1]:
                best = (colour, dist)
    return best


def _maxmin(lab, w, k):
    chosen = [int(np.argmax(w))]
    dist = delta_e76(lab, lab[chosen[0]])
    for _ in range(k - 1):
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, delta_e76(lab, lab[nxt]))
    return lab[chosen]


def _median_cut(lab, w, k):
    boxes = [np.arange(len(lab))]
    while len(boxes) < k:
        errors = [_box_error(lab[b], w[b]) for b in boxes]
        worst = int(np.argmax(errors))
        if errors[worst] <= 0:
            break
        boxes[worst:worst + 1] = _split_box(lab, w, boxes[worst])
    return np.array([np.average(lab[b], axis=0, weights=w[b]) for b in boxes])


def _box_error(points, weights):
    mean = np.average(points, axis=0, weights=weights)
    return float((weights * ((points - mean) ** 2).sum(-1)).sum())


def _split_box(lab, w, box):
    """Cut along the axis of largest spread where the two halves' squared error is least."""
    pts, wts = lab[box], w[box]
    mean = np.average(pts, axis=0, weights=wts)
    axis = int(np.argmax((wts[:, None] * (pts - mean) ** 2).sum(0)))
    order = np.argsort(pts[:, axis], kind="stable")
    values, p, q = pts[order, axis], pts[order], wts[order]
    cw, cx, cxx = np.cumsum(q), np.cumsum(q[:, None] * p, 0), np.cumsum(q * (p * p).sum(1))
    left = cxx[:-1] - (cx[:-1] ** 2).sum(1) / cw[:-1]
    right = (cxx[-1] - cxx[:-1]) - ((cx[-1] - cx[:-1]) ** 2).sum(1) / (cw[-1] - cw[:-1])
    error = np.where(values[1:] > values[:-1], left + right, np.inf)  # cut between equal values: no
    cut = int(np.argmin(error)) + 1
    return [box[order[:cut]], box[order[cut:]]]


def _anneal(lab, w, k, seed, cooling=0.7, final_temperature=1.0, steps=20):
    rng = np.random.default_rng(seed)
    p = w / w.sum()
    mean = p @ lab
    spread = np.linalg.eigvalsh(((lab - mean).T * p) @ (lab - mean)).max()
    temperature = 2.0 * spread + 1.0  # above the first critical temperature: one cluster
    parents = [mean]
    while True:
        twins = np.array([c + rng.normal(scale=0.5, size=3) for c in parents])
        centres = np.vstack([parents, twins])
        mass = np.full(len(centres), 1.0 / len(centres))
        for _ in range(steps):
            d2 = ((lab[:, None] - centres[None]) ** 2).sum(-1)
            logits = np.log(mass)[None] - d2 / temperature
            resp = np.exp(logits - logits.max(1, keepdims=True))
            resp /= resp.sum(1, keepdims=True)
            mass = np.maximum(p @ resp, 1e-12)
            centres = (resp * p[:, None]).T @ lab / mass[:, None]
        n = len(parents)
        merged = [(centres[i] * mass[i] + centres[n + i] * mass[n + i]) / (mass[i] + mass[n + i])
                  for i in range(n)]
        parents = []
        for i in range(n):  # twins that separated are two colours now
            apart = delta_e76(centres[i], centres[n + i]) > 1.0
            if apart and len(parents) + (n - i) < k:
                parents += [centres[i], centres[n + i]]
            else:
                parents.append(merged[i])
        if len(parents) >= k or temperature < final_temperature:
            return _lloyd(lab, w, np.array(parents[:k]))  # the zero-temperature limit
        temperature *= cooling


def _lloyd(lab, w, centres, steps=10):
    """Hard weighted K-means steps from given centres (empty clusters keep their centre)."""
    for _ in range(steps):
        owner, _ = _nearest(lab, centres)
        mass = np.bincount(owner, weights=w, minlength=len(centres))
        sums = np.stack([np.bincount(owner, weights=w * lab[:, i], minlength=len(centres))
                         for i in range(3)], 1)
        centres = np.where(mass[:, None] > 0, sums / np.maximum(mass, 1e-12)[:, None], centres)
    return centres


def _finish(centres_lab, colors, lab, w, k):
    """uint8 palette of distinct colours ordered by covered weight.

    Centres that round to the same uint8 colour merge; the data colours farthest from the
    palette fill the gap, so K distinct colours come back whenever the data has K.
    """
    rgb = np.unique(to_uint8(lab_to_srgb(centres_lab)), axis=0)
    while len(rgb) < min(k, len(colors)):
        _, d2 = _nearest(lab, srgb_to_lab(rgb))
        rgb = np.unique(np.vstack([rgb, colors[np.argmax(d2)]]), axis=0)
    owner, _ = _nearest(lab, srgb_to_lab(rgb))
    mass = np.bincount(owner, weights=w, minlength=len(rgb))
    order = np.lexsort((np.arange(len(rgb)), -mass))
    return rgb[order]


def extract_palette(images, masks, k, method="kmeans", weights=None, seed=0):
    """K colours (uint8 (K, 3)) that represent the foreground of the images.

    images: (V, H, W, 3) float sRGB in [0, 1] or uint8 (or one (H, W, 3) image); masks: (V, H, W)
    bool foreground; weights: one per view (default: views.view_weights() for six views, else
    equal).
    Fewer than K colours come back only when the images hold fewer distinct colours.
    """
    k = check_colors(k)
    if method not in PALETTE_METHODS:
        raise OptionError(f"unknown palette method {method!r}: "
                          f"choose from {', '.join(PALETTE_METHODS)}")
    colors, w = weighted_colors(images, masks, weights)
    lab = srgb_to_lab(colors)
    if len(colors) <= k:
        return _finish(lab, colors, lab, w, k)
    if method == "kmeans":
        centres = _kmeans(lab, w, k, seed)
    elif method == "kmeans_rare":
        centres = _kmeans_rare(lab, w, k, seed)
    elif method == "maxmin":
        centres = _maxmin(lab, w, k)
    elif method == "anneal":
        centres = _anneal(lab, w, k, seed)
    else:
        centres = _median_cut(lab, w, k)
    return _finish(_trade_twins_for_outliers(centres, lab, w, TWIN_DELTA), colors, lab, w, k)


def spend_twins(palette, images, masks, weights=None):
    """`palette` (uint8 (K, 3)) with its twins (colours closer than TWIN_DELTA: shades of one
    region) given, a pair at a time, to the supported colour of `images` farthest from the
    palette, while that lowers the images' mean ΔE76 to the palette; `palette` itself when
    no trade does. Pixel art extracts its palette from the regions' colours and spends the
    twins on the cells' looks: a spare slot goes to the shade a boundary between two regions
    shows rather than to a second shade of one region (Fox at N=32: the light orange of its
    ears and of the orange/white boundary instead of a second white)."""
    colors, w = weighted_colors(images, masks, weights)
    lab, start = srgb_to_lab(colors), srgb_to_lab(palette)
    traded = _trade_twins_for_outliers(start, lab, w, TWIN_DELTA, must_improve=True)
    if traded.shape == start.shape and np.array_equal(traded, start):
        return np.asarray(palette, dtype=np.uint8)
    return _finish(traded, colors, lab, w, len(palette))


# --- choosing from a fixed set of colours ---------------------------------------------------

def fit_palette_subset(images, masks, candidates, k, weights=None):
    """The k colours of `candidates` (uint8 (M, 3)) that best fit the images.

    Greedy choice minimising the weighted sum of squared Lab distances from every foreground
    colour to its nearest chosen colour, then single swaps while they improve it. Returns all
    candidates when k >= M.
    """
    candidates = np.asarray(candidates, dtype=np.uint8)
    if k >= len(candidates):
        return candidates.copy()
    colors, w = weighted_colors(images, masks, weights)
    d2 = delta_e76(srgb_to_lab(candidates)[:, None], srgb_to_lab(colors)[None]) ** 2

    def cost(sel):
        return float((w * d2[sel].min(axis=0)).sum())

    chosen = []
    for _ in range(k):
        rest = [j for j in range(len(candidates)) if j not in chosen]
        chosen.append(min(rest, key=lambda j: cost(chosen + [j])))
    improved = True
    while improved:
        improved = False
        for slot in range(k):
            for j in range(len(candidates)):
                if j in chosen:
                    continue
                trial = chosen[:slot] + [j] + chosen[slot + 1:]
                if cost(trial) < cost(chosen) - 1e-9:
                    chosen, improved = trial, True
    return candidates[sorted(chosen)]


def resolve_palette(spec, images, masks, k=None, weights=None, seed=0):
    """Turn a palette request (see parse_palette) into uint8 (K, 3) colours for these images."""
    spec = parse_palette(spec, k)
    k = spec.k
    if spec.kind == "method":
        return extract_palette(images, masks, k or DEFAULT_COLORS, spec.method, weights, seed)
    if spec.kind == "named":
        return fit_palette_subset(images, masks, named_palette_rgb(spec.name),
                                  k or DEFAULT_COLORS, weights)
    return fit_palette_subset(images, masks, spec.colors, k or min(len(spec.colors), MAX_COLORS),
                              weights)


def nearest_palette_index(rgb, palette):
    """Index of the Lab-nearest palette colour for every colour in rgb (..., 3)."""
    lab = srgb_to_lab(rgb)
    pal = srgb_to_lab(np.asarray(palette))
    flat = lab.reshape(-1, 3)
    idx, _ = _nearest(flat, pal)
    return idx.reshape(lab.shape[:-1])


def palette_names(palette, spec):
    """The name of each palette colour where the request named its colours (a named palette
    such as lego, or a palette file with names), else None for that colour. A palette file
    gone since the run began only costs the names, not the finished conversion's files."""
    table = {}
    if isinstance(spec, str) and spec.strip().lower() in NAMED_PALETTES:
        table = {rgb: name for name, _, rgb in named_palette(spec)}
    elif is_palette_file(spec) and os.path.isfile(spec):
        found = read_palette_file(spec)
        table = {tuple(int(v) for v in c): n for c, n in zip(found.colors, found.names) if n}
    return tuple(table.get(tuple(int(v) for v in rgb)) for rgb in np.asarray(palette))
