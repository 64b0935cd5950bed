"""Any picture to pixel art (voxify-pixelart): `python examples/pixelart.py IMAGE [options]`.

`--help` lists the options. Needs taichi_voxify installed (pip install -e . from the repository).
"""
import sys

from taichi_voxify.commands.pixelart import main

if __name__ == "__main__":
    sys.exit(main())
