import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
TEST_MESHES = ROOT / "tests" / "data"  # real third-party meshes, licences in CREDITS.md


def mesh_path(name):
    """Path of a test mesh shipped in tests/data (a missing one is an error, not a skip)."""
    p = TEST_MESHES / name
    assert p.exists(), f"test mesh {name} missing from {TEST_MESHES}"
    return p


# The suite runs on the CPU; VOXIFY_TEST_ARCH=cuda runs the same tests on a GPU machine.
TEST_ARCH = os.environ.get("VOXIFY_TEST_ARCH", "cpu")


@pytest.fixture(scope="session", autouse=True)
def _taichi_backend():
    """Every test runs on TEST_ARCH in f32 unless it re-initialises (gradient tests)."""
    os.environ.setdefault("VOXIFY_ARCH", TEST_ARCH)
    from taichi_voxify import backend

    backend.init(arch=TEST_ARCH, precision="f32")
    yield


@pytest.fixture(scope="module")
def f64_backend():
    """Float64 Taichi for the finite-difference gradient tests of a module; f32 again after."""
    from taichi_voxify import backend

    backend.init(arch=TEST_ARCH, precision="f64")
    yield
    backend.init(arch=TEST_ARCH, precision="f32")


def f64_ndarray(array):
    """A float64 ti.ndarray holding `array`."""
    import numpy as np
    import taichi as ti

    nd = ti.ndarray(ti.f64, np.shape(array))
    nd.from_numpy(np.ascontiguousarray(array, dtype=np.float64))
    return nd
