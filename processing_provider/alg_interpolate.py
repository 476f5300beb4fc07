"""inbetween:interpolate: the baseline interpolators, with the same outputs as generateframes."""
from qgis.core import (QgsProcessingOutputMultipleLayers, QgsProcessingParameterEnum,
                       QgsProcessingParameterFolderDestination, QgsProcessingParameterNumber)

from .base import InBetweenAlgorithm
from . import params as P
from .loading import frames_written

METHODS = ["linear", "opticalflow", "ot", "imageadvection", "pysteps-lk", "pysteps-vet", "latent"]


class InterpolateAlgorithm(InBetweenAlgorithm):
    NAME = "interpolate"
    DISPLAY = "Interpolate frames (baselines)"
    HELP = ("Interpolates N+1 frames between FIRST and SECOND with a reference method, written and loaded "
            "exactly like Generate intermediate frames so that methods play side by side in the Temporal "
            "Controller. linear: time-weighted blend; opticalflow: bidirectional dense flow (OpenCV DIS), "
            "both ends warped and blended by time; ot: entropic optimal-transport displacement interpolation "
            "(POT) with mass rescaled linearly between the totals; imageadvection: the seed paper's "
            "image-space advection (encoder and decoder = identity); latent: trains the latent dynamics "
            "model (preset fast) and generates its frames in one go; pysteps-lk, pysteps-vet: the radar "
            "nowcaster's reference, pysteps' Lucas-Kanade or VET motion between the two images and its "
            "semi-Lagrangian extrapolation of each end towards the other, blended by time (needs the optional "
            "package pysteps; without it the algorithm says how to install it).")
    PACKAGES = ("numpy", "torch", "cv2", "ot", "safetensors")

    def required_packages(self, parameters, context):
        method = P.enum_string(self, parameters, "METHOD", context)
        return self.PACKAGES + (("pysteps",) if method.startswith("pysteps") else ())

    def initAlgorithm(self, config=None):  # noqa: N802
        P.add_parameters(self, P.pair_parameters())
        self.addParameter(P.band_parameter())
        self.addParameter(QgsProcessingParameterNumber("STEPS", "Steps N (intermediate frames + 1)", defaultValue=10,
                                                       type=QgsProcessingParameterNumber.Integer, minValue=1))
        self.addParameter(QgsProcessingParameterEnum("METHOD", "Method", options=METHODS, defaultValue="opticalflow",
                                                     usesStaticStrings=True))
        P.add_parameters(self, P.time_parameters("(empty: from metadata)"))
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT_FOLDER", "Output folder"))
        self.addOutput(QgsProcessingOutputMultipleLayers("OUTPUT_LAYERS", "Frames"))

    def execute(self, parameters, context, feedback):
        from ..model.baselines import interpolate
        from .inputs import pair_and_times, pair_paths
        from .raster_io import plan_frame_folder, write_frames
        from .times import frame_times

        steps = self.parameterAsInt(parameters, "STEPS", context)
        folder = self.parameterAsString(parameters, "OUTPUT_FOLDER", context)
        inputs = pair_paths(self, parameters, context)
        for note in plan_frame_folder(folder, steps + 1, protect=inputs).notes:  # before any work
            feedback.pushInfo(note)
        pair, t0, t1, first, _second = pair_and_times(self, parameters, context, feedback)
        method = P.enum_string(self, parameters, "METHOD", context)
        if method == "latent":
            frames = self._latent(pair, steps, feedback)
        else:
            frames = interpolate(method, pair.x0, pair.x1, steps, pair.valid,
                                 progress=P.progress_callback(feedback, 0, 80), is_canceled=feedback.isCanceled)
        if feedback.isCanceled():
            raise ValueError("Canceled; no frames were written.")
        times = frame_times(t0, t1, steps)
        paths = write_frames(frames, pair.grid, times, folder, first_path=first, protect=inputs)
        frames_written(paths, times, context)
        return {"OUTPUT_FOLDER": folder, "OUTPUT_LAYERS": paths}

    @staticmethod
    def _latent(pair, steps, feedback):
        from ..model.inference import generate_frames
        from ..model.presets import make_config
        from ..model.training import train_pair

        result = train_pair(pair.x0, pair.x1, pair.valid, config=make_config("fast", steps=steps),
                            progress=P.progress_callback(feedback, 0, 70), is_canceled=feedback.isCanceled,
                            log=P.log_callback(feedback))
        return generate_frames(result.model, pair.x0, pair.x1, pair.valid, is_canceled=feedback.isCanceled)
