"""Reference renders of a `Mesh`: unlit albedo, coverage, depth, normals and face ids for any
list of cameras (see cameras.py for the image convention), by the Taichi rasterizer in
kernels/raster.py. Anti-aliasing: each pixel averages supersample x supersample samples.

- rgb: (V, H, W, 3) float32 sRGB albedo composited over a white background (averaged in linear)
- covered_rgb: (V, H, W, 3) float32 sRGB mean albedo of the covered samples only (white where
  none): the object's own colour at edge pixels, what pixel art and colour metrics take
- alpha: (V, H, W) float32 fraction of covered samples
- depth: (V, H, W) float32 distance along the ray from the camera origin, inf where empty
- normal: (V, H, W, 3) float32 unit geometric face normal turned toward the camera, 0 where empty
- face_id: (V, H, W) int32 face index, -1 where empty
depth, normal and face_id come from the covered sample nearest the pixel centre.
"""
import os
import pathlib
import tempfile
from dataclasses import dataclass

import numpy as np

from . import backend, ndarrays
from .cameras import Camera
from .errors import OptionError, ResourceError
from .mesh import SRGB8_TO_LINEAR, Mesh

BUNDLED_MESH = pathlib.Path(__file__).resolve().parent / "data" / "spot" / "spot.obj"
MAX_RENDER_BYTES = 8 * 2**30


@dataclass
class Renders:
    cameras: list
    rgb: np.ndarray
    alpha: np.ndarray
    depth: np.ndarray
    normal: np.ndarray
    face_id: np.ndarray
    covered_rgb: np.ndarray = None  # None for renders that are not the rasterizer's

    @property
    def names(self):
        return [c.name for c in self.cameras]

    def __len__(self):
        return len(self.cameras)


def camera_rows(cameras):
    """(V, 5, 3) float64 rows origin, right, up, forward, (plane width, plane height, ortho)."""
    rows = np.zeros((len(cameras), 5, 3))
    for i, cam in enumerate(cameras):
        rows[i, :4] = cam.origin, cam.right, cam.up, cam.forward
        rows[i, 4] = cam.width, cam.height, 1.0 if cam.ortho else 0.0
    return rows


def _check_request(mesh, cameras, width, height, supersample):
    if not isinstance(mesh, Mesh):
        raise OptionError(f"render_views needs a Mesh from load_mesh, got {type(mesh).__name__}")
    if not cameras or not all(isinstance(c, Camera) for c in cameras):
        raise OptionError("render_views needs a non-empty list of Camera objects")
    if int(width) < 1 or int(height) < 1:
        raise OptionError(f"image size must be at least 1 x 1, got {width} x {height}")
    if not 1 <= int(supersample) <= 8:
        raise OptionError(f"supersample must be 1..8, got {supersample}")
    samples = width * height * supersample**2
    need = samples * 8 + len(cameras) * width * height * 9 * 8 + mesh.face_count * 100
    if need > MAX_RENDER_BYTES:
        raise ResourceError(f"rendering {len(cameras)} views of {width} x {height} at "
                            f"supersample {supersample} needs about {need / 2**30:.1f} GiB")


def _device_mesh(mesh):
    """The mesh's arrays in the order the resolve kernel takes them."""
    fnp = backend.float_dtype()
    tex, table = mesh.packed_textures()
    return dict(
        tris=ndarrays.for_kernels(mesh.triangles.astype(fnp)),
        uvs=ndarrays.for_kernels(mesh.uvs.astype(fnp)),
        corners=ndarrays.for_kernels(mesh.corner_colors.astype(fnp)),
        face_mat=ndarrays.for_kernels(mesh.face_material.astype(np.int32)),
        mat_col=ndarrays.for_kernels(mesh.material_colors.astype(fnp).reshape(-1, 3)),
        mat_tex=ndarrays.for_kernels(mesh.material_textures.astype(np.int32)),
        alpha_modes=ndarrays.for_kernels(mesh.material_alpha_modes.astype(np.int32)),
        alphas=ndarrays.for_kernels(mesh.material_alphas.astype(fnp).reshape(-1, 2)),
        tex=ndarrays.for_kernels(tex.astype(np.uint8, copy=False)),
        table=ndarrays.for_kernels(table.astype(np.int32, copy=False)),
        lut=ndarrays.for_kernels(SRGB8_TO_LINEAR.astype(fnp)),
    )


