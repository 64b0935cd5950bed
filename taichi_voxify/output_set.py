"""One conversion's output files, moved into --out all together or not at all.

Before any work (`OutputSet.check`): the names fit the file system, no output would replace an
input (the mesh, a file it names, the pixel art; exit 2) and none would replace a file voxify did
not write unless `force`. Then (`open`) a lock on STEM in the output folder, taken with flock
on the hidden file `.STEM.voxify`, keeps a second run on the same STEM out until this one ends;
whoever holds it knows any `.STEM.voxify-staging-*` folder there was left by a dead run and
removes it. Files are written into this run's own staging folder inside --out (same file
system, so renames are atomic), synced to disk, and `commit` renames them into place: old files
of the same names are moved aside first and put back if any rename fails. The lock file also
lists every name voxify has written for STEM there: the files a later run may replace.
"""
import contextlib
import errno
import fcntl
import json
import os
import secrets
import shutil

from .errors import OptionError, VoxifyError

STAGING_MARK = ".voxify-staging-"
TEMP_NAME_EXTRA = len(".") + len(".XXXXXXXX.part")  # atomic_path's temporary beside a name


class OutputBusy(VoxifyError):
    """Another run is writing the same STEM into the same folder."""


def lock_name(stem):
    return f".{stem}.voxify"


def staging_prefix(stem):
    return f".{stem}{STAGING_MARK}"


