"""Triangle rasterizer: a z-buffer made of one 64-bit key per (super)sample.

Pass 1 (`project_faces`, `prefix_sum`, `rasterize`) projects every face once, cuts each into
bands of ROWS_PER_ITEM sample rows and processes the bands in parallel (so one huge triangle
does not stall a thread); each band walks the samples between its edges. The key
`(float32 bits of view depth) << 32 | face id` goes into the sample with `atomic_min`: the depth
bits of a non-negative float sort like the float, so the nearest face wins, and ties go to the
lower face id. The result does not depend on thread order. Faces of glTF alpha materials
(mesh.py ALPHA_MASK, ALPHA_BLEND) take part only in the samples where their alpha (base alpha *
texture alpha) passes: at least the cutoff for MASK (a cut-out: what lies behind shows), above a
4 x 4 ordered-dither threshold for BLEND (alpha becomes the covered fraction of the samples, as
alpha-to-coverage does on a GPU), so coverage and the covered samples' colours follow alpha.

Pass 2 (`resolve`) runs per output pixel over its S x S samples: it decodes the winning face,
recomputes its (perspective-correct) barycentric weights at the sample, looks up the albedo
(material colour * bilinear sRGB-decoded texture * vertex/face colour, all linear) and averages
the samples: colour over a white background encoded as sRGB, the mean colour of the covered
samples alone (sRGB; white where none is covered: no background in it, so a dark object's edge
pixels stay dark), coverage alpha, and depth, normal and face id of the covered sample nearest
the pixel centre.

Camera rows (cams[v] is (5, 3)): origin, right, up, forward, (plane width, plane height, ortho).
Pixel centre (row r, column c) of a W x H image sits at u = ((c + 0.5) / W - 0.5) * width,
v = (0.5 - (r + 0.5) / H) * height; an orthographic ray starts at origin + u right + v up and
runs along forward, a perspective one starts at origin toward forward + u right + v up.
Orthographic views keep surfaces at depth >= 0; perspective views drop triangles that reach
behind the near distance (no clipping).
"""
import taichi as ti

EMPTY_KEY = 0x7FFFFFFFFFFFFFFF
ALPHA_OPAQUE, ALPHA_MASK = 0, 1  # mesh.py's alpha modes (the third, BLEND, dithers)
NEAR = 1e-4
ROWS_PER_ITEM = 8


# Taichi's front end builds its generic vector reductions (v.min(), .max(), .sum(), .dot(),
# .normalized()) anew at every call, a fifth of these kernels' loading time; these do the same
# operations in the same order.
@ti.func
def _min3(v):
    return ti.min(ti.min(v[0], v[1]), v[2])


@ti.func
def _max3(v):
    return ti.max(ti.max(v[0], v[1]), v[2])


@ti.func
def _sum3(v):
    return v[0] + v[1] + v[2]


@ti.func
def _dot3(a, b):
    return _sum3(a * b)


@ti.func
def _normalized3(v):
    return (1 / ti.sqrt(_dot3(v, v))) * v


@ti.func
def _camera(cams: ti.template(), v):
    origin = ti.Vector([cams[v, 0, 0], cams[v, 0, 1], cams[v, 0, 2]])
    right = ti.Vector([cams[v, 1, 0], cams[v, 1, 1], cams[v, 1, 2]])
    up = ti.Vector([cams[v, 2, 0], cams[v, 2, 1], cams[v, 2, 2]])
    fwd = ti.Vector([cams[v, 3, 0], cams[v, 3, 1], cams[v, 3, 2]])
    return origin, right, up, fwd


@ti.func
def _corner(tris: ti.template(), f, k):
    return ti.Vector([tris[f, k, 0], tris[f, k, 1], tris[f, k, 2]])


@ti.func
def _project(tris: ti.template(), cams: ti.template(), v, f, width, height):
    """Screen positions (pixel units, x right, y down) and view depths of a face's corners."""
    origin, right, up, fwd = _camera(cams, v)
    plane_w, plane_h, ortho = cams[v, 4, 0], cams[v, 4, 1], cams[v, 4, 2]
    xs = ti.Vector([0.0, 0.0, 0.0])
    ys = ti.Vector([0.0, 0.0, 0.0])
    zs = ti.Vector([0.0, 0.0, 0.0])
    for k in ti.static(range(3)):
        p = _corner(tris, f, k) - origin
        x, y, z = _dot3(p, right), _dot3(p, up), _dot3(p, fwd)
        if ortho < 0.5:
            inv = 1.0 / ti.max(z, NEAR)
            x, y = x * inv, y * inv
        xs[k] = (x / plane_w + 0.5) * width - 0.5
        ys[k] = (0.5 - y / plane_h) * height - 0.5
        zs[k] = z
    return xs, ys, zs


