"""The advection field as physical velocities: point rows, GeoPackage, CF-NetCDF and a PNG plot.

Fields come as float32 (N, 2, H, W): for step j the pixel displacement from t_j to t_j+1, channel 0
along +columns, channel 1 along +rows (down). Velocities are in metres per second along the map's
x and y axes (pixel size from the geotransform, rotation included; metres on the ellipsoid for a
geographic CRS). Without a georeference, positions are pixels with y up (as QGIS shows such
rasters) and velocities pixels per second.
"""
import math
import os
import tempfile
from datetime import datetime, timezone

import numpy as np
from osgeo import gdal, ogr

from .raster_io import InputError

gdal.UseExceptions()
ogr.UseExceptions()

FIELD_NAMES = ("step", "time", "u", "v", "speed", "direction")


def _utc(t):
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def step_seconds(times):
    """Duration in seconds of each step from N+1 (or N) times."""
    ts = [_utc(t) for t in times]
    secs = [(b - a).total_seconds() for a, b in zip(ts[:-1], ts[1:])]
    if not secs or min(secs) <= 0:
        raise InputError("Times must increase from one step to the next.")
    return secs


def sample_indices(n, spacing):
    """Pixel indices of the sample locations along an axis: centres of ``spacing``-pixel cells."""
    spacing = max(1, int(spacing))
    return np.arange(spacing // 2, n, spacing)


def _sample(fields, rows, cols):
    """(..., H, W) → (..., len(rows), len(cols)) at pixel rows × cols."""
    return fields[..., rows, :][..., cols]


def _sample_valid(fields, rows, cols, valid=None):
    """``_sample``, NaN where ``valid`` (H, W) is False."""
    out = _sample(fields, rows, cols)
    if valid is not None:
        out = np.where(_sample(np.asarray(valid, bool), rows, cols), out, np.float32(np.nan))
    return out


class BlockSamples:
    """An array (*lead, H, W) that arrives block by block (``iter_blocks`` order or any other), kept only
    at pixel ``rows`` × ``cols``: ``values`` (*lead, len(rows), len(cols)), NaN until a block covers a
    sample.  Bounded memory for whole scenes: nothing of the raster's size is held."""

    def __init__(self, lead, rows, cols, dtype=np.float32):
        self.rows, self.cols = np.asarray(rows), np.asarray(cols)
        self.values = np.full(tuple(lead) + (len(self.rows), len(self.cols)), np.nan, dtype)

    def add(self, row, col, block, keep=None):
        """Take the samples inside ``block`` (*lead, h, w) whose top-left pixel is (row, col); where
        ``keep`` (h, w) is False they become NaN."""
        bh, bw = block.shape[-2:]
        ri = np.nonzero((self.rows >= row) & (self.rows < row + bh))[0]
        ci = np.nonzero((self.cols >= col) & (self.cols < col + bw))[0]
        if ri.size and ci.size:
            r, c = self.rows[ri] - row, self.cols[ci] - col
            sub = _sample(block, r, c)
            if keep is not None:
                sub = np.where(_sample(keep, r, c), sub, np.nan)
            self.values[..., ri[0]:ri[-1] + 1, ci[0]:ci[-1] + 1] = sub


def _geod(grid):
    import warnings
    with warnings.catch_warnings():  # Debian's pyproj warns about PROJ data; Geod does not need it
        warnings.simplefilter("ignore")
        from pyproj import Geod
    srs = grid.srs()
    a = srs.GetSemiMajor()
    rf = srs.GetInvFlattening()
    return Geod(a=a, rf=rf) if rf and rf > 0 else Geod(a=a, b=a)


def displacement_to_velocity(du, dv, cols, rows, grid, seconds):
    """(x, y, u, v) for pixel displacements du (columns) and dv (rows) at pixel indices cols, rows.

    x, y are map coordinates of the pixel centres; u, v are per second, in metres for projected and
    geographic CRSs (map units when there is no CRS, pixels without a georeference).
    """
    gt = grid.effective_geotransform
    pc, pr = cols + 0.5, rows + 0.5
    x = gt[0] + pc * gt[1] + pr * gt[2]
    y = gt[3] + pc * gt[4] + pr * gt[5]
    dx = du * gt[1] + dv * gt[2]
    dy = du * gt[4] + dv * gt[5]
    if grid.georeferenced and grid.is_geographic():
        geod = _geod(grid)
        lon2, lat2 = x + dx, y + dy
        az, _, dist = geod.inv(np.asarray(x, np.float64).ravel(), np.asarray(y, np.float64).ravel(),
                               np.asarray(lon2, np.float64).ravel(), np.asarray(lat2, np.float64).ravel())
        az = np.radians(np.asarray(az).reshape(np.shape(x)))
        dist = np.asarray(dist).reshape(np.shape(x))
        dx, dy = dist * np.sin(az), dist * np.cos(az)
    else:
        srs = grid.srs()
        if srs is not None and srs.IsProjected():
            dx, dy = dx * srs.GetLinearUnits(), dy * srs.GetLinearUnits()
    return x, y, dx / seconds, dy / seconds


def describe_motion(dx, dy, length, grid, seconds):
    """A sentence for the log: displacements of ``length`` pixels on average and (dx, dy) net over
    ``seconds`` as speeds, the net one with the direction it goes, clockwise from grid north (at the scene's
    centre; pixels over the interval from the image's top without a georeference)."""
    if not grid.georeferenced:
        return f"{length:.1f} px over the interval on average; net {describe_shift(dx, dy, grid, seconds)}"
    col, row = np.array([grid.width / 2 - 0.5]), np.array([grid.height / 2 - 0.5])

    def speed(du, dv):
        _x, _y, u, v = displacement_to_velocity(np.array([du], np.float64), np.array([dv], np.float64), col, row,
                                                grid, seconds)
        return float(u[0]), float(v[0])

    mean = 0.5 * (math.hypot(*speed(length, 0.0)) + math.hypot(*speed(0.0, length)))  # pixels may not be square
    return f"{mean:.2f} {velocity_units(grid)} on average; net {describe_shift(dx, dy, grid, seconds)}"


def describe_shift(dx, dy, grid, seconds):
    """A displacement (dx, dy) px over ``seconds`` as a speed and the direction it goes, clockwise from grid
    north at the scene's centre (px towards a direction from the image's top without a georeference)."""
    if not grid.georeferenced:
        towards = math.degrees(math.atan2(dx, -dy)) % 360.0
        return f"{math.hypot(dx, dy):.1f} px towards {towards:.0f}° (clockwise from the image's top)"
    col, row = np.array([grid.width / 2 - 0.5]), np.array([grid.height / 2 - 0.5])
    _x, _y, u, v = displacement_to_velocity(np.array([dx], np.float64), np.array([dy], np.float64), col, row,
                                            grid, seconds)
    u, v = float(u[0]), float(v[0])
    towards = math.degrees(math.atan2(u, v)) % 360.0
    return f"{math.hypot(u, v):.2f} {velocity_units(grid)} towards {towards:.0f}° (clockwise from grid north)"


def velocity_units(grid):
    if not grid.georeferenced:
        return "pixel s-1"
    if not grid.crs_wkt:
        return "map units s-1"
    return "m s-1"


def field_arrays(fields, grid, times, spacing, valid=None):
    """Column arrays (x, y, step, u, v, speed, direction, and ``times``) of the field sampled every
    ``spacing`` pixels; invalid pixels (NaN field or ``valid`` False) are skipped."""
    fields = np.asarray(fields, np.float32)
    if fields.ndim != 4 or fields.shape[1] != 2:
        raise InputError(f"Fields must be (N, 2, H, W); got shape {fields.shape}.")
    n, _, h, w = fields.shape
    if (h, w) != (grid.height, grid.width):
        raise InputError(f"Fields are {w} × {h} pixels but the grid is {grid.width} × {grid.height}.")
    rows, cols = sample_indices(h, spacing), sample_indices(w, spacing)
    return sampled_field_arrays(_sample_valid(fields, rows, cols, valid), rows, cols, grid, times)


def sampled_field_arrays(samples, rows, cols, grid, times):
    """``field_arrays`` for a field already sampled at pixel ``rows`` × ``cols`` ((N, 2, len(rows),
    len(cols)), NaN where invalid), as exportfield gathers it while the field streams."""
    n = samples.shape[0]
    secs = step_seconds(times)
    if len(secs) < n:
        raise InputError(f"{n} field steps but only {len(times)} times.")
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    out = {k: [] for k in ("x", "y", "step", "u", "v", "speed", "direction")}
    for j in range(n):
        du = samples[j, 0].astype(np.float64)
        dv = samples[j, 1].astype(np.float64)
        ok = np.isfinite(du) & np.isfinite(dv)
        x, y, u, v = displacement_to_velocity(du[ok], dv[ok], cc[ok].astype(np.float64),
                                              rr[ok].astype(np.float64), grid, secs[j])
        out["x"].append(x)
        out["y"].append(y)
        out["step"].append(np.full(x.shape, j, np.int64))
        out["u"].append(u)
        out["v"].append(v)
        out["speed"].append(np.hypot(u, v))
        out["direction"].append(np.degrees(np.arctan2(u, v)) % 360.0)
    arrays = {k: np.concatenate(v) if v else np.zeros(0) for k, v in out.items()}
    arrays["times"] = [_utc(t) for t in times[:n]]
    return arrays


def rows_of(arrays):
    """One dict per sample location per step: x, y, step, time (t_j, UTC), u, v, speed, direction.

    u, v: m/s along the map's x and y axes; speed m/s; direction degrees clockwise from grid north,
    the way the motion goes (atan2(u, v))."""
    ts = arrays["times"]
    a = arrays
    return [dict(x=float(x), y=float(y), step=int(s), time=ts[int(s)], u=float(u), v=float(v),
                 speed=float(sp), direction=float(d))
            for x, y, s, u, v, sp, d in zip(a["x"], a["y"], a["step"], a["u"], a["v"], a["speed"],
                                            a["direction"])]


def field_rows(fields, grid, times, spacing, valid=None):
    """``rows_of(field_arrays(...))``: the field sampled every ``spacing`` pixels as dicts."""
    return rows_of(field_arrays(fields, grid, times, spacing, valid))


def field_summary(rows):
    """Mean velocity vector, its speed and direction, and the mean speed over rows."""
    if not rows:
        return dict(u=float("nan"), v=float("nan"), speed=float("nan"), direction=float("nan"),
                    mean_speed=float("nan"))
    u = float(np.mean([r["u"] for r in rows]))
    v = float(np.mean([r["v"] for r in rows]))
    return dict(u=u, v=v, speed=math.hypot(u, v), direction=math.degrees(math.atan2(u, v)) % 360.0,
                mean_speed=float(np.mean([r["speed"] for r in rows])))


def _tmp_beside(path, suffix):
    folder = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=suffix, dir=folder)
    os.close(fd)
    os.remove(tmp)
    return tmp


