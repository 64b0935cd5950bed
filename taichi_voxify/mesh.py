"""Loading meshes into one normalised, coloured triangle soup.

Every supported file (OBJ+MTL, GLB, glTF with .bin and external textures, PLY, STL, OFF) and every
part of a scene (with its node transform) becomes one list of triangles. Each triangle keeps its
own colour source, so a face's albedo is

    albedo_linear = material_colour * texture(uv) * corner_colour      (all linear RGB)

where `material_colour` is the glTF base colour factor (the emissive factor of an emissive-only
material; white when a glTF material gives neither, as the spec says), the MTL Kd (an MTL
texture replaces Kd, so the texture shows unchanged whatever default Kd the exporter wrote) or
neutral grey when nothing gives a colour, `texture` is the
bilinear, sRGB-decoded lookup in the material's image (1 when it has none; glTF UVs as
gltf_primitives.py reads them: texCoord set, KHR_texture_transform) and `corner_colour` is
the barycentric blend of the per-corner vertex colours (COLOR_0, PLY vertex colours, or a face
colour repeated on its three corners; 1 when there are none).

Colour spaces: glTF factors and COLOR_0 are linear by the glTF spec; images, MTL colours, PLY
and OFF colours (off_file.py reads those) and trimesh face/vertex colours from non-glTF files
are sRGB. Everything is decoded to linear once; what leaves this module (`Mesh.color_at`, the
renderer's images) is sRGB.

Coordinates: Y up (glTF's convention), X right, Z toward the viewer of the front (+z) view.
`up="z"` turns Z-up files (STL/PLY exports of CAD tools) into that frame.
"""
import io
import json
import os
import pathlib
import struct
import urllib.parse
import warnings
from dataclasses import dataclass, field

import numpy as np

from .color import linear_to_srgb, pil_to_rgba8, srgb_to_linear
from .budgets import MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE, MAX_TEXTURE_PIXELS
from .errors import MeshError, OptionError
from .gltf_primitives import colour_texture, read_primitives
from .mesh_files import MeshFolder, RefusedReference, decode_data_uri
from .off_file import load_off

SUPPORTED_EXTENSIONS = (".obj", ".glb", ".gltf", ".ply", ".stl", ".off")
MAX_FACES = 5_000_000
NEUTRAL_GREY_SRGB = 0.6

# Texture wrap modes (glTF sampler wrapS / wrapT): repeat is the default everywhere.
WRAP_REPEAT, WRAP_CLAMP, WRAP_MIRROR = 0, 1, 2
_GLTF_WRAP = {10497: WRAP_REPEAT, 33071: WRAP_CLAMP, 33648: WRAP_MIRROR}
_UP_AXES = ("y", "z")

# glTF alphaMode of a material: OPAQUE ignores alpha, MASK cuts out where alpha < cutoff, BLEND
# turns alpha into coverage (the rasterizer covers that fraction of a pixel's samples)
ALPHA_OPAQUE, ALPHA_MASK, ALPHA_BLEND = 0, 1, 2
_GLTF_ALPHA_MODES = {"MASK": ALPHA_MASK, "BLEND": ALPHA_BLEND}
OPAQUE = (ALPHA_OPAQUE, 1.0, 0.5)  # (mode, base alpha, cutoff) of a material without alpha


SRGB8_TO_LINEAR = srgb_to_linear(np.arange(256) / 255.0).astype(np.float32)


@dataclass
class Texture:
    """An sRGB image, row 0 at the top (v = 1), sampled bilinearly with the given wrap modes."""

    image: np.ndarray  # (H, W, 3) uint8
    wrap_u: int = WRAP_REPEAT
    wrap_v: int = WRAP_REPEAT
    alpha: np.ndarray = None  # (H, W) uint8 linear alpha; None where the image has none


