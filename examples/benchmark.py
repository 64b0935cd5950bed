"""Speed and memory of every stage (voxify-bench): `python examples/benchmark.py [--large]`.

`--help` lists the options. Needs taichi_voxify installed (pip install -e . from the repository).
"""
import sys

from taichi_voxify.benchmarks import main

if __name__ == "__main__":
    sys.exit(main())
