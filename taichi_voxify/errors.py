"""Typed errors. Every error a user can cause is one of these, with a one-line message."""


# What the command lines say for a MemoryError: the input may be the cause as well as --res
OUT_OF_MEMORY = "out of memory (the input or the settings need more than this machine has)"


class VoxifyError(Exception):
    """Base class: the command line prints its message on one line and exits non-zero."""

    exit_code = 1


class OptionError(VoxifyError, ValueError):
    """An impossible or malformed option (exit code 2, like a bad command-line argument)."""

    exit_code = 2


class MeshError(VoxifyError):
    """A mesh file that is missing, unreadable, empty or otherwise unusable."""


class BackendError(VoxifyError):
    """The requested Taichi backend is not available on this machine."""


class ResourceError(VoxifyError):
    """The job would need more memory than allowed; the message gives the estimate."""


class InputError(VoxifyError):
    """Bad data handed to a stage: NaN in renders, zero views, wrong image sizes."""
