"""inbetween:generateframes: the N+1 frames from t0 to t1 as temporal GeoTIFFs."""
from qgis.core import (QgsProcessingOutputMultipleLayers, QgsProcessingParameterFileDestination,
                       QgsProcessingParameterFolderDestination)

from .base import InBetweenAlgorithm
from . import params as P
from .inputs import model_packages, model_source_times
from .loading import load_frames_on_completion


class GenerateFramesAlgorithm(InBetweenAlgorithm):
    NAME = "generateframes"
    DISPLAY = "Generate intermediate frames"
    HELP = ("Runs a trained model on FIRST and SECOND and writes one GeoTIFF per time t0 + jΔt, j = 0..N "
            "(frame_000.tif …), with FIRST's grid, CRS, nodata and data type and the time in TIFFTAG_DATETIME. "
            "In QGIS the frames load as a group of temporal layers that the Temporal Controller plays. "
            "Optionally writes a .qgz project with the group set up and an animated GIF. "
            "Whole scenes are streamed: the pair is read window by window, the model runs tile by tile and "
            "each finished block goes straight into every frame file, so memory does not grow with the raster. "
            "MODEL may be a .onnx export (Export model to ONNX): it then runs with onnxruntime alone.")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(P.model_parameter())
        P.add_parameters(self, P.pair_parameters() + P.time_parameters("(empty: from the pair's metadata, else the model)"))
        self.addParameter(P.band_parameter())
        self.addParameter(P.device_parameter())
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT_FOLDER", "Output folder"))
        self.addParameter(QgsProcessingParameterFileDestination(
            "OUTPUT_PROJECT", "QGIS project with the frames (for qgis_process users)", "QGIS project (*.qgz)",
            optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterFileDestination(
            "OUTPUT_ANIMATION", "Animation", "Animated GIF (*.gif)", optional=True, createByDefault=False))
        self.addOutput(QgsProcessingOutputMultipleLayers("OUTPUT_LAYERS", "Frames"))

    def required_packages(self, parameters, context):
        return model_packages(self, parameters, context, self.PACKAGES)

    def execute(self, parameters, context, feedback):
        from ..model.inference import iter_blocks
        from ..model.training import TrainingCanceled
        from .inputs import pair_paths
        from .outputs import check_file, writing
        from .raster_io import FrameWriter, plan_frame_folder

        device = P.enum_string(self, parameters, "DEVICE", context)
        folder = self.parameterAsString(parameters, "OUTPUT_FOLDER", context)
        project = self.parameterAsFileOutput(parameters, "OUTPUT_PROJECT", context)
        animation = self.parameterAsFileOutput(parameters, "OUTPUT_ANIMATION", context)
        inputs = pair_paths(self, parameters, context)
        check_file(project, "OUTPUT_PROJECT", feedback, protect=inputs)
        check_file(animation, "OUTPUT_ANIMATION", feedback, protect=inputs, extensions=(".gif",))
        runner, _header, source, times, first = model_source_times(self, parameters, context, feedback, device)
        for note in plan_frame_folder(folder, len(times), protect=inputs).notes:  # before any inference
            feedback.pushInfo(note)
        with FrameWriter(folder, source.grid, times, len(times), first_path=first, protect=inputs) as writer:
            for row, col, block in iter_blocks(runner, source, "frames",
                                               progress=P.progress_callback(feedback, 0, 95),
                                               is_canceled=feedback.isCanceled):
                writer.write(row, col, block)
            if feedback.isCanceled():
                raise TrainingCanceled("Canceled; no frames were written.")
            paths = writer.commit()
        feedback.pushInfo(f"Wrote {len(paths)} frames to {folder}")
        outputs = {"OUTPUT_FOLDER": folder, "OUTPUT_LAYERS": paths}
        if project:
            from ..plugin.layers import write_project

            with writing("OUTPUT_PROJECT", project):
                outputs["OUTPUT_PROJECT"] = write_project(project, paths, times)
        if animation:
            from .animation import write_gif

            with writing("OUTPUT_ANIMATION", animation):
                outputs["OUTPUT_ANIMATION"] = write_gif(frames_preview(paths), times, animation)
        load_frames_on_completion(paths, times, context)
        return outputs


def frames_preview(paths, max_side=800):
    """The written frames read back reduced to at most ``max_side`` pixels (for the animation), NaN at
    nodata: (N+1, C, h, w)."""
    import numpy as np
    from .raster_io import _read_window, open_raster

    out = []
    for path in paths:
        ds = open_raster(path, "frame")   # frames we just wrote: no overviews, GDAL's reduced read is right
        h, w = ds.RasterYSize, ds.RasterXSize
        f = max(1.0, max(h, w) / float(max_side))
        out.append(_read_window(ds, list(range(1, ds.RasterCount + 1)), None, 0, 0, w, h,
                                (max(int(h / f), 1), max(int(w / f), 1))))
        ds = None
    return np.stack(out)
