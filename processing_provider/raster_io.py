"""Reading the image pair and writing frames, through GDAL only (no QGIS, no torch).

``read_pair`` turns two rasters into float32 arrays on FIRST's grid with a validity mask;
``write_frames`` writes one GeoTIFF per frame with FIRST's grid, CRS, nodata and data type,
complete or not at all.
"""
import os
import re
import shutil
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
from osgeo import gdal, osr

gdal.UseExceptions()


class InputError(Exception):
    """A problem with the user's input, with a message meant for the user."""


@dataclass
class Grid:
    crs_wkt: str = ""
    geotransform: tuple = None
    width: int = 0
    height: int = 0
    nodata: list = field(default_factory=list)
    gdal_dtype: int = gdal.GDT_Float32
    band_names: list = field(default_factory=list)
    georeferenced: bool = False
    color_interps: list = field(default_factory=list)
    band_indices: list = field(default_factory=list)  # 1-based bands of the source that were used

    @property
    def band_count(self):
        return len(self.band_names)

    @property
    def effective_geotransform(self):
        """The geotransform, or the one QGIS uses for rasters without one (y up, 1 unit per pixel)."""
        return tuple(self.geotransform) if self.geotransform else (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)

    @property
    def has_crs(self):
        return bool(self.crs_wkt)

    def srs(self):
        if not self.crs_wkt:
            return None
        s = osr.SpatialReference()
        s.ImportFromWkt(self.crs_wkt)
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        return s

    def is_geographic(self):
        s = self.srs()
        return bool(s is not None and s.IsGeographic())


@dataclass
class Pair:
    x0: np.ndarray
    x1: np.ndarray
    valid: np.ndarray
    grid: Grid
    warnings: list = field(default_factory=list)


