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
