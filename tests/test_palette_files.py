"""Palette files in (.gpl, .hex, Paint.NET .txt, .png) and out (.gpl, .hex, K x 1 strip)."""
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from taichi_voxify.errors import InputError, OptionError
from taichi_voxify.palette import parse_palette, resolve_palette
from taichi_voxify.palette_files import (MAX_FILE_COLORS, read_palette_file,
                                         write_palette_files)

PAL = np.array([[255, 0, 0], [0, 128, 0], [10, 20, 30], [255, 255, 255]], np.uint8)


def test_written_files_read_back_as_the_same_palette(tmp_path):
    names = ("red brick", None, "night", "snow")
    paths = write_palette_files(PAL, str(tmp_path / "cow_palette"), "cow", names)
    assert [p.rsplit("/", 1)[1] for p in paths] == ["cow_palette.gpl", "cow_palette.hex",
                                                    "cow_palette_strip.png"]
    gpl = read_palette_file(paths[0])
    np.testing.assert_array_equal(gpl.colors, PAL)
    assert gpl.names == names  # an unnamed colour is written with its hex code, read as unnamed
    for path in paths[1:]:
        np.testing.assert_array_equal(read_palette_file(path).colors, PAL)
    strip = np.asarray(Image.open(paths[2]))
    assert strip.shape == (1, 4, 3)
    assert (tmp_path / "cow_palette.hex").read_text() == "ff0000\n008000\n0a141e\nffffff\n"


def test_gimp_lospec_and_paint_net_files_parse(tmp_path):
    (tmp_path / "a.gpl").write_text("GIMP Palette\nName: t\nColumns: 2\n# note\n"
                                    "  1   2   3\tUntitled\n200 100 50 Warm orange\n1 2 3 dup\n")
    gpl = read_palette_file(tmp_path / "a.gpl")
    np.testing.assert_array_equal(gpl.colors, [[1, 2, 3], [200, 100, 50]])  # repeats dropped
    assert gpl.names == (None, "Warm orange")
    (tmp_path / "b.hex").write_text("#FF8800\n\n00ff00\n")
    np.testing.assert_array_equal(read_palette_file(tmp_path / "b.hex").colors,
                                  [[255, 136, 0], [0, 255, 0]])
    (tmp_path / "c.txt").write_text("; paint.net Palette File\n;colours\nFF0000FF\n80FFFF00 ;x\n")
    np.testing.assert_array_equal(read_palette_file(tmp_path / "c.txt").colors,
                                  [[0, 0, 255], [255, 255, 0]])


def test_any_image_gives_its_distinct_opaque_colours_in_reading_order(tmp_path):
    img = np.zeros((3, 4, 4), np.uint8)
    img[..., 3] = 255
    img[0, :2] = [9, 9, 9, 255]
    img[1, 3] = [200, 0, 0, 0]  # transparent: not a colour
    img[2, 1] = [0, 0, 250, 255]
    Image.fromarray(img, "RGBA").save(tmp_path / "pic.png")
    np.testing.assert_array_equal(read_palette_file(tmp_path / "pic.png").colors,
                                  [[9, 9, 9], [0, 0, 0], [0, 0, 250]])


def _png_header_only(width, height):
    """A PNG whose header claims width x height but whose pixel data is one empty byte."""
    def chunk(tag, data):
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0,
                                                                0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b""))


@pytest.mark.parametrize("name, content, fragment", [
    ("bad.gpl", "JASC-PAL\n", "not a GIMP palette"),
    ("bad2.gpl", "GIMP Palette\n1 2\n", "line 2"),
    ("bad3.gpl", "GIMP Palette\n1 2 300 x\n", "0..255"),
    ("bad.hex", "ff0000\nnot a colour\n", "line 2"),
    ("bad.txt", "FF0000\n", "AARRGGBB"),
    ("empty.hex", "\n", "no colours"),
    ("huge.png", _png_header_only(9000, 9000), "over the limit"),
    ("junk.png", b"not a png at all", "cannot read palette image"),
])
def test_bad_palette_files_are_one_line_input_errors(tmp_path, name, content, fragment):
    path = tmp_path / name
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    with pytest.raises(InputError, match=fragment) as err:
        read_palette_file(path)
    assert "\n" not in str(err.value)


def test_too_many_colours_and_missing_files_are_refused(tmp_path):
    codes = np.arange(MAX_FILE_COLORS + 1)
    rgb = np.stack([codes % 256, codes // 256, np.zeros_like(codes)], 1).astype(np.uint8)
    Image.fromarray(rgb[None]).save(tmp_path / "many.png")
    with pytest.raises(InputError, match="257 distinct colours"):
        read_palette_file(tmp_path / "many.png")
    with pytest.raises(OptionError, match="does not exist"):
        parse_palette(str(tmp_path / "absent.gpl"))
    (tmp_path / "one.hex").write_text("ff0000\n")
    with pytest.raises(InputError, match="at least 2"):
        parse_palette(str(tmp_path / "one.hex"))


def test_a_palette_file_is_a_palette_request(tmp_path):
    write_palette_files(PAL, str(tmp_path / "p"), "p")
    spec = parse_palette(str(tmp_path / "p.gpl"), k=2)
    assert spec.kind == "colors" and spec.k == 2
    images = np.zeros((1, 2, 2, 3))
    images[0, 0] = [1.0, 0.05, 0.0]  # near red
    images[0, 1] = [0.03, 0.08, 0.12]  # near night
    masks = np.ones((1, 2, 2), bool)
    # more colours than asked: those that fit the images best; as many: all of them, exactly
    np.testing.assert_array_equal(resolve_palette(str(tmp_path / "p.gpl"), images, masks, k=2),
                                  PAL[[0, 2]])
    np.testing.assert_array_equal(resolve_palette(str(tmp_path / "p_strip.png"), images, masks,
                                                  k=4), PAL)


def test_palette_names_come_from_named_palettes_and_named_files(tmp_path):
    from taichi_voxify.palette import named_palette_rgb, palette_names

    pico = named_palette_rgb("pico8")[[2, 0]]
    assert palette_names(pico, "pico8") == ("dark-purple", "black")
    write_palette_files(PAL, str(tmp_path / "p"), "p", ("red brick", None, "night", "snow"))
    assert palette_names(PAL[[2, 1]], str(tmp_path / "p.gpl")) == ("night", None)
    assert palette_names(PAL, "kmeans") == (None,) * 4
