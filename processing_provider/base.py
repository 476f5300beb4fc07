"""What every In-between algorithm shares: icon, group, help, dependency check, error translation."""
import time
from pathlib import Path

from qgis.core import QgsProcessingAlgorithm, QgsProcessingException, QgsProcessingParameterDefinition
from qgis.PyQt.QtGui import QIcon

from ..plugin.dependencies import missing_message

ICON = str(Path(__file__).resolve().parents[1] / "icons" / "icon.svg")
README_URL = "https://github.com/inbetween-dynamics/inbetween/blob/main/README.md"
DEVICES = ["auto", "cpu", "cuda"]
# The Toolbox sorts groups and algorithms by name (QGIS 3.22 has no order hint): the workflow group and
# the "Step n" names make it read in the order a user works.
GROUPS = {"workflow": "1. Workflow: train, generate frames, export field",
          "tools": "2. Compare and export"}


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


def elapsed(seconds):
    """12 s, 3 min 05 s, 1 h 02 min."""
    seconds = int(round(max(seconds, 0)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Progress:
    """One concise feedback line per report: what, how far, elapsed time and the time left."""

    def __init__(self, feedback, what, start=0.0, span=100.0):
        self.feedback, self.what, self.start, self.span = feedback, what, start, span
        self.t0 = time.time()

    def __call__(self, done, total):
        fraction = done / max(total, 1)
        self.feedback.setProgress(self.start + self.span * fraction)
        return fraction

    def line(self, done, total, detail=""):
        fraction = self(done, total)
        spent = time.time() - self.t0
        left = f", {elapsed(spent / fraction - spent)} left" if 0 < fraction < 1 else ""
        detail = f" · {detail}" if detail else ""
        self.feedback.pushInfo(f"{self.what} {done}/{total}{detail} · {elapsed(spent)}{left}")


class InBetweenAlgorithm(QgsProcessingAlgorithm):
    """Subclasses declare NAME, DISPLAY, HELP, PACKAGES and implement initAlgorithm and execute().

    PARAMETER_HELP (name -> plain words) becomes each parameter's tooltip help; parameters named in ADVANCED
    go under the dialog's Advanced Parameters; HELP_ANCHOR is the README section the Help button opens."""

    NAME = ""
    DISPLAY = ""
    HELP = ""
    GROUP = "tools"
    HELP_ANCHOR = "algorithms-provider-inbetween"
    PARAMETER_HELP = {}
    ADVANCED = ()
    PACKAGES = ("numpy", "torch", "safetensors", "cv2")

    def name(self):
        return self.NAME

    def displayName(self):  # noqa: N802
        return self.DISPLAY

    def group(self):
        return GROUPS[self.GROUP]

    def groupId(self):  # noqa: N802
        return self.GROUP

    def shortHelpString(self):  # noqa: N802
        return self.HELP

    def helpUrl(self):  # noqa: N802
        return f"{README_URL}#{self.HELP_ANCHOR}"

    def addParameter(self, parameter, createOutput=True):  # noqa: N802,N803 (QGIS's names)
        """Every parameter gets its help and, where listed, the Advanced flag, in one place."""
        name = parameter.name()
        if name in self.PARAMETER_HELP:
            parameter.setHelp(self.PARAMETER_HELP[name])
        if name in self.ADVANCED:
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        return super().addParameter(parameter, createOutput)

    def icon(self):
        return QIcon(ICON)

    def createInstance(self):  # noqa: N802
        return type(self)()

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        message = missing_message(self.required_packages(parameters, context))
        if message:
            raise QgsProcessingException(message)
        report = _stderr_progress(self.id(), feedback)
        started = time.time()
        try:
            return self.execute(parameters, context, feedback)
        except Exception as error:  # user-facing: the message, not a traceback
            from .raster_io import InputError

            if feedback is not None and feedback.isCanceled():
                # QGIS 3.22's dialog adds "Execution failed"; the message says what really happened.
                raise QgsProcessingException(f"Canceled by the user after {elapsed(time.time() - started)}; "
                                             "no output was written.") from error
            if isinstance(error, QgsProcessingException):
                raise
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
