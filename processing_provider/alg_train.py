"""inbetween:train: learn the latent dynamics of one image pair and save the model file."""
import os

from qgis.core import (QgsProcessingException, QgsProcessingParameterEnum,
                       QgsProcessingParameterFileDestination, QgsProcessingParameterNumber)

from .base import InBetweenAlgorithm
from . import params as P

PRESETS = ["fast", "paper-example-1", "paper-example-2", "paper-example-3"]
MODES = ["accurate", "paper"]
OVERRIDES = ("ITERATIONS", "BATCH_SIZE", "PATCH_SIZE", "STRIDE")


class TrainAlgorithm(InBetweenAlgorithm):
    NAME = "train"
    DISPLAY = "Train in-between model"
    HELP = ("Trains the latent space dynamics model on FIRST (t0) and SECOND (t1) and writes one model file. "
            "PRESET picks the network sizes and training schedule (fast: CPU-friendly; paper-example-1/2/3: "
            "the seed paper's Tables 2-4). MODE accurate (default) starts the advection fields from a classical "
            "flow estimate and blends forward and backward latent advection; paper is the seed paper's method as "
            "published. Times are read from the rasters' metadata when START_TIME/END_TIME are empty. "
            "SECOND is warped onto FIRST's grid when the grids differ. Nodata is masked out of the loss.")

    def initAlgorithm(self, config=None):  # noqa: N802
        P.add_parameters(self, P.pair_parameters() + P.time_parameters("(empty: from metadata)"))
        self.addParameter(P.band_parameter())
        self.addParameter(QgsProcessingParameterNumber("STEPS", "Evolution steps N (intermediate frames + 1)",
                                                       type=QgsProcessingParameterNumber.Integer,
                                                       defaultValue=10, minValue=1, maxValue=1000))
        self.addParameter(QgsProcessingParameterEnum("PRESET", "Preset", options=PRESETS, defaultValue="fast",
                                                     usesStaticStrings=True))
        self.addParameter(QgsProcessingParameterEnum("MODE", "Mode", options=MODES, defaultValue="accurate",
                                                     usesStaticStrings=True))
        for name, label in zip(OVERRIDES, ("Iterations", "Batch size", "Patch size (px)", "Patch stride (px)")):
            self.addParameter(QgsProcessingParameterNumber(
                name, f"{label} (empty: from preset)", type=QgsProcessingParameterNumber.Integer,
                optional=True, minValue=1))
        self.addParameter(P.device_parameter())
        self.addParameter(QgsProcessingParameterNumber("SEED", "Random seed", defaultValue=0,
                                                       type=QgsProcessingParameterNumber.Integer, minValue=0))
        self.addParameter(QgsProcessingParameterFileDestination("OUTPUT_MODEL", "Model file", P.MODEL_FILTER))
        self.addParameter(QgsProcessingParameterFileDestination(
            "OUTPUT_LOSS_PLOT", "Loss history plot", "PNG (*.png)", optional=True, createByDefault=True))

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

        def progress(iteration, total, losses):
            feedback.setProgress(100.0 * iteration / max(total, 1))
            if iteration % every == 0 or iteration == total:
                terms = ", ".join(f"{k} {v:.4g}" for k, v in losses.items() if isinstance(v, float))
                feedback.pushInfo(f"iteration {iteration}/{total}: {terms}")

        try:
            result = train_pair(pair.x0, pair.x1, pair.valid, config=config,
                                device=P.enum_string(self, parameters, "DEVICE", context),
                                seed=self.parameterAsInt(parameters, "SEED", context),
                                progress=progress, is_canceled=feedback.isCanceled, log=feedback.pushInfo)
        except TrainingCanceled:
            raise QgsProcessingException("Training was canceled; no model file was written.")
        feedback.pushInfo(f"Trained in {result.seconds:.1f} s on {result.device}")

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
