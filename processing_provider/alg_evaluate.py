"""inbetween:evaluate: score generated frames against reference frames, per frame and per method."""
from pathlib import Path

from qgis.core import (QgsProcessing, QgsProcessingException, QgsProcessingParameterEnum,
                       QgsProcessingParameterFileDestination, QgsProcessingParameterMultipleLayers,
                       QgsProcessingParameterNumber, QgsProcessingParameterString)

from .base import InBetweenAlgorithm
from . import params as P

MATCHES = ["time", "order"]


class EvaluateAlgorithm(InBetweenAlgorithm):
    NAME = "evaluate"
    DISPLAY = "Evaluate frames against references"
    HELP = ("Scores generated frames against reference frames (e.g. real frames held out between the two "
            "endpoints). GENERATED: one or more output folders of Generate intermediate frames or Interpolate "
            "frames, separated by ';' (each folder is one method, named after the folder); GENERATED_LAYERS: "
            "frame layers as a further method. Frames are matched with REFERENCE by time (TIFFTAG_DATETIME and "
            "similar) or by order. Writes a table per frame (CSV, or a GeoPackage table) with MAE, RMSE, bias, "
            "SSIM and, when THRESHOLD is set, POD, FAR and CSI of the exceedance (value >= THRESHOLD) and the "
            "fractions skill score at 1, 4 and 16 pixels (fss_1, fss_4, fss_16), and a PNG plot of the error "
            "over time with one line per method. The contingency counts and FSS are computed by "
            "pysteps.verification when the optional package pysteps is installed, else by the plugin's own "
            "code (the same formulas).")
    PACKAGES = ("numpy", "skimage")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterString("GENERATED", "Generated frame folders (';'-separated)",
                                                       optional=True))
        self.addParameter(QgsProcessingParameterMultipleLayers("GENERATED_LAYERS", "Generated frame layers",
                                                               QgsProcessing.TypeRaster, optional=True))
        self.addParameter(QgsProcessingParameterMultipleLayers("REFERENCE", "Reference frames",
                                                               QgsProcessing.TypeRaster))
        self.addParameter(QgsProcessingParameterEnum("MATCH", "Match frames by", options=MATCHES,
                                                     defaultValue="time", usesStaticStrings=True))
        self.addParameter(QgsProcessingParameterNumber("THRESHOLD", "Threshold for POD/FAR/CSI", optional=True,
                                                       type=QgsProcessingParameterNumber.Double))
        self.addParameter(QgsProcessingParameterFileDestination("OUTPUT_TABLE", "Scores table",
                                                                "CSV (*.csv);;GeoPackage (*.gpkg)"))
        self.addParameter(QgsProcessingParameterFileDestination("OUTPUT_PLOT", "Error plot", "PNG (*.png)",
                                                                optional=True, createByDefault=True))

    def execute(self, parameters, context, feedback):
        from .outputs import check_file, writing
        from .scores import evaluate_methods, plot_scores, write_table

        table = self.parameterAsFileOutput(parameters, "OUTPUT_TABLE", context)
        plot = self.parameterAsFileOutput(parameters, "OUTPUT_PLOT", context)
        check_file(table, "OUTPUT_TABLE", feedback, extensions=(".csv", ".gpkg"))
        check_file(plot, "OUTPUT_PLOT", feedback, extensions=(".png",))

        methods = {}
        for folder in filter(None, (f.strip() for f in (self.parameterAsString(parameters, "GENERATED", context)
                                                         or "").split(";"))):
            frames = sorted(Path(folder).glob("frame_*.tif"))
            if not frames:
                raise QgsProcessingException(f"GENERATED: no frame_*.tif files in {folder}")
            methods[Path(folder).name] = [str(p) for p in frames]
        layers = self.parameterAsLayerList(parameters, "GENERATED_LAYERS", context)
        if layers:
            methods["layers"] = [layer.source() for layer in layers]
        if not methods:
            raise QgsProcessingException("Give GENERATED folders or GENERATED_LAYERS to evaluate.")
        references = [layer.source() for layer in self.parameterAsLayerList(parameters, "REFERENCE", context)]
        threshold = (self.parameterAsDouble(parameters, "THRESHOLD", context)
                     if parameters.get("THRESHOLD") not in (None, "") else None)
        match = P.enum_string(self, parameters, "MATCH", context)
        rows = evaluate_methods(methods, references, match=match, threshold=threshold,
                                progress=lambda d, t: feedback.setProgress(90 * d / t), log=feedback.pushInfo)
        with writing("OUTPUT_TABLE", table):
            write_table(rows, table)
        outputs = {"OUTPUT_TABLE": table}
        if plot:
            with writing("OUTPUT_PLOT", plot):
                outputs["OUTPUT_PLOT"] = plot_scores(rows, plot)
        for method in methods:
            mine = [r for r in rows if r["method"] == method]
            mean = sum(r["mae"] for r in mine) / max(len(mine), 1)
            feedback.pushInfo(f"{method}: {len(mine)} frames, mean MAE {mean:.4g}")
        return outputs
