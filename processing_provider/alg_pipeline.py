"""inbetween:pipeline: train → generate frames → export field, as the graphical model shipped beside this
module (pipeline.model3), so it shows in the Toolbox and the Graphical Modeler and runs under qgis_process."""
from pathlib import Path

from qgis.core import QgsProcessingModelAlgorithm
from qgis.PyQt.QtGui import QIcon

from .base import GROUPS, ICON, README_URL

MODEL_FILE = Path(__file__).with_name("pipeline.model3")
# QGIS 3.22 does not read parameter help back from a .model3: the inputs' help is given here
PARAMETER_HELP = {
    "first": "The earlier image (time t0); its time is read from its metadata.",
    "second": "The later image (time t1) of the same place.",
    "steps": "How many equal steps lead from the first to the second image: 10 gives 9 frames in between.",
    "iterations": "Training iterations; empty: as the fast preset says.",
    "spacing": "Distance between arrows in pixels of the first image.",
}


class PipelineAlgorithm(QgsProcessingModelAlgorithm):
    """The model as read from MODEL_FILE (its name, "pipeline", is the algorithm's name), with the
    provider's group, icon and help link."""

    def __init__(self):
        super().__init__()
        if not self.fromFile(str(MODEL_FILE)):
            raise RuntimeError(f"Cannot read the shipped model {MODEL_FILE}")
        for name, text in PARAMETER_HELP.items():
            definition = self.parameterDefinition(name)
            if definition is not None:
                definition.setHelp(text)

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
