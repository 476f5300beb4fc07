"""field_rows physics, GeoPackage, CF-NetCDF mesh and PNG on real files."""
import math
import os
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest


from osgeo import ogr, osr

from inbetween.processing_provider import field_io
from inbetween.processing_provider.raster_io import Grid, InputError

UTC = timezone.utc


def grid(epsg=32633, gt=(500000.0, 250.0, 0.0, 7000000.0, 0.0, -250.0), w=40, h=30):
    wkt = ""
    if epsg:
        s = osr.SpatialReference()
        s.ImportFromEPSG(epsg)
        wkt = s.ExportToWkt()
    return Grid(crs_wkt=wkt, geotransform=gt, width=w, height=h, nodata=[None], band_names=["b"],
                georeferenced=gt is not None)


def const_field(n, du, dv, h=30, w=40):
    f = np.zeros((n, 2, h, w), np.float32)
    f[:, 0], f[:, 1] = du, dv
    return f


def times(n, seconds=300):
    t0 = datetime(2016, 9, 28, 14, 45, tzinfo=UTC)
    return [t0 + j * timedelta(seconds=seconds) for j in range(n + 1)]


def test_utm_constant_displacement_exact():
    # 2 px right, 1 px down per 300 s step, 250 m pixels, north-up: u = +500/300, v = -250/300
    g = grid()
    rows = field_io.field_rows(const_field(3, 2.0, 1.0), g, times(3), spacing=10)
    assert len(rows) == 3 * 3 * 4  # rows 5,15,25 x cols 5,15,25,35 x 3 steps
    r = rows[0]
    assert r["x"] == 500000 + 5.5 * 250 and r["y"] == 7000000 - 5.5 * 250
    assert r["step"] == 0 and r["time"] == times(3)[0]
    assert r["u"] == pytest.approx(500 / 300) and r["v"] == pytest.approx(-250 / 300)
    assert r["speed"] == pytest.approx(math.hypot(500, 250) / 300)
    assert r["direction"] == pytest.approx(math.degrees(math.atan2(2, -1)))  # east-south-east, ~116.6
    assert {x["step"] for x in rows} == {0, 1, 2}
    assert rows[-1]["time"] == times(3)[2]
    # pure motion north (up = -rows) -> direction 0; west -> 270
    assert field_io.field_rows(const_field(1, 0, -1), g, times(1), 10)[0]["direction"] == pytest.approx(0)
    assert field_io.field_rows(const_field(1, -1, 0), g, times(1), 10)[0]["direction"] == pytest.approx(270)


def test_rotated_geotransform():
    # grid rotated 90°: columns go north, rows go east
    g = grid(gt=(500000.0, 0.0, 100.0, 7000000.0, 100.0, 0.0))
    r = field_io.field_rows(const_field(1, 1.0, 0.0), g, times(1, 100), 10)[0]
    assert r["u"] == pytest.approx(0) and r["v"] == pytest.approx(1.0)


def test_geographic_grid_uses_ellipsoid():
    g = grid(epsg=4326, gt=(10.0, 0.01, 0.0, 60.0, 0.0, -0.01))
    rows = field_io.field_rows(const_field(1, 1.0, 0.0), g, times(1, 100), 10)
    from pyproj import Geod  # after field_io imported it quietly (Debian's pyproj warns about PROJ data)
    r = rows[0]
    lon, lat = 10 + 5.5 * 0.01, 60 - 5.5 * 0.01
    assert (r["x"], r["y"]) == pytest.approx((lon, lat))
    _, _, dist = Geod(ellps="WGS84").inv(lon, lat, lon + 0.01, lat)
    assert r["speed"] == pytest.approx(dist / 100, rel=1e-9)
    assert dist == pytest.approx(557, abs=2)  # 0.01° of longitude at 60°N
    assert r["direction"] == pytest.approx(90, abs=0.01)
    r = field_io.field_rows(const_field(1, 0.0, -1.0), g, times(1, 100), 10)[0]
    assert r["v"] == pytest.approx(Geod(ellps="WGS84").inv(lon, lat, lon, lat + 0.01)[2] / 100)