def _remove(path):
    for p in (path, path + "-wal", path + "-shm", path + "-journal", path + ".aux.xml"):
        try:
            os.remove(p)
        except OSError:
            pass


def _columns(rows):
    """Column arrays and per-row time strings from a list of row dicts or a ``field_arrays`` dict."""
    if isinstance(rows, dict):
        cols = {k: np.asarray(rows[k]) for k in ("x", "y", "step", "u", "v", "speed", "direction")}
        step_times = {j: _utc(t) for j, t in enumerate(rows["times"])}
        cols["tkey"] = cols["step"].astype(np.int64)
        return cols, step_times
    cols = {k: np.array([r[k] for r in rows], np.float64) for k in ("x", "y", "u", "v", "speed", "direction")}
    cols["step"] = np.array([int(r["step"]) for r in rows], np.int64)
    uniq = {}
    keys = np.empty(len(rows), np.int64)
    for i, r in enumerate(rows):
        keys[i] = uniq.setdefault(_utc(r["time"]), len(uniq))
    cols["tkey"] = keys
    return cols, {k: t for t, k in uniq.items()}


def _iso(t):
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        text += f".{t.microsecond // 1000:03d}"
    return text + "Z"


def write_field_gpkg(rows, grid, path, layer_name="advection_field", progress=None, is_canceled=None):
    """Write rows as a GeoPackage point layer (step int, time datetime, u, v, speed, direction real).

    ``rows``: the list of ``field_rows`` or the column dict of ``field_arrays`` (lighter for big
    grids). The rows go through an in-memory CSV and ``gdal.VectorTranslate`` (C speed: about 10x
    faster than feature-by-feature Python). Written to a temporary file beside ``path`` and renamed
    into place when complete; on failure or cancel the temporary file is removed and an existing
    ``path`` is left as it was. ``progress(done, total)`` and ``is_canceled()`` are optional.
    """
    import io
    import uuid

    path = str(path)
    cols, key_times = _columns(rows)
    n = len(cols["x"])
    base = f"/vsimem/inbetween_field_{uuid.uuid4().hex}"
    tmp = _tmp_beside(path, ".gpkg")
    ds = None
    def canceled():
        return is_canceled is not None and is_canceled()

    try:
        if canceled():
            raise InputError("Canceled; the field layer was not written.")
        buf = io.StringIO()
        buf.write("x,y,step,time,u,v,speed,direction\n")
        data = np.column_stack([np.asarray(cols[k], np.float64)
                                for k in ("x", "y", "u", "v", "speed", "direction")]) if n else None
        for key in (np.unique(cols["tkey"]) if n else []):
            sel = cols["tkey"] == key
            for step in np.unique(cols["step"][sel]):
                both = sel & (cols["step"] == step)
                fmt = f"%.17g,%.17g,{int(step)},{_iso(key_times[int(key)])},%.17g,%.17g,%.17g,%.17g"
                np.savetxt(buf, data[both], fmt=fmt)
        gdal.FileFromMemBuffer(base + ".csv", buf.getvalue().encode())
        gdal.FileFromMemBuffer(base + ".csvt", b'"Real","Real","Integer","DateTime","Real","Real","Real","Real"')
        src = gdal.OpenEx(base + ".csv", gdal.OF_VECTOR,
                          open_options=["X_POSSIBLE_NAMES=x", "Y_POSSIBLE_NAMES=y", "KEEP_GEOM_COLUMNS=NO",
                                        "AUTODETECT_TYPE=NO"])

        def callback(pct, _msg, _data):
            if is_canceled is not None and is_canceled():
                return 0
            if progress is not None:
                progress(int(pct * n), n)
            return 1

        srs = grid.srs() if grid.georeferenced else None
        ds = gdal.VectorTranslate(tmp, src, format="GPKG", layerName=layer_name, geometryType="POINT",
                                  dstSRS=srs.ExportToWkt() if srs is not None else None, reproject=False,
                                  layerCreationOptions=["SPATIAL_INDEX=YES", "FID=fid"],
                                  callback=callback)
        src = None
        if ds is None:
            if is_canceled is not None and is_canceled():
                raise InputError("Canceled; the field layer was not written.")
            raise OSError(f"Could not write the field layer {path}: {gdal.GetLastErrorMsg()}")
        ds.FlushCache()
        ds = None
        if canceled():
            raise InputError("Canceled; the field layer was not written.")
        os.replace(tmp, path)
        if progress is not None:
            progress(n, n)
    except RuntimeError as e:
        ds = None
        _remove(tmp)
        if is_canceled is not None and is_canceled():
            raise InputError("Canceled; the field layer was not written.") from None
        raise OSError(f"Could not write the field layer {path}: {e}") from None
    except BaseException:
        ds = None
        _remove(tmp)
        raise
    finally:
        for ext in (".csv", ".csvt"):
            gdal.Unlink(base + ext) if gdal.VSIStatL(base + ext) else None
    return path