@ti.func
def _edge_weights(xs, ys, px, py):
    """Unnormalised barycentric weights (edge functions) of point (px, py)."""
    w0 = (xs[2] - xs[1]) * (py - ys[1]) - (ys[2] - ys[1]) * (px - xs[1])
    w1 = (xs[0] - xs[2]) * (py - ys[2]) - (ys[0] - ys[2]) * (px - xs[2])
    w2 = (xs[1] - xs[0]) * (py - ys[0]) - (ys[1] - ys[0]) * (px - xs[0])
    return ti.Vector([w0, w1, w2])


@ti.func
def _view_depth_and_bary(b, zs, ortho):
    """Depth along forward and perspective-correct barycentrics from screen weights b."""
    z = _dot3(b, zs)
    bary = b
    if ortho < 0.5:
        q = b / zs
        s = _sum3(q)
        z = 1.0 / s
        bary = q / s
    return z, bary


@ti.func
def _depth_key(z, f):
    bits = ti.bit_cast(ti.cast(z, ti.f32), ti.i32)
    return (ti.cast(bits, ti.i64) << 32) | ti.cast(f, ti.i64)


@ti.kernel
def clear_keys(keys: ti.types.ndarray()):
    for i, j in keys:
        keys[i, j] = ti.i64(EMPTY_KEY)


@ti.kernel
def project_faces(tris: ti.types.ndarray(), cams: ti.types.ndarray(), v: ti.i32,
                  keys: ti.types.ndarray(), proj: ti.types.ndarray(), items: ti.types.ndarray()):
    """Screen corners of every face in the sample grid of `keys` (proj[f] = x0 x1 x2 y0 y1 y2
    z0 z1 z2) and its number of work items: bands of ROWS_PER_ITEM sample rows, so a large
    triangle is shared among threads; 0 for faces that are edge-on, behind or off-screen."""
    height, width = keys.shape[0], keys.shape[1]
    ortho = cams[v, 4, 2]
    for f in range(tris.shape[0]):
        xs, ys, zs = _project(tris, cams, v, f, width, height)
        for k in ti.static(range(3)):
            proj[f, k], proj[f, 3 + k], proj[f, 6 + k] = xs[k], ys[k], zs[k]
        area = _edge_weights(xs, ys, xs[0], ys[0])[0]
        behind = ortho < 0.5 and _min3(zs) <= NEAR
        on_screen = _max3(xs) >= 0.0 and _min3(xs) <= width - 1.0 and _max3(ys) >= 0.0 \
            and _min3(ys) <= height - 1.0
        count = 0
        if area != 0.0 and not behind and on_screen:
            y0, y1 = _row_range(ys, height)
            if y1 >= y0:
                count = (y1 - y0) // ROWS_PER_ITEM + 1
        items[f] = count


@ti.kernel
def prefix_sum(items: ti.types.ndarray(), offsets: ti.types.ndarray()):
    """offsets[f] = sum of items[g] over g < f of the faces with more than one band (the
    faces of one band are rasterised in a plain loop); offsets has one entry more."""
    offsets[0] = 0
    ti.loop_config(serialize=True)
    for f in range(items.shape[0]):
        offsets[f + 1] = offsets[f] + (items[f] if items[f] > 1 else 0)


@ti.func
def _row_range(ys, height):
    y0 = ti.cast(ti.max(ti.ceil(_min3(ys)), 0.0), ti.i32)
    y1 = ti.cast(ti.min(ti.floor(_max3(ys)), height - 1.0), ti.i32)
    return y0, y1


@ti.func
def _face_of_item(offsets: ti.template(), item):
    """The face f with offsets[f] <= item < offsets[f + 1] (binary search)."""
    lo, hi = 0, offsets.shape[0] - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if offsets[mid] <= item:
            lo = mid
        else:
            hi = mid
    return lo


@ti.func
def _load_projection(proj: ti.template(), f):
    xs = ti.Vector([proj[f, 0], proj[f, 1], proj[f, 2]])
    ys = ti.Vector([proj[f, 3], proj[f, 4], proj[f, 5]])
    zs = ti.Vector([proj[f, 6], proj[f, 7], proj[f, 8]])
    return xs, ys, zs


