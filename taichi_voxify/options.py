"""Every setting of one conversion in one frozen object, checked once when it is made.

`convert`, `run_pipeline`, `prepare`, the `voxify` command and the batch runner all build an
`Options`; nothing downstream checks a value again. To add a setting: one field below (with
`flag(...)` when the command line sets it: the parser is built from these fields) and, when not
every value of its type is allowed, one check in `__post_init__`.
"""
import os
from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np

from .backend import CONVERSION_ARCHS
from .errors import OptionError, ResourceError
from .outputs import DEFAULT_FORMATS, FORMATS
from .views import DEFAULT_FRONT, VIEW_NAMES

PRESETS = ("fast", "paper", "test")  # Stage1Config.preset / Stage2Config.preset hold their values
DEPTH_SOURCES = ("mesh", "stage1")
UP_AXES = ("y", "z")
CLIP_MODES = ("auto", "off", "required")
MIN_RESOLUTION = 8
MAX_RESOLUTION = 256  # .vox holds at most 256 voxels a side; larger grids need > 4 GB here
MAX_SEED = 2**31 - 1  # Taichi's random_seed is a C int; numpy refuses negative seeds


def flag(default, help, name=None, **argparse_kwargs):
    """A field the command line sets: `--name` (from the field's name unless given)."""
    return field(default=default, metadata=dict(flag=name, help=help, argparse=argparse_kwargs))


