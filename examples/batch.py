"""Convert many meshes with the same settings: `python examples/batch.py INPUT... --out DIR`.

The same as `voxify batch`; `--help` lists the options.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from taichi_voxify.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["batch"] + sys.argv[1:]))