@dataclass
class Mesh:
    """A normalised triangle soup; see the module docstring for how a face gets its colour."""

    name: str
    triangles: np.ndarray  # (F, 3, 3) float32, inside [-0.5, 0.5]^3
    uvs: np.ndarray  # (F, 3, 2) float32, v up (OBJ convention; glTF's v is flipped on load)
    corner_colors: np.ndarray  # (F, 3, 3) float32 linear RGB multipliers
    face_material: np.ndarray  # (F,) int32 into the material arrays
    material_colors: np.ndarray  # (M, 3) float32 linear RGB
    material_textures: np.ndarray  # (M,) int32 index into `textures`, -1 for none
    textures: list = field(default_factory=list)
    dropped_degenerate: int = 0
    source: str = ""
    material_alpha_modes: np.ndarray = None  # (M,) int32 ALPHA_*; None: all opaque
    material_alphas: np.ndarray = None  # (M, 2) float32 base alpha, MASK cutoff

    def __post_init__(self):
        count = len(self.material_colors)
        if self.material_alpha_modes is None:
            self.material_alpha_modes = np.full(count, OPAQUE[0], np.int32)
        if self.material_alphas is None:
            self.material_alphas = np.tile(np.float32(OPAQUE[1:]), (count, 1))

    @property
    def face_count(self):
        return int(len(self.triangles))

    def summary(self):
        """One line for logs: name, faces, textures, materials, vertex colours, dropped faces."""
        parts = [f"{self.face_count:,} triangles", f"{len(self.textures)} texture(s)",
                 f"{len(self.material_colors)} material(s)"]
        if np.any(self.corner_colors != 1.0):
            parts.append("vertex/face colours")
        if self.dropped_degenerate:
            parts.append(f"{self.dropped_degenerate:,} degenerate dropped")
        return f"{self.name}: {', '.join(parts)}"

    def linear_color_at(self, face_ids, barycentrics):
        """Linear RGB albedo (n, 3) float64 at points given by face id and barycentric weights."""
        f = np.asarray(face_ids, dtype=np.int64).reshape(-1)
        b = np.asarray(barycentrics, dtype=np.float64).reshape(-1, 3)
        if len(f) != len(b):
            raise OptionError(f"{len(f)} face ids but {len(b)} barycentric triples")
        if len(f) and (f.min() < 0 or f.max() >= self.face_count):
            raise OptionError(f"face ids must lie in [0, {self.face_count})")
        mat = self.face_material[f]
        color = self.material_colors[mat].astype(np.float64)
        color *= np.einsum("nk,nkc->nc", b, self.corner_colors[f].astype(np.float64))
        tex = self.material_textures[mat]
        uv = np.einsum("nk,nkc->nc", b, self.uvs[f].astype(np.float64))
        for t in np.unique(tex[tex >= 0]):
            rows = tex == t
            color[rows] *= sample_texture_linear(self.textures[t], uv[rows])
        return color

    def color_at(self, face_ids, barycentrics):
        """sRGB albedo (n, 3) float32 in [0, 1] at points given by face id and barycentrics."""
        linear = np.clip(self.linear_color_at(face_ids, barycentrics), 0.0, 1.0)
        return linear_to_srgb(linear).astype(np.float32)

    def packed_textures(self):
        """All texture images in one flat uint8 array plus a (T, 6) int32 table of
        [offset, width, height, wrap_u, wrap_v, alpha offset (-1: none)]; the alpha plane
        follows its image. A dummy 1-texel entry when there are none."""
        if not self.textures:
            return np.zeros(3, np.uint8), np.array([[0, 1, 1, 0, 0, -1]], np.int32)
        table, chunks, offset = [], [], 0
        for t in self.textures:
            h, w = t.image.shape[:2]
            alpha_offset = -1 if t.alpha is None else offset + h * w * 3
            table.append([offset, w, h, t.wrap_u, t.wrap_v, alpha_offset])
            chunks.append(np.ascontiguousarray(t.image, dtype=np.uint8).reshape(-1))
            offset += h * w * 3
            if t.alpha is not None:
                chunks.append(np.ascontiguousarray(t.alpha, dtype=np.uint8).reshape(-1))
                offset += h * w
        if offset >= 2**31:
            raise MeshError("textures too large: more than 2 GB of texels in one mesh")
        return np.concatenate(chunks), np.asarray(table, np.int32)


def wrap_index(i, size, mode):
    """Integer texel indices wrapped by a glTF wrap mode (numpy twin of the kernel's)."""
    if mode == WRAP_CLAMP:
        return np.clip(i, 0, size - 1)
    if mode == WRAP_MIRROR:
        m = np.mod(i, 2 * size)
        return np.where(m >= size, 2 * size - 1 - m, m)
    return np.mod(i, size)


def sample_texture_linear(texture, uv):
    """Bilinear lookup (texels decoded from sRGB first) at uv (n, 2); returns linear (n, 3)."""
    img = texture.image
    h, w = img.shape[:2]
    x = uv[:, 0] * w - 0.5
    y = (1.0 - uv[:, 1]) * h - 0.5
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    xs = [wrap_index(x0.astype(np.int64) + d, w, texture.wrap_u) for d in (0, 1)]
    ys = [wrap_index(y0.astype(np.int64) + d, h, texture.wrap_v) for d in (0, 1)]
    lin = SRGB8_TO_LINEAR.astype(np.float64)

    def texel(yy, xx):
        return lin[img[yy, xx]]

    top = texel(ys[0], xs[0]) * (1 - fx) + texel(ys[0], xs[1]) * fx
    bottom = texel(ys[1], xs[0]) * (1 - fx) + texel(ys[1], xs[1]) * fx
    return top * (1 - fy) + bottom * fy


