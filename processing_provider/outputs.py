"""Destinations checked before any work, and write failures told in one sentence.

Every algorithm calls ``check_file`` (and raster_io.plan_frame_folder for a frame folder) for each of its
outputs before it reads or trains anything, so a bad destination costs nothing; ``writing`` turns a
failure while writing into one sentence naming the output (the writers themselves write to temporary
names and remove them on failure)."""
import os
from contextlib import contextmanager


def check_file(path, name, feedback=None, protect=(), extensions=None):
    """InputError (before work) unless the file ``path`` of output ``name`` can be written: not a folder, in
    a folder that exists and can be written to, not one of ``protect`` (the inputs), ending in one of
    ``extensions`` (lower case, with the dot) when given.  An existing file is replaced, as for any output
    the user names: said on ``feedback``.  An empty ``path`` (optional output not asked for) passes."""
    from .raster_io import InputError, check_writable_folder

    if not path:
        return
    path = os.path.abspath(str(path))
    if os.path.isdir(path):
        raise InputError(f"{name} {path} is a folder; give a file name in it, e.g. "
                         f"{os.path.join(path, 'out' + (extensions[0] if extensions else ''))}.")
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise InputError(f"{name}: the folder {folder} does not exist; create it or choose another place.")
    check_writable_folder(folder, name)
    if extensions and not path.lower().endswith(tuple(extensions)):
        raise InputError(f"{name} must end in {' or '.join(extensions)} (that is the format written); got "
                         f"{os.path.basename(path)}.")
    for src, what in zip(protect, ("FIRST", "SECOND")):
        if src and os.path.exists(path) and os.path.exists(src) and os.path.samefile(path, src):
            raise InputError(f"{name} {path} is {what}, an input; choose another file name.")
    if os.path.exists(path) and feedback is not None:
        feedback.pushInfo(f"{name}: {path} exists and will be replaced (an output you named).")


def gpkg_output(path, name, feedback=None):
    """The GeoPackage ``path`` of vector output ``name``: a temporary output (in QGIS's processing temporary
    folder, whose format follows the user's default vector format) becomes a .gpkg there; a file the user
    named in another format (.shp, .geojson, ...) is refused before work, since writing it as a .gpkg beside
    it would replace a GeoPackage of that name which the user never named."""
    from qgis.core import QgsProcessingUtils
    from .raster_io import InputError

    if not path or path.lower().endswith(".gpkg"):
        return path
    stem, ext = os.path.splitext(path)
    temporary = os.path.abspath(path).startswith(os.path.abspath(QgsProcessingUtils.tempFolder()) + os.sep)
    if temporary:
        if feedback is not None:
            feedback.pushInfo(f"{name} is written as a GeoPackage: {stem}.gpkg")
        return stem + ".gpkg"
    raise InputError(f"{name} must be a GeoPackage (.gpkg), the format written (the layer with its arrow style); "
                     f"got {os.path.basename(path)}. Name it {os.path.basename(stem)}.gpkg, and convert it "
                     f"afterwards if you need {ext or 'another format'} (Export ▸ Save Features As, or ogr2ogr).")


def reason(error):
    """The one-line cause of a failed write."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = str(error).strip().splitlines()
    return text[-1] if text else type(error).__name__


@contextmanager
def writing(name, path):
    """Run a write of output ``name``; a failure (disk full, device error, ...) becomes one InputError
    sentence. The writers remove their partial files themselves."""
    from .raster_io import InputError

    try:
        yield
    except InputError:
        raise
    except (OSError, RuntimeError) as e:
        raise InputError(f"Could not write {name} ({path}): {reason(e)}; no partial file was left.") from e


@contextmanager
def into_place(path, suffix=""):
    """Yield a hidden temporary name beside ``path`` (ending in ``suffix``, for writers that go by the
    extension); it replaces ``path`` when the block completes and is removed when it fails."""
    partial = os.path.join(os.path.dirname(os.path.abspath(path)),
                           f".{os.path.basename(path)}.{os.getpid()}.part{suffix}")
    try:
        yield partial
        os.replace(partial, path)
    except BaseException:
        if os.path.exists(partial):
            os.remove(partial)
        raise
