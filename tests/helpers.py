"""Helpers shared by the tests: real qgis_process runs and the optional real data."""
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def qgis_process_binary():
    """QGIS's qgis_process itself: Debian's /usr/bin/qgis_process is a wrapper adding --noversioncheck,
    which the 3.22 binary rejects, so the binary behind it where there is one."""
    import shutil

    binary = Path("/usr/bin/qgis_process.bin")
    return str(binary) if binary.exists() else shutil.which("qgis_process")


def qgis_process(*args, timeout=900, check=True):
    """Run scripts/qgis-process (real qgis_process) and return the CompletedProcess."""
    result = subprocess.run([str(ROOT / "scripts" / "qgis-process"), *map(str, args)], capture_output=True,
                            text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"qgis_process {' '.join(map(str, args))} failed ({result.returncode}):\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result



def shared_data(sub):
    """A folder of ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA / sub
    if not path.is_dir():
        pytest.skip(f"real data not available: {path} is absent")
    return path




def write_geotiff(path, data, geotransform=(500000.0, 250.0, 0.0, 7000000.0, 0.0, -250.0), epsg=3067,
                  when=None, nodata=None, dtype=None, metadata=None):
    """A real GeoTIFF from (C, H, W) or (H, W) data; when: 'YYYY:MM:DD HH:MM:SS' for TIFFTAG_DATETIME;
    ``metadata``: further dataset metadata items."""
    import numpy as np
    from osgeo import gdal, osr

    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    gtype = dtype or gdal.GDT_Float32
    ds = gdal.GetDriverByName("GTiff").Create(str(path), data.shape[2], data.shape[1], data.shape[0], gtype)
    if geotransform is not None:
        ds.SetGeoTransform(geotransform)
    if epsg is not None:
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(epsg)
        ds.SetProjection(srs.ExportToWkt())
    if when:
        ds.SetMetadataItem("TIFFTAG_DATETIME", when)
    for k, v in (metadata or {}).items():
        ds.SetMetadataItem(k, v)
    for b in range(data.shape[0]):
        band = ds.GetRasterBand(b + 1)
        if nodata is not None:
            band.SetNoDataValue(nodata)
        band.WriteArray(data[b])
    ds = None
    return str(path)


def translation_geotiffs(folder, size=96, dx=6.0, dy=-4.0, steps=4, seed=0, pixel=250.0, bands=1,
                         times=("2016:09:28 14:45:00", "2016:09:28 15:45:00")):
    """A georeferenced pair moved by (dx, dy) px in one hour (x right, y down), and the truth frames."""
    from model.synthetic import translation_pair

    x0, x1, truth, _ = translation_pair(size, size, dx, dy, steps, bands, seed)
    gt = (500000.0, pixel, 0.0, 7000000.0, 0.0, -pixel)
    first = write_geotiff(Path(folder) / "first.tif", x0, gt, when=times[0])
    second = write_geotiff(Path(folder) / "second.tif", x1, gt, when=times[1])
    return first, second, truth


def collecting_feedback():
    """A real QgsProcessingFeedback that also keeps the warnings and infos it was given."""
    from qgis.core import QgsProcessingFeedback

    class Collect(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.warnings, self.infos = [], []

        def pushWarning(self, text):  # noqa: N802
            self.warnings.append(text)
            super().pushWarning(text)

        def pushInfo(self, text):  # noqa: N802
            self.infos.append(text)
            super().pushInfo(text)

    return Collect()
