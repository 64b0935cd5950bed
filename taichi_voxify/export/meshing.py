"""Voxels -> a cube mesh of the visible faces, greedy-merged into one rectangle per run of
same-coloured faces, with flat colours; written as .glb, .obj (+ .mtl) or .ply, in one of two
styles: "materials" (one material per palette colour) or "texture" (one material whose texture
is the K x 1 palette strip, each quad's UVs at its colour's texel: one draw call in an engine).

World units: 1 unit per voxel (times `voxel_size`), y up, the grid centred on x and z and
standing on y = 0 (a game engine's or Blender's usual placement). Every quad has its own four
vertices, so colours and normals are flat per face. Triangles wind counter-clockwise seen from
outside, so right-hand normals point out of the solid.
Merged rectangles meet neighbours at T-junctions; `merge=False` gives one quad per voxel face
(crack-free everywhere, many more triangles).
"""
import json
import os
import struct
from dataclasses import dataclass

import numpy as np

from ..color import rgb_to_hex, srgb_to_linear
from ..errors import OptionError
from ..palette_files import strip_image
from .atomic import atomic_path, write_bytes, write_text

MESH_FORMATS = ("glb", "obj", "ply")
MESH_STYLES = ("materials", "texture")
# For a face normal along axis a, (u, v) are the two other axes in cyclic order, so that
# e_u x e_v = e_a and corners (u0,v0) (u1,v0) (u1,v1) (u0,v1) run counter-clockwise seen from +a.
_UV = {0: (1, 2), 1: (2, 0), 2: (0, 1)}


@dataclass
class VoxelMesh:
    vertices: np.ndarray  # (4Q, 3) float32
    normals: np.ndarray  # (4Q, 3) float32, the face normal at each corner
    faces: np.ndarray  # (2Q, 3) int64, counter-clockwise seen from outside
    color_index: np.ndarray  # (2Q,) int64, 0-based palette entry of each triangle
    palette: np.ndarray  # (K, 3) uint8 sRGB
    visible_faces: int  # voxel faces on the surface before merging

    @property
    def triangle_count(self):
        return len(self.faces)

    @property
    def uv(self):
        """(4Q, 2) float32 texture coordinates: every corner of a quad at the centre of its
        colour's texel in the K x 1 palette strip."""
        u = (self.color_index[0::2].repeat(4) + 0.5) / len(self.palette)
        return np.stack([u, np.full_like(u, 0.5)], axis=1).astype(np.float32)

    @property
    def vertex_colors(self):
        """(4Q, 3) uint8 sRGB colour of each vertex (its quad's colour)."""
        return self.palette[self.color_index[0::2].repeat(4)]

    def to_trimesh(self, texture=False):
        """A trimesh.Trimesh with vertex colours, or with texture coordinates (texture=True)."""
        import trimesh

        # trimesh fails to check normals of zero vertices (np.ptp of an empty array)
        normals = self.normals if len(self.vertices) else None
        if not texture:
            return trimesh.Trimesh(self.vertices, self.faces, vertex_normals=normals,
                                   vertex_colors=self.vertex_colors, process=False)
        visual = trimesh.visual.TextureVisuals(uv=self.uv, image=strip_image(self.palette))
        return trimesh.Trimesh(self.vertices, self.faces, vertex_normals=normals, visual=visual,
                               process=False)


def visible_face_labels(indices, axis, sign):
    """(S, U, V) palette labels of the faces looking along +-axis (0 where no face), the grid
    transposed to (axis, u, v) order; faces of slice s lie on the plane s + (sign > 0)."""
    u, v = _UV[axis]
    g = np.transpose(indices, (axis, u, v))
    padded = np.pad(g, ((1, 1), (0, 0), (0, 0)))
    neighbour = padded[2:] if sign > 0 else padded[:-2]
    return np.where(neighbour == 0, g, 0)