_DEFAULT_GT = (0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def open_raster(path, label="raster"):
    """gdal.Dataset opened read-only, or InputError saying why not."""
    if path is None or str(path) == "":
        raise InputError(f"No {label} given.")
    try:
        ds = gdal.OpenEx(str(path), gdal.OF_RASTER | gdal.OF_READONLY)
    except RuntimeError as e:
        raise InputError(f"Cannot read {label} '{path}': {e}") from None
    if ds is None or ds.RasterCount == 0:
        raise InputError(f"Cannot read {label} '{path}': not a raster GDAL can open.")
    return ds


def _metadata_nodata(ds):
    """A nodata value declared only in metadata (e.g. FMI's GDAL_METADATA item "Nodata"), or None."""
    md = ds.GetMetadata() or {}
    items = dict(md)
    blob = md.get("GDAL_METADATA")
    if blob:
        try:
            for item in ET.fromstring(blob).iter("Item"):
                items[item.get("name", "")] = item.text or ""
        except ET.ParseError:
            pass
    for k, v in items.items():
        if k.strip().lower() in ("nodata", "nodata_value", "missing_value", "_fillvalue"):
            try:
                return float(v)
            except (TypeError, ValueError):
                pass
    return None


def _grid_of(ds, bands):
    gt = ds.GetGeoTransform(can_return_null=True)
    if gt is not None and tuple(gt) == _DEFAULT_GT:
        gt = None
    wkt = ds.GetProjectionRef() or ""
    b1 = ds.GetRasterBand(bands[0])
    return Grid(
        crs_wkt=wkt,
        geotransform=tuple(gt) if gt else None,
        width=ds.RasterXSize,
        height=ds.RasterYSize,
        nodata=[ds.GetRasterBand(b).GetNoDataValue() for b in bands],
        gdal_dtype=b1.DataType,
        band_names=[ds.GetRasterBand(b).GetDescription() or f"band {b}" for b in bands],
        georeferenced=gt is not None,
        color_interps=[ds.GetRasterBand(b).GetColorInterpretation() for b in bands],
        band_indices=list(bands),
    )


def _read_masked(ds, bands, label, warnings, extra_nodata=None):
    """float32 (C,H,W) with NaN wherever GDAL's mask, nodata or non-finite values say invalid."""
    return _read_window(ds, bands, extra_nodata, 0, 0, ds.RasterXSize, ds.RasterYSize, label=label,
                        warnings=warnings)


def _select_bands(ds, label, warnings, chosen=None):
    """Data bands to use: ``chosen`` (1-based, the BANDS parameter) when given, else all but an alpha band
    (used as the mask); returns (bands, alpha_band or None)."""
    if chosen:
        missing = [b for b in chosen if not 1 <= int(b) <= ds.RasterCount]
        if missing:
            raise InputError(f"BANDS: {label} has {ds.RasterCount} band(s), so band {missing[0]} does not exist; "
                             f"choose bands 1 to {ds.RasterCount}.")
        return [int(b) for b in chosen], None
    bands = list(range(1, ds.RasterCount + 1))
    alpha = None
    if len(bands) > 1:
        last = ds.GetRasterBand(bands[-1])
        if last.GetColorInterpretation() == gdal.GCI_AlphaBand:
            alpha = bands.pop()
            a = last.ReadAsArray()
            if a.min() == a.max():
                warnings.append(f"{label}: its alpha band is constant ({a.min()}) and was ignored.")
            else:
                warnings.append(f"{label}: its alpha band is used as the validity mask and was "
                                f"not learned as data.")
    return bands, alpha


def _is_grey_rgb(arr):
    return arr.shape[0] == 3 and np.array_equal(arr[0], arr[1], equal_nan=True) and \
        np.array_equal(arr[0], arr[2], equal_nan=True)


def _same_crs(wkt_a, wkt_b):
    if not wkt_a and not wkt_b:
        return True
    if not wkt_a or not wkt_b:
        return False
    a, b = osr.SpatialReference(), osr.SpatialReference()
    a.ImportFromWkt(wkt_a)
    b.ImportFromWkt(wkt_b)
    return bool(a.IsSame(b))


def _same_grid(g0, g1):
    if (g0.width, g0.height) != (g1.width, g1.height):
        return False
    if (g0.geotransform is None) != (g1.geotransform is None):
        return False
    if g0.geotransform is not None:
        px = max(abs(g0.geotransform[1]), abs(g0.geotransform[5]), 1e-12)
        if not np.allclose(g0.geotransform, g1.geotransform, rtol=0, atol=1e-6 * px):
            return False
    return _same_crs(g0.crs_wkt, g1.crs_wkt)


def _mem_dataset(arr, gt, wkt):
    c, h, w = arr.shape
    ds = gdal.GetDriverByName("MEM").Create("", w, h, c, gdal.GDT_Float32)
    if gt is not None:
        ds.SetGeoTransform(gt)
    if wkt:
        ds.SetProjection(wkt)
    for i in range(c):
        b = ds.GetRasterBand(i + 1)
        b.SetNoDataValue(float("nan"))
        b.WriteArray(arr[i])
    return ds


def two_valued(arr):
    """True when every band of a NaN-masked (C,H,W) array holds at most two distinct values (a mask, such as
    ice and water): such an image is resampled nearest-neighbour, so it stays a mask (bilinear would put
    values between the two at every edge, and the start would no longer see ice pieces to fit)."""
    for band in arr:
        v = band[np.isfinite(band)]
        if v.size and not ((v == v.min()) | (v == v.max())).all():
            return False
    return True


def resampling_for(arr):
    """GDAL's resampling to warp ``arr`` with, and the words the warning gives it."""
    return ("near", "nearest neighbour: it holds two values, a mask, and stays one") if two_valued(arr) \
        else ("bilinear", "bilinear")


def warp_onto(arr, src_gt, src_wkt, grid, resample=None):
    """Warp a NaN-masked float32 (C,H,W) array onto ``grid`` (GDAL, in memory); ``resample`` None:
    resampling_for(arr)."""
    resample = resample or resampling_for(arr)[0]
    src = _mem_dataset(arr, src_gt, src_wkt)
    dst = gdal.GetDriverByName("MEM").Create("", grid.width, grid.height, arr.shape[0], gdal.GDT_Float32)
    dst.SetGeoTransform(grid.geotransform)
    if grid.crs_wkt:
        dst.SetProjection(grid.crs_wkt)
    for i in range(arr.shape[0]):
        b = dst.GetRasterBand(i + 1)
        b.SetNoDataValue(float("nan"))
        b.Fill(float("nan"))
    try:
        gdal.Warp(dst, src, resampleAlg=resample, srcNodata="nan", dstNodata="nan",
                  multithread=False, warpOptions=["INIT_DEST=NO_DATA"])
    except RuntimeError as e:
        raise InputError(f"Could not warp SECOND onto FIRST's grid: {e}") from None
    out = dst.ReadAsArray().astype(np.float32).reshape(arr.shape[0], grid.height, grid.width)
    out[~np.isfinite(out)] = np.nan
    return out


def _open_pair(first_path, second_path, min_size, warnings, bands=None):
    """Open FIRST and SECOND, check their sizes and band counts; (ds0, ds1, bands0, bands1).  ``bands``:
    the 1-based bands to use in both (BANDS), None for all."""
    ds0 = open_raster(first_path, "FIRST")
    ds1 = open_raster(second_path, "SECOND")
    for ds, label in ((ds0, "FIRST"), (ds1, "SECOND")):
        if ds.RasterXSize < min_size or ds.RasterYSize < min_size:
            raise InputError(f"{label} is {ds.RasterXSize} × {ds.RasterYSize} pixels; at least "
                             f"{min_size} × {min_size} are needed.")
    bands0, _ = _select_bands(ds0, "FIRST", warnings, bands)
    bands1, _ = _select_bands(ds1, "SECOND", warnings, bands)
    if len(bands0) != len(bands1):
        raise InputError(f"FIRST has {len(bands0)} band(s) and SECOND has {len(bands1)}; both images "
                         f"need the same bands (choose them with BANDS).")
    return ds0, ds1, bands0, bands1


def _check_not_empty(*arrays):
    """InputError when an image (as read, before any warping) is all nodata."""
    for arr, label in zip(arrays, ("FIRST", "SECOND")):
        if not np.isfinite(arr).all(axis=0).any():
            raise InputError(f"{label} has no valid pixel: every pixel is nodata or masked; check the file and "
                             f"its nodata value.")


def read_pair(first_path, second_path, min_size=16, min_valid_fraction=0.0, bands=None):
    """Read FIRST and SECOND as float32 (C,H,W) arrays on FIRST's grid, with a validity mask.

    Each array is NaN at its own nodata/mask/NaN pixels; ``valid`` (H,W) is True where both are valid.

    SECOND is warped onto FIRST's grid (bilinear; nearest neighbour for a mask) when grid or CRS differ.
    Raises InputError for unreadable files, band count mismatch, images smaller than ``min_size`` pixels, no
    overlap and constant images. Warnings (list of str) say what was done on the way.
    """
    warnings = []
    ds0, ds1, bands0, bands1 = _open_pair(first_path, second_path, min_size, warnings, bands)
    nd0 = _metadata_nodata(ds0) if ds0.GetRasterBand(bands0[0]).GetNoDataValue() is None else None
    nd1 = _metadata_nodata(ds1) if ds1.GetRasterBand(bands1[0]).GetNoDataValue() is None else None
    grid = _grid_of(ds0, bands0)
    grid1 = _grid_of(ds1, bands1)
    if nd0 is not None:
        grid.nodata = [nd0] * len(bands0)
        warnings.append(f"FIRST: nodata value {nd0:g} taken from the file's metadata.")
    if nd1 is not None:
        warnings.append(f"SECOND: nodata value {nd1:g} taken from the file's metadata.")
    x0 = _read_masked(ds0, bands0, "FIRST", warnings, nd0)
    x1 = _read_masked(ds1, bands1, "SECOND", warnings, nd1)
    _check_not_empty(x0, x1)

    # Grey levels stored as RGB(A) (e.g. matplotlib PNGs): learn one band, not three copies.
    if not bands and _is_grey_rgb(x0) and _is_grey_rgb(x1):
        x0, x1 = x0[:1], x1[:1]
        grid.band_names = ["grey"]
        grid.nodata = grid.nodata[:1]
        grid.color_interps = [gdal.GCI_GrayIndex]
        grid.band_indices = grid.band_indices[:1]
        warnings.append("Both images hold grey levels in identical R, G, B bands; one grey band is used.")

    # Put SECOND on FIRST's grid.
    if not _same_grid(grid, grid1):
        if grid.georeferenced and grid1.georeferenced:
            src_wkt = grid1.crs_wkt
            if not grid1.crs_wkt and grid.crs_wkt:
                src_wkt = grid.crs_wkt
                warnings.append("SECOND has no CRS; it is assumed to be in FIRST's CRS.")
            elif grid1.crs_wkt and not grid.crs_wkt:
                raise InputError("SECOND has a CRS but FIRST has none; cannot align them. Assign "
                                 "FIRST's CRS or use the same grid for both.")
            resample, how = resampling_for(x1)
            x1 = warp_onto(x1, grid1.geotransform, src_wkt, grid, resample)
            what = "CRS and grid" if not _same_crs(grid.crs_wkt, grid1.crs_wkt) else "grid"
            warnings.append(f"SECOND's {what} differ(s) from FIRST's; SECOND was warped onto "
                            f"FIRST's grid ({how}).")
        elif (grid.width, grid.height) == (grid1.width, grid1.height):
            warnings.append("Only one of the images is georeferenced; they have the same size and "
                            "are taken pixel for pixel.")
        else:
            raise InputError(f"FIRST ({grid.width} × {grid.height}) and SECOND ({grid1.width} × "
                             f"{grid1.height}) differ in size and are not both georeferenced, so "
                             f"they cannot be aligned.")
    if not grid.georeferenced:
        warnings.append("FIRST has no georeference (CRS/geotransform): positions are in pixels and "
                        "velocities in pixels per second.")
    elif not grid.crs_wkt:
        warnings.append("FIRST has no CRS: velocities are in map units per second.")

    valid = np.isfinite(x0).all(axis=0) & np.isfinite(x1).all(axis=0)
    if not valid.any():
        raise InputError("FIRST and SECOND do not overlap: no pixel is valid (not nodata) in both.")
    frac = float(valid.mean())
    if frac < min_valid_fraction:
        raise InputError(f"Only {100 * frac:.2f}% of the pixels are valid in both images.")
    if frac < 0.05:
        warnings.append(f"Only {100 * frac:.1f}% of FIRST's grid is valid in both images.")
    for arr, label in ((x0, "FIRST"), (x1, "SECOND")):
        v = arr[:, valid]
        if not (v.max(axis=1) > v.min(axis=1)).any():
            raise InputError(f"{label} is constant where both images are valid (value "
                             f"{float(v.min()):g}); there is nothing to learn from.")
    # x0 and x1 keep their own values where only the other image is nodata (so an endpoint can be
    # reproduced as given); ``valid`` says where both are usable.
    return Pair(x0=x0, x1=x1, valid=valid, grid=grid, warnings=warnings)


def read_raster(path, onto=None, label="raster", min_size=1):
    """One raster as float32 (C,H,W) with NaN at nodata/mask/NaN, and its Grid.

    With ``onto`` (a Grid), the raster is warped onto that grid when grid or CRS differ and the
    returned Grid is ``onto``. A constant opaque alpha band is dropped like in ``read_pair``.
    """
    warnings = []
    ds = open_raster(path, label)
    if ds.RasterXSize < min_size or ds.RasterYSize < min_size:
        raise InputError(f"{label} is {ds.RasterXSize} × {ds.RasterYSize} pixels; at least "
                         f"{min_size} × {min_size} are needed.")
    bands, _ = _select_bands(ds, label, warnings)
    nd = _metadata_nodata(ds) if ds.GetRasterBand(bands[0]).GetNoDataValue() is None else None
    grid = _grid_of(ds, bands)
    if nd is not None:
        grid.nodata = [nd] * len(bands)
    arr = _read_masked(ds, bands, label, warnings, nd)
    ds = None
    if onto is None or _same_grid(onto, grid):
        return arr, grid
    if onto.georeferenced and grid.georeferenced:
        if grid.crs_wkt and not onto.crs_wkt:
            raise InputError(f"{label} has a CRS but the target grid has none; cannot align them.")
        return warp_onto(arr, grid.geotransform, grid.crs_wkt or onto.crs_wkt, onto), onto
    if (grid.width, grid.height) == (onto.width, onto.height):
        return arr, onto
    raise InputError(f"{label} ({grid.width} × {grid.height}) cannot be aligned with the target grid "
                     f"({onto.width} × {onto.height}): not both georeferenced.")


# ---------------------------------------------------------------------------------------------
# Writing

_INT_RANGES = {
    gdal.GDT_Byte: (0, 255), gdal.GDT_UInt16: (0, 65535), gdal.GDT_Int16: (-32768, 32767),
    gdal.GDT_UInt32: (0, 4294967295), gdal.GDT_Int32: (-2147483648, 2147483647),
}
if hasattr(gdal, "GDT_Int8"):
    _INT_RANGES[gdal.GDT_Int8] = (-128, 127)
_FLOAT_TYPES = {gdal.GDT_Float32: np.float32, gdal.GDT_Float64: np.float64}


def frame_name(j, count):
    digits = max(3, len(str(count - 1)))
    return f"frame_{j:0{digits}d}.tif"


_FRAME_RE = re.compile(r"^frame_\d{3,}\.tif$")


def _tiff_time(t):
    if isinstance(t, datetime):
        t = t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)
        return t.strftime("%Y:%m:%d %H:%M:%S"), t.isoformat().replace("+00:00", "Z")
    return None, None