def netcdf_spacing(h, w, spacing=1, max_cells=1_000_000, warnings=None):
    """The pixel spacing of the NetCDF field of an H × W grid: ``spacing``, raised when the grid would
    still exceed ``max_cells`` cells per step (a note then goes to ``warnings``, a list, when given)."""
    spacing = max(1, int(spacing))
    if max_cells and math.ceil(h / spacing) * math.ceil(w / spacing) > max_cells:
        spacing = int(math.ceil(math.sqrt(h * w / max_cells)))
        while math.ceil(h / spacing) * math.ceil(w / spacing) > max_cells:
            spacing += 1
        if warnings is not None:
            warnings.append(f"The NetCDF field keeps every {spacing}th pixel to stay within "
                            f"{max_cells} cells per step.")
    return spacing


def write_field_netcdf(fields, grid, times, path, spacing=1, valid=None, max_cells=1_000_000,
                       warnings=None):
    """CF-1.7 NetCDF with x/y/time coordinates and u, v ("x-/y-component of velocity", m s-1).

    QGIS opens it as a mesh layer (MDAL) with a vector dataset group over the N step start times.
    ``spacing`` > 1 keeps every spacing-th pixel (cell centres) to keep large grids small; when
    the grid would still exceed ``max_cells`` cells per step the spacing is raised (``netcdf_spacing``;
    a note goes to ``warnings``, a list, when given). Rotated geotransforms raise InputError.
    The field is sampled first and written by ``write_sampled_field_netcdf``.
    """
    fields = np.asarray(fields, np.float32)
    h, w = fields.shape[-2:]
    spacing = netcdf_spacing(h, w, spacing, max_cells, warnings)
    rows, cols = sample_indices(h, spacing), sample_indices(w, spacing)
    return write_sampled_field_netcdf(_sample_valid(fields, rows, cols, valid), rows, cols, grid, times, path)


