"""Outputs never replace inputs or files voxify did not write; the set lands whole or not at all."""
import errno
import os
import shutil
import subprocess
import sys

import pytest

from taichi_voxify.errors import OptionError, VoxifyError
from taichi_voxify.export.atomic import atomic_dir
from taichi_voxify.output_set import OutputBusy, OutputSet, lock_name, staging_prefix
from taichi_voxify.outputs import planned_names

from conftest import mesh_path

CONVERT = [sys.executable, "-m", "taichi_voxify.cli"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICK = ["--res", "8", "--preset", "test", "--clip", "off", "--quiet"]


def _cli(args):
    proc = subprocess.run(CONVERT + args, capture_output=True, text=True, cwd=ROOT, timeout=600)
    return proc.returncode, proc.stderr


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_output_folder_that_holds_the_input_is_refused_before_work(tmp_path):
    """`voxify cube.glb --out .` replaced cube.glb with the voxel mesh, silently."""
    shutil.copy(mesh_path("BoxVertexColors.glb"), tmp_path / "cube.glb")
    before = _snapshot(tmp_path)
    code, err = _cli([str(tmp_path / "cube.glb"), "--out", str(tmp_path), "--formats", "glb"]
                     + QUICK)
    assert code == 2 and "would replace the input" in err and "cube.glb" in err, err
    assert len(err.strip().splitlines()) == 1
    assert _snapshot(tmp_path) == before and sorted(os.listdir(tmp_path)) == ["cube.glb"]


def test_files_the_mesh_names_are_inputs_too(tmp_path):
    """--formats obj overwrote cube.obj and cube.mtl; a texture named like an output counts."""
    (tmp_path / "cube.mtl").write_text("newmtl m\nKd 1 0 0\nmap_Kd cube_palette.png\n")
    (tmp_path / "cube_palette.png").write_bytes(b"\x89PNG not really")
    (tmp_path / "cube.obj").write_text("mtllib cube.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    stem, mesh = "cube", tmp_path / "cube.obj"
    from taichi_voxify.mesh import referenced_files

    inputs = referenced_files(mesh)
    assert {p.name for p in inputs} == {"cube.obj", "cube.mtl", "cube_palette.png"}
    for formats, clash in [(("obj",), "cube.obj"), (("png",), "cube_palette.png")]:
        out = OutputSet(tmp_path, stem, planned_names(stem, formats), inputs, force=True)
        with pytest.raises(OptionError, match=f"output {clash} .* would replace the input"):
            out.check()


def test_files_voxify_did_not_write_need_force(tmp_path):
    (tmp_path / "cube.vox").write_bytes(b"the user's own model")
    out = OutputSet(tmp_path, "cube", planned_names("cube", ("vox",)))
    with pytest.raises(OptionError, match="voxify did not write it: use --force"):
        out.check()
    OutputSet(tmp_path, "cube", planned_names("cube", ("vox",)), force=True).check()
    with OutputSet(tmp_path, "cube", ["cube.vox"], force=True) as forced:
        (open(os.path.join(forced.staging, "cube.vox"), "wb")).close()
        forced.commit()
    OutputSet(tmp_path, "cube", planned_names("cube", ("vox",))).check()  # now it is ours


def test_cli_refuses_a_user_file_without_force_before_work(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "BoxVertexColors.npz").write_bytes(b"mine")
    code, err = _cli([str(mesh_path("BoxVertexColors.glb")), "--out", str(out), "--formats",
                      "npz"] + QUICK)
    assert code == 2 and "--force" in err, err
    assert (out / "BoxVertexColors.npz").read_bytes() == b"mine"


def test_a_second_run_on_the_same_stem_is_refused_while_the_first_holds_the_lock(tmp_path):
    first = OutputSet(tmp_path, "cube", ["cube.vox"]).open()
    try:
        with pytest.raises(OutputBusy, match="another voxify run is writing cube"):
            OutputSet(tmp_path, "cube", ["cube.vox"]).open()
        OutputSet(tmp_path, "other", ["other.vox"]).open().close()  # other stems go on
    finally:
        first.close()
    OutputSet(tmp_path, "cube", ["cube.vox"]).open().close()


def test_dead_runs_staging_folders_are_removed_by_the_next_lock_holder(tmp_path):
    dead = tmp_path / (staging_prefix("cube") + "999-abcd")
    dead.mkdir()
    (dead / ".cube.XXXX.part.vox").write_bytes(b"half")
    unrelated = tmp_path / (staging_prefix("cow") + "1-ffff")
    unrelated.mkdir()
    with OutputSet(tmp_path, "cube", ["cube.vox"]):
        assert not dead.exists() and unrelated.exists()


def _staged(out, names):
    for name in names:
        with open(os.path.join(out.staging, name), "w") as f:
            f.write("new " + name)


def test_commit_replaces_the_old_set_or_puts_it_back(tmp_path, monkeypatch):
    names = ["cube.vox", "cube.npz", "cube_report.json"]
    with OutputSet(tmp_path, "cube", names) as out:
        _staged(out, names)
        out.commit()
    old = _snapshot(tmp_path)
    real_rename, calls = os.rename, []

    def failing_rename(src, dst):
        calls.append(src)
        if len(calls) == 4:  # after cube.npz went aside and in, cube.vox goes aside, then fails
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_rename(src, dst)

    with OutputSet(tmp_path, "cube", names) as out:
        _staged(out, names)
        monkeypatch.setattr(os, "rename", failing_rename)
        with pytest.raises(VoxifyError, match="the folder is as it was"):
            out.commit()
        monkeypatch.setattr(os, "rename", real_rename)
    assert _snapshot(tmp_path) == old
    assert sorted(os.listdir(tmp_path)) == sorted(names + [lock_name("cube")])


def test_failed_writes_leave_the_old_set_and_no_litter(tmp_path):
    with OutputSet(tmp_path, "cube", ["cube.vox"]) as out:
        _staged(out, ["cube.vox"])
        out.commit()
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(OSError):
        with OutputSet(tmp_path, "cube", ["cube.vox"]) as out:
            _staged(out, ["cube.vox"])
            raise OSError(errno.ENOSPC, "No space left on device")  # the disk filled up
    assert sorted(os.listdir(tmp_path)) == before
    assert (tmp_path / "cube.vox").read_text() == "new cube.vox"


def test_overlong_names_are_refused_before_work(tmp_path):
    stem = "m" * 230  # the mesh's own name fits; the staging folder's would not
    mesh = tmp_path / (stem + ".stl")
    mesh.write_bytes(b"solid t\nendsolid t\n")
    code, err = _cli([str(mesh), "--out", str(tmp_path / "out")] + QUICK)
    assert code == 2 and "longer than the 255 bytes" in err, err
    assert not (tmp_path / "out").exists()


def test_atomic_dir_refuses_a_link_or_file_in_the_way_and_restores_on_failure(tmp_path,
                                                                              monkeypatch):
    target = tmp_path / "cube_lego"
    (tmp_path / "elsewhere").mkdir()
    target.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(VoxifyError, match="in the way"):
        with atomic_dir(target):
            pass
    assert target.is_symlink() and not list(tmp_path.glob(".*part*"))
    target.unlink()
    target.mkdir()
    (target / "old.txt").write_text("old")
    real_replace = os.replace

    def second_fails(src, dst):
        if str(dst) == str(target) and str(src).endswith(".part"):
            raise OSError(errno.EIO, "I/O error")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", second_fails)
    with pytest.raises(VoxifyError):
        with atomic_dir(target) as tmp:
            open(os.path.join(tmp, "new.txt"), "w").close()
    assert sorted(os.listdir(target)) == ["old.txt"]  # the old folder came back
    assert not list(tmp_path.glob(".*part*"))


def test_remove_dead_dirs_takes_only_the_temporaries_of_that_folder(tmp_path):
    """A process killed inside atomic_dir leaves its .NAME.XXXXXXXX.part folder; a later try
    of NAME removes it, and nothing of another name (box.v2 beside box) or the folder itself."""
    import tempfile

    from taichi_voxify.export.atomic import remove_dead_dirs

    dead = tempfile.mkdtemp(prefix=".box.", suffix=".part", dir=tmp_path)
    other = tempfile.mkdtemp(prefix=".box.v2.", suffix=".part", dir=tmp_path)
    (tmp_path / "box").mkdir()
    remove_dead_dirs(tmp_path / "box")
    assert not os.path.exists(dead)
    assert sorted(os.listdir(tmp_path)) == sorted([os.path.basename(other), "box"])


def test_a_palette_file_given_as_input_is_never_an_output(tmp_path):
    """STEM_palette.gpl is written on every run; read back as --palette it is an input."""
    shutil.copy(mesh_path("BoxVertexColors.glb"), tmp_path / "cube.glb")
    (tmp_path / "cube_palette.gpl").write_text("GIMP Palette\n255 0 0 red\n0 0 255 blue\n")
    before = _snapshot(tmp_path)
    code, err = _cli([str(tmp_path / "cube.glb"), "--out", str(tmp_path), "--palette",
                      str(tmp_path / "cube_palette.gpl"), "--formats", "vox", "--force"] + QUICK)
    assert code == 2 and "would replace the input" in err and "cube_palette.gpl" in err, err
    assert _snapshot(tmp_path) == before


def test_forced_replacement_of_a_symlink_leaves_its_target_alone(tmp_path):
    """A symlink or user folder at STEM_lego ended up hidden in .part.old."""
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "keep.txt").write_text("user data")
    out = tmp_path / "out"
    out.mkdir()
    (out / "cube_lego").symlink_to(target)
    with pytest.raises(OptionError, match="--force"):
        OutputSet(out, "cube", ["cube_lego"]).check()
    with OutputSet(out, "cube", ["cube_lego"], force=True) as forced:
        forced.check()
        os.mkdir(os.path.join(forced.staging, "cube_lego"))
        forced.commit()
    assert (out / "cube_lego").is_dir() and not (out / "cube_lego").is_symlink()
    assert (target / "keep.txt").read_text() == "user data"
    assert sorted(os.listdir(out)) == [".cube.voxify", "cube_lego"]
