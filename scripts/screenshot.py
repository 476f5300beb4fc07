"""Run inside a real QGIS window (qgis --code): show one moment of the Temporal Controller with the field
over a frame, save a screenshot, report what the desktop shows, quit.

Two ways in (scripts/screenshot does it on Xvfb):
- INBETWEEN_MODEL (a model file from inbetween:train) and INBETWEEN_OUT (a folder): run Generate frames and
  Export field as a user does from the Toolbox (processing.runAndLoadResults, FIRST/SECOND from the model),
  so the layers, styles and Temporal Controller are the plugin's own desktop set-up;
- else INBETWEEN_PROJECT: open that .qgz (written by the plugin) as File > Open does.
Then go to frame INBETWEEN_FRAME of the Temporal Controller without touching its settings, save the window
to INBETWEEN_SHOT and, with INBETWEEN_REPORT, what the controller and layer tree hold (JSON).
"""
import json
import os

from qgis.core import QgsProject
from qgis.PyQt.QtCore import QTimer
from qgis.utils import iface

shot = os.environ["INBETWEEN_SHOT"]
frame = int(os.environ.get("INBETWEEN_FRAME", "5"))


def run_algorithms():
    import processing

    out = os.environ["INBETWEEN_OUT"]
    model = os.environ["INBETWEEN_MODEL"]
    processing.runAndLoadResults("inbetween:generateframes", {"MODEL": model,
                                                             "OUTPUT_FOLDER": os.path.join(out, "frames")})
    processing.runAndLoadResults("inbetween:exportfield", {"MODEL": model, "SPACING": 16,
                                                          "OUTPUT": os.path.join(out, "field.gpkg")})


def show_frame():
    from qgis.PyQt.QtWidgets import QDockWidget

    if os.environ.get("INBETWEEN_MODEL"):
        run_algorithms()
    window = iface.mainWindow()
    window.showMaximized()
    for dock in window.findChildren(QDockWidget):  # the Temporal Controller panel, docked at the bottom
        if "Temporal" in dock.objectName():
            dock.show()
        elif "Browser" in dock.objectName():
            dock.hide()
    controller = iface.mapCanvas().temporalController()  # the Temporal Controller panel's navigation object
    controller.setCurrentFrameNumber(frame)
    iface.mapCanvas().zoomToFullExtent()
    iface.mapCanvas().refreshAllLayers()
    QTimer.singleShot(6000, grab)


def report():
    controller = iface.mapCanvas().temporalController()
    extent = controller.temporalExtents()
    nodes = []
    for node in QgsProject.instance().layerTreeRoot().children():
        children = [(c.name(), c.isExpanded()) for c in node.children()] if hasattr(node, "findLayers") else []
        layer = node.layer() if hasattr(node, "layer") else None
        nodes.append({"name": node.name(), "expanded": node.isExpanded(), "children": children,
                      "renderer": layer.renderer().type() if layer is not None and layer.renderer() else None})
    frames = [n.layer() for n in QgsProject.instance().layerTreeRoot().findLayers() if n.layer().type() == 1]
    return {"navigation_mode": int(controller.navigationMode()),
            "frame_seconds": controller.frameDuration().seconds(),
            "begin": extent.begin().toUTC().toString("yyyy-MM-ddThh:mm:ss"),
            "end": extent.end().toUTC().toString("yyyy-MM-ddThh:mm:ss"),
            "frame_count": controller.totalFrameCount(), "current_frame": controller.currentFrameNumber(),
            "frame_renderers": sorted({f.renderer().type() for f in frames}), "tree": nodes}


def grab():
    iface.mainWindow().grab().save(shot)
    if os.environ.get("INBETWEEN_REPORT"):
        with open(os.environ["INBETWEEN_REPORT"], "w") as f:
            json.dump(report(), f, indent=1)
    QgsProject.instance().clear()
    iface.actionExit().trigger()


if not os.environ.get("INBETWEEN_MODEL"):
    QgsProject.instance().read(os.environ["INBETWEEN_PROJECT"])
QTimer.singleShot(3000, show_frame)
