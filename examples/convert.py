"""Convert a mesh into voxel art: `python examples/convert.py [MESH] [options]`.

With no MESH it converts the bundled Spot cow into ./voxify_out/. `--help` lists the options.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from taichi_voxify.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