def check_north_up(grid):
    """The NetCDF field has x/y coordinate axes: a rotated geotransform raises InputError (called before
    any work by exportfield, so a run that cannot write its NetCDF stops at once)."""
    gt = grid.effective_geotransform
    if gt[2] != 0 or gt[4] != 0:
        raise InputError("The grid is rotated; the NetCDF field needs a north-up grid "
                         "(warp the rasters north-up first, e.g. gdalwarp, or leave OUTPUT_NETCDF empty).")


def write_sampled_field_netcdf(samples, rows, cols, grid, times, path):
    """``write_field_netcdf`` for a field already sampled at pixel rows × cols of ``grid``: ``samples``
    (N, 2, len(rows), len(cols)) pixel displacements per step, NaN where invalid (e.g. gathered block
    by block while the field streams, with rows/cols from ``sample_indices(H, netcdf_spacing(...))``).
    The cells are centred on the sampled pixels. Rotated geotransforms raise InputError."""
    samples = np.asarray(samples, np.float32)
    rows, cols = np.asarray(rows), np.asarray(cols)
    if samples.ndim != 4 or samples.shape[1:] != (2, len(rows), len(cols)):
        raise InputError(f"Sampled fields must be (N, 2, {len(rows)}, {len(cols)}); got shape {samples.shape}.")
    if (rows.size and not 0 <= rows.min() <= rows.max() < grid.height) or \
            (cols.size and not 0 <= cols.min() <= cols.max() < grid.width):
        raise InputError(f"Sample rows/columns outside the {grid.width} × {grid.height} grid.")
    n = samples.shape[0]
    check_north_up(grid)
    gt = grid.effective_geotransform
    secs = step_seconds(times)
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    u = np.full((n, len(rows), len(cols)), np.nan, np.float32)
    v = np.full_like(u, np.nan)
    for j in range(n):
        du = samples[j, 0].astype(np.float64)
        dv = samples[j, 1].astype(np.float64)
        _, _, uj, vj = displacement_to_velocity(du, dv, cc.astype(np.float64), rr.astype(np.float64),
                                                grid, secs[j])
        u[j], v[j] = uj, vj
    xs = gt[0] + (cols + 0.5) * gt[1]
    ys = gt[3] + (rows + 0.5) * gt[5]
    if ys.size > 1 and ys[1] < ys[0]:  # store y ascending (south to north), as CF readers expect
        ys, u, v = ys[::-1], u[:, ::-1], v[:, ::-1]
    t0 = datetime(1970, 1, 1, tzinfo=timezone.utc)
    tvals = np.array([(_utc(t) - t0).total_seconds() for t in times[:n]], np.float64)
    units = velocity_units(grid)
    srs = grid.srs() if grid.georeferenced else None
    geographic = bool(srs is not None and srs.IsGeographic())

    path = str(path)
    tmp = _tmp_beside(path, ".nc")
    try:
        drv = gdal.GetDriverByName("netCDF")
        ds = drv.CreateMultiDimensional(tmp, [], ["FORMAT=NC4"])
        rg = ds.GetRootGroup()
        for k, val in (("Conventions", "CF-1.7"), ("title", "In-between advection field"),
                       ("source", "In-between QGIS plugin"),
                       ("history", f"{datetime.now(timezone.utc).isoformat()} created")):
            _attr_str(rg, k, val)
        dt_ = rg.CreateDimension("time", gdal.DIM_TYPE_TEMPORAL, None, n)
        dy = rg.CreateDimension("y", gdal.DIM_TYPE_HORIZONTAL_Y, None, len(ys))
        dx = rg.CreateDimension("x", gdal.DIM_TYPE_HORIZONTAL_X, None, len(xs))
        f64 = gdal.ExtendedDataType.Create(gdal.GDT_Float64)
        f32 = gdal.ExtendedDataType.Create(gdal.GDT_Float32)

        tv = rg.CreateMDArray("time", [dt_], f64)
        tv.Write(tvals)
        _attr_str(tv, "standard_name", "time")
        _attr_str(tv, "long_name", "time")
        _attr_str(tv, "units", "seconds since 1970-01-01 00:00:00")
        _attr_str(tv, "calendar", "gregorian")
        _attr_str(tv, "axis", "T")
        xv = rg.CreateMDArray("x", [dx], f64)
        xv.Write(np.asarray(xs, np.float64))
        yv = rg.CreateMDArray("y", [dy], f64)
        yv.Write(np.asarray(ys, np.float64))
        if geographic:
            _attr_str(xv, "standard_name", "longitude")
            _attr_str(xv, "units", "degrees_east")
            _attr_str(yv, "standard_name", "latitude")
            _attr_str(yv, "units", "degrees_north")
        else:
            _attr_str(xv, "standard_name", "projection_x_coordinate")
            _attr_str(yv, "standard_name", "projection_y_coordinate")
            lu = "m" if srs is not None and srs.IsProjected() and srs.GetLinearUnits() == 1 else "1"
            _attr_str(xv, "units", lu)
            _attr_str(yv, "units", lu)
        _attr_str(xv, "long_name", "x coordinate of projection")
        _attr_str(yv, "long_name", "y coordinate of projection")
        _attr_str(xv, "axis", "X")
        _attr_str(yv, "axis", "Y")
        if srs is not None:
            crs = rg.CreateMDArray("crs", [], gdal.ExtendedDataType.Create(gdal.GDT_Int32))
            crs.Write(np.array(0, np.int32))
            _attr_str(crs, "spatial_ref", srs.ExportToWkt())
            _attr_str(crs, "crs_wkt", srs.ExportToWkt())
            for k, val in _cf_grid_mapping(srs).items():
                _attr_str(crs, k, val) if isinstance(val, str) else _attr_num(crs, k, val)
        # MDAL names the mesh's vector group after what follows "x-component of": the unit shows in its legend
        shown = {"m s-1": "m/s", "pixel s-1": "pixels/s"}.get(units, units)
        for name, arr, long_name in (("u", u, f"x-component of velocity ({shown})"),
                                     ("v", v, f"y-component of velocity ({shown})")):
            var = rg.CreateMDArray(name, [dt_, dy, dx], f32, ["COMPRESS=DEFLATE", "ZLEVEL=4"])
            var.SetNoDataValueDouble(float("nan"))
            var.Write(np.ascontiguousarray(arr))
            _attr_str(var, "long_name", long_name)
            _attr_str(var, "units", units)
            if srs is not None and not srs.IsGeographic() and units == "m s-1":
                _attr_str(var, "comment", f"along the map's {name == 'u' and 'x' or 'y'} axis")
            if srs is not None:
                _attr_str(var, "grid_mapping", "crs")
        ds = None
        os.replace(tmp, path)
    except BaseException:
        ds = None
        _remove(tmp)
        raise
    return path


