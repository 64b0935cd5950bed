"""Building instructions as one self-contained HTML file: a cover (the finished model, its numbers
and the full parts list), then one step per layer, bottom first. Each step draws the layer from
above, its new parts in colour with studs over the layer below faded, and lists the step's parts
with colour swatches and counts. Prints one page per step (A4)."""
import base64
import html
import io
from collections import Counter

from ..color import rgb_to_hex

STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; color: #222; }
.page { padding: 10mm 12mm; break-after: page; page-break-after: always; }
h1 { margin: 0 0 4mm; font-size: 22pt; } h2 { margin: 0 0 3mm; font-size: 16pt; }
.cover img { width: 90mm; image-rendering: pixelated; float: left; margin: 0 8mm 4mm 0; }
.numbers { font-size: 11pt; line-height: 1.5; } .advice { color: #a33; }
code { white-space: nowrap; }
table { border-collapse: collapse; font-size: 9.5pt; clear: both; }
td, th { padding: 1mm 2.5mm; border-bottom: 1px solid #ddd; text-align: left; }
td.n { text-align: right; font-weight: bold; }
.sw { display: inline-block; width: 5mm; height: 5mm; border: 1px solid #555;
      vertical-align: middle; print-color-adjust: exact; -webkit-print-color-adjust: exact; }
.step { display: flex; gap: 8mm; align-items: flex-start; }
.step svg { width: 120mm; max-height: 230mm; flex: none; print-color-adjust: exact;
            -webkit-print-color-adjust: exact; }
.note { font-size: 9.5pt; color: #555; }
@page { size: A4; margin: 0; }
@media screen { .page { border-bottom: 2px dashed #bbb; } }
"""
FADE = 0.25  # share of its colour a part of the layer below keeps (the rest is white)


def _swatch(color):
    return f'<span class="sw" style="background:{rgb_to_hex(color.rgb)}"></span>'


def _parts_table(lines, ids=False):
    """lines: [(Part, LegoColor, support, count)]."""
    head = "<tr><th>count</th><th></th><th>part</th><th>colour</th>"
    head += "<th>Rebrickable / LEGO / BrickLink colour</th></tr>" if ids else "</tr>"
    rows = []
    for part, color, support, n in lines:
        row = (f'<tr><td class="n">{n}&times;</td><td>{_swatch(color)}</td>'
               f"<td>{html.escape(part.name)} <span class='note'>({part.part_num})</span></td>"
               f"<td>{html.escape(color.name)}{' <i>(hidden support)</i>' if support else ''}</td>")
        if ids:
            row += f"<td>{color.rebrickable_id} / {color.lego_number} / {color.bricklink_id}</td>"
        rows.append(row + "</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _advice_html(advice):
    """The advice line with its command-line flags kept whole."""
    return html.escape(advice).replace("--lego-support", "<code>--lego-support</code>")


def _rect_path(bricks):
    return "".join(f"M{b.x} {b.z}h{b.size_x}v{b.size_z}h{-b.size_x}z" for b in bricks)


def layer_svg(plan, below, here, floating):
    """SVG of one layer from above (x right, the front (+z) at the bottom): its parts `here`
    ([(brick number, Brick)]) in colour with studs, plate stacks striped, bricks that hang in the
    air outlined in dashed red, the parts `below` ([Brick]) faded behind."""
    X, _, Z = plan.shape
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="-1 -1 {X + 2} {Z + 2.2}">',
           '<defs><pattern id="stud" width="1" height="1" patternUnits="userSpaceOnUse">'
           '<circle cx=".5" cy=".5" r=".3" fill="none" stroke="#000" stroke-opacity=".45" '
           'stroke-width=".07"/></pattern>'
           '<pattern id="plates" width="1" height=".333" patternUnits="userSpaceOnUse">'
           '<line x1="0" y1=".33" x2="1" y2=".33" stroke="#fff" stroke-opacity=".8" '
           'stroke-width=".05"/></pattern></defs>',
           f'<rect x="0" y="0" width="{X}" height="{Z}" fill="none" stroke="#ccc" '
           'stroke-width=".05"/>']
    for b in below:
        faded = tuple(int(255 - FADE * (255 - v)) for v in plan.colors[b.color].rgb)
        out.append(f'<rect x="{b.x}" y="{b.z}" width="{b.size_x}" height="{b.size_z}" '
                   f'fill="{rgb_to_hex(faded)}" stroke="#ccc" stroke-width=".05"/>')
    for _, b in here:
        out.append(f'<rect x="{b.x}" y="{b.z}" width="{b.size_x}" height="{b.size_z}" '
                   f'fill="{rgb_to_hex(plan.colors[b.color].rgb)}" stroke="#111" '
                   'stroke-width=".1"/>')
    bricks = [b for _, b in here]
    out.append(f'<path d="{_rect_path(bricks)}" fill="url(#stud)"/>')
    plates = [b for b in bricks if b.kind == "plate"]
    if plates:
        out.append(f'<path d="{_rect_path(plates)}" fill="url(#plates)"/>')
    hanging = [b for i, b in here if floating[i]]
    if hanging:
        out.append(f'<path d="{_rect_path(hanging)}" fill="none" stroke="#e00" '
                   'stroke-width=".18" stroke-dasharray=".4 .25"/>')
    out.append(_front_label(plan.metadata.get("front", "+z"), X, Z) + "</svg>")
    return "".join(out)


def _front_label(front, X, Z):
    """'front' written beside the side of the drawing the model faces (none for +y/-y)."""
    x, y, turn = {"+z": (X / 2, Z + 1, 0), "-z": (X / 2, -0.1, 0), "+x": (X + 0.35, Z / 2, 90),
                  "-x": (-0.1, Z / 2, -90)}.get(front, (None, None, 0))
    if x is None:
        return ""
    return (f'<text x="{x}" y="{y}" font-size=".8" text-anchor="middle" fill="#888" '
            f'transform="rotate({turn} {x} {y})">front</text>')


def _picture_uri(picture):
    buf = io.BytesIO()
    picture.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def instructions_html(plan, picture=None):
    """The whole document; picture: the cover's model picture (pictures.model_picture's, made
    when not given)."""
    from .pictures import model_picture

    picture = picture or model_picture(plan, 480)
    s = plan.summary()
    floating = plan.floating()
    X, Y, Z = plan.shape
    title = html.escape(plan.name)
    all_lines = [(l.part, l.color, l.support, l.count) for l in plan.bom()]
    layers = [y for y, n in enumerate(plan.bricks_per_layer()) if n]
    indexed = [[] for _ in range(Y)]  # [(brick number, Brick)] per layer
    for i, b in enumerate(plan.bricks):
        indexed[b.layer].append((i, b))
    by_layer = [[b for _, b in row] for row in indexed]
    cover = (f'<section class="page cover"><h1>{title}: LEGO building instructions</h1>'
             f'<img src="{_picture_uri(picture)}" alt="the finished model">'
             f'<div class="numbers">{s["parts"]} parts'
             + (f" ({s['support_parts']} of them hidden support)" if s["support_parts"] else "")
             + f"<br>{len(layers)} steps, one per layer<br>"
             f"{X} &times; {Z} studs, {Y} bricks tall "
             f"({X * 0.8:.1f} &times; {Z * 0.8:.1f} &times; {Y * 0.96:.1f} cm)<br>"
             f"proportions: {s['proportions']}<br>"
             f'<span class="advice">{_advice_html(s["advice"])}</span><br>'
             '<span class="note">Each step shows one layer from above ("front" marks the side '
             'the model faces): new parts in colour with studs, the layer below faded. Striped: '
             'a stack of three '
             'plates. Dashed red: nothing holds this part yet; hold it until the next layer '
             'is on.</span></div>'
             f"<h2>Parts list</h2>{_parts_table(all_lines, ids=True)}</section>")
    steps = []
    for k, y in enumerate(layers, 1):
        step = Counter()
        for b in by_layer[y]:
            step[(b.part, plan.colors[b.color], b.support)] += b.quantity
        lines = sorted(((p, c, sup, n) for (p, c, sup), n in step.items()),
                       key=lambda l: (l[2], l[1].name, l[0].kind, l[0].width, l[0].length))
        hanging = int(sum(floating[i] for i, _ in indexed[y]))
        note = (f'<p class="note advice">{hanging} part(s) outlined in dashed red rest on nothing '
                "yet: hold them until the next layer is on.</p>" if hanging else "")
        svg = layer_svg(plan, by_layer[y - 1] if y else [], indexed[y], floating)
        steps.append(f'<section class="page" id="step-{k}">'
                     f"<h2>Step {k} of {len(layers)}: layer {y + 1}</h2>"
                     f'<div class="step">{svg}'
                     f"<div>{_parts_table(lines)}{note}</div></div></section>")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{title}: LEGO building instructions</title><style>{STYLE}</style></head>"
            f"<body>{cover}{''.join(steps)}</body></html>\n")