@ti.func
def _column_span(xs, ys, sign, py, x0, x1):
    """Columns of row py that can lie inside the triangle (edge functions are linear in x),
    widened by one sample for rounding; the exact test still runs on each."""
    lo, hi = float(x0), float(x1)
    for k in ti.static(range(3)):
        i, j = (k + 1) % 3, (k + 2) % 3
        a = -(ys[j] - ys[i]) * sign
        b = ((xs[j] - xs[i]) * (py - ys[i]) + (ys[j] - ys[i]) * xs[i]) * sign
        if a > 0.0:
            lo = ti.max(lo, -b / a)
        elif a < 0.0:
            hi = ti.min(hi, -b / a)
        elif b < 0.0:
            hi = lo - 3.0
    lo = ti.min(ti.max(lo, x0 - 1.0), x1 + 1.0)
    hi = ti.min(ti.max(hi, x0 - 1.0), x1 + 1.0)
    first = ti.max(ti.cast(ti.ceil(lo), ti.i32) - 1, x0)
    last = ti.min(ti.cast(ti.floor(hi), ti.i32) + 1, x1)
    return first, last


@ti.func
def _raster_band(proj: ti.template(), f, band, ortho, keys: ti.template(), uvs: ti.template(),
                 face_mat: ti.template(), mat_tex: ti.template(), alpha_modes: ti.template(),
                 alphas: ti.template(), tex: ti.template(), table: ti.template()):
    height, width = keys.shape[0], keys.shape[1]
    m = face_mat[f]
    mode = alpha_modes[m]
    xs, ys, zs = _load_projection(proj, f)
    area = _edge_weights(xs, ys, xs[0], ys[0])[0]
    sign = 1.0 if area > 0.0 else -1.0
    y0, y1 = _row_range(ys, height)
    band_start = y0 + band * ROWS_PER_ITEM
    x0 = ti.cast(ti.max(ti.ceil(_min3(xs)), 0.0), ti.i32)
    x1 = ti.cast(ti.min(ti.floor(_max3(xs)), width - 1.0), ti.i32)
    for py in range(band_start, ti.min(band_start + ROWS_PER_ITEM, y1 + 1)):
        c0, c1 = _column_span(xs, ys, sign, float(py), x0, x1)
        for px in range(c0, c1 + 1):
            w = _edge_weights(xs, ys, float(px), float(py)) * sign
            if _min3(w) >= 0.0:
                z, bary = _view_depth_and_bary(w / (area * sign), zs, ortho)
                passes = True
                if mode != ALPHA_OPAQUE:
                    alpha = alphas[m, 0]
                    t = mat_tex[m]
                    if t >= 0 and table[t, 5] >= 0:
                        alpha *= _sample_alpha(tex, table, t, _face_uv(uvs, f, bary))
                    cutoff = alphas[m, 1] if mode == ALPHA_MASK else _dither(px, py)
                    passes = alpha >= cutoff
                if z >= 0.0 and passes:
                    ti.atomic_min(keys[py, px], _depth_key(z, f))


@ti.kernel
def rasterize(proj: ti.types.ndarray(), items: ti.types.ndarray(),
              offsets: ti.types.ndarray(), big_total: ti.i32, ortho: ti.i32,
              keys: ti.types.ndarray(), uvs: ti.types.ndarray(), face_mat: ti.types.ndarray(),
              mat_tex: ti.types.ndarray(), alpha_modes: ti.types.ndarray(),
              alphas: ti.types.ndarray(), tex: ti.types.ndarray(), table: ti.types.ndarray()):
    """Write the nearest face's depth key into every covered sample of `keys` (where its
    alpha passes). One loop over the faces of a single band, then the bands of the larger
    faces, so that Taichi builds the band's code once."""
    n_faces = items.shape[0]
    for item in range(n_faces + big_total):
        f, band = item, 0
        if item >= n_faces:
            f = _face_of_item(offsets, item - n_faces)
            band = ti.cast(item - n_faces - offsets[f], ti.i32)
        if item >= n_faces or items[f] == 1:
            _raster_band(proj, f, band, 1.0 * ortho, keys, uvs, face_mat, mat_tex, alpha_modes,
                         alphas, tex, table)


@ti.func
def _wrap(i, n, mode):
    r = i  # a texel inside the texture is itself in every mode: most are, and skip the division
    if i < 0 or i >= n:
        if mode == 1:  # clamp to edge
            r = ti.min(ti.max(i, 0), n - 1)
        elif mode == 2:  # mirrored repeat
            m = i % (2 * n)
            if m < 0:
                m += 2 * n
            r = m if m < n else 2 * n - 1 - m
        else:  # repeat
            m = i % n
            if m < 0:
                m += n
            r = m
    return r


