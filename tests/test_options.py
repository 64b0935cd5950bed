"""Options: one frozen, keyword-only, checked-once settings object behind convert and the CLI."""
import dataclasses

import numpy as np
import pytest

from taichi_voxify import OptionError, Options


def test_keyword_only_and_frozen():
    with pytest.raises(TypeError):
        Options(32)  # positional settings are what this object replaced
    opts = Options(resolution=16)
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.resolution = 32


def test_values_are_normalised_once():
    opts = Options(resolution="16", formats="vox,png,vox", palette=np.array([[255, 0, 0],
                                                                             [0, 0, 255]]))
    assert opts.resolution == 16 and opts.formats == ("vox", "png")
    assert opts.palette == ((255, 0, 0), (0, 0, 255))
    hash(opts)  # hashable: no arrays inside


@pytest.mark.parametrize("kw, needle", [
    (dict(resolution=4), "resolution"), (dict(colors=33), "colo"), (dict(seed=-1), "seed"),
    (dict(preset="slow"), "preset"), (dict(front="+w"), "front"), (dict(up="x"), "up"),
    (dict(fill="yes"), "fill"), (dict(threads=0), "threads"), (dict(arch="tpu"), "arch"),
    (dict(formats=["vox", "fbx"]), "fbx"), (dict(clip_weights="/no/such.pt"), "checkpoint"),
    (dict(formats="lego", resolution=200), "LEGO"), (dict(palette="#12345g,#000"), "#12345g"),
])
def test_bad_values_are_one_line_option_errors(kw, needle):
    with pytest.raises(OptionError, match=needle) as err:
        Options(**kw)
    assert "\n" not in str(err.value)


def test_replace_checks_again_and_make_names_unknown_fields():
    opts = Options(resolution=16)
    assert opts.replace(colors=4).colors == 4 and opts.replace(colors=4).resolution == 16
    with pytest.raises(OptionError, match="resolution"):
        opts.replace(resolution=1000)
    with pytest.raises(OptionError, match="'colours'"):
        Options.make(opts, colours=4)
    assert Options.make(opts) is opts and Options.make(None, seed=3).seed == 3


def test_command_line_is_built_from_the_fields():
    from taichi_voxify.cli import build_parser

    args = build_parser().parse_args(["m.obj", "--res", "16", "--fill", "--front=-x",
                                      "--formats", "vox"])
    opts = Options.from_args(args)
    assert (opts.resolution, opts.fill, opts.front, opts.formats) == (16, True, "-x", ("vox",))
    untouched = {f.name: getattr(Options(), f.name) for f in dataclasses.fields(Options)
                 if f.name not in ("resolution", "fill", "front", "formats")}
    assert {k: getattr(opts, k) for k in untouched} == untouched
    flagged = [f.name for f in dataclasses.fields(Options) if "flag" in f.metadata]
    assert all(f.dest in flagged or f.dest in ("help", "mesh", "out", "quiet", "json", "debug")
               for f in build_parser()._actions)
    assert len(flagged) == len([a for a in build_parser()._actions if a.dest in flagged])


def test_one_list_of_presets():
    from taichi_voxify import options, stage1, stage2

    assert set(stage1.PRESETS) == set(stage2.PRESETS) == set(options.PRESETS)