def test_not_georeferenced_pixels_per_second_y_up():
    g = grid(epsg=None, gt=None)
    r = field_io.field_rows(const_field(1, 3.0, 4.0), g, times(1, 2), 10)[0]
    assert (r["x"], r["y"]) == (5.5, -5.5)
    assert (r["u"], r["v"], r["speed"]) == pytest.approx((1.5, -2.0, 2.5))
    assert field_io.velocity_units(g) == "pixel s-1"


def test_invalid_skipped_and_errors():
    g = grid()
    f = const_field(2, 1, 1)
    f[0, :, 5, 5] = np.nan
    valid = np.ones((30, 40), bool)
    valid[15, 15] = False
    rows = field_io.field_rows(f, g, times(2), 10, valid=valid)
    assert len(rows) == 2 * 12 - 1 - 2
    with pytest.raises(InputError, match="pixels but the grid"):
        field_io.field_rows(const_field(1, 1, 1, 10, 10), g, times(1), 10)
    with pytest.raises(InputError, match="increase"):
        field_io.field_rows(f, g, [times(2)[0]] * 3, 10)


def test_gpkg_fields_and_types(tmp_path):
    g = grid()
    rows = field_io.field_rows(const_field(2, 2.0, 1.0), g, times(2), 10)
    path = str(tmp_path / "field.gpkg")
    assert field_io.write_field_gpkg(rows, g, path) == path
    assert sorted(os.listdir(tmp_path)) == ["field.gpkg"]
    ds = ogr.Open(path)
    lyr = ds.GetLayerByName("advection_field")
    assert lyr.GetGeomType() == ogr.wkbPoint and lyr.GetFeatureCount() == len(rows)
    assert osr.SpatialReference(g.crs_wkt).IsSame(lyr.GetSpatialRef())
    defn = lyr.GetLayerDefn()
    types = {defn.GetFieldDefn(i).GetName(): defn.GetFieldDefn(i).GetType() for i in range(defn.GetFieldCount())}
    assert types == {"step": ogr.OFTInteger, "time": ogr.OFTDateTime, "u": ogr.OFTReal, "v": ogr.OFTReal,
                     "speed": ogr.OFTReal, "direction": ogr.OFTReal}
    feats = list(lyr)
    f = feats[-1]
    assert f.GetField("step") == 1
    assert f.GetFieldAsDateTime("time")[:6] == [2016, 9, 28, 14, 50, 0]
    assert f.GetField("u") == pytest.approx(500 / 300)
    assert f.GetGeometryRef().GetX() == rows[-1]["x"]
    ds = None


def test_gpkg_failure_leaves_existing_file(tmp_path):
    g = grid()
    path = tmp_path / "field.gpkg"
    path.write_bytes(b"old")
    bad = [dict(x=0.0, y=0.0, step=0, time=times(1)[0], u="oops", v=0.0, speed=0.0, direction=0.0)]
    with pytest.raises((ValueError, TypeError)):
        field_io.write_field_gpkg(bad, g, str(path))
    assert path.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["field.gpkg"]


def test_netcdf_opens_as_qgis_mesh_with_vectors_over_time(tmp_path, qgis_app):
    from qgis.core import QgsMeshLayer
    g = grid()
    n = 4
    path = str(tmp_path / "field.nc")
    field_io.write_field_netcdf(const_field(n, 2.0, 1.0), g, times(n), path)
    assert sorted(os.listdir(tmp_path)) == ["field.nc"]
    layer = QgsMeshLayer(path, "f", "mdal")
    assert layer.isValid()
    dp = layer.dataProvider()
    vectors = [i for i in range(dp.datasetGroupCount()) if dp.datasetGroupMetadata(i).isVector()]
    assert len(vectors) == 1
    gi = vectors[0]
    assert dp.datasetCount(gi) == n
    ext = layer.extent()
    assert ext.xMinimum() == pytest.approx(500000 + 125) and ext.yMaximum() == pytest.approx(7000000 - 125)
    rng = layer.temporalProperties().timeExtent()
    assert rng.begin().toPyDateTime() == times(n)[0].replace(tzinfo=None)
    assert rng.end().toPyDateTime() == times(n)[n - 1].replace(tzinfo=None)
    from qgis.core import QgsMeshDatasetIndex
    val = dp.datasetValue(QgsMeshDatasetIndex(gi, 1), 0)
    assert (val.x(), val.y()) == pytest.approx((500 / 300, -250 / 300), rel=1e-6)
    # spacing keeps it small
    path2 = str(tmp_path / "small.nc")
    field_io.write_field_netcdf(const_field(n, 2.0, 1.0), g, times(n), path2, spacing=10)
    small = QgsMeshLayer(path2, "s", "mdal")
    assert small.isValid() and small.dataProvider().vertexCount() == 12


