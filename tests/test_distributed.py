"""Training under torchrun (DistributedDataParallel, gloo on CPU): one and two processes on a tiny pair."""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
gdal = pytest.importorskip("osgeo.gdal")

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = Path(sys.executable).with_name("torchrun")
SCRIPT = ROOT / "scripts" / "train_distributed.py"

sys.path.insert(0, str(ROOT))
from model import distributed as D  # noqa: E402
from model.modelfile import load_model  # noqa: E402
from model.presets import make_config  # noqa: E402
from model.training import train_pair  # noqa: E402


def _blob(shift):
    y, x = np.mgrid[0:48, 0:48].astype(np.float32)
    return np.exp(-((x - 20 - shift) ** 2 + (y - 22) ** 2) / 40.0).astype(np.float32)


def _write(path, arr, when):
    ds = gdal.GetDriverByName("GTiff").Create(str(path), arr.shape[1], arr.shape[0], 1, gdal.GDT_Float32)
    ds.SetGeoTransform((500000.0, 250.0, 0.0, 7000000.0, 0.0, -250.0))
    ds.SetMetadataItem("TIFFTAG_DATETIME", when)
    ds.GetRasterBand(1).WriteArray(arr)
    ds = None


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    d = tmp_path_factory.mktemp("pair")
    _write(d / "a.tif", _blob(0.0), "2016:09:28 14:45:00")
    _write(d / "b.tif", _blob(3.0), "2016:09:28 15:45:00")
    return d / "a.tif", d / "b.tif"


def _torchrun(nproc, pair, out):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    cmd = [str(TORCHRUN), "--standalone", f"--nproc_per_node={nproc}", str(SCRIPT), str(pair[0]), str(pair[1]),
           "--out", str(out), "--device", "cpu", "--steps", "4", "--iterations", "6", "--batch-size", "2",
           "--patch-size", "32", "--stride", "4", "--every", "3"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, cwd=str(ROOT))
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


@pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun is not installed beside this Python")
@pytest.mark.parametrize("nproc", [1, 2])
def test_torchrun_trains_and_rank0_saves(pair, tmp_path, nproc):
    out = tmp_path / "m.inbetween"
    stdout = _torchrun(nproc, pair, out)
    assert stdout.count("Saved ") == 1, stdout                      # rank 0 only
    assert f"{nproc} process(es)" in stdout
    assert "DistributedDataParallel" in stdout
    digest = re.search(r"weights identical on all (\d+) rank\(s\): sha256 ([0-9a-f]{64})", stdout)
    assert digest and int(digest.group(1)) == nproc, stdout       # all ranks compared, all equal
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.inbetween"]  # one file, no temporary left
    model, header = load_model(out)
    assert D.weights_digest(model) == digest.group(2)               # the file holds the synced weights
    assert header["extra"]["world_size"] == nproc
    assert header["training"]["patches_per_iteration"] == 2 * nproc
    assert header["extra"]["times"] == ["2016-09-28T14:45:00+00:00", "2016-09-28T15:45:00+00:00"]


def test_single_process_path_unchanged():
    """Without a process group train_pair does not wrap anything, and distributed=True says why it can't."""
    assert not D.is_active() and D.is_main() and D.world_size() == 1
    assert D.sampling_seed(5, 0) == 5 and D.sampling_seed(5, 1) != D.sampling_seed(5, 2)
    x0, x1 = _blob(0.0), _blob(3.0)
    cfg = make_config("fast", steps=4, iterations=3, batch_size=2, patch_size=32, stride=(4, 4))
    seen = []
    r = train_pair(x0, x1, config=cfg, device="cpu", progress=lambda i, n, l: seen.append((i, l["loss"])))
    assert [i for i, _ in seen] == [1, 2, 3] and all(isinstance(v, float) for _, v in seen)
    assert [h["iteration"] for h in r.history] == [1, 2, 3]
    with pytest.raises(RuntimeError, match="torchrun"):
        train_pair(x0, x1, config=cfg, device="cpu", distributed=True)


def test_loss_readback_drain_accepts_device_tensors():
    """train_pair's deferred read-back (CUDA path): tensor loss terms become floats in one transfer, and the
    first non-finite iteration is found."""
    from model.training import _drain

    pending = [{"loss": torch.tensor(1.5), "dynamics": 0.25, "iteration": 1},
               {"loss": torch.tensor(float("nan")), "dynamics": torch.tensor(2.0), "iteration": 2},
               {"loss": torch.tensor(float("inf")), "dynamics": 1.0, "iteration": 3}]
    history = []
    assert _drain(pending, history) == 2
    assert pending == [] and [h["iteration"] for h in history] == [1, 2, 3]
    assert all(isinstance(v, (float, int)) for h in history for v in h.values())
    assert history[0]["loss"] == 1.5 and history[1]["dynamics"] == 2.0
    assert _drain([{"loss": 0.5, "iteration": 4}], history) is None and history[-1]["loss"] == 0.5
