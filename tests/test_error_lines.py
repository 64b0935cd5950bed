"""Errors a user can cause end in one line and the README's exit code, never a traceback."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_out_of_memory_does_not_blame_the_resolution(monkeypatch, capsys):
    """It advised lowering --res even when a huge input, not --res, was the cause."""
    from taichi_voxify import cli

    def run(argv):
        raise MemoryError()

    monkeypatch.setattr(cli, "run", run)
    assert cli.main(["--res", "8"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: out of memory") and "--res" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("name, data, needle", [
    ("tiles.npz", b"PK\x03\x04 broken zip", "not a readable"),
    ("art.vox", b"VOX \x96\x00\x00\x00MAIN", "not a valid .vox"),
])
def test_viewer_refuses_broken_files_in_one_line(tmp_path, name, data, needle):
    (tmp_path / name).write_bytes(data)
    proc = subprocess.run([sys.executable, "examples/view.py", str(tmp_path / name),
                           "--headless", "--screenshot", str(tmp_path / "s.png")],
                          capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 1 and needle in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "s.png").exists()


def test_viewer_memory_error_is_one_line(tmp_path, monkeypatch, capsys):
    from taichi_voxify.commands import view

    def load_art(path):
        raise MemoryError()

    monkeypatch.setattr(view, "load_art", load_art)
    assert view.main([str(tmp_path / "x.vox"), "--headless", "--screenshot", "s.png"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: out of memory") and len(err.strip().splitlines()) == 1
