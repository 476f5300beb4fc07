"""Importing the optional package pysteps quietly and safely beside GDAL."""
import contextlib
import importlib
import io
import sys


def import_pysteps(*submodules):
    """The pysteps submodules (e.g. "verification"), imported with its start-up print silenced.

    pysteps' GDAL importer calls gdal.DontUseExceptions() when it is first imported, which GDAL refuses
    (RuntimeError) once gdal.UseExceptions() and ogr.UseExceptions() are on, as they are wherever the
    plugin's raster/vector I/O has been imported (QGIS, qgis_process).  So exceptions are switched off
    for the import and back on after.  model/ does not import GDAL itself: only an already loaded osgeo
    is touched.  Raises ImportError when pysteps is not installed."""
    gdal = sys.modules.get("osgeo.gdal")
    ogr = sys.modules.get("osgeo.ogr")
    on = [m for m in (ogr, gdal) if m is not None and m.GetUseExceptions()]
    for m in on:
        m.DontUseExceptions()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            importlib.import_module("pysteps")   # first, so a missing (or blocked) pysteps says so
            return tuple(importlib.import_module(f"pysteps.{name}") for name in submodules)
    finally:
        for m in reversed(on):
            m.UseExceptions()
