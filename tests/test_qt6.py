"""QGIS 4 (Qt 6) readiness: QGIS's own migration tool pyqt5to6 finds nothing to change in the project."""
import subprocess
import sys

from helpers import ROOT


def test_pyqt5to6_finds_nothing_to_migrate():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "qt6_check.py")], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, (f"Fix with: python3 scripts/qt6_check.py --fix\n{result.stdout[-6000:]}"
                                    f"{result.stderr[-2000:]}")
    assert "findings: none" in result.stdout


def test_the_check_sees_an_unscoped_qt_enum(tmp_path):
    """The checker is not blind (as it is when it runs beside Debian's Qt 5 QGIS)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import qt6_check
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    (tmp_path / "old.py").write_text("from qgis.PyQt.QtCore import Qt\nutc = Qt.UTC\n")
    code, findings = qt6_check.check(root=tmp_path)
    assert code == 1 and "+utc = Qt.TimeSpec.UTC" in findings
    assert (tmp_path / "old.py").read_text().endswith("Qt.UTC\n")  # listed, not changed
