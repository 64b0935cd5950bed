"""The table of the six axis views (taichi_voxify/views.py) against the cameras built from it
and the grid reordering metrics does with it."""
import numpy as np
import pytest

from taichi_voxify.cameras import axis_views
from taichi_voxify.errors import OptionError
from taichi_voxify.metrics import view_volume
from taichi_voxify.views import FRONT_WEIGHT, VIEW_NAMES, VIEWS, view_weights


def test_table_is_right_handed_and_names_its_side():
    for view in VIEWS:
        assert np.allclose(np.cross(view.forward, view.up_vector), view.right_vector), view.name
        assert view.name == ("+" if view.sign > 0 else "-") + "xyz"[view.axis]


def test_view_volume_follows_the_camera_rays():
    """Cell (r, c, s) of view_volume is where pixel (r, c)'s ray is after s + 0.5 voxels."""
    n = 4
    ids = np.arange(n ** 3).reshape(n, n, n)
    for v, cam in enumerate(axis_views()):
        origins, dirs = cam.rays(n, n)
        t = (np.arange(n) + 0.5) / n
        points = origins[:, :, None] + t[None, None, :, None] * dirs[:, :, None]
        cells = np.floor((points + 0.5) * n).astype(int)
        want = ids[cells[..., 0], cells[..., 1], cells[..., 2]]
        assert np.array_equal(view_volume(ids, v), want), cam.name
        assert np.array_equal(view_volume(ids, cam.name), want)


def test_front_weight_follows_the_chosen_front():
    assert view_weights() == [1, 1, 1, 1, FRONT_WEIGHT, 1]  # +z, glTF's front
    weights = view_weights("-z")
    assert weights[VIEW_NAMES.index("-z")] == FRONT_WEIGHT and sum(weights) == 5 + FRONT_WEIGHT
    with pytest.raises(OptionError, match="unknown front view"):
        view_weights("z")