@dataclass(frozen=True, kw_only=True)
class Options:
    resolution: int = flag(32, "voxels a side, 8..256 (default 32)", name="--res", type=int)
    colors: int = flag(6, "palette size K, 2..32 (default 6)", type=int)
    # a method or named palette, hex colours '#rrggbb,...', or (K, 3) uint8 colours
    palette: object = flag("kmeans", "kmeans | kmeans_rare | maxmin | mediancut | lego | pico8 | "
                                     "minecraft | '#rrggbb,#rrggbb,...' | a palette file "
                                     "(.gpl .hex .txt .png) (default kmeans)")
    preset: str = flag("fast", "fast (CPU) | paper (authors' counts) | test")
    seed: int = flag(0, "random seed (same seed, same result)", type=int)
    pixel_art: str = flag(None, "folder of six pixel-art PNGs (px nx py ny pz nz .png) to use "
                                "as targets", metavar="DIR")
    pixel_method: str = flag("kcentroid", "our pixel-art generator: kcentroid | gerstner | box | "
                                          "nearest")
    clip: str = flag("auto", "auto | off | required (patch CLIP loss)")
    clip_weights: str = flag(None, "local open_clip ViT-B-32 checkpoint", metavar="PATH")
    fill: bool = flag(False, "fill the closed interior", action="store_true")
    shell: bool = flag(False, "keep only the voxels seen from outside (hollow: for printing and "
                              "LEGO)", action="store_true")
    mesh_style: str = flag("materials", ".glb/.obj/.ply: materials (one per colour) | texture "
                                        "(one material textured by the palette strip)")
    depth_source: str = flag("mesh", "Stage 2 depth target: mesh | stage1")
    up: str = flag("y", "up axis of the file: y (glTF) or z")
    front: str = flag(DEFAULT_FRONT, "view the object faces: +x -x +y -y +z -z; its colours "
                                     "weigh x4 in the palette (default +z, the glTF front; -z "
                                     "for the bundled cow)")
    arch: str = flag("auto", "auto | cpu | cuda (used when this starts Taichi)")
    engine: str = flag("auto", "grid of both stages: auto | dense | sparse (auto: sparse 4^3 "
                               "blocks for Stage 1 from a 64^3 coarse field, for Stage 2 from "
                               "N=64)")
    threads: int = flag(None, "CPU threads for Taichi (used when this starts Taichi)", type=int)
    formats: tuple = flag(DEFAULT_FORMATS, f"comma list of {','.join(FORMATS)} "
                                           f"(default {','.join(DEFAULT_FORMATS)})")
    lego_support: bool = flag(False, "LEGO plan: hidden support bricks under bricks that would "
                                     "hang in the air and between pieces", action="store_true")
    lego_proportions: str = flag("cube", "LEGO plan: cube (a brick per voxel, model 1.2x taller) "
                                         "| brick (height resampled by 5/6, keeps the shape)")
    force: bool = flag(False, "replace files in the output folder that voxify did not write "
                              "(never the input files)", action="store_true")
    # research switches (the ablations of examples/evaluate.py) and whole-stage overrides
    ortho: bool = True
    use_gumbel: bool = True
    stage1_config: object = None  # a Stage1Config instead of the preset's
    stage2_config: object = None  # a Stage2Config instead of the preset's (ignores fill)

    def __post_init__(self):
        from .palette import check_colors, parse_palette
        from .pixelart import PIXEL_METHODS
        from .voxelart import parse_resolution

        seed = self.seed
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) \
                or not 0 <= seed <= MAX_SEED:
            raise OptionError(f"seed must be a whole number from 0 to {MAX_SEED}, got {seed!r}")
        self._set(seed=int(seed),
                  resolution=parse_resolution(self.resolution, MIN_RESOLUTION, MAX_RESOLUTION),
                  colors=check_colors(self.colors))
        spec = parse_palette(self.palette, self.colors)
        if spec.kind == "colors" and not isinstance(self.palette, str):
            self._set(palette=tuple(tuple(int(v) for v in c) for c in spec.colors))
        _one_of("preset", self.preset, PRESETS)
        _one_of("depth_source", self.depth_source, DEPTH_SOURCES)
        _one_of("pixel_method", self.pixel_method, PIXEL_METHODS)
        _one_of("clip", self.clip, CLIP_MODES)
        _one_of("up", self.up, UP_AXES)
        _one_of("front", self.front, VIEW_NAMES)
        _one_of("arch", self.arch, ("auto",) + CONVERSION_ARCHS)
        from .stage2.sparse import ENGINES

        _one_of("engine", self.engine, ENGINES)
        if self.engine == "sparse" and not (self.ortho and self.use_gumbel):
            raise OptionError("engine 'sparse' runs the axis views with palette logits; the "
                              "ortho/use_gumbel ablations need engine 'dense' or 'auto'")
        from .export.meshing import MESH_STYLES

        _one_of("mesh_style", self.mesh_style, MESH_STYLES)
        for name in ("fill", "shell", "force", "ortho", "use_gumbel", "lego_support"):
            if not isinstance(getattr(self, name), bool):
                raise OptionError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.fill and self.shell:
            raise OptionError("fill and shell contradict each other: choose one")
        if self.threads is not None and (isinstance(self.threads, bool) or
                                         not isinstance(self.threads, (int, np.integer))
                                         or self.threads < 1):
            raise OptionError(f"threads must be a whole number of at least 1, got {self.threads!r}")
        if self.clip_weights is not None and not os.path.isfile(self.clip_weights):
            raise OptionError(f"CLIP checkpoint {self.clip_weights} does not exist")
        self._set(formats=_parse_formats(self.formats))
        from .lego import PROPORTIONS, check_lego_size

        _one_of("lego_proportions", self.lego_proportions, PROPORTIONS)
        if "lego" in self.formats:
            check_lego_size((self.resolution,) * 3)
        check_memory(self.resolution, self.colors)

    def _set(self, **values):
        """Store normalised values (e.g. '16' -> 16) on the frozen instance, once, while checking."""
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def replace(self, **changes):
        """A copy with some fields changed, checked again."""
        return replace(self, **changes)

    def as_dict(self):
        """Plain values for reports and metadata (the stage configs as their own dicts)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("stage1_config", "stage2_config"):
            out[name] = None if out[name] is None else asdict(out[name])
        out["formats"] = list(self.formats)
        if not isinstance(self.palette, str):
            out["palette"] = [list(c) for c in self.palette]
        return out

    @classmethod
    def make(cls, options=None, **changes):
        """`options` with `changes` applied, or new Options from `changes` (what convert takes)."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise OptionError(f"unknown option {unknown[0]!r}: Options has {', '.join(sorted(names))}")
        if options is None:
            return cls(**changes)
        if not isinstance(options, cls):
            raise OptionError(f"options must be a taichi_voxify.Options, got {type(options).__name__}")
        return options.replace(**changes) if changes else options

    # --- the command line ------------------------------------------------------------------

    @classmethod
    def add_arguments(cls, parser):
        """One argparse option per flagged field; defaults stay None so `from_args` can tell
        'not given' (take the field's default) from a given value."""
        for f in fields(cls):
            if "flag" not in f.metadata:
                continue
            kwargs = dict(f.metadata["argparse"])
            if kwargs.get("action") != "store_true":
                kwargs["default"] = None
            parser.add_argument(f.metadata["flag"] or "--" + f.name.replace("_", "-"),
                                dest=f.name, help=f.metadata["help"], **kwargs)

    @classmethod
    def from_args(cls, args, **overrides):
        """Options from parsed arguments (those not given keep the field defaults)."""
        given = {f.name: getattr(args, f.name) for f in fields(cls)
                 if "flag" in f.metadata and getattr(args, f.name, None) is not None}
        given.update(overrides)
        return cls(**given)


def check_memory(resolution, colors, budget_gb=8.0):
    """Refuse grids whose Stage 2 state (density, logits, Adam moments, gradients) won't fit."""
    per_voxel = 4 * (4 + 4 * colors + 16)  # density/logit/rgb values with their Adam state
    need = resolution ** 3 * per_voxel
    if need > budget_gb * 2**30:
        raise ResourceError(f"a {resolution}^3 grid with {colors} colours needs about "
                            f"{need / 2**30:.1f} GB, over the {budget_gb:.0f} GB budget; "
                            "lower --res")


def _one_of(name, value, allowed):
    if value not in allowed:
        raise OptionError(f"unknown {name} {value!r}: choose one of {', '.join(allowed)}")


def _parse_formats(value):
    from .outputs import parse_formats

    if isinstance(value, str):
        return parse_formats(value)
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise OptionError(f"formats must be a comma list or a list of names, got {value!r}")
    return parse_formats(",".join(value))