def test_netcdf_geographic_and_pixel_grids(tmp_path, qgis_app):
    from qgis.core import QgsMeshLayer
    for g, name in ((grid(epsg=4326, gt=(10.0, 0.01, 0.0, 60.0, 0.0, -0.01)), "geo.nc"),
                    (grid(epsg=None, gt=None), "px.nc")):
        path = str(tmp_path / name)
        field_io.write_field_netcdf(const_field(2, 1.0, 0.0), g, times(2), path)
        layer = QgsMeshLayer(path, "f", "mdal")
        assert layer.isValid(), name
        dp = layer.dataProvider()
        assert any(dp.datasetGroupMetadata(i).isVector() for i in range(dp.datasetGroupCount()))


def test_plot_png(tmp_path):
    g = grid()
    yy, xx = np.mgrid[0:30, 0:40].astype(np.float32)
    f = np.stack([np.stack([-(yy - 15), xx - 20])] * 2) * 0.1  # rotation
    path = str(tmp_path / "field.png")
    field_io.plot_field_png(f, np.sin(xx / 5), g, path, times=times(2))
    field_io.plot_field_png(f, None, g, str(tmp_path / "step1.png"), step=1, times=times(2))
    from osgeo import gdal
    ds = gdal.Open(path)
    assert ds.RasterXSize > 300 and ds.RasterCount >= 3
    assert sorted(os.listdir(tmp_path)) == ["field.png", "step1.png"]


def test_plot_is_in_map_coordinates_and_metres_per_second():
    """The PNG speaks the layers' language: map x/y and m/s (pixels per step only without a georeference)."""
    rows, cols = np.array([5, 15, 25]), np.array([5, 15, 25, 35])
    du, dv = np.full((3, 4), 2.0), np.full((3, 4), 1.0)  # 2 px right, 1 px down per 300 s step
    extent, xs, ys, u, v, xlabel, ylabel, speed = field_io._map_axes(grid(), rows, cols, (30, 40), 300.0, du, dv)
    assert extent == (500000.0, 510000.0, 7000000.0 - 30 * 250, 7000000.0)
    assert list(xs) == [501375.0, 503875.0, 506375.0, 508875.0] and np.all(np.diff(ys) > 0)  # northing up
    np.testing.assert_allclose(u, 500 / 300)
    np.testing.assert_allclose(v, -250 / 300)  # one row down = south
    assert (xlabel, ylabel, speed) == ("x, easting (metre)", "y, northing (metre)", "speed (m/s)")
    assert field_io._map_axes(grid(epsg=None, gt=None), rows, cols, (30, 40), 300.0, du, dv) is None


def test_gpkg_from_arrays_and_netcdf_cap(tmp_path, qgis_app):
    from qgis.core import QgsMeshLayer
    g = grid()
    f = const_field(2, 2.0, 1.0)
    arrays = field_io.field_arrays(f, g, times(2), 5)
    rows = field_io.field_rows(f, g, times(2), 5)
    seen = []
    path = field_io.write_field_gpkg(arrays, g, str(tmp_path / "a.gpkg"), progress=lambda d, t: seen.append(t))
    ds = ogr.Open(path)
    lyr = ds.GetLayer(0)
    assert lyr.GetFeatureCount() == len(rows) == len(arrays["x"])
    last = list(lyr)[-1]
    assert last.GetField("step") == 1 and last.GetFieldAsDateTime("time")[4] == 50
    ds = None
    notes = []
    nc = field_io.write_field_netcdf(f, g, times(2), str(tmp_path / "cap.nc"), max_cells=100, warnings=notes)
    assert notes and "every" in notes[0]
    layer = QgsMeshLayer(nc, "c", "mdal")
    assert layer.isValid() and layer.dataProvider().vertexCount() <= 100


