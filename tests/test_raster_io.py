"""read_pair / write_frames on real GDAL files made in tmp_path."""
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from helpers import SHARED_DATA as DATA, write_geotiff

from osgeo import gdal, osr

from inbetween.processing_provider import raster_io
from inbetween.processing_provider.raster_io import InputError

UTM = 32633
UTC = timezone.utc


def wkt(epsg):
    s = osr.SpatialReference()
    s.ImportFromEPSG(epsg)
    return s.ExportToWkt()


def make_tif(path, arr, gt=(500000.0, 250.0, 0.0, 7000000.0, 0.0, -250.0), epsg=UTM, nodata=None,
             dtype=gdal.GDT_Float32, metadata=None):
    return write_geotiff(path, arr, gt, epsg or None, nodata=nodata, dtype=dtype, metadata=metadata)


def blob(h=40, w=48, shift=0.0):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return 100 + 80 * np.exp(-((xx - 20 - shift) ** 2 + (yy - 18) ** 2) / 60.0)


def test_same_grid_passthrough(tmp_path):
    a, b = blob(), blob(shift=3)
    p = raster_io.read_pair(make_tif(tmp_path / "a.tif", a), make_tif(tmp_path / "b.tif", b))
    assert p.x0.shape == (1, 40, 48) and p.x0.dtype == np.float32
    np.testing.assert_array_equal(p.x0[0], a)
    np.testing.assert_array_equal(p.x1[0], b)
    assert p.valid.all()
    assert p.grid.georeferenced and p.grid.width == 48 and p.grid.height == 40
    assert p.grid.geotransform == (500000.0, 250.0, 0.0, 7000000.0, 0.0, -250.0)
    assert not any("warp" in w for w in p.warnings)


def test_different_crs_is_warped_with_warning(tmp_path):
    a = blob(60, 60)
    first = make_tif(tmp_path / "a.tif", a)
    # SECOND: same content in EPSG:3857 via gdal.Warp, on another grid
    second = str(tmp_path / "b.tif")
    gdal.Warp(second, first, dstSRS="EPSG:3857", resampleAlg="bilinear")
    p = raster_io.read_pair(first, second)
    assert p.x1.shape == p.x0.shape
    assert any("warped" in w and "CRS" in w for w in p.warnings)
    assert p.valid[10:50, 10:50].all()
    inner = p.valid.copy()
    assert np.nanmax(np.abs(p.x1[0][inner] - a[inner])) < 10


def test_different_grid_same_crs_warped(tmp_path):
    a = blob(60, 60)
    first = make_tif(tmp_path / "a.tif", a)
    # SECOND: half-resolution, same CRS, shifted origin
    b = blob(30, 30)
    second = make_tif(tmp_path / "b.tif", b, gt=(500000.0 + 1000, 500.0, 0, 7000000.0, 0, -500.0))
    p = raster_io.read_pair(first, second)
    assert any("grid" in w and "warped" in w for w in p.warnings)
    assert not p.valid[:, :4].any()  # left 1000 m (4 px) outside SECOND
    assert p.valid[:, 8:].any()


def test_a_mask_on_another_grid_stays_a_mask(tmp_path):
    """A mask (ice 255, water 0) on another grid is warped nearest-neighbour: the rigid pieces of the start
    (model/rigid_pieces.mask_pair) need two values, which bilinear resampling would blur at every edge; a
    field of many values is still warped bilinear."""
    yy, xx = np.mgrid[0:60, 0:60]
    ice = np.where((xx - 30) ** 2 + (yy - 28) ** 2 < 200, 255, 0).astype(np.uint8)
    first = make_tif(tmp_path / "a.tif", ice, dtype=gdal.GDT_Byte)
    coarse = ice[::2, ::2]
    second = make_tif(tmp_path / "b.tif", coarse, gt=(500000.0 + 100, 500.0, 0, 7000000.0 - 75, 0, -500.0),
                      dtype=gdal.GDT_Byte)
    p = raster_io.read_pair(first, second)
    assert any("nearest neighbour" in w and "mask" in w for w in p.warnings), p.warnings
    seen = p.x1[0][np.isfinite(p.x1[0])]
    assert set(np.unique(seen)) == {0.0, 255.0}
    assert abs((seen == 255).mean() - (ice == 255).mean()) < 0.02
    from inbetween.model.rigid_pieces import mask_pair
    assert mask_pair(p.x0, p.x1, p.valid) is not None

    smooth = make_tif(tmp_path / "c.tif", blob(30, 30), gt=(500000.0 + 100, 500.0, 0, 7000000.0 - 75, 0, -500.0))
    p = raster_io.read_pair(make_tif(tmp_path / "d.tif", blob(60, 60)), smooth)
    assert any("(bilinear)" in w for w in p.warnings), p.warnings
    assert raster_io.two_valued(p.x1) is False and p.x1.shape == (1, 60, 60)


