"""LEGO build plans: the voxel art as real parts in real colours, a bill of materials, shopping
lists for Rebrickable and BrickLink, and step-by-step building instructions.

catalog (what LEGO makes) -> tiling (parts per layer) -> connectivity and support (does it hold
together, can it be built bottom-up) -> plan (LegoPlan) -> shopping, pictures, instructions.
"""
import os

from .catalog import LegoColor, Part, all_colors, buildable_colors
from .plan import PROPORTIONS, Brick, LegoPlan, build_plan, check_lego_size, map_to_lego

__all__ = ["PROPORTIONS", "Brick", "LegoColor", "LegoPlan", "Part", "all_colors",
           "build_plan", "buildable_colors", "check_lego_size", "map_to_lego", "write_lego"]


def write_lego(plan, out_dir):
    """Write the plan into the folder `out_dir` (replaced whole, or left as it was on failure):
    bom.csv, rebrickable.csv, bricklink.xml, instructions.html and overview.png.
    Returns the written file names."""
    from ..export.atomic import atomic_dir
    from .instructions import instructions_html
    from .pictures import model_picture, overview_image
    from .shopping import bom_csv, bricklink_xml, rebrickable_csv

    picture = model_picture(plan, 480)
    texts = {"bom.csv": bom_csv(plan), "rebrickable.csv": rebrickable_csv(plan),
             "bricklink.xml": bricklink_xml(plan),
             "instructions.html": instructions_html(plan, picture)}
    with atomic_dir(out_dir) as tmp:
        for name, text in texts.items():
            with open(os.path.join(tmp, name), "w", newline="", encoding="utf-8") as f:
                f.write(text)
        overview_image(plan, picture).save(os.path.join(tmp, "overview.png"))
    return list(texts) + ["overview.png"]
