"""Taichi kernels and functions only: no torch, no file I/O. Kernels take ti.types.ndarray
arguments (numpy arrays on CPU, ti.ndarray anywhere), so one compiled variant serves every
grid size and each float precision."""