# --------------------------------------------------------------------------------------------
# Loading


def load_mesh(path_or_trimesh, up="y", padding=0.0, max_faces=MAX_FACES):
    """Load a mesh file (or a trimesh Trimesh/Scene) into a normalised, coloured `Mesh`.

    The bounding box is centred at the origin and scaled so its longest side spans
    1 - 2 * padding. `up="z"` rotates a Z-up file into our Y-up frame.
    """
    if up not in _UP_AXES:
        raise OptionError(f"unknown up axis {up!r}: choose 'y' or 'z'")
    if not 0.0 <= float(padding) < 0.5:
        raise OptionError(f"padding must lie in [0, 0.5), got {padding}")
    scene, name, source, declared = _open_scene(path_or_trimesh, max_faces)
    parts = list(_scene_parts(scene))
    total = sum(len(g.faces) for g, _, _ in parts)
    _check_face_count(name, total, max_faces)
    if total == 0:
        raise MeshError(f"{name}: the file holds no triangle faces{declared.extension_note()}")
    soup = _build_soup(parts, name, declared, declared.primitives_by_geometry(scene.geometry))
    tris, keep = _drop_degenerate(soup["triangles"])
    if not keep.any():
        raise MeshError(f"{name}: every triangle is degenerate (zero area)")
    if up == "z":
        tris = tris[..., [0, 2, 1]] * np.array([1.0, 1.0, -1.0])
    tris = _normalise(tris, padding)
    return Mesh(
        name=name,
        triangles=tris.astype(np.float32),
        uvs=soup["uvs"][keep],
        corner_colors=soup["corner_colors"][keep],
        face_material=soup["face_material"][keep],
        material_colors=soup["material_colors"],
        material_textures=soup["material_textures"],
        textures=soup["textures"],
        material_alpha_modes=soup["material_alpha_modes"],
        material_alphas=soup["material_alphas"],
        dropped_degenerate=int((~keep).sum()),
        source=source,
    )


def _check_face_count(name, count, max_faces):
    if count is not None and count > max_faces:
        raise MeshError(f"{name}: {count:,} faces is more than the limit of {max_faces:,}")


def _header_face_count(path, ext):
    """Face count stated by the file's header (binary STL, PLY, OFF), read before loading so
    a huge file is refused at once; None when the header does not say."""
    with open(path, "rb") as fh:
        head = fh.read(65536)
    if ext == ".stl" and len(head) >= 84:
        count = struct.unpack_from("<I", head, 80)[0]
        return count if path.stat().st_size == 84 + 50 * count else None
    if ext == ".ply":
        header = head.split(b"end_header", 1)[0].decode("ascii", "replace")
        for line in header.splitlines():
            words = line.split()
            if words[:2] == ["element", "face"] and len(words) == 3 and words[2].isdigit():
                return int(words[2])
    if ext == ".off":
        lines = [ln.split("#")[0].split() for ln in head.decode("ascii", "replace").splitlines()]
        words = [w for ln in lines for w in ln][:3]
        if len(words) == 3 and words[0].endswith("OFF") and words[2].isdigit():
            return int(words[2])
    return None


def _check_whole(path, ext):
    """Refuse an empty file, and a GLB shorter than its header says, by name: trimesh's own
    errors for them read 'IndexError: index 0 is out of bounds' and 'chunk was not expected
    length'."""
    size = path.stat().st_size
    if size == 0:
        raise MeshError(f"{path.name}: the file is empty (0 bytes), it holds no triangle faces")
    if ext == ".glb":
        with open(path, "rb") as fh:
            head = fh.read(12)
        if len(head) == 12 and head[:4] == b"glTF":
            stated = struct.unpack_from("<I", head, 8)[0]
            if stated > size:
                raise MeshError(f"{path.name}: the file is truncated ({size:,} of the "
                                f"{stated:,} bytes its header states)")


