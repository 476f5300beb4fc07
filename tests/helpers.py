"""Helpers shared by the tests: real qgis_process runs and the optional real data."""
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def qgis_process(*args, timeout=900, check=True):
    """Run scripts/qgis-process (real qgis_process) and return the CompletedProcess."""
    result = subprocess.run([str(ROOT / "scripts" / "qgis-process"), *map(str, args)], capture_output=True,
                            text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"qgis_process {' '.join(map(str, args))} failed ({result.returncode}):\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result



def shared_data(sub):
    """A folder of ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA / sub
    if not path.is_dir():
        pytest.skip(f"real data not available: {path} is absent")
    return path


