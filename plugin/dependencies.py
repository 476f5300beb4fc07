"""Which Python packages the algorithms need, and installing the missing ones from inside QGIS.

Missing packages are found with importlib.util.find_spec, so loading the plugin never imports torch. They
are installed with ``python -m pip install --target`` into a folder of the plugin's own in the QGIS profile
(outside the plugin's folder, so a plugin upgrade keeps it; one per Python minor version, so a QGIS
upgrade to a newer Python does not load binaries built for the old one). That folder is appended to
sys.path at plugin load: QGIS's own packages (numpy above all, which GDAL is built against) stay first.
"""
import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path


def _by_python(older, py313):
    """Python 3.13 (Debian 13, recent QGIS builds) needs releases that have wheels for it."""
    return py313 if sys.version_info >= (3, 13) else older


# import name -> pip requirement, the pins of requirements.txt (a test keeps the two equal). numpy is
# QGIS's own and never installed here.
REQUIRED = {
    "numpy": "numpy",
    "torch": "torch==2.13.0",
    "safetensors": "safetensors==0.4.5",
    "cv2": "opencv-python-headless==4.10.0.84",
    "ot": _by_python("pot==0.9.5", "pot==0.9.6"),
    "skimage": _by_python("scikit-image==0.24.0", "scikit-image==0.25.2"),
    "onnxruntime": "onnxruntime==1.20.1",
    "onnx": _by_python("onnx==1.17.0", "onnx==1.18.0"),
}
# What each choice of the installer puts in the folder. An exported .onnx model runs with onnxruntime alone.
CHOICES = {
    "cpu": ("torch", "safetensors", "cv2", "ot", "skimage", "onnxruntime", "onnx"),
    "cuda": ("torch", "safetensors", "cv2", "ot", "skimage", "onnxruntime", "onnx"),
    "onnx-only": ("onnxruntime",),
}
# PyTorch's own package index: PyPI's Linux torch is the CUDA build and its Windows torch the CPU one;
# the other builds come from here (macOS has one build, from PyPI).
TORCH_INDEX = "https://download.pytorch.org/whl/"
TORCH_CUDA = "cu130"
# optional: only some methods need them (interpolate's pysteps-*), so the plugin does not ask for them at load
OPTIONAL = {"pysteps": "pysteps==1.21.5"}


def missing_packages(names=None):
    """Return the pip requirements of the packages that cannot be found."""
    names = names or REQUIRED
    known = {**REQUIRED, **OPTIONAL}
    return [known[n] for n in names if importlib.util.find_spec(n) is None]


def requirements_for(choice, platform=sys.platform):
    """(pip requirements, extra package indexes) for an installer choice on this platform."""
    if choice not in CHOICES:
        raise ValueError(f"unknown choice {choice!r}: one of {', '.join(CHOICES)}")
    reqs = [REQUIRED[n] for n in CHOICES[choice]]
    indexes = []
    if "torch" in CHOICES[choice] and platform != "darwin":
        torch = REQUIRED["torch"]
        if choice == "cpu":
            reqs[reqs.index(torch)] = f"{torch}+cpu"
            indexes.append(TORCH_INDEX + "cpu")
        elif platform.startswith("win"):
            reqs[reqs.index(torch)] = f"{torch}+{TORCH_CUDA}"
            indexes.append(TORCH_INDEX + TORCH_CUDA)
    elif choice == "cuda" and platform == "darwin":
        raise ValueError("PyTorch has no CUDA build for macOS: choose cpu (it uses the Apple GPU through MPS)")
    return reqs, indexes


def default_target():
    """The plugin's own package folder in the current QGIS profile."""
    from qgis.core import QgsApplication

    version = f"py{sys.version_info.major}.{sys.version_info.minor}"
    return Path(QgsApplication.qgisSettingsDirPath()) / "python" / "dependencies" / f"inbetween-{version}"


def activate(folder=None):
    """Make the packages in ``folder`` (default: the plugin's own) importable, after QGIS's own."""
    folder = str(folder or default_target())
    if os.path.isdir(folder) and folder not in sys.path:
        sys.path.append(folder)
        importlib.invalidate_caches()
    return folder


