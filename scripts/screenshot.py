"""Run inside a real QGIS window (qgis --code): open the demo project, show one moment of the
Temporal Controller with the field over a frame, save a screenshot, quit.

Usage (scripts/screenshot does it on Xvfb): qgis --nologo --code scripts/screenshot.py
Environment: INBETWEEN_PROJECT (the .qgz), INBETWEEN_SHOT (the PNG), INBETWEEN_FRAME (frame index).
"""
import os

from qgis.core import QgsProject
from qgis.PyQt.QtCore import QTimer
from qgis.utils import iface

project_path = os.environ["INBETWEEN_PROJECT"]
shot = os.environ["INBETWEEN_SHOT"]
frame = int(os.environ.get("INBETWEEN_FRAME", "4"))


def show_frame():
    from qgis.PyQt.QtWidgets import QDockWidget

    window = iface.mainWindow()
    window.showMaximized()
    for dock in window.findChildren(QDockWidget):  # the Temporal Controller panel, docked at the bottom
        if "Temporal" in dock.objectName():
            dock.show()
        elif "Browser" in dock.objectName():
            dock.hide()
    from qgis.core import QgsTemporalNavigationObject

    controller = iface.mapCanvas().temporalController()  # the Temporal Controller panel's navigation object
    controller.setNavigationMode(QgsTemporalNavigationObject.Animated)
    controller.setCurrentFrameNumber(frame)
    iface.mapCanvas().zoomToFullExtent()
    iface.mapCanvas().refreshAllLayers()
    QTimer.singleShot(6000, grab)


def grab():
    iface.mainWindow().grab().save(shot)
    QgsProject.instance().clear()
    iface.actionExit().trigger()


QgsProject.instance().read(project_path)
QTimer.singleShot(3000, show_frame)