def test_gpkg_cancel_leaves_nothing(tmp_path):
    g = grid(w=400, h=300)
    f = const_field(1, 1.0, 1.0, 300, 400)
    arrays = field_io.field_arrays(f, g, times(1), 1)
    with pytest.raises(InputError, match="Canceled"):
        field_io.write_field_gpkg(arrays, g, str(tmp_path / "c.gpkg"), is_canceled=lambda: True)
    assert os.listdir(tmp_path) == []


def nc_contents(path):
    """Every array of a NetCDF (values) and every attribute but the creation time, via GDAL multidim."""
    from osgeo import gdal
    root = gdal.OpenEx(str(path), gdal.OF_MULTIDIM_RASTER).GetRootGroup()
    out = {"/" + a.GetName(): a.Read() for a in root.GetAttributes() if a.GetName() != "history"}
    for name in root.GetMDArrayNames():
        arr = root.OpenMDArray(name)
        out[name] = arr.ReadAsArray()
        out[name + ".dims"] = [d.GetName() for d in arr.GetDimensions()]
        out.update({f"{name}/{a.GetName()}": a.Read() for a in arr.GetAttributes()})
    return out


def assert_same_nc(a, b):
    ca, cb = nc_contents(a), nc_contents(b)
    assert ca.keys() == cb.keys()
    for k in ca:
        if isinstance(ca[k], np.ndarray):
            assert ca[k].dtype == cb[k].dtype, k
            np.testing.assert_array_equal(ca[k], cb[k], err_msg=k)
        else:
            assert ca[k] == cb[k], k


def gather(arr, rows, cols, edges_r, edges_c, keep=None):
    """``field_io.BlockSamples`` fed block by block, over the irregular tiling edges_r × edges_c."""
    s = field_io.BlockSamples(arr.shape[:-2], rows, cols)
    for r0, r1 in zip(edges_r[:-1], edges_r[1:]):
        for c0, c1 in zip(edges_c[:-1], edges_c[1:]):
            s.add(r0, c0, arr[..., r0:r1, c0:c1], None if keep is None else keep[r0:r1, c0:c1])
    return s


def test_netcdf_spacing_is_the_smallest_within_max_cells():
    notes = []
    assert field_io.netcdf_spacing(30, 40, 1, 1200, notes) == 1 and notes == []
    assert field_io.netcdf_spacing(30, 40, 3, 1200, notes) == 3 and notes == []
    for h, w, cap in ((30, 40, 100), (4963, 7316, 1_000_000), (7, 1000, 10), (53, 71, 300)):
        k = field_io.netcdf_spacing(h, w, 1, cap, notes)
        assert math.ceil(h / k) * math.ceil(w / k) <= cap < math.ceil(h / (k - 1)) * math.ceil(w / (k - 1))
        assert notes[-1] == f"The NetCDF field keeps every {k}th pixel to stay within {cap} cells per step."
    assert field_io.netcdf_spacing(4963, 7316, 1, 1_000_000) == 7


