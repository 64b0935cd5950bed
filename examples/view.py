"""Look at voxel art (voxify-view): `python examples/view.py FILE.vox|FILE.npz`
(`--headless --screenshot PNG` renders without a window).

`--help` lists the options. Needs taichi_voxify installed (pip install -e . from the repository).
"""
import sys

from taichi_voxify.commands.view import main

if __name__ == "__main__":
    sys.exit(main())
