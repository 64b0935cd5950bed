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
import time
from dataclasses import dataclass

import numpy as np

from . import backend, ndarrays
from .cameras import Camera, axis_views
from .errors import OptionError, ResourceError
from .mesh import SRGB8_TO_LINEAR, Mesh, load_mesh

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
        tex=ndarrays.for_kernels(tex.astype(np.uint8, copy=False)),
        table=ndarrays.for_kernels(table.astype(np.int32, copy=False)),
        lut=ndarrays.for_kernels(SRGB8_TO_LINEAR.astype(fnp)),
    )


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
        raster.clear_keys(keys)
        raster.project_faces(dev["tris"], cams, v, keys, proj, items)
        raster.prefix_sum(items, offsets)
        total = int(offsets[n_faces])
        if total >= 2**31:
            raise ResourceError(f"view {cam.name}: {total:,} raster work items is too many")
        raster.rasterize(proj, items, offsets, total, int(cam.ortho), keys)
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


def subdivide(mesh):
    """Split every triangle into four at its edge midpoints (uvs and colours follow)."""
    def split(a):
        m01, m12, m20 = (a[:, 0] + a[:, 1]) / 2, (a[:, 1] + a[:, 2]) / 2, (a[:, 2] + a[:, 0]) / 2
        parts = [(a[:, 0], m01, m20), (m01, a[:, 1], m12), (m20, m12, a[:, 2]), (m01, m12, m20)]
        return np.concatenate([np.stack(p, axis=1) for p in parts]).astype(a.dtype)

    return Mesh(name=mesh.name, triangles=split(mesh.triangles), uvs=split(mesh.uvs),
                corner_colors=split(mesh.corner_colors),
                face_material=np.tile(mesh.face_material, 4),
                material_colors=mesh.material_colors, material_textures=mesh.material_textures,
                textures=mesh.textures, source=mesh.source)


def benchmark_mesh(face_count=200_000):
    """The bundled textured Spot, subdivided and cut to exactly `face_count` triangles."""
    mesh = load_mesh(BUNDLED_MESH)
    while mesh.face_count < face_count:
        mesh = subdivide(mesh)
    keep = slice(0, int(face_count))
    return Mesh(name=mesh.name, triangles=mesh.triangles[keep], uvs=mesh.uvs[keep],
                corner_colors=mesh.corner_colors[keep], face_material=mesh.face_material[keep],
                material_colors=mesh.material_colors, material_textures=mesh.material_textures,
                textures=mesh.textures, source=mesh.source)


def bench_render(mesh=None, face_count=200_000, size=512, cameras=None, supersample=2,
                 repeats=3):
    """Time render_views: the first call (compiles or loads kernels), then wall and CPU
    seconds (all threads) of `repeats` more; CPU time is less sensitive to other load."""
    mesh = benchmark_mesh(face_count) if mesh is None else mesh
    cameras = axis_views() if cameras is None else cameras
    start = time.perf_counter()
    render_views(mesh, cameras, size, supersample=supersample)
    first = time.perf_counter() - start
    times, cpu_times = [], []
    for _ in range(max(1, int(repeats))):
        start, cpu_start = time.perf_counter(), time.process_time()
        render_views(mesh, cameras, size, supersample=supersample)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    return dict(faces=mesh.face_count, views=len(cameras), size=size, supersample=supersample,
                first_call_s=first, best_s=min(times), median_s=float(np.median(times)),
                best_cpu_s=min(cpu_times), arch=backend.info().get("arch"),
                threads=backend.info().get("threads"))