def _attr_str(obj, name, value):
    a = obj.CreateAttribute(name, [], gdal.ExtendedDataType.CreateString())
    a.Write(str(value))


def _attr_num(obj, name, value):
    a = obj.CreateAttribute(name, [], gdal.ExtendedDataType.Create(gdal.GDT_Float64))
    a.Write(float(value))


def _cf_grid_mapping(srs):
    """A minimal CF grid_mapping description (name only; the full WKT is in crs_wkt)."""
    if srs.IsGeographic():
        return {"grid_mapping_name": "latitude_longitude",
                "semi_major_axis": srs.GetSemiMajor(), "inverse_flattening": srs.GetInvFlattening()}
    out = {"semi_major_axis": srs.GetSemiMajor(), "inverse_flattening": srs.GetInvFlattening()}
    if srs.GetAttrValue("PROJECTION") == "Transverse_Mercator":
        out.update(grid_mapping_name="transverse_mercator",
                   scale_factor_at_central_meridian=srs.GetNormProjParm("scale_factor", 1.0),
                   longitude_of_central_meridian=srs.GetNormProjParm("central_meridian", 0.0),
                   latitude_of_projection_origin=srs.GetNormProjParm("latitude_of_origin", 0.0),
                   false_easting=srs.GetNormProjParm("false_easting", 0.0),
                   false_northing=srs.GetNormProjParm("false_northing", 0.0))
    return out


