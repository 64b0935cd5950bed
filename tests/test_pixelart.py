"""Pixel art from renders: colour budget, masks, thin features, cleanup, outline, own images."""
import numpy as np
import pytest
from PIL import Image

from taichi_voxify.color import delta_e76, lab_to_srgb, srgb_to_lab
from taichi_voxify.errors import InputError, OptionError
from taichi_voxify.palette import (PALETTE_METHODS, extract_palette, named_palette_rgb,
                                   resolve_palette)
from taichi_voxify.pixelart import (PIXEL_METHODS, apply_palette, cell_colors,
                                    load_pixel_art_dir, make_pixel_art, make_pixel_art_views)

from conftest import mesh_path

RENDER = 128
CELLS = 32


def _render_six(name):
    from taichi_voxify.cameras import axis_views
    from taichi_voxify.mesh import load_mesh
    from taichi_voxify.render import render_views

    r = render_views(load_mesh(mesh_path(name)), axis_views(), RENDER)
    return r.rgb, r.alpha


@pytest.fixture(scope="module", params=["spot/spot.obj", "Fox.glb"])
def six_views(request):
    return _render_six(request.param)


def _alpha_cells(alpha, cells):
    s = alpha.shape[-1] // cells
    return alpha.reshape(*alpha.shape[:-2], cells, s, cells, s).mean(axis=(-3, -1))


def _colour_count(images, masks):
    return len(np.unique(images[masks].reshape(-1, 3), axis=0))


@pytest.mark.parametrize("method", PIXEL_METHODS)
def test_shipped_meshes_stay_within_k_colours_and_match_the_silhouette(six_views, method):
    rgb, alpha = six_views
    art = make_pixel_art_views(rgb, alpha, CELLS, 6, method)
    assert art.images.shape == (6, CELLS, CELLS, 3) and art.images.dtype == np.float32
    assert _colour_count(art.images, art.masks) <= 6 and len(art.palette) <= 6
    target = _alpha_cells(alpha, CELLS) > 0.5
    iou = (target & art.masks).sum() / (target | art.masks).sum()
    assert iou >= 0.95
    assert np.all(art.images[~art.masks] == 1.0)  # white background
    np.testing.assert_array_equal(art.indices >= 0, art.masks)


@pytest.mark.parametrize("method", PALETTE_METHODS)
def test_palette_methods_on_the_six_views(six_views, method):
    """Every palette method, fed the unquantised cell colours of the six views, is
    deterministic for a seed and gives K distinct colours."""
    rgb, alpha = six_views
    cells = [cell_colors(rgb[v], alpha[v], CELLS) for v in range(6)]
    images = np.stack([lab_to_srgb(c.lab) for c in cells])
    masks = np.stack([c.mask for c in cells])
    first = extract_palette(images, masks, 6, method, seed=7)
    np.testing.assert_array_equal(first, extract_palette(images, masks, 6, method, seed=7))
    assert len(np.unique(first, axis=0)) == 6


