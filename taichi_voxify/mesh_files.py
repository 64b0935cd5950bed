"""The one gate for every file a mesh names: glTF buffers and images, OBJ mtllib, MTL maps.

Followed: a relative name (URL-escaped, or with Windows separators) that resolves, symlinks
included, inside the folder of the mesh file and names a regular file. A name that is absolute
or leaves the folder falls back to the bare file name beside the mesh (exporters write their own
machine's absolute paths). Never followed: anything outside that folder, symlinks out of it,
devices, FIFOs and folders, and URLs (http:, https:, file:, ...). Reads stop at the length the
mesh declares (glTF byteLength) and never exceed MAX_REFERENCED_BYTES. `data:` URIs are decoded
in memory. `MeshFolder` is also the resolver trimesh reads through, so its reads obey the same
rules.
"""
import base64
import binascii
import os
import pathlib
import re
import stat
import urllib.parse
import warnings

import trimesh

from .errors import MeshError

MAX_REFERENCED_BYTES = 1 << 30  # 1 GiB: no texture, material library or buffer we need is larger

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")  # two letters or more: "C:" is a Windows drive


NOT_REGULAR = "is not followed: not a regular file"


class RefusedReference(MeshError):
    """A file named by a mesh that is not followed; the message says which and why."""


def decode_data_uri(uri):
    """The bytes of a `data:[type][;base64],payload` URI."""
    head, sep, payload = uri.partition(",")
    if not sep:
        raise MeshError(f"malformed data: URI (no comma) starting {uri[:40]!r}")
    if head.endswith(";base64"):
        try:
            return base64.b64decode(payload, validate=False)
        except (binascii.Error, ValueError) as exc:
            raise MeshError(f"malformed base64 in a data: URI: {exc}") from None
    return urllib.parse.unquote_to_bytes(payload)


class MeshFolder(trimesh.resolvers.Resolver):
    """Reads the files a mesh at `mesh_path` names, by the rules in the module docstring.

    Every refusal raises RefusedReference; those of names that break a rule are also warned
    about once each (`warn=True`), while a name that is simply absent is not, since the loader
    words its own 'missing texture' warning."""

    def __init__(self, mesh_path, warn=True):  # noqa: D107 (trimesh's base refuses a plain init)
        mesh_path = pathlib.Path(mesh_path)
        self.name = mesh_path.name
        self.root = pathlib.Path(os.path.realpath(mesh_path.parent))
        self.warn = warn
        self.refused = {}  # name -> reason, for every reference not followed
        self.followed = []  # paths of the files found, in the order they were asked for

    # --- the rules ---------------------------------------------------------------------------
    def locate(self, name, base=None):
        """Absolute path of the regular file `name` names (relative to `base`, a folder inside
        the root, default the root); raises RefusedReference saying why not."""
        text = str(name).strip()
        if not text or "\0" in text:
            raise self._refuse(name, "is not followed: an empty or malformed file name")
        if text.lower().startswith("data:"):
            raise self._refuse(name, "is not followed: a data: URI is not a file")
        if _URL.match(text):
            raise self._refuse(name, "is not followed: URLs are not", loud=True)
        base = self.root if base is None else pathlib.Path(os.path.realpath(base))
        relative = urllib.parse.unquote(text.replace("\\", "/"))
        candidates = [text.replace("\\", "/"), relative]
        absolute = relative.startswith("/") or re.match(r"^[A-Za-z]:", relative)
        if absolute:  # an exporter's own machine path: only its bare name, beside the mesh
            candidates = [pathlib.PurePosixPath(relative).name]
        outside = None
        for candidate in dict.fromkeys(candidates):
            path = pathlib.Path(os.path.realpath(base / candidate))
            if not _inside(path, self.root):
                outside = candidate
                continue
            try:
                mode = path.stat().st_mode
            except FileNotFoundError:
                continue
            except OSError as exc:  # a name too long, a loop of links, ...
                raise self._refuse(name, f"cannot be read: {exc.strerror or exc}") from None
            if not stat.S_ISREG(mode):
                raise self._refuse(name, NOT_REGULAR, loud=True)
            self.followed.append(path)
            return path
        if outside is not None or absolute:
            raise self._refuse(name, "is not followed: it lies outside the mesh's folder",
                               loud=True)
        raise self._refuse(name, "is missing from the mesh's folder")

    def read(self, name, limit=None, base=None):
        """The bytes of the file `name` names, at most `limit` (a declared length) bytes."""
        cap = MAX_REFERENCED_BYTES if limit is None else min(int(limit), MAX_REFERENCED_BYTES)
        path = self.locate(name, base)
        try:
            # O_NONBLOCK: a FIFO swapped in after locate() must not hang the open
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | os.O_CLOEXEC)
        except OSError as exc:
            raise self._refuse(name, f"cannot be read: {exc.strerror or exc}") from None
        with os.fdopen(fd, "rb") as fh:
            info = os.fstat(fh.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise self._refuse(name, NOT_REGULAR, loud=True)
            if limit is None and info.st_size > cap:
                raise self._refuse(name, f"is not followed: {info.st_size:,} bytes is over the "
                                         f"{MAX_REFERENCED_BYTES:,}-byte limit", loud=True)
            return fh.read(cap)

    def _refuse(self, name, reason, loud=False):
        key = str(name)
        if loud and self.warn and key not in self.refused:
            warnings.warn(f"{self.name}: {key[:120]!r} {reason}", stacklevel=4)
        self.refused.setdefault(key, reason)
        return RefusedReference(f"{self.name}: {key[:120]!r} {reason}")

    # --- trimesh's resolver interface --------------------------------------------------------
    def get(self, key):
        return self.read(key)

    def keys(self):
        return iter(())

    def write(self, name, data):
        raise RefusedReference("a mesh being loaded is never written")

    def namespaced(self, namespace):
        return self


def _inside(path, root):
    return path == root or root in path.parents
