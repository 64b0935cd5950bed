"""A Taichi GGUI viewer for VoxelArt: lit cubes, orbit / pan / zoom, layer slicing for building,
a reference image side by side, live recolouring of a palette entry, screenshots; and headless
rendering to a PNG (GGUI with show_window=False).

GGUI needs Vulkan; on machines without a GPU, Mesa's software driver (lavapipe) works with the
Taichi CPU backend (Debian/Ubuntu: apt-get install -y mesa-vulkan-drivers libvulkan1).

World coordinates are the object box: voxel size 1 / max(X, Y, Z), the grid centred at the
origin, y up. Camera angles: azimuth 0 looks at the front (+z side), growing toward the
object's right (+x); elevation in degrees above the horizon.

Mouse: left drag orbits, right drag pans, middle drag (or the keys = and -) zooms.
Keys: Up / Down show one layer more / less, R toggles the reference, P saves a screenshot.
"""
import os
import sys
import weakref

import numpy as np

from .backend import ensure_init
from .cameras import BOX_RADIUS
from .errors import BackendError, OptionError
from .export.atomic import atomic_path
from .export.meshing import voxel_mesh
from .voxelart import VoxelArt

VULKAN_HINT = ("the viewer needs Vulkan for Taichi GGUI: install a Vulkan driver "
               "(Debian/Ubuntu: apt-get install -y mesa-vulkan-drivers libvulkan1)")
FOV_DEGREES = 35.0
BACKGROUND = (1.0, 1.0, 1.0)
AMBIENT = (0.45, 0.45, 0.45)
PALETTE_SETS = ("original", "lego", "pico8", "minecraft")  # what the palette slider offers
PANEL = (0.01, 0.01, 0.3, 0.36)  # control panel: x, y from the top-left, width, height


def _over_panel(cursor):
    """Whether a cursor position (origin bottom-left) lies on the control panel, where drags
    move sliders rather than the camera."""
    x, y = cursor
    left, top, width, height = PANEL
    return left <= x <= left + width and 1 - top - height <= y <= 1 - top


def open_window(title, size, show_window=True):
    """A ti.ui.Window, with a one-line BackendError when Vulkan or a display is missing."""
    ensure_init()
    import taichi as ti

    if show_window and sys.platform.startswith("linux") and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise BackendError("no display to open a window on: use --headless --screenshot PATH")
    try:
        return ti.ui.Window(title, tuple(int(s) for s in size), show_window=show_window,
                            vsync=show_window)
    except RuntimeError as exc:
        if "vulkan" in str(exc).lower():
            raise BackendError(VULKAN_HINT) from None
        raise BackendError(f"cannot open a GGUI window: {str(exc).splitlines()[0]}") from None


def vulkan_available():
    """True when a headless GGUI window can be opened here."""
    try:
        open_window("probe", (8, 8), show_window=False).destroy()
        return True
    except BackendError:
        return False