def _frame_metadata(times, j, count, first_path):
    """GDAL metadata of frame j of ``count``: its time, its index and the FIRST it came from."""
    md = {}
    if times is not None:
        tag, iso = _tiff_time(times[j])
        if tag:
            md = {"TIFFTAG_DATETIME": tag, "ACQUISITION_DATETIME": iso}
    md["INBETWEEN_FRAME"] = f"{j}/{count - 1}"
    if first_path:
        md["INBETWEEN_SOURCE"] = os.path.basename(str(first_path))
    return md


def _encode(frame, grid, warnings):
    """(array to write, gdal type, per-band nodata) for one float32 (C,H,W) frame."""
    dtype = grid.gdal_dtype
    nodata = list(grid.nodata) + [None] * (frame.shape[0] - len(grid.nodata))
    invalid = ~np.isfinite(frame)
    if dtype in _INT_RANGES:
        lo, hi = _INT_RANGES[dtype]
        np_type = gdal.GetDataTypeName(dtype).lower().replace("byte", "uint8")
        out = np.empty(frame.shape, dtype=np.dtype(np_type))
        for c in range(frame.shape[0]):
            nd = nodata[c]
            if nd is None and invalid[c].any():
                nd = hi if lo == 0 else lo
                nodata[c] = nd
            blo, bhi = lo, hi
            if nd is not None and nd == hi:
                bhi = hi - 1
            elif nd is not None and nd == lo:
                blo = lo + 1
            vals = np.clip(np.rint(np.nan_to_num(frame[c], nan=0.0)), blo, bhi)
            if nd is not None and blo < nd < bhi:   # keep valid pixels off the nodata value
                vals[(vals == nd) & ~invalid[c]] = nd + 1 if nd + 1 <= bhi else nd - 1
            if nd is not None:
                vals[invalid[c]] = nd
            out[c] = vals.astype(out.dtype)
        return out, dtype, nodata
    np_float = _FLOAT_TYPES.get(dtype, np.float32)
    gtype = dtype if dtype in _FLOAT_TYPES else gdal.GDT_Float32
    out = frame.astype(np_float, copy=True)
    for c in range(frame.shape[0]):
        if nodata[c] is None:
            if invalid[c].any():
                nodata[c] = float("nan")
        elif np.isfinite(nodata[c]):
            out[c][invalid[c]] = nodata[c]
    return out, gtype, nodata