@pytest.mark.parametrize("kind", ["utm", "geo", "px"])
def test_sampled_netcdf_equals_full_field_netcdf(tmp_path, kind):
    """The streamed path (netcdf_spacing, samples gathered block by block, write_sampled_field_netcdf)
    writes the same file as the whole field; values and coordinates checked against the pixels."""
    h, w, n = 53, 71, 3
    g = {"utm": grid(w=w, h=h), "geo": grid(epsg=4326, gt=(10.0, 0.01, 0.0, 60.0, 0.0, -0.01), w=w, h=h),
         "px": grid(epsg=None, gt=None, w=w, h=h)}[kind]
    rng = np.random.default_rng(5)
    f = rng.normal(0, 2, (n, 2, h, w)).astype(np.float32)
    f[1, :, 10:20, 5:30] = np.nan
    valid = rng.random((h, w)) > 0.2
    for spacing, cap in ((1, 1_000_000), (2, 1_000_000), (1, 300)):
        notes, notes_s = [], []
        full = field_io.write_field_netcdf(f, g, times(n), tmp_path / "full.nc", spacing=spacing, valid=valid,
                                           max_cells=cap, warnings=notes)
        k = field_io.netcdf_spacing(h, w, spacing, cap, notes_s)
        rows, cols = field_io.sample_indices(h, k), field_io.sample_indices(w, k)
        s = gather(f, rows, cols, [0, 17, 18, 40, h], [0, 33, w], keep=valid)
        part = field_io.write_sampled_field_netcdf(s.values, s.rows, s.cols, g, times(n), tmp_path / "part.nc")
        assert notes == notes_s and bool(notes) == (cap == 300)
        assert_same_nc(full, part)
        c = nc_contents(part)
        assert c["u"].shape == (n, len(rows), len(cols)) and c["u.dims"] == ["time", "y", "x"]
        gt = g.effective_geotransform
        np.testing.assert_allclose(c["x"], gt[0] + (cols + 0.5) * gt[1])
        np.testing.assert_allclose(c["y"], np.sort(gt[3] + (rows + 0.5) * gt[5]))
        if kind != "geo":
            ok = valid[np.ix_(rows, cols)][::-1]  # y ascending: the first NetCDF row is the last pixel row
            du = f[:, 0][:, rows][:, :, cols][:, ::-1]
            dv = f[:, 1][:, rows][:, :, cols][:, ::-1]
            scale = 250.0 / 300 if kind == "utm" else 1.0 / 300
            np.testing.assert_allclose(c["u"], np.where(ok, du * scale, np.nan), rtol=1e-6)
            np.testing.assert_allclose(c["v"], np.where(ok, -dv * scale, np.nan), rtol=1e-6)
    with pytest.raises(InputError, match="Sampled fields must be"):
        field_io.write_sampled_field_netcdf(f, rows, cols, g, times(n), tmp_path / "bad.nc")
    assert sorted(os.listdir(tmp_path)) == ["full.nc", "part.nc"]


def test_sampled_plot_equals_full_field_plot(tmp_path):
    """plot_sampled_field_png from samples gathered block by block (field masked where the background is
    nodata, background at background_indices) draws the same PNG, byte for byte, as the whole arrays."""
    h, w = 1700, 900  # background reduced by 2, field sampled every 15 pixels
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    f = np.stack([np.stack([-(yy - h / 2), xx - w / 2]), np.stack([0 * yy + 3, 0 * xx - 2])]) * 0.01
    bg = np.stack([np.sin(xx / 37) + np.cos(yy / 23), xx / w])
    bg[0, 100:400, 200:300] = np.nan
    bg[1, 1200:1300, :] = np.nan
    full = field_io.plot_field_png(f, bg, grid(w=w, h=h), tmp_path / "full.png", times=times(2))
    rows, cols = field_io.plot_sample_indices(h, w)
    br, bc = field_io.background_indices(h, w)
    assert (rows[1] - rows[0], len(rows), br[1], len(br), len(bc)) == (15, 113, 2, 850, 450)
    edges_r, edges_c = [0, 500, 1001, h], [0, 448, w]
    field = gather(f, rows, cols, edges_r, edges_c, keep=np.isfinite(bg).all(axis=0))
    small = gather(bg, br, bc, edges_r, edges_c)
    assert np.isfinite(field.values).any() and np.isnan(field.values).any()
    np.testing.assert_array_equal(small.values, bg[:, ::2, ::2])
    part = field_io.plot_sampled_field_png(field.values, rows, cols, (h, w), small.values, tmp_path / "part.png",
                                           times=times(2), grid=grid(w=w, h=h))
    with open(full, "rb") as a, open(part, "rb") as b:
        assert a.read() == b.read()
    # and the background matters: without it (or with the streamlines unmasked) the plot differs
    other = field_io.plot_sampled_field_png(field.values, rows, cols, (h, w), None, tmp_path / "other.png",
                                            times=times(2), grid=grid(w=w, h=h))
    with open(full, "rb") as a, open(other, "rb") as b:
        assert a.read() != b.read()
