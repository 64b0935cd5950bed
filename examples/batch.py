"""Convert many meshes with the same settings (voxify batch):
`python examples/batch.py INPUT... --out DIR`; `--help` lists the options.
Needs taichi_voxify installed (pip install -e . from the repository).
"""
import sys

from taichi_voxify.commands.batch import main

if __name__ == "__main__":
    sys.exit(main())