def greedy_rectangles(labels, merge=True):
    """Rectangles covering the non-zero cells of each slice of `labels` (S, U, V), one colour
    each: maximal runs along v, then runs with the same span and colour stacked along u.
    Returns an int64 array (R, 6) of (slice, u0, u1, v0, v1, label), ends exclusive."""
    if not merge:
        s, u, v = np.nonzero(labels)
        return np.stack([s, u, u + 1, v, v + 1, labels[s, u, v]], axis=1).astype(np.int64)
    padded = np.pad(labels, ((0, 0), (0, 0), (1, 1))).astype(np.int64)
    change = padded[..., 1:] != padded[..., :-1]  # (S, U, V+1): boundary before cell j
    s0, u0, v0 = np.nonzero(change & (padded[..., 1:] != 0))  # a run starts at v0
    _, _, v1 = np.nonzero(change & (padded[..., :-1] != 0))  # a run ends before v1
    color = labels[s0, u0, v0].astype(np.int64)
    order = np.lexsort((u0, color, v1, v0, s0))
    s0, u0, v0, v1, color = (a[order] for a in (s0, u0, v0, v1, color))
    if not len(s0):
        return np.zeros((0, 6), np.int64)
    # a run continues the rectangle of the run before it when it has the same slice, span and
    # colour and lies on the next row
    continues = np.zeros(len(s0), bool)
    continues[1:] = ((s0[1:] == s0[:-1]) & (v0[1:] == v0[:-1]) & (v1[1:] == v1[:-1])
                     & (color[1:] == color[:-1]) & (u0[1:] == u0[:-1] + 1))
    first = np.nonzero(~continues)[0]
    last = np.append(first[1:], len(s0)) - 1
    return np.stack([s0[first], u0[first], u0[last] + 1, v0[first], v1[first], color[first]],
                    axis=1)


def voxel_mesh(art, voxel_size=1.0, merge=True):
    """The VoxelMesh of `art`'s visible faces (see the module docstring for units)."""
    X, Y, Z = art.shape
    offset = np.array([X / 2.0, 0.0, Z / 2.0])
    verts, norms, colors, visible = [], [], [], 0
    for axis in range(3):
        u, v = _UV[axis]
        for sign in (1, -1):
            labels = visible_face_labels(art.indices, axis, sign)
            visible += int(np.count_nonzero(labels))
            rect = greedy_rectangles(labels, merge)
            plane = rect[:, 0] + (sign > 0)
            corners = [(1, 3), (2, 3), (2, 4), (1, 4)]  # (u column, v column) of rect
            if sign < 0:
                corners = corners[::-1]
            quad = np.zeros((len(rect), 4, 3))
            quad[:, :, axis] = plane[:, None]
            for k, (cu, cv) in enumerate(corners):
                quad[:, k, u] = rect[:, cu]
                quad[:, k, v] = rect[:, cv]
            normal = np.zeros(3)
            normal[axis] = sign
            verts.append(quad)
            norms.append(np.broadcast_to(normal, quad.shape))
            colors.append(rect[:, 5] - 1)
    quads = np.concatenate(verts)
    n = len(quads)
    base = 4 * np.arange(n)[:, None]
    faces = np.concatenate([base + [0, 1, 2], base + [0, 2, 3]], axis=1).reshape(-1, 3)
    return VoxelMesh(
        vertices=((quads.reshape(-1, 3) - offset) * voxel_size).astype(np.float32),
        normals=np.concatenate(norms).reshape(-1, 3).astype(np.float32),
        faces=faces.astype(np.int64),
        color_index=np.concatenate(colors).repeat(2).astype(np.int64),
        palette=art.palette.copy(),
        visible_faces=visible,
    )


def texture_path(mesh_path):
    """Where a texture-style .obj or .ply finds its palette strip: STEM_palette_strip.png,
    the same file every conversion writes beside its outputs."""
    return os.path.splitext(os.fspath(mesh_path))[0] + "_palette_strip.png"


def write_mesh(art, path, voxel_size=1.0, merge=True, style="materials"):
    """Write the cube mesh of `art` to `path` (.glb, .obj + .mtl beside it, or .ply).
    style: "materials" (one material per colour) or "texture" (one material textured by the
    K x 1 palette strip: one draw call in a game engine; .obj/.ply write the strip beside them).
    Returns {"triangles": int, "visible_faces": int, "files": [paths]}."""
    if style not in MESH_STYLES:
        raise OptionError(f"unknown mesh style {style!r}: choose one of {', '.join(MESH_STYLES)}")
    fmt = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    if fmt not in MESH_FORMATS:
        raise OptionError(f"unknown mesh format {fmt!r}: choose one of {', '.join(MESH_FORMATS)}")
    mesh = voxel_mesh(art, voxel_size, merge)
    writer = {"glb": _write_glb, "obj": _write_obj, "ply": _write_ply}[fmt]
    files = writer(mesh, os.fspath(path), style)
    return {"triangles": mesh.triangle_count, "visible_faces": mesh.visible_faces, "files": files}


