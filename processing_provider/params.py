"""Parameter declarations shared by several algorithms (declared once, used everywhere)."""
from qgis.core import (QgsProcessingParameterDateTime, QgsProcessingParameterEnum,
                       QgsProcessingParameterFile, QgsProcessingParameterRasterLayer)

from .base import DEVICES

MODEL_FILTER = "In-between model (*.inbetween)"
MODEL_EXTENSION = "inbetween"
# generateframes/exportfield read either a model file or its ONNX export (inbetween:exportonnx)
MODEL_INPUT_FILTER = "In-between model (*.inbetween *.onnx)"


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


def time_parameters(help_suffix):
    return [QgsProcessingParameterDateTime("START_TIME", f"Time of the first image {help_suffix}", optional=True),
            QgsProcessingParameterDateTime("END_TIME", f"Time of the second image {help_suffix}", optional=True)]


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
    """A Python datetime from an optional datetime parameter, or None when left empty."""
    if parameters.get(name) in (None, ""):
        return None
    from datetime import timezone

    value = alg.parameterAsDateTime(parameters, name, context)
    if not value.isValid():
        return None
    return value.toUTC().toPyDateTime().replace(tzinfo=timezone.utc)


def enum_string(alg, parameters, name, context):
    return alg.parameterAsEnumString(parameters, name, context)


def progress_callback(feedback, start=0.0, span=100.0):
    """A (done, total) -> None callback that maps onto a slice of the progress bar."""
    def progress(done, total, *_):
        feedback.setProgress(start + span * done / max(total, 1))
    return progress


def add_parameters(alg, params):
    for p in params:
        alg.addParameter(p)