class VoxelDrawable:
    """Taichi fields holding the visible cube faces of a VoxelArt (a triangle soup with
    per-vertex normals and colours) for ti.ui.Scene.mesh. Only the layers below `layers` are
    shown (the cut is closed, so a slice looks solid); colours follow `palette`.

    Its fields are written only when the layers or colours change, not every frame. Released
    fields go back to a pool that the next VoxelDrawable of that size reuses: GGUI compiles and
    keeps a copy kernel per field it draws (measured: about 2.5 MB per new set of fields), so
    new fields for every VoxelArt a host draws would grow without bound."""

    def __init__(self, art):
        self.indices, self.base_palette = art.indices, art.palette
        self.palette = art.palette.copy()
        self.layers = art.shape[1]
        self.count = 0
        self._capacity = 0
        self._fields = self._runtime = None
        self._color_index = None
        self._geometry_dirty = self._colors_dirty = True

    def set_layers(self, layers):
        layers = int(np.clip(layers, 0, self.indices.shape[1]))
        if layers != self.layers:
            self.layers, self._geometry_dirty = layers, True

    def set_palette(self, palette):
        palette = np.asarray(palette, np.uint8).reshape(self.base_palette.shape)
        if not np.array_equal(palette, self.palette):
            self.palette, self._colors_dirty = palette.copy(), True

    def set_color(self, entry, rgb):
        """Recolour palette entry `entry` (0-based) to rgb (uint8 triple)."""
        palette = self.palette.copy()
        palette[entry] = rgb
        self.set_palette(palette)

    def _update(self):
        import taichi as ti

        if self._runtime is not ti.lang.impl.get_runtime():  # the host restarted Taichi
            self._fields = None
            self._geometry_dirty = True
        if self._geometry_dirty:
            self._upload_geometry()
        if self._colors_dirty:
            colors = self.palette[self._color_index] / 255.0
            self._fields[2].from_numpy(_padded(colors, self._capacity))
            self._colors_dirty = False

    def _upload_geometry(self):
        shape = np.array(self.indices.shape, np.float64)
        sliced = VoxelArt(self.indices[:, : self.layers], self.base_palette)
        mesh = voxel_mesh(sliced, merge=False)  # merged quads leave T-junction sparkles
        corners = mesh.faces.ravel()
        positions = (mesh.vertices[corners] - [0.0, shape[1] / 2, 0.0]) / shape.max()
        self.count = len(corners)
        if self.count > self._capacity or self._fields is None:
            self._allocate(max(3, 1 << int(np.ceil(np.log2(max(self.count, 3))))))
        self._fields[0].from_numpy(_padded(positions, self._capacity))
        self._fields[1].from_numpy(_padded(mesh.normals[corners], self._capacity))
        self._color_index = np.repeat(mesh.color_index, 3)
        self._geometry_dirty, self._colors_dirty = False, True

    def _allocate(self, capacity):
        import taichi as ti

        self.release()
        runtime = ti.lang.impl.get_runtime()
        pool = _field_pool.setdefault(capacity, [])
        while pool and pool[-1][0] is not runtime:  # fields of a Taichi the host restarted
            pool.pop()
        self._fields = pool.pop()[1] if pool else [ti.Vector.field(3, ti.f32, capacity)
                                                   for _ in range(3)]
        self._capacity, self._runtime = capacity, runtime

    def release(self):
        """Hand the fields back to the pool (drawing again takes fields anew)."""
        import taichi as ti

        if self._fields is not None and self._runtime is ti.lang.impl.get_runtime():
            _field_pool.setdefault(self._capacity, []).append((self._runtime, self._fields))
        self._fields = None
        self._geometry_dirty = True

    def draw(self, scene):
        """Add the voxels to a ti.ui.Scene (call between set_camera and canvas.scene)."""
        self._update()
        if self.count:
            vertices, normals, colors = self._fields
            scene.mesh(vertices, normals=normals, per_vertex_color=colors, vertex_count=self.count)


def _padded(values, capacity):
    out = np.zeros((capacity, 3), np.float32)
    out[: len(values)] = values
    return out


_field_pool = {}  # capacity -> [(Taichi runtime, [vertex, normal, colour fields])] not in use
_drawables = {}  # id(VoxelArt) -> its VoxelDrawable, for as long as that VoxelArt lives


def draw_voxels(scene, art, layers=None, palette=None):
    """Draw `art` into an existing ti.ui.Scene of a host Taichi program, every frame if you
    like: its fields are made on the first call and rewritten only when `layers` or `palette`
    change, and go back to the pool when `art` is freed. Returns its VoxelDrawable."""
    drawable = _drawables.get(id(art))
    if drawable is None:
        drawable = _drawables[id(art)] = VoxelDrawable(art)
        weakref.finalize(art, _forget, id(art))
    if layers is not None:
        drawable.set_layers(layers)
    if palette is not None:
        drawable.set_palette(palette)
    drawable.draw(scene)
    return drawable


def _forget(art_id):
    _drawables.pop(art_id).release()


class OrbitCamera:
    """Perspective camera orbiting a target point of the object box."""

    def __init__(self, azimuth=30.0, elevation=20.0, zoom=1.0, target=(0, 0, 0),
                 radius=BOX_RADIUS):
        self.azimuth, self.elevation, self.zoom = float(azimuth), float(elevation), float(zoom)
        self.target = np.array(target, np.float64)
        self.radius = float(radius)  # of the sphere to keep in view at zoom 1

    @classmethod
    def framing(cls, art, azimuth=30.0, elevation=20.0):
        """Aimed at the filled voxels, far enough to see all of them from any side."""
        from .export.images import filled_sphere

        if not art.filled_count:
            return cls(azimuth, elevation)
        centre, radius = filled_sphere(art)
        return cls(azimuth, elevation, target=centre, radius=max(radius, 0.05))

    @property
    def distance(self):
        return self.radius * 1.1 / np.sin(np.radians(FOV_DEGREES) / 2) / self.zoom

    def pose(self):
        """(position, right, up) of the camera."""
        az, el = np.radians(self.azimuth), np.radians(self.elevation)
        back = np.array([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)])
        right = np.array([np.cos(az), 0.0, -np.sin(az)])
        up = np.cross(back, right)
        return self.target + back * self.distance, right, up

    def apply(self, ti_camera, aspect, shift_left=0.0):
        """Set a ti.ui.Camera; shift_left (fraction of the view width) moves the object right."""
        position, right, up = self.pose()
        half_width = np.tan(np.radians(FOV_DEGREES) / 2) * self.distance * aspect
        offset = -right * shift_left * 2 * half_width
        ti_camera.position(*(position + offset))
        ti_camera.lookat(*(self.target + offset))
        ti_camera.up(*up)
        ti_camera.fov(FOV_DEGREES)

    def orbit(self, dx, dy):
        self.azimuth = (self.azimuth - 180.0 * dx) % 360.0
        self.elevation = float(np.clip(self.elevation + 120.0 * dy, -89.0, 89.0))

    def pan(self, dx, dy):
        _, right, up = self.pose()
        scale = self.distance * np.tan(np.radians(FOV_DEGREES) / 2) * 2
        self.target = self.target - (right * dx + up * dy) * scale  # the object follows


