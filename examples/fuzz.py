"""Fuzz the loaders (meshes, .vox, .npz, pixel art) with mutated shipped and crafted files.

    python examples/fuzz.py --cases 5000            # thousands of cases, two workers
    python examples/fuzz.py --case 1234 --keep c/   # replay one case, its files kept in c/

Every case must end in success or a typed one-line error within the time and memory bounds;
the exit status is 1 when any case did not. See taichi_voxify/fuzz.py.
"""
import os
import sys

from taichi_voxify.fuzz import main

SHIPPED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "data")

if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--seeds" not in argv and os.path.isdir(SHIPPED):
        argv += ["--seeds", SHIPPED]
    sys.exit(main(argv))
