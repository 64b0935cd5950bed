"""A whole conversion opens no file outside the input folder, the output folder, the package and
the kernel cache, even when its mesh names files elsewhere (Python's audit hook, event 'open').

Audit hooks cannot be removed, so the conversion runs in its own process. Besides the four
places, the Python installation (library code), the temporary folder (set to one of our own),
/dev/null and the process's own /proc and cgroup entries (CPU counts) are allowed.
"""
import json
import os
import subprocess
import sys

from taichi_voxify.outputs import planned_names

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROBE = """
import json, os, sys
opened = []
def hook(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        opened.append(os.fsdecode(args[0]))
sys.addaudithook(hook)
from taichi_voxify.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "opened": opened}))
"""

CUBE = """mtllib cube.mtl
v -1 -1 -1\nv 1 -1 -1\nv 1 1 -1\nv -1 1 -1\nv -1 -1 1\nv 1 -1 1\nv 1 1 1\nv -1 1 1
vt 0 0\nvt 1 0\nvt 1 1\nvt 0 1
usemtl near
f 5/1 6/2 7/3\nf 5/1 7/3 8/4\nf 1/1 3/3 2/2\nf 1/1 4/4 3/3
usemtl far
f 1/1 2/2 6/3\nf 1/1 6/3 5/4\nf 4/1 8/4 7/3\nf 4/1 7/3 3/2\nf 1/1 5/2 8/3\nf 1/1 8/3 4/4
f 2/1 3/4 7/3\nf 2/1 7/3 6/2
"""


def test_conversion_opens_nothing_outside_its_folders(tmp_path):
    from taichi_voxify.backend import default_cache_dir

    secret, mesh_dir, out, temp = (tmp_path / n for n in ("secret", "in", "out", "tmp"))
    cache = os.environ.get("VOXIFY_CACHE_DIR") or default_cache_dir()  # the shared, warm one
    for d in (secret, mesh_dir, temp):
        d.mkdir()
    (secret / "tex.png").write_bytes(b"\x89PNG\r\n\x1a\n not read")
    (mesh_dir / "cube.obj").write_text(CUBE)
    (mesh_dir / "cube.mtl").write_text(f"newmtl near\nKd 1 0 0\nmap_Kd ../secret/tex.png\n"
                                       f"newmtl far\nKd 0 0 1\nmap_Kd {secret / 'tex.png'}\n")
    env = dict(os.environ, TMPDIR=str(temp))
    formats = "vox,npz,obj,png"
    proc = subprocess.run([sys.executable, "-c", PROBE, str(mesh_dir / "cube.obj"), "--out",
                           str(out), "--res", "8", "--preset", "test", "--clip", "off",
                           "--quiet", "--formats", formats],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["code"] == 0, proc.stderr
    assert "not followed" in proc.stderr  # both maps were refused with a warning

    allowed = [str(p) for p in (mesh_dir, out, temp, cache)] + [
        os.path.join(ROOT, "taichi_voxify"), os.path.join(ROOT, "kernels"),
        os.path.join(ROOT, "taichi_voxify.egg-info"),  # an editable install's own metadata
        os.path.expanduser("~/.cache/taichi"),  # Taichi's own version stamp beside our cache
        sys.prefix, sys.base_prefix, sys.exec_prefix, "/dev/null", "/proc/self", "/sys/fs/cgroup"]
    # one-component relative names are opened beside a folder descriptor (shutil.rmtree clearing
    # the staging folder), so they stay inside the folder being cleared; longer relative names
    # are relative to the working directory (ROOT) and are checked like absolute ones
    beside_fd = {p for p in result["opened"] if not os.path.isabs(p) and "/" not in p}
    assert not beside_fd & {"..", "."}, beside_fd
    absolute = {os.path.normpath(os.path.join(ROOT, p))
                for p in set(result["opened"]) - beside_fd}
    outside = sorted({p for p in absolute
                      if not any(p == a or p.startswith(a.rstrip("/") + "/") for a in allowed)})
    assert outside == []
    assert not any(p.startswith(str(secret)) for p in result["opened"])
    assert any(p == str(mesh_dir / "cube.obj") for p in result["opened"])  # the hook saw opens

    written = {n for n in os.listdir(out) if not n.startswith(".")}
    assert written <= set(planned_names("cube", formats.split(",")))  # checked before work
    assert {"cube.vox", "cube.npz", "cube.obj", "cube_report.json"} <= written
    assert sorted(os.listdir(out)) == sorted(written | {".cube.voxify"})  # no staging litter
