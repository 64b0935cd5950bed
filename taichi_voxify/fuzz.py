"""Fuzzing the file loaders: every mutated input ends in success or a typed error, in bounds.

Seeds are small crafted files of every kind we read (glTF + .bin + PNG, GLB, OBJ + MTL + PNG,
PLY, STL, OFF, .vox, .npz, a pixel-art folder) and the meshes shipped in a seed folder (the
repository's tests/data). Case i mutates one file of one seed with a generator seeded by
(seed, i), so any case can be replayed alone (`--case i`). Each case runs in a worker process
under an address-space limit and a wall-clock alarm; a case fails when the loader raises
anything but a VoxifyError, a multi-line message, MemoryError or runs out of time.

    python examples/fuzz.py --cases 5000          # the long run; the test suite runs a few hundred
"""
import argparse
import io
import json
import multiprocessing
import pathlib
import resource
import shutil
import signal
import struct
import sys
import tempfile
import time
import warnings

import numpy as np

MESH_KINDS = (".obj", ".gltf", ".glb", ".ply", ".stl", ".off")
PIXEL_ART_CELLS = 8
SHIPPED_MAX_BYTES = 600_000
INTERESTING_INTS = (0, 1, -1, 255, 256, 65535, 65536, 2**31 - 1, -2**31, 2**32 - 1, 2**30,
                    0x7FFF, 4096)
INTERESTING_TEXT = ("-1", "0", "1e308", "-1e308", "nan", "inf", "4294967296", "99999999999",
                    "2147483648", "1.5", "../../secret.bin", "/dev/zero", "/etc/passwd",
                    "http://example.com/x.bin", "data:,abc", "", "\\\\server\\share\\x.png")
INTERESTING_JSON = (None, True, -1, 0, 2**40, 1e308, "x", "../../secret.bin", "/dev/zero",
                    "data:application/octet-stream;base64,AAAA", [], {}, [[[[[]]]]], {"a": 1},
                    "http://example.com/x.png")


# --- crafted seeds ----------------------------------------------------------------------------
def _png(size=(4, 4), color=(200, 40, 40, 255)):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGBA", size, color).save(buf, "PNG")
    return buf.getvalue()


def _triangle_buffer(primitives):
    """Positions, uvs and indices of one triangle, shared by `primitives` primitives."""
    pos = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32).tobytes()
    uv = np.array([[0, 0], [1, 0], [0, 1]], np.float32).tobytes()
    idx = np.array([0, 1, 2, 0], np.uint16).tobytes()  # padded to 4 bytes
    return pos + uv + idx, len(pos), len(uv)


def triangle_gltf(buffer_uri="tri.bin", image_uri=None, primitives=1):
    """{file name: bytes} of a glTF triangle (repeated over `primitives` meshes and nodes) whose
    buffer is the file `buffer_uri` (a data: URI when None) and, when `image_uri` is given,
    textured by an image of that name (tex.png is written beside it when it is 'tex.png')."""
    import base64

    data, npos, nuv = _triangle_buffer(primitives)
    uri = buffer_uri if buffer_uri is not None else \
        "data:application/octet-stream;base64," + base64.b64encode(data).decode()
    doc = {
        "asset": {"version": "2.0"},
        "buffers": [{"uri": uri, "byteLength": len(data)}],
        "bufferViews": [{"buffer": 0, "byteOffset": 0, "byteLength": npos},
                        {"buffer": 0, "byteOffset": npos, "byteLength": nuv},
                        {"buffer": 0, "byteOffset": npos + nuv, "byteLength": 6}],
        "accessors": [
            {"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3",
             "min": [0, 0, 0], "max": [1, 1, 0]},
            {"bufferView": 1, "componentType": 5126, "count": 3, "type": "VEC2"},
            {"bufferView": 2, "componentType": 5123, "count": 3, "type": "SCALAR"}],
        "meshes": [], "nodes": [], "scenes": [{"nodes": list(range(primitives))}], "scene": 0,
    }
    prim = {"attributes": {"POSITION": 0, "TEXCOORD_0": 1}, "indices": 2}
    if image_uri is not None:
        prim["material"] = 0
        doc["materials"] = [{"name": "m", "pbrMetallicRoughness": {
            "baseColorFactor": [1, 1, 1, 1], "baseColorTexture": {"index": 0}}}]
        doc["textures"] = [{"source": 0}]
        doc["images"] = [{"uri": image_uri}]
    for i in range(primitives):
        doc["meshes"].append({"primitives": [dict(prim)]})
        doc["nodes"].append({"mesh": i, "translation": [float(i), 0, 0]})
    files = {"tri.gltf": json.dumps(doc).encode()}
    if buffer_uri is not None:
        files["tri.bin"] = data
    if image_uri == "tex.png":
        files["tex.png"] = _png()
    return files