@ti.func
def _texel(tex: ti.template(), lut: ti.template(), offset, width, x, y):
    base = offset + (y * width + x) * 3
    return ti.Vector([lut[ti.cast(tex[base + c], ti.i32)] for c in ti.static(range(3))])


@ti.func
def _bilinear_taps(table: ti.template(), t, uv):
    """Columns xa, xb, rows ya, yb (wrapped) and weights fx, fy of a bilinear lookup in
    texture t; uv has v up, image row 0 is v = 1."""
    width, height = table[t, 1], table[t, 2]
    wrap_u, wrap_v = table[t, 3], table[t, 4]
    x = ti.min(ti.max(uv[0] * width - 0.5, -1e9), 1e9)
    y = ti.min(ti.max((1.0 - uv[1]) * height - 0.5, -1e9), 1e9)
    fx0, fy0 = ti.floor(x), ti.floor(y)
    ix, iy = ti.cast(fx0, ti.i64), ti.cast(fy0, ti.i64)
    xa = ti.cast(_wrap(ix, ti.cast(width, ti.i64), wrap_u), ti.i32)
    xb = ti.cast(_wrap(ix + 1, ti.cast(width, ti.i64), wrap_u), ti.i32)
    ya = ti.cast(_wrap(iy, ti.cast(height, ti.i64), wrap_v), ti.i32)
    yb = ti.cast(_wrap(iy + 1, ti.cast(height, ti.i64), wrap_v), ti.i32)
    return xa, xb, ya, yb, x - fx0, y - fy0


@ti.func
def _sample_texture(tex: ti.template(), table: ti.template(), lut: ti.template(), t, uv):
    """Bilinear, sRGB-decoded lookup; uv has v up, image row 0 is v = 1."""
    offset, width = table[t, 0], table[t, 1]
    xa, xb, ya, yb, fx, fy = _bilinear_taps(table, t, uv)
    top = (_texel(tex, lut, offset, width, xa, ya) * (1 - fx)
           + _texel(tex, lut, offset, width, xb, ya) * fx)
    bottom = (_texel(tex, lut, offset, width, xa, yb) * (1 - fx)
              + _texel(tex, lut, offset, width, xb, yb) * fx)
    return top * (1 - fy) + bottom * fy


@ti.func
def _sample_alpha(tex: ti.template(), table: ti.template(), t, uv):
    """Bilinear lookup in texture t's alpha plane (linear, 0..1)."""
    offset, width = table[t, 5], table[t, 1]
    xa, xb, ya, yb, fx, fy = _bilinear_taps(table, t, uv)
    top = tex[offset + ya * width + xa] * (1 - fx) + tex[offset + ya * width + xb] * fx
    bottom = tex[offset + yb * width + xa] * (1 - fx) + tex[offset + yb * width + xb] * fx
    return (top * (1 - fy) + bottom * fy) / 255.0


@ti.func
def _face_uv(uvs: ti.template(), f, bary):
    uv = ti.Vector([0.0, 0.0])
    for k in ti.static(range(3)):
        uv += bary[k] * ti.Vector([uvs[f, k, 0], uvs[f, k, 1]])
    return uv


@ti.func
def _dither(px, py):
    """Threshold in (0, 1) of sample (px, py) from the 4 x 4 Bayer matrix: each aligned 2 x 2
    block (one pixel at supersample 2) holds four thresholds a quarter apart."""
    v = px ^ py
    rank = ((v & 1) << 3) | ((py & 1) << 2) | (v & 2) | ((py & 2) >> 1)
    return (rank + 0.5) / 16.0


@ti.func
def _albedo(f, bary, uvs: ti.template(), corners: ti.template(), face_mat: ti.template(),
            mat_col: ti.template(), mat_tex: ti.template(), tex: ti.template(),
            table: ti.template(), lut: ti.template()):
    """Linear albedo at barycentric point `bary` of face f."""
    m = face_mat[f]
    color = ti.Vector([mat_col[m, 0], mat_col[m, 1], mat_col[m, 2]])
    corner = ti.Vector([0.0, 0.0, 0.0])
    for k in ti.static(range(3)):
        corner += bary[k] * ti.Vector([corners[f, k, 0], corners[f, k, 1], corners[f, k, 2]])
    color *= corner
    t = mat_tex[m]
    if t >= 0:
        color *= _sample_texture(tex, table, lut, t, _face_uv(uvs, f, bary))
    return color


