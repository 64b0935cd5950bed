"""Write files whole or not at all: write a temporary file in the target's folder, then rename.

A reader never sees a half-written file, and a failure leaves any older file untouched.
"""
import contextlib
import os
import re
import shutil
import tempfile

from ..errors import VoxifyError


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path in the same folder as `path`; rename it to `path` on success.

    The temporary name keeps the extension, so libraries that pick a format from it still work.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    stem, ext = os.path.splitext(os.path.basename(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=f".part{ext}", dir=folder)
    except OSError as exc:
        raise VoxifyError(f"cannot write {path}: {exc.strerror or exc}") from None
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except OSError as exc:
        _remove_quietly(tmp)
        raise VoxifyError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        _remove_quietly(tmp)
        raise


def write_bytes(path, data):
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())  # on disk before the rename makes it visible


def write_text(path, text):
    write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_dir(path):
    """Yield a temporary folder beside `path`; on success it replaces the folder `path` (and
    its old content) by renames, so a folder of outputs is also complete or absent: if the
    second rename fails the old folder is put back. A file or symlink at `path` is refused,
    never moved aside."""
    path = os.path.abspath(os.fspath(path))
    if os.path.islink(path) or (os.path.lexists(path) and not os.path.isdir(path)):
        raise VoxifyError(f"cannot write the folder {path}: a file or link of that name is in "
                          "the way")
    parent = os.path.dirname(path)
    try:
        tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.", suffix=".part", dir=parent)
    except OSError as exc:
        raise VoxifyError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
        old = None
        if os.path.exists(path):
            old = tmp + ".old"
            os.replace(path, old)
        try:
            os.replace(tmp, path)
        except OSError:
            if old:
                os.replace(old, path)  # put the old folder back
            raise
        if old:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise VoxifyError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_dead_dirs(path):
    """Remove the temporary folders atomic_dir(path) left beside `path` when its process died
    while writing (killed: no cleanup ran). Only for a caller that knows no live process is
    writing `path` now."""
    parent, name = os.path.split(os.path.abspath(os.fspath(path)))
    dead = re.compile(r"\.%s\.[a-z0-9_]{8}\.part" % re.escape(name))  # mkdtemp's names
    for entry in os.listdir(parent):
        if dead.fullmatch(entry):
            shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove_quietly(path):
    with contextlib.suppress(OSError):
        os.remove(path)
