"""inbetween:installdependencies: pip-installs the Python packages the other algorithms need, from inside QGIS."""
from qgis.core import (QgsProcessingException, QgsProcessingParameterEnum, QgsProcessingParameterFile,
                       QgsProcessingParameterString)

from ..plugin import dependencies as deps
from .base import InBetweenAlgorithm


class InstallDependenciesAlgorithm(InBetweenAlgorithm):
    NAME = "installdependencies"
    DISPLAY = "Install Python dependencies"
    HELP = ("Installs the pinned Python packages In-between needs (PyTorch, safetensors, OpenCV headless, POT, "
            "scikit-image, onnxruntime, onnx) with pip, run by the Python that QGIS itself runs, into a folder of "
            "the plugin's own in the QGIS profile, which the plugin adds to Python's path when it loads (QGIS's "
            "own packages stay first). WHAT: cpu (PyTorch for the CPU, about 1 GB), cuda (PyTorch with CUDA for an "
            "NVIDIA GPU, several GB) or onnx-only (onnxruntime alone, enough for Generate intermediate frames and "
            "Export advection field with an exported .onnx model). Needs internet access; the pip log is kept "
            "beside the folder. QGIS does not need a restart. Advanced: PACKAGES installs exactly the given pip "
            "requirements instead; TARGET_FOLDER installs elsewhere; INDEX_URL adds a package index (a mirror).")
    PACKAGES = ()

    def group(self):
        return "Set-up"

    def groupId(self):  # noqa: N802
        return "setup"

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterEnum("WHAT", "What to install", options=list(deps.CHOICES),
                                                     defaultValue="cpu", usesStaticStrings=True))
        advanced = [
            QgsProcessingParameterString("PACKAGES", "Install exactly these pip requirements instead "
                                         "(space separated)", optional=True),
            QgsProcessingParameterFile("TARGET_FOLDER", "Install into this folder instead of the plugin's own",
                                       behavior=QgsProcessingParameterFile.Folder, optional=True),
            QgsProcessingParameterString("INDEX_URL", "Additional package index URL", optional=True),
        ]
        for param in advanced:
            param.setFlags(param.flags() | param.FlagAdvanced)
            self.addParameter(param)

    def execute(self, parameters, context, feedback):
        packages = self.parameterAsString(parameters, "PACKAGES", context).split()
        choice = self.parameterAsEnumString(parameters, "WHAT", context)
        try:
            requirements, indexes = (packages, []) if packages else deps.requirements_for(choice)
        except ValueError as error:
            raise QgsProcessingException(str(error)) from error
        index = self.parameterAsString(parameters, "INDEX_URL", context).strip()
        target = self.parameterAsFile(parameters, "TARGET_FOLDER", context) or deps.default_target()
        feedback.pushInfo(f"Installing {' '.join(requirements)} into {target}")
        try:
            folder = deps.install(requirements, target, [*indexes, *([index] if index else [])],
                                  log=feedback.pushConsoleInfo, progress=feedback.setProgress,
                                  is_canceled=feedback.isCanceled)
        except (RuntimeError, OSError) as error:
            raise QgsProcessingException(str(error)) from error
        still = "" if packages else deps.missing_message(deps.CHOICES[choice])
        if still:
            feedback.pushWarning(still)
        return {"TARGET_FOLDER": str(folder)}
