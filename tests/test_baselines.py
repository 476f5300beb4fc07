"""Baselines on known-motion synthetic pairs (real OpenCV, POT and torch, no mocks)."""
import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.baselines import METHODS, interpolate  # noqa: E402

H = W = 64
YY, XX = np.mgrid[0:H, 0:W].astype(np.float32)


def scene(dx, dy):
    """Two Gaussian blobs of different size, translated by (dx, dy) pixels (x right, y down)."""
    x, y = XX - dx, YY - dy
    img = np.exp(-((x - 26) ** 2 + (y - 32) ** 2) / (2 * 5.0 ** 2)) \
        + 0.6 * np.exp(-((x - 20) ** 2 + (y - 20) ** 2) / (2 * 3.0 ** 2))
    return img[None].astype(np.float32)


def centre(img):
    m = img - img.min()
    return float((m * XX).sum() / m.sum()), float((m * YY).sum() / m.sum())


SHIFT = (10.0, -6.0)


def test_unknown_method_lists_methods():
    with pytest.raises(ValueError, match="opticalflow"):
        interpolate("nope", scene(0, 0), scene(1, 0), 2)


def test_linear_is_the_exact_blend():
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=(3, 9, 7)).astype(np.float32)
    x1 = rng.normal(size=(3, 9, 7)).astype(np.float32)
    fr = interpolate("linear", x0, x1, 4)
    assert fr.shape == (5, 3, 9, 7) and fr.dtype == np.float32
    for j in range(5):
        t = j / 4
        np.testing.assert_allclose(fr[j], (1 - t) * x0 + t * x1, atol=1e-6)


def test_opticalflow_recovers_translation_midpoint():
    x0, x1 = scene(0, 0), scene(*SHIFT)
    fr = interpolate("opticalflow", x0, x1, 2)
    truth = scene(SHIFT[0] / 2, SHIFT[1] / 2)
    blend_err = np.abs(0.5 * (x0 + x1) - truth).mean()
    err = np.abs(fr[1] - truth).mean()
    # stated bound: mean abs error below 0.005 (peak 1), at least 5x better than the blend
    assert err < 0.005 and err < blend_err / 5, (err, blend_err)


def test_ot_moves_the_centre_of_mass_linearly():
    x0, x1 = scene(0, 0), scene(*SHIFT)
    steps = 4
    fr = interpolate("ot", x0, x1, steps, ot_size=64)
    c0 = np.array(centre(x0[0]))
    for j in range(1, steps):
        t = j / steps
        want = c0 + t * np.array(SHIFT)
        got = np.array(centre(fr[j, 0]))
        # stated tolerance: centre of mass within 0.5 px of the straight path
        assert np.abs(got - want).max() < 0.5, (j, got, want)
        # a displacement, not a blend: the midway image has its peak on the path, not at the ends
        peak = np.unravel_index(np.argmax(fr[j, 0]), (H, W))
        assert abs(peak[1] - (26 + t * SHIFT[0])) <= 2 and abs(peak[0] - (32 + t * SHIFT[1])) <= 2


def test_ot_rescales_mass_linearly():
    x0 = scene(0, 0)
    x1 = 2.0 * scene(*SHIFT)
    fr = interpolate("ot", x0, x1, 2, ot_size=64)
    lo = min(x0.min(), x1.min())
    m0, m1 = (x0 - lo).sum(), (x1 - lo).sum()
    assert (fr[1] - lo).sum() == pytest.approx(0.5 * (m0 + m1), rel=1e-3)


def test_imageadvection_moves_pattern_to_midpoint():
    x0, x1 = scene(0, 0), scene(*SHIFT)
    fr = interpolate("imageadvection", x0, x1, 2, iterations=60)
    truth = scene(SHIFT[0] / 2, SHIFT[1] / 2)
    blend_err = np.abs(0.5 * (x0 + x1) - truth).mean()
    err = np.abs(fr[1] - truth).mean()
    got = np.array(centre(fr[1, 0]))
    want = np.array(centre(truth[0]))
    # stated bounds: error under half the blend's, centre within 1.5 px of the true midpoint
    assert err < blend_err / 2, (err, blend_err)
    assert np.abs(got - want).max() < 1.5, (got, want)


