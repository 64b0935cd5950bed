"""Solid voxelisation of a triangle soup (F, 3, 3) inside the box [-0.5, 0.5]^3 on an N^3 grid.

Cell (i, j, k) has its centre at ((i + 0.5) / N - 0.5, ...), axes x, y, z as VoxelArt.

The passes, each a kernel over triangles or columns:
- `surface_nearest_face`: every voxel a triangle overlaps (exact separating-axis test on the
  slightly inflated cell, so thin or tiny triangles never leave holes) records the overlapping
  triangle closest to its centre, packed as one int64 key (distance bits << 32 | face id) and
  merged with atomic_min, so the result does not depend on thread order.
- `axis_crossings` + `winding_votes`: along each axis, a ray through every column (jittered by
  a fraction of a voxel off the centre, so rays do not run along the edges of meshes aligned
  with the grid) adds +1 where it enters a triangle from its back side and -1 where it leaves;
  a prefix sum gives the winding number at each cell centre. A cell is inside along that axis
  when the winding counted from both ends of the column is non-zero, which keeps one leak in an
  open mesh from flooding the rest of the column; the caller takes a majority over the three
  axes. Winding rather than parity: overlapping closed parts (skinned meshes) stay filled.
- `fill_empty_columns`: a column the mesh crosses whose cells all have their centre outside
  (a part thinner than a cell) gets the cells its crossings lie in.
- `closest_points`: face id and barycentrics of the closest point for each surface voxel.
"""
import taichi as ti

NO_FACE = (1 << 63) - 1  # key of a voxel no triangle overlaps
FACE_BITS = 32
JITTER = ((0.0123, 0.0071), (0.0089, 0.0117), (0.0061, 0.0133))  # per axis, in voxel units


@ti.func
def _axis_overlaps(axis, v0, v1, v2, h):
    """Do the projections of the triangle and the cell (centred at 0, half size h) overlap?"""
    p0, p1, p2 = axis.dot(v0), axis.dot(v1), axis.dot(v2)
    r = h * (ti.abs(axis[0]) + ti.abs(axis[1]) + ti.abs(axis[2]))
    return not (ti.min(p0, p1, p2) > r or ti.max(p0, p1, p2) < -r)


@ti.func
def triangle_box_overlap(centre, h, a, b, c):
    """Separating-axis test of triangle abc against the cube around `centre` of half size h."""
    v0, v1, v2 = a - centre, b - centre, c - centre
    e0, e1, e2 = v1 - v0, v2 - v1, v0 - v2
    hit = True
    for d in ti.static(range(3)):  # the cube's face normals: bounding boxes
        if ti.min(v0[d], v1[d], v2[d]) > h or ti.max(v0[d], v1[d], v2[d]) < -h:
            hit = False
    if hit:  # the triangle's plane
        n = e0.cross(e1)
        r = h * (ti.abs(n[0]) + ti.abs(n[1]) + ti.abs(n[2]))
        if ti.abs(n.dot(v0)) > r:
            hit = False
    if hit:  # the nine cross products of cube axes and triangle edges
        for d in ti.static(range(3)):
            unit = ti.Vector([1.0 if d == 0 else 0.0, 1.0 if d == 1 else 0.0,
                              1.0 if d == 2 else 0.0])
            for e in ti.static([e0, e1, e2]):
                if not _axis_overlaps(unit.cross(e), v0, v1, v2, h):
                    hit = False
    return hit


@ti.func
def closest_barycentric(p, a, b, c):
    """Barycentrics (u, v, w) of the point of triangle abc closest to p (Voronoi regions)."""
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = ab.dot(ap), ac.dot(ap)
    bp, cp = p - b, p - c
    d3, d4 = ab.dot(bp), ac.dot(bp)
    d5, d6 = ab.dot(cp), ac.dot(cp)
    vc = d1 * d4 - d3 * d2
    vb = d5 * d2 - d1 * d6
    va = d3 * d6 - d5 * d4
    bary = ti.Vector([1.0, 0.0, 0.0])
    if d1 <= 0 and d2 <= 0:
        bary = ti.Vector([1.0, 0.0, 0.0])
    elif d3 >= 0 and d4 <= d3:
        bary = ti.Vector([0.0, 1.0, 0.0])
    elif d6 >= 0 and d5 <= d6:
        bary = ti.Vector([0.0, 0.0, 1.0])
    elif vc <= 0 and d1 >= 0 and d3 <= 0:
        t = d1 / ti.max(d1 - d3, 1e-30)
        bary = ti.Vector([1.0 - t, t, 0.0])
    elif vb <= 0 and d2 >= 0 and d6 <= 0:
        t = d2 / ti.max(d2 - d6, 1e-30)
        bary = ti.Vector([1.0 - t, 0.0, t])
    elif va <= 0 and (d4 - d3) >= 0 and (d5 - d6) >= 0:
        t = (d4 - d3) / ti.max((d4 - d3) + (d5 - d6), 1e-30)
        bary = ti.Vector([0.0, 1.0 - t, t])
    else:
        denom = va + vb + vc
        if ti.abs(denom) < 1e-30:  # degenerate triangle: fall back to its first corner
            bary = ti.Vector([1.0, 0.0, 0.0])
        else:
            v = vb / denom
            w = vc / denom
            bary = ti.Vector([1.0 - v - w, v, w])
    return bary