def write_geotiff(path, array, grid, gtype, nodata, metadata=None):
    c, h, w = array.shape
    opts = ["COMPRESS=DEFLATE", "TILED=YES"] + (["BIGTIFF=IF_SAFER"] if array.nbytes > 2e9 else [])
    if c >= 3 and grid.color_interps[:3] == [gdal.GCI_RedBand, gdal.GCI_GreenBand, gdal.GCI_BlueBand] \
            and gtype == gdal.GDT_Byte:
        opts.append("PHOTOMETRIC=RGB")
    ds = gdal.GetDriverByName("GTiff").Create(str(path), w, h, c, gtype, opts)
    try:
        if grid.geotransform:
            ds.SetGeoTransform(grid.geotransform)
        if grid.crs_wkt:
            ds.SetProjection(grid.crs_wkt)
        for k, v in (metadata or {}).items():
            ds.SetMetadataItem(k, v)
        for i in range(c):
            b = ds.GetRasterBand(i + 1)
            if i < len(grid.band_names) and grid.band_names[i]:
                b.SetDescription(grid.band_names[i])
            if nodata[i] is not None:
                b.SetNoDataValue(float(nodata[i]))
            b.WriteArray(array[i])
            # Statistics inside the TIFF: QGIS then needs no .aux.xml beside each frame.
            vals = array[i]
            ok = np.isfinite(vals) if vals.dtype.kind == "f" else np.ones(vals.shape, bool)
            if nodata[i] is not None and np.isfinite(nodata[i]):
                ok &= vals != nodata[i]
            if ok.any():
                v = vals[ok]
                b.SetStatistics(float(v.min()), float(v.max()), float(v.mean(dtype=np.float64)),
                                float(v.std(dtype=np.float64)))
        ds.FlushCache()
    finally:
        ds = None