class Viewer:
    """One GGUI window (shown or headless) looking at one VoxelArt."""

    def __init__(self, art, size=(960, 720), show_window=True, reference=None,
                 azimuth=30.0, elevation=20.0, title="taichi_voxify viewer"):
        import taichi as ti

        self.ti = ti
        self.art = art
        self.size = tuple(int(s) for s in size)
        self.interactive = show_window  # GGUI gives no input events to a hidden window
        self.window = open_window(title, self.size, show_window)
        self.canvas = self.window.get_canvas()
        self.scene = self.window.get_scene()
        self.ti_camera = ti.ui.Camera()
        self.camera = OrbitCamera.framing(art, azimuth, elevation)
        self.drawable = VoxelDrawable(art)
        self.reference = None if reference is None else _as_rgb_float(reference)
        self.show_reference = self.reference is not None
        self._backdrop = None
        self.selected = 0
        self.palette_set = 0
        self._last_cursor = None
        self.screenshot_path = "voxify_screenshot.png"

    def use_palette_set(self, which):
        """Show the art in its own colours (0), or each colour snapped to the nearest LEGO (1)
        or PICO-8 (2) colour; edits made with the colour picker are dropped."""
        self.palette_set = int(which)
        self.drawable.set_palette(snapped_palette(self.art.palette, PALETTE_SETS[self.palette_set]))

    # --- one frame ----------------------------------------------------------------------------
    def render(self):
        aspect = self.size[0] / self.size[1]
        side_by_side = self.show_reference and self.reference is not None
        if side_by_side:
            self.canvas.set_image(self._reference_backdrop())
        else:
            self.canvas.set_background_color(BACKGROUND)
        self.camera.apply(self.ti_camera, aspect, 0.25 if side_by_side else 0.0)
        self.scene.set_camera(self.ti_camera)
        self.scene.ambient_light(AMBIENT)
        position, right, up = self.camera.pose()
        self.scene.point_light(tuple(position + up * 0.5 * self.camera.distance), (0.55,) * 3)
        self.scene.point_light((0.6, 3.0, 1.2), (0.35,) * 3)
        self.drawable.draw(self.scene)
        self.canvas.scene(self.scene)

    def _reference_backdrop(self):
        """A (W, H) image field: the reference fitted into the left half, background elsewhere."""
        if self._backdrop is None:
            W, H = self.size
            img = np.empty((H, W, 3), np.float32)
            img[:] = BACKGROUND
            ref = self.reference
            scale = min((W // 2) / ref.shape[1], H / ref.shape[0])
            h, w = max(1, int(ref.shape[0] * scale)), max(1, int(ref.shape[1] * scale))
            rows = (np.arange(h) / scale).astype(int).clip(0, ref.shape[0] - 1)
            cols = (np.arange(w) / scale).astype(int).clip(0, ref.shape[1] - 1)
            top, left = (H - h) // 2, (W // 2 - w) // 2
            img[top: top + h, left: left + w] = ref[rows][:, cols]
            self._backdrop = self.ti.Vector.field(3, self.ti.f32, (W, H))
            self._backdrop.from_numpy(np.ascontiguousarray(img[::-1].transpose(1, 0, 2)))
        return self._backdrop

    def image(self):
        """The last rendered frame as (H, W, 3) uint8, row 0 at the top."""
        buf = self.window.get_image_buffer_as_numpy()  # (W, H, 4), y up
        rgb = np.transpose(buf[..., :3], (1, 0, 2))[::-1]
        return np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)

    def save_screenshot(self, path=None):
        from PIL import Image

        path = path or self.screenshot_path
        image = Image.fromarray(self.image())
        with atomic_path(path) as tmp:
            image.save(tmp, format="PNG")
        return path

    # --- interaction --------------------------------------------------------------------------
    def run(self):
        """The interactive loop; returns when the window is closed."""
        while self.window.running:
            self.frame()

    def frame(self):
        """One interactive frame: keys, mouse, the control panel, render, present."""
        if self.interactive:
            self._handle_input()
        self._panel()
        self.render()
        if self.interactive:  # show() on a hidden window crashes GGUI; image() still works
            self.window.show()

    def _handle_input(self):
        ti = self.ti
        self._handle_keys()
        cursor = np.array(self.window.get_cursor_pos())  # [0, 1]^2, origin bottom-left
        if self._last_cursor is not None and not _over_panel(self._last_cursor):
            dx, dy = cursor - self._last_cursor
            if self.window.is_pressed(ti.ui.LMB):
                self.camera.orbit(dx, dy)
            elif self.window.is_pressed(ti.ui.RMB):
                self.camera.pan(dx, dy)
            elif self.window.is_pressed(ti.ui.MMB):
                self.camera.zoom = float(np.clip(self.camera.zoom * np.exp(2 * dy), 0.1, 20))
        self._last_cursor = cursor

    def _handle_keys(self):
        ti = self.ti
        for event in self.window.get_events(ti.ui.PRESS):
            key = event.key
            if key == ti.ui.UP:
                self.drawable.set_layers(self.drawable.layers + 1)
            elif key == ti.ui.DOWN:
                self.drawable.set_layers(self.drawable.layers - 1)
            elif key in ("r", "R"):
                self.show_reference = not self.show_reference
            elif key in ("p", "P"):
                self.save_screenshot()
            elif key in ("=", "+"):
                self.camera.zoom *= 1.15
            elif key == "-":
                self.camera.zoom /= 1.15

    def _panel(self):
        gui = self.window.get_gui()
        Y, K = self.art.shape[1], len(self.art.palette)
        with gui.sub_window("voxels", *PANEL) as w:
            w.text(f"{self.art.filled_count} voxels, {K} colours")
            self.drawable.set_layers(w.slider_int("layers shown", self.drawable.layers, 0, Y))
            if self.reference is not None:
                self.show_reference = w.checkbox("reference", self.show_reference)
            chosen = w.slider_int("palette set", self.palette_set, 0, len(PALETTE_SETS) - 1)
            w.text(f"colours: {PALETTE_SETS[chosen]}")
            if chosen != self.palette_set:
                self.use_palette_set(chosen)
            self.selected = w.slider_int("palette entry", self.selected + 1, 1, K) - 1
            current = tuple(float(v) / 255 for v in self.drawable.palette[self.selected])
            picked = w.color_edit_3("colour", current)
            rgb = np.clip(np.round(np.array(picked) * 255), 0, 255).astype(np.uint8)
            self.drawable.set_color(self.selected, rgb)
            if w.button("reset colours"):
                self.use_palette_set(self.palette_set)
            if w.button("save screenshot"):
                w.text(f"saved {self.save_screenshot()}")


def snapped_palette(palette, name):
    """The palette itself ("original"), or each entry replaced by its Lab-nearest colour of a
    named palette ("lego", "pico8", "minecraft")."""
    if name == "original":
        return np.asarray(palette, np.uint8)
    from .palette import named_palette_rgb, nearest_palette_index

    named = named_palette_rgb(name)
    return named[nearest_palette_index(np.asarray(palette, np.uint8), named)]


def _as_rgb_float(image):
    """A path or an (H, W, 3|4) array (uint8 or float in [0, 1]) -> float32 (H, W, 3)."""
    if isinstance(image, (str, os.PathLike)):
        from .budgets import decode_image, open_image

        what = f"reference image {image}"
        picture = open_image(image, what, error=OptionError)  # measured before decoding
        image = decode_image(picture, lambda im: np.asarray(im.convert("RGB")), what,
                             error=OptionError)
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise OptionError(f"a reference image must be (H, W, 3), got shape {a.shape}")
    a = a[..., :3]
    return (a / 255.0 if a.dtype == np.uint8 else a).astype(np.float32)


# --- entry points -----------------------------------------------------------------------------
def show(art, reference=None, size=(960, 720), azimuth=30.0, elevation=20.0):
    """Open the interactive viewer on `art` (returns when the window is closed)."""
    Viewer(art, size, True, reference, azimuth, elevation).run()


def render_image(art, size=(512, 512), azimuth=30.0, elevation=20.0, layers=None,
                 reference=None, palette=None):
    """Render `art` headless with GGUI; (H, W, 3) uint8."""
    viewer = Viewer(art, size, False, reference, azimuth, elevation)
    try:
        if layers is not None:
            viewer.drawable.set_layers(layers)
        if palette is not None:
            viewer.drawable.set_palette(palette)
        viewer.render()
        return viewer.image()
    finally:
        viewer.drawable.release()
        viewer.window.destroy()


def screenshot(art, path, size=(512, 512), azimuth=30.0, elevation=20.0, layers=None,
               reference=None):
    """Render headless and write a PNG (whole or not at all); returns the path."""
    from PIL import Image

    image = Image.fromarray(render_image(art, size, azimuth, elevation, layers, reference))
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path