def test_band_mismatch(tmp_path):
    first = make_tif(tmp_path / "a.tif", np.stack([blob(), blob()]))
    second = make_tif(tmp_path / "b.tif", blob())
    with pytest.raises(InputError, match="FIRST has 2 band.*SECOND has 1"):
        raster_io.read_pair(first, second)


def test_no_overlap(tmp_path):
    first = make_tif(tmp_path / "a.tif", blob())
    second = make_tif(tmp_path / "b.tif", blob(), gt=(900000.0, 250.0, 0, 7000000.0, 0, -250.0))
    with pytest.raises(InputError, match="do not overlap"):
        raster_io.read_pair(first, second)


def test_too_small(tmp_path):
    first = make_tif(tmp_path / "a.tif", blob(10, 48))
    second = make_tif(tmp_path / "b.tif", blob(10, 48))
    with pytest.raises(InputError, match="48 × 10 pixels; at least 16 × 16"):
        raster_io.read_pair(first, second)
    assert raster_io.read_pair(first, second, min_size=8).x0.shape == (1, 10, 48)


def test_constant(tmp_path):
    first = make_tif(tmp_path / "a.tif", blob())
    second = make_tif(tmp_path / "b.tif", np.full((40, 48), 7.0))
    with pytest.raises(InputError, match="SECOND is constant"):
        raster_io.read_pair(first, second)


def test_unreadable(tmp_path):
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"not a tiff at all")
    with pytest.raises(InputError, match="Cannot read FIRST"):
        raster_io.read_pair(str(bad), make_tif(tmp_path / "b.tif", blob()))
    with pytest.raises(InputError, match="Cannot read SECOND"):
        raster_io.read_pair(make_tif(tmp_path / "a.tif", blob()), str(tmp_path / "missing.tif"))


def test_nodata_and_nan_masked(tmp_path):
    a, b = blob(), blob(shift=2)
    a[0, 0] = -9999
    b[1, 1] = np.nan
    b[2, 2] = -9999
    p = raster_io.read_pair(make_tif(tmp_path / "a.tif", a, nodata=-9999),
                            make_tif(tmp_path / "b.tif", b, nodata=-9999))
    assert not p.valid[0, 0] and not p.valid[1, 1] and not p.valid[2, 2]
    assert p.valid.sum() == 40 * 48 - 3
    assert np.isnan(p.x0[0, 0, 0]) and np.isnan(p.x1[0, 1, 1]) and np.isnan(p.x1[0, 2, 2])
    assert p.x0[0, 1, 1] == a[1, 1] and p.x1[0, 0, 0] == b[0, 0]  # each keeps its own valid values
    assert p.grid.nodata == [-9999.0]


def test_png_without_georeference_grey_rgba(tmp_path):
    def png(path, shift):
        g = blob(32, 32, shift).astype(np.uint8)
        mem = gdal.GetDriverByName("MEM").Create("", 32, 32, 4, gdal.GDT_Byte)
        for i in range(3):
            mem.GetRasterBand(i + 1).WriteArray(g)
            mem.GetRasterBand(i + 1).SetColorInterpretation(gdal.GCI_RedBand + i)
        mem.GetRasterBand(4).WriteArray(np.full((32, 32), 255, np.uint8))
        mem.GetRasterBand(4).SetColorInterpretation(gdal.GCI_AlphaBand)
        gdal.GetDriverByName("PNG").CreateCopy(str(path), mem)
        return str(path)

    p = raster_io.read_pair(png(tmp_path / "a.png", 0), png(tmp_path / "b.png", 2))
    assert p.x0.shape == (1, 32, 32)
    assert not p.grid.georeferenced and p.grid.geotransform is None and p.grid.crs_wkt == ""
    text = " ".join(p.warnings)
    assert "alpha" in text and "grey" in text and "pixels per second" in text


@pytest.mark.realdata
def test_real_sea_ice_pngs():
    d = DATA / "sentinel1-sea-ice-2020-03"
    if not d.exists():
        pytest.skip("../shared/data is absent")
    files = sorted(d.glob("*.png"))
    before = sorted(os.listdir(d))
    p = raster_io.read_pair(str(files[0]), str(files[1]))
    assert p.x0.shape == (1, 900, 900) and p.valid.all()
    assert not p.grid.georeferenced
    assert sorted(os.listdir(d)) == before  # reading writes nothing (no .aux.xml) beside the data


