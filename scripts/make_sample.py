"""Writes the embedded sample pair: a synthetic rain field one hour apart, moved by a known motion.

256 × 256 px at 500 m in ETRS89 / TM35FIN (EPSG:3067), Float32 dBZ, nodata −9999 outside a 'radar
coverage' disc corner, times in TIFFTAG_DATETIME. The motion: 12 px east and 6 px north in one hour
(1.667 m/s east, 0.833 m/s north) plus a 3° counter-clockwise turn about the centre.
Usage: python scripts/make_sample.py OUT_FOLDER
"""
import sys
from pathlib import Path

import numpy as np
from osgeo import gdal, osr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from model.synthetic import rain_field, rotate_image, shift_image  # noqa: E402

SIZE, PIXEL = 256, 500.0
ORIGIN = (360000.0, 6800000.0)  # upper-left corner, metres
DX, DY, TURN = 12.0, -6.0, 3.0  # pixels (x right, y down) and degrees in one hour
TIMES = ("2016:09:28 14:45:00", "2016:09:28 15:45:00")
NODATA = -9999.0


def write(path, data, when):
    driver = gdal.GetDriverByName("GTiff")
    ds = driver.Create(str(path), SIZE, SIZE, 1, gdal.GDT_Float32, ["COMPRESS=DEFLATE"])
    ds.SetGeoTransform((ORIGIN[0], PIXEL, 0.0, ORIGIN[1], 0.0, -PIXEL))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(3067)
    ds.SetProjection(srs.ExportToWkt())
    ds.SetMetadataItem("TIFFTAG_DATETIME", when)
    band = ds.GetRasterBand(1)
    band.SetNoDataValue(NODATA)
    band.SetDescription("reflectivity (dBZ)")
    band.WriteArray(data)
    ds = None


def main(folder):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    first = rain_field(SIZE, SIZE, seed=7, smooth=8.0)
    second = shift_image(rotate_image(first, TURN), DX, DY)
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    outside = (x + y) < 40  # a corner outside the 'radar coverage'
    for name, data, when in (("first.tif", first, TIMES[0]), ("second.tif", second, TIMES[1])):
        write(folder / name, np.where(outside, NODATA, data).astype(np.float32), when)
    print(f"sample pair written to {folder}/first.tif and {folder}/second.tif")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "demo-output/input")
