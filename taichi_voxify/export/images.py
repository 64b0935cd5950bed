"""Pictures of voxel art without a GPU: a numpy voxel ray caster (Amanatides-Woo grid walk,
every ray stepped at once) drawn through the project's cameras, then laid out with PIL.

The grid sits in the object box like the rest of the pipeline: voxel size 1 / max(X, Y, Z),
centred at the origin, so the axis views line up with the Stage 2 pixel-art targets.
"""
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..cameras import BOX_RADIUS, VIEW_NAMES, Camera, axis_views
from ..color import rgb_to_hex
from .atomic import atomic_path

BACKGROUND = np.array([0.93, 0.93, 0.93])
LIGHT = np.array([0.35, 1.0, 0.6]) / np.linalg.norm([0.35, 1.0, 0.6])
EDGE_DARKEN = 0.82  # voxel outlines: a thin darker border on every voxel face


def raycast(indices, origins, dirs):
    """First filled voxel along each ray. origins, dirs (..., 3) in box coordinates.
    Returns (label (...) uint8 0 = miss, normal (..., 3) of the face hit, point (..., 3) hit
    position in voxel units)."""
    full = np.array(indices.shape, dtype=np.float64)
    voxel = 1.0 / full.max()
    lead = origins.shape[:-1]
    o = (origins.reshape(-1, 3) + 0.5 * voxel * full) / voxel
    d = np.array(dirs.reshape(-1, 3), dtype=np.float64)
    n = len(o)
    label = np.zeros(n, np.uint8)
    normal = np.zeros((n, 3))
    point = np.zeros((n, 3))
    filled = np.nonzero(indices)
    if not len(filled[0]):
        return label.reshape(lead), normal.reshape(lead + (3,)), point.reshape(lead + (3,))
    # walk only the bounding box of the filled voxels: rays skip the empty margin at once
    lo = np.array([a.min() for a in filled])
    hi = np.array([a.max() + 1 for a in filled])
    indices = indices[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    shape = (hi - lo).astype(np.float64)
    o = o - lo
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(d != 0, 1.0 / d, np.inf)
        ta, tb = -o * inv, (shape - o) * inv
        flat = d == 0  # parallel to a slab: inside it for all t, or never
        inside = (o > 0) & (o < shape)
        ta = np.where(flat, np.where(inside, -np.inf, np.nan), ta)
        tb = np.where(flat, np.where(inside, np.inf, np.nan), tb)
    t_near, t_far = np.minimum(ta, tb), np.maximum(ta, tb)
    t_in, t_out = t_near.max(1), t_far.min(1)
    live = np.nonzero(t_in < t_out)[0]  # NaN compares False: those rays miss
    t = np.maximum(t_in[live], 0.0)
    axis = np.argmax(t_near[live], axis=1)
    step = np.sign(d[live]).astype(np.int64)
    cell = np.floor(o[live] + d[live] * (t[:, None] + 1e-9)).astype(np.int64)
    cell = np.clip(cell, 0, np.array(indices.shape) - 1)
    t_max = np.where(step != 0, (cell + (step > 0) - o[live]) * inv[live], np.inf)
    t_delta = np.abs(inv[live])
    flat_index = np.ravel_multi_index(cell.T, indices.shape)
    strides = np.array([indices.shape[1] * indices.shape[2], indices.shape[2], 1])
    flat_grid = indices.ravel()
    for _ in range(int(shape.sum()) + 3):
        if not len(live):
            break
        value = flat_grid[flat_index]
        hit = value > 0
        if hit.any():
            h = live[hit]
            label[h] = value[hit]
            normal[h, axis[hit]] = -step[hit, axis[hit]]
            point[h] = o[h] + d[h] * t[hit, None] + lo
        # step every ray to its next cell, then drop the ones that hit or left the grid
        axis = np.argmin(t_max, axis=1)
        k = np.arange(len(live))
        t = t_max[k, axis]
        move = step[k, axis]
        cell[k, axis] += move
        flat_index += move * strides[axis]
        t_max[k, axis] += t_delta[k, axis]
        c = cell[k, axis]
        keep = ~hit & (c >= 0) & (c < np.array(indices.shape)[axis])
        live, t, axis, step, cell, t_max, t_delta, flat_index = (
            a[keep] for a in (live, t, axis, step, cell, t_max, t_delta, flat_index))
    return label.reshape(lead), normal.reshape(lead + (3,)), point.reshape(lead + (3,))


def render_voxels(art, camera, width, height=None, shade=True, outlines=True):
    """(H, W, 3) float sRGB image of `art` seen by `camera` (a cameras.Camera)."""
    height = height or width
    origins, dirs = camera.rays(width, height)
    label, normal, point = raycast(art.indices, origins, dirs)
    lut = np.concatenate([BACKGROUND[None], art.palette / 255.0])
    img = lut[label]
    hit = label > 0
    if shade:
        lambert = np.clip(normal @ LIGHT, 0.0, 1.0)
        img[hit] *= (0.55 + 0.45 * lambert[hit])[:, None]
    if outlines:
        frac = point - np.floor(point)
        near_edge = np.minimum(frac, 1 - frac)
        in_face = np.abs(normal) < 0.5  # the two axes that lie in the face hit
        pixel = camera.width / width * max(art.shape)  # one pixel, in voxel lengths
        if camera.ortho and pixel < 1 / 3.0:  # outlines only where voxels are 3+ pixels wide
            edge = np.any(in_face & (near_edge < 0.6 * pixel), axis=-1) & hit
            img[edge] *= EDGE_DARKEN
    return img.astype(np.float32)


def iso_camera(azimuth=45.0, elevation=30.0, art=None, name="iso", margin=1.06):
    """Orthographic camera from the given angles (degrees; azimuth 0 looks at the front,
    growing toward the object's right side). With `art`, framed on its filled voxels (same
    framing at every azimuth, so a turntable does not zoom); else the whole box."""
    az, el = np.radians(azimuth), np.radians(elevation)
    toward_camera = np.array([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)])
    centre, radius = np.zeros(3), BOX_RADIUS
    if art is not None and art.filled_count:
        centre, radius = filled_sphere(art)
    size = 2 * radius * margin
    return Camera(name, centre + toward_camera * 2.0, -toward_camera, (0.0, 1.0, 0.0), True,
                  size, size)


