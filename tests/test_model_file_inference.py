"""Model file round trip and errors; tiled inference: exact endpoints, NaN mask, no seams."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from model.presets import make_config  # noqa: E402
from model.training import train_pair  # noqa: E402
from model.inference import generate_frames, advection_fields  # noqa: E402
from model.modelfile import save_model, load_model, ModelFileError, read_header  # noqa: E402


def _pair(h=80, w=96, shift=(5.0, 3.0), bands=2):
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    def img(dx, dy):
        out = []
        for b in range(bands):
            v = np.zeros((h, w), np.float32)
            for cx, cy, s in ((30, 30, 6.0), (60, 50, 4.0), (45, 20, 3.0)):
                v += (1 + b) * np.exp(-((x - cx - dx) ** 2 + (y - cy - dy) ** 2) / (2 * s * s))
            out.append(10.0 * v + 3.0)
        return np.stack(out)
    return img(0, 0), img(*shift)


@pytest.fixture(scope="module", params=["accurate", "paper"])
def trained(request):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    x0, x1 = _pair()
    cfg = make_config("fast", request.param, steps=3, iterations=8, patch_size=32, batch_size=2)
    yield train_pair(x0, x1, config=cfg, seed=1), x0, x1
    torch.set_num_threads(threads)


def test_round_trip_same_outputs(trained, tmp_path):
    r, x0, x1 = trained
    p = tmp_path / "m.inbetween"
    save_model(p, r, {"t0": "2016-09-28T14:45:00", "crs_wkt": "EPSG:3067", "geotransform": [0, 250, 0, 0, 0, -250]})
    model, header = load_model(p)
    assert header["format"] == "inbetween-model" and header["steps"] == 3 and header["bands"] == 2
    assert header["mode"] == r.config.mode and header["extra"]["crs_wkt"] == "EPSG:3067"
    assert header["normalisation"] == r.normalisation
    a = generate_frames(r.model, x0, x1, tile=128)
    b = generate_frames(model, x0, x1, tile=128)
    assert np.array_equal(a, b)
    assert np.array_equal(advection_fields(r.model, x0, x1), advection_fields(model, x0, x1))


def test_truncated_and_foreign_files(trained, tmp_path):
    r, _, _ = trained
    p = tmp_path / "m.inbetween"
    save_model(p, r, {})
    data = p.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 7):
        q = tmp_path / f"cut{cut}"
        q.write_bytes(data[:cut])
        with pytest.raises(ModelFileError):
            load_model(q)
    foreign = tmp_path / "foreign.tif"
    foreign.write_bytes(b"II*\x00" + os.urandom(300))
    with pytest.raises(ModelFileError, match="not an In-between model"):
        load_model(foreign)
    with pytest.raises(ModelFileError, match="not found"):
        load_model(tmp_path / "missing")
    # a safetensors file without our header
    from safetensors.torch import save_file
    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(3)}, str(other), metadata={"format": "pt"})
    with pytest.raises(ModelFileError, match="no header"):
        read_header(other)
    # a future format version
    import json
    from safetensors import safe_open
    with safe_open(str(p), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    h = json.loads(meta["inbetween"])
    h["format_version"] = 99
    fut = tmp_path / "future"
    save_file(tensors, str(fut), metadata={"inbetween": json.dumps(h)})
    with pytest.raises(ModelFileError, match="version"):
        load_model(fut)


def test_endpoints_exact_nan_restored_and_tiles_seamless(trained):
    r, x0, x1 = trained
    x0 = x0.copy()
    x0[:, 70:, :10] = np.nan                      # nodata corner in the first image
    whole = generate_frames(r.model, x0, x1, tile=256, overlap=0)
    tiled = generate_frames(r.model, x0, x1, tile=40, overlap=16, halo=24)
    n = r.config.steps
    assert whole.shape == (n + 1, 2, 80, 96) and whole.dtype == np.float32
    np.testing.assert_array_equal(whole[0], x0)
    np.testing.assert_array_equal(whole[-1], x1)
    bad = np.zeros((80, 96), bool)
    bad[70:, :10] = True
    assert np.isnan(whole[1:-1][:, :, bad]).all() and np.isfinite(whole[1:-1][:, :, ~bad]).all()
    # overlap-blended tiles with context equal the whole-image result up to a small tolerance
    span = np.nanmax(x1) - np.nanmin(x1)
    diff = np.nanmax(np.abs(tiled[1:-1] - whole[1:-1]))
    assert diff < 0.05 * span, diff
    f_whole = advection_fields(r.model, x0, x1, tile=256)
    f_tiled = advection_fields(r.model, x0, x1, tile=40, overlap=16, halo=24)
    assert f_whole.shape == (n, 2, 80, 96)
    assert np.abs(f_tiled - f_whole).max() < 0.05 * max(np.abs(f_whole).max(), 1.0)


def test_band_count_checked_at_inference(trained):
    r, x0, x1 = trained
    with pytest.raises(ValueError, match="band"):
        generate_frames(r.model, x0[:1], x1[:1])


def test_import_without_torch_side_effects():
    import subprocess
    code = ("import sys; sys.path.insert(0, %r); import model, model.presets; "
            "assert 'torch' not in sys.modules, 'torch imported'" % os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    subprocess.run([sys.executable, "-c", code], check=True)
