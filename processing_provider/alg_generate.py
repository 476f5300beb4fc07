"""inbetween:generateframes: the N+1 frames from t0 to t1 as temporal GeoTIFFs."""
from qgis.core import (QgsProcessingOutputMultipleLayers, QgsProcessingParameterFileDestination,
                       QgsProcessingParameterFolderDestination)

from .base import InBetweenAlgorithm
from . import params as P
from .inputs import model_packages, model_source_times
from .loading import frames_written


class GenerateFramesAlgorithm(InBetweenAlgorithm):
    NAME = "generateframes"
    DISPLAY = "Step 2: Generate intermediate frames"
    GROUP = "workflow"
    HELP_ANCHOR = "in-the-qgis-desktop"
    HELP = ("<p>Uses a model from step 1 to make the images between the first and the second image: one GeoTIFF "
            "per step (frame_000.tif is the first image's time, the last frame the second image's), on the first "
            "image's grid, each with its time.</p><p>In QGIS the frames load as the group \"In-between frames\", "
            "coloured alike (a radar reflectivity scale for dBZ data), and the Temporal Controller is set to step "
            "from frame to frame: press Play. A style file (.qml) beside each frame keeps the colours when the "
            "files are opened later.</p><p>Leave the two images empty to use the pair the model was trained on. "
            "Optionally writes a QGIS project with everything set up and an animated GIF. Large images are "
            "processed piece by piece, so memory does not grow with their size. The model may also be its "
            ".onnx export (Export model to ONNX), which runs without PyTorch.</p>")
    PARAMETER_HELP = dict(P.PAIR_FROM_MODEL_HELP, **{
        "MODEL": "The model file written by step 1 (Train in-between model), or its .onnx export.",
        "START_TIME": "Time of the first frame; empty: the time the model was trained with when FIRST and "
                      "SECOND are its own pair, else the pair's metadata or file names (UTC without a zone).",
        "END_TIME": "Time of the last frame; empty: the time the model was trained with when FIRST and "
                      "SECOND are its own pair, else the pair's metadata or file names (UTC without a zone).",
        "DEVICE": "auto uses the graphics card (CUDA) when there is one, else the CPU.",
        "OUTPUT_FOLDER": "Folder for frame_000.tif, frame_001.tif, ... (and their .qml styles).",
        "OUTPUT_PROJECT": "A .qgz that opens with the frames ready to play (useful after qgis_process).",
        "OUTPUT_ANIMATION": "The frames as an animated GIF.",
    })
    ADVANCED = ("START_TIME", "END_TIME", "DEVICE")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(P.model_parameter())
        P.add_parameters(self, P.pair_parameters(from_model=True)
                         + P.time_parameters("(empty: from the pair's metadata, else the model)"))
        self.addParameter(P.band_parameter())
        self.addParameter(P.device_parameter())
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT_FOLDER", "Output folder"))
        self.addParameter(QgsProcessingParameterFileDestination(
            "OUTPUT_PROJECT", "QGIS project with the frames", "QGIS project (*.qgz)",
            optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterFileDestination(
            "OUTPUT_ANIMATION", "Animation", "Animated GIF (*.gif)", optional=True, createByDefault=False))
        self.addOutput(QgsProcessingOutputMultipleLayers("OUTPUT_LAYERS", "Frames"))

    def required_packages(self, parameters, context):
        return model_packages(self, parameters, context, self.PACKAGES)

    def execute(self, parameters, context, feedback):
        from ..model.inference import iter_blocks
        from ..model.training import TrainingCanceled
        from .inputs import pair_paths, recorded_sources
        from .outputs import check_file, writing
        from .raster_io import FrameWriter, plan_frame_folder

        device = P.enum_string(self, parameters, "DEVICE", context)
        folder = self.parameterAsString(parameters, "OUTPUT_FOLDER", context)
        project = self.parameterAsFileOutput(parameters, "OUTPUT_PROJECT", context)
        animation = self.parameterAsFileOutput(parameters, "OUTPUT_ANIMATION", context)
        inputs = pair_paths(self, parameters, context, recorded_sources(self, parameters, context))
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
        frames_written(paths, times, context)
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