def glb_bytes(doc, binary):
    """A GLB container of a glTF document and its binary chunk."""
    text = json.dumps(doc).encode()
    text += b" " * (-len(text) % 4)
    binary += b"\0" * (-len(binary) % 4)
    body = struct.pack("<I4s", len(text), b"JSON") + text + struct.pack("<I4s", len(binary),
                                                                          b"BIN\0") + binary
    return struct.pack("<4sII", b"glTF", 2, 12 + len(body)) + body


def _triangle_glb():
    files = triangle_gltf(image_uri="tex.png")
    doc = json.loads(files["tri.gltf"])
    png = files["tex.png"]
    data = files["tri.bin"]
    doc["buffers"] = [{"byteLength": len(data) + len(png)}]
    doc["bufferViews"].append({"buffer": 0, "byteOffset": len(data), "byteLength": len(png)})
    doc["images"] = [{"bufferView": 3, "mimeType": "image/png"}]
    return {"tri.glb": glb_bytes(doc, data + png)}


def _obj_seed():
    obj = ("mtllib quad.mtl\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 1 1\n"
           "vt 0 1\nvn 0 0 1\nusemtl m\nf 1/1/1 2/2/1 3/3/1\nf 1/1/1 3/3/1 4/4/1\n")
    mtl = "newmtl m\nKd 0.8 0.2 0.2\nmap_Kd -s 1 1 1 tex.png\n"
    return {"quad.obj": obj.encode(), "quad.mtl": mtl.encode(), "tex.png": _png()}


def _mesh_text_seeds():
    ply = ("ply\nformat ascii 1.0\nelement vertex 4\nproperty float x\nproperty float y\n"
           "property float z\nproperty uchar red\nproperty uchar green\nproperty uchar blue\n"
           "element face 2\nproperty list uchar int vertex_indices\nend_header\n"
           "0 0 0 255 0 0\n1 0 0 0 255 0\n1 1 0 0 0 255\n0 1 0 9 9 9\n3 0 1 2\n3 0 2 3\n")
    off = ("COFF\n4 2 0\n0 0 0 255 0 0 255\n1 0 0 0 255 0 255\n1 1 0 0 0 255 255\n"
           "0 1 1 9 9 9 255\n3 0 1 2\n3 0 2 3\n")
    stl_ascii = ("solid t\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\n"
                 "vertex 0 1 0\nendloop\nendfacet\nendsolid t\n")
    tris = np.array([[[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0, 0, 0], [0, 1, 0], [0, 0, 1]]],
                    np.float32)
    stl_bin = bytearray(80) + struct.pack("<I", len(tris))
    for t in tris:
        stl_bin += np.zeros(3, np.float32).tobytes() + t.tobytes() + b"\0\0"
    return [{"c.ply": ply.encode()}, {"c.off": off.encode()}, {"a.stl": stl_ascii.encode()},
            {"b.stl": bytes(stl_bin)}]


def _binary_ply():
    import trimesh

    tm = trimesh.creation.box()
    tm.visual.vertex_colors = np.tile([200, 10, 10, 255], (len(tm.vertices), 1))
    return {"box.ply": trimesh.exchange.ply.export_ply(tm, encoding="binary")}


