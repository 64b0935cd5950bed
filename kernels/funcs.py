"""The ti.func library every kernel shares: activations, voxel opacity, box clipping.

One home for each, so the forward of one kernel and the backward of another cannot disagree
on the maths (Stage 1's ray march and Stage 2's column march used to carry their own copies).
"""
import taichi as ti

SERIES_BELOW = 1e-4  # log(1 + y) by its series below this y (1 + y rounds away y in f32)


@ti.func
def softplus(x):
    """log(1 + e^x), accurate for very negative x (a density at alpha_init ~1e-6 lives there):
    log(1 + y) for tiny y = e^-|x| by its series, since 1 + y loses y to rounding."""
    y = ti.exp(-ti.abs(x))
    l1p = ti.log(1.0 + y)
    if y < SERIES_BELOW:
        l1p = y * (1.0 - y * (0.5 - y / 3.0))
    return ti.max(x, 0.0) + l1p


@ti.func
def sigmoid(x):
    """1 / (1 + e^-x) without overflow: e^x / (1 + e^x) for negative x, so the exponential
    never exceeds 1 (softplus' derivative)."""
    e = ti.exp(-ti.abs(x))
    out = 1.0 / (1.0 + e)
    if x < 0.0:
        out = e / (1.0 + e)
    return out


@ti.func
def crossing(x):
    """Opacity alpha and transmittance 1 - alpha of one voxel length at activation argument x
    (density + shift): 1 - exp(-softplus(x)) = sigmoid(x), so one exponential gives both, and
    alpha stays accurate where it is tiny (an empty voxel). alpha is also d softplus / dx."""
    e = ti.exp(-ti.abs(x))
    big, small = 1.0 / (1.0 + e), e / (1.0 + e)
    alpha, decay = big, small
    if x < 0.0:
        alpha, decay = small, big
    return alpha, decay


@ti.func
def voxel_alpha(d, shift, interval):
    """Opacity of raw density d crossed over `interval` voxel lengths (DVGO's activation)."""
    return 1.0 - ti.exp(-softplus(d + shift) * interval)


@ti.func
def box_clip(o, d):
    """Entry and exit distances (t_near, t_far) of the ray o + t d, t >= 0, through the box
    [-0.5, 0.5]^3; t_far < t_near when it misses."""
    t_near, t_far = 0.0, 1e30
    for a in ti.static(range(3)):
        if ti.abs(d[a]) < 1e-12:
            if o[a] < -0.5 or o[a] > 0.5:
                t_far = -1.0
        else:
            ta, tb = (-0.5 - o[a]) / d[a], (0.5 - o[a]) / d[a]
            t_near = ti.max(t_near, ti.min(ta, tb))
            t_far = ti.min(t_far, ti.max(ta, tb))
    return t_near, t_far
