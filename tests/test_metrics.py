import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.metrics import contingency, frame_scores, fss, score_sequence  # noqa: E402


def test_identical_frames_score_perfectly():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2, 32, 40)).astype(np.float32)
    s = frame_scores(a, a.copy(), threshold=0.5)
    assert s["mae"] == 0 and s["rmse"] == 0 and s["bias"] == 0
    assert s["ssim"] == pytest.approx(1.0)
    assert s["pod"] == 1 and s["far"] == 0 and s["csi"] == 1


def test_hand_checked_2x2():
    pred = np.array([[1.0, 2.0], [3.0, 4.0]])
    ref = np.array([[1.0, 4.0], [0.0, 4.0]])
    s = frame_scores(pred, ref)
    # differences 0, -2, 3, 0
    assert s["mae"] == pytest.approx(5 / 4)
    assert s["rmse"] == pytest.approx(math.sqrt(13 / 4))
    assert s["bias"] == pytest.approx(1 / 4)
    assert math.isnan(s["ssim"])  # too small for a 3x3 window
    assert s["n"] == 4


def test_nan_and_valid_mask_are_excluded():
    pred = np.array([[1.0, np.nan], [3.0, 10.0]])
    ref = np.array([[2.0, 5.0], [3.0, 0.0]])
    valid = np.array([[True, True], [True, False]])
    s = frame_scores(pred, ref, valid=valid)
    assert s["n"] == 2
    assert s["mae"] == pytest.approx(0.5) and s["bias"] == pytest.approx(-0.5)


def test_contingency_hand_case():
    # threshold 20: pred events at (0,0),(0,1),(1,0); ref events at (0,0),(1,1),(1,0)
    pred = np.array([[25.0, 30.0], [20.0, 5.0]])
    ref = np.array([[21.0, 10.0], [40.0, 35.0]])
    s = frame_scores(pred, ref, threshold=20)
    assert (s["hits"], s["misses"], s["false_alarms"]) == (2, 1, 1)
    assert s["pod"] == pytest.approx(2 / 3)
    assert s["far"] == pytest.approx(1 / 3)
    assert s["csi"] == pytest.approx(2 / 4)


def test_no_events_gives_nan_not_error():
    a = np.zeros((8, 8))
    s = frame_scores(a, a, threshold=1.0)
    assert math.isnan(s["pod"]) and math.isnan(s["csi"])


def test_ssim_drops_for_a_shifted_pattern():
    rng = np.random.default_rng(1)
    a = rng.random((48, 48))
    s = frame_scores(np.roll(a, 3, axis=1), a, data_range=1.0)
    assert s["ssim"] < 0.3


def test_score_sequence_indexes_frames():
    refs = np.zeros((3, 1, 8, 8), np.float32)
    preds = refs + np.arange(3, dtype=np.float32)[:, None, None, None]
    rows = score_sequence(preds, refs)
    assert [r["index"] for r in rows] == [0, 1, 2]
    assert [r["mae"] for r in rows] == pytest.approx([0, 1, 2])
    with pytest.raises(ValueError):
        score_sequence(preds[:2], refs)


def test_fss_by_hand():
    a = np.zeros((8, 8))
    a[2:4, 2:4] = 30.0
    b = np.roll(a, 4, axis=1)  # the same 4 px event, moved clear of itself
    assert fss(a, a, 20, 1) == pytest.approx(1.0)
    assert fss(a, b, 20, 1) == pytest.approx(0.0)
    assert 0.0 < fss(a, b, 20, 8) <= 1.0  # a neighbourhood wider than the miss sees skill
    assert math.isnan(fss(np.zeros((8, 8)), np.zeros((8, 8)), 20, 4))  # no event anywhere


@pytest.mark.parametrize("scale", [1, 3, 8])
def test_fss_and_csi_agree_with_pysteps_own(scale):
    """The scores evaluate writes are pysteps.verification's, and the fallback without pysteps agrees."""
    pytest.importorskip("pysteps")
    from pysteps.verification import det_cat_fct, fss as pysteps_fss

    rng = np.random.default_rng(3)
    pred = rng.gamma(2.0, 8.0, (40, 30))
    ref = np.roll(pred, 2, axis=0) + rng.normal(0, 3, (40, 30))
    pred[5, 7] = ref[5, 7] = np.nan  # nodata in both: no event there, for pysteps and for us
    want = pysteps_fss(pred, ref, 20.0, scale)
    assert fss(pred, ref, 20.0, scale) == pytest.approx(want, abs=1e-12)
    assert fss(pred, ref, 20.0, scale, use_pysteps=False) == pytest.approx(want, abs=1e-12)
    ok = np.isfinite(pred) & np.isfinite(ref)
    csi = det_cat_fct(pred[ok], ref[ok], 20.0, ["CSI"])["CSI"]  # pysteps: event = value > 20 (no ties here)
    assert frame_scores(pred, ref, threshold=20.0)["csi"] == pytest.approx(csi, abs=1e-12)
    assert contingency(pred, ref, 20.0, use_pysteps=False) == contingency(pred, ref, 20.0)