def frames_for(grid_arr, n=4):
    return np.stack([grid_arr + 10 * j for j in range(n + 1)])[:, None].astype(np.float32)


def times_for(n=4):
    t0 = datetime(2016, 9, 28, 14, 45, tzinfo=UTC)
    return [t0 + j * timedelta(seconds=75) for j in range(n + 1)]


def test_write_frames_grid_crs_nodata_dtype_time(tmp_path):
    a = blob().astype(np.uint8)
    b = blob(shift=3).astype(np.uint8)
    a[0, :5] = 255
    first = make_tif(tmp_path / "a.tif", a, dtype=gdal.GDT_Byte, nodata=255)
    p = raster_io.read_pair(first, make_tif(tmp_path / "b.tif", b, dtype=gdal.GDT_Byte, nodata=255))
    frames = frames_for(np.nan_to_num(p.x0[0], nan=0))
    frames[:, :, ~p.valid] = np.nan
    frames[2, 0, 5, 5] = 400.0  # clipped below nodata
    frames[2, 0, 6, 6] = -3.0
    out = tmp_path / "frames"
    seen = []
    paths = raster_io.write_frames(frames, p.grid, times_for(), out, first_path=first,
                                   progress=lambda done, total: seen.append((done, total)))
    assert seen == [(j, 5) for j in range(1, 6)]
    assert [os.path.basename(x) for x in paths] == [f"frame_00{j}.tif" for j in range(5)]
    assert sorted(os.listdir(out)) == [f"frame_00{j}.tif" for j in range(5)]
    src = gdal.Open(first)
    for j, path in enumerate(paths):
        ds = gdal.Open(path)
        assert ds.GetGeoTransform() == src.GetGeoTransform()
        assert osr.SpatialReference(ds.GetProjection()).IsSame(osr.SpatialReference(src.GetProjection()))
        band = ds.GetRasterBand(1)
        assert band.DataType == gdal.GDT_Byte
        assert band.GetNoDataValue() == 255
        arr = band.ReadAsArray()
        assert (arr[0, :5] == 255).all()
        assert ds.GetMetadataItem("TIFFTAG_DATETIME") == times_for()[j].strftime("%Y:%m:%d %H:%M:%S")
        if j == 2:
            assert arr[5, 5] == 254 and arr[6, 6] == 0
    from inbetween.processing_provider import times
    assert times.read_time(paths[1]) == times_for()[1]


def test_write_frames_float_and_rgb(tmp_path):
    rgb = np.stack([blob(), blob() * 0.5, blob() * 0.2]).astype(np.uint8)
    mem = gdal.GetDriverByName("GTiff").Create(str(tmp_path / "rgb.tif"), 48, 40, 3, gdal.GDT_Byte,
                                               ["PHOTOMETRIC=RGB"])
    mem.SetGeoTransform((0, 10, 0, 0, 0, -10))
    mem.SetProjection(wkt(UTM))
    for i in range(3):
        mem.GetRasterBand(i + 1).WriteArray(rgb[i])
    mem = None
    first = str(tmp_path / "rgb.tif")
    p = raster_io.read_pair(first, first)
    assert p.x0.shape == (3, 40, 48)
    paths = raster_io.write_frames(np.stack([p.x0, p.x1]), p.grid, times_for(1), tmp_path / "o")
    ds = gdal.Open(paths[0])
    assert ds.RasterCount == 3 and ds.GetRasterBand(1).GetColorInterpretation() == gdal.GCI_RedBand
    np.testing.assert_array_equal(ds.ReadAsArray(), rgb)
    # float input keeps float, NaN nodata written
    f = make_tif(tmp_path / "f.tif", blob())
    p = raster_io.read_pair(f, f)
    fr = frames_for(p.x0[0], 1)
    fr[0, 0, 0, 0] = np.nan
    paths = raster_io.write_frames(fr, p.grid, times_for(1), tmp_path / "of")
    ds = gdal.Open(paths[0])  # keep the dataset alive while its band is used (GDAL 3.6 bindings)
    band = ds.GetRasterBand(1)
    assert band.DataType == gdal.GDT_Float32 and np.isnan(band.GetNoDataValue())
    assert np.isnan(band.ReadAsArray()[0, 0])


def test_write_frames_many_digits():
    assert raster_io.frame_name(0, 11) == "frame_000.tif"
    assert raster_io.frame_name(999, 1000) == "frame_999.tif"
    assert raster_io.frame_name(5, 1001) == "frame_0005.tif"


