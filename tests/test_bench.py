"""The quality benchmark: its score functions on hand-made arrays, its cases, and one tiny run end to end."""
import json

import numpy as np
import pytest

from bench import cases as C
from bench.scores import case_scores, iou, worst_over, worst_ratio


def _seq(*frames):
    return np.stack([np.asarray(f, np.float32)[None] for f in frames])


def test_bias_sign_and_errors_on_a_hand_case():
    truth = _seq(np.zeros((4, 4)), np.full((4, 4), 10.0), np.full((4, 4), 20.0), np.zeros((4, 4)))
    pred = truth.copy()
    pred[1] += 2.0   # too strong at lead 1
    pred[2] -= 6.0   # too weak at lead 2
    s = case_scores(pred, truth, np.ones((4, 4), bool), "radar")
    assert s["bias"] == pytest.approx((2.0 - 6.0) / 2)
    assert s["mae"] == pytest.approx(4.0) and s["rmse"] == pytest.approx((2.0 + 6.0) / 2)
    # the intensity kept is the worst lead's ratio: 14/20 at lead 2 is farther from 1 than 12/10
    assert s["mean_kept"] == pytest.approx(0.7) and s["p99_kept"] == pytest.approx(0.7)


def test_intensity_ratio_reports_a_vanishing_lead():
    truth = _seq(np.full((8, 8), 10.0), np.full((8, 8), 10.0), np.full((8, 8), 10.0), np.full((8, 8), 10.0))
    pred = truth.copy()
    pred[2, 0, :, :4] = 0.0  # half the echo gone at the second lead only
    s = case_scores(pred, truth, np.ones((8, 8), bool), "radar")
    assert s["mean_kept"] == pytest.approx(0.5)
    assert worst_ratio([1.05, 0.97, np.nan, 1.2]) == pytest.approx(1.2)


def test_iou_and_binary_scores_by_hand():
    a = np.zeros((6, 6))
    b = np.zeros((6, 6))
    a[0:2, 0:3] = 1  # 6 px
    b[0:2, 1:4] = 1  # 6 px, 4 shared
    assert iou(a, b) == pytest.approx(4 / 8)
    s = case_scores(_seq(a, a, a), _seq(b, b, b), np.ones((6, 6), bool), "binary")
    assert s["iou"] == pytest.approx(0.5) and s["csi20"] == pytest.approx(0.5)  # binary CSI at 0.5 = IoU
    assert "csi10" not in s and "csi30" not in s  # radar thresholds mean nothing for 0/1 fields
    assert s["fss1"] == pytest.approx(1 - 4 / 12)  # (2 + 2 mismatching px) / (6 + 6)


def test_invalid_pixels_do_not_count():
    truth = _seq(np.zeros((4, 4)), np.full((4, 4), 30.0), np.zeros((4, 4)))
    pred = truth.copy()
    pred[1, 0, 0, :] = 0.0  # wrong, but only where the mask says nodata
    valid = np.ones((4, 4), bool)
    valid[0, :] = False
    s = case_scores(pred, truth, valid, "radar")
    assert s["mae"] == 0 and s["csi30"] == 1 and s["mean_kept"] == 1 and s["fss4"] == pytest.approx(1)


def test_worst_over_follows_each_metric_direction():
    assert worst_over([1.0, 3.0, np.nan], "mae") == (3.0, 1)
    assert worst_over([0.7, 0.2, 0.9], "csi20") == (0.2, 1)
    assert worst_over([0.95, 1.08, 0.99], "mean_kept") == (1.08, 1)
    assert worst_over([-0.5, 0.2], "bias") == (-0.5, 0)