def plot_sample_indices(h, w, max_grid=120):
    """Pixel rows and columns where the plot samples an H × W field: every ``ceil(max(H, W) / max_grid)``
    pixels (cell centres), at most ``max_grid`` along the longer side."""
    stride = max(1, int(math.ceil(max(h, w) / max_grid)))
    return sample_indices(h, stride), sample_indices(w, stride)


def background_indices(h, w, max_side=1600):
    """Pixel rows and columns of the plot's background for an H × W image: every
    ``ceil(max(H, W) / max_side)``-th pixel from the first (the figure is ~800 px wide anyway)."""
    shrink = max(1, int(math.ceil(max(h, w) / max_side)))
    return np.arange(0, h, shrink), np.arange(0, w, shrink)


def plot_field_png(fields, background, grid, path, step=None, times=None, title=None, density=1.2,
                   max_grid=120, dpi=110, valid=None):
    """Streamlines of the mean (or ``step``) field over a background image, saved as PNG (Agg).

    Drawn in map coordinates with the streamline colour in m/s (see ``plot_sampled_field_png``). No streamlines where the background is NaN
    (in any band) or ``valid`` (H, W) is False. The field is sampled at ``plot_sample_indices``, the
    background at ``background_indices``, and drawn by ``plot_sampled_field_png``.
    """
    fields = np.asarray(fields, np.float32)
    h, w = fields.shape[-2:]
    rows, cols = plot_sample_indices(h, w, max_grid)
    keep = np.ones((len(rows), len(cols)), bool)
    small = None
    if background is not None:
        bg = np.asarray(background, np.float32)
        bg = bg.reshape((-1,) + bg.shape[-2:])
        keep &= np.isfinite(_sample(bg, rows, cols)).all(axis=0)
        small = _sample(bg, *background_indices(*bg.shape[-2:]))
    if valid is not None:
        keep &= _sample(np.asarray(valid, bool), rows, cols)
    sampled = np.where(keep, _sample(fields, rows, cols), np.float32(np.nan))
    return plot_sampled_field_png(sampled, rows, cols, (h, w), small, path, step=step, times=times,
                                  title=title, density=density, dpi=dpi, grid=grid)