def write_frames(frames, grid, times, folder, first_path=None, overwrite=True, progress=None,
                 is_canceled=None, warnings=None, protect=()):
    """Write frames (N+1, C, H, W float32, NaN = nodata) as frame_000.tif ... in ``folder``.

    Each file has FIRST's grid, CRS, nodata and data type (rounded and clipped for integer types),
    TIFFTAG_DATETIME (UTC, seconds) and ACQUISITION_DATETIME (ISO 8601, exact). All files are written
    to a temporary folder inside ``folder`` and moved into place only when all are complete; on any
    error or cancel nothing in ``folder`` changes. The folder is checked first (``plan_frame_folder``):
    only frames an earlier In-between run wrote are replaced, never a file of ``protect`` (the inputs),
    and no other file is removed. Returns the paths in order.
    ``progress(done, total)`` and ``is_canceled()`` are optional callables (the project's convention).
    """
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[:, None]
    if frames.ndim != 4:
        raise InputError(f"Frames must be (N+1, C, H, W); got shape {frames.shape}.")
    n, c, h, w = frames.shape
    if (h, w) != (grid.height, grid.width):
        raise InputError(f"Frames are {w} × {h} pixels but the grid is {grid.width} × {grid.height}.")
    if grid.band_names and c != len(grid.band_names):
        raise InputError(f"Frames have {c} band(s) but the grid has {len(grid.band_names)}.")
    if times is not None and len(times) != n:
        raise InputError(f"{n} frames but {len(times)} times.")
    warnings = warnings if warnings is not None else []
    plan = plan_frame_folder(folder, n, protect=protect, overwrite=overwrite)
    folder, names, created = plan.folder, plan.names, plan.create()
    tmp = _temp_dir(folder, FRAMES_TMP)
    try:
        for j in range(n):
            if is_canceled is not None and is_canceled():
                raise InputError("Canceled; no frames were written.")
            arr, gtype, nodata = _encode(np.asarray(frames[j], np.float32), grid, warnings)
            md = _frame_metadata(times, j, n, first_path)
            write_geotiff(os.path.join(tmp, names[j]), arr, grid, gtype, nodata, md)
            if progress is not None:
                progress(j + 1, n)
    except BaseException as e:
        _discard(tmp, folder, created)
        if isinstance(e, (OSError, RuntimeError)):
            raise _write_error(folder, e) from e
        raise
    try:
        _move_into_place(tmp, folder, names, created)
    except (OSError, RuntimeError) as e:
        raise _write_error(folder, e) from e
    return [os.path.join(folder, nm) for nm in names]


def _write_error(folder, error):
    """One sentence for a failed frame write (the partial files are removed by the caller)."""
    text = error.strerror if isinstance(error, OSError) and error.strerror else \
        (str(error).strip().splitlines() or [type(error).__name__])[-1]
    return InputError(f"Could not write the frames in {folder}: {text}; no partial frame was left.")


# Temporary folders inside an output folder carry the writing process's id, so that a later run can tell
# the leftovers of a killed run (process gone) from a run still going on.
FRAMES_TMP, BACKUP_TMP = ".inbetween-frames-", ".inbetween-backup-"
_TMP_RE = re.compile(r"^\.inbetween-(frames|backup)-(?:(\d+)-)?")


def _temp_dir(folder, prefix):
    return tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=folder)


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def clean_leftovers(folder):
    """Remove what a killed run left in ``folder``: its partial frames (``.inbetween-frames-PID-*``), and
    put back the earlier frames it had set aside (``.inbetween-backup-PID-*``) where nothing took their
    place. Folders of a process still running are left alone. Returns one line per folder cleaned."""
    notes = []
    try:
        entries = os.listdir(folder)
    except OSError:
        return notes
    for nm in sorted(entries):
        m = _TMP_RE.match(nm)
        path = os.path.join(folder, nm)
        if not m or not os.path.isdir(path) or (m.group(2) and _process_alive(int(m.group(2)))):
            continue
        if m.group(1) == "backup":
            for f in os.listdir(path):
                if not os.path.exists(os.path.join(folder, f)):
                    os.replace(os.path.join(path, f), os.path.join(folder, f))
            try:
                os.rmdir(path)
            except OSError:
                notes.append(f"{path} holds frames an interrupted run set aside; they were left there.")
                continue
            notes.append(f"Put back the frames an interrupted run had set aside in {nm}.")
        else:
            shutil.rmtree(path, ignore_errors=True)
            notes.append(f"Removed {nm}, the partial frames of an interrupted run.")
    return notes


def _written_by_inbetween(path):
    """True when ``path`` is a frame an In-between run wrote (it carries INBETWEEN_FRAME)."""
    try:
        with _quiet_gdal():
            ds = gdal.OpenEx(str(path), gdal.OF_RASTER | gdal.OF_READONLY)
        return ds is not None and ds.GetMetadataItem("INBETWEEN_FRAME") is not None
    except RuntimeError:
        return False


class _quiet_gdal:
    def __enter__(self):
        gdal.PushErrorHandler("CPLQuietErrorHandler")

    def __exit__(self, *exc):
        gdal.PopErrorHandler()


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_writable_folder(folder, label):
    """InputError unless files can be created in ``folder`` (or, when it does not exist yet, the folder can be
    made): tried for real with a probe file, since permissions alone do not tell (root, read-only mounts)."""
    folder = os.path.abspath(str(folder))
    existing = folder
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise InputError(f"{label}: {existing} is a file, so {folder} cannot be a folder; choose another path.")
    try:
        fd, probe = tempfile.mkstemp(prefix=".inbetween-probe-", dir=existing)
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        raise InputError(f"{label}: cannot write in {existing} ({e.strerror}); choose a folder you can "
                         f"write to.") from None


@dataclass
class FramePlan:
    """What writing ``names`` into ``folder`` will do: ``replaced`` frames of an earlier In-between run,
    ``others`` frame files left as they are, ``notes`` to log."""
    folder: str
    names: list
    replaced: list
    others: list
    notes: list

    def create(self):
        """Make the folder; True when it did not exist (so a failed run removes it again)."""
        created = not os.path.isdir(self.folder)
        os.makedirs(self.folder, exist_ok=True)
        return created


