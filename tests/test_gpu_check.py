"""make gpu-check without a card: it skips cleanly; its dry run (--device cpu --tiny) runs every stage in a
process where QGIS, GDAL, POT and matplotlib cannot be imported (as on a plain CUDA PyTorch node); the
inputs that make gpu-inputs writes; the table and the held-out scores."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import SHARED_DATA

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench import gpu_check, gpu_inputs  # noqa: E402

BLOCKED = ("qgis", "osgeo", "ot", "matplotlib", "PyQt5")


def _blocker(tmp_path, modules):
    """A folder whose sitecustomize.py makes importing ``modules`` fail, in this process's children and
    in theirs (PYTHONPATH is inherited)."""
    d = tmp_path / "blocker"
    d.mkdir(exist_ok=True)
    (d / "sitecustomize.py").write_text(f"import sys\nfor m in {tuple(modules)!r}:\n    sys.modules[m] = None\n")
    return d


def _env(blocker=None, **extra):
    env = dict(os.environ, OMP_NUM_THREADS="1", **extra)
    env.pop("PYTHONPATH", None)
    if blocker:
        env["PYTHONPATH"] = str(blocker)
    return env


def test_make_gpu_check_skips_without_cuda(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: make gpu-check would run the real check")
    p = subprocess.run(["make", "-s", "gpu-check", f"PY={sys.executable}"], cwd=ROOT, capture_output=True,
                       text=True, timeout=120, env=_env())
    assert p.returncode == 0, p.stdout + p.stderr
    assert "gpu-check: skipped: CUDA is not available" in p.stdout and "Nothing was measured" in p.stdout
    # without torch at all (python3 with no PyTorch): skipped too, exit 0, nothing written
    out = tmp_path / "out"
    p = subprocess.run([sys.executable, "-m", "bench.gpu_check", "--out", str(out)], cwd=ROOT, capture_output=True,
                       text=True, timeout=120, env=_env(_blocker(tmp_path, ["torch"])))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "gpu-check: skipped: PyTorch is not installed" in p.stdout
    assert not out.exists()


@pytest.fixture(scope="module")
def synthetic_inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("gpu-inputs")
    gpu_inputs.write_inputs(d, *gpu_inputs.synthetic_inputs(96))
    return d


def test_dry_run_runs_every_stage_without_qgis_gdal_pot_matplotlib(synthetic_inputs, tmp_path):
    pytest.importorskip("torch")
    blocker = _blocker(tmp_path, BLOCKED)
    env = _env(blocker)
    probe = subprocess.run([sys.executable, "-c", "import osgeo"], capture_output=True, text=True, env=env)
    assert probe.returncode != 0 and "import of osgeo halted" in probe.stderr   # the blocker blocks
    out = tmp_path / "out"
    p = subprocess.run([sys.executable, "-m", "bench.gpu_check", "--device", "cpu", "--tiny", "--inputs",
                        str(synthetic_inputs), "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                       timeout=300, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    rows = json.loads((out / "gpu_check.json").read_text())["rows"]
    text = (out / "table.md").read_text()
    assert text.strip() in p.stdout and "CPU dry run" in text.splitlines()[0]
    assert not any("FAILED" in r[2] or "not run" in r[2] or "cut" in r[2] for r in rows), text
    by_stage = {}
    for stage, what, result in rows:
        by_stage.setdefault(stage, []).append((what, result))
    # the CUDA tests were collected and skipped for want of CUDA (not for an import error)
    assert by_stage["cuda tests"][0][1].startswith("7 skipped"), text
    assert ("  skipped", "CUDA is not available") in by_stage["cuda tests"]
    # torchrun: one process, gloo on the CPU, DDP trained and the weights checked in sync
    assert by_stage["torchrun"][0][1].startswith("ok: backend gloo on cpu, world size 1"), text
    # profile: wall time per iteration against the time in operators, and the operators that take most
    prof = by_stage["profile"]
    assert prof[0][0].startswith("paper-example-1 paper, 32² x 2: per iteration") and "wall" in prof[0][1], text
    assert len(prof) >= 2 and all("ms/it" in r for _, r in prof[1:]), text
    assert (out / "profile_paper.txt").stat().st_size > 0
    tp = dict(by_stage["throughput"])
    for mode in ("accurate", "paper"):
        assert "patches/s" in tp[f"paper-example-1 {mode}, 32² x 2: reference, fp32 eager"]
        assert "x the reference" in tp[f"paper-example-1 {mode}, 32² x 2: train_pair as shipped"]
    assert "x the reference" in tp["paper-example-1 paper: + fused Adam"]
    assert tp["paper-example-1 paper: + fused Adam + torch.compile"].startswith("not tried on the CPU")
    tr = dict(by_stage["training"])
    for mode in ("accurate", "paper"):
        assert "MAE" in tr[f"FMI paper-example-1 {mode}"] and "CSI@10/20/30" in tr[f"FMI paper-example-1 {mode}"]
    import cv2

    for preset in gpu_check.S1_PRESETS:
        assert "2/2 it" in tr[f"Sentinel-1 {preset} paper"]
        for kind in ("frames", "field"):
            img = cv2.imread(str(out / f"s1_{preset}_paper_{kind}.png"))
            assert img is not None and img.ndim == 3 and img.shape[0] > 26 and img.std() > 0
    # the montage shows five frames side by side
    img = cv2.imread(str(out / "fmi_paper-example-1_accurate_frames.png"))
    assert img.shape[1] == 5 * 300 + 4 * 4


def test_format_table():
    t = gpu_check.format_table([("a", "b|c", 1.5), ("stage two", "x", "long result")], "title")
    lines = t.splitlines()
    assert lines[0] == "title"
    assert lines[1] == "| stage     | what | result      |"
    assert lines[2] == "| --------- | ---- | ----------- |"
    assert lines[3] == "| a         | b/c  | 1.5         |"
    assert len({len(line) for line in lines[1:]}) == 1


def test_heldout_scores_and_clock():
    rng = np.random.default_rng(0)
    seq = (rng.random((5, 1, 32, 32)) * 50).astype(np.float32)
    valid = np.ones((32, 32), bool)
    s = gpu_check.heldout_scores(seq, seq, valid)
    assert s["mae"] == s["rmse"] == s["bias"] == 0 and s["mean_ratio"] == s["p99_ratio"] == 1.0
    assert s["csi10"] == s["csi20"] == s["csi30"] == 1.0
    s = gpu_check.heldout_scores(seq + 2.0, seq, valid)
    assert s["mae"] == pytest.approx(2.0) and s["bias"] == pytest.approx(2.0) and s["mean_ratio"] > 1
    clock = gpu_check.Clock(100, ["tests", "training"])
    assert clock.ends["training"] - clock.t0 == pytest.approx(100)
    assert clock.ends["tests"] - clock.t0 == pytest.approx(100 * 0.14 / (0.14 + 0.40))
    assert sum(gpu_check.SHARES.values()) == pytest.approx(1.0)


def test_missing_inputs_say_how_to_make_them(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="make gpu-inputs"):
        gpu_inputs.read_inputs(tmp_path)
    pytest.importorskip("torch")
    assert gpu_check.main(["--device", "cpu", "--tiny", "--inputs", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "run `make gpu-inputs`" in capsys.readouterr().out


@pytest.mark.realdata
def test_gpu_inputs_from_the_real_data(tmp_path):
    if not (SHARED_DATA / "fmi-radar-2016-09-28").is_dir() or not gpu_inputs.S1_DIR.is_dir():
        pytest.skip("../shared/data is absent")
    assert gpu_inputs.main(["--out", str(tmp_path)]) == 0
    d = gpu_inputs.read_inputs(tmp_path)
    assert d["fmi"].shape == (13, 1, 512, 512) and d["fmi"].dtype == np.float32
    assert d["fmi_valid"].shape == (512, 512) and d["fmi_valid"].dtype == bool and d["fmi_valid"].any()
    v = d["fmi"][:, 0][:, d["fmi_valid"]]
    assert v.min() == 0.0 and v.max() <= 95.5              # dBZ with the quality benchmark's floor (bench/cases.py)
    assert d["s1"].shape == (2, 1, 900, 900) and 0 <= d["s1"].min() and d["s1"].max() <= 255
    assert d["meta"]["fmi"]["held_out"] == list(range(1, 12)) and len(d["meta"]["fmi"]["files"]) == 13
    assert sum(f.stat().st_size for f in tmp_path.iterdir()) < 30e6
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(gpu_inputs.FILES)   # no temporary left


@pytest.mark.slow
def test_cuda_tests_run_on_the_cpu():
    """tests/test_cuda.py's code runs (not only skips): the same tests with GPU_CHECK_TEST_DEVICE=cpu."""
    pytest.importorskip("torch")
    p = subprocess.run([sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider",
                        "tests/test_cuda.py"], cwd=ROOT, capture_output=True, text=True, timeout=600,
                       env=_env(GPU_CHECK_TEST_DEVICE="cpu", PYTEST_DISABLE_PLUGIN_AUTOLOAD="1"))
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "5 passed" in p.stdout, p.stdout[-2000:]