def _map_axes(grid, rows, cols, shape, seconds, U, V):
    """For a north-up georeferenced ``grid``: (extent, xs, ys, u, v, x label, y label, speed label) with the
    sample positions in map coordinates (increasing, as streamplot needs) and u, v in m/s; else None."""
    if grid is None or not grid.georeferenced or seconds is None:
        return None
    gt = grid.effective_geotransform
    if gt[2] != 0 or gt[4] != 0:
        return None  # rotated: streamlines need an axis-aligned grid
    h, w = shape
    cc, rr = np.meshgrid(cols.astype(np.float64), rows.astype(np.float64))
    _x, _y, u, v = displacement_to_velocity(U, V, cc, rr, grid, seconds)
    xs, ys = gt[0] + (cols + 0.5) * gt[1], gt[3] + (rows + 0.5) * gt[5]
    if gt[1] < 0:
        xs, u, v = xs[::-1], u[:, ::-1], v[:, ::-1]
    if gt[5] < 0:
        ys, u, v = ys[::-1], u[::-1], v[::-1]
    x0, x1 = sorted((gt[0], gt[0] + w * gt[1]))
    y0, y1 = sorted((gt[3], gt[3] + h * gt[5]))
    srs = grid.srs()
    if srs is not None and srs.IsGeographic():
        xlabel, ylabel = "longitude (°)", "latitude (°)"
    else:
        unit = srs.GetLinearUnitsName() if srs is not None else "map units"
        xlabel, ylabel = f"x, easting ({unit})", f"y, northing ({unit})"
    speed = "speed (m/s)" if srs is not None else "speed (map units/s)"
    return (x0, x1, y0, y1), xs, ys, u, v, xlabel, ylabel, speed


