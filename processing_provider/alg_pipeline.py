"""inbetween:pipeline: train → generate frames → export field, as the graphical model shipped beside this
module (pipeline.model3), so it shows in the Toolbox and the Graphical Modeler and runs under qgis_process."""
from pathlib import Path

from qgis.core import QgsProcessingModelAlgorithm
from qgis.PyQt.QtGui import QIcon

from .base import GROUPS, ICON, README_URL

MODEL_FILE = Path(__file__).with_name("pipeline.model3")


class PipelineAlgorithm(QgsProcessingModelAlgorithm):
    """The model as read from MODEL_FILE (its name, "pipeline", is the algorithm's name), with the
    provider's group, icon and help link."""

    def __init__(self):
        super().__init__()
        if not self.fromFile(str(MODEL_FILE)):
            raise RuntimeError(f"Cannot read the shipped model {MODEL_FILE}")

    def displayName(self):  # noqa: N802
        return "All steps: train, generate frames, export field"

    def group(self):
        return GROUPS["workflow"]

    def groupId(self):  # noqa: N802
        return "workflow"

    def icon(self):
        return QIcon(ICON)

    def helpUrl(self):  # noqa: N802
        return f"{README_URL}#in-the-qgis-desktop"

    def createInstance(self):  # noqa: N802
        return PipelineAlgorithm()
