"""inbetween:exportfield: the learned advection field as m/s vectors over time."""
from qgis.core import (QgsProcessing, QgsProcessingParameterFileDestination, QgsProcessingParameterNumber,
                       QgsProcessingParameterVectorDestination)

from .base import InBetweenAlgorithm
from . import params as P
from .inputs import model_packages, model_source_times
from .loading import field_written

NETCDF_MAX_CELLS = 1_000_000  # cells per step of the NetCDF field (field_io.netcdf_spacing)


class ExportFieldAlgorithm(InBetweenAlgorithm):
    NAME = "exportfield"
    DISPLAY = "Step 3: Export advection field"
    GROUP = "workflow"
    HELP_ANCHOR = "in-the-qgis-desktop"
    HELP = ("<p>Shows the motion a model from step 1 learned, as arrows: a point layer with one arrow every "
            "few pixels for each step, pointing where the scene moves, sized and coloured by speed in metres "
            "per second (a legend shows the classes). It plays with the frames in the Temporal Controller. "
            "Fields: step, time, u and v (m/s along the map's x and y axes, i.e. east and north on a north-up "
            "map), speed (m/s) and direction (degrees clockwise from north). Images without a georeference "
            "give pixels per second.</p><p>The arrow style is saved inside the GeoPackage, so the layer looks the "
            "same whenever it is opened. Optionally also a NetCDF file that QGIS opens as a mesh layer (arrows, "
            "streamlines or particle traces) and a PNG map of the motion with streamlines coloured by speed."
            "</p><p>Leave the two images empty to use the pair the model was trained on. Large images are "
            f"processed piece by piece; the NetCDF keeps at most {NETCDF_MAX_CELLS:,} cells per step.</p>")
    PARAMETER_HELP = dict(P.PAIR_FROM_MODEL_HELP, **{
        "MODEL": "The model file written by step 1 (Train in-between model), or its .onnx export.",
        "START_TIME": "Time of the first image; empty: the time the model was trained with when FIRST and "
                      "SECOND are its own pair, else the pair's metadata or file names (UTC without a zone).",
        "END_TIME": "Time of the second image; empty: the time the model was trained with when FIRST and "
                      "SECOND are its own pair, else the pair's metadata or file names (UTC without a zone).",
        "SPACING": "Distance between arrows in pixels of the first image: larger gives fewer, clearer arrows.",
        "DEVICE": "auto uses the graphics card (CUDA) when there is one, else the CPU.",
        "OUTPUT": "The arrows as a GeoPackage point layer.",
        "OUTPUT_NETCDF": "The motion at every pixel (up to the limit above) as a CF-NetCDF mesh.",
        "OUTPUT_PLOT": "A PNG map of the motion: streamlines coloured by speed in m/s over the first image.",
    })
    ADVANCED = ("START_TIME", "END_TIME", "DEVICE")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(P.model_parameter())
        P.add_parameters(self, P.pair_parameters(from_model=True)
                         + P.time_parameters("(empty: from the pair's metadata, else the model)"))
        self.addParameter(P.band_parameter())
        self.addParameter(QgsProcessingParameterNumber("SPACING", "Pixels between arrows", defaultValue=16,
                                                       type=QgsProcessingParameterNumber.Integer, minValue=1))
        self.addParameter(P.device_parameter())
        self.addParameter(QgsProcessingParameterVectorDestination(
            "OUTPUT", "Advection field", type=QgsProcessing.TypeVectorPoint))
        self.addParameter(QgsProcessingParameterFileDestination(
            "OUTPUT_NETCDF", "Field as CF-NetCDF mesh", "NetCDF (*.nc)", optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterFileDestination(
            "OUTPUT_PLOT", "Map of the motion (PNG)", "PNG (*.png)", optional=True, createByDefault=False))

    def required_packages(self, parameters, context):
        return model_packages(self, parameters, context, self.PACKAGES)

    def execute(self, parameters, context, feedback):
        import numpy as np
        from ..model.inference import iter_blocks
        from .field_io import (BlockSamples, background_indices, check_north_up, field_summary, netcdf_spacing,
                               plot_sample_indices, plot_sampled_field_png, rows_of, sample_indices,
                               sampled_field_arrays, velocity_units, write_field_gpkg,
                               write_sampled_field_netcdf)

        from .inputs import pair_paths, recorded_sources
        from .outputs import check_file, gpkg_output, writing
        from .raster_io import InputError

        device = P.enum_string(self, parameters, "DEVICE", context)
        path = gpkg_output(self.parameterAsOutputLayer(parameters, "OUTPUT", context), "OUTPUT", feedback)
        netcdf = self.parameterAsFileOutput(parameters, "OUTPUT_NETCDF", context)
        plot = self.parameterAsFileOutput(parameters, "OUTPUT_PLOT", context)
        inputs = pair_paths(self, parameters, context, recorded_sources(self, parameters, context))
        check_file(path, "OUTPUT", feedback, protect=inputs)
        check_file(netcdf, "OUTPUT_NETCDF", feedback, protect=inputs, extensions=(".nc",))
        check_file(plot, "OUTPUT_PLOT", feedback, protect=inputs, extensions=(".png",))
        runner, _header, source, times, _first = model_source_times(self, parameters, context, feedback, device)
        grid = source.grid
        if not grid.georeferenced:
            feedback.pushWarning("The rasters have no georeference: u, v and speed are in pixels per second.")
        spacing = self.parameterAsInt(parameters, "SPACING", context)
        n, h, w = runner.steps, grid.height, grid.width
        if spacing // 2 >= min(h, w):
            raise InputError(f"SPACING ({spacing} px) leaves no sample on FIRST ({w} × {h} px); use at most "
                             f"{2 * min(h, w) - 1}, e.g. {max(1, min(h, w) // 4)}.")
        # Every output keeps only its samples of the streamed field (and of FIRST, for the plot).
        samples = BlockSamples((n, 2), sample_indices(h, spacing), sample_indices(w, spacing))
        nc = field = background = None
        if netcdf:
            check_north_up(grid)
            notes = []
            k = netcdf_spacing(h, w, 1, NETCDF_MAX_CELLS, notes)
            nc = BlockSamples((n, 2), sample_indices(h, k), sample_indices(w, k))
            for note in notes:
                feedback.pushInfo(note)
        if plot:
            field = BlockSamples((n, 2), *plot_sample_indices(h, w))
            background = BlockSamples((source.bands,), *background_indices(h, w))
        for r, g, block in iter_blocks(runner, source, "fields", progress=P.progress_callback(feedback, 0, 60),
                                       is_canceled=feedback.isCanceled):
            bh, bw = block.shape[-2:]
            x0, _x1, ok = source.window(r, r + bh, g, g + bw)
            samples.add(r, g, block, keep=ok)
            if nc is not None:
                nc.add(r, g, block)
            if field is not None:  # no streamlines where FIRST is nodata
                field.add(r, g, block, keep=np.isfinite(x0).all(axis=0))
                background.add(r, g, x0)
        feedback.setProgress(60)
        rows = rows_of(sampled_field_arrays(samples.values, samples.rows, samples.cols, grid, times))
        with writing("OUTPUT", path):
            write_field_gpkg(rows, grid, path)
        feedback.pushInfo(f"Wrote {len(rows)} vectors over {n} steps to {path}")
        if rows:
            mean, units = field_summary(rows), velocity_units(grid)
            # three significant digits: pixels per second (no georeference) are small numbers
            feedback.pushInfo(f"Their mean: {mean['speed']:.3g} {units} towards {mean['direction']:.0f}° (clockwise "
                              f"from grid north); mean speed {mean['mean_speed']:.3g} {units}")
        else:
            feedback.pushWarning("No vector was written: FIRST or SECOND is nodata at every sample location; "
                                 "use a smaller SPACING.")
        outputs = {"OUTPUT": path}
        if netcdf:
            with writing("OUTPUT_NETCDF", netcdf):
                outputs["OUTPUT_NETCDF"] = write_sampled_field_netcdf(nc.values, nc.rows, nc.cols, grid, times,
                                                                      netcdf)
        if plot:
            with writing("OUTPUT_PLOT", plot):
                outputs["OUTPUT_PLOT"] = plot_sampled_field_png(field.values, field.rows, field.cols, (h, w),
                                                                background.values, plot, times=times, grid=grid)
        if not field_written(path, times, context):
            feedback.pushWarning(f"Could not save the arrow style into {path}; QGIS will draw plain points.")
        return outputs