def _open_scene(path_or_trimesh, max_faces=MAX_FACES):
    """(trimesh.Scene, name, source text, texture declarations) for a path or trimesh object."""
    import trimesh

    if isinstance(path_or_trimesh, (trimesh.Trimesh, trimesh.Scene)):
        scene = trimesh.Scene(path_or_trimesh) if isinstance(
            path_or_trimesh, trimesh.Trimesh) else path_or_trimesh
        name = pathlib.Path(str(path_or_trimesh.metadata.get("file_name", "mesh"))).stem
        return scene, name or "mesh", "<trimesh object>", _Declared()
    if not isinstance(path_or_trimesh, (str, os.PathLike)):
        raise MeshError(f"expected a mesh file path or a trimesh object, got "
                        f"{type(path_or_trimesh).__name__}")
    path = pathlib.Path(path_or_trimesh).expanduser()
    if not path.is_file():
        raise MeshError(f"mesh file not found: {path}")
    ext = path.suffix.lower()
    if ext not in SUPPORTED_EXTENSIONS:
        raise MeshError(f"unknown mesh format {ext or '(no extension)'!r} for {path.name}: "
                        f"supported are {', '.join(SUPPORTED_EXTENSIONS)}")
    try:
        _check_whole(path, ext)
        stated = _header_face_count(path, ext)
    except OSError as exc:
        raise MeshError(f"cannot read {path.name}: {_one_line(exc)}") from None
    _check_face_count(path.stem, stated, max_faces)
    folder = MeshFolder(path)
    declared = _declared_textures(path, ext, folder)
    try:
        if ext == ".off":  # ours keeps the colours trimesh's reader drops
            scene = trimesh.Scene(load_off(path))
        else:  # our resolver: trimesh reads the files the mesh names by our rules
            scene = trimesh.load(str(path), force="scene", process=False, resolver=folder)
    except RecursionError:
        raise MeshError(f"cannot read {path.name}: nested too deeply") from None
    except Exception as exc:  # trimesh raises many types for broken files
        raise MeshError(f"cannot read {path.name}: {_one_line(exc)}"
                        f"{declared.extension_note()}") from None
    return scene, path.stem, str(path), declared


def referenced_files(path):
    """The mesh file and every file it names that loading it would read, found by the same
    rules (for the check that no output replaces an input)."""
    path = pathlib.Path(path)
    folder = MeshFolder(path, warn=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            _declared_textures(path, path.suffix.lower(), folder)
        except (MeshError, OSError):
            pass  # the load itself reports it
    return [path] + folder.followed


def _one_line(exc):
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def _scene_parts(scene):
    """(geometry, 4x4 world transform, geometry name) for every triangle-mesh instance in the
    scene graph."""
    import trimesh

    for node in scene.graph.nodes_geometry:
        transform, geom_name = scene.graph[node]
        geom = scene.geometry.get(geom_name)
        if isinstance(geom, trimesh.Trimesh) and len(geom.faces):
            yield geom, np.asarray(transform, dtype=np.float64), geom_name


class _Declared:
    """What the file itself says, read from its MTL or glTF, that trimesh does not keep: which
    materials name an image, glTF sampler wrap modes, and each glTF primitive's COLOR_0 and
    texture UVs read by us (see gltf_primitives.py)."""

    def __init__(self, textured=(), wraps=None, missing_libs=(), primitives=(),
                 required_extensions=(), texture_files=None, missing_images=()):
        self.textured = set(textured)
        self.missing_images = list(missing_images)  # glTF image files that are not there
        self.texture_files = dict(texture_files or {})  # MTL material -> image path we found
        self._images = {}
        self.wraps = dict(wraps or {})
        self.missing_libs = list(missing_libs)
        self.primitives = list(primitives)  # gltf_primitives.Primitive, in file order
        self.required_extensions = list(required_extensions)

    def extension_note(self):
        """Why a glTF may have come out empty: extensions it requires (Draco, ...)."""
        if not self.required_extensions:
            return ""
        return f" (it requires glTF extensions {', '.join(self.required_extensions)})"

    def texture_image(self, material_name):
        """The PIL image we found for an MTL material whose map_Kd trimesh could not open
        (Windows path, map options); None when there is none."""
        found = self.texture_files.get(material_name)
        if found is None:
            return None
        if found not in self._images:
            from PIL import Image

            folder, path = found
            try:
                self._images[found] = Image.open(io.BytesIO(folder.read(path)))
            except (OSError, ValueError, MeshError, Image.DecompressionBombError):
                self._images[found] = None
        return self._images[found]

    def primitives_by_geometry(self, geometries):
        """Geometry name -> our glTF `Primitive`. Primitives are paired with trimesh's
        geometries in file order among those with exactly the same positions, so identical
        shapes with different colours each keep their own."""
        result, used = {}, set()
        for name, geom in geometries.items():
            v = np.asarray(geom.vertices, np.float32)
            for i, prim in enumerate(self.primitives):
                if i not in used and prim.positions.shape == v.shape \
                        and np.array_equal(prim.positions, v):
                    used.add(i)
                    result[name] = prim
                    break
        return result


def _declared_textures(path, ext, folder):
    try:
        if ext == ".obj":
            return _declared_obj(path, folder)
        if ext in (".gltf", ".glb"):
            doc, buffer = _gltf_json(path, ext, folder)
            check_gltf_document(doc, path.name)
            return _declared_gltf(doc, buffer, folder)
    except RecursionError:
        raise MeshError(f"cannot read {path.name}: nested too deeply") from None
    except RefusedReference:
        raise  # a buffer the geometry needs: the run cannot go on without it
    except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError, struct.error):
        pass  # a broken header is reported by trimesh's own reader
    return _Declared()


