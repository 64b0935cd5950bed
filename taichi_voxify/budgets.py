"""Memory budgets checked before anything is decoded: a small file must not unpack into
gigabytes. Images are measured from their headers, .npz arrays from their .npy headers, and a
.vox scene from its models' placements (export/vox.py); each refusal is one line naming the
limit."""
import zipfile
import zlib

import numpy as np

from .errors import InputError

MAX_IMAGE_SIDE = 8192  # textures, --reference pictures: 192 MiB as RGB8 at most
MAX_IMAGE_PIXELS = MAX_IMAGE_SIDE ** 2
MAX_TEXTURE_PIXELS = 2 * MAX_IMAGE_PIXELS  # all of one mesh's textures together: 384 MiB RGB8
MAX_VOXELS = 2 * 256 ** 3  # an assembled .vox scene or an .npz grid: twice our largest output
MAX_NPY_HEADER = 10_000  # numpy's own default cap on the text header


def open_image(path_or_file, what, max_pixels=MAX_IMAGE_PIXELS, size=None, error=InputError):
    """A lazily opened PIL image whose size, read from its header, is at most `max_pixels`
    (or exactly `size`, a (width, height) pair); nothing is decoded yet."""
    from PIL import Image

    try:
        image = Image.open(path_or_file)
    except Image.DecompressionBombError as exc:  # PIL's own cap, above ours
        raise error(f"{what}: {str(exc).splitlines()[0]}") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise error(f"cannot read {what}: {str(exc).splitlines()[0] if str(exc) else exc!r}"
                    ) from None
    w, h = image.size
    if size is not None and (w, h) != tuple(size):
        image.close()
        raise error(f"{what} is {w}x{h} pixels; {size[0]}x{size[1]} is needed")
    if w * h > max_pixels:
        image.close()
        raise error(f"{what} is {w}x{h} pixels, over the limit of {max_pixels:,} pixels")
    return image


def decode_image(image, convert, what, error=InputError):
    """convert(image) for an image opened by open_image, PIL's decoding errors made one line."""
    from PIL import Image

    try:
        with image:
            return convert(image)
    except Image.DecompressionBombError as exc:
        raise error(f"{what}: {str(exc).splitlines()[0]}") from None
    except (OSError, ValueError, SyntaxError, zlib.error) as exc:
        raise error(f"cannot decode {what}: {str(exc).splitlines()[0] if str(exc) else exc!r}"
                    ) from None


def read_npz(path, limits):
    """{name: array} of the .npz members named in `limits` ({name: most bytes}) that the file
    holds, each shape read from its .npy header and checked before the data is read.
    Object arrays (pickles) are refused."""
    arrays = {}
    try:
        with zipfile.ZipFile(path) as archive:
            members = set(archive.namelist())
            for name, most in limits.items():
                if name + ".npy" not in members:
                    continue
                with archive.open(name + ".npy") as fh:
                    shape, dtype = _npy_header(fh)
                size = float(np.prod(shape, dtype=np.float64)) * dtype.itemsize
                if dtype.hasobject:
                    raise InputError(f"{path}: array {name!r} holds Python objects, which are "
                                     "never loaded")
                if size > most:
                    raise InputError(f"{path}: array {name!r} ({dtype}, shape {tuple(shape)}) "
                                     f"is over the limit of {most:,} bytes")
                with archive.open(name + ".npy") as fh:
                    arrays[name] = np.lib.format.read_array(fh, allow_pickle=False,
                                                            max_header_size=MAX_NPY_HEADER)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError,
            ValueError, NotImplementedError, RuntimeError) as exc:
        raise InputError(f"{path} is not a readable taichi_voxify .npz file "
                         f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
                         ) from None
    return arrays


def _npy_header(fh):
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(fh, MAX_NPY_HEADER)
    elif version in ((2, 0), (3, 0)):
        shape, _, dtype = np.lib.format.read_array_header_2_0(fh, MAX_NPY_HEADER)
    else:
        raise ValueError(f"unknown .npy version {version}")
    return shape, dtype
