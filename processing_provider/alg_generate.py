"""inbetween:generateframes: the N+1 frames from t0 to t1 as temporal GeoTIFFs."""
from qgis.core import (QgsProcessingOutputMultipleLayers, QgsProcessingParameterFileDestination,
                       QgsProcessingParameterFolderDestination)

from .base import InBetweenAlgorithm
from . import params as P
from .inputs import model_pair_times
from .loading import load_frames_on_completion


class GenerateFramesAlgorithm(InBetweenAlgorithm):
    NAME = "generateframes"
    DISPLAY = "Generate intermediate frames"
    HELP = ("Runs a trained model on FIRST and SECOND and writes one GeoTIFF per time t0 + jΔt, j = 0..N "
            "(frame_000.tif …), with FIRST's grid, CRS, nodata and data type and the time in TIFFTAG_DATETIME. "
            "In QGIS the frames load as a group of temporal layers that the Temporal Controller plays. "
            "Optionally writes a .qgz project with the group set up and an animated GIF.")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(P.model_parameter())
        P.add_parameters(self, P.pair_parameters() + P.time_parameters("(empty: from the model)"))
        self.addParameter(P.device_parameter())
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT_FOLDER", "Output folder"))
        self.addParameter(QgsProcessingParameterFileDestination(
            "OUTPUT_PROJECT", "QGIS project with the frames (for qgis_process users)", "QGIS project (*.qgz)",
            optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterFileDestination(
            "OUTPUT_ANIMATION", "Animation", "Animated GIF (*.gif)", optional=True, createByDefault=False))
        self.addOutput(QgsProcessingOutputMultipleLayers("OUTPUT_LAYERS", "Frames"))

    def execute(self, parameters, context, feedback):
        from ..model.inference import generate_frames
        from ..model.training import TrainingCanceled
        from .raster_io import write_frames

        model, _header, pair, times, first = model_pair_times(self, parameters, context, feedback)
        device = P.enum_string(self, parameters, "DEVICE", context)
        frames = generate_frames(model, pair.x0, pair.x1, pair.valid, device=device,
                                 progress=P.progress_callback(feedback, 0, 80), is_canceled=feedback.isCanceled)
        if feedback.isCanceled():
            raise TrainingCanceled("Canceled; no frames were written.")
        folder = self.parameterAsString(parameters, "OUTPUT_FOLDER", context)
        paths = write_frames(frames, pair.grid, times, folder, first_path=first,
                             progress=P.progress_callback(feedback, 80, 15))
        feedback.pushInfo(f"Wrote {len(paths)} frames to {folder}")
        outputs = {"OUTPUT_FOLDER": folder, "OUTPUT_LAYERS": paths}
        project = self.parameterAsFileOutput(parameters, "OUTPUT_PROJECT", context)
        if project:
            from ..plugin.layers import write_project

            outputs["OUTPUT_PROJECT"] = write_project(project, paths, times)
        animation = self.parameterAsFileOutput(parameters, "OUTPUT_ANIMATION", context)
        if animation:
            from .animation import write_gif

            outputs["OUTPUT_ANIMATION"] = write_gif(frames, times, animation)
        load_frames_on_completion(paths, times, context)
        return outputs