@pytest.mark.parametrize("method", ["pysteps-lk", "pysteps-vet"])
def test_pysteps_methods_move_a_translated_blob(method):
    pytest.importorskip("pysteps")
    x0, x1 = scene(0, 0), scene(*SHIFT)
    steps = 4
    fr = interpolate(method, x0, x1, steps)
    for j in range(1, steps):
        t = j / steps
        truth = scene(t * SHIFT[0], t * SHIFT[1])
        blend_err = np.abs((1 - t) * x0 + t * x1 - truth).mean()
        err = np.abs(fr[j] - truth).mean()
        got, want = np.array(centre(fr[j, 0])), np.array(centre(truth[0]))
        # stated bounds: a third of the blend's error, centre of mass within 1 px of the true path
        assert err < blend_err / 3, (j, err, blend_err)
        assert np.abs(got - want).max() < 1.0, (j, got, want)


def test_pysteps_missing_says_how_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pysteps", None)  # what Python does when pysteps is not installed
    with pytest.raises(ImportError, match="pip install 'pysteps=="):
        interpolate("pysteps-lk", scene(0, 0), scene(*SHIFT), 2)
    assert interpolate("linear", scene(0, 0), scene(*SHIFT), 2).shape == (3, 1, H, W)  # the rest still works


@pytest.mark.parametrize("method", METHODS)
def test_endpoints_exact_and_nan_kept(method):
    if method.startswith("pysteps"):
        pytest.importorskip("pysteps")
    x0, x1 = scene(0, 0), scene(4, 2)
    x0[0, 5, 7] = np.nan
    x1[0, 40, 3] = np.nan
    valid = np.ones((H, W), bool)
    valid[60:, :] = False
    calls = []
    opts = {"iterations": 5, "levels": 1} if method == "imageadvection" else {}
    if method == "ot":
        opts["ot_size"] = 32
    fr = interpolate(method, x0, x1, 3, valid=valid, progress=lambda done, total: calls.append(done / total), **opts)
    assert fr.shape == (4, 1, H, W) and fr.dtype == np.float32
    np.testing.assert_array_equal(fr[0], x0)  # NaN positions included
    np.testing.assert_array_equal(fr[-1], x1)
    for j in (1, 2):
        assert np.isnan(fr[j, 0, 5, 7]) and np.isnan(fr[j, 0, 40, 3])
        assert np.isnan(fr[j, 0, 60:]).all()
        assert np.isfinite(fr[j, 0, :60][~np.isnan(fr[j, 0, :60])]).all()
        assert np.isfinite(fr[j, 0, 10:50, 10:50]).all()
    assert calls and all(0.0 <= c <= 1.0 for c in calls) and calls[-1] == 1.0


def test_cancel_stops():
    from model.baselines import Canceled

    with pytest.raises(Canceled):
        interpolate("linear", scene(0, 0), scene(1, 0), 4, is_canceled=lambda: True)


@pytest.mark.realdata
def test_real_radar_flow_beats_blend_and_bench_loader():
    """On a small real crop (30 min gap), the optical-flow frames are closer to the held-out ones."""
    from bench import cases
    from bench.quality import run_method

    if not cases.list_frames("fmi"):
        pytest.skip(f"no radar data at {cases.DATA}")
    from model.metrics import frame_scores

    seq, names, valid = cases.read_sequence("fmi", 0, 7, 3840, 1536, 1024, 1024, block=4)
    assert seq.shape == (7, 1, 256, 256) and names[0].endswith("_FINUTM.tif")
    assert np.nanmin(seq) >= cases.FLOOR_DBZ
    mae = {}
    for m in ("linear", "opticalflow"):
        fr = run_method(m, seq[0], seq[-1], 6, valid)
        mae[m] = np.mean([frame_scores(fr[j], seq[j], valid=valid)["mae"] for j in range(1, 6)])
    assert mae["opticalflow"] < 0.85 * mae["linear"], mae


def test_pysteps_imports_beside_gdal_exceptions():
    """Inside QGIS the plugin's I/O has turned GDAL and OGR exceptions on; pysteps' own GDAL importer calls
    gdal.DontUseExceptions() on import, which GDAL then refuses: model/optional.import_pysteps must still
    import it, and leave the exceptions on.  A fresh process, since pysteps may already be imported here."""
    import subprocess
    import sys

    pytest.importorskip("pysteps")
    code = ("from osgeo import gdal, ogr\n"
            "gdal.UseExceptions(); ogr.UseExceptions()\n"
            "from model.optional import import_pysteps\n"
            "motion, verification = import_pysteps('motion', 'verification')\n"
            "assert gdal.GetUseExceptions() and ogr.GetUseExceptions()\n"
            "print('ok', motion.get_method('LK').__name__)\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-2000:]
