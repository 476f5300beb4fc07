"""Which Python packages the algorithms need, and how to install the missing ones.

Checked with importlib.util.find_spec so that loading the plugin never imports torch.
"""
import importlib.util
import sys
from pathlib import Path

# import name -> pip requirement (the pins of requirements.txt)
REQUIRED = {
    "numpy": "numpy<2",
    "torch": "torch==2.13.0",
    "safetensors": "safetensors==0.4.5",
    "cv2": "opencv-python-headless==4.10.0.84",
    "ot": "pot==0.9.5",
    "skimage": "scikit-image==0.24.0",
    "onnxruntime": "onnxruntime==1.20.1",
    "onnx": "onnx==1.17.0",
}
# optional: only some methods need them (interpolate's pysteps-*), so the plugin does not ask for them at load
OPTIONAL = {"pysteps": "pysteps==1.21.5"}


def missing_packages(names=None):
    """Return the pip requirements of the packages that cannot be found."""
    names = names or REQUIRED
    known = {**REQUIRED, **OPTIONAL}
    return [known[n] for n in names if importlib.util.find_spec(n) is None]


def install_command(requirements):
    """The exact command that installs ``requirements`` into the Python QGIS runs."""
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "Makefile").exists():
        hint = f"cd {checkout} && make setup   (or: "
    else:
        hint = "("
    python = sys.executable if "python" in Path(sys.executable).name else "python3"
    reqs = " ".join(f"'{r}'" for r in dict.fromkeys([*requirements, "numpy<2"]))
    return f"{hint}{python} -m pip install --user {reqs})"


def missing_message(names=None):
    """A user-facing sentence, or '' when nothing is missing."""
    missing = missing_packages(names)
    if not missing:
        return ""
    return ("In-between needs Python packages that QGIS cannot find: " + ", ".join(missing)
            + ". Install them with: " + install_command(missing))
