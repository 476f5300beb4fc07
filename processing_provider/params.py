"""Parameter declarations shared by several algorithms (declared once, used everywhere)."""
from qgis.core import (QgsProcessingParameterBand, QgsProcessingParameterDateTime, QgsProcessingParameterDefinition,
                       QgsProcessingParameterEnum, QgsProcessingParameterFile, QgsProcessingParameterRasterLayer)

from .base import DEVICES

MODEL_FILTER = "In-between model (*.inbetween)"
MODEL_EXTENSION = "inbetween"
# generateframes/exportfield read either a model file or its ONNX export (inbetween:exportonnx); any file name
# is accepted, the kind is told by the content (model.modelfile.model_kind)
MODEL_INPUT_FILTER = "In-between model (*.inbetween *.onnx);;All files (*)"


def pair_parameters(from_model=False):
    """FIRST and SECOND; ``from_model``: optional, the model file's recorded sources when left empty."""
    if from_model:
        return [QgsProcessingParameterRasterLayer("FIRST", "First image (t0) [empty: the one the model was "
                                                  "trained on]", optional=True),
                QgsProcessingParameterRasterLayer("SECOND", "Second image (t1) [empty: the one the model was "
                                                  "trained on]", optional=True)]
    return [QgsProcessingParameterRasterLayer("FIRST", "First image (t0)"),
            QgsProcessingParameterRasterLayer("SECOND", "Second image (t1)")]


PAIR_FROM_MODEL_HELP = {
    "FIRST": "The earlier image. Leave empty to use the first image the model was trained on; choose another "
             "image of the same kind to apply the learned motion to it.",
    "SECOND": "The later image. Leave empty to use the second image the model was trained on.",
}


def band_parameter():
    """BANDS: the bands of FIRST and SECOND to use (same numbers in both); empty: all."""
    p = QgsProcessingParameterBand("BANDS", "Bands to use (empty: all)", parentLayerParameterName="FIRST",
                                   optional=True, allowMultiple=True)
    p.setHelp("Which bands of the two images to use (the same band numbers in both). Leave empty to use all "
              "bands; generating frames with a model uses the bands it was trained on.")
    p.setFlags(p.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
    return p


def time_parameters(help_suffix):
    # A time without a zone is UTC (optional_datetime), whatever the machine's time zone.
    return [QgsProcessingParameterDateTime("START_TIME", f"Time of the first image, UTC unless a zone is given "
                                           f"{help_suffix}", optional=True),
            QgsProcessingParameterDateTime("END_TIME", f"Time of the second image, UTC unless a zone is given "
                                           f"{help_suffix}", optional=True)]


def model_parameter():
    # QGIS 3.22: ``extension`` and ``fileFilter`` are exclusive; the filter allows both kinds
    return QgsProcessingParameterFile("MODEL", "Model file (.inbetween from Train, or its .onnx export)",
                                      fileFilter=MODEL_INPUT_FILTER)


def device_parameter():
    return QgsProcessingParameterEnum("DEVICE", "Device", options=DEVICES, defaultValue="auto",
                                      usesStaticStrings=True)


def layer_path(alg, parameters, name, context, recorded=None):
    """The file path of a raster layer parameter; when it is left empty, ``recorded`` (the path a model
    file recorded for it), if given."""
    from qgis.core import QgsProcessingException

    if parameters.get(name) in (None, "") and recorded:
        import os

        if not os.path.exists(recorded):
            raise QgsProcessingException(f"{name} is empty and the image the model was trained on, {recorded}, "
                                         f"no longer exists: choose {name}.")
        return recorded
    layer = alg.parameterAsRasterLayer(parameters, name, context)
    if layer is None:
        raise QgsProcessingException(f"{name}: no raster layer given or it cannot be read")
    return layer.source()


def optional_datetime(alg, parameters, name, context):
    """A UTC datetime from an optional datetime parameter, or None when left empty.  A time without a zone is
    UTC on every machine: text is parsed by times.to_datetime (QGIS would read it in the local zone), and a
    QDateTime in local time (what the date-time widget gives) has its date and time read as UTC."""
    raw = parameters.get(name)
    if raw in (None, ""):
        return None
    from .raster_io import InputError
    from .times import to_datetime

    if isinstance(raw, str):
        try:
            return to_datetime(raw)
        except InputError:
            raise InputError(f"{name}: cannot read a date and time from {raw!r}; write it as e.g. "
                             f"2024-05-01T12:30:00 (UTC) or 2024-05-01T15:30:00+03:00.") from None
    from qgis.PyQt.QtCore import QDateTime, Qt

    value = raw if isinstance(raw, QDateTime) else alg.parameterAsDateTime(parameters, name, context)
    if value is None or not value.isValid():
        return None
    if value.timeSpec() == Qt.TimeSpec.LocalTime:
        value = QDateTime(value.date(), value.time(), Qt.TimeSpec.UTC)
    return to_datetime(value)


def enum_string(alg, parameters, name, context):
    """The option chosen, given by name or by its number (the form ``qgis_process help`` lists)."""
    raw = parameters.get(name)
    options = alg.parameterDefinition(name).options()
    if isinstance(raw, (int, str)) and str(raw).strip().isdigit() and str(raw).strip() not in options:
        return options[int(str(raw).strip())]
    return alg.parameterAsEnumString(parameters, name, context)


def progress_callback(feedback, start=0.0, span=100.0):
    """A (done, total) -> None callback that maps onto a slice of the progress bar."""
    def progress(done, total, *_):
        feedback.setProgress(start + span * done / max(total, 1))
    return progress


def log_callback(feedback):
    """train_pair's ``log``: its lines as information, those that begin "Warning: " as warnings (QGIS shows
    them in the warning colour, and qgis_process prints them as such)."""
    def log(text):
        if text.startswith("Warning: "):
            feedback.pushWarning(text[len("Warning: "):])
        else:
            feedback.pushInfo(text)
    return log


def add_parameters(alg, params):
    for p in params:
        alg.addParameter(p)