def plot_sampled_field_png(sampled, rows, cols, shape, background, path, step=None, times=None, title=None,
                           density=1.2, dpi=110, grid=None):
    """``plot_field_png`` for a field already sampled at pixel rows × cols of an H × W (``shape``) grid:
    ``sampled`` (N, 2, len(rows), len(cols)) pixel displacements, NaN where no streamline may go (rows,
    cols from ``plot_sample_indices``); ``background`` None, (h, w) or (C, h, w) already reduced (from
    ``background_indices``), NaN = nodata, drawn over the whole H × W extent. With a north-up georeferenced
    ``grid`` and the ``times`` the plot is in map coordinates and the colour bar in m/s, like the layers;
    otherwise in pixels, the colour bar in pixels per step, and the plot says why. Written to a temp name,
    then moved."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    h, w = shape
    rows, cols = np.asarray(rows), np.asarray(cols)
    sampled = np.asarray(sampled, np.float32).astype(np.float64)  # (N, 2, r, c): sampled, then averaged
    if sampled.ndim != 4 or sampled.shape[1:] != (2, len(rows), len(cols)):
        raise InputError(f"Sampled fields must be (N, 2, {len(rows)}, {len(cols)}); got shape {sampled.shape}.")
    with np.errstate(all="ignore"):
        import warnings as _w
        with _w.catch_warnings():
            _w.simplefilter("ignore", RuntimeWarning)  # all-NaN cells stay NaN
            f = sampled[step] if step is not None else np.nanmean(sampled, axis=0)
    U, V = f[0], f[1]
    speed = np.hypot(U, V)
    bg = None
    if background is not None:
        bg = np.asarray(background, np.float32)
        if bg.ndim == 3:
            bg = bg[0] if bg.shape[0] in (1, 2) or bg.shape[0] > 4 else np.nanmean(bg[:3], axis=0)
    seconds = None
    if times is not None and len(times) > 1:
        secs = step_seconds(times)
        seconds = secs[step] if step is not None else float(np.mean(secs))
    on_map = _map_axes(grid, rows, cols, (h, w), seconds, U, V)
    fig = Figure(figsize=(7, 7 * h / max(w, 1) + 0.6), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if on_map is not None:
        extent, xs, ys, U, V, xlabel, ylabel, speed_label = on_map
        speed = np.hypot(U, V)
        image_extent = (extent[0], extent[1], extent[2], extent[3])  # row 0 at the top (north-up)
    else:
        xs, ys = cols + 0.5, rows + 0.5
        image_extent = (0, w, h, 0)
        xlabel, ylabel = "column (pixels)", "row (pixels)"
        why = "no georeference" if grid is None or not grid.georeferenced else (
            "rotated grid" if seconds is not None else "no times")
        speed_label = f"displacement per step (pixels; {why})"
    if bg is not None:
        lo, hi = np.nanpercentile(bg, [1, 99]) if np.isfinite(bg).any() else (0, 1)
        ax.imshow(bg, cmap="gray", vmin=lo, vmax=hi, extent=image_extent, interpolation="nearest")
    ok = np.isfinite(U) & np.isfinite(V)
    if ok.sum() >= 4 and np.nanmax(np.where(ok, speed, np.nan)) > 0:
        from matplotlib.colors import Normalize
        U = np.where(ok, U, 0.0)
        V = np.where(ok, V, 0.0)
        # pixel axes: y points down (image rows), so V (+rows) is drawn as given; map axes: y up, V north
        strm = ax.streamplot(xs, ys, np.ma.masked_where(~ok, U), np.ma.masked_where(~ok, V),
                             color=np.where(ok, speed, np.nan), cmap="plasma", density=density,
                             norm=Normalize(0.0, float(np.nanmax(np.where(ok, speed, np.nan)))),
                             linewidth=1.0, arrowsize=1.4)
        cb = fig.colorbar(strm.lines, ax=ax, fraction=0.046, pad=0.04)
        cb.set_label(speed_label)
    ax.set_xlim(image_extent[0], image_extent[1])
    ax.set_ylim(image_extent[2], image_extent[3])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title is None:
        if step is None:
            title = "Advection field, mean over steps"
        else:
            title = f"Advection field, step {step}"
            if times is not None and step < len(times):
                title += f" ({_utc(times[step]).strftime('%Y-%m-%d %H:%M:%S')} UTC)"
    ax.set_title(title)
    fig.tight_layout()
    path = str(path)
    tmp = _tmp_beside(path, ".png")
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
    return path
