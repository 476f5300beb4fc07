"""Test set-up: the checkout importable as plugin package `inbetween` (as QGIS loads it) and its
`model` package importable on its own; QGIS offscreen with a private profile."""
import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / ".qgis-profile" / "python" / "plugins"
PLUGINS.mkdir(parents=True, exist_ok=True)
if not (PLUGINS / "inbetween").exists():
    os.symlink(ROOT, PLUGINS / "inbetween")
# QGIS's own Processing plugin lives outside the Python path of a plain interpreter.
for path in (str(ROOT), str(PLUGINS), "/usr/share/qgis/python/plugins"):
    if path not in sys.path:
        sys.path.insert(0, path)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# QGIS computes statistics when it loads a PNG and GDAL saves them in a .aux.xml beside the file:
# never write beside the shared read-only data (this process and the qgis_process runs it starts).
os.environ["GDAL_PAM_ENABLED"] = "NO"
os.environ["QGIS_CUSTOM_CONFIG_PATH"] = str(ROOT / ".qgis-profile" / "config")
os.environ.setdefault("XDG_RUNTIME_DIR", str(ROOT / ".qgis-profile" / "runtime"))
Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)

@pytest.fixture(scope="session")
def provider(qgis_app):
    """The plugin loaded as QGIS loads it, with its provider registered and Processing initialised."""
    from processing.core.Processing import Processing

    Processing.initialize()
    _layer_tree_view_for_postprocessing()
    import inbetween

    plugin = inbetween.classFactory(None)
    plugin.initProcessing()
    yield plugin.provider
    plugin.unload()


def _layer_tree_view_for_postprocessing():
    """QGIS >= 3.40's Processing post-processing (runAndLoadResults) uses iface.layerTreeView(), which
    pytest-qgis's interface lacks: give it a real layer tree view of the project."""
    import qgis.utils

    iface = qgis.utils.iface
    if iface is None or hasattr(iface, "layerTreeView"):
        return
    from qgis.core import QgsLayerTreeModel, QgsProject
    from qgis.gui import QgsLayerTreeView

    view = QgsLayerTreeView()
    view.setModel(QgsLayerTreeModel(QgsProject.instance().layerTreeRoot(), view))
    iface.layerTreeView = lambda: view


@pytest.fixture
def fresh_dir(tmp_path):
    d = tmp_path / "out"
    d.mkdir()
    yield d
    shutil.rmtree(d, ignore_errors=True)