# map_Kd options and how many values each takes (MTL spec); the file name follows them
_MAP_OPTIONS = {"-blendu": 1, "-blendv": 1, "-bm": 1, "-boost": 1, "-cc": 1, "-clamp": 1,
                "-imfchan": 1, "-mm": 2, "-o": 3, "-s": 3, "-t": 3, "-texres": 1}


def _map_file_name(words):
    """The image file named by the words after map_Kd, its options skipped ('-o', '-s' and
    '-t' take one to three numbers)."""
    i = 0
    while i < len(words) and words[i].lower() in _MAP_OPTIONS:
        count = _MAP_OPTIONS[words[i].lower()]
        i += 1
        for _ in range(count):
            if i < len(words) and (count == 1 or _is_number(words[i])):
                i += 1
    return " ".join(words[i:])


def _is_number(word):
    try:
        float(word)
        return True
    except ValueError:
        return False


def _find_texture(folder, base, name):
    """(folder, path) of an MTL image name, found by the mesh folder's rules (Windows
    separators turned round, an exporter's absolute path tried as a bare name); None if none."""
    if not name:
        return None
    try:
        return folder, folder.locate(name, base)
    except RefusedReference:
        return None


def _declared_obj(path, folder):
    textured, missing, files = set(), [], {}
    with open(path, "r", errors="replace") as fh:
        libs = [line.split(None, 1)[1].strip() for line in fh
                if line.startswith("mtllib") and len(line.split(None, 1)) == 2]
    for lib in libs:
        try:
            mtl = folder.locate(lib)
            text = folder.read(lib).decode("utf-8", "replace")
        except RefusedReference:
            missing.append(lib)
            continue
        current = None
        for line in text.splitlines():
            words = line.strip().split()
            if words and words[0] == "newmtl" and len(words) > 1:
                current = " ".join(words[1:])
            elif words and words[0].lower() == "map_kd" and current is not None:
                textured.add(current)
                files[current] = _find_texture(folder, mtl.parent, _map_file_name(words[1:]))
    return _Declared(textured, missing_libs=missing, texture_files=files)


def _gltf_json(path, ext, folder):
    """The glTF document and a function giving the bytes of buffer i (GLB chunk, file or
    data URI), each read or decoded once."""
    data = path.read_bytes()
    if ext == ".gltf":
        doc, chunk = json.loads(data.decode("utf-8")), b""
    else:
        if data[:4] != b"glTF":
            raise ValueError("not a GLB")
        length, kind = struct.unpack_from("<II", data, 12)
        if kind != 0x4E4F534A:  # 'JSON'
            raise ValueError("GLB without JSON chunk")
        doc = json.loads(data[20:20 + length].decode("utf-8"))
        rest = 20 + length
        chunk = data[rest + 8:] if len(data) > rest + 8 else b""
    cache = {}

    def buffer(i):
        if i not in cache:
            declared = doc["buffers"][i]
            uri = declared.get("uri")
            if uri is None:
                cache[i] = chunk
            elif not isinstance(uri, str):
                raise MeshError(f"{path.name}: glTF buffers[{i}].uri is not a string")
            elif uri.startswith("data:"):
                cache[i] = decode_data_uri(uri)
            else:
                with warnings.catch_warnings():  # a refused buffer is the run's error line,
                    warnings.simplefilter("ignore")  # so it is not also warned about
                    cache[i] = folder.read(uri, limit=max(0, int(declared.get("byteLength", 0))))
        return cache[i]

    return doc, buffer


_GLTF_LISTS = ("accessors", "animations", "bufferViews", "buffers", "cameras", "images",
               "materials", "meshes", "nodes", "samplers", "scenes", "skins", "textures")


def check_gltf_document(doc, name):
    """Refuse by name a glTF whose parts are not the objects the spec says (trimesh fails on
    them with AttributeError deep inside) and a node graph with a cycle (it recurses forever)."""
    def part(where, value, kind=dict):
        if not isinstance(value, kind):
            noun = "an object" if kind is dict else "a list"
            raise MeshError(f"{name}: glTF {where} is not {noun}")
        return value

    part("document", doc)
    for key in _GLTF_LISTS:
        for i, item in enumerate(part(key, doc.get(key, []), list)):
            part(f"{key}[{i}]", item)
    for i, mesh in enumerate(doc.get("meshes", [])):
        for j, prim in enumerate(part(f"meshes[{i}].primitives", mesh.get("primitives", []), list)):
            part(f"meshes[{i}].primitives[{j}]", prim)
            part(f"meshes[{i}].primitives[{j}].attributes", prim.get("attributes", {}))
    for i, mat in enumerate(doc.get("materials", [])):
        part(f"materials[{i}].pbrMetallicRoughness", mat.get("pbrMetallicRoughness", {}))
    nodes = doc.get("nodes", [])
    children = [part(f"nodes[{i}].children", n.get("children", []), list)
                for i, n in enumerate(nodes)]
    _check_node_tree(children, name)