def python_candidates():
    """Where the Python that QGIS runs lives. Inside QGIS sys.executable is QGIS itself (qgis,
    qgis-bin.exe, QGIS.app/Contents/MacOS/QGIS), so look under the interpreter's prefixes: Linux and
    macOS builds keep it in <prefix>/bin, OSGeo4W in apps/Python3xx (= sys.prefix) as python.exe, older
    macOS bundles in QGIS.app/Contents/MacOS/bin (QgsApplication.prefixPath())."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    suffix = ".exe" if os.name == "nt" else ""
    names = [f"python{version}{suffix}", f"python3{suffix}", f"python{suffix}"]
    prefixes = [sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix]
    try:
        from qgis.core import QgsApplication

        prefixes.append(QgsApplication.prefixPath())
    except ImportError:
        pass
    found = []
    if "python" in Path(sys.executable).name.lower():
        found.append(sys.executable)
    for prefix in dict.fromkeys(p for p in prefixes if p):
        for folder in (Path(prefix), Path(prefix) / "bin"):
            found += [str(folder / n) for n in names if (folder / n).is_file()]
    found += [p for p in (shutil.which(f"python{version}"),) if p]
    return list(dict.fromkeys(found))


def qgis_python():
    """The first candidate that is this very Python version and has pip, or a clear error."""
    wanted = f"{sys.version_info.major}.{sys.version_info.minor}"
    probe = "import sys, pip; print('%d.%d' % sys.version_info[:2])"
    tried = []
    for candidate in python_candidates():
        result = subprocess.run([candidate, "-c", probe], capture_output=True, text=True, timeout=60,
                                **_no_window())
        if result.returncode == 0 and result.stdout.strip() == wanted:
            return candidate
        tried.append(f"{candidate}: {(result.stderr.strip().splitlines() or [result.stdout.strip()])[-1]}")
    hint = " On Debian/Ubuntu: sudo apt install python3-pip." if sys.platform.startswith("linux") else ""
    raise RuntimeError(f"Found no Python {wanted} with pip beside QGIS ({'; '.join(tried) or 'none found'})."
                       + hint)


def _no_window():
    """No console window flashing up on Windows."""
    return {"creationflags": subprocess.CREATE_NO_WINDOW} if os.name == "nt" else {}


def pip_command(python, requirements, target, constraints=None, indexes=()):
    cmd = [python, "-m", "pip", "install", "--target", str(target), "--no-input", "--progress-bar", "off",
           "--disable-pip-version-check", "--no-warn-script-location"]
    if constraints:
        cmd += ["--constraint", str(constraints)]
    for index in indexes:
        cmd += ["--extra-index-url", index]
    return cmd + list(requirements)


def install(requirements, target=None, indexes=(), log=print, progress=lambda percent: None,
            is_canceled=lambda: False, python=None):
    """pip-install ``requirements`` into ``target`` (default: the plugin's folder) and make them importable.

    pip writes into a temporary folder beside the target, moved into place only when pip succeeded
    (removed on failure or cancel). numpy is pinned to QGIS's own, so that every binary package is
    resolved for it, and left out of the folder. Returns the target; the pip log is kept beside it.
    """
    target = Path(target or default_target())
    target.parent.mkdir(parents=True, exist_ok=True)
    python = python or qgis_python()
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    log_path = target.parent / f"{target.name}-install.log"
    try:
        constraints = None
        try:
            import numpy

            constraints = work / "constraints.txt"
            constraints.write_text(f"numpy=={numpy.__version__}\n")
        except ImportError:
            pass
        cmd = pip_command(python, requirements, work / "packages", constraints, indexes)
        log(" ".join(cmd))
        with open(log_path, "w", encoding="utf-8") as log_file:
            log_file.write(" ".join(cmd) + "\n")
            code = _run(cmd, log_file, log, progress, is_canceled, len(requirements))
        if code is None:
            raise InstallCanceled("installation canceled: nothing was changed")
        if code != 0:
            raise RuntimeError(f"pip failed (exit code {code}); nothing was changed. Log: {log_path}")
        _remove_distribution(work / "packages", "numpy")
        target.mkdir(exist_ok=True)
        for entry in (work / "packages").iterdir():
            dest = target / entry.name
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest)
            elif dest.exists() or dest.is_symlink():
                dest.unlink()
            os.replace(entry, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    activate(target)
    progress(100)
    log(f"Installed into {target} (log: {log_path})")
    return target


class InstallCanceled(RuntimeError):
    pass


def _run(cmd, log_file, log, progress, is_canceled, n_requirements):
    """Run pip, passing each line to the log; None when canceled (pip is then stopped)."""
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            bufsize=1, **_no_window())
    lines = []

    def read():
        for line in proc.stdout:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    shown, collected = 0, 0
    while True:
        finished = proc.poll() is not None
        reader.join(timeout=0 if finished else 0.2)
        for line in lines[shown:]:
            log_file.write(line)
            log(line.rstrip())
            if line.startswith("Collecting"):  # requirements first, then their dependencies
                collected += 1
                progress(min(70.0, 70.0 * collected / max(3 * n_requirements, 1)))
            elif line.startswith("Installing collected packages"):
                progress(80.0)
        shown = len(lines)
        if finished and not reader.is_alive():
            return proc.returncode
        if is_canceled():
            proc.kill()
            proc.wait()
            return None


def _remove_distribution(folder, name):
    """Delete one installed distribution from a --target folder, by the files its RECORD lists."""
    for info in folder.glob(f"{name}-*.dist-info"):
        record = info / "RECORD"
        files = [line.split(",")[0] for line in record.read_text().splitlines()] if record.exists() else []
        for rel in files:
            path = (folder / rel).resolve()
            if folder.resolve() in path.parents and path.is_file():
                path.unlink()
        for top in {Path(rel).parts[0] for rel in files if rel}:
            path = folder / top
            if path.is_dir() and not any(p.is_file() for p in path.rglob("*")):
                shutil.rmtree(path)
        shutil.rmtree(info, ignore_errors=True)


def install_command(requirements):
    """The shell command that installs ``requirements`` where the plugin looks for them."""
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "Makefile").exists():
        hint = f"cd {checkout} && make setup   (or: "
    else:
        hint = "("
    try:
        target = default_target()
    except ImportError:
        target = "FOLDER"
    reqs = " ".join(f"'{r}'" for r in dict.fromkeys(requirements) if r != "numpy")
    return f"{hint}python3 -m pip install --target '{target}' {reqs})"


def missing_message(names=None):
    """A user-facing sentence, or '' when nothing is missing."""
    missing = missing_packages(names)
    if not missing:
        return ""
    return ("In-between needs Python packages that QGIS cannot find: " + ", ".join(missing)
            + ". Install them from inside QGIS with the Processing algorithm In-between → Set-up → "
            "Install Python dependencies (inbetween:installdependencies), choosing CPU or CUDA PyTorch; "
            "for running exported .onnx models only, its choice onnx-only installs onnxruntime alone. "
            "From a shell: " + install_command(missing))
