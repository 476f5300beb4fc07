"""The plugin object QGIS creates: registers the Processing provider, offers to install missing packages."""
from qgis.core import Qgis, QgsApplication, QgsMessageLog

from . import dependencies

LOG_TAG = "In-between"
INSTALLER = "inbetween:installdependencies"


class InBetweenPlugin:
    def __init__(self, iface):
        self.iface = iface  # None under qgis_process
        self.provider = None
        self.message_widget = None
        self.details_box = None
        dependencies.activate()  # what the installer put in the plugin's folder

    def initProcessing(self):  # noqa: N802 (QGIS's name)
        from ..processing_provider.provider import InBetweenProvider

        self.provider = InBetweenProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)
        message = dependencies.missing_message()
        if message:
            QgsMessageLog.logMessage(message, LOG_TAG, Qgis.MessageLevel.Warning)

    def initGui(self):  # noqa: N802
        self.initProcessing()
        message = dependencies.missing_message()
        if message and self.iface is not None:
            self.offer_install(message)

    def offer_install(self, message):
        """A message bar entry with the short news, a Details button (the whole message) and an Install button
        that opens the installer algorithm's dialog (choices, progress and log)."""
        from qgis.PyQt.QtWidgets import QMessageBox, QPushButton

        bar = self.iface.messageBar()
        missing = ", ".join(dependencies.missing_packages())
        widget = bar.createMessage(LOG_TAG, f"Python packages missing: {missing}.")
        self.details_box = QMessageBox(QMessageBox.Icon.Information, "In-between: missing Python packages",
                                       message, QMessageBox.StandardButton.Close, self.iface.mainWindow())
        details = QPushButton("Details", widget)
        details.clicked.connect(self.details_box.show)
        install = QPushButton("Install…", widget)
        install.clicked.connect(self.open_installer)
        widget.layout().addWidget(details)
        widget.layout().addWidget(install)
        self.message_widget = widget
        bar.pushWidget(widget, Qgis.MessageLevel.Warning)

    def open_installer(self):
        import processing

        processing.execAlgorithmDialog(INSTALLER, {})
        if self.message_widget is not None and not dependencies.missing_packages(dependencies.CHOICES["cpu"]):
            self.iface.messageBar().popWidget(self.message_widget)
            self.message_widget = None

    def unload(self):
        if self.message_widget is not None and self.iface is not None:
            self.iface.messageBar().popWidget(self.message_widget)
            self.message_widget = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
