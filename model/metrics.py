"""Per-frame verification scores of generated frames against reference frames.

``frame_scores(pred, ref)`` gives MAE, RMSE, bias (mean of pred - ref), SSIM (scikit-image) and, for a
threshold, the contingency scores POD = hits / (hits + misses), FAR = false alarms / (hits + false alarms)
and CSI = hits / (hits + misses + false alarms), with "event" meaning value >= threshold.
``fss(pred, ref, threshold, scale)`` is the fractions skill score of the exceedance at a neighbourhood of
``scale`` x ``scale`` pixels (Roberts and Lean 2008).
Only pixels valid in both (finite, and in ``valid`` when given) count. For SSIM the other pixels are
filled with the same value in both images (the reference's lowest valid value), so they add no error.
A score that is undefined (no valid pixel, no event, image too small for SSIM) is NaN.

The contingency counts and FSS come from ``pysteps.verification`` when the optional package pysteps is
installed (the radar community's reference code); without it, from the few lines below that compute the
same thing (tests/test_metrics.py checks that both agree).
"""

import numpy as np


def _pysteps_verification():
    """pysteps.verification, or None when pysteps is not installed (it prints its config file on import)."""
    from .optional import import_pysteps

    try:
        return import_pysteps("verification")[0]
    except ImportError:
        return None


def contingency(pred, ref, threshold, use_pysteps=True):
    """(hits, misses, false alarms) of the event value >= ``threshold`` over the finite pixels of both."""
    pred, ref = np.asarray(pred, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    ok = np.isfinite(pred) & np.isfinite(ref)
    pred, ref = pred[ok], ref[ok]
    verification = _pysteps_verification() if use_pysteps else None
    if verification is not None:
        # pysteps counts value > thr; the next float below keeps the event value >= threshold (as in FSS)
        table = verification.det_cat_fct_init(np.nextafter(float(threshold), -np.inf))
        verification.det_cat_fct_accum(table, pred, ref)
        return int(table["hits"]), int(table["misses"]), int(table["false_alarms"])
    p, r = pred >= threshold, ref >= threshold
    return int((p & r).sum()), int((~p & r).sum()), int((p & ~r).sum())


def fss(pred, ref, threshold, scale, valid=None, use_pysteps=True):
    """Fractions skill score of value >= ``threshold`` at ``scale`` pixels ((H, W) arrays; NaN = no event).
    NaN when neither field has an event."""
    pred = np.array(pred, dtype=np.float64)
    ref = np.array(ref, dtype=np.float64)
    off = ~(np.isfinite(pred) & np.isfinite(ref))
    if valid is not None:
        off |= ~np.asarray(valid, dtype=bool)
    pred[off] = ref[off] = -np.inf  # invalid pixels: no event in either field
    verification = _pysteps_verification() if use_pysteps else None
    if verification is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            return float(verification.fss(pred, ref, threshold, int(scale)))
    from scipy.ndimage import uniform_filter

    a, b = (pred >= threshold).astype(np.float64), (ref >= threshold).astype(np.float64)
    if scale > 1:
        a = uniform_filter(a, size=int(scale), mode="constant", cval=0.0)
        b = uniform_filter(b, size=int(scale), mode="constant", cval=0.0)
    worst = (a ** 2).sum() + (b ** 2).sum()
    return float(1.0 - ((a - b) ** 2).sum() / worst) if worst > 0 else float("nan")


def _as_chw(a):
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"frames must be (H, W) or (C, H, W), got shape {a.shape}")
    return a


def _ratio(num, den):
    return float(num / den) if den > 0 else float("nan")


def frame_scores(pred, ref, valid=None, threshold=None, data_range=None):
    """Scores of one frame ``pred`` against ``ref`` ((H, W) or (C, H, W)); returns a dict of floats."""
    pred, ref = _as_chw(pred), _as_chw(ref)
    if pred.shape != ref.shape:
        raise ValueError(f"pred {pred.shape} and ref {ref.shape} differ in shape")
    mask = np.isfinite(pred) & np.isfinite(ref)
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        mask &= valid if valid.ndim == 3 else valid[None]
    n = int(mask.sum())
    out = {"n": n}
    if n == 0:
        out.update(mae=float("nan"), rmse=float("nan"), bias=float("nan"), ssim=float("nan"))
    else:
        d = pred[mask] - ref[mask]
        out.update(mae=float(np.abs(d).mean()), rmse=float(np.sqrt((d ** 2).mean())), bias=float(d.mean()))
        out["ssim"] = _ssim(pred, ref, mask, data_range)
    if threshold is not None:
        hits, misses, false_alarms = contingency(pred[mask], ref[mask], threshold)
        out.update(hits=hits, misses=misses, false_alarms=false_alarms,
                   pod=_ratio(hits, hits + misses), far=_ratio(false_alarms, hits + false_alarms),
                   csi=_ratio(hits, hits + misses + false_alarms))
    return out


def _ssim(pred, ref, mask, data_range):
    from skimage.metrics import structural_similarity

    h, w = pred.shape[-2:]
    win = min(7, h, w)
    if win % 2 == 0:
        win -= 1
    if win < 3:
        return float("nan")
    if data_range is None:
        vals = ref[mask]
        data_range = float(vals.max() - vals.min()) if vals.size else 0.0
        if data_range <= 0:
            data_range = 1.0
    scores = []
    for c in range(pred.shape[0]):
        m = mask[c]
        if not m.any():
            continue
        fill = ref[c][m].min()
        p = np.where(m, pred[c], fill)
        r = np.where(m, ref[c], fill)
        scores.append(structural_similarity(p, r, data_range=data_range, win_size=win))
    return float(np.mean(scores)) if scores else float("nan")


def score_sequence(preds, refs, valid=None, threshold=None, data_range=None):
    """Scores of each frame pair of two sequences ((T, C, H, W) or lists); a list of dicts with ``index``."""
    if len(preds) != len(refs):
        raise ValueError(f"{len(preds)} predicted frames but {len(refs)} reference frames")
    rows = []
    for i, (p, r) in enumerate(zip(preds, refs)):
        row = {"index": i}
        row.update(frame_scores(p, r, valid=valid, threshold=threshold, data_range=data_range))
        rows.append(row)
    return rows
