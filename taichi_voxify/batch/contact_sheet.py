"""DIR/index.html: one card per asset (its views picture or turntable, palette, voxel count,
time, status; a failure shows its error), with relative links so the folder can be moved."""
import html
import os
from urllib.parse import quote

from ..export.atomic import write_text

STYLE = """
body { font: 14px system-ui, sans-serif; margin: 24px; background: #f4f4f6; color: #222; }
h1 { font-size: 20px; margin: 0 0 4px; }
.summary { margin: 0 0 16px; color: #555; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); gap: 16px; }
.card { background: #fff; border-radius: 8px; padding: 12px; box-shadow: 0 1px 3px #0002; }
.card h2 { font-size: 15px; margin: 0 0 8px; display: flex; justify-content: space-between;
           overflow-wrap: anywhere; }
.status { font-size: 12px; padding: 2px 8px; border-radius: 10px; color: #fff; }
.ok { background: #2e7d32; } .skipped { background: #607d8b; } .failed { background: #c62828; }
.card img { width: 100%; image-rendering: pixelated; background: #eee; min-height: 60px; }
.swatches { display: flex; flex-wrap: wrap; gap: 2px; margin: 8px 0; }
.swatch { width: 22px; height: 22px; border-radius: 3px; border: 1px solid #0003; }
.facts { color: #555; font-size: 12px; margin: 0; }
.error { color: #c62828; white-space: pre-wrap; overflow-wrap: anywhere; }
.input { color: #888; font-size: 11px; overflow-wrap: anywhere; }
"""


def _swatches(hex_colors):
    return "".join(f'<span class="swatch" style="background:{html.escape(c)}" '
                   f'title="{html.escape(c)}"></span>' for c in hex_colors)


def _picture(files):
    for suffix in ("_views.png", "_turntable.gif"):
        for f in files:
            if f.endswith(suffix):
                # onload marks the image as shown (a browser test counts them)
                return (f'<a href="{quote(f)}"><img src="{quote(f)}" alt="{html.escape(f)}" '
                        'loading="lazy" onload="this.classList.add(\'loaded\')"></a>')
    return ""


def _card(record):
    status = record.get("status", "failed")
    parts = [f'<div class="card" id="{html.escape(record["name"])}">',
             f'<h2>{html.escape(record["name"])}'
             f'<span class="status {html.escape(status)}">{html.escape(status)}</span></h2>']
    if status == "failed":
        parts.append(f'<p class="error">{html.escape(record.get("error") or "failed")}</p>')
    else:
        parts.append(_picture(record.get("files") or []))
        parts.append(f'<div class="swatches">{_swatches(record.get("palette") or [])}</div>')
        seconds = (record.get("timings_s") or {}).get("total", record.get("seconds"))
        parts.append(f'<p class="facts">{record.get("voxels", "?")} voxels · '
                     f'{record.get("colors_used", "?")} colours used · {seconds} s · '
                     f'{html.escape(str(record.get("worker", "")))}</p>')
    parts.append(f'<p class="input">{html.escape(str(record.get("input", "")))}</p></div>')
    return "\n".join(p for p in parts if p)


def render(records, shared_palette=None, title="voxify batch"):
    counts = {s: sum(r.get("status") == s for r in records) for s in ("ok", "skipped", "failed")}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items())
    shared = ""
    if shared_palette:
        shared = (f'<p>Shared palette (<a href="palette.png">palette.png</a>)</p>'
                  f'<div class="swatches">{_swatches(shared_palette)}</div>')
    cards = "\n".join(_card(r) for r in records)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>\n'
            f'<h1>{html.escape(title)}</h1><p class="summary">{len(records)} assets: '
            f'{summary}</p>\n{shared}<div class="grid">\n{cards}\n</div></body></html>\n')


def write(out_dir, records, shared_palette=None):
    path = os.path.join(out_dir, "index.html")
    write_text(path, render(records, shared_palette))
    return path
