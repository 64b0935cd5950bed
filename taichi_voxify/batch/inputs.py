"""The batch's assets: files, folders (searched recursively) and globs -> named mesh files."""
import glob
import hashlib
import os
from dataclasses import dataclass

from ..errors import OptionError
from ..mesh import SUPPORTED_EXTENSIONS


@dataclass(frozen=True)
class Asset:
    name: str  # its output subfolder: unique within the batch, stable from run to run
    path: str  # absolute path of the mesh file


def _inside(path, folder):
    return os.path.commonpath([path, folder]) == folder


def _is_mesh(path):
    return os.path.splitext(path)[1].lower() in SUPPORTED_EXTENSIONS


def _scan(folder, out_dir):
    """Every mesh file under `folder`, skipping hidden folders and the batch's own output."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and not _inside(os.path.join(root, d), out_dir))
        found += [os.path.join(root, f) for f in sorted(files) if _is_mesh(f)]
    return found


def _expand(spec, out_dir):
    path = os.path.realpath(os.path.expanduser(spec))
    if os.path.isdir(path):
        if path == out_dir:
            raise OptionError(f"--out {spec} is also an input folder: write the outputs elsewhere")
        if _inside(path, out_dir):
            raise OptionError(f"input folder {spec} lies inside the output folder")
        return _scan(path, out_dir)
    if os.path.isfile(path):
        if _inside(path, out_dir):
            raise OptionError(f"input {spec} lies inside the output folder: its folder would "
                              "be overwritten")
        return [path]
    if glob.has_magic(spec):
        matches = sorted(glob.glob(os.path.expanduser(spec), recursive=True))
        files = []
        for match in map(os.path.realpath, matches):
            if os.path.isdir(match) and not _inside(match, out_dir):
                files += _scan(match, out_dir)
            elif _is_mesh(match) and not _inside(match, out_dir):
                files.append(match)
        if not files:
            raise OptionError(f"{spec} matches no mesh file")
        return files
    raise OptionError(f"input {spec} does not exist")


def _unique_names(paths):
    """The file's stem, or stem-<hash of its path> where two inputs share a stem, so a name
    stays the same when the batch is run again on the same files."""
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    taken = {s for s in stems if stems.count(s) == 1}
    names = []
    for path, stem in zip(paths, stems):
        if stem in taken:
            names.append(stem)
        else:
            names.append(f"{stem}-{hashlib.sha1(path.encode()).hexdigest()[:8]}")
    return names


def collect_assets(specs, out_dir):
    """Assets named by `specs` (files, folders, globs), in a stable order, each file once.

    An explicitly named file is taken whatever its extension (its conversion says what is
    wrong with it); folders and globs contribute only files with a mesh extension.
    """
    out_dir = os.path.realpath(os.fspath(out_dir))
    paths = []
    for spec in specs:
        paths += _expand(os.fspath(spec), out_dir)
    paths = list(dict.fromkeys(paths))
    if not paths:
        raise OptionError("no mesh files found in the inputs (looked for "
                          f"{', '.join(SUPPORTED_EXTENSIONS)})")
    return [Asset(name, path) for name, path in zip(_unique_names(paths), paths)]


def file_sha256(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