def test_write_frames_complete_or_nothing(tmp_path):
    f = make_tif(tmp_path / "f.tif", blob())
    p = raster_io.read_pair(f, f)
    out = tmp_path / "out"
    old = raster_io.write_frames(frames_for(p.x0[0], 2), p.grid, times_for(2), out)
    before = {x: Path(x).read_bytes() for x in old}
    # wrong shape -> nothing changes
    with pytest.raises(InputError, match="pixels but the grid"):
        raster_io.write_frames(np.zeros((3, 1, 5, 5), np.float32), p.grid, times_for(2), out)
    # failure in the middle of writing (cancel after 2 frames) -> old files untouched, no temp left
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(InputError, match="Canceled"):
        raster_io.write_frames(frames_for(p.x0[0] * 2, 2), p.grid, times_for(2), out, is_canceled=cancel)
    calls.clear()
    with pytest.raises(InputError, match="Canceled"):  # a folder it had to create is removed again
        raster_io.write_frames(frames_for(p.x0[0] * 2, 2), p.grid, times_for(2), tmp_path / "new",
                               is_canceled=cancel)
    assert not (tmp_path / "new").exists()
    assert sorted(os.listdir(out)) == ["frame_000.tif", "frame_001.tif", "frame_002.tif"]
    assert {x: Path(x).read_bytes() for x in old} == before
    # unwritable folder -> error, no files
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):  # root ignores permissions: use a path below a file instead
            target = tmp_path / "f.tif" / "sub"
        else:
            target = ro
        with pytest.raises((OSError, RuntimeError, InputError)):
            raster_io.write_frames(frames_for(p.x0[0], 2), p.grid, times_for(2), target)
    finally:
        ro.chmod(0o700)
    assert os.listdir(ro) == []
    # a shorter rerun replaces its own frames and leaves the longer run's last one as it was
    last = (out / "frame_002.tif").read_bytes()
    paths = raster_io.write_frames(frames_for(p.x0[0], 1), p.grid, times_for(1), out)
    assert sorted(os.listdir(out)) == ["frame_000.tif", "frame_001.tif", "frame_002.tif"] and len(paths) == 2
    assert (out / "frame_002.tif").read_bytes() == last


def test_read_raster_onto_grid(tmp_path):
    a = blob(60, 60)
    first = make_tif(tmp_path / "a.tif", a, nodata=-1)
    arr, g = raster_io.read_raster(first)
    assert arr.shape == (1, 60, 60) and g.nodata == [-1.0]
    second = str(tmp_path / "b.tif")
    gdal.Warp(second, first, dstSRS="EPSG:3857")
    arr2, g2 = raster_io.read_raster(second, onto=g)
    assert g2 is g and arr2.shape == (1, 60, 60)
    assert np.nanmax(np.abs(arr2[0, 10:50, 10:50] - a[10:50, 10:50])) < 10


@pytest.mark.realdata
def test_real_fmi_crop_round_trip(tmp_path):
    """Two FMI radar files (byte, 255 = no data declared in metadata only): crop, read, write frames."""
    d = DATA / "fmi-radar-2016-09-28"
    if not d.exists():
        pytest.skip("../shared/data is absent")
    from inbetween.processing_provider import times
    crops = []
    for name in ("201609281445_FINUTM.tif", "201609281450_FINUTM.tif"):
        out = str(tmp_path / name)
        # a window at the coverage edge: rain, no echo (0) and no data (255)
        gdal.Translate(out, str(d / name), srcWin=[1792, 6400, 256, 256])
        crops.append(out)
    p = raster_io.read_pair(*crops)
    assert p.x0.shape == (1, 256, 256) and p.grid.gdal_dtype == gdal.GDT_Byte
    assert p.grid.geotransform[1] == pytest.approx(250.004, abs=1e-3)
    t0, t1 = times.resolve_times(None, None, *crops)
    assert (t1 - t0).total_seconds() == 300
    ts = times.frame_times(t0, t1, 4)
    frames = np.stack([(1 - j / 4) * p.x0 + j / 4 * p.x1 for j in range(5)])
    paths = raster_io.write_frames(frames, p.grid, ts, tmp_path / "frames", first_path=crops[0])
    src = gdal.Open(crops[0])
    first_band = src.GetRasterBand(1).ReadAsArray()
    for j, path in enumerate(paths):
        ds = gdal.Open(path)
        assert ds.GetGeoTransform() == src.GetGeoTransform()
        assert ds.GetRasterBand(1).DataType == gdal.GDT_Byte
        assert times.read_time(path) == ts[j]
        if j == 0:  # the endpoint is reproduced as given, nodata included
            np.testing.assert_array_equal(ds.GetRasterBand(1).ReadAsArray(), first_band)
    assert np.isnan(p.x0).any() and p.valid.mean() > 0.3  # 255 masked from the metadata's "Nodata"
    assert any("metadata" in w for w in p.warnings)
