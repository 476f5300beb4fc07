"""inbetween:exportonnx: a trained model as a self-describing ONNX file for onnxruntime-only inference."""
from qgis.core import QgsProcessingParameterFile, QgsProcessingParameterFileDestination

from .base import InBetweenAlgorithm
from . import params as P


class ExportOnnxAlgorithm(InBetweenAlgorithm):
    NAME = "exportonnx"
    DISPLAY = "Export model to ONNX"
    HELP = ("Exports a trained model (.inbetween) to ONNX (opset 17): encoder, advection fields, the N "
            "advection steps (GridSample) and decoder as one graph for a tile of any size, inputs x0, x1 "
            "(normalised) and the initial flow (computed with OpenCV), outputs the N+1 frames and the N fields. "
            "The model's header (steps, normalisation, times, grid, configuration) is stored in the ONNX "
            "metadata. Generate intermediate frames and Export advection field accept the .onnx as MODEL and "
            "then run with onnxruntime alone (CUDA execution provider when present). The export is checked "
            "against PyTorch; the largest difference is reported.")
    PACKAGES = ("numpy", "torch", "safetensors", "onnx", "onnxruntime")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterFile("MODEL", "Model file (from Train in-between model)",
                                                     fileFilter=f"{P.MODEL_FILTER};;All files (*)"))
        self.addParameter(QgsProcessingParameterFileDestination("OUTPUT", "ONNX model", "ONNX model (*.onnx)"))

    def execute(self, parameters, context, feedback):
        from ..model.onnx_export import export_onnx

        model_path = self.parameterAsFile(parameters, "MODEL", context)
        out = self.parameterAsFileOutput(parameters, "OUTPUT", context)
        if not out.lower().endswith(".onnx"):
            out += ".onnx"
        from .outputs import check_file

        check_file(out, "OUTPUT", feedback, protect=(model_path,))
        diff = export_onnx(model_path, out)
        feedback.pushInfo(f"Wrote {out}; largest difference to PyTorch on test tiles: frames "
                          f"{diff['frames']:.2e}, fields {diff['fields']:.2e} (normalised units / pixels)")
        return {"OUTPUT": out, "MAX_ABS_DIFF_FRAMES": diff["frames"], "MAX_ABS_DIFF_FIELDS": diff["fields"]}
