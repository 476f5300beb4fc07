"""The plugin in the real QGIS desktop (a window on Xvfb): classFactory with an iface, provider registered;
a run from the Toolbox's code path and a written project both play frame by frame on the first press."""
import json
import os
import shutil
import subprocess

import pytest

from helpers import ROOT, translation_geotiffs

desktop = pytest.mark.skipif(not (shutil.which("xvfb-run") and os.path.exists("/usr/bin/qgis")),
                             reason="needs xvfb-run and the QGIS desktop")
STEPS = 4


@desktop
def test_plugin_loads_in_the_desktop(tmp_path):
    result = tmp_path / "result.json"
    script = (f'source "{ROOT}/scripts/qgis-env.sh"; unset QT_QPA_PLATFORM; '
              f'export INBETWEEN_DESKTOP_RESULT="{result}"; '
              f'xvfb-run -a -s "-screen 0 1280x800x24" /usr/bin/qgis --nologo --code "{ROOT}/tests/desktop_check.py"')
    subprocess.run(["bash", "-c", script], capture_output=True, timeout=180)
    assert result.exists(), "QGIS did not run the check script"
    report = json.loads(result.read_text())
    assert report["loaded"] and report["has_iface"]
    assert {"inbetween:train", "inbetween:generateframes", "inbetween:exportfield",
            "inbetween:pipeline"} <= set(report["algorithms"])


def _screenshot(tmp_path, *args):
    report = tmp_path / "report.json"
    env = dict(os.environ, INBETWEEN_REPORT=str(report), INBETWEEN_FRAME="2")
    env.pop("QT_QPA_PLATFORM", None)
    subprocess.run([str(ROOT / "scripts" / "screenshot"), *map(str, args)], env=env, capture_output=True,
                   timeout=400)
    assert report.exists(), "QGIS did not run the screenshot script"
    return json.loads(report.read_text())


def _plays_frame_by_frame(report):
    assert report["navigation_mode"] == 1  # QgsTemporalNavigationObject.Animated
    assert report["frame_seconds"] == 15 * 60
    assert (report["begin"], report["end"]) == ("2016-09-28T14:45:00", "2016-09-28T16:00:00")
    assert report["frame_count"] == STEPS + 1 and report["current_frame"] == 2
    field, frames = report["tree"][0], report["tree"][1]
    assert (field["name"], field["renderer"]) == ("advection field", "graduatedSymbol")
    assert frames["name"] == "In-between frames"
    assert [name for name, _expanded in frames["children"]] == [
        f"frame_{j:03d} 2016-09-28 {t} UTC" for j, t in enumerate(("14:45", "15:00", "15:15", "15:30", "15:45"))]
    assert not any(expanded for _name, expanded in frames["children"])


@desktop
def test_a_desktop_run_and_its_project_play_frame_by_frame(provider, tmp_path):
    import processing
    from qgis.core import QgsApplication

    first, second, _ = translation_geotiffs(tmp_path, size=64, steps=STEPS)
    model = str(tmp_path / "m.inbetween")
    processing.run("inbetween:train", dict(FIRST=first, SECOND=second, STEPS=STEPS, ITERATIONS=5, PATCH_SIZE=32,
                                           BATCH_SIZE=1, OUTPUT_MODEL=model))
    run = tmp_path / "run"
    _plays_frame_by_frame(_screenshot(tmp_path, model, run, tmp_path / "run.png"))
    assert (tmp_path / "run.png").stat().st_size > 10000

    # the project the plugin writes opens the same way (nothing set by the screenshot script)
    from inbetween.plugin.layers import write_project
    from inbetween.processing_provider.times import read_time

    frames = sorted(str(p) for p in (run / "frames").glob("frame_*.tif"))
    project = write_project(tmp_path / "p.qgz", frames, [read_time(p) for p in frames],
                            field_path=str(run / "field.gpkg"))
    _plays_frame_by_frame(_screenshot(tmp_path, project, tmp_path / "project.png"))
    assert QgsApplication.processingRegistry().algorithmById("inbetween:pipeline") is not None