def _clear_keys(keys):
    """Every sample empty: numpy's fill on the CPU, where the kernels read numpy arrays (a 2D
    parallel loop there splits each flat index by an integer division: 20x slower), else the
    kernel."""
    from taichi_voxify.kernels import raster

    if isinstance(keys, np.ndarray):
        keys.fill(raster.EMPTY_KEY)
    else:
        raster.clear_keys(keys)


def render_views(mesh, cameras, width, height=None, supersample=2):
    """Render `mesh` from every camera at width x height (square when height is None)."""
    import taichi as ti

    from taichi_voxify.kernels import raster

    height = width if height is None else height
    cameras = list(cameras)
    _check_request(mesh, cameras, width, height, supersample)
    width, height, ss = int(width), int(height), int(supersample)
    backend.require_conversion_arch("the mesh rasterizer")
    fnp, n_views = backend.float_dtype(), len(cameras)
    dev = _device_mesh(mesh)
    cams = ndarrays.for_kernels(camera_rows(cameras).astype(fnp))
    keys = ndarrays.output((height * ss, width * ss), ti.i64)
    image = (n_views, height, width)
    out = dict(rgb=ndarrays.output(image + (3,)), covered_rgb=ndarrays.output(image + (3,)),
               alpha=ndarrays.output(image), depth=ndarrays.output(image),
               normal=ndarrays.output(image + (3,)), face_id=ndarrays.output(image, ti.i32))
    n_faces = mesh.face_count
    proj = ndarrays.output((n_faces, 9))
    items = ndarrays.output((n_faces,), ti.i32)
    offsets = ndarrays.output((n_faces + 1,), ti.i64)
    for v, cam in enumerate(cameras):
        _clear_keys(keys)
        raster.project_faces(dev["tris"], cams, v, keys, proj, items)
        raster.prefix_sum(items, offsets)
        total = int(offsets[n_faces])
        if total >= 2**31:
            raise ResourceError(f"view {cam.name}: {total:,} raster work items is too many")
        raster.rasterize(proj, items, offsets, total, int(cam.ortho), keys, dev["uvs"],
                         dev["face_mat"], dev["mat_tex"], dev["alpha_modes"], dev["alphas"],
                         dev["tex"], dev["table"])
        raster.resolve(dev["tris"], proj, dev["uvs"], dev["corners"], dev["face_mat"],
                       dev["mat_col"], dev["mat_tex"], dev["tex"], dev["table"], dev["lut"],
                       cams, v, keys, ss, out["rgb"], out["covered_rgb"], out["alpha"],
                       out["depth"], out["normal"], out["face_id"])
    arrays = {k: ndarrays.to_numpy(a) for k, a in out.items()}
    return Renders(cameras=cameras,
                   rgb=arrays["rgb"].astype(np.float32, copy=False),
                   covered_rgb=arrays["covered_rgb"].astype(np.float32, copy=False),
                   alpha=arrays["alpha"].astype(np.float32, copy=False),
                   depth=arrays["depth"].astype(np.float32, copy=False),
                   normal=arrays["normal"].astype(np.float32, copy=False),
                   face_id=arrays["face_id"].astype(np.int32, copy=False))


def save_views_png(renders, path, columns=3, label=True):
    """Tile the views' rgb images into one labelled PNG (written atomically)."""
    from PIL import Image, ImageDraw

    n, h, w = renders.rgb.shape[:3]
    columns = max(1, min(int(columns), n))
    rows = -(-n // columns)
    bar = 14 if label else 0
    sheet = Image.new("RGB", (columns * (w + 2), rows * (h + bar + 2)), (200, 200, 200))
    draw = ImageDraw.Draw(sheet)
    for i in range(n):
        x, y = (i % columns) * (w + 2) + 1, (i // columns) * (h + bar + 2) + 1
        img = (np.clip(renders.rgb[i], 0, 1) * 255 + 0.5).astype(np.uint8)
        sheet.paste(Image.fromarray(img), (x, y + bar))
        if label:
            draw.text((x + 2, y + 1), renders.cameras[i].name, fill=(0, 0, 0))
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.stem + ".", suffix=".png.tmp", dir=path.parent)
    os.close(fd)
    try:
        sheet.save(tmp, format="PNG")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
