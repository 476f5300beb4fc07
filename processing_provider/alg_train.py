"""inbetween:train: learn the latent dynamics of one image pair and save the model file."""
import os
import time

from qgis.core import (QgsProcessingException, QgsProcessingParameterEnum,
                       QgsProcessingParameterFileDestination, QgsProcessingParameterNumber)

from .base import InBetweenAlgorithm, Progress, elapsed
from . import params as P

PRESETS = ["fast", "paper-example-1", "paper-example-2", "paper-example-3"]
MODES = ["accurate", "paper"]
OVERRIDES = ("ITERATIONS", "BATCH_SIZE", "PATCH_SIZE", "STRIDE")
MOTION_SHARE = 5.0  # % of the progress bar for the initial motion estimate (seconds on large images)


class TrainAlgorithm(InBetweenAlgorithm):
    NAME = "train"
    DISPLAY = "Step 1: Train in-between model"
    GROUP = "workflow"
    HELP_ANCHOR = "in-the-qgis-desktop"
    HELP = ("<p>Learns how the scene moves between the <b>first image</b> and the <b>second image</b> (two rasters "
            "of the same place at two times, e.g. radar reflectivity an hour apart) and saves what it learned in "
            "one model file. Step 2 (Generate intermediate frames) and step 3 (Export advection field) use it.</p>"
            "<p>The times are read from the images' metadata; fill in the two times only when the images have "
            "none. If the second image has another grid or CRS it is warped onto the first one's. Nodata is "
            "ignored. Any units do: reflectivity in dBZ, rain rate in mm/h (its motion is measured on a log "
            "scale, the frames keep mm/h), backscatter, ice masks.</p><p>The <b>fast</b> preset trains in a minute or two on a laptop; the paper-example "
            "presets are the published network sizes and need a GPU. The Advanced parameters change the "
            "training schedule, the processor used and the random seed.</p>")
    PARAMETER_HELP = {
        "FIRST": "The earlier image (time t0).",
        "SECOND": "The later image (time t1) of the same place.",
        "START_TIME": "When the first image was taken. Leave empty to read it from the image's metadata "
                      "(e.g. TIFFTAG_DATETIME). A time without a zone is UTC.",
        "END_TIME": "When the second image was taken. Leave empty to read it from the image's metadata.",
        "STEPS": "How many equal steps lead from the first to the second image: 10 gives 9 frames in between "
                 "(11 frames with both ends).",
        "PRESET": "fast: a small network for a CPU. paper-example-1/2/3: the published network sizes (GPU).",
        "MODE": "accurate (recommended): starts from a classical motion estimate (one motion, a turn of the whole "
                "scene, pieces each moving its own way, or on an ice mask each floe as a rigid body that drifts and "
                "turns; the log says which) and blends the motion from both ends. paper: the method exactly as "
                "published.",
        "ITERATIONS": "Training iterations; empty: as the preset says. In accurate mode that is 0: the model is its "
                      "motion estimate, which measured as good on held-out radar frames; more than 0 trains a "
                      "large-scale correction of the motion, kept only if it makes the two images agree clearly "
                      "better in between and fits them no worse; not at all when the motion estimate is one "
                      "linear motion of the whole scene (a turn, a shear) or has several motions (pieces "
                      "drifting apart), nor on a mask (two values, such as ice and water).",
        "BATCH_SIZE": "Image patches per iteration; empty: from the preset.",
        "PATCH_SIZE": "Side of the square image patches trained on, in pixels; empty: from the preset.",
        "STRIDE": "Distance between patch positions, in pixels; empty: from the preset.",
        "DEVICE": "auto uses the graphics card (CUDA) when there is one, else the CPU.",
        "SEED": "The same seed, images and settings on a CPU give the same model file.",
        "OUTPUT_MODEL": "Where to save the trained model (.inbetween).",
        "OUTPUT_LOSS_PLOT": "A PNG with the training error per iteration, to judge whether training converged.",
    }
    ADVANCED = ("MODE",) + OVERRIDES + ("DEVICE", "SEED")

    def initAlgorithm(self, config=None):  # noqa: N802
        P.add_parameters(self, P.pair_parameters() + P.time_parameters("(empty: from the image)"))
        self.addParameter(P.band_parameter())
        self.addParameter(QgsProcessingParameterNumber("STEPS", "Number of steps from the first to the second "
                                                       "image (frames in between + 1)",
                                                       type=QgsProcessingParameterNumber.Integer,
                                                       defaultValue=10, minValue=1, maxValue=1000))
        self.addParameter(QgsProcessingParameterEnum("PRESET", "Preset", options=PRESETS, defaultValue="fast",
                                                     usesStaticStrings=True))
        self.addParameter(QgsProcessingParameterEnum("MODE", "Method", options=MODES, defaultValue="accurate",
                                                     usesStaticStrings=True))
        for name, label in zip(OVERRIDES, ("Training iterations", "Batch size", "Patch size (pixels)",
                                           "Patch stride (pixels)")):
            self.addParameter(QgsProcessingParameterNumber(
                name, f"{label} (empty: from the preset)", type=QgsProcessingParameterNumber.Integer,
                optional=True, minValue=1))
        self.addParameter(P.device_parameter())
        self.addParameter(QgsProcessingParameterNumber("SEED", "Random seed", defaultValue=0,
                                                       type=QgsProcessingParameterNumber.Integer, minValue=0))
        self.addParameter(QgsProcessingParameterFileDestination("OUTPUT_MODEL", "Model file", P.MODEL_FILTER))
        self.addParameter(QgsProcessingParameterFileDestination(
            "OUTPUT_LOSS_PLOT", "Training error plot", "PNG (*.png)", optional=True, createByDefault=True))

    def execute(self, parameters, context, feedback):
        from ..model.modelfile import save_model
        from ..model.presets import make_config
        from ..model.training import TrainingCanceled, train_pair
        from .loss_plot import plot_loss
        from .inputs import pair_and_times, pair_paths
        from .outputs import check_file, writing

        # every destination is checked before the pair is read or a single iteration is run
        path = self.parameterAsFileOutput(parameters, "OUTPUT_MODEL", context)
        plot = self.parameterAsFileOutput(parameters, "OUTPUT_LOSS_PLOT", context)
        inputs = pair_paths(self, parameters, context)
        check_file(path, "OUTPUT_MODEL", feedback, protect=inputs)
        check_file(plot, "OUTPUT_LOSS_PLOT", feedback, protect=inputs, extensions=(".png",))
        if not path.lower().endswith("." + P.MODEL_EXTENSION):
            feedback.pushInfo(f"OUTPUT_MODEL: {os.path.basename(path)} does not end in .{P.MODEL_EXTENSION}; "
                              f"the model is recognised by its content, so it still opens as MODEL.")
        pair, t0, t1, first, second = pair_and_times(self, parameters, context, feedback)
        overrides = {name.lower(): self.parameterAsInt(parameters, name, context)
                     for name in OVERRIDES if parameters.get(name) not in (None, "")}
        config = make_config(P.enum_string(self, parameters, "PRESET", context),
                             mode=P.enum_string(self, parameters, "MODE", context),
                             steps=self.parameterAsInt(parameters, "STEPS", context), **overrides)
        feedback.pushInfo(f"Training {config.preset} ({config.mode} mode) on {pair.grid.width}×{pair.grid.height} px, "
                          f"{pair.x0.shape[0]} band(s), {t0.isoformat()} → {t1.isoformat()}")
        every = max(1, config.iterations // 20)
        motion = Progress(feedback, "Estimating the motion", 0, MOTION_SHARE)
        training = Progress(feedback, "Iteration", MOTION_SHARE, 100 - MOTION_SHARE)

        def motion_progress(fraction, what):
            if feedback.isCanceled():
                raise TrainingCanceled("training canceled")
            motion(round(100 * fraction), 100)
            if fraction == 0 or fraction >= 1.0:   # the first step and the outcome
                feedback.pushInfo(f"Estimating the motion: {what} · {elapsed(time.time() - motion.t0)}")

        def progress(iteration, total, losses):
            training(iteration, total)
            if iteration % every == 0 or iteration == total:
                training.line(iteration, total, f"error {losses['loss']:.4g}")

        try:
            result = train_pair(pair.x0, pair.x1, pair.valid, config=config,
                                device=P.enum_string(self, parameters, "DEVICE", context),
                                seed=self.parameterAsInt(parameters, "SEED", context),
                                progress=progress, is_canceled=feedback.isCanceled, log=P.log_callback(feedback),
                                motion_progress=motion_progress)
        except TrainingCanceled:
            raise QgsProcessingException("Training was canceled; no model file was written.")
        moved = result.figures.get("content_motion_px")
        if moved is not None:
            from .field_io import describe_motion
            feedback.pushInfo("Motion of what the pair shows (its field weighted by the values): "
                              + describe_motion(*moved, pair.grid, (t1 - t0).total_seconds()))
        shifts = result.figures.get("ambiguous_shifts_px")
        if shifts:
            from .field_io import describe_shift
            taken, other = (describe_shift(*s, pair.grid, (t1 - t0).total_seconds()) for s in shifts)
            feedback.pushWarning(f"The two overall shifts the pair cannot tell apart, as motions: the one taken "
                                 f"{taken}; the other {other}")

        header = {"times": [t0.isoformat(), t1.isoformat()], "crs_wkt": pair.grid.crs_wkt,
                  "geotransform": list(pair.grid.geotransform) if pair.grid.geotransform else None,
                  "width": pair.grid.width, "height": pair.grid.height, "band_count": int(pair.x0.shape[0]),
                  "band_names": list(pair.grid.band_names), "band_indices": list(pair.grid.band_indices),
                  "georeferenced": pair.grid.georeferenced, "sources": [first, second]}
        save_model(path, result, header)  # written to a temporary name, moved into place when complete
        outputs = {"OUTPUT_MODEL": path}
        if plot:
            with writing("OUTPUT_LOSS_PLOT", plot):
                outputs["OUTPUT_LOSS_PLOT"] = plot_loss(result.history, plot, title=os.path.basename(path))
        return outputs
