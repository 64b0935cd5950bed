"""Baselines and ablations (voxify-eval): `python examples/evaluate.py --meshes DIR [options]`.

`--help` lists the options. Needs taichi_voxify installed (pip install -e . from the repository).
"""
import sys

from taichi_voxify.commands.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