@ti.func
def _vertex(triangles: ti.template(), f, k):
    return ti.Vector([triangles[f, k, 0], triangles[f, k, 1], triangles[f, k, 2]])


@ti.func
def _cell_centre(i, j, k, n):
    return (ti.Vector([i, j, k]) + 0.5) / n - 0.5


@ti.kernel
def surface_nearest_face(triangles: ti.types.ndarray(), n: ti.i32, keys: ti.types.ndarray()):
    """keys[i,j,k] = min over triangles overlapping the cell of (distance bits << 32 | face)."""
    h = 0.5 / n * (1.0 + 1e-4)  # a hair larger than the cell: touching counts as overlapping
    for f in range(triangles.shape[0]):
        a, b, c = _vertex(triangles, f, 0), _vertex(triangles, f, 1), _vertex(triangles, f, 2)
        lo = ti.max(ti.floor((ti.min(a, b, c) + 0.5) * n - 1e-4, ti.i32), 0)
        hi = ti.min(ti.floor((ti.max(a, b, c) + 0.5) * n + 1e-4, ti.i32), n - 1)
        for i, j, k in ti.ndrange((lo[0], hi[0] + 1), (lo[1], hi[1] + 1), (lo[2], hi[2] + 1)):
            centre = _cell_centre(i, j, k, n)
            if triangle_box_overlap(centre, h, a, b, c):
                bary = closest_barycentric(centre, a, b, c)
                q = bary[0] * a + bary[1] * b + bary[2] * c
                dist2 = ti.cast((q - centre).norm_sqr(), ti.f32)
                key = (ti.cast(ti.bit_cast(dist2, ti.i32), ti.i64) << FACE_BITS) | ti.cast(f, ti.i64)
                ti.atomic_min(keys[i, j, k], key)


@ti.kernel
def closest_points(triangles: ti.types.ndarray(), n: ti.i32, keys: ti.types.ndarray(),
                   face_ids: ti.types.ndarray(), bary: ti.types.ndarray()):
    """Face id (-1 where none) and barycentrics of the closest point for every surface cell."""
    for i, j, k in ti.ndrange(n, n, n):
        key = keys[i, j, k]
        face_ids[i, j, k] = -1
        if key != ti.i64(NO_FACE):
            f = ti.cast(key & ti.i64((1 << FACE_BITS) - 1), ti.i32)
            a, b, c = _vertex(triangles, f, 0), _vertex(triangles, f, 1), _vertex(triangles, f, 2)
            w = closest_barycentric(_cell_centre(i, j, k, n), a, b, c)
            face_ids[i, j, k] = f
            for d in ti.static(range(3)):
                bary[i, j, k, d] = w[d]