# --- glTF binary ------------------------------------------------------------------------------
class _GlbBuffer:
    """The one binary buffer of a .glb and the bufferViews and accessors that slice it."""

    def __init__(self):
        self.binary, self.views, self.accessors = bytearray(), [], []

    def view(self, data, target=None, stride=None):
        view = dict(buffer=0, byteOffset=len(self.binary), byteLength=len(data))
        if target:  # vertex (34962) or index (34963) data; images have none
            view["target"] = target
        if stride:  # required when several accessors share one vertex buffer view
            view["byteStride"] = stride
        self.views.append(view)
        self.binary.extend(data)
        self.binary.extend(b"\0" * (-len(self.binary) % 4))
        return len(self.views) - 1

    def accessor(self, view, count, kind, offset=0, component=5126, bounds=None):
        acc = dict(bufferView=view, componentType=component, count=int(count), type=kind)
        if offset:
            acc["byteOffset"] = int(offset)
        if bounds is not None:  # POSITION accessors must give min and max
            acc.update(min=bounds.min(0).tolist(), max=bounds.max(0).tolist())
        self.accessors.append(acc)
        return len(self.accessors) - 1


_QUAD = np.array([[0, 1, 2], [0, 2, 3]], "<u4")  # two triangles of a quad's four corners


def _quad_indices(quads):
    return (_QUAD[None] + 4 * np.arange(quads, dtype="<u4")[:, None, None]).astype("<u4")


def glb_bytes(mesh, style="materials"):
    """A .glb of the voxel mesh. style "materials": one primitive and one material per palette
    colour, whose baseColorFactor is the sRGB colour converted to linear (glTF factors are
    linear); "texture": one primitive and one material whose base colour texture is the K x 1
    palette strip (sRGB, as glTF textures are), each quad's UVs at its colour's texel centre,
    sampled NEAREST so the colours stay exact."""
    buf = _GlbBuffer()
    if style == "texture":
        meshes, materials, extra = _texture_primitive(mesh, buf)
    else:
        meshes, materials, extra = _material_primitives(mesh, buf)
    doc = dict(asset=dict(version="2.0", generator="taichi_voxify"), scene=0,
               scenes=[dict(nodes=[0])], nodes=[dict(name="voxels")])
    if meshes:  # an empty grid gives a valid file with an empty node
        doc["nodes"][0]["mesh"] = 0
        doc.update(meshes=[dict(name="voxels", primitives=meshes)], materials=materials,
                   accessors=buf.accessors, bufferViews=buf.views,
                   buffers=[dict(byteLength=len(buf.binary))], **extra)
    js = json.dumps(doc, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 4)
    body = struct.pack("<II", len(js), 0x4E4F534A) + js
    if buf.binary and meshes:
        body += struct.pack("<II", len(buf.binary), 0x004E4942) + bytes(buf.binary)
    return struct.pack("<III", 0x46546C67, 2, 12 + len(body)) + body


def _material_primitives(mesh, buf):
    order = np.argsort(mesh.color_index[0::2], kind="stable")  # quads grouped by colour
    quad_color = mesh.color_index[0::2][order]
    corner = (4 * order[:, None] + np.arange(4)).ravel()
    positions = mesh.vertices[corner].astype("<f4")
    pos_view = buf.view(positions.tobytes(), 34962, 12)
    nrm_view = buf.view(mesh.normals[corner].astype("<f4").tobytes(), 34962, 12)
    colors, starts = np.unique(quad_color, return_index=True)
    ends = np.append(starts[1:], len(quad_color))
    primitives, materials = [], []
    for c, q0, q1 in zip(colors, starts, ends):
        quads = q1 - q0
        attributes = dict(
            POSITION=buf.accessor(pos_view, 4 * quads, "VEC3", 4 * q0 * 12,
                                  bounds=positions[4 * q0: 4 * q1]),
            NORMAL=buf.accessor(nrm_view, 4 * quads, "VEC3", 4 * q0 * 12))
        idx = buf.accessor(buf.view(_quad_indices(quads).tobytes(), 34963), 6 * quads, "SCALAR",
                           component=5125)
        primitives.append(dict(attributes=attributes, indices=idx, material=len(materials)))
        srgb = mesh.palette[c]
        linear = srgb_to_linear(srgb.astype(np.float64) / 255.0)
        materials.append(dict(
            name=f"color_{c + 1}_{rgb_to_hex(srgb)[1:]}",
            pbrMetallicRoughness=dict(baseColorFactor=[*map(float, linear), 1.0],
                                      metallicFactor=0.0, roughnessFactor=1.0)))
    return primitives, materials, {}


