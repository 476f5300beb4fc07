"""Provider `inbetween`: lists the algorithms; each lives in its own module."""
from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .base import ICON


class InBetweenProvider(QgsProcessingProvider):
    def id(self):
        return "inbetween"

    def name(self):
        return "In-between dynamics"

    def longName(self):  # noqa: N802
        return "In-between: latent space dynamics between two images"

    def icon(self):
        return QIcon(ICON)

    def svgIconPath(self):  # noqa: N802
        return ICON

    def loadAlgorithms(self):  # noqa: N802
        from .alg_train import TrainAlgorithm
        from .alg_generate import GenerateFramesAlgorithm
        from .alg_exportfield import ExportFieldAlgorithm
        from .alg_interpolate import InterpolateAlgorithm
        from .alg_evaluate import EvaluateAlgorithm
        from .alg_exportonnx import ExportOnnxAlgorithm
        from .alg_pipeline import PipelineAlgorithm

        for alg in (TrainAlgorithm(), GenerateFramesAlgorithm(), ExportFieldAlgorithm(), PipelineAlgorithm(),
                    InterpolateAlgorithm(), EvaluateAlgorithm(), ExportOnnxAlgorithm()):
            self.addAlgorithm(alg)
