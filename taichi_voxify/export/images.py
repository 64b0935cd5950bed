"""Pictures of voxel art without a GPU, drawn through the project's (orthographic) cameras in
numpy, then laid out with PIL.

Only the faces of filled voxels that border empty space can be seen, and an orthographic camera
sees each one as the same small parallelogram: VoxelSurface lists those faces once per voxel
art, and every picture tests each face against just the few pixel centres its parallelogram
can hold (the pixel ray meets the face's plane inside the face), keeping the nearest face per
pixel. The cost follows the surface and the picture, not the N^3 volume or the rays' walk
through it, so the 24 turntable frames share one face list.

The grid sits in the object box like the rest of the pipeline: voxel size 1 / max(X, Y, Z),
centred at the origin, so the axis views line up with the Stage 2 pixel-art targets.
"""
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..cameras import BOX_RADIUS, VIEW_NAMES, Camera, axis_views
from ..color import rgb_to_hex
from ..errors import OptionError
from .atomic import atomic_path

BACKGROUND = np.array([0.93, 0.93, 0.93])
LIGHT = np.array([0.35, 1.0, 0.6]) / np.linalg.norm([0.35, 1.0, 0.6])
EDGE_DARKEN = 0.82  # voxel outlines: a thin darker border on every voxel face
_CHUNK = 1 << 20  # (face, pixel) pairs tested at once: bounds a picture's memory
_HAIR = 1e-6  # pixels


class VoxelSurface:
    """What a camera outside the grid can see of a voxel art: for each of the six face
    directions (axis, sign), the filled voxels whose neighbour on that side is empty or outside
    the grid. Made once, it draws any number of pictures."""

    def __init__(self, art):
        self.shape, self.palette = art.shape, art.palette
        filled = art.indices > 0
        buried = np.zeros_like(filled)  # all six neighbours filled: no face can be seen
        buried[1:-1, 1:-1, 1:-1] = filled[1:-1, 1:-1, 1:-1]
        for axis in range(3):
            for sign in (-1, 1):
                beside = [slice(1, -1)] * 3
                beside[axis] = slice(1 + sign, filled.shape[axis] - 1 + sign)
                buried[1:-1, 1:-1, 1:-1] &= filled[tuple(beside)]
        flat = np.flatnonzero(filled & ~buried)  # one pass over the grid; the rest per voxel
        cells = np.stack(np.unravel_index(flat, self.shape), -1).astype(np.int32)
        strides = np.array(filled.strides) // filled.itemsize
        self.faces = []  # (axis, sign, cells (F, 3) int32, labels (F,) uint8)
        for axis in range(3):
            for sign in (-1, 1):
                beyond = cells[:, axis] + sign
                open_ = (beyond < 0) | (beyond >= self.shape[axis])  # the grid's own border
                open_[~open_] = ~filled.ravel()[flat[~open_] + sign * strides[axis]]
                self.faces.append((axis, sign, cells[open_], art.indices.ravel()[flat[open_]]))

    def hits(self, camera, width, height):
        """The first filled voxel along each pixel's ray: label (H, W) uint8 (0: none), the
        normal (H, W, 3) of the face the ray enters it by, and the point (H, W, 3) where, in
        voxel units from the grid's corner."""
        if not camera.ortho:
            raise OptionError("voxel pictures are drawn by orthographic cameras only")
        rays = _PixelRays(camera, width, height, self.shape)
        depth = np.full(height * width, np.inf)  # nearest face so far, per pixel
        found = []
        for axis, sign, cells, labels in self.faces:
            if camera.forward[axis] * sign < 0 and len(cells):  # faces turned to the camera
                pixel, t, point, face = rays.face_hits(cells, axis, sign, depth)
                found.append((axis, sign, pixel, t, point, labels[face]))
        label = np.zeros(height * width, np.uint8)
        normal = np.zeros((height * width, 3))
        hit_point = np.zeros((height * width, 3))
        for axis, sign, pixel, t, point, face_label in found:
            near = t == depth[pixel]  # ties only where faces meet on an edge: either is right
            label[pixel[near]] = face_label[near]
            normal[pixel[near]] = sign * np.eye(3)[axis]
            hit_point[pixel[near]] = point[near]
        return (label.reshape(height, width), normal.reshape(height, width, 3),
                hit_point.reshape(height, width, 3))

    def render(self, camera, width, height=None, shade=True, outlines=True):
        """(H, W, 3) float sRGB image of the voxels seen by `camera`."""
        height = height or width
        label, normal, point = self.hits(camera, width, height)
        lut = np.concatenate([BACKGROUND[None], self.palette / 255.0])
        img = lut[label]
        hit = label > 0
        colour, normal = img[hit], normal[hit]  # the rest is background
        if shade:
            lambert = np.clip(normal @ LIGHT, 0.0, 1.0)
            colour *= (0.55 + 0.45 * lambert)[:, None]
        pixel = camera.width / width * max(self.shape)  # one pixel, in voxel lengths
        if outlines and pixel < 1 / 3.0:  # outlines only where voxels are 3+ pixels wide
            point = point[hit]
            frac = point - np.floor(point)
            near_edge = np.minimum(frac, 1 - frac)
            in_face = np.abs(normal) < 0.5  # the two axes that lie in the face hit
            colour[np.any(in_face & (near_edge < 0.6 * pixel), axis=-1)] *= EDGE_DARKEN
        img[hit] = colour
        return img.astype(np.float32)


