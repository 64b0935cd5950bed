"""Colour conversions shared by the whole package (vectorised numpy, any leading shape).

sRGB values are floats in [0, 1] (uint8 arrays are accepted and scaled by 1/255); CIE Lab uses
the D65 white point, L in [0, 100]. Distances between colours are measured in Lab (delta E 1976),
which follows perceived difference far better than RGB distance does.
"""
import numpy as np

# sRGB (linear) -> CIE XYZ, D65, and its inverse
_RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ)
_WHITE_D65 = _RGB_TO_XYZ.sum(axis=1)  # XYZ of sRGB white, so white maps to exactly L=100, a=b=0

_EPSILON = (6.0 / 29.0) ** 3  # CIE constants of the Lab cube-root curve
_KAPPA_SLOPE = (29.0 / 6.0) ** 2 / 3.0


def as_float_rgb(rgb):
    """Float64 array in [0, 1]; uint8 input is scaled by 1/255."""
    a = np.asarray(rgb)
    if a.dtype == np.uint8:
        return a.astype(np.float64) / 255.0
    return a.astype(np.float64, copy=False)


def srgb_to_linear(rgb):
    c = as_float_rgb(rgb)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(linear):
    c = np.clip(np.asarray(linear, dtype=np.float64), 0.0, None)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * c ** (1.0 / 2.4) - 0.055)


def _lab_f(t):
    return np.where(t > _EPSILON, np.cbrt(t), t * _KAPPA_SLOPE + 4.0 / 29.0)


def _lab_f_inverse(f):
    return np.where(f > 6.0 / 29.0, f ** 3, (f - 4.0 / 29.0) / _KAPPA_SLOPE)


def srgb_to_lab(rgb):
    """(..., 3) sRGB (float in [0, 1] or uint8) -> (..., 3) float64 Lab."""
    return linear_to_lab(srgb_to_linear(rgb))


def linear_to_lab(linear):
    """(..., 3) linear RGB (srgb_to_linear's output) -> (..., 3) float64 Lab: for callers
    that need both of a large image (the power law is most of the conversion's cost)."""
    xyz = np.asarray(linear) @ _RGB_TO_XYZ.T
    f = _lab_f(xyz / _WHITE_D65)
    lightness = 116.0 * f[..., 1] - 16.0
    a = 500.0 * (f[..., 0] - f[..., 1])
    b = 200.0 * (f[..., 1] - f[..., 2])
    return np.stack([lightness, a, b], axis=-1)


def lab_to_srgb(lab):
    """(..., 3) Lab -> (..., 3) float64 sRGB clipped to [0, 1] (out-of-gamut colours clip)."""
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16.0) / 116.0
    f = np.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
    xyz = _lab_f_inverse(f) * _WHITE_D65
    return np.clip(linear_to_srgb(xyz @ _XYZ_TO_RGB.T), 0.0, 1.0)


def delta_e76(lab1, lab2):
    """Euclidean Lab distance (CIE 1976), broadcast over leading axes."""
    d = np.asarray(lab1, dtype=np.float64) - np.asarray(lab2, dtype=np.float64)
    return np.sqrt(np.sum(d * d, axis=-1))


def to_uint8(rgb):
    """Float sRGB in [0, 1] -> uint8, rounded."""
    return np.clip(np.rint(np.asarray(rgb, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def hex_to_rgb(token):
    """'#rrggbb' / '#rgb' (the '#' optional) -> (r, g, b) ints, or None when malformed."""
    h = token.strip().lstrip("#")
    if len(h) == 3:
        h = "".join(ch * 2 for ch in h)
    if len(h) != 6 or any(ch not in "0123456789abcdefABCDEF" for ch in h):
        return None
    return tuple(int(h[i:i + 2], 16) for i in (0, 2, 4))


def rgb_to_hex(rgb):
    return "#%02x%02x%02x" % tuple(int(v) for v in rgb)


def pil_to_rgba8(pil_image):
    """(H, W, 4) uint8 of any PIL image. 16-bit greyscale ('I;16', 'I') is scaled down to 8
    bits: PIL's own convert() clips it at 255, so a 16-bit image came out white."""
    if pil_image.mode.startswith("I"):
        grey = np.asarray(pil_image, dtype=np.float64) / 257.0
        grey = np.clip(np.round(grey), 0, 255).astype(np.uint8)
        return np.concatenate([np.repeat(grey[..., None], 3, axis=-1),
                               np.full(grey.shape + (1,), 255, np.uint8)], axis=-1)
    return np.asarray(pil_image.convert("RGBA"), dtype=np.uint8)


def segment_distance(point, a, b):
    """Lab distance from `point` to the segment a-b (all (..., 3))."""
    ab = b - a
    t = np.clip(((point - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0.0, 1.0)
    return delta_e76(point, a + t[..., None] * ab)
