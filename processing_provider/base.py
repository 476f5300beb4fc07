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
class Interrupted(Exception):
    """The process was asked to stop (SIGTERM) while an algorithm ran; raised where Python code runs next, so
    every writer removes its partial files on the way out."""


def _stop_on_sigterm():
    """Under a main-thread run (qgis_process), make SIGTERM raise Interrupted; returns the restore callable
    (None where nothing was installed: another thread, or a handler that Python did not install)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) is None:
        return None

    def stop(signum, _frame):
        raise Interrupted(f"Stopped by {signal.Signals(signum).name}; the partial files of this run were removed.")

    previous = signal.signal(signal.SIGTERM, stop)
    return lambda: signal.signal(signal.SIGTERM, previous)


def parameter_problems(alg, parameters):
    """The first problem QGIS's own check lets through or words without the fix, as a sentence naming the
    parameter, or None: a number that is not one (QGIS reads an optional 'abc' as empty, then as 0), a
    fraction for a whole number (QGIS rounds it), a value out of range (QGIS says only 'incorrect'), an
    option that does not exist (QGIS does not say which exist)."""
    from qgis.core import QgsProcessingParameterEnum, QgsProcessingParameterNumber, QgsProperty

    for d in alg.parameterDefinitions():
        name, raw = d.name(), parameters.get(d.name())
        if raw is None or (isinstance(raw, str) and not raw.strip()) or isinstance(raw, QgsProperty):
            continue
        if isinstance(d, QgsProcessingParameterNumber):
            try:
                value = float(raw)
            except (TypeError, ValueError):
                return f"{name} must be a number; got {raw!r}."
            whole = d.dataType() == QgsProcessingParameterNumber.Integer
            if whole and value != int(value):
                return f"{name} must be a whole number; got {raw}."
            lo, hi = d.minimum(), d.maximum()
            has_hi = hi < 1e15
            if value < lo or (has_hi and value > hi):
                fmt = (lambda v: str(int(v))) if whole else (lambda v: f"{v:g}")
                wanted = f"between {fmt(lo)} and {fmt(hi)}" if has_hi else f"at least {fmt(lo)}"
                return f"{name} must be {wanted}; got {raw}."
        elif isinstance(d, QgsProcessingParameterEnum) and d.usesStaticStrings():
            options = d.options()
            values = raw if isinstance(raw, list) else [raw]
            for v in values:
                text = str(v).strip()
                if text in options or (text.isdigit() and int(text) < len(options)):
                    continue
                return (f"{name} must be one of {', '.join(options)} (or their numbers 0 to {len(options) - 1}); "
                        f"got {v!r}.")
    return None


def _options_by_name(alg, parameters):
    """``parameters`` with static-string options given by number replaced by their names (for QGIS's check)."""
    from qgis.core import QgsProcessingParameterEnum

    out = dict(parameters)
    for d in alg.parameterDefinitions():
        raw = out.get(d.name())
        if isinstance(d, QgsProcessingParameterEnum) and d.usesStaticStrings() and raw is not None \
                and str(raw).strip().isdigit() and str(raw).strip() not in d.options():
            out[d.name()] = d.options()[int(str(raw).strip())]
    return out


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

    def checkParameterValues(self, parameters, context):  # noqa: N802
        problem = parameter_problems(self, parameters)
        if problem:
            return False, problem
        return super().checkParameterValues(_options_by_name(self, parameters), context)

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        message = missing_message(self.required_packages(parameters, context))
        if message:
            raise QgsProcessingException(message)
        problem = parameter_problems(self, parameters)   # also where a caller skipped checkParameterValues
        if problem:
            raise QgsProcessingException(problem)
        report = _stderr_progress(self.id(), feedback)
        started = time.time()
        restore = _stop_on_sigterm()
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
            if type(error).__name__ in ("ModelFileError", "TrainingCanceled", "Canceled", "Interrupted"):
                raise QgsProcessingException(str(error)) from error
            raise
        finally:
            if restore is not None:
                restore()
            if report is not None:
                feedback.progressChanged.disconnect(report)

    def required_packages(self, parameters, context):
        """The packages this run needs (an algorithm may need fewer for some inputs, e.g. an .onnx model)."""
        return self.PACKAGES

    def execute(self, parameters, context, feedback):
        raise QgsProcessingException(f"{self.DISPLAY}: not implemented yet")