def _voxel_seeds():
    from .export.vox import vox_bytes
    from .voxelart import VoxelArt

    rng = np.random.default_rng(0)
    art = VoxelArt(rng.integers(0, 4, (5, 4, 3)).astype(np.uint8),
                   np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8))
    plain, packed = io.BytesIO(), io.BytesIO()
    np.savez(plain, **art.to_npz_dict())
    np.savez_compressed(packed, **art.to_npz_dict())
    return [{"art.vox": vox_bytes(art)}, {"art.npz": plain.getvalue()},
            {"packed.npz": packed.getvalue()}]


def _pixel_art_seed():
    from PIL import Image

    files = {}
    for i, stem in enumerate(("px", "nx", "py", "ny", "pz", "nz")):
        img = np.zeros((PIXEL_ART_CELLS, PIXEL_ART_CELLS, 4), np.uint8)
        img[2:6, 2:6] = (40 * i, 200, 90, 255)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "PNG")
        files[f"art/{stem}.png"] = buf.getvalue()
    return files


def crafted_seeds():
    """Crafted seed sets, each {relative file name: bytes}; the first file is the one loaded."""
    return ([triangle_gltf(image_uri="tex.png"), triangle_gltf(buffer_uri=None, primitives=3),
             _triangle_glb(), _obj_seed(), _binary_ply()] + _mesh_text_seeds()
            + _voxel_seeds() + [_pixel_art_seed()])


def shipped_seeds(folder):
    """Seed sets from the meshes in `folder` (each with the files beside it), small ones only."""
    folder = pathlib.Path(folder)
    sets = []
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() not in MESH_KINDS or path.stat().st_size > SHIPPED_MAX_BYTES:
            continue
        files = {path.name: path.read_bytes()}
        for other in sorted(path.parent.rglob("*")):
            if other.is_file() and other != path and other.stat().st_size <= SHIPPED_MAX_BYTES \
                    and other.suffix.lower() in (".mtl", ".png", ".jpg", ".bin"):
                files[str(other.relative_to(path.parent))] = other.read_bytes()
        sets.append(files)
    return sets


# --- mutations --------------------------------------------------------------------------------
def _mutate_bytes(data, rng):
    data = bytearray(data)
    if not data:
        return bytes(rng.integers(0, 256, 16, dtype=np.uint8))
    op = int(rng.integers(0, 7))
    at = int(rng.integers(0, len(data)))
    if op == 0:  # flip bits
        for _ in range(int(rng.integers(1, 9))):
            i = int(rng.integers(0, len(data)))
            data[i] ^= 1 << int(rng.integers(0, 8))
    elif op == 1:  # an interesting 32-bit integer
        value = INTERESTING_INTS[int(rng.integers(0, len(INTERESTING_INTS)))]
        at = min(at, max(0, len(data) - 4)) & ~3 if rng.random() < 0.7 else at
        data[at:at + 4] = struct.pack("<I", value & 0xFFFFFFFF)
    elif op == 2:  # truncate
        del data[at:]
    elif op == 3:  # delete a span
        del data[at:at + int(rng.integers(1, 64))]
    elif op == 4:  # duplicate a span
        span = data[at:at + int(rng.integers(1, 256))]
        data[at:at] = span * int(rng.integers(1, 8))
    elif op == 5:  # random bytes
        data[at:at] = bytes(rng.integers(0, 256, int(rng.integers(1, 32)), dtype=np.uint8))
    else:  # one byte to an extreme
        data[at] = int(rng.choice([0, 0x7F, 0x80, 0xFF]))
    return bytes(data)