def _darkest_near_eyes(rgb, alpha, art, cells):
    """For every black blob (an eye) in the renders: the darkest L* of the pixel art around it."""
    from scipy import ndimage

    lightness, art_lightness = srgb_to_lab(rgb)[..., 0], srgb_to_lab(art.images)[..., 0]
    s = rgb.shape[1] // cells
    darkest = []
    for v in range(len(rgb)):
        blobs, _ = ndimage.label((lightness[v] < 18) & (alpha[v] > 0.5))
        for rows, cols in ndimage.find_objects(blobs):
            r0, r1 = max(0, rows.start // s - 1), (rows.stop - 1) // s + 2
            c0, c1 = max(0, cols.start // s - 1), (cols.stop - 1) // s + 2
            darkest.append(art_lightness[v, r0:r1, c0:c1].min())
    return np.array(darkest)


def test_spot_keeps_its_eyes_where_plain_downscaling_loses_them():
    """Spot's black eyes are a third of a cell wide at 16 cells from a 128 render."""
    rgb, alpha = _render_six("spot/spot.obj")
    eyes = {m: _darkest_near_eyes(rgb, alpha, make_pixel_art_views(rgb, alpha, 16, 8, m), 16)
            for m in PIXEL_METHODS}
    assert len(eyes["kcentroid"]) >= 4  # both eyes, seen from the front and from above
    assert (eyes["kcentroid"] < 15).all() and (eyes["gerstner"] < 35).all()
    assert (eyes["nearest"] > 35).any() and (eyes["box"] > 35).all()


def test_single_view_api_and_determinism(six_views):
    rgb, alpha = six_views
    a_img, a_mask = make_pixel_art(rgb[4], alpha[4], cells=CELLS, colors=4, seed=1)
    b_img, b_mask = make_pixel_art(rgb[4], alpha[4], cells=CELLS, colors=4, seed=1)
    assert a_img.shape == (CELLS, CELLS, 3) and a_mask.dtype == bool
    np.testing.assert_array_equal(a_img, b_img)
    assert _colour_count(a_img, a_mask) <= 4


def _stripe_image(size=256, cells=32, stripe_px=3, offset_px=13):
    """A pale warm gradient with a dark stripe thinner than half a cell, off the cell centres."""
    y, x = np.mgrid[0:size, 0:size] / size
    rgb = np.stack([0.95 - 0.1 * y, 0.8 - 0.1 * x, 0.6 + 0 * x], -1)
    col = (size // cells) * 10 + offset_px % (size // cells)
    rgb[:, col:col + stripe_px] = [0.1, 0.1, 0.35]
    return rgb, np.ones((size, size)), col


def test_a_sub_cell_stripe_survives_where_nearest_downscaling_loses_it():
    rgb, alpha, col = _stripe_image()
    dark = srgb_to_lab(np.array([0.1, 0.1, 0.35]))
    for method, survives in (("kcentroid", True), ("gerstner", True), ("nearest", False)):
        img, mask = make_pixel_art(rgb, alpha, cells=32, colors=4, method=method)
        is_dark = delta_e76(srgb_to_lab(img), dark) < 15
        if survives:
            assert is_dark.any(axis=1).all(), method  # unbroken: every row shows the stripe
            assert is_dark.sum(axis=1).max() <= 2, method  # and it stays thin
            assert set(np.nonzero(is_dark)[1]) <= {col // 8, col // 8 + 1}
        else:
            assert not is_dark.any(), method


def test_a_strip_narrowing_out_of_a_region_stays_unbroken():
    """An orange edge one cell wide that narrows to 3/8 of a cell: no gap where it narrows."""
    orange = np.array([0.85, 0.5, 0.15])
    rgb, alpha = np.ones((128, 128, 3)), np.zeros((128, 128))
    alpha[16:, 8:] = 1.0
    rgb[16:, 8:] = [0.97, 0.95, 0.9]
    rgb[64:, 8:16] = orange
    rgb[16:64, 8:11] = orange
    img, _ = make_pixel_art(rgb, alpha, cells=16, colors=3)
    column = np.abs(img[:, 1] - orange).sum(-1) < 0.1
    assert column[8:].all()  # the wide part
    run = np.nonzero(column)[0]
    assert run[0] <= 6 and np.all(np.diff(run) == 1)  # the thin part continues it unbroken


def test_a_small_eye_survives_cleanup_and_stays_one_cell():
    """A dark 5x5 dot (40% of an 8x8 cell) straddling a cell corner is kept as one pixel."""
    rgb = np.full((128, 128, 3), [0.95, 0.85, 0.75])
    rgb[62:67, 30:35] = [0.05, 0.05, 0.05]
    img, mask = make_pixel_art(rgb, np.ones((128, 128)), cells=16, colors=3, cleanup=True)
    dark = img.sum(-1) < 0.5
    assert dark.sum() == 1
    assert mask.all()


def test_cleanup_removes_a_pixel_that_only_flipped_between_palette_colours():
    rgb = np.full((64, 64, 3), 0.62)
    rgb[24:32, 24:32] = 0.585  # one cell barely darker: it lands on the other grey
    palette = np.array([[140, 140, 140], [165, 165, 165], [20, 20, 20]], np.uint8)
    kept, _ = make_pixel_art(rgb, None, cells=8, colors=3, palette=palette, cleanup=False)
    cleaned, _ = make_pixel_art(rgb, None, cells=8, colors=3, palette=palette, cleanup=True)
    assert len(np.unique(kept.reshape(-1, 3), axis=0)) == 2
    assert len(np.unique(cleaned.reshape(-1, 3), axis=0)) == 1


def test_thin_parts_stay_in_the_mask():
    """A leg 30% of a cell wide would vanish under a plain 'mean alpha > 0.5' mask."""
    alpha = np.zeros((128, 128))
    alpha[16:64, 16:112] = 1.0  # a body
    alpha[64:120, 50:53] = 1.0  # a thin leg (3 of 8 pixels per cell)
    rgb = np.where(alpha[..., None] > 0, [0.8, 0.4, 0.1], 1.0)
    _, mask = make_pixel_art(rgb, alpha, cells=16, colors=2)
    assert mask[8:15, 6].all()  # the leg, attached to the body
    assert not mask[8:, 5].any() and not mask[8:, 7].any()  # and no wider
    assert mask[2:8, 2:14].all() and not mask[0:2].any()
    assert not (_alpha_cells(alpha, 16) > 0.5)[9:15].any()  # the leg is thin indeed


def test_a_part_a_cell_already_shows_is_not_widened_by_its_partial_edge():
    """An antenna 1.4 cells wide is one column of solid cells: the partly covered column
    beside it (0.375 of each cell) is its edge, not a thin part, and stays out of the mask,
    as it stays out of the mesh's alpha > 0.5 silhouette."""
    alpha = np.zeros((128, 128))
    alpha[64:, 16:112] = 1.0  # a body
    alpha[16:64, 48:59] = 1.0  # an antenna: cell column 6 full, column 7 three pixels of 8
    rgb = np.where(alpha[..., None] > 0, [0.2, 0.6, 0.3], 1.0)
    _, mask = make_pixel_art(rgb, alpha, cells=16, colors=2)
    np.testing.assert_array_equal(mask, _alpha_cells(alpha, 16) > 0.5)
    assert mask[2:8, 6].all() and not mask[:8, 7].any()


def test_outline_darkens_the_silhouette_without_new_colours():
    alpha = np.zeros((128, 128))
    alpha[32:96, 32:96] = 1.0
    rgb = np.where(alpha[..., None] > 0, [0.9, 0.6, 0.3], 1.0)
    palette = np.array([[230, 153, 76], [120, 70, 30], [30, 30, 30]], np.uint8)
    img, mask = make_pixel_art(rgb, alpha, cells=16, colors=3, palette=palette, outline=True)
    lum = srgb_to_lab(img)[..., 0]
    assert lum[4, 8] < lum[8, 8] - 10 and lum[8, 4] < lum[8, 8] - 10  # border darker than inside
    assert _colour_count(img, mask) <= 3


def test_named_and_hex_palettes_drive_the_pixel_art(six_views):
    rgb, alpha = six_views
    art = make_pixel_art_views(rgb, alpha, 16, 4, palette="pico8")
    pico = set(map(tuple, named_palette_rgb("pico8").tolist()))
    assert set(map(tuple, art.palette.tolist())) <= pico
    img, mask = make_pixel_art(rgb[0], alpha[0], 16, 2, palette="#ffffff,#000000,#ff8800")
    assert _colour_count(img, mask) <= 2


def test_sizes_that_are_not_multiples_and_non_square_cells():
    rgb = np.random.default_rng(0).random((100, 150, 3))
    img, mask = make_pixel_art(rgb, np.ones((100, 150)), cells=(20, 30), colors=5)
    assert img.shape == (20, 30, 3) and mask.all()
    half = np.zeros((100, 150), np.uint8)
    half[:, :75] = 255
    img, mask = make_pixel_art((rgb * 255).astype(np.uint8), half, cells=32, colors=5)
    assert img.shape == (32, 32, 3) and mask[:, :15].all() and not mask[:, 17:].any()


@pytest.mark.parametrize("kwargs, error, fragment", [
    (dict(cells=300), OptionError, "exceed"),
    (dict(cells=1), OptionError, "at least 2"),
    (dict(colors=1), OptionError, "2 to 32"),
    (dict(colors=33), OptionError, "2 to 32"),
    (dict(method="lanczos"), OptionError, "unknown pixel-art method"),
    (dict(palette="#ff0000,#nothex"), OptionError, "'#nothex'"),
])
def test_bad_options_are_refused_in_one_line(kwargs, error, fragment):
    rgb = np.full((64, 64, 3), 0.5)
    args = dict(cells=16, colors=4)
    args.update(kwargs)
    with pytest.raises(error) as err:
        make_pixel_art(rgb, np.ones((64, 64)), **args)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_bad_renders_are_refused():
    with pytest.raises(InputError, match="NaN"):
        make_pixel_art(np.full((32, 32, 3), np.nan), np.ones((32, 32)), cells=8)
    with pytest.raises(InputError, match="does not match"):
        make_pixel_art(np.ones((32, 32, 3)), np.ones((16, 16)), cells=8)
    with pytest.raises(InputError, match="empty"):
        make_pixel_art(np.ones((32, 32, 3)), np.zeros((32, 32)), cells=8)


def test_kcentroid_keeps_cell_modes_not_blends():
    """A cell 70% white and 30% black reads white (its mode), not grey as a box filter gives."""
    rgb = np.ones((16, 16, 3))
    rgb[:, :5] = 0.0
    cc = cell_colors(rgb, np.ones((16, 16)), 1 * 2, "kcentroid")
    box = cell_colors(rgb, np.ones((16, 16)), 2, "box")
    assert cc.lab[0, 0, 0] < 5 and cc.lab[0, 1, 0] > 99  # left cell black (majority), right white
    assert 20 < box.lab[0, 0, 0] < 80



def _four_cells(first_white, second):
    """A 20 x 20 render, four 10 x 10 cells: the first (top left) `first_white` of 100 pixels
    white (in raster order) and the rest black, the other three all `second`."""
    rgb = np.full((20, 20, 3), float(second))
    first = np.zeros(100)
    first[:first_white] = 1.0
    rgb[:10, :10] = first.reshape(10, 10)[..., None]
    return rgb


@pytest.mark.parametrize("first_white, second, palette, expect", [
    # a cell 30% white reads black, its majority, as the eye reads it up close: a mean of light
    # (linear sRGB) would call it white, so dark parts would shrink at every boundary
    (30, 1.0, "#ffffff,#000000", (0, 0, 0)),
    # a cell 55% white, with a mid grey in the palette, reads grey: its look at a glance, not
    # its majority (the palette stays the regions' colours; a cell may still fall between)
    (55, 0.0, "#ffffff,#000000,#777777", (0x77, 0x77, 0x77)),
])
def test_a_cell_of_two_colours_takes_the_palette_colour_nearest_its_look(first_white, second,
                                                                         palette, expect):
    image, mask = make_pixel_art(_four_cells(first_white, second), np.ones((20, 20)), cells=2,
                                 palette=palette, colors=len(palette.split(",")))
    assert mask.all()
    np.testing.assert_allclose(image[0, 0], np.array(expect) / 255.0, atol=1e-6)
    np.testing.assert_allclose(image.reshape(4, 3)[1:], second, atol=1e-6)


def test_the_palette_spends_its_twins_on_the_cells_looks():
    """Cells offer the palette their regions' colours (two oranges 4 ΔE apart among them) but
    a quarter of them look light orange (an orange/white boundary): the palette gives the
    light orange a slot instead of keeping two oranges. A named palette is left as it is."""
    from taichi_voxify.pixelart import CellColors, cells_palette

    regions = np.array([(219, 135, 41), (207, 128, 38), (254, 246, 237), (83, 52, 16)], float)
    lab = srgb_to_lab(np.repeat(regions / 255.0, 10, axis=0).reshape(4, 10, 3))
    look = lab.copy()
    look[:2, 5:] = srgb_to_lab(np.array([239, 185, 136], np.uint8))  # from the oranges' cells
    cells = [CellColors(lab=lab, mask=np.ones((4, 10), bool), feature=np.zeros((4, 10), bool),
                        look=look)]
    found = srgb_to_lab(cells_palette(cells, 4, "kmeans"))
    assert delta_e76(found, srgb_to_lab(np.array([239, 185, 136], np.uint8))).min() < 2.0
    for colour in regions[2:].astype(np.uint8):
        assert delta_e76(found, srgb_to_lab(colour)).min() < 2.0
    pico = cells_palette(cells, 4, "pico8")
    assert all(c in named_palette_rgb("pico8").tolist() for c in pico.tolist())

# --- bring your own pixel art ---------------------------------------------------------------

def _write_views(folder, stems, size=16, alpha=True, sizes=None):
    rng = np.random.default_rng(0)
    for i, stem in enumerate(stems):
        n = (sizes or {}).get(stem, size)
        rgba = np.zeros((n, n, 4), np.uint8)
        rgba[..., :3] = rng.integers(0, 200, size=(n, n, 3))
        rgba[n // 4:3 * n // 4, n // 4:3 * n // 4, 3] = 255
        if alpha:
            Image.fromarray(rgba, "RGBA").save(folder / f"{stem}.png")
        else:
            rgb = np.where(rgba[..., 3:] > 0, rgba[..., :3], 255).astype(np.uint8)
            Image.fromarray(rgb, "RGB").save(folder / f"{stem}.png")


def test_load_pixel_art_dir_with_alpha(tmp_path):
    _write_views(tmp_path, ["px", "nx", "py", "ny", "pz", "nz"])
    images, masks = load_pixel_art_dir(tmp_path, cells=16)
    assert images.shape == (6, 16, 16, 3) and masks.shape == (6, 16, 16)
    assert masks.sum() == 6 * 64 and np.all(images[~masks] == 1.0)


def test_own_pixel_art_snaps_to_a_palette(tmp_path):
    _write_views(tmp_path, ["px", "nx", "py", "ny", "pz", "nz"])
    images, masks = load_pixel_art_dir(tmp_path)
    palette = resolve_palette("kmeans", images, masks, 5)
    snapped = apply_palette(images, masks, palette)
    assert snapped.dtype == np.float32 and _colour_count(snapped, masks) <= 5
    assert np.all(snapped[~masks] == 1.0)


def test_load_pixel_art_dir_signed_names_without_alpha(tmp_path):
    _write_views(tmp_path, ["+x", "-x", "+y", "-y", "+z", "-z"], alpha=False)
    images, masks = load_pixel_art_dir(tmp_path)
    assert masks.sum() == 6 * 64


@pytest.mark.parametrize("case, fragment", [
    ("missing", "lacks nz.png"),
    ("sizes", "differ in size"),
    ("cells", "cells=32"),
    ("both", "keep one"),
    ("nodir", "does not exist"),
    ("square", "must be square"),
])
def test_load_pixel_art_dir_refuses_bad_folders(tmp_path, case, fragment):
    stems = ["px", "nx", "py", "ny", "pz", "nz"]
    if case == "missing":
        _write_views(tmp_path, stems[:5])
    elif case == "sizes":
        _write_views(tmp_path, stems, sizes={"pz": 24})
    elif case == "both":
        _write_views(tmp_path, stems + ["+z"])
    else:
        _write_views(tmp_path, stems)
    if case == "square":
        Image.new("RGBA", (16, 12)).save(tmp_path / "py.png")
    folder = tmp_path / "absent" if case == "nodir" else tmp_path
    with pytest.raises(InputError) as err:
        load_pixel_art_dir(folder, cells=32 if case == "cells" else None)
    assert fragment in str(err.value) and "\n" not in str(err.value)


# --- the command-line example ---------------------------------------------------------------

def _example_main():
    from taichi_voxify.commands.pixelart import main

    return main


def test_example_turns_a_png_into_upscaled_pixel_art(tmp_path, capsys):
    rgba = np.zeros((60, 90, 4), np.uint8)
    rgba[10:50, 10:80] = [200, 120, 40, 255]
    rgba[25:28, 40:43] = [10, 10, 10, 255]  # an eye
    Image.fromarray(rgba, "RGBA").save(tmp_path / "in.png")
    main = _example_main()
    out = tmp_path / "out.png"
    assert main([str(tmp_path / "in.png"), "--cells", "30", "--colors", "3", "--scale", "4",
                 "--out", str(out)]) == 0
    result = np.asarray(Image.open(out))
    assert result.shape == (80, 120, 4)  # 20 x 30 cells, 4x upscaled
    assert result[0, 0, 3] == 0 and result[40, 60, 3] == 255
    assert (result[..., :3].sum(-1) < 100).any()  # the eye survived
    assert main([str(tmp_path / "in.png"), "--palette", "#12,#ffffff"]) == 2
    assert main([str(tmp_path / "missing.png")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: bad colour '#12' in palette: write colours as #rrggbb or #rgb",
                   f"error: no such image: {tmp_path / 'missing.png'}"]


def test_sixteen_bit_grey_png_is_scaled_not_clipped(tmp_path):
    from PIL import Image

    from taichi_voxify.pixelart import load_image

    grey = np.full((8, 8), 32768, np.uint16)  # mid grey in 16 bits
    grey[:4] = 0
    Image.fromarray(grey).save(tmp_path / "g16.png")
    rgb, alpha = load_image(tmp_path / "g16.png")
    assert abs(rgb[6, 6, 0] - 0.5) < 0.01  # not clipped to white
    assert np.allclose(rgb[:4], 0.0) and np.allclose(alpha[:4], 1.0)
