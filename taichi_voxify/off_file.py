"""OFF files (Geomview's Object File Format) read with their colours: trimesh's reader drops them.

    [C][N]OFF                      header keyword (C: vertex colours, N: vertex normals)
    V F E                          counts (may follow the keyword on its line)
    x y z [nx ny nz] [r g b [a]]   V vertex lines
    n i1 ... in [r g b [a]]        F faces: n vertex indices, then an optional colour

Colours are integers 0..255 or floats 0..1 (sRGB); a single number after a face is a colour-map
index, which we ignore. Polygons are cut into fans (i1, ik, ik+1). Faces with colours give
face colours, else vertex colours (COFF, or vertex lines with three or four numbers more).
"""
import numpy as np


def load_off(path):
    """A trimesh.Trimesh of the OFF file at `path`, face or vertex colours kept (sRGB uint8);
    raises ValueError saying what is malformed."""
    import trimesh

    lines = _content_lines(path)
    keyword, *rest = lines[0]
    if not keyword.upper().endswith("OFF"):
        raise ValueError(f"not an OFF file (header {keyword[:20]!r})")
    normals = "N" in keyword.upper()[:-3]
    body = [rest] + lines[1:] if rest else lines[1:]
    if not body or len(body[0]) < 2:
        raise ValueError("OFF file has no vertex/face count line")
    n_verts, n_faces = int(body[0][0]), int(body[0][1])
    if n_verts < 0 or n_faces < 0 or len(body) < 1 + n_verts + n_faces:
        raise ValueError(f"OFF file is shorter than its {n_verts} vertices and {n_faces} faces")
    vertex_lines = body[1:1 + n_verts]
    vertices = np.array([ln[:3] for ln in vertex_lines], np.float64).reshape(n_verts, 3)
    skip = 6 if normals else 3
    vertex_colors = _colors([ln[skip:skip + 4] for ln in vertex_lines])
    faces, face_colors = _faces(body[1 + n_verts:1 + n_verts + n_faces], n_verts)
    colors = {}
    if face_colors is not None:
        colors["face_colors"] = face_colors
    elif vertex_colors is not None:
        colors["vertex_colors"] = vertex_colors
    return trimesh.Trimesh(vertices, faces, process=False, **colors)


def _content_lines(path):
    """The file's lines as lists of words, comments and blank lines dropped."""
    with open(path, "r", encoding="ascii", errors="replace") as fh:
        lines = [line.split("#", 1)[0].split() for line in fh]
    lines = [ln for ln in lines if ln]
    if not lines:
        raise ValueError("OFF file holds no header")
    return lines


def _faces(face_lines, n_verts):
    """(triangles (T, 3) int64, per-triangle colours (T, 4) uint8 or None) of the face lines."""
    triangles, owners, colours = [], [], []
    for i, words in enumerate(face_lines):
        n = int(words[0])
        if len(words) < 1 + n:
            raise ValueError(f"OFF face {i} lists fewer than its {n} vertex indices")
        ids = [int(w) for w in words[1:1 + n]]
        triangles += [(ids[0], ids[k], ids[k + 1]) for k in range(1, n - 1)]
        owners += [i] * max(n - 2, 0)
        colours.append(words[1 + n:1 + n + 4])
    triangles = np.array(triangles, np.int64).reshape(-1, 3)
    if len(triangles) and (triangles.min() < 0 or triangles.max() >= n_verts):
        raise ValueError("OFF face refers to a vertex that does not exist")
    per_face = _colors(colours)
    return triangles, None if per_face is None else per_face[np.array(owners, np.int64)]


def _colors(words):
    """(n, 4) uint8 RGBA from each item's colour words, or None unless every item has an RGB
    triple: integers are 0..255, unless any word has a point or exponent: then all are 0..1."""
    if not words or any(len(w) < 3 for w in words):
        return None
    full = 1.0 if any(_is_float(x) for w in words for x in w) else 255.0
    values = np.array([[float(x) for x in w] + [full] * (4 - len(w)) for w in words])
    return np.clip(np.round(values * (255.0 / full)), 0, 255).astype(np.uint8)


def _is_float(word):
    return any(c in word for c in ".eE")