def _check_node_tree(children, name):
    """Every node reached at most once from the roots: no cycles, no node with two parents."""
    parents = [0] * len(children)
    for i, kids in enumerate(children):
        for k in kids:
            if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k < len(children):
                raise MeshError(f"{name}: glTF nodes[{i}] names a child node {k!r} that does "
                                "not exist")
            parents[k] += 1
            if parents[k] > 1:
                raise MeshError(f"{name}: glTF node {k} has two parents")
    # no node has two parents, so a cycle is exactly a set of nodes no root reaches
    seen, stack = set(), [i for i, p in enumerate(parents) if p == 0]
    while stack:
        node = stack.pop()
        seen.add(node)
        stack += children[node]
    if len(seen) != len(children):
        first = min(set(range(len(children))) - seen)
        raise MeshError(f"{name}: glTF node {first} lies on a cycle of nodes[].children")


def _declared_gltf(doc, buffer, folder):
    textured, wraps, unnamed_wraps = set(), {}, set()
    textures, samplers = doc.get("textures", []), doc.get("samplers", [])
    for i, mat in enumerate(doc.get("materials", [])):
        ref = colour_texture(mat)
        if ref is None:
            continue
        sampler_index = textures[ref["index"]].get("sampler")
        sampler = samplers[sampler_index] if sampler_index is not None else {}
        wrap = (_GLTF_WRAP.get(sampler.get("wrapS", 10497), WRAP_REPEAT),
                _GLTF_WRAP.get(sampler.get("wrapT", 10497), WRAP_REPEAT))
        if "name" not in mat:  # trimesh names it None: usable when all such agree
            unnamed_wraps.add(wrap)
            continue
        textured.add(mat["name"])
        wraps[mat["name"]] = wrap
    if len(unnamed_wraps) == 1:
        wraps[None] = unnamed_wraps.pop()
    missing = [urllib.parse.unquote(str(img["uri"])) for img in doc.get("images", [])
               if img.get("uri") and not str(img["uri"]).startswith("data:")
               and not _found(folder, str(img["uri"]))]
    try:
        primitives = read_primitives(doc, buffer)
    except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError):
        primitives = []  # unreadable buffers: trimesh reports the file, or its colours stand
    except RefusedReference:
        raise  # names the file already
    except MeshError as exc:  # an undecodable Draco primitive
        raise MeshError(f"{folder.name}: {exc}") from None
    return _Declared(textured, wraps, primitives=primitives,
                     required_extensions=[str(e) for e in doc.get("extensionsRequired", [])],
                     missing_images=missing)


def _found(folder, name):
    try:
        return folder.locate(name) is not None
    except RefusedReference:
        return False


def _build_soup(parts, name, declared, own_primitives):
    """Concatenate every part's world-space triangles and colour data; `own_primitives` maps a
    geometry name to what we read of its glTF primitive."""
    palette = _MaterialTable()
    chunks = {k: [] for k in ("triangles", "uvs", "corner_colors", "face_material")}
    warned = set()
    for geom, transform, geom_name in parts:
        faces = np.asarray(geom.faces, dtype=np.int64)
        verts = np.asarray(geom.vertices, dtype=np.float64)
        if verts.ndim != 2 or verts.shape[1] != 3:
            raise MeshError(f"{name}: corrupt file, vertices are not 3-D points")
        if faces.ndim != 2 or faces.shape[1] != 3 or faces.min() < 0 or faces.max() >= len(verts):
            raise MeshError(f"{name}: corrupt file, faces refer to vertices that do not exist")
        tris = verts[faces]
        if not (np.isfinite(tris).all() and np.isfinite(transform).all()):
            raise MeshError(f"{name}: vertex coordinates contain NaN or infinity")
        tris = tris @ transform[:3, :3].T + transform[:3, 3]
        uvs, corners, mat_id = _part_colors(geom, faces, palette, declared,
                                            own_primitives.get(geom_name), name, warned)
        chunks["triangles"].append(tris)
        chunks["uvs"].append(uvs)
        chunks["corner_colors"].append(corners)
        chunks["face_material"].append(np.full(len(faces), mat_id, np.int32))
    if declared.missing_images and not any("texture image" in w for w in warned):
        # unnamed glTF materials cannot be told apart above: name the file instead
        _warn_once(warned, f"{name}: texture image {declared.missing_images[0]!r} is missing; "
                           f"using base colours")
    soup = {k: np.concatenate(v) for k, v in chunks.items()}
    soup.update(palette.arrays())
    return soup


