"""Art quality end to end: cell colours from covered samples only (a dark object over white keeps
dark edges), sub-voxel parts kept as lines, and the feature-recall metric on a real character."""
import numpy as np
import pytest
from PIL import Image

from taichi_voxify.color import srgb_to_lab
from taichi_voxify.metrics import feature_recall, mesh_silhouettes, small_features
from taichi_voxify.palette import PALETTE_METHODS
from taichi_voxify.pixelart import (PIXEL_METHODS, cells_palette, load_pixel_art_dir,
                                    quantise_views, view_cells)

DATA = __import__("pathlib").Path(__file__).parent / "data"


def _write_sphere_obj(folder, texture):
    """A UV sphere textured with `texture` (uint8 (H, W, 3)): OBJ + MTL + PNG in folder."""
    Image.fromarray(texture).save(folder / "dark.png")
    (folder / "dark.mtl").write_text("newmtl dark\nKd 1 1 1\nmap_Kd dark.png\n")
    rings, segments = 10, 16
    lines = ["mtllib dark.mtl", "usemtl dark"]
    for i in range(rings + 1):
        theta = np.pi * i / rings
        for j in range(segments + 1):
            phi = 2 * np.pi * j / segments
            lines.append(f"v {np.sin(theta) * np.cos(phi):.6f} {np.cos(theta):.6f} "
                         f"{np.sin(theta) * np.sin(phi):.6f}")
            lines.append(f"vt {j / segments:.6f} {1 - i / rings:.6f}")
    for i in range(rings):
        for j in range(segments):
            a, b = i * (segments + 1) + j + 1, (i + 1) * (segments + 1) + j + 1
            lines.append(f"f {a}/{a} {b}/{b} {b + 1}/{b + 1}")
            lines.append(f"f {a}/{a} {b + 1}/{b + 1} {a + 1}/{a + 1}")
    (folder / "dark.obj").write_text("\n".join(lines) + "\n")
    return folder / "dark.obj"


def test_dark_textured_mesh_gives_no_light_cells_for_any_method(tmp_path):
    """Edge cells of a near-black object over white take the object's colour, not a blend
    with the background, for every pixel-art method and every palette method."""
    from taichi_voxify.cameras import axis_views
    from taichi_voxify.mesh import load_mesh
    from taichi_voxify.render import render_views

    rng = np.random.default_rng(0)
    texture = rng.integers(0, 40, (8, 8, 3), dtype=np.uint8)
    texture[::2, :, 0] += 30  # near-black and dark red
    lightest = srgb_to_lab(texture.reshape(-1, 3)).max(axis=0)[0]
    renders = render_views(load_mesh(_write_sphere_obj(tmp_path, texture)), axis_views(), 96)
    edge = (renders.alpha > 0) & (renders.alpha < 1)
    assert edge.sum() > 100  # the silhouette has partly covered pixels
    assert srgb_to_lab(renders.covered_rgb[edge])[:, 0].max() <= lightest + 1.0
    for pixel_method in PIXEL_METHODS:
        cells = view_cells(renders.covered_rgb, renders.alpha, 12, pixel_method)
        for palette in PALETTE_METHODS:
            art = quantise_views(cells, cells_palette(cells, 4, palette, pixel_method))
            light = srgb_to_lab(art.images[art.masks])[:, 0].max()
            assert light <= lightest + 2.0, (pixel_method, palette, light, lightest)


def test_own_pixel_art_keeps_the_colour_of_half_transparent_pixels(tmp_path):
    """--pixel-art folders: a pixel with alpha above one half is foreground in its own colour,
    not that colour mixed with white (which would bring a light colour into the palette)."""
    from taichi_voxify.palette import resolve_palette

    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[2:6, 2:6] = (30, 10, 10, 255)
    rgba[1, 2:6] = rgba[6, 2:6] = (30, 10, 10, 150)  # soft edge rows, alpha 0.59
    for stem in ("px", "nx", "py", "ny", "pz", "nz"):
        Image.fromarray(rgba, "RGBA").save(tmp_path / f"{stem}.png")
    images, masks = load_pixel_art_dir(tmp_path, cells=8)
    assert masks[0].sum() == 24
    assert np.allclose(images[masks], np.array([30, 10, 10]) / 255.0, atol=1e-6)
    palette = resolve_palette("kmeans", images, masks, 2)
    assert palette.tolist() == [[30, 10, 10]]