@ti.kernel
def axis_crossings(triangles: ti.types.ndarray(), n: ti.i32, axis: ti.template(),
                   jitter_u: ti.f64, jitter_v: ti.f64, counts: ti.types.ndarray(),
                   hits: ti.types.ndarray(), face_hit: ti.types.ndarray(),
                   record_ends: ti.template(), top: ti.types.ndarray(),
                   bottom: ti.types.ndarray()):
    """counts[u, v, m] += +1/-1 for each triangle entered/left by the ray along `axis` through
    column (u, v) (u, v along the next two axes, cyclically), where m is the number of cell
    centres the ray passes before the crossing (0..n); hits[u, v, cell] = 1 for the cell the
    crossing lies in; face_hit[f] = 1 for every triangle some ray crosses. With `record_ends`,
    top/bottom[u, v, cell] keep the crossing in that cell farthest along / against the axis as
    a key (bits of t + 2 << 32 | face), for the colour of what the axis views see."""
    ax, au, av = ti.static(axis, (axis + 1) % 3, (axis + 2) % 3)
    for f in range(triangles.shape[0]):
        a, b, c = _vertex(triangles, f, 0), _vertex(triangles, f, 1), _vertex(triangles, f, 2)
        area = (b[au] - a[au]) * (c[av] - a[av]) - (b[av] - a[av]) * (c[au] - a[au])
        if area != 0:  # triangles seen edge-on are never crossed
            sign = ti.select(area < 0, 1, -1)  # normal against the ray: the ray enters here
            umin = ti.min(a[au], b[au], c[au])
            umax = ti.max(a[au], b[au], c[au])
            vmin = ti.min(a[av], b[av], c[av])
            vmax = ti.max(a[av], b[av], c[av])
            u_lo = ti.max(ti.ceil((umin + 0.5) * n - 0.5 - jitter_u, ti.i32), 0)
            u_hi = ti.min(ti.floor((umax + 0.5) * n - 0.5 - jitter_u, ti.i32), n - 1)
            v_lo = ti.max(ti.ceil((vmin + 0.5) * n - 0.5 - jitter_v, ti.i32), 0)
            v_hi = ti.min(ti.floor((vmax + 0.5) * n - 0.5 - jitter_v, ti.i32), n - 1)
            for iu, iv in ti.ndrange((u_lo, u_hi + 1), (v_lo, v_hi + 1)):
                pu = (iu + 0.5 + jitter_u) / n - 0.5
                pv = (iv + 0.5 + jitter_v) / n - 0.5
                # edge functions: twice the signed areas opposite each corner
                wa = (b[au] - pu) * (c[av] - pv) - (b[av] - pv) * (c[au] - pu)
                wb = (c[au] - pu) * (a[av] - pv) - (c[av] - pv) * (a[au] - pu)
                wc = (a[au] - pu) * (b[av] - pv) - (a[av] - pv) * (b[au] - pu)
                inside = (wa >= 0 and wb >= 0 and wc >= 0) or (wa <= 0 and wb <= 0 and wc <= 0)
                if inside:
                    t = (wa * a[ax] + wb * b[ax] + wc * c[ax]) / area
                    m = ti.math.clamp(ti.ceil((t + 0.5) * n - 0.5, ti.i32), 0, n)
                    ti.atomic_add(counts[iu, iv, m], sign)
                    cell = ti.math.clamp(ti.floor((t + 0.5) * n, ti.i32), 0, n - 1)
                    hits[iu, iv, cell] = ti.u8(1)
                    face_hit[f] = 1
                    if ti.static(record_ends):
                        t_bits = ti.bit_cast(ti.cast(t + 2.0, ti.f32), ti.i32)
                        key = (ti.cast(t_bits, ti.i64) << FACE_BITS) | ti.cast(f, ti.i64)
                        ti.atomic_max(top[iu, iv, cell], key)
                        ti.atomic_min(bottom[iu, iv, cell], key)


@ti.kernel
def winding_votes(counts: ti.types.ndarray(), n: ti.i32, axis: ti.template(),
                  votes: ti.types.ndarray()):
    """votes[x,y,z] += 1 where the winding number along `axis`, counted from either end of the
    column, is non-zero at the cell centre."""
    ax, au, av = ti.static(axis, (axis + 1) % 3, (axis + 2) % 3)
    for iu, iv in ti.ndrange(n, n):
        total = 0
        for m in range(n + 1):
            total += counts[iu, iv, m]
        winding = 0
        for m in range(n):  # serial along the column: a prefix sum
            winding += counts[iu, iv, m]
            if winding != 0 and winding - total != 0:
                idx = ti.Vector([0, 0, 0])
                idx[ax], idx[au], idx[av] = m, iu, iv
                votes[idx[0], idx[1], idx[2]] += 1


@ti.kernel
def fill_empty_columns(hits: ti.types.ndarray(), n: ti.i32, axis: ti.template(),
                       solid: ti.types.ndarray()):
    """In every column along `axis` that the mesh crosses but no filled cell lies in, fill the
    cells where the crossings are: a part thinner than a cell still shows in this axis view."""
    ax, au, av = ti.static(axis, (axis + 1) % 3, (axis + 2) % 3)
    for iu, iv in ti.ndrange(n, n):
        idx = ti.Vector([0, 0, 0])
        idx[au], idx[av] = iu, iv
        empty = True
        for m in range(n):
            idx[ax] = m
            if solid[idx[0], idx[1], idx[2]] != 0:
                empty = False
        if empty:
            for m in range(n):
                if hits[iu, iv, m] != 0:
                    idx[ax] = m
                    solid[idx[0], idx[1], idx[2]] = ti.u8(1)
