"""The console commands (setup.cfg entry points) and what they share: a parser whose errors are
one line, and `run_command`, the one error tail every command ends in.

    voxify           taichi_voxify.cli          mesh in, voxel art files out
    voxify batch     commands/batch.py          many meshes, one folder each (local or Ray)
    voxify-view      commands/view.py           GGUI viewer, or a headless screenshot
    voxify-pixelart  commands/pixelart.py       any picture to pixel art
    voxify-eval      commands/evaluate.py       baselines and ablations, tables and galleries
    voxify-bench     taichi_voxify.benchmarks   speed and memory of every stage

Exit codes: 0 success, 2 bad arguments or options, 1 any other failure, 130 interrupted.
"""
import argparse
import sys
import warnings

from ..errors import OUT_OF_MEMORY, OptionError, VoxifyError


class CommandParser(argparse.ArgumentParser):
    """argparse whose errors are an OptionError (one line, exit 2) instead of usage + message."""

    def error(self, message):
        raise OptionError(message)


def one_line_warnings():
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"warning: {str(message).splitlines()[0]}", file=sys.stderr)

    warnings.showwarning = show


def _first_line(exc):
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def run_command(body, argv=None):
    """Run `body(argv)` (returns an exit code or None for 0) and end every failure in one line
    on stderr with the command's exit code; `--debug` in argv shows the traceback instead."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    one_line_warnings()
    try:
        return body(argv) or 0
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except VoxifyError as exc:
        if debug:
            raise
        print(f"error: {_first_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except MemoryError:
        if debug:
            raise
        print(f"error: {OUT_OF_MEMORY}", file=sys.stderr)
        return 1
    except Exception as exc:  # an internal failure still gets one line without --debug
        if debug:
            raise
        print(f"error: internal error ({type(exc).__name__}: {_first_line(exc)}); run with "
              "--debug for the traceback", file=sys.stderr)
        return 1
