"""Qt 6 / QGIS 4 readiness, checked with QGIS's own migration tool, pyqt5to6 (package qgis-pyqt5to6).

    python3 scripts/qt6_check.py          list what pyqt5to6 would change, as a diff; exit 1 if anything
    python3 scripts/qt6_check.py --fix    apply those changes to the checkout

pyqt5to6 rewrites files in place and globs through symlinks (.venv), so it runs on a copy of the project's
Python files. Without a Qt 6 build of QGIS to introspect it checks Qt's enums, imports, exec_() and
QVariant, not QGIS's own enums (those use scoped names by hand, e.g. Qgis.MessageLevel.Warning).
Standard library only; the tool comes from .venv/qt6check (make setup).
"""
import difflib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / ".venv" / "qt6check" / "bin" / "pyqt5to6"


def python_files(root=ROOT):
    """The project's own Python files (relative paths), never those of a venv, profile or cache."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in ("__pycache__", "dist")]
        found += [Path(dirpath, f).relative_to(root) for f in filenames if f.endswith(".py")]
    return sorted(found)


def check(fix=False, root=ROOT):
    """(exit code, findings as a unified diff)."""
    if not TOOL.exists():
        raise SystemExit(f"{TOOL} is missing: run make setup")
    with tempfile.TemporaryDirectory() as tmp:
        files = python_files(root)
        for rel in files:
            (Path(tmp) / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / rel, Path(tmp) / rel)
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
        run = subprocess.run([str(TOOL), "."], cwd=tmp, capture_output=True, text=True, env=env)
        diff = []
        for rel in files:
            before = (root / rel).read_text(encoding="utf-8")
            after = (Path(tmp) / rel).read_text(encoding="utf-8")
            if before != after:
                diff += difflib.unified_diff(before.splitlines(True), after.splitlines(True), f"a/{rel}", f"b/{rel}")
                if fix:
                    (root / rel).write_text(after, encoding="utf-8")
        # pyqt5to6 exits 1 when it changed a file; warnings it cannot fix go to stderr.
        warnings = [line for line in run.stderr.splitlines() if "WARNING" in line]
        failed = run.returncode not in (0, 1) or (run.returncode == 1 and not diff)
        if failed:
            raise SystemExit(f"pyqt5to6 failed ({run.returncode}):\n{run.stdout}\n{run.stderr}")
        return (1 if diff or warnings else 0), "".join(diff) + "".join(w + "\n" for w in warnings)


if __name__ == "__main__":
    code, findings = check(fix="--fix" in sys.argv[1:])
    sys.stdout.write(findings)
    print(("applied: " if "--fix" in sys.argv[1:] else "findings: ") + ("none" if not findings else "see above"))
    sys.exit(0 if "--fix" in sys.argv[1:] else code)
