"""Batch conversion: many meshes in, one folder per asset out, with a manifest to resume from,
an optional palette shared by the whole set and a contact sheet (index.html). Runs on local
worker processes or on Ray (`voxify batch --help`)."""
from .driver import make_pool, run_batch  # noqa: F401
