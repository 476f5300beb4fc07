"""The algorithms on the real sea-ice pair (PNG, no georeference) and on a warped, nodata-bearing pair."""
import numpy as np
import pytest
from osgeo import gdal

from helpers import collecting_feedback, shared_data, translation_geotiffs, write_geotiff


def run(alg, params, feedback=None):
    import processing

    return processing.run(f"inbetween:{alg}", params, feedback=feedback)


@pytest.mark.realdata
def test_sea_ice_pngs_work_in_pixel_units(provider, tmp_path):
    folder = shared_data("sentinel1-sea-ice-2020-03")
    first = str(folder / "Sentinel1_HH_Sigma0_2020-03-19T16_01Z.png")
    second = str(folder / "Sentinel1_HH_Sigma0_2020-03-20T15_54Z.png")
    model = str(tmp_path / "ice.inbetween")
    feedback = collecting_feedback()
    run("train", dict(FIRST=first, SECOND=second, STEPS=2, ITERATIONS=3, PATCH_SIZE=64, BATCH_SIZE=1,
                      OUTPUT_MODEL=model), feedback=feedback)
    assert any("pixel" in w for w in feedback.warnings), feedback.warnings  # velocities in px/s, said so
    run("generateframes", dict(MODEL=model, FIRST=first, SECOND=second, OUTPUT_FOLDER=str(tmp_path / "f")))
    mid = gdal.Open(str(tmp_path / "f" / "frame_001.tif"))
    assert (mid.RasterXSize, mid.RasterYSize) == (900, 900)
    # the times come from the file names: half-way between 2020-03-19T16:01Z and 2020-03-20T15:54Z
    assert mid.GetMetadataItem("TIFFTAG_DATETIME") == "2020:03:20 03:57:30"
    from osgeo import ogr

    run("exportfield", dict(MODEL=model, FIRST=first, SECOND=second, SPACING=100, OUTPUT=str(tmp_path / "f.gpkg")))
    ds = ogr.Open(str(tmp_path / "f.gpkg"))
    speeds = [f["speed"] for f in ds.GetLayer(0)]
    # ice drifts tens of pixels in a day: px/s of order 1e-4, not m/s of order 0.1
    assert speeds and 1e-6 < np.median(speeds) < 1e-2
    for folder_file in folder.iterdir():  # reading wrote nothing beside the shared data
        assert not folder_file.name.endswith(".aux.xml")


def test_nodata_is_masked_and_restored_and_other_grid_is_warped(provider, tmp_path):
    first, second, _ = translation_geotiffs(tmp_path, size=80, dx=3.0, dy=1.0, steps=2)
    data = gdal.Open(first).ReadAsArray().astype(np.float32)
    data[:10, :10] = -9999.0
    holey = write_geotiff(tmp_path / "holey.tif", data, gdal.Open(first).GetGeoTransform(),
                          when="2016:09:28 14:45:00", nodata=-9999.0)
    # SECOND on another grid (shifted origin, same CRS): warped onto FIRST's grid with a warning
    gt = list(gdal.Open(second).GetGeoTransform())
    gt[0] += 125.0
    shifted = write_geotiff(tmp_path / "shifted.tif", gdal.Open(second).ReadAsArray(), tuple(gt),
                            when="2016:09:28 15:45:00")
    feedback = collecting_feedback()
    model = str(tmp_path / "m.inbetween")
    run("train", dict(FIRST=holey, SECOND=shifted, STEPS=2, ITERATIONS=3, PATCH_SIZE=48, BATCH_SIZE=1,
                      OUTPUT_MODEL=model), feedback=feedback)
    assert any("warp" in w.lower() for w in feedback.warnings), feedback.warnings
    run("generateframes", dict(MODEL=model, FIRST=holey, SECOND=shifted, OUTPUT_FOLDER=str(tmp_path / "f")))
    mid = gdal.Open(str(tmp_path / "f" / "frame_001.tif"))
    band = mid.GetRasterBand(1)
    assert band.GetNoDataValue() == -9999.0
    values = band.ReadAsArray()
    assert (values[:10, :10] == -9999.0).all()
    assert (values[20:60, 20:60] != -9999.0).all()