def _texture_primitive(mesh, buf):
    if not len(mesh.vertices):
        return [], [], {}
    quads = len(mesh.vertices) // 4
    positions = mesh.vertices.astype("<f4")
    attributes = dict(
        POSITION=buf.accessor(buf.view(positions.tobytes(), 34962), 4 * quads, "VEC3",
                              bounds=positions),
        NORMAL=buf.accessor(buf.view(mesh.normals.astype("<f4").tobytes(), 34962), 4 * quads,
                            "VEC3"),
        TEXCOORD_0=buf.accessor(buf.view(mesh.uv.astype("<f4").tobytes(), 34962), 4 * quads,
                                "VEC2"))
    idx = buf.accessor(buf.view(_quad_indices(quads).tobytes(), 34963), 6 * quads, "SCALAR",
                       component=5125)
    image = buf.view(_png_bytes(strip_image(mesh.palette)))
    nearest, clamp = 9728, 33071
    extra = dict(images=[dict(bufferView=image, mimeType="image/png", name="palette_strip")],
                 samplers=[dict(magFilter=nearest, minFilter=nearest, wrapS=clamp, wrapT=clamp)],
                 textures=[dict(source=0, sampler=0)])
    material = dict(name="palette", pbrMetallicRoughness=dict(
        baseColorTexture=dict(index=0), metallicFactor=0.0, roughnessFactor=1.0))
    return [dict(attributes=attributes, indices=idx, material=0)], [material], extra


def _png_bytes(image):
    import io

    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _write_glb(mesh, path, style):
    write_bytes(path, glb_bytes(mesh, style))
    return [path]


# --- Wavefront OBJ + MTL ----------------------------------------------------------------------
def _write_obj(mesh, path, style):
    """OBJ + MTL. "materials": one material per palette colour, Kd the sRGB colour in [0, 1]
    (the convention most OBJ readers follow); "texture": one material whose map_Kd is the
    palette strip PNG written beside it, and a texture coordinate per vertex."""
    mtl_path = os.path.splitext(path)[0] + ".mtl"
    strip_path = texture_path(path)
    normal_table = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]])
    tri_normal = mesh.normals[mesh.faces[:, 0]]
    normal_id = np.argmax(tri_normal @ normal_table.T, axis=1) + 1
    lines = ["# taichi_voxify voxel mesh: 1 unit per voxel, y up",
             f"mtllib {os.path.basename(mtl_path)}"]
    lines += ["v %g %g %g" % tuple(v) for v in mesh.vertices]
    lines += ["vn %d %d %d" % tuple(n) for n in normal_table]
    mtl = ["# taichi_voxify palette"]
    if style == "texture":
        mtl += ["newmtl palette", "Kd 1 1 1", "Ka 0 0 0", "Ks 0 0 0", "illum 1",
                f"map_Kd {os.path.basename(strip_path)}", ""]
        lines += ["vt %.6f %.6f" % tuple(t) for t in mesh.uv]
        lines.append("usemtl palette")
        for t, (a, b, c) in enumerate(mesh.faces + 1):
            n = normal_id[t]
            lines.append(f"f {a}/{a}/{n} {b}/{b}/{n} {c}/{c}/{n}")
    else:
        for c in np.unique(mesh.color_index):
            r, g, b = mesh.palette[c] / 255.0
            mtl += [f"newmtl color_{c + 1}", f"Kd {r:.6f} {g:.6f} {b:.6f}", "Ka 0 0 0",
                    "Ks 0 0 0", "illum 1", ""]
        current = None
        for t in np.argsort(mesh.color_index, kind="stable"):
            if mesh.color_index[t] != current:
                current = mesh.color_index[t]
                lines.append(f"usemtl color_{current + 1}")
            a, b, c = mesh.faces[t] + 1
            n = normal_id[t]
            lines.append(f"f {a}//{n} {b}//{n} {c}//{n}")
    with atomic_path(path) as tmp_obj:
        with open(tmp_obj, "w") as f:
            f.write("\n".join(lines) + "\n")
        write_text(mtl_path, "\n".join(mtl) + "\n")
        if style == "texture":
            write_bytes(strip_path, _png_bytes(strip_image(mesh.palette)))
    return [path, mtl_path] + ([strip_path] if style == "texture" else [])


# --- PLY --------------------------------------------------------------------------------------
def _write_ply(mesh, path, style):
    """Binary PLY with normals and per-vertex sRGB uchar colours ("materials"), or texture
    coordinates (s, t) and a 'TextureFile' comment naming the palette strip written beside it
    ("texture"; the convention MeshLab and Blender read)."""
    from trimesh.exchange.ply import export_ply

    if style != "texture":
        write_bytes(path, export_ply(mesh.to_trimesh(), encoding="binary", vertex_normal=True))
        return [path]
    strip_path = texture_path(path)
    data = export_ply(mesh.to_trimesh(texture=True), encoding="binary", vertex_normal=True)
    header_end = data.index(b"\n", data.index(b"format ")) + 1
    comment = f"comment TextureFile {os.path.basename(strip_path)}\n".encode()
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data[:header_end] + comment + data[header_end:])
        write_bytes(strip_path, _png_bytes(strip_image(mesh.palette)))
    return [path, strip_path]
