"""Run inside the QGIS desktop (qgis --code): report whether the plugin loaded with an iface and
registered its provider, then quit. The result goes to $INBETWEEN_DESKTOP_RESULT as JSON."""
import json
import os

from qgis.core import QgsApplication
from qgis.PyQt.QtCore import QTimer
from qgis.utils import iface, plugins


def check():
    provider = QgsApplication.processingRegistry().providerById("inbetween")
    result = {"loaded": "inbetween" in plugins, "has_iface": iface is not None,
              "algorithms": sorted(a.id() for a in provider.algorithms()) if provider else []}
    with open(os.environ["INBETWEEN_DESKTOP_RESULT"], "w") as f:
        json.dump(result, f)
    iface.actionExit().trigger()


QTimer.singleShot(3000, check)
