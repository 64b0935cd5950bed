"""Cameras and camera rigs, all looking at the normalised object box [-0.5, 0.5]^3.

Image convention for every camera: pixel (row r, column c), row 0 at the top; the pixel centre
lies at image-plane coordinates  u = ((c + 0.5) / W - 0.5) * width  along `right` and
v = (0.5 - (r + 0.5) / H) * height along `up`, where right = forward x up.
Depth is the distance along the (unit) ray direction from the camera origin.

The six axis views (taichi_voxify/views.py holds their table) are orthographic, 1 x 1 world
units, so an N x N image has one pixel per voxel column of an N^3 grid over the box. Each
camera's origin lies on the face of the box it looks from, so depth runs from 0 (entry face)
to 1 (far face).
"""
from dataclasses import dataclass

import numpy as np

from .errors import OptionError
from .views import VIEW_NAMES, VIEWS, view_index

BOX_RADIUS = float(np.sqrt(3.0) / 2.0)  # radius of the sphere around the unit box


@dataclass
class Camera:
    """A pinhole (perspective) or orthographic camera.

    ortho: `width`/`height` are the world size of the image plane.
    perspective: `width`/`height` are the image-plane size at distance 1 (2 tan(fov/2)).
    """

    name: str
    origin: np.ndarray
    forward: np.ndarray
    up: np.ndarray
    ortho: bool = True
    width: float = 1.0
    height: float = 1.0

    def __post_init__(self):
        self.origin = np.asarray(self.origin, dtype=np.float64)
        f = np.asarray(self.forward, dtype=np.float64)
        u = np.asarray(self.up, dtype=np.float64)
        self.forward = f / np.linalg.norm(f)
        u = u - self.forward * np.dot(u, self.forward)  # make up orthogonal to forward
        self.up = u / np.linalg.norm(u)

    @property
    def right(self):
        return np.cross(self.forward, self.up)

    def plane_coords(self, width_px, height_px):
        """(u, v) image-plane coordinates of every pixel centre, each (H, W)."""
        c = (np.arange(width_px) + 0.5) / width_px - 0.5
        r = 0.5 - (np.arange(height_px) + 0.5) / height_px
        v, u = np.meshgrid(r * self.height, c * self.width, indexing="ij")
        return u, v

    def rays(self, width_px, height_px):
        """Ray origins and unit directions for every pixel centre, each (H, W, 3) float64."""
        u, v = self.plane_coords(width_px, height_px)
        offset = u[..., None] * self.right + v[..., None] * self.up
        if self.ortho:
            origins = self.origin + offset
            dirs = np.broadcast_to(self.forward, origins.shape).copy()
        else:
            d = self.forward + offset
            dirs = d / np.linalg.norm(d, axis=-1, keepdims=True)
            origins = np.broadcast_to(self.origin, dirs.shape).copy()
        return origins, dirs

    def world_to_view(self, points):
        """(x along right, y along up, z along forward) of world points relative to the origin."""
        p = np.asarray(points, dtype=np.float64) - self.origin
        return np.stack([p @ self.right, p @ self.up, p @ self.forward], axis=-1)

    def matrix(self):
        """3x4 world-to-view matrix [R | -R o]; rows are right, up, forward."""
        rot = np.stack([self.right, self.up, self.forward])
        return np.concatenate([rot, (-rot @ self.origin)[:, None]], axis=1)


def axis_view(name):
    view = VIEWS[view_index(name)]
    return Camera(name=name, origin=-0.5 * view.forward, forward=view.forward,
                  up=view.up_vector, ortho=True)


def axis_views():
    """The six axis-aligned orthographic views in VIEW_NAMES order."""
    return [axis_view(n) for n in VIEW_NAMES]


def _sphere_directions(count, rng):
    d = rng.normal(size=(count, 3))
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def _up_for(forward):
    up = np.array([0.0, 1.0, 0.0])
    if abs(np.dot(up, forward)) > 0.99:  # looking straight up or down
        up = np.array([0.0, 0.0, -1.0 if forward[1] < 0 else 1.0])
    return up


def random_views(count, seed=0, ortho=True, fov_degrees=40.0):
    """`count` cameras looking at the box centre from random directions on a sphere (seeded).

    Orthographic ones see the whole box (image plane sqrt(3) wide); perspective ones stand far
    enough away for the box's bounding sphere to fit the field of view.
    """
    if count < 1:
        raise OptionError(f"need at least one view, got {count}")
    rng = np.random.default_rng(seed)
    cams = []
    for i, f in enumerate(_sphere_directions(count, rng)):
        if ortho:
            cams.append(Camera(f"ortho{i}", -f * BOX_RADIUS * 1.05, f, _up_for(f), True,
                               2 * BOX_RADIUS, 2 * BOX_RADIUS))
        else:
            half = np.tan(np.radians(fov_degrees) / 2)
            dist = BOX_RADIUS / np.sin(np.radians(fov_degrees) / 2)
            cams.append(Camera(f"persp{i}", -f * dist, f, _up_for(f), False, 2 * half, 2 * half))
    return cams