def plan_frame_folder(folder, count, protect=(), overwrite=True, label="OUTPUT_FOLDER"):
    """Check ``folder`` for ``count`` frames before any work: InputError (nothing changed) when it is a file,
    cannot be written, holds one of ``protect`` (FIRST, SECOND) under a frame's name, or holds a frame file
    that In-between did not write (a user's own sequence). Frames of an earlier run are replaced (said in
    ``notes``); other files are never touched. Leftovers of a killed run are cleaned first."""
    folder = os.path.abspath(str(folder))
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise InputError(f"{label} {folder} is a file; give a folder (it is created when missing).")
    check_writable_folder(folder, label)
    names = [frame_name(j, count) for j in range(count)]
    notes = clean_leftovers(folder) if os.path.isdir(folder) else []
    replaced = []
    for nm in names:
        path = os.path.join(folder, nm)
        if not os.path.exists(path):
            continue
        for src, what in zip(protect, ("FIRST", "SECOND", "an input")):
            if src and _same_file(path, src):
                raise InputError(f"{label} {folder} holds {what} ({os.path.basename(str(src))}), which this run "
                                 f"would overwrite with {nm}; choose another (new or empty) output folder.")
        if not overwrite:
            raise InputError(f"{nm} already exists in {folder} (overwrite is off).")
        if not _written_by_inbetween(path):
            raise InputError(f"{label} {folder} already holds {nm}, which In-between did not write; choose "
                             f"a new or empty output folder so that no file of yours is replaced.")
        replaced.append(nm)
    keep = set(names)
    others = sorted(nm for nm in (os.listdir(folder) if os.path.isdir(folder) else [])
                    if _FRAME_RE.match(nm) and nm not in keep)
    if replaced:
        notes.append(f"{label}: replacing {len(replaced)} frame(s) an earlier run wrote in {folder} "
                     f"({replaced[0]} …), as for any output you name.")
    if others:
        notes.append(f"{label}: {len(others)} other frame file(s) in {folder} ({others[0]} …) are not part of "
                     f"this run and were left as they are.")
    return FramePlan(folder, names, replaced, others, notes)


def _discard(tmp, folder, created):
    """Remove the temporary folder of a run that did not finish, and ``folder`` if it was created for it
    and is empty again."""
    shutil.rmtree(tmp, ignore_errors=True)
    if created:
        try:
            os.rmdir(folder)
        except OSError:
            pass


def _move_into_place(tmp, folder, names, created):
    """Move the complete files ``names`` from ``tmp`` into ``folder``, keeping what was there until every
    move succeeded (on failure the old files come back, ``tmp`` is removed and, when the folder was
    ``created`` for this run, it too); then drop the replaced frames' sidecars (statistics, QGIS default
    style: stale now). No other file of ``folder`` is touched."""
    backup = None
    moved = []
    try:
        backup = _temp_dir(folder, BACKUP_TMP)
        for nm in names:
            dst = os.path.join(folder, nm)
            if os.path.exists(dst):
                os.replace(dst, os.path.join(backup, nm))
            os.replace(os.path.join(tmp, nm), dst)
            moved.append(nm)
    except BaseException:
        for nm in moved:  # roll back
            try:
                os.remove(os.path.join(folder, nm))
            except OSError:
                pass
        if backup:
            for nm in os.listdir(backup):
                os.replace(os.path.join(backup, nm), os.path.join(folder, nm))
            shutil.rmtree(backup, ignore_errors=True)
        _discard(tmp, folder, created)
        raise
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(backup, ignore_errors=True)
    for f in (f for nm in names for f in (nm + ".aux.xml", nm[:-4] + ".qml")):
        try:
            os.remove(os.path.join(folder, f))
        except OSError:
            pass


# ---------------------------------------------------------------------------------------------
# Streaming: windowed reads of the pair and windowed writes of the frames (whole scenes, bounded memory)

def _read_window(ds, bands, extra_nodata, xoff, yoff, xsize, ysize, buf=None, label=None, warnings=None):
    """float32 (C, ysize, xsize) of a window (or reduced by nearest neighbour to ``buf`` = (h, w)), NaN
    wherever GDAL's mask, nodata or non-finite values say invalid.  ``label`` names the image in errors;
    with ``warnings`` (a list) complex bands and colour tables are noted there."""
    bh, bw = buf if buf else (ysize, xsize)
    kw = dict(xoff=int(xoff), yoff=int(yoff), win_xsize=int(xsize), win_ysize=int(ysize),
              buf_xsize=int(bw), buf_ysize=int(bh))
    of = f" of {label}" if label else ""
    out = np.empty((len(bands), bh, bw), np.float32)
    for i, b in enumerate(bands):
        band = ds.GetRasterBand(b)
        try:
            arr = band.ReadAsArray(resample_alg=gdal.GRIORA_NearestNeighbour, **kw)
        except RuntimeError as e:
            raise InputError(f"Cannot read band {b}{of}: {e}") from None
        if arr is None:
            raise InputError(f"Cannot read band {b}{of}.")
        if np.iscomplexobj(arr):
            arr = np.abs(arr)
            if warnings is not None:
                warnings.append(f"{label} band {b} is complex; its modulus is used.")
        arr = arr.astype(np.float32)
        if warnings is not None and band.GetColorTable() is not None and i == 0:
            warnings.append(f"{label} band {b} has a colour table: its palette indices are used as values "
                            f"(expand it to RGB first, e.g. gdal_translate -expand rgb, to learn colours).")
        if band.GetMaskFlags() != gdal.GMF_ALL_VALID:
            mask = band.GetMaskBand().ReadAsArray(resample_alg=gdal.GRIORA_NearestNeighbour, **kw)
            arr[mask == 0] = np.nan
        elif extra_nodata is not None:
            arr[arr == np.float32(extra_nodata)] = np.nan
        arr[~np.isfinite(arr)] = np.nan
        out[i] = arr
    return out


