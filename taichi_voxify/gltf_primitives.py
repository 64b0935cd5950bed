"""What each glTF triangle primitive holds that trimesh does not keep, read from the document.

trimesh reads TEXCOORD_0 only, ignores KHR_texture_transform and turns normalised
unsigned-short COLOR_0 (Blender's default) into garbage. So for every triangle primitive, in
file order, we read its positions (to pair it with trimesh's geometry), its COLOR_0 decoded per
the spec, and the UVs its material's colour texture asks for: the texCoord set named by the
texture reference (or its KHR_texture_transform), with the transform applied. Draco-compressed
primitives (KHR_draco_mesh_compression) are decoded with DracoPy, as trimesh does, so the
positions agree bit for bit.

The colour texture of a material is its baseColorTexture; a material with neither base colour
factor nor texture but with an emissive factor or texture is emissive-only, and its emissive
texture is its colour texture (mesh.py takes its emission as its colour).
"""
from dataclasses import dataclass

import numpy as np

from .errors import MeshError

DRACO = "KHR_draco_mesh_compression"
TEXTURE_TRANSFORM = "KHR_texture_transform"
TRIANGLE_MODES = (4, 5)  # triangles, strips: the primitives trimesh makes Trimeshes of

_COMPONENTS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}
_COMPONENT_TYPES = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16,
                    5125: np.uint32, 5126: np.float32}


@dataclass
class Primitive:
    positions: np.ndarray  # (V, 3) float32, as trimesh reads them
    colors: np.ndarray = None  # (V, 3) float64 linear COLOR_0, None without one
    uvs: np.ndarray = None  # (V, 2) float64, v up, transformed; None: trimesh's TEXCOORD_0 stands


def is_emissive_only(material):
    """A glTF material dict with no base colour (factor or texture) that emits a colour."""
    pbr = material.get("pbrMetallicRoughness", {})
    if "baseColorFactor" in pbr or "baseColorTexture" in pbr:
        return False
    return "emissiveTexture" in material or any(material.get("emissiveFactor", [0, 0, 0]))


def colour_texture(material):
    """The texture reference (textureInfo dict) a material's colour comes from, or None."""
    if is_emissive_only(material):
        return material.get("emissiveTexture")
    return material.get("pbrMetallicRoughness", {}).get("baseColorTexture")


def read_primitives(doc, buffer):
    """A `Primitive` for every triangle primitive with positions, in file order; `buffer(i)`
    gives the bytes of buffer i."""
    materials = doc.get("materials", [])
    found = []
    for mesh in doc.get("meshes", []):
        for prim in mesh.get("primitives", []):
            attrs = prim.get("attributes", {})
            if "POSITION" not in attrs or prim.get("mode", 4) not in TRIANGLE_MODES:
                continue
            arrays = _attribute_reader(doc, buffer, prim)
            texture = colour_texture(materials[prim["material"]]) if "material" in prim else None
            found.append(Primitive(arrays("POSITION").astype(np.float32),
                                   _linear_colors(arrays("COLOR_0")),
                                   _texture_uvs(texture, arrays)))
    return found


def _attribute_reader(doc, buffer, prim):
    """A function giving an attribute's array by name (None when the primitive lacks it)."""
    draco = prim.get("extensions", {}).get(DRACO)
    decoded = _draco_attributes(doc, buffer, draco) if draco else {}

    def arrays(name):
        if name in decoded:
            return decoded[name]
        index = prim["attributes"].get(name)
        return None if index is None else read_accessor(doc, buffer, index)

    return arrays


def _draco_attributes(doc, buffer, draco):
    try:
        import DracoPy
    except ImportError:
        raise MeshError(f"a glTF primitive is compressed with {DRACO}: install DracoPy "
                        "(pip install DracoPy) to read it") from None
    view = doc["bufferViews"][draco["bufferView"]]
    start = view.get("byteOffset", 0)
    blob = buffer(view["buffer"])[start:start + view["byteLength"]]
    try:
        decoded = DracoPy.decode(blob)
    except Exception as exc:  # DracoPy raises its own failure types for a corrupt blob
        raise MeshError(f"a Draco-compressed glTF primitive cannot be decoded "
                        f"({type(exc).__name__})") from None
    by_id = {attr["unique_id"]: attr["data"] for attr in decoded.attributes}
    return {name: np.asarray(by_id[i]) for name, i in draco.get("attributes", {}).items()
            if i in by_id}


def read_accessor(doc, buffer, index):
    """An accessor's elements as a (count, components) array (strided views honoured)."""
    acc = doc["accessors"][index]
    view = doc["bufferViews"][acc["bufferView"]]
    dtype = np.dtype(_COMPONENT_TYPES[acc["componentType"]])
    comps = _COMPONENTS[acc["type"]]
    stride = view.get("byteStride") or dtype.itemsize * comps
    start = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
    return np.ndarray((acc["count"], comps), dtype, buffer=buffer(view["buffer"]), offset=start,
                      strides=(stride, dtype.itemsize)).copy()


def _normalised(values):
    """Floats as they are; integers as normalised glTF values in [0, 1]."""
    values = np.asarray(values)
    scale = np.iinfo(values.dtype).max if values.dtype.kind in "ui" else 1.0
    return values.astype(np.float64) / scale


def _linear_colors(raw):
    if raw is None:
        return None
    return np.clip(np.nan_to_num(_normalised(raw)[:, :3]), 0.0, 1.0)


def _texture_uvs(texture, arrays):
    """UVs (v up) the texture reference asks for, transformed; None when it asks for no more
    than trimesh already gives (TEXCOORD_0, no transform) or the set is absent."""
    if texture is None:
        return None
    transform = texture.get("extensions", {}).get(TEXTURE_TRANSFORM)
    tex_coord = int((transform or {}).get("texCoord", texture.get("texCoord", 0)))
    if tex_coord == 0 and transform is None:
        return None
    raw = arrays(f"TEXCOORD_{tex_coord}")
    if raw is None:
        return None
    uv = np.nan_to_num(_normalised(raw)[:, :2])
    if transform is not None:
        uv = apply_texture_transform(uv, transform)
    return np.stack([uv[:, 0], 1.0 - uv[:, 1]], axis=1)  # glTF's v runs down the image


def apply_texture_transform(uv, transform):
    """KHR_texture_transform on glTF UVs (v down): scale, then rotate, then offset."""
    sx, sy = (float(s) for s in transform.get("scale", (1.0, 1.0)))
    ox, oy = (float(o) for o in transform.get("offset", (0.0, 0.0)))
    r = float(transform.get("rotation", 0.0))
    c, s = np.cos(r), np.sin(r)
    u, v = uv[:, 0] * sx, uv[:, 1] * sy
    return np.stack([c * u + s * v + ox, -s * u + c * v + oy], axis=1)
