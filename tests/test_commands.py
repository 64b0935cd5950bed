"""The console commands: every setup.cfg entry point resolves, ends a bad argument in one line
with exit 2, and the examples are thin scripts over them."""
import configparser
import importlib
import os
import subprocess
import sys

import pytest

from conftest import ROOT


def entry_points():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = cfg["options.entry_points"]["console_scripts"].strip().splitlines()
    return dict(tuple(part.strip() for part in line.split("=")) for line in lines)


def test_the_five_commands_are_declared():
    assert set(entry_points()) == {"voxify", "voxify-view", "voxify-pixelart", "voxify-eval",
                                   "voxify-bench"}


@pytest.mark.parametrize("name, target", sorted(entry_points().items()))
def test_each_command_ends_a_bad_flag_in_one_line(name, target, capsys):
    module, function = target.split(":")
    main = getattr(importlib.import_module(module), function)
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith(f"usage: {name}")
    assert main(["--no-such-flag"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err


def test_internal_failures_share_one_tail(capsys):
    from taichi_voxify.commands import run_command

    def broken(argv):
        raise KeyError("a bug")

    assert run_command(broken, []) == 1
    err = capsys.readouterr().err
    assert err.strip() == ("error: internal error (KeyError: 'a bug'); run with --debug for "
                           "the traceback")
    with pytest.raises(KeyError):
        run_command(broken, ["--debug"])


@pytest.mark.parametrize("script", ["convert", "batch", "view", "pixelart", "evaluate",
                                    "benchmark"])
def test_examples_are_thin_scripts_over_the_commands(script):
    path = ROOT / "examples" / f"{script}.py"
    assert "sys.path" not in path.read_text()
    proc = subprocess.run([sys.executable, str(path), "--help"], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0 and proc.stdout.startswith("usage: voxify"), proc.stderr