class _MaterialTable:
    """Deduplicated (linear colour, texture) materials and their textures."""

    def __init__(self):
        self.keys, self.colors, self.tex_ids, self.alphas = {}, [], [], []
        self.textures, self.tex_keys = [], {}
        self.texels = 0  # pixels of the textures decoded so far, against MAX_TEXTURE_PIXELS

    def texture_id(self, pil_image, wrap, mesh_name):
        """Index of the texture, decoded once; -1 (base colour, with a warning) when the image
        cannot be decoded. Its size is checked from the header before decoding."""
        from PIL import Image

        key = (id(pil_image), wrap)
        if key not in self.tex_keys and not isinstance(pil_image, Image.Image):
            warnings.warn(f"{mesh_name}: a material's texture is not an image; using base "
                          "colours", stacklevel=5)
            self.tex_keys[key] = -1
        if key not in self.tex_keys:
            w, h = pil_image.size
            if w * h > MAX_IMAGE_PIXELS:
                raise MeshError(f"{mesh_name}: a {w}x{h} texture is over the limit of "
                                f"{MAX_IMAGE_PIXELS:,} pixels ({MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE})")
            self.texels += w * h
            if self.texels > MAX_TEXTURE_PIXELS:
                raise MeshError(f"{mesh_name}: its textures hold more than the limit of "
                                f"{MAX_TEXTURE_PIXELS:,} pixels together")
            try:
                rgba = pil_to_rgba8(pil_image)
            except (OSError, ValueError, SyntaxError) as exc:  # PIL's errors for broken images
                warnings.warn(f"{mesh_name}: a texture image cannot be decoded ({_one_line(exc)});"
                              " using base colours", stacklevel=5)
                self.tex_keys[key] = -1
                return -1
            self.tex_keys[key] = len(self.textures)
            alpha = rgba[..., 3] if (rgba[..., 3] < 255).any() else None
            self.textures.append(Texture(np.ascontiguousarray(rgba[..., :3]), *wrap,
                                         alpha=None if alpha is None else alpha.copy()))
        return self.tex_keys[key]

    def material_id(self, linear_rgb, tex_id, alpha=OPAQUE):
        """Index of the material (linear colour, texture, (alpha mode, base alpha, cutoff))."""
        key = (tuple(np.round(np.asarray(linear_rgb, np.float64), 7)), tex_id, alpha)
        if key not in self.keys:
            self.keys[key] = len(self.colors)
            self.colors.append(np.asarray(linear_rgb, np.float32))
            self.tex_ids.append(tex_id)
            self.alphas.append(alpha)
        return self.keys[key]

    def arrays(self):
        alphas = np.asarray(self.alphas, np.float64).reshape(-1, 3)
        return dict(material_colors=np.asarray(self.colors, np.float32).reshape(-1, 3),
                    material_textures=np.asarray(self.tex_ids, np.int32),
                    material_alpha_modes=alphas[:, 0].astype(np.int32),
                    material_alphas=alphas[:, 1:].astype(np.float32),
                    textures=self.textures)


def _part_colors(geom, faces, palette, declared, own, name, warned):
    """Per-corner uvs and colours and the material id of one part (`own`: what we read of
    its glTF primitive, or None)."""
    import trimesh

    n = len(faces)
    from_gltf = "from_gltf_primitive" in geom.metadata
    uvs = np.zeros((n, 3, 2), np.float32)
    corners = None
    base, tex_id, alpha = None, -1, OPAQUE
    visual = geom.visual
    if isinstance(visual, trimesh.visual.TextureVisuals):
        base, image, mat_name = _material_color(visual.material, from_gltf)
        alpha = _material_alpha(visual.material)
        if image is None and mat_name in declared.textured:
            image = declared.texture_image(mat_name)
            base = None if image is not None else base  # an MTL texture replaces Kd
        corners = _attribute_colors(visual.vertex_attributes.get("color"), faces, from_gltf)
        uv = visual.uv if own is None or own.uvs is None else own.uvs
        has_uv = uv is not None and len(uv) == len(geom.vertices)
        if image is not None and has_uv:
            uvs = np.nan_to_num(np.asarray(uv, np.float64)[faces]).astype(np.float32)
            tex_id = palette.texture_id(image, declared.wraps.get(mat_name, (0, 0)), name)
            if tex_id >= 0:
                base = np.ones(3) if base is None else base
        elif mat_name in declared.textured and image is None:
            _warn_once(warned, f"{name}: texture image of material {mat_name!r} is missing; "
                               f"using its base colour")
    elif isinstance(visual, trimesh.visual.ColorVisuals):
        corners = _color_visual_colors(visual, faces, from_gltf)
    if own is not None and own.colors is not None:
        corners = own.colors[faces].astype(np.float32)
    if declared.missing_libs:
        _warn_once(warned, f"{name}: material library {declared.missing_libs[0]!r} not found; "
                           f"using grey")
    if base is None:  # no factor given: vertex/face colours stand alone; glTF's default
        # base colour is white (spec), other formats' neutral grey
        white = corners is not None or from_gltf
        base = np.ones(3) if white else srgb_to_linear([NEUTRAL_GREY_SRGB] * 3)
    if corners is None:
        corners = np.ones((n, 3, 3), np.float32)
    return uvs, corners, palette.material_id(base, tex_id, alpha)