def _mutate_text(data, rng):
    lines = data.decode("latin-1").split("\n")
    i = int(rng.integers(0, len(lines)))
    words = lines[i].split(" ")
    op = int(rng.integers(0, 4))
    if op == 0 and words:
        words[int(rng.integers(0, len(words)))] = str(rng.choice(INTERESTING_TEXT))
        lines[i] = " ".join(words)
    elif op == 1:
        lines.insert(i, lines[i] * int(rng.integers(1, 4)))
    elif op == 2:
        del lines[i]
    else:
        lines[i] = " ".join(words[:1] + [str(rng.choice(INTERESTING_TEXT))] * 3)
    return "\n".join(lines).encode("latin-1")


def _json_paths(node, path=()):
    yield path
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _json_paths(v, path + (k,))
    elif isinstance(node, list):
        for k, v in enumerate(node):
            yield from _json_paths(v, path + (k,))


def _mutate_json(doc, rng):
    paths = list(_json_paths(doc))[1:]
    if not paths:
        return doc
    path = paths[int(rng.integers(0, len(paths)))]
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    value = INTERESTING_JSON[int(rng.integers(0, len(INTERESTING_JSON)))]
    if rng.random() < 0.05:
        value = [value] * 2000 if rng.random() < 0.5 else {"children": [0, 1, 0]}
    parent[path[-1]] = value
    return doc


def _mutate_glb(data, rng):
    length = struct.unpack_from("<I", data, 12)[0]
    doc = json.loads(data[20:20 + length])
    binary = data[20 + length + 8:]
    return glb_bytes(_mutate_json(doc, rng), binary)


def mutate(name, data, rng):
    """Mutated bytes of the file `name`: structure-aware for JSON, glTF and text formats some
    of the time, bytes-level otherwise."""
    kind = pathlib.PurePosixPath(name).suffix.lower()
    structured = rng.random() < 0.5
    try:
        if structured and kind == ".gltf":
            return json.dumps(_mutate_json(json.loads(data), rng)).encode()
        if structured and kind == ".glb":
            return _mutate_glb(data, rng)
        if structured and kind in (".obj", ".mtl", ".ply", ".off", ".stl") and \
                data[:80].isascii() and not data.startswith(b"ply\nformat binary"):
            return _mutate_text(data, rng)
    except (ValueError, struct.error, UnicodeDecodeError, RecursionError):
        pass  # an earlier mutation broke the structure: mutate its bytes instead
    return _mutate_bytes(data, rng)


def make_case(seed_sets, seed, index):
    """(seed set number, {name: bytes}) of case `index`: 1 to 3 mutations of one of its files."""
    rng = np.random.default_rng([seed, index])
    number = int(rng.integers(0, len(seed_sets)))
    files = dict(seed_sets[number])
    names = list(files)
    target = names[0] if rng.random() < 0.7 else names[int(rng.integers(0, len(names)))]
    for _ in range(int(rng.integers(1, 4))):
        files[target] = mutate(target, files[target], rng)
    return number, files


# --- running cases ----------------------------------------------------------------------------
class _CaseTimeout(BaseException):
    """Raised by the alarm inside a case that ran past its time bound."""


def load_any(path):
    """Load `path` (a mesh, .vox, .npz or pixel-art folder) with the loader the tool uses."""
    from .export.vox import read_vox
    from .mesh import load_mesh
    from .pixelart import load_pixel_art_dir
    from .voxelart import VoxelArt

    path = pathlib.Path(path)
    if path.is_dir():
        return load_pixel_art_dir(path, cells=PIXEL_ART_CELLS)
    if path.suffix == ".vox":
        return read_vox(path)
    if path.suffix == ".npz":
        return VoxelArt.load_npz(path)
    return load_mesh(path)


def run_case(files, folder, time_limit):
    """'ok', 'typed' or a failure text for loading the first of `files` written to `folder`."""
    from .errors import VoxifyError

    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    first = next(iter(files))
    target = folder / (first.split("/")[0] if "/" in first else first)
    signal.setitimer(signal.ITIMER_REAL, time_limit)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            load_any(target)
        return "ok"
    except VoxifyError as exc:
        return "typed" if "\n" not in str(exc).strip() else f"multi-line message: {exc!s:.300}"
    except _CaseTimeout:
        return f"over the {time_limit:g} s time bound"
    except MemoryError:
        return "MemoryError: over the memory bound"
    except Exception as exc:  # the finding this harness exists for
        return f"untyped {type(exc).__name__}: {str(exc)[:200]}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


