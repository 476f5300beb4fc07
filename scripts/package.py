"""`make package`: the plugin zip the official QGIS plugin repository takes, dist/inbetween-<version>.zip.

One top folder `inbetween/` (the plugin's package name) holding only what the plugin runs on: the
allow-list below, without caches or compiled files. The version is metadata.txt's, the one place it is set.
Not qgis-plugin-ci: it archives a sub-folder of the repository (here the repository root is the plugin),
rewrites metadata.txt in the working tree and needs git history; none of that fits this layout.
Standard library only, so it runs before `make setup`.
"""
import configparser
import os
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_DIR = "inbetween"
FILES = ("__init__.py", "metadata.txt", "LICENSE")
FOLDERS = ("icons", "model", "plugin", "processing_provider")
SKIP_DIRS = {"__pycache__", ".pytest_cache"}
SKIP_SUFFIXES = (".pyc", ".pyo", ".aux.xml")
# The official repository refuses a zip without these (besides the QGIS-side fields).
REQUIRED_METADATA = ("name", "qgisMinimumVersion", "description", "about", "version", "author", "email",
                     "repository", "tracker", "changelog", "icon")


def metadata(root=ROOT):
    meta = configparser.ConfigParser(interpolation=None)
    meta.read(root / "metadata.txt", encoding="utf-8")
    general = meta["general"]
    missing = [k for k in REQUIRED_METADATA if not general.get(k, "").strip()]
    if missing:
        raise SystemExit(f"metadata.txt lacks {', '.join(missing)}")
    if not (root / general["icon"]).is_file():
        raise SystemExit(f"metadata.txt names icon {general['icon']}, which does not exist")
    return general


def plugin_files(root=ROOT):
    """(path on disk, path in the zip) for every file the plugin ships, sorted."""
    for name in FILES:
        yield root / name, f"{PLUGIN_DIR}/{name}"
    for folder in FOLDERS:
        for dirpath, dirnames, filenames in os.walk(root / folder):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith(".") or name.endswith(SKIP_SUFFIXES):
                    continue
                path = Path(dirpath) / name
                yield path, f"{PLUGIN_DIR}/{path.relative_to(root).as_posix()}"


def build(out_dir=ROOT / "dist", root=ROOT):
    """Write the zip (to a temporary name, moved into place when complete) and return its path."""
    version = metadata(root)["version"]
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{PLUGIN_DIR}-{version}.zip"
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=out_dir)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for path, arcname in plugin_files(root):
                zf.write(path, arcname)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


if __name__ == "__main__":
    out = build(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "dist")
    with zipfile.ZipFile(out) as zf:
        n = len(zf.namelist())
    print(f"{out} ({n} files, {out.stat().st_size / 1024:.0f} KiB)")