def test_synthetic_cases_hold_their_known_truth():
    cases = C.load_cases(C.SYNTHETIC, cache=None)
    assert set(cases) == set(C.SYNTHETIC)
    for name, c in cases.items():
        seq = c["seq"]
        assert seq.shape == (C.SYN_STEPS + 1, 1, C.SYN_SIZE, C.SYN_SIZE) and seq.dtype == np.float32
        assert np.isfinite(seq).all() and c["valid"].all()
        assert not np.allclose(seq[0], seq[-1]), name  # something happens between the endpoints
    floe = cases["syn-floe-split"]["seq"][:, 0]
    from scipy.ndimage import label

    assert label(floe[0] > 0.5)[1] == 1 and label(floe[-1] > 0.5)[1] == 3  # one floe, then three pieces
    assert set(np.unique(floe)) <= {0.0, 1.0}
    # the textured shift moves the pattern by the stated (40, -24) px: the midpoint matches a pure shift
    from model.synthetic import shift_image

    tex = cases["syn-shift-texture"]["seq"][:, 0]
    mid = C.SYN_STEPS // 2
    np.testing.assert_allclose(tex[mid], np.maximum(shift_image(tex[0], 20, -12), 0), atol=1.5)


def test_case_cache_round_trip(tmp_path):
    cache = tmp_path / "cases.npz"
    first = C.load_cases(["syn-growth-decay"], cache=cache)
    assert cache.is_file()
    again = C.load_cases(["syn-growth-decay"], cache=cache)
    np.testing.assert_array_equal(first["syn-growth-decay"]["seq"], again["syn-growth-decay"]["seq"])


@pytest.mark.realdata
def test_radar_cases_load_from_the_shared_data():
    if not C.list_frames("fmi") or not C.list_frames("mch"):
        pytest.skip(f"no radar data at {C.DATA}")
    cases = C.load_cases(["fmi-edge-250m-30min", "mch-cells-1km-15min"], cache=None)
    for c in cases.values():
        assert c["seq"].shape[-2:] == (256, 256) and c["valid"].mean() > 0.5
        v = c["seq"][:, 0][:, c["valid"]]
        assert v.min() >= C.FLOOR_DBZ and 20 < v.max() < 80  # dBZ, not raw counts


def test_heldout_cases_are_apart_and_hold_rain():
    """--heldout selects only the held-out crops; each is a window or time of its own, and both of its ends
    hold echoes above 20 dBZ (a crop of clear air would check nothing)."""
    from bench.quality import select_cases

    assert select_cases(None, False, heldout=True) == C.HELDOUT
    assert not set(C.HELDOUT) & set(C.ALL)
    assert len(set(C.RADAR.values())) == len(C.RADAR)          # no held-out crop repeats a development one
    if not C.list_frames("fmi") or not C.list_frames("mch"):
        pytest.skip(f"no radar data at {C.DATA}")
    for name, c in C.load_cases(C.HELDOUT, cache=None).items():
        for end in (c["seq"][0, 0], c["seq"][-1, 0]):
            assert (end[c["valid"]] >= 20).mean() > 0.02, name


