"""A few hundred fuzz cases over every loader; `python examples/fuzz.py --cases 5000` runs more."""
import json
import os
import subprocess
import sys

from conftest import mesh_path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_mutated_inputs_end_in_success_or_a_typed_error():
    seeds = os.path.dirname(mesh_path("Fox.glb"))
    proc = subprocess.run([sys.executable, "-m", "taichi_voxify.fuzz", "--cases", "300",
                           "--seeds", seeds, "--json", "--time-limit", "30"],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    summary = json.loads(proc.stdout)
    assert summary["failures"] == [], summary["failures"][:5]
    assert summary["ok"] + summary["typed"] == 300
    assert summary["ok"] > 20 and summary["typed"] > 100  # the mutations reach both outcomes
    assert summary["seed_sets"] >= 18  # every crafted kind and the shipped meshes
    assert proc.returncode == 0


# Structure-aware: Hypothesis builds glTF documents whose parts are any JSON values, the
# shapes the byte mutator rarely reaches (a list where an object belongs, a string index).
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

_JSON = st.recursive(st.none() | st.booleans() | st.integers(-3, 2**33) | st.floats()
                     | st.text(max_size=8) | st.sampled_from(["../x.bin", "/dev/zero", "tri.bin"]),
                     lambda kids: st.lists(kids, max_size=3)
                     | st.dictionaries(st.text(max_size=6), kids, max_size=3), max_leaves=8)
_GLTF_KEYS = ("buffers", "bufferViews", "accessors", "meshes", "nodes", "scenes", "materials",
              "textures", "images", "samplers", "scene")


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.sampled_from(_GLTF_KEYS), st.integers(0, 3),
                                st.sampled_from(["uri", "children", "mesh", "primitives",
                                                 "attributes", "bufferView", "count", "index",
                                                 "byteLength", "type", None]), _JSON),
                      min_size=1, max_size=4))
def test_gltf_with_any_json_in_its_parts_gives_a_mesh_or_a_typed_error(tmp_path, edits):
    import warnings

    from taichi_voxify.errors import VoxifyError
    from taichi_voxify.fuzz import triangle_gltf
    from taichi_voxify.mesh import load_mesh

    files = triangle_gltf(image_uri="tex.png")
    doc = json.loads(files["tri.gltf"])
    for key, index, field, value in edits:
        part = doc.get(key)
        if field is None or not isinstance(part, list) or not part:
            doc[key] = value
        elif isinstance(part[index % len(part)], dict):
            part[index % len(part)][field] = value
    files["tri.gltf"] = json.dumps(doc).encode()
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            load_mesh(tmp_path / "tri.gltf")
    except VoxifyError as exc:
        assert "\n" not in str(exc).strip()