def test_a_needle_thinner_than_a_voxel_becomes_a_line(tmp_path):
    """A needle a fifth of a voxel wide used to be refused ("the renders are empty"); it is the
    only thing along its rays, so it keeps its cells and comes out as a line of voxels."""
    from taichi_voxify.pipeline import run_pipeline

    w = 0.012  # box units; the needle is 1 long, voxels 1/15 wide
    corners = [(x, y, z) for x in (-0.5, 0.5) for y in (-w / 2, w / 2) for z in (-w / 2, w / 2)]
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    text = "".join(f"v {x} {y} {z}\n" for x, y, z in corners)
    text += "".join(f"f {a + 1} {b + 1} {c + 1}\nf {a + 1} {c + 1} {d + 1}\n"
                    for a, b, c, d in quads)
    (tmp_path / "needle.obj").write_text(text)
    conv = run_pipeline(tmp_path / "needle.obj", resolution=15, colors=2, preset="test",
                        clip="off")
    filled = np.argwhere(conv.art.indices > 0)
    assert len(set(map(tuple, filled[:, 1:]))) == 1  # one row of voxels
    assert len(filled) >= 13  # of the 15 it crosses
    assert conv.metrics["iou_mean"] >= 0.8  # against the coverage > 0 silhouettes


def test_mesh_silhouettes_fall_back_to_any_coverage_only_where_empty():
    alpha = np.zeros((6, 4, 4))
    alpha[0, 1, 1:3] = 0.2  # edge-on: nothing above one half
    alpha[1, 1, 1], alpha[1, 2, 2] = 0.9, 0.2
    masks = mesh_silhouettes(alpha)
    assert masks[0].sum() == 2 and masks[0, 1, 1:3].all()
    assert masks[1].sum() == 1 and masks[1, 1, 1]
    assert not masks[2:].any()


def _face_view():
    """One 9 x 9 view: a skin-coloured square with one dark eye cell at (4, 4)."""
    rgb = np.ones((1, 9, 9, 3))
    rgb[0, 1:8, 1:8] = (1.0, 0.75, 0.35)
    rgb[0, 4, 4] = (0.1, 0.1, 0.1)
    return rgb, rgb.min(-1) < 1


def test_small_features_finds_an_eye_but_not_an_edge_or_a_stripe():
    rgb, mask = _face_view()
    features, surround = small_features(srgb_to_lab(rgb), mask)
    assert np.argwhere(features).tolist() == [[0, 4, 4]]
    assert np.allclose(surround[0, 4, 4], srgb_to_lab(np.array([1.0, 0.75, 0.35])), atol=1e-6)
    rgb[0, 2, 1:8] = (0.1, 0.1, 0.1)  # a long stripe: a rim, not a small feature
    rgb[0, 6, 1:8] = (0.55, 0.375, 0.175)  # not a feature either: a blend of the two
    features, _ = small_features(srgb_to_lab(rgb), mask)
    assert np.argwhere(features).tolist() == [[0, 4, 4]]


@pytest.mark.parametrize("shift, colour, kept", [
    ((0, 0), (0.2, 0.1, 0.1), 1.0),  # right place, dark: the same colour family
    ((0, 1), (0.1, 0.1, 0.1), 1.0),  # one cell over still counts
    ((2, 0), (0.1, 0.1, 0.1), 0.0),  # two cells over does not
    ((0, 0), (0.9, 0.7, 0.3), 0.0),  # painted over with the skin colour
])
def test_feature_recall_place_and_colour_family(shift, colour, kept):
    mesh_rgb, mask = _face_view()
    art = mesh_rgb.copy()
    art[0, 4, 4] = (1.0, 0.75, 0.35)
    art[0, 4 + shift[0], 4 + shift[1]] = colour
    assert feature_recall(art, mask, mesh_rgb, mask) == (kept, 1)
    plain = mesh_rgb.copy()
    plain[0, 4, 4] = (1.0, 0.75, 0.35)
    assert np.isnan(feature_recall(art, mask, plain, mask)[0])  # no feature: nan, not 1 or 0


def test_full_keeps_more_of_the_kenney_characters_face_than_voxelize():
    """The front view of Kenney's character (eyes, mouth) at N=16: our pipeline keeps more of
    its small features than plain voxelisation does."""
    from taichi_voxify.cameras import VIEW_NAMES
    from taichi_voxify.evaluation import run_method
    from taichi_voxify.metrics import render_voxels_axis
    from taichi_voxify.pipeline import prepare

    prep = prepare(DATA / "kenney_character" / "character.glb", resolution=16, colors=6,
                   preset="test", clip="off")
    front = VIEW_NAMES.index("+z")
    ref = prep.axis_lowres
    ref_masks = mesh_silhouettes(ref.alpha)
    recall = {}
    for method in ("voxelize", "full"):
        images, masks, _ = render_voxels_axis(run_method(method, prep)[0])
        recall[method], features = feature_recall(images[front:front + 1],
                                                  masks[front:front + 1],
                                                  ref.covered_rgb[front:front + 1],
                                                  ref_masks[front:front + 1])
        assert features >= 4
    assert recall["full"] >= recall["voxelize"] + 0.25, recall