class OutputSet:
    """The outputs of one run: `check()` before work, `open()`, write into `staging`,
    `commit(names)`, `close()` (also on failure: the staging folder goes, the old files stay)."""

    def __init__(self, out_dir, stem, planned, inputs=(), force=False):
        self.out_dir = os.path.abspath(os.fspath(out_dir))
        self.stem = stem
        self.planned = list(planned)  # names this run expects to write (files or folders)
        self.inputs = [os.path.realpath(p) for p in inputs]
        self.force = bool(force)
        self.staging = None
        self._lock_fd = None

    # --- before any work ---------------------------------------------------------------------
    def check(self):
        """Refuse, before any work, names too long here, outputs that are inputs, and files
        voxify did not write (unless force)."""
        self._check_name_lengths()
        for name in self.planned:
            self._check_not_input(name)
        self._check_owned(self.planned, self._written_before())

    def _check_name_lengths(self):
        probe = self.out_dir
        while not os.path.isdir(probe) and os.path.dirname(probe) != probe:
            probe = os.path.dirname(probe)
        try:
            name_max = os.pathconf(probe, "PC_NAME_MAX")
            path_max = os.pathconf(probe, "PC_PATH_MAX")
        except (OSError, ValueError):
            name_max, path_max = 255, 4096
        staging = staging_prefix(self.stem) + "0" * 24
        longest = max([staging, lock_name(self.stem)] + self.planned, key=_name_bytes)
        longest_temp = max(self.planned, key=_name_bytes)
        too_long = _name_bytes(longest_temp) + TEMP_NAME_EXTRA > name_max
        if _name_bytes(longest) > name_max or too_long:
            raise OptionError(f"the mesh's name ({_name_bytes(self.stem)} bytes) makes output "
                              f"names longer than the {name_max} bytes a file name may have in "
                              f"{probe}: rename the mesh")
        deepest = os.path.join(self.out_dir, staging, longest_temp) + "x" * TEMP_NAME_EXTRA
        if _name_bytes(deepest) > path_max:
            raise OptionError(f"output paths in {self.out_dir} would be longer than the "
                              f"{path_max} bytes a path may have: choose a shorter --out")

    def _check_not_input(self, name):
        target = os.path.realpath(os.path.join(self.out_dir, name))
        for source in self.inputs:
            if source == target or source.startswith(target + os.sep):
                raise OptionError(f"output {name} in {self.out_dir} would replace the input "
                                  f"{source}: choose another --out")

    def _written_before(self):
        """Names voxify wrote for STEM in --out before: the lock file's list, or for folders
        written before it existed, the files the STEM_report.json lists."""
        for reader in (self._manifest_names, self._report_names):
            names = reader()
            if names is not None:
                return names
        return set()

    def _manifest_names(self):
        try:
            with open(os.path.join(self.out_dir, lock_name(self.stem)), encoding="utf-8") as f:
                names = json.loads(f.read() or "null")
        except (OSError, ValueError, RecursionError):
            return None
        return {n for n in names if isinstance(n, str)} if isinstance(names, list) else None

    def _report_names(self):
        try:
            report_path = os.path.join(self.out_dir, f"{self.stem}_report.json")
            with open(report_path, encoding="utf-8") as f:
                report = json.load(f)
            files = report["files"]
            assert "taichi_voxify" in report["versions"]
            names = {n.rstrip("/") for group in files.values() for n in group}
        except (OSError, ValueError, KeyError, TypeError, AttributeError, AssertionError,
                RecursionError):
            return None
        return names | {f"{self.stem}_report.json"}

    def _check_owned(self, names, owned):
        if self.force:
            return
        for name in names:
            path = os.path.join(self.out_dir, name)
            if os.path.lexists(path) and name not in owned:
                raise OptionError(f"{path} exists and voxify did not write it: use --force to "
                                  "replace it, or choose another --out")

    # --- the run -----------------------------------------------------------------------------
    def open(self):
        """Make --out, take the STEM lock, clear dead runs' staging folders, make ours."""
        try:
            os.makedirs(self.out_dir, exist_ok=True)
            fd = os.open(os.path.join(self.out_dir, lock_name(self.stem)),
                         os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise OptionError(f"cannot write to output folder {self.out_dir}: "
                              f"{exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise OutputBusy(f"another voxify run is writing {self.stem} into "
                                 f"{self.out_dir}; wait for it or choose another --out") from None
            raise VoxifyError(f"cannot lock {self.stem} in {self.out_dir}: "
                              f"{exc.strerror or exc}") from None
        self._lock_fd = fd
        self._remove_dead_staging()
        self.staging = os.path.join(self.out_dir, staging_prefix(self.stem) +
                                    f"{os.getpid()}-{secrets.token_hex(4)}")
        try:
            os.mkdir(self.staging)
        except OSError as exc:
            self.close()
            raise VoxifyError(f"cannot write to {self.out_dir}: {exc.strerror or exc}") from None
        return self

    def _remove_dead_staging(self):
        """We hold the STEM lock, so no live run owns a STEM staging folder: they are dead."""
        prefix = staging_prefix(self.stem)
        for name in os.listdir(self.out_dir):
            path = os.path.join(self.out_dir, name)
            if name.startswith(prefix) and os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)

    def commit(self):
        """Move everything in the staging folder into --out (the report last), or nothing."""
        names = sorted(os.listdir(self.staging), key=lambda n: (n.endswith("_report.json"), n))
        for name in names:  # names no one planned get the same checks, late but before a move
            self._check_not_input(name)
        self._check_owned(names, self._written_before())
        _sync_tree(self.staging)
        aside = os.path.join(self.staging, ".replaced")
        os.mkdir(aside)
        moved_aside, moved_in = [], []
        try:
            for name in names:
                target = os.path.join(self.out_dir, name)
                if os.path.lexists(target):
                    os.rename(target, os.path.join(aside, name))
                    moved_aside.append(name)
                os.rename(os.path.join(self.staging, name), target)
                moved_in.append(name)
            self._record(names)
            _sync_dir(self.out_dir)
        except OSError as exc:
            self._roll_back(moved_in, moved_aside, aside)
            raise VoxifyError(f"cannot move the outputs into {self.out_dir}: "
                              f"{exc.strerror or exc}; the folder is as it was") from None
        return names

    def _roll_back(self, moved_in, moved_aside, aside):
        for name in reversed(moved_in):
            with contextlib.suppress(OSError):
                os.rename(os.path.join(self.out_dir, name), os.path.join(self.staging, name))
        for name in reversed(moved_aside):
            with contextlib.suppress(OSError):
                os.rename(os.path.join(aside, name), os.path.join(self.out_dir, name))

    def _record(self, names):
        """Add this run's names to the lock file's list of what voxify wrote for STEM."""
        owned = sorted(self._written_before() | set(names))
        data = json.dumps(owned).encode()
        os.ftruncate(self._lock_fd, 0)
        os.pwrite(self._lock_fd, data, 0)
        os.fsync(self._lock_fd)

    def close(self, remove_lock_file=False):
        """Remove the staging folder (with what a failed run left in it) and drop the lock;
        `remove_lock_file` when this run made --out and leaves nothing in it."""
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None
        if self._lock_fd is not None:
            if remove_lock_file:
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(self.out_dir, lock_name(self.stem)))
            os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = None

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()


def _name_bytes(name):
    return len(os.fsencode(name))


def _sync_tree(folder):
    """fsync every file and folder under `folder`, so a crash after the renames cannot leave
    empty or partial files under the final names."""
    for root, dirs, files in os.walk(folder):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _sync_dir(root)


def _sync_dir(folder):
    fd = os.open(folder, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
