"""Colour conversions: reference values, round trips, uint8 input, hex parsing."""
import numpy as np
import pytest

from taichi_voxify.color import (delta_e76, hex_to_rgb, lab_to_srgb, linear_to_srgb, rgb_to_hex,
                                 srgb_to_lab, srgb_to_linear, to_uint8)


def test_lab_reference_values():
    # CIE Lab (D65) of the sRGB primaries, as published by Lindbloom's calculator
    rgb = np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0],
                    [0.0, 0.0, 1.0]])
    expected = np.array([[100.0, 0.0, 0.0], [0.0, 0.0, 0.0], [53.24, 80.09, 67.20],
                         [87.73, -86.18, 83.18], [32.30, 79.19, -107.86]])
    np.testing.assert_allclose(srgb_to_lab(rgb), expected, atol=0.02)


def test_srgb_linear_curve():
    assert srgb_to_linear(0.5) == pytest.approx(0.21404, abs=1e-5)
    assert srgb_to_linear(0.04) == pytest.approx(0.04 / 12.92)
    assert linear_to_srgb(0.21404) == pytest.approx(0.5, abs=1e-5)


def test_round_trips_over_the_gamut():
    rgb = np.random.default_rng(0).random((500, 3))
    np.testing.assert_allclose(lab_to_srgb(srgb_to_lab(rgb)), rgb, atol=1e-9)
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(rgb)), rgb, atol=1e-12)


def test_shapes_broadcast_and_uint8_input():
    img = np.random.default_rng(1).random((4, 5, 3))
    assert srgb_to_lab(img).shape == (4, 5, 3)
    u8 = to_uint8(img)
    np.testing.assert_allclose(srgb_to_lab(u8), srgb_to_lab(u8 / 255.0))
    d = delta_e76(srgb_to_lab(img), srgb_to_lab(np.array([1.0, 1.0, 1.0])))
    assert d.shape == (4, 5)
    assert delta_e76([50, 0, 0], [50, 3, 4]) == pytest.approx(5.0)


def test_hex_parsing():
    assert hex_to_rgb("#ff8000") == (255, 128, 0)
    assert hex_to_rgb("0f0") == (0, 255, 0)
    assert hex_to_rgb("#12345") is None
    assert hex_to_rgb("#gg0000") is None
    assert rgb_to_hex((255, 128, 0)) == "#ff8000"
