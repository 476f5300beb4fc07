"""Scores of a method's frames on one benchmark case, over the held-out frames (1 .. N-1), and their summary.

Per case (``case_scores``): MAE, RMSE, bias (pred - truth), SSIM and CSI at the case's thresholds (means over
the held-out frames); FSS at 1, 4 and 16 px of the event threshold (20 dBZ, or 0.5 for binary cases) from
model/metrics.py (pysteps' code when installed); the intensity kept: at every held-out lead the ratio of
the predicted domain mean, and of the 99th percentile, to the truth's, reporting the ratio of the lead
that is farthest from 1 (``mean_kept``, ``p99_kept``: 0.6 = 40 % lost at some lead); IoU of value >= 0.5
for binary cases.  Only pixels in the case's ``valid`` mask count.
"""
import numpy as np

RADAR_THRESHOLDS = (10.0, 20.0, 30.0)
FSS_SCALES = (1, 4, 16)
SSIM_RANGE = {"radar": 60.0, "binary": 1.0}
# metric -> "low" (smaller is better), "high" (larger is better), "one" (closest to 1), "zero" (closest to 0)
BETTER = {"mae": "low", "rmse": "low", "bias": "zero", "csi10": "high", "csi20": "high", "csi30": "high",
          "fss1": "high", "fss4": "high", "fss16": "high", "mean_kept": "one", "p99_kept": "one",
          "ssim": "high", "iou": "high"}


def event_threshold(kind):
    return 0.5 if kind == "binary" else 20.0


def worst_ratio(ratios):
    """The ratio farthest from 1 (NaN ignored; NaN if all are)."""
    r = np.asarray([x for x in ratios if np.isfinite(x)], dtype=np.float64)
    return float(r[np.argmax(np.abs(r - 1.0))]) if r.size else float("nan")


def iou(pred, truth, threshold=0.5):
    p, t = pred >= threshold, truth >= threshold
    union = (p | t).sum()
    return float((p & t).sum() / union) if union else float("nan")


def case_scores(frames, seq, valid, kind):
    """Scores of ``frames`` (T, C, H, W) against the case's ``seq`` (same shape) over frames 1 .. T-2."""
    from model.metrics import frame_scores, fss

    thresholds = (0.5,) if kind == "binary" else RADAR_THRESHOLDS
    thr = event_threshold(kind)
    rows = []
    for j in range(1, len(seq) - 1):
        p, t = np.asarray(frames[j], np.float64)[0], np.asarray(seq[j], np.float64)[0]
        base = frame_scores(p, t, valid=valid, data_range=SSIM_RANGE[kind])
        row = {k: base[k] for k in ("mae", "rmse", "bias", "ssim")}
        for th in thresholds:
            key = "csi20" if kind == "binary" else f"csi{th:g}"  # binary: the one event sits in the CSI20 column
            row[key] = frame_scores(p, t, valid=valid, threshold=th)["csi"]
        for s in FSS_SCALES:
            row[f"fss{s}"] = fss(p, t, thr, s, valid=valid)
        pv, tv = p[valid & np.isfinite(p)], t[valid & np.isfinite(p)]
        row["mean_ratio"] = float(pv.mean() / tv.mean()) if tv.size and tv.mean() != 0 else float("nan")
        tq = np.percentile(tv, 99) if tv.size else 0.0
        row["p99_ratio"] = float(np.percentile(pv, 99) / tq) if tq != 0 else float("nan")
        if kind == "binary":
            row["iou"] = iou(np.where(valid, p, 0), np.where(valid, t, 0))
        rows.append(row)
    out = {}
    for k in rows[0]:
        vals = [r[k] for r in rows]
        if k.endswith("_ratio"):
            out[k.replace("_ratio", "_kept")] = worst_ratio(vals)
        else:
            finite = [v for v in vals if np.isfinite(v)]
            out[k] = float(np.mean(finite)) if finite else float("nan")
    return out


def worst_over(values, metric):
    """The worst of per-case ``values`` for ``metric`` (NaN ignored) and its index, by BETTER's rule."""
    v = np.asarray(values, dtype=np.float64)
    ok = np.flatnonzero(np.isfinite(v))
    if not ok.size:
        return float("nan"), None
    rule = BETTER[metric]
    key = {"low": v[ok], "high": -v[ok], "one": np.abs(v[ok] - 1), "zero": np.abs(v[ok])}[rule]
    i = ok[int(np.argmax(key))]
    return float(v[i]), int(i)