_WORKER = {}


def _init_worker(seed_sets, seed, time_limit, memory_limit):
    def alarm(*_):
        raise _CaseTimeout()

    signal.signal(signal.SIGALRM, alarm)
    if memory_limit:
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    import logging

    logging.getLogger("trimesh").setLevel(logging.CRITICAL)
    _WORKER.update(seed_sets=seed_sets, seed=seed, time_limit=time_limit)


def _worker_case(index):
    number, files = make_case(_WORKER["seed_sets"], _WORKER["seed"], index)
    folder = pathlib.Path(tempfile.mkdtemp(prefix="voxify-fuzz-"))
    try:
        start = time.perf_counter()
        outcome = run_case(files, folder, _WORKER["time_limit"])
        return index, number, outcome, time.perf_counter() - start
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def fuzz(cases, seed=0, seed_folder=None, workers=2, time_limit=20.0, memory_limit=3 << 30,
         first=0):
    """Run cases first .. first + cases - 1; returns a summary dict (failures listed)."""
    seed_sets = crafted_seeds() + (shipped_seeds(seed_folder) if seed_folder else [])
    start = time.perf_counter()
    counts, failures, slowest = {"ok": 0, "typed": 0}, [], 0.0
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers, _init_worker, (seed_sets, seed, time_limit, memory_limit),
                  maxtasksperchild=100) as pool:
        for index, number, outcome, seconds in pool.imap_unordered(
                _worker_case, range(first, first + cases), chunksize=4):
            slowest = max(slowest, seconds)
            if outcome in counts:
                counts[outcome] += 1
            else:
                failures.append({"case": index, "seed_set": next(iter(seed_sets[number])),
                                 "outcome": outcome})
    return {"cases": cases, "seed": seed, "seed_sets": len(seed_sets), **counts,
            "failed": len(failures), "failures": sorted(failures, key=lambda f: f["case"]),
            "slowest_case_s": round(slowest, 3), "seconds": round(time.perf_counter() - start, 1),
            "time_limit_s": time_limit, "memory_limit_gb": memory_limit / 2**30}


def main(argv=None):
    p = argparse.ArgumentParser(description="Fuzz the mesh, .vox, .npz and pixel-art loaders.")
    p.add_argument("--cases", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--first", type=int, default=0, help="number of the first case")
    p.add_argument("--case", type=int, help="replay one case and keep its files in --keep")
    p.add_argument("--keep", default="fuzz_case", help="folder for --case's files")
    p.add_argument("--seeds", default=None, help="folder of meshes to mutate as well")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--time-limit", type=float, default=20.0, help="seconds per case")
    p.add_argument("--memory-limit-gb", type=float, default=3.0, help="address space per worker")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.case is not None:
        seed_sets = crafted_seeds() + (shipped_seeds(args.seeds) if args.seeds else [])
        _, files = make_case(seed_sets, args.seed, args.case)
        keep = pathlib.Path(args.keep)
        keep.mkdir(parents=True, exist_ok=True)
        _init_worker(seed_sets, args.seed, args.time_limit, 0)
        print(f"case {args.case}: {run_case(files, keep, args.time_limit)} (files in {keep})")
        return 0
    summary = fuzz(args.cases, args.seed, args.seeds, args.workers, args.time_limit,
                   int(args.memory_limit_gb * 2**30), args.first)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{summary['cases']} cases (seed {args.seed}, {summary['seed_sets']} seed sets): "
              f"{summary['ok']} loaded, {summary['typed']} typed errors, {summary['failed']} "
              f"failed; slowest case {summary['slowest_case_s']} s; {summary['seconds']} s total")
        for f in summary["failures"][:50]:
            print(f"  case {f['case']} ({f['seed_set']}): {f['outcome']}")
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
