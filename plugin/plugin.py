"""The plugin object QGIS creates: registers the Processing provider, reports missing packages."""
from qgis.core import Qgis, QgsApplication, QgsMessageLog

from .dependencies import missing_message

LOG_TAG = "In-between"


class InBetweenPlugin:
    def __init__(self, iface):
        self.iface = iface  # None under qgis_process
        self.provider = None

    def initProcessing(self):  # noqa: N802 (QGIS's name)
        from ..processing_provider.provider import InBetweenProvider

        self.provider = InBetweenProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)
        message = missing_message()
        if message:
            QgsMessageLog.logMessage(message, LOG_TAG, Qgis.Warning)

    def initGui(self):  # noqa: N802
        self.initProcessing()
        message = missing_message()
        if message and self.iface is not None:
            self.iface.messageBar().pushMessage(LOG_TAG, message, level=Qgis.Warning, duration=0)

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
