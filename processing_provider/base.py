"""What every In-between algorithm shares: icon, group, dependency check, error translation."""
from qgis.core import QgsProcessingAlgorithm, QgsProcessingException
from qgis.PyQt.QtGui import QIcon

from ..plugin.dependencies import missing_message
from .provider import ICON

DEVICES = ["auto", "cpu", "cuda"]


def _stderr_progress(alg_id, feedback):
    """Under qgis_process (where --json prints no progress at all), progress lines go to stderr."""
    import sys

    from qgis.core import QgsApplication

    if QgsApplication.platform() != "qgis_process":
        return None
    last = [-10.0]

    def report(percent):
        if percent - last[0] >= 10 or (percent >= 100 > last[0]):
            last[0] = percent
            print(f"{alg_id}: {percent:.0f}%", file=sys.stderr, flush=True)

    feedback.progressChanged.connect(report)
    return report


class InBetweenAlgorithm(QgsProcessingAlgorithm):
    """Subclasses declare NAME, DISPLAY, HELP, PACKAGES and implement initAlgorithm and execute()."""

    NAME = ""
    DISPLAY = ""
    HELP = ""
    PACKAGES = ("numpy", "torch", "safetensors", "cv2")

    def name(self):
        return self.NAME

    def displayName(self):  # noqa: N802
        return self.DISPLAY

    def group(self):
        return "Latent space dynamics"

    def groupId(self):  # noqa: N802
        return "dynamics"

    def shortHelpString(self):  # noqa: N802
        return self.HELP

    def icon(self):
        return QIcon(ICON)

    def createInstance(self):  # noqa: N802
        return type(self)()

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        message = missing_message(self.required_packages(parameters, context))
        if message:
            raise QgsProcessingException(message)
        report = _stderr_progress(self.id(), feedback)
        try:
            return self.execute(parameters, context, feedback)
        except QgsProcessingException:
            raise
        except Exception as error:  # user-facing: the message, not a traceback
            from .raster_io import InputError

            if isinstance(error, (InputError, ValueError)):
                raise QgsProcessingException(str(error)) from error
            if type(error).__name__ in ("ModelFileError", "TrainingCanceled", "Canceled"):
                raise QgsProcessingException(str(error)) from error
            raise
        finally:
            if report is not None:
                feedback.progressChanged.disconnect(report)

    def required_packages(self, parameters, context):
        """The packages this run needs (an algorithm may need fewer for some inputs, e.g. an .onnx model)."""
        return self.PACKAGES

    def execute(self, parameters, context, feedback):
        raise QgsProcessingException(f"{self.DISPLAY}: not implemented yet")