class PairWindows:
    """FIRST and SECOND read window by window with GDAL (``ReadAsArray`` with offsets and sizes), for
    whole scenes: nothing of the size of the raster is kept.  ``window(r0, r1, q0, q1)`` → (x0, x1,
    valid) like ``read_pair``'s arrays cut to that window; ``decimated(h, w)`` → the pair reduced by
    nearest neighbour.  ``grid`` and ``warnings`` as in ``read_pair``.

    Use ``open_pair_windows``: it falls back to ``read_pair`` in memory (``InMemoryPair``) for the cases
    that need the whole image (SECOND on another grid, to be warped; grey levels stored as RGB)."""

    def __init__(self, ds0, ds1, bands0, bands1, nd0, nd1, grid, warnings):
        self.ds0, self.ds1 = ds0, ds1
        self.bands0, self.bands1 = bands0, bands1
        self.nd0, self.nd1 = nd0, nd1
        self.grid, self.warnings = grid, warnings
        self.bands, self.height, self.width = len(bands0), grid.height, grid.width

    def window(self, r0, r1, q0, q1):
        x0 = _read_window(self.ds0, self.bands0, self.nd0, q0, r0, q1 - q0, r1 - r0)
        x1 = _read_window(self.ds1, self.bands1, self.nd1, q0, r0, q1 - q0, r1 - r0)
        return x0, x1, np.isfinite(x0).all(axis=0) & np.isfinite(x1).all(axis=0)

    def decimated(self, h, w, strip=256):
        """Nearest-neighbour reduction (the pixels ArrayPair.decimated picks), read in full-resolution
        strips of ``strip`` rows: GDAL's own reduced reads would use the file's overviews, which may
        not hold the data (the FMI composites' overviews are all zero)."""
        ri = np.minimum(((np.arange(h) + 0.5) * self.height / h).astype(int), self.height - 1)
        ci = np.minimum(((np.arange(w) + 0.5) * self.width / w).astype(int), self.width - 1)
        x0 = np.empty((self.bands, h, w), np.float32)
        x1 = np.empty((self.bands, h, w), np.float32)
        for s in range(0, self.height, strip):
            sel = np.nonzero((ri >= s) & (ri < s + strip))[0]
            if sel.size == 0:
                continue
            e = min(s + strip, self.height)
            a, b, _ = self.window(s, e, 0, self.width)
            x0[:, sel] = a[:, ri[sel] - s][:, :, ci]
            x1[:, sel] = b[:, ri[sel] - s][:, :, ci]
        return x0, x1, np.isfinite(x0).all(axis=0) & np.isfinite(x1).all(axis=0)


class InMemoryPair:
    """``read_pair``'s result with PairWindows' interface (the fallback of ``open_pair_windows``)."""

    def __init__(self, pair):
        from ..model.inference import ArrayPair

        self._a = ArrayPair(pair.x0, pair.x1, pair.valid)
        self.grid, self.warnings = pair.grid, pair.warnings
        self.bands, self.height, self.width = self._a.bands, self._a.height, self._a.width
        self.pair = pair

    def window(self, r0, r1, q0, q1):
        return self._a.window(r0, r1, q0, q1)

    def decimated(self, h, w):
        return self._a.decimated(h, w)


def open_pair_windows(first_path, second_path, min_size=16, check_side=1024, bands=None):
    """FIRST and SECOND for streamed inference: a PairWindows when both share FIRST's grid (the usual
    case for a time series), else ``read_pair`` in memory (warping, grey RGB).  The checks of
    ``read_pair`` (size, band counts, overlap, constant images) run on a nearest-neighbour reduction
    to at most ``check_side`` pixels on the longer side."""
    warnings = []
    ds0, ds1, bands0, bands1 = _open_pair(first_path, second_path, min_size, warnings, bands)
    grid, grid1 = _grid_of(ds0, bands0), _grid_of(ds1, bands1)
    if (len(bands0) == 3 and not bands) or not _same_grid(grid, grid1):
        ds0 = ds1 = None
        return InMemoryPair(read_pair(first_path, second_path, min_size, bands=bands))
    nd0 = _metadata_nodata(ds0) if ds0.GetRasterBand(bands0[0]).GetNoDataValue() is None else None
    nd1 = _metadata_nodata(ds1) if ds1.GetRasterBand(bands1[0]).GetNoDataValue() is None else None
    if nd0 is not None:
        grid.nodata = [nd0] * len(bands0)
        warnings.append(f"FIRST: nodata value {nd0:g} taken from the file's metadata.")
    if nd1 is not None:
        warnings.append(f"SECOND: nodata value {nd1:g} taken from the file's metadata.")
    for b in bands0[:1]:
        if ds0.GetRasterBand(b).GetColorTable() is not None:
            warnings.append(f"FIRST band {b} has a colour table: its palette indices are used as values.")
    if not grid.georeferenced:
        warnings.append("FIRST has no georeference (CRS/geotransform): positions are in pixels and "
                        "velocities in pixels per second.")
    elif not grid.crs_wkt:
        warnings.append("FIRST has no CRS: velocities are in map units per second.")
    src = PairWindows(ds0, ds1, bands0, bands1, nd0, nd1, grid, warnings)
    f = max(1.0, max(grid.height, grid.width) / float(check_side))
    x0, x1, valid = src.decimated(max(int(grid.height / f), 1), max(int(grid.width / f), 1))
    _check_not_empty(x0, x1)
    if not valid.any():
        raise InputError("FIRST and SECOND do not overlap: no pixel is valid (not nodata) in both.")
    for arr, label in ((x0, "FIRST"), (x1, "SECOND")):
        v = arr[:, valid]
        if not (v.max(axis=1) > v.min(axis=1)).any():
            raise InputError(f"{label} is constant where both images are valid (value "
                             f"{float(v.min()):g}); there is nothing to learn from.")
    return src


