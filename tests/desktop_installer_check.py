"""Run inside the QGIS desktop (qgis --code) with the plugin installed from its zip and PyTorch missing:
report the message bar entry the plugin shows (text, buttons, what Details opens), then quit.
The result goes to $INBETWEEN_DESKTOP_RESULT as JSON."""
import json
import os

from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QMessageBox, QPushButton
from qgis.utils import iface, plugins


def check():
    result = {"loaded": "inbetween" in plugins, "items": []}
    for item in iface.messageBar().items():
        buttons = {b.text(): b for b in item.findChildren(QPushButton)}
        entry = {"text": item.text(), "buttons": sorted(buttons)}
        if "Details" in buttons:
            buttons["Details"].click()
            boxes = [w for w in iface.mainWindow().findChildren(QMessageBox) if w.isVisible()]
            entry["details"] = [b.text() for b in boxes]
        result["items"].append(entry)
    with open(os.environ["INBETWEEN_DESKTOP_RESULT"], "w") as f:
        json.dump(result, f)
    iface.actionExit().trigger()


QTimer.singleShot(3000, check)