def test_whole_composites_are_apart_and_whole():
    """--cases whole selects the whole composites, none of them in the 17 or the held-out crops; each is the
    source's whole extent at its block size (nodata outside the coverage left out, not cropped away)."""
    from bench.quality import select_cases

    assert select_cases(["whole"], False) == list(C.WHOLE)
    assert not set(C.WHOLE) & set(C.ALL + C.HELDOUT)
    if not C.list_frames("fmi") or not C.list_frames("mch"):
        pytest.skip(f"no radar data at {C.DATA}")
    cases = C.load_cases(["whole-mch-1km-30min", "whole-fmi-2km-60min-a"], cache=None)
    mch, fmi = cases["whole-mch-1km-30min"], cases["whole-fmi-2km-60min-a"]
    assert mch["seq"].shape == (7, 1, 640, 710) and fmi["seq"].shape == (13, 1, 7316 // 8, 4963 // 8)
    for c in (mch, fmi):
        assert 0.2 < c["valid"].mean() < 1.0                      # the coverage, with nodata around it
        v = c["seq"][:, 0][:, c["valid"]]
        assert v.min() >= C.FLOOR_DBZ and 20 < v.max() < 80


def test_random_crops_are_apart_and_hold_what_they_were_drawn_for():
    """--cases rand- selects the 68 random crops, none a crop of the 17 or the held-out ones; each (a few read
    here, the data is large) is 256 px at 1 km, at least half valid, with at least 4 % of it 20 dBZ or more at
    both ends, as drawn."""
    from bench.quality import select_cases

    assert select_cases(["rand-"], False) == list(C.RANDOM) and len(C.RANDOM) == 68
    assert not set(C.RANDOM) & set(C.ALL + C.HELDOUT)
    assert not set(C.RANDOM.values()) & set(C.RADAR.values())
    assert {v[2] for v in C.RANDOM.values()} == {6, 12} and {v[6] for v in C.RANDOM.values()} == {1, 4}
    if not C.list_frames("fmi") or not C.list_frames("mch"):
        pytest.skip(f"no radar data at {C.DATA}")
    names = ["rand-mch-r190-c396-f2-60min", "rand-fmi-r3141-c2324-f16-60min"]
    for name, c in C.load_cases(names, cache=None).items():
        assert c["seq"].shape == (13, 1, 256, 256) and c["valid"].mean() >= 0.5, name
        for end in (c["seq"][0, 0], c["seq"][-1, 0]):
            assert (end[c["valid"]] >= 20).mean() >= 0.04, name


def test_shear_and_convergence_are_exact_and_followed():
    """MORE_SYNTHETIC's truth is the flow's own: the shear leaves its middle row in place and moves the rows
    ±40 px at the top and bottom; the convergence keeps its middle column and narrows the content 1.4 x.
    The default follows both far better than optical flow (measured MAE 0.09 vs 2.70 and 0.18 vs 0.37; the
    shear 1.42 before the start's linear candidate, imageadvection 0.80)."""
    from scipy.ndimage import shift

    from bench.quality import run_method, select_cases

    assert select_cases(["syn-shear", "syn-convergence"], False) == C.MORE_SYNTHETIC
    assert not set(C.MORE_SYNTHETIC) & set(C.ALL)
    shear, conv = C.flow_case("syn-shear"), C.flow_case("syn-convergence")
    n = C.SYN_SIZE
    for case in (shear, conv):
        assert case["seq"].shape == (C.SYN_STEPS + 1, 1, n, n) and case["seq"].min() >= 0
    s, c, mid = shear["seq"][:, 0], conv["seq"][:, 0], (n - 1) / 2
    for row in (2, 40, 64, 100):     # each row of the last frame is the first's, moved 80 / n px per row off the middle
        moved = shift(s[0, row].astype(np.float64), 80.0 / n * (row - mid), order=3)
        assert np.abs(moved - s[-1, row])[44:-44].mean() < 0.1 * s[0, row].mean() + 0.05, row
    # the convergence: the content at x in the last frame was at mid + 1.4 (x − mid) in the first
    x = np.arange(n)
    inner = np.abs(x - mid) < 40
    for row in (10, 64, 120):
        squeezed = np.interp(mid + 1.4 * (x - mid), x, c[0, row])
        assert np.abs(squeezed - c[-1, row])[inner].mean() < 0.1 * c[0, row].mean() + 0.05, row
        assert np.abs(c[0, row] - c[-1, row])[inner].mean() > 0.1 * c[0, row].mean()   # it did move
    for case, bound in ((shear, 0.3), (conv, 0.25)):
        seq, valid = case["seq"], case["valid"]
        n_steps = len(seq) - 1
        ours = np.asarray(run_method("accurate:iterations=0", seq[0], seq[-1], n_steps, valid))
        flow = np.asarray(run_method("opticalflow", seq[0], seq[-1], n_steps, valid))
        err = np.mean([np.abs(ours[k] - seq[k]).mean() for k in range(1, n_steps)])
        err_flow = np.mean([np.abs(flow[k] - seq[k]).mean() for k in range(1, n_steps)])
        assert err < bound and err < 0.7 * err_flow, (case["about"], err, err_flow)


def test_bench_runs_end_to_end_on_a_tiny_case(tmp_path, capsys):
    from bench import quality

    out = tmp_path / "q.json"
    rc = quality.main(["--cases", "syn-shift-binary", "--methods", "linear", "accurate:iterations=2",
                       "--seeds", "0", "1", "--jobs", "1", "--per-case", "--cache", str(tmp_path / "c.npz"),
                       "--json", str(out), "--versus", "linear"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "linear mean" in text and "accurate:iterations=2 ±seed (2)" in text and "worst" in text
    assert "accurate:iterations=2 vs linear: cases better/worse/same" in text
    res = json.loads(out.read_text())
    assert {r["method"] for r in res["results"]} == {"linear", "accurate:iterations=2"}
    assert len(res["results"]) == 3 and not any(r["error"] for r in res["results"])
    lin = res["summary"]["linear"]["mean"]
    # linear blending of a shape that moves its own width: a ghost of both ends, IoU well below 1
    assert 0 <= lin["iou"] < 0.6 and lin["mae"] > 0
    assert res["summary"]["accurate:iterations=2"]["seeds"] == [0, 1]
    assert res["device"] == "cpu"   # where the latent modes ran (--device cuda on a card)


def test_units_the_radar_cases_can_be_given_in_come_back_to_dbz():
    dbz = np.array([np.nan, -3.0, 0.0, 0.5, 10.0, 23.0, 55.0], np.float32)
    rate = C.rain_rate(dbz)
    assert np.isnan(rate[0]) and (rate[1:3] == 0).all() and abs(rate[5] - 1.0) < 0.05   # 23 dBZ ~ 1 mm/h
    assert np.allclose(C.dbz_of_rain_rate(rate)[3:], dbz[3:], atol=1e-3)
    assert (C.dbz_of_rain_rate(rate)[:3] == C.FLOOR_DBZ).all()                           # NaN, no echo: floor
    given, back = C.UNITS["no-echo-32"]
    assert given(dbz)[2] == -32.0 and given(dbz)[4] == 10.0 and back(given(dbz))[2] == C.FLOOR_DBZ


def test_bench_rejects_unknown_methods_and_overrides():
    from bench import quality

    with pytest.raises(SystemExit, match="unknown method"):
        quality.main(["--methods", "nope", "--cases", "syn-shift-binary"])
    with pytest.raises(ValueError, match="override"):
        quality.main(["--methods", "accurate:no_such_knob=1", "--cases", "syn-shift-binary"])


def test_bench_refuses_a_card_it_does_not_have_before_work(tmp_path):
    import torch
    from bench import quality

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    cache = tmp_path / "c.npz"
    with pytest.raises(SystemExit, match="--device cuda: .*CUDA is not available"):
        quality.main(["--methods", "accurate", "--cases", "syn-shift-binary", "--device", "cuda",
                      "--cache", str(cache)])
    assert not cache.exists()   # refused before the cases were built


def test_compare_counts_cases_beyond_seed_noise():
    from bench.quality import compare

    def case(mae, csi, sd=0.0):
        return {"mae": mae, "csi20": csi, "fss4": csi, "mae_sd": sd, "csi20_sd": sd, "fss4_sd": sd}

    summary = {"start": {"per_case": {"a": case(2.0, 0.5), "b": case(2.0, 0.5), "c": case(2.0, 0.5)}},
               "trained": {"per_case": {"a": case(1.5, 0.6), "b": case(2.5, 0.4), "c": case(2.03, 0.52, sd=0.02)}}}
    line = compare(summary, "start")[0]
    # a: better; b: worse; c: within twice its seed spread of the start
    assert line.endswith("MAE 1/1/1, CSI20 1/1/1, FSS4 1/1/1"), line
