"""Installing the Python dependencies from inside QGIS: the real pip, from the real registry, run by the
Python found the way it is found inside QGIS; the message bar in the real QGIS desktop."""
import importlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from helpers import ROOT

SMALL = "inflection==0.5.1"  # tiny, pure Python, no dependencies, not part of QGIS or the project


def _forget(folder, module):
    while str(folder) in sys.path:
        sys.path.remove(str(folder))
    sys.modules.pop(module, None)
    importlib.invalidate_caches()


def test_installer_algorithm_installs_a_pinned_package_the_plugin_then_imports(provider, tmp_path):
    import processing

    target = tmp_path / "packages"
    assert importlib.util.find_spec("inflection") is None
    try:
        result = processing.run("inbetween:installdependencies", {"PACKAGES": SMALL, "TARGET_FOLDER": str(target)})
        assert result["TARGET_FOLDER"] == str(target)
        module = importlib.import_module("inflection")
        assert target in Path(module.__file__).parents
        assert module.pluralize("frame") == "frames"
        assert (target / "inflection-0.5.1.dist-info").is_dir()
        log = (tmp_path / "packages-install.log").read_text()
        assert "Successfully installed inflection-0.5.1" in log
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no work folder left
    finally:
        _forget(target, "inflection")
    # At plugin load the folder is put on the path again, after QGIS's own packages.
    from inbetween.plugin import dependencies

    try:
        dependencies.activate(target)
        assert sys.path[-1] == str(target)
        assert importlib.import_module("inflection").__file__.startswith(str(target))
    finally:
        _forget(target, "inflection")


def test_failed_install_changes_nothing_and_keeps_the_log(provider, tmp_path):
    from inbetween.plugin import dependencies

    target = tmp_path / "packages"
    with pytest.raises(RuntimeError, match="pip failed"):
        dependencies.install(["inflection==0.0.999"], target, log=lambda line: None)
    assert not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["packages-install.log"]
    assert "inflection==0.0.999" in (tmp_path / "packages-install.log").read_text()


def test_canceled_install_stops_pip_and_changes_nothing(provider, tmp_path):
    from inbetween.plugin import dependencies

    target = tmp_path / "packages"
    with pytest.raises(dependencies.InstallCanceled):
        dependencies.install([SMALL], target, log=lambda line: None, is_canceled=lambda: True)
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_python_is_found_when_sys_executable_is_qgis(provider, monkeypatch):
    """Inside QGIS sys.executable is the qgis binary: the interpreter comes from the prefixes."""
    from inbetween.plugin import dependencies

    monkeypatch.setattr(sys, "executable", shutil.which("qgis_process.bin") or "/usr/bin/qgis")
    python = dependencies.qgis_python()
    assert "qgis" not in Path(python).name
    out = subprocess.run([python, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == str(tuple(sys.version_info[:2]))


def test_choices_pin_torch_per_platform():
    from inbetween.plugin import dependencies as deps

    reqs, indexes = deps.requirements_for("cpu", "linux")
    assert "torch==2.13.0+cpu" in reqs and indexes == [deps.TORCH_INDEX + "cpu"]
    assert deps.REQUIRED["onnxruntime"] in reqs and deps.REQUIRED["safetensors"] in reqs
    assert deps.requirements_for("cuda", "linux") == ([deps.REQUIRED[n] for n in deps.CHOICES["cuda"]], [])
    reqs, indexes = deps.requirements_for("cuda", "win32")
    assert f"torch==2.13.0+{deps.TORCH_CUDA}" in reqs and indexes == [deps.TORCH_INDEX + deps.TORCH_CUDA]
    assert deps.requirements_for("cpu", "darwin")[1] == []
    with pytest.raises(ValueError, match="macOS"):
        deps.requirements_for("cuda", "darwin")
    assert deps.requirements_for("onnx-only", "linux") == ([deps.REQUIRED["onnxruntime"]], [])
    assert "numpy" not in " ".join(deps.requirements_for("cpu", "linux")[0])


def test_pins_are_those_of_requirements_txt():
    from packaging.requirements import Requirement

    from inbetween.plugin import dependencies as deps

    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate():
                pins[req.name.lower()] = str(req.specifier)
    for name, requirement in deps.REQUIRED.items():
        if name != "numpy":
            req = Requirement(requirement)
            assert pins.get(req.name.lower()) == str(req.specifier), requirement


@pytest.mark.skipif(not (shutil.which("xvfb-run") and os.path.exists("/usr/bin/qgis")),
                    reason="needs xvfb-run and the QGIS desktop")
def test_desktop_offers_the_installer_when_torch_is_missing(tmp_path):
    """The zip installed in a fresh profile of the real desktop, with QGIS's own Python only (no .venv):
    PyTorch is missing, and the message bar says so with Details and Install buttons."""
    subprocess.run([sys.executable, str(ROOT / "scripts" / "package.py"), str(tmp_path / "dist")], check=True,
                   capture_output=True)
    config = tmp_path / "config"
    plugins = config / "profiles" / "default" / "python" / "plugins"
    plugins.mkdir(parents=True)
    zipfile.ZipFile(next((tmp_path / "dist").glob("inbetween-*.zip"))).extractall(plugins)
    ini = config / "profiles" / "default" / "QGIS" / "QGIS3.ini"
    ini.parent.mkdir(parents=True)
    ini.write_text("[PythonPlugins]\ninbetween=true\n")
    result = tmp_path / "result.json"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "QGIS_PLUGINPATH", "QT_QPA_PLATFORM")}
    env.update(QGIS_CUSTOM_CONFIG_PATH=str(config), INBETWEEN_DESKTOP_RESULT=str(result),
               XDG_RUNTIME_DIR=str(tmp_path / "runtime"))
    (tmp_path / "runtime").mkdir(mode=0o700)
    probe = subprocess.run(["/usr/bin/python3", "-c", "import importlib.util as u; print(u.find_spec('torch'))"],
                           capture_output=True, text=True, env=env)
    if probe.stdout.strip() != "None":
        pytest.skip("QGIS's own Python has torch: nothing is missing to offer")
    subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", "/usr/bin/qgis", "--nologo", "--code",
                    str(ROOT / "tests" / "desktop_installer_check.py")], capture_output=True, env=env, timeout=180)
    assert result.exists(), "QGIS did not run the check script"
    report = json.loads(result.read_text())
    assert report["loaded"]
    ours = [i for i in report["items"] if "torch" in i["text"]]
    assert len(ours) == 1, report
    assert {"Details", "Install…"} <= set(ours[0]["buttons"])
    details = ours[0]["details"]
    assert len(details) == 1 and "inbetween:installdependencies" in details[0] and "onnx-only" in details[0]
    assert "pip install --target" in details[0]