def _material_color(material, from_gltf):
    """(linear base colour or None, PIL image or None, material name) of a trimesh material."""
    import trimesh

    name = getattr(material, "name", None)
    if isinstance(material, trimesh.visual.material.PBRMaterial):
        factor, image = material.baseColorFactor, material.baseColorTexture
        if factor is None and image is None:  # emissive-only: its emission is its colour
            return _emission(material) + (name,)
        linear = None if factor is None else np.asarray(factor, np.float64)[:3] / 255.0
        return linear, image, name
    image = getattr(material, "image", None)
    diffuse = getattr(material, "diffuse", None)
    if image is not None or diffuse is None:  # an MTL texture replaces Kd, as Blender does
        return None, image, name
    srgb = np.asarray(diffuse, np.float64)[:3] / 255.0
    return (srgb if from_gltf else srgb_to_linear(srgb)), None, name


def _material_alpha(material):
    """(alpha mode, base alpha, cutoff) of a glTF material; OPAQUE for every other kind."""
    mode = _GLTF_ALPHA_MODES.get(getattr(material, "alphaMode", None), ALPHA_OPAQUE)
    if mode == ALPHA_OPAQUE:
        return OPAQUE
    factor = material.baseColorFactor  # RGBA uint8 in trimesh
    base = 1.0 if factor is None or len(factor) < 4 else float(factor[3]) / 255.0
    cutoff = 0.5 if material.alphaCutoff is None else float(material.alphaCutoff)  # spec default
    return mode, base, cutoff


def _emission(material):
    """(linear colour or None, PIL image or None) a PBR material emits (the same rule as
    gltf_primitives.is_emissive_only: a texture alone emits its texels unscaled)."""
    factor, image = material.emissiveFactor, material.emissiveTexture
    if factor is not None and np.any(np.asarray(factor, np.float64) > 0):
        return np.clip(np.asarray(factor, np.float64)[:3], 0.0, 1.0), image
    return None, image


def _attribute_colors(colors, faces, from_gltf):
    """glTF COLOR_0 kept beside a texture: floats or normalised integers, linear."""
    if colors is None:
        return None
    c = np.asarray(colors)
    if c.ndim != 2 or c.shape[1] < 3:
        return None
    c = c[:, :3].astype(np.float64) / (np.iinfo(c.dtype).max if c.dtype.kind in "ui" else 1.0)
    c = np.clip(np.nan_to_num(c), 0.0, 1.0)
    if not from_gltf:
        c = srgb_to_linear(c)
    return c[faces].astype(np.float32)


def _color_visual_colors(visual, faces, from_gltf):
    """Vertex or face colours of a trimesh ColorVisuals (uint8; linear only from glTF)."""
    if visual.kind == "vertex":
        c = np.asarray(visual.vertex_colors)[:, :3][faces]
    elif visual.kind == "face":
        c = np.repeat(np.asarray(visual.face_colors)[:, None, :3], 3, axis=1)
    else:
        return None
    c = c.astype(np.float64) / 255.0
    return (c if from_gltf else srgb_to_linear(c)).astype(np.float32)


def _warn_once(warned, message):
    if message not in warned:
        warned.add(message)
        warnings.warn(message, stacklevel=4)


def _drop_degenerate(tris):
    """Keep triangles whose area is above a tiny fraction of the mesh's squared size."""
    extent = float(np.max(tris.max(axis=(0, 1)) - tris.min(axis=(0, 1))))
    double_area = np.linalg.norm(np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0]), axis=1)
    keep = double_area > (extent * extent) * 1e-12
    return tris[keep], keep


def _normalise(tris, padding):
    lo, hi = tris.min(axis=(0, 1)), tris.max(axis=(0, 1))
    scale = (1.0 - 2.0 * padding) / float(np.max(hi - lo))
    return (tris - (lo + hi) / 2.0) * scale

