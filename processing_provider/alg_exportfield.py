"""inbetween:exportfield: the learned advection field as m/s vectors over time."""
from qgis.core import (QgsProcessing, QgsProcessingParameterFileDestination, QgsProcessingParameterNumber,
                       QgsProcessingParameterVectorDestination)

from .base import InBetweenAlgorithm
from . import params as P
from .inputs import model_pair_times
from .loading import load_field_on_completion


class ExportFieldAlgorithm(InBetweenAlgorithm):
    NAME = "exportfield"
    DISPLAY = "Export advection field"
    HELP = ("Exports the model's advection velocities for the pair as a point layer: one point every SPACING "
            "pixels per step, with step, time, u and v (m/s along the map's x and y axes), speed (m/s) and "
            "direction (degrees clockwise from grid north, where the motion goes). Metres come from the pixel "
            "size (the ellipsoid for a geographic CRS); rasters without georeference give pixels per second. "
            "Optionally a CF-NetCDF that QGIS opens as a mesh layer (arrows, streamlines, particle traces) "
            "and a PNG with streamlines.")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(P.model_parameter())
        P.add_parameters(self, P.pair_parameters() + P.time_parameters("(empty: from the model)"))
        self.addParameter(QgsProcessingParameterNumber("SPACING", "Pixels between sampled vectors", defaultValue=16,
                                                       type=QgsProcessingParameterNumber.Integer, minValue=1))
        self.addParameter(P.device_parameter())
        self.addParameter(QgsProcessingParameterVectorDestination(
            "OUTPUT", "Advection field", type=QgsProcessing.TypeVectorPoint))
        self.addParameter(QgsProcessingParameterFileDestination(
            "OUTPUT_NETCDF", "Field as CF-NetCDF mesh", "NetCDF (*.nc)", optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterFileDestination(
            "OUTPUT_PLOT", "Field plot with streamlines", "PNG (*.png)", optional=True, createByDefault=False))

    def execute(self, parameters, context, feedback):
        from ..model.inference import advection_fields
        from .field_io import field_rows, plot_field_png, write_field_gpkg, write_field_netcdf

        model, _header, pair, times, _first = model_pair_times(self, parameters, context, feedback)
        if not pair.grid.georeferenced:
            feedback.pushWarning("The rasters have no georeference: u, v and speed are in pixels per second.")
        fields = advection_fields(model, pair.x0, pair.x1, pair.valid,
                                  device=P.enum_string(self, parameters, "DEVICE", context))
        feedback.setProgress(60)
        spacing = self.parameterAsInt(parameters, "SPACING", context)
        rows = field_rows(fields, pair.grid, times, spacing, valid=pair.valid)
        path = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        if not path.lower().endswith(".gpkg"):
            path = path.rsplit(".", 1)[0] + ".gpkg" if "." in path.rsplit("/", 1)[-1] else path + ".gpkg"
            feedback.pushWarning(f"The field is written as a GeoPackage: {path}")
        write_field_gpkg(rows, pair.grid, path)
        feedback.pushInfo(f"Wrote {len(rows)} vectors over {fields.shape[0]} steps to {path}")
        outputs = {"OUTPUT": path}
        netcdf = self.parameterAsFileOutput(parameters, "OUTPUT_NETCDF", context)
        if netcdf:
            outputs["OUTPUT_NETCDF"] = write_field_netcdf(fields, pair.grid, times, netcdf)
        plot = self.parameterAsFileOutput(parameters, "OUTPUT_PLOT", context)
        if plot:
            outputs["OUTPUT_PLOT"] = plot_field_png(fields, pair.x0, pair.grid, plot)
        load_field_on_completion(path, context)
        return outputs