def filled_sphere(art):
    """Centre and radius (box units) of the sphere around the filled voxels' bounding box."""
    shape = np.array(art.shape)
    voxel = 1.0 / shape.max()
    nz = np.nonzero(art.indices)
    lo = np.array([a.min() for a in nz])
    hi = np.array([a.max() + 1 for a in nz])
    centre = ((lo + hi) / 2 - shape / 2) * voxel
    return centre, np.linalg.norm(hi - lo) / 2 * voxel


# --- composed images --------------------------------------------------------------------------
def _to_uint8(img):
    a = np.asarray(img)
    if a.dtype != np.uint8:
        a = np.clip(np.round(a * 255.0), 0, 255).astype(np.uint8)
    return a


def _tile(img, size):
    return Image.fromarray(_to_uint8(img)[..., :3]).resize((size, size), Image.NEAREST)


def _row_images(views, coverage=None):
    """Renders (.rgb, .alpha), PixelArtViews (.images, .masks) or an array/list of images over
    white -> (H, W, 3) arrays over BACKGROUND, the voxel views' grey, so white parts of the
    object stay visible. coverage: (V, H, W) alpha or bool masks for plain arrays; without any,
    the images are shown as they are."""
    if views is None:
        return None
    rgb = getattr(views, "rgb", getattr(views, "images", views))
    if coverage is None:
        coverage = getattr(views, "alpha", getattr(views, "masks", None))
    if coverage is None:
        return [np.asarray(v) for v in rgb]
    rgb = np.asarray(rgb)
    rgb = rgb / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float64)
    alpha = np.asarray(coverage, np.float64)[..., None]
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
    voxel_row = [render_voxels(art, cam, native * scale, shade=False) for cam in axis_views()]
    iso = iso_camera(azimuth=45.0 + FRONT_AZIMUTH[front], art=art)
    voxel_row.append(render_voxels(art, iso, native * scale))
    rows = [("voxel art", voxel_row, [*VIEW_NAMES, "iso"])]
    for title, views, coverage in (("mesh", mesh_views, None),
                                   ("pixel art", pixel_art, pixel_masks)):
        imgs = _row_images(views, coverage)
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


def turntable_frames(art, frames=24, size=256, elevation=25.0):
    """List of (size, size, 3) uint8 frames of the voxel art turning once about the y axis."""
    return [_to_uint8(render_voxels(art, iso_camera(360.0 * i / frames, elevation, art), size))
            for i in range(frames)]


def turntable_gif(art, path, frames=24, size=256, seconds=3.0):
    """An endlessly looping GIF of the voxel art turning once (imageio)."""
    import imageio.v3 as iio

    images = np.stack(turntable_frames(art, frames, size))
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, images, extension=".gif", duration=int(1000 * seconds / frames), loop=0)


def _save(image, path):
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
