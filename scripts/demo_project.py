"""Writes demo-output/demo.qgz: the frames as a temporal group and the field over them."""
import sys
from pathlib import Path

from qgis.core import QgsApplication

from inbetween.plugin.layers import write_project
from inbetween.processing_provider.times import read_time

out = Path(sys.argv[1] if len(sys.argv) > 1 else "demo-output")
app = QgsApplication([], False)
app.initQgis()
frames = sorted(str(p) for p in (out / "frames").glob("frame_*.tif"))
times = [read_time(p) for p in frames]
path = write_project(str(out / "demo.qgz"), frames, times, field_path=str(out / "field.gpkg"),
                     netcdf_path=str(out / "field.nc"))
print(f"project written: {path}")
app.exitQgis()
