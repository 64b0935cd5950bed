"""Batch throughput on this machine: `python examples/batch_benchmark.py [--assets 20] [--res 16]`
(see taichi_voxify/batch/scaling.py). Needs taichi_voxify installed and Ray for the Ray row.
"""
import sys

from taichi_voxify.batch.scaling import main

if __name__ == "__main__":
    sys.exit(main())