class _PixelRays:
    """An orthographic camera's pixel rays in a grid's voxel units, measured from the grid's
    corner; they all run along camera.forward. Ray origins are worked out as Camera.rays does,
    to the last bit, so a ray that runs exactly along a voxel boundary (non-cubic grids, whose
    voxel rows can line up with the pixel centres) takes the voxel above it, as a grid walk
    from those origins would."""

    def __init__(self, camera, width, height, shape):
        self.camera, self.width, self.height = camera, width, height
        self.full = np.array(shape, np.float64)
        self.voxel = 1.0 / self.full.max()
        u, v = camera.plane_coords(width, height)
        # every pixel's ray origin, once: a picture tests several faces per pixel
        offset = u[0][None, :, None] * camera.right + v[:, 0][:, None, None] * camera.up
        self.origin = (camera.origin + offset + 0.5 * self.voxel * self.full) / self.voxel
        # to find the pixel centres near a face: one column right, one row down, in voxels ...
        step = np.stack([camera.right * camera.width / width,
                         -camera.up * camera.height / height]) / self.voxel
        # ... so a step along x, y or z moves the ray through (columns, rows) to_pixel[axis]
        self.to_pixel = (step / (step ** 2).sum(1, keepdims=True)).T
        self.first = self.origin[0, 0]

    def face_hits(self, cells, axis, sign, depth):
        """Where the rays meet the voxel faces (axis, sign) of `cells`: (pixel (flat index),
        depth t, point, face index) per hit; lowers `depth` to the nearest hit per pixel."""
        b, c = [k for k in range(3) if k != axis]
        # a face is the parallelogram base + [0, 1] e_b + [0, 1] e_c on the image: the pixel
        # centres it can hold lie from ceil(its lowest coordinate) on, at most floor(extent) + 1
        # across; widened by a hair so that rounding never skips a centre on its edge
        extent = np.abs(self.to_pixel[b]) + np.abs(self.to_pixel[c]) + 2 * _HAIR
        low = np.minimum(self.to_pixel[b], 0) + np.minimum(self.to_pixel[c], 0) - _HAIR
        span = np.floor(extent).astype(np.int64) + 1
        offsets = np.stack(np.meshgrid(np.arange(span[0]), np.arange(span[1]), indexing="ij"),
                           -1).reshape(-1, 2)
        per_chunk = max(1, _CHUNK // len(offsets))
        parts = [self._chunk_hits(cells, start, start + per_chunk, axis, sign, (b, c), offsets,
                                  low, depth)
                 for start in range(0, len(cells), per_chunk)]
        pixel, t, point, face = (np.concatenate(p) for p in zip(*parts))
        return pixel, t, point, face

    def _chunk_hits(self, cells, start, stop, axis, sign, in_face, offsets, low, depth):
        cells = cells[start:stop]
        base = cells.astype(np.float64)
        base[:, axis] += sign > 0  # on the face's plane
        first = np.ceil((base - self.first) @ self.to_pixel + low).astype(np.int64)
        col = (first[:, None, 0] + offsets[None, :, 0]).ravel()
        row = (first[:, None, 1] + offsets[None, :, 1]).ravel()
        face = np.repeat(np.arange(len(cells)), len(offsets))
        keep = (col >= 0) & (col < self.width) & (row >= 0) & (row < self.height)
        col, row, face = col[keep], row[keep], face[keep]
        origin = self.origin[row, col]
        forward = self.camera.forward
        t = (base[face, axis] - origin[:, axis]) / forward[axis]
        point = origin + t[:, None] * forward
        inside = t >= -1e-9  # in front of the camera (a face on the image plane counts)
        for k in in_face:  # the face holds the points from which the ray goes on into the
            lo, hi = cells[face, k], cells[face, k] + 1  # voxel: [lo, hi), or (lo, hi] when the
            inside &= ((point[:, k] > lo) & (point[:, k] <= hi) if forward[k] < 0  # ray runs
                       else (point[:, k] >= lo) & (point[:, k] < hi))  # down k; one face per ray
        pixel = row[inside] * self.width + col[inside]
        np.minimum.at(depth, pixel, t[inside])
        return pixel, t[inside], point[inside], start + face[inside]


def render_voxels(art, camera, width, height=None, shade=True, outlines=True):
    """(H, W, 3) float sRGB image of `art` seen by `camera` (an orthographic cameras.Camera)."""
    return VoxelSurface(art).render(camera, width, height, shade, outlines)


def iso_camera(azimuth=45.0, elevation=30.0, art=None, name="iso", margin=1.06, sphere=None):
    """Orthographic camera from the given angles (degrees; azimuth 0 looks at the front,
    growing toward the object's right side). With `art`, framed on its filled voxels (same
    framing at every azimuth, so a turntable does not zoom), or on `sphere` (centre, radius)
    when filled_sphere(art) is already known; else the whole box."""
    az, el = np.radians(azimuth), np.radians(elevation)
    toward_camera = np.array([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)])
    if sphere is None and art is not None and art.filled_count:
        sphere = filled_sphere(art)
    centre, radius = sphere if sphere is not None else (np.zeros(3), BOX_RADIUS)
    size = 2 * radius * margin
    return Camera(name, centre + toward_camera * 2.0, -toward_camera, (0.0, 1.0, 0.0), True,
                  size, size)


