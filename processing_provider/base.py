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
        restore = _stop_on_sigterm()
        try:
            return self.execute(parameters, context, feedback)
        except QgsProcessingException:
            raise
        except Exception as error:  # user-facing: the message, not a traceback
            from .raster_io import InputError

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