@ti.func
def _to_srgb(c):
    c = ti.min(ti.max(c, 0.0), 1.0)
    out = c * 12.92
    for i in ti.static(range(3)):
        if c[i] >= 1.0:  # exact white for the background
            out[i] = 1.0
        elif c[i] > 0.0031308:
            out[i] = 1.055 * ti.pow(c[i], 1.0 / 2.4) - 0.055
    return out


@ti.func
def _ray_dir(cams: ti.template(), v, px, py, width, height):
    """Unit direction of the ray through sample (px, py) of a width x height sample grid."""
    origin, right, up, fwd = _camera(cams, v)
    d = fwd
    if cams[v, 4, 2] < 0.5:
        u = ((px + 0.5) / width - 0.5) * cams[v, 4, 0]
        w = (0.5 - (py + 0.5) / height) * cams[v, 4, 1]
        d = _normalized3(fwd + u * right + w * up)
    return d


@ti.kernel
def resolve(tris: ti.types.ndarray(), proj: ti.types.ndarray(), uvs: ti.types.ndarray(),
            corners: ti.types.ndarray(),
            face_mat: ti.types.ndarray(), mat_col: ti.types.ndarray(),
            mat_tex: ti.types.ndarray(), tex: ti.types.ndarray(), table: ti.types.ndarray(),
            lut: ti.types.ndarray(), cams: ti.types.ndarray(), v: ti.i32,
            keys: ti.types.ndarray(), ss: ti.i32,
            rgb: ti.types.ndarray(), covered_rgb: ti.types.ndarray(), alpha: ti.types.ndarray(),
            depth: ti.types.ndarray(), normal: ti.types.ndarray(), face_id: ti.types.ndarray()):
    """Average each pixel's ss x ss samples into the view-v slices of the output images."""
    height, width = rgb.shape[1], rgb.shape[2]
    sw, sh = width * ss, height * ss
    ortho = cams[v, 4, 2]
    centre = 0.5 * (ss - 1)
    for r, c in ti.ndrange(height, width):
        acc = ti.Vector([0.0, 0.0, 0.0])
        covered = 0
        best = 1e30
        best_face = -1
        best_depth = 0.0
        best_normal = ti.Vector([0.0, 0.0, 0.0])
        for a, b in ti.ndrange(ss, ss):
            py, px = r * ss + a, c * ss + b
            key = keys[py, px]
            if key != ti.i64(EMPTY_KEY):
                f = ti.cast(key - ((key >> 32) << 32), ti.i32)
                xs, ys, zs = _load_projection(proj, f)
                area = _edge_weights(xs, ys, xs[0], ys[0])[0]
                wts = _edge_weights(xs, ys, float(px), float(py)) / area
                wts = ti.max(wts, 0.0)  # a sample on an edge may round just outside
                wts = wts / _sum3(wts) if _sum3(wts) > 0.0 else ti.Vector([1.0, 1.0, 1.0]) / 3.0
                z, bary = _view_depth_and_bary(wts, zs, ortho)
                acc += _albedo(f, bary, uvs, corners, face_mat, mat_col, mat_tex, tex, table, lut)
                covered += 1
                dist = (a - centre) ** 2 + (b - centre) ** 2
                if dist < best:
                    d = _ray_dir(cams, v, px, py, sw, sh)
                    _, _, _, fwd = _camera(cams, v)
                    p0, p1, p2 = _corner(tris, f, 0), _corner(tris, f, 1), _corner(tris, f, 2)
                    n = _normalized3((p1 - p0).cross(p2 - p0))
                    if _dot3(n, d) > 0.0:
                        n = -n
                    best, best_face, best_normal = dist, f, n
                    best_depth = z / _dot3(d, fwd)
        n_samples = ss * ss
        cover = covered / n_samples
        color = _to_srgb(acc / n_samples + (1.0 - cover))
        own = _to_srgb(acc / covered if covered > 0 else ti.Vector([1.0, 1.0, 1.0]))
        for i in ti.static(range(3)):
            rgb[v, r, c, i] = color[i]
            covered_rgb[v, r, c, i] = own[i]
            normal[v, r, c, i] = best_normal[i]
        alpha[v, r, c] = cover
        face_id[v, r, c] = best_face
        depth[v, r, c] = best_depth if best_face >= 0 else ti.math.inf