def filled_sphere(art):
    """Centre and radius (box units) of the sphere around the filled voxels' bounding box."""
    shape = np.array(art.shape)
    voxel = 1.0 / shape.max()
    filled = art.indices > 0
    lo, hi = np.zeros(3), np.zeros(3)
    for axis in range(3):  # the bounding box from three projections: no N^3 index list
        seen = np.flatnonzero(filled.any(axis=tuple(k for k in range(3) if k != axis)))
        lo[axis], hi[axis] = seen[0], seen[-1] + 1
    centre = ((lo + hi) / 2 - shape / 2) * voxel
    return centre, np.linalg.norm(hi - lo) / 2 * voxel


# --- composed images --------------------------------------------------------------------------
def _to_uint8(img):
    a = np.asarray(img)
    if a.dtype != np.uint8:
        a = np.clip(np.round(a * 255.0), 0, 255).astype(np.uint8)
    return a


def _nearest(images, size):
    """(..., H, W, C) images sampled to (..., size, size, C) at the pixels that PIL's NEAREST
    resize reads (found by resizing a ramp of indices), so that big pictures can be shrunk
    before the work on them rather than after."""
    a = np.asarray(images)
    rows, cols = (np.asarray(Image.fromarray(np.arange(n, dtype=np.int32)[None])
                             .resize((size, 1), Image.NEAREST))[0] for n in a.shape[-3:-1])
    return a[..., rows[:, None], cols, :]


def _tile(img, size):
    return Image.fromarray(_to_uint8(_nearest(img, size))[..., :3])


def _row_images(views, size, coverage=None):
    """Renders (.rgb, .alpha), PixelArtViews (.images, .masks) or an array/list of images over
    white -> (size, size, 3) arrays over BACKGROUND, the voxel views' grey, so white parts of
    the object stay visible. coverage: (V, H, W) alpha or bool masks for plain arrays; without
    any, the images are shown as they are."""
    if views is None:
        return None
    rgb = getattr(views, "rgb", getattr(views, "images", views))
    if coverage is None:
        coverage = getattr(views, "alpha", getattr(views, "masks", None))
    if coverage is None:
        return [_nearest(v, size) for v in rgb]
    rgb = _nearest(rgb, size)  # the 1024-pixel mesh renders of large grids: shrink them first
    rgb = rgb / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float64)
    alpha = _nearest(np.asarray(coverage)[..., None], size).astype(np.float64)
    # over white: c a + (1 - a); over the background: c a + (1 - a) g
    return list(rgb - (1.0 - alpha) * (1.0 - BACKGROUND))


