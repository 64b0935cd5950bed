"""Pictures of a plan: the finished model in LEGO colours, and overview.png beside its numbers."""
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..voxelart import VoxelArt
from .plan import BRICK_HEIGHT


def model_art(plan):
    """The planned model as VoxelArt in its LEGO colours, layers stretched to brick height
    (each layer repeated so that layers : studs = 1.2 : 1, to the nearest layer)."""
    color = np.array([b.color for b in plan.bricks] or [0], np.int64)
    index = np.where(plan.brick_grid >= 0, color[np.maximum(plan.brick_grid, 0)] + 1, 0)
    Y = plan.shape[1]
    tall = int(round(Y * BRICK_HEIGHT))
    source = np.minimum(((np.arange(tall) + 0.5) / BRICK_HEIGHT).astype(np.int64), Y - 1)
    lut = np.array([c.rgb for c in plan.colors] or [(0, 0, 0)], np.uint8)
    return VoxelArt(index[:, source, :].astype(np.uint8), lut)


def model_picture(plan, size=360):
    """(size, size) PIL image: the finished model seen from above, its front and right side."""
    from ..export.images import FRONT_AZIMUTH, iso_camera, render_voxels

    art = model_art(plan)
    azimuth = 45.0 + FRONT_AZIMUTH[plan.metadata.get("front", "+z")]
    img = render_voxels(art, iso_camera(azimuth=azimuth, art=art), size)
    return Image.fromarray((img * 255).astype(np.uint8))


def overview_image(plan, picture=None):
    """The model picture (model_picture's, made when not given) beside the plan's numbers and
    parts list."""
    picture = picture or model_picture(plan)
    size = picture.size[1]
    s = plan.summary()
    lines = [plan.name, f"{s['parts']} parts ({s['support_parts']} hidden support) for "
             f"{s['voxels']} voxels", s["advice"], ""]
    lines += [f"{l.count:4d}  {l.part.name}  {l.color.name}" + ("  (support)" if l.support else "")
              for l in plan.bom()]
    font = ImageFont.load_default()
    text_h = 14 * len(lines) + 10
    img = Image.new("RGB", (picture.size[0] + 420, max(size, text_h)), (255, 255, 255))
    img.paste(picture, (0, 0))
    ImageDraw.Draw(img).multiline_text((picture.size[0] + 10, 10), "\n".join(lines), fill=(0, 0, 0),
                                       font=font, spacing=4)
    return img
