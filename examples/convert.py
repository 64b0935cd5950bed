"""Convert a mesh into voxel art (voxify): `python examples/convert.py [MESH] [options]`.

With no MESH it converts the bundled Spot cow into ./voxify_out/. `--help` lists the options.
Needs taichi_voxify installed (pip install -e . from the repository).
"""
import sys

from taichi_voxify.cli import main

if __name__ == "__main__":
    sys.exit(main())