FRONT_AZIMUTH = {"+z": 0.0, "+x": 90.0, "-z": 180.0, "-x": 270.0, "+y": 0.0, "-y": 0.0}


def views_image(art, mesh_views=None, pixel_art=None, tile=160, front="+z", pixel_masks=None):
    """A labelled PIL image: the voxel art's six axis views and an isometric view (from the
    `front` side), with the mesh's renders (Renders, or images over white) and the pixel-art
    targets (images over white with `pixel_masks`, or PixelArtViews), each six images in
    VIEW_NAMES order, below, all on the voxel views' light grey."""
    native = max(art.shape)
    scale = max(1, -(-tile // native))
    surface = VoxelSurface(art)
    voxel_row = [surface.render(cam, native * scale, shade=False)
                 for cam in axis_views()]
    iso = iso_camera(azimuth=45.0 + FRONT_AZIMUTH[front], art=art)
    voxel_row.append(surface.render(iso, native * scale))
    rows = [("voxel art", voxel_row, [*VIEW_NAMES, "iso"])]
    for title, views, coverage in (("mesh", mesh_views, None),
                                   ("pixel art", pixel_art, pixel_masks)):
        imgs = _row_images(views, tile, coverage)
        if imgs:
            names = list(VIEW_NAMES) if len(imgs) == 6 else [str(i) for i in range(len(imgs))]
            rows.append((title, imgs, names))
    font = ImageFont.load_default()
    label_h, pad = 14, 6
    cols = max(len(r[1]) for r in rows)
    canvas = Image.new("RGB", (pad + cols * (tile + pad), pad + len(rows) * (tile + label_h + pad)),
                       (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for r, (title, imgs, names) in enumerate(rows):
        y = pad + r * (tile + label_h + pad)
        for c, (img, name) in enumerate(zip(imgs, names)):
            x = pad + c * (tile + pad)
            draw.text((x, y), f"{title} {name}", fill=(0, 0, 0), font=font)
            canvas.paste(_tile(img, tile), (x, y + label_h))
    return canvas


def views_png(art, path, mesh_views=None, pixel_art=None, tile=160, front="+z", pixel_masks=None):
    """Write views_image(...) to `path` (whole or not at all)."""
    _save(views_image(art, mesh_views, pixel_art, tile, front, pixel_masks), path)


def palette_image(palette, counts=None, swatch=48):
    """Swatches with their 1-based index and hex code (and voxel count when given)."""
    palette = np.asarray(palette, np.uint8).reshape(-1, 3)
    font = ImageFont.load_default()
    row_h, text_w = swatch + 6, 150
    img = Image.new("RGB", (swatch + text_w, row_h * len(palette) + 6), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    for i, rgb in enumerate(palette):
        y = 6 + i * row_h
        draw.rectangle([6, y, 6 + swatch - 1, y + swatch - 1], fill=tuple(int(v) for v in rgb),
                       outline=(0, 0, 0))
        text = f"{i + 1}  {rgb_to_hex(rgb)}"
        if counts is not None:
            text += f"\n{int(counts[i])} voxels"
        draw.text((swatch + 14, y + swatch // 2 - 10), text, fill=(0, 0, 0), font=font)
    return img


def palette_png(palette, path, counts=None):
    _save(palette_image(palette, counts), path)


def turntable_frames(art, frames=24, size=256, elevation=25.0, threads=1):
    """List of (size, size, 3) uint8 frames of the voxel art turning once about the y axis,
    drawn `threads` at a time (numpy lets go of the GIL in the large array operations)."""
    surface = VoxelSurface(art)
    sphere = filled_sphere(art) if art.filled_count else None  # one framing for every frame

    def frame(i):
        return _to_uint8(surface.render(iso_camera(360.0 * i / frames, elevation, sphere=sphere),
                                        size))

    with ThreadPoolExecutor(max(1, int(threads))) as pool:
        return list(pool.map(frame, range(frames)))


def turntable_gif(art, path, frames=24, size=256, seconds=3.0, threads=1):
    """An endlessly looping GIF of the voxel art turning once (imageio); `threads`: frames
    drawn at a time."""
    import imageio.v3 as iio

    images = np.stack(turntable_frames(art, frames, size, threads=threads))
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, images, extension=".gif", duration=int(1000 * seconds / frames), loop=0)


def _save(image, path):
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