class FrameWriter:
    """The N+1 frame GeoTIFFs written block by block (windowed ``WriteArray``), complete or not at all.

    All files are created up front in a temporary folder inside ``folder``; ``write(row, col, block)``
    writes a (N+1, C, h, w) float32 block (NaN = nodata) into every file; ``commit()`` sets the nodata
    and the statistics and moves the files into place exactly as ``write_frames`` does; ``abort()`` (or
    leaving a ``with`` block by an exception) removes them and leaves ``folder`` as it was.  The folder is
    checked as ``write_frames`` does (``plan_frame_folder``; ``notes`` says what will be replaced).  Same file
    contents as ``write_frames`` (grid, CRS, nodata, data type, times, metadata), except that for an
    integer type without a nodata value the value reserved for nodata is chosen up front."""

    def __init__(self, folder, grid, times, count, first_path=None, overwrite=True, protect=()):
        self.grid, self.count = grid, int(count)
        if times is not None and len(times) != self.count:
            raise InputError(f"{self.count} frames but {len(times)} times.")
        plan = plan_frame_folder(folder, self.count, protect=protect, overwrite=overwrite)
        self.folder, self.names, self.notes = plan.folder, plan.names, plan.notes
        self.created = plan.create()
        self.tmp = _temp_dir(self.folder, FRAMES_TMP)
        c = grid.band_count or 1
        self.bands = c
        dtype = grid.gdal_dtype
        self.gtype = dtype if (dtype in _INT_RANGES or dtype in _FLOAT_TYPES) else gdal.GDT_Float32
        nodata = list(grid.nodata) + [None] * (c - len(grid.nodata))
        self.declared = [nd is not None for nd in nodata]
        if self.gtype in _INT_RANGES:
            lo, hi = _INT_RANGES[self.gtype]
            nodata = [nd if nd is not None else (hi if lo == 0 else lo) for nd in nodata]
        self.nodata = nodata
        self.invalid_seen = [False] * c
        self.stats = np.zeros((self.count, c, 5), np.float64)   # n, sum, sumsq, min, max
        self.stats[:, :, 3], self.stats[:, :, 4] = np.inf, -np.inf
        self.warnings = []
        opts = ["COMPRESS=DEFLATE", "TILED=YES", "BIGTIFF=IF_SAFER"]
        if c >= 3 and grid.color_interps[:3] == [gdal.GCI_RedBand, gdal.GCI_GreenBand, gdal.GCI_BlueBand] \
                and self.gtype == gdal.GDT_Byte:
            opts.append("PHOTOMETRIC=RGB")
        self.datasets = []
        try:
            for j, nm in enumerate(self.names):
                ds = gdal.GetDriverByName("GTiff").Create(os.path.join(self.tmp, nm), grid.width, grid.height,
                                                          c, self.gtype, opts)
                if grid.geotransform:
                    ds.SetGeoTransform(grid.geotransform)
                if grid.crs_wkt:
                    ds.SetProjection(grid.crs_wkt)
                md = _frame_metadata(times, j, self.count, first_path)
                for k, v in md.items():
                    ds.SetMetadataItem(k, v)
                for i in range(c):
                    if i < len(grid.band_names) and grid.band_names[i]:
                        ds.GetRasterBand(i + 1).SetDescription(grid.band_names[i])
                self.datasets.append(ds)
        except BaseException:
            self.abort()
            raise

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is not None:
            self.abort()
        return False

    def write(self, row, col, block):
        block = np.asarray(block, np.float32)
        if block.ndim != 4 or block.shape[0] != self.count or block.shape[1] != self.bands:
            raise InputError(f"A block must be ({self.count}, {self.bands}, h, w); got {block.shape}.")
        grid = Grid(nodata=self.nodata, gdal_dtype=self.gtype, band_names=self.grid.band_names)
        for j, ds in enumerate(self.datasets):
            arr, _gt, _nd = _encode(block[j], grid, self.warnings)
            for i in range(self.bands):
                vals = arr[i]
                invalid = ~np.isfinite(block[j, i])
                if invalid.any():
                    self.invalid_seen[i] = True
                ok = ~invalid
                if vals.dtype.kind == "f":
                    ok &= np.isfinite(vals)
                if self.nodata[i] is not None and np.isfinite(self.nodata[i]):
                    ok &= vals != self.nodata[i]
                if ok.any():
                    v = vals[ok].astype(np.float64)
                    s = self.stats[j, i]
                    s[0] += v.size
                    s[1] += v.sum()
                    s[2] += (v * v).sum()
                    s[3] = min(s[3], v.min())
                    s[4] = max(s[4], v.max())
                try:
                    ds.GetRasterBand(i + 1).WriteArray(vals, xoff=int(col), yoff=int(row))
                except RuntimeError as e:
                    raise _write_error(self.folder, e) from e

    def _close(self):
        for j, ds in enumerate(self.datasets):
            for i in range(self.bands):
                b = ds.GetRasterBand(i + 1)
                nd = self.nodata[i]
                if self.declared[i] or self.invalid_seen[i]:
                    b.SetNoDataValue(float(nd) if nd is not None else float("nan"))
                n, sm, sq, mn, mx = self.stats[j, i]
                if n > 0:
                    mean = sm / n
                    b.SetStatistics(float(mn), float(mx), float(mean), float(np.sqrt(max(sq / n - mean * mean, 0.0))))
            ds.FlushCache()
        self.datasets = []

    def abort(self):
        # closing flushes what is cached; after a failed write that fails again, in a destructor: keep its
        # "Exception ignored" report off the user's screen (the files are removed next)
        import sys

        hook, sys.unraisablehook = sys.unraisablehook, lambda _report: None
        try:
            self.datasets = []
        finally:
            sys.unraisablehook = hook
        _discard(self.tmp, self.folder, self.created)

    def commit(self):
        """Close the files and move them into place; returns the paths in order."""
        try:
            self._close()
        except BaseException as e:
            self.abort()
            if isinstance(e, (OSError, RuntimeError)):
                raise _write_error(self.folder, e) from e
            raise
        try:
            _move_into_place(self.tmp, self.folder, self.names, self.created)
        except (OSError, RuntimeError) as e:
            raise _write_error(self.folder, e) from e
        return [os.path.join(self.folder, nm) for nm in self.names]
