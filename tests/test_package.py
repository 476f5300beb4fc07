"""`make package`: the zip the QGIS plugin repository takes, installed the way the Plugin Manager installs
a zip (unpacked into a fresh profile's python/plugins) and loaded from there by the real qgis_process."""
import configparser
import json
import os
import subprocess
import sys
import zipfile

import pytest

from helpers import ROOT, qgis_process_binary


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "package.py"), str(out)], check=True,
                   capture_output=True, text=True)
    meta = configparser.ConfigParser(interpolation=None)
    meta.read(ROOT / "metadata.txt")
    path = out / f"inbetween-{meta['general']['version']}.zip"
    assert path.is_file(), sorted(out.iterdir())
    return path


def test_zip_has_one_plugin_folder_and_no_development_files(package):
    names = zipfile.ZipFile(package).namelist()
    assert {n.split("/")[0] for n in names} == {"inbetween"}
    for required in ("__init__.py", "metadata.txt", "LICENSE", "icons/icon.svg", "plugin/dependencies.py",
                     "processing_provider/provider.py", "model/networks.py"):
        assert f"inbetween/{required}" in names
    for name in names:
        parts = name.split("/")
        assert not {"tests", "bench", "scripts", ".ci", ".git", "docs", "__pycache__", ".venv",
                    ".qgis-profile", "dist"} & set(parts), name
        assert not name.endswith((".pyc", ".tif", ".gpkg", ".nc", ".inbetween", ".onnx")), name
        assert parts[1] not in ("Makefile", "requirements.txt", "constraints.txt", "pytest.ini"), name


def test_zip_metadata_is_what_the_repository_requires(package):
    with zipfile.ZipFile(package) as zf:
        meta = configparser.ConfigParser(interpolation=None)
        meta.read_string(zf.read("inbetween/metadata.txt").decode("utf-8"))
        license_text = zf.read("inbetween/LICENSE").decode("utf-8")
    general = meta["general"]
    assert package.name == f"inbetween-{general['version']}.zip"
    assert general["version"] in general["changelog"]
    assert general["qgisMinimumVersion"] == "3.22"
    assert general["qgisMaximumVersion"] == "4.99"
    assert general["supportsQt6"] == "True"
    assert "GNU GENERAL PUBLIC LICENSE" in license_text and "Version 2" in license_text
    assert "any later version" in license_text


def test_qgis_process_loads_the_provider_from_the_unzipped_plugin(package, tmp_path):
    config = tmp_path / "config"
    plugins = config / "profiles" / "default" / "python" / "plugins"
    plugins.mkdir(parents=True)
    zipfile.ZipFile(package).extractall(plugins)
    ini = config / "profiles" / "default" / "QGIS" / "QGIS3.ini"
    ini.parent.mkdir(parents=True)
    ini.write_text("[PythonPlugins]\ninbetween=true\n")
    # Only QGIS's own environment: no checkout on any path, so the plugin can come from the zip alone.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "QGIS_PLUGINPATH")}
    env.update(QGIS_CUSTOM_CONFIG_PATH=str(config), QT_QPA_PLATFORM="offscreen",
               XDG_RUNTIME_DIR=str(tmp_path / "runtime"))
    (tmp_path / "runtime").mkdir(mode=0o700)
    result = subprocess.run([qgis_process_binary(), "--json", "list"], capture_output=True, text=True,
                            env=env, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    listing = json.loads(result.stdout[result.stdout.index("{"):])
    algorithms = set(listing["providers"]["inbetween"]["algorithms"])
    assert {"inbetween:train", "inbetween:generateframes", "inbetween:exportfield",
            "inbetween:installdependencies"} <= algorithms
    plugins_listed = subprocess.run([qgis_process_binary(), "--json", "plugins"], capture_output=True,
                                    text=True, env=env, cwd=tmp_path, timeout=300)
    assert plugins_listed.returncode == 0, plugins_listed.stderr[-3000:]
    info = json.loads(plugins_listed.stdout[plugins_listed.stdout.index("{"):])["plugins"]["inbetween"]
    assert info["loaded"] is True
