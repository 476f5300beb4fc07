"""The plugin in the real QGIS desktop (a window on Xvfb): classFactory with an iface, provider registered."""
import json
import os
import shutil
import subprocess

import pytest

from helpers import ROOT


@pytest.mark.skipif(not (shutil.which("xvfb-run") and os.path.exists("/usr/bin/qgis")),
                    reason="needs xvfb-run and the QGIS desktop")
def test_plugin_loads_in_the_desktop(tmp_path):
    result = tmp_path / "result.json"
    script = (f'source "{ROOT}/scripts/qgis-env.sh"; unset QT_QPA_PLATFORM; '
              f'export INBETWEEN_DESKTOP_RESULT="{result}"; '
              f'xvfb-run -a -s "-screen 0 1280x800x24" /usr/bin/qgis --nologo --code "{ROOT}/tests/desktop_check.py"')
    subprocess.run(["bash", "-c", script], capture_output=True, timeout=180)
    assert result.exists(), "QGIS did not run the check script"
    report = json.loads(result.read_text())
    assert report["loaded"] and report["has_iface"]
    assert {"inbetween:train", "inbetween:generateframes", "inbetween:exportfield"} <= set(report["algorithms"])
