"""The six axis views: the one table that cameras, the ortho kernels, metrics and palettes read.

Each view is named by the side of the box it looks from and looks straight across the box
toward the opposite side; its N x N image has one pixel per voxel column of an N^3 grid (row 0
at the top). Grid axes: 0 = x (right), 1 = y (up), 2 = z (toward the viewer of the front).

    view  looks along  image up  image right  what it shows
    +x    -x           +y        -z           the object's right side
    -x    +x           +y        +z           the left side
    +y    -y           -z        +x           the top (front edge at the bottom of the image)
    -y    +y           +z        +x           the bottom (front edge at the top of the image)
    +z    -z           +y        +x           the front (glTF's convention)
    -z    +z           +y        -x           the back

The palette counts the front view's colours FRONT_WEIGHT times, as the authors' code does;
which view is the front is the user's choice (`view_weights(front)`).
"""
from dataclasses import dataclass

import numpy as np

from .errors import OptionError

FRONT_WEIGHT = 4.0
DEFAULT_FRONT = "+z"


@dataclass(frozen=True)
class AxisView:
    """One axis view. `sign` +1: the camera sits on the +axis face and looks toward -axis.
    `up` and `right` are (grid axis, sign) of the image's up and right directions."""

    name: str
    axis: int
    sign: int
    up: tuple
    right: tuple

    @property
    def forward(self):
        """Unit vector the view looks along."""
        return _unit(self.axis, -self.sign)

    @property
    def up_vector(self):
        return _unit(*self.up)

    @property
    def right_vector(self):
        return _unit(*self.right)

    @property
    def layout(self):
        """How the ortho kernels walk the grid for pixel (row r, column c), step s along the ray:
        ((march axis, sign), (row axis, sign), (column axis, sign)); sign +1 means the voxel
        index grows with s / r / c, -1 that it runs down from N-1. Rows grow downward, against
        the image's up direction."""
        return ((self.axis, -self.sign), (self.up[0], -self.up[1]), self.right)


VIEWS = (
    AxisView("+x", 0, +1, up=(1, +1), right=(2, -1)),
    AxisView("-x", 0, -1, up=(1, +1), right=(2, +1)),
    AxisView("+y", 1, +1, up=(2, -1), right=(0, +1)),
    AxisView("-y", 1, -1, up=(2, +1), right=(0, +1)),
    AxisView("+z", 2, +1, up=(1, +1), right=(0, +1)),
    AxisView("-z", 2, -1, up=(1, +1), right=(0, -1)),
)
VIEW_NAMES = tuple(v.name for v in VIEWS)
NUM_VIEWS = len(VIEWS)
LAYOUT = tuple(v.layout for v in VIEWS)  # read by kernels/ortho.py at compile time


def _unit(axis, sign):
    e = np.zeros(3)
    e[axis] = sign
    return e


def view_index(name):
    """Position of the view called `name` in VIEWS; a one-line OptionError for other names."""
    if name not in VIEW_NAMES:
        raise OptionError(f"unknown view {name!r}: views are {', '.join(VIEW_NAMES)}")
    return VIEW_NAMES.index(name)


def view_weights(front=DEFAULT_FRONT):
    """Palette weight per view in VIEWS order: the `front` view counts FRONT_WEIGHT times."""
    if front not in VIEW_NAMES:
        raise OptionError(f"unknown front view {front!r}: choose one of {', '.join(VIEW_NAMES)}")
    return [FRONT_WEIGHT if name == front else 1.0 for name in VIEW_NAMES]
