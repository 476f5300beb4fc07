"""Initial velocity field for the accurate mode, from classical optical flow (model/flow.py, DIS).

The flow is computed on the whole pair (both directions, f = flow(X0→X1), g = flow(X1→X0)) and averaged
into one Eulerian displacement over the whole interval, v ≈ (f − g) / 2, then smoothed.  The model's
fields are v / N per step plus a learned residual.  Training and inference both call this function on
the pair they are given, so the model file does not need to store the flow: inference recomputes it
from x0 and x1 (DIS is deterministic for the same input).
"""
import numpy as np


def initial_flow(x0, x1, valid=None, smooth=2.0):
    """x0, x1: (C, H, W) float arrays (NaN allowed); returns (2, H, W) float32 pixels over the interval."""
    from .flow import estimate_flow

    a = np.nan_to_num(np.asarray(x0, dtype=np.float32))
    b = np.nan_to_num(np.asarray(x1, dtype=np.float32))
    f = estimate_flow(a, b, valid)
    g = estimate_flow(b, a, valid)
    v = 0.5 * (f - g)
    if smooth and smooth > 0:
        import cv2
        v = np.stack([cv2.GaussianBlur(c, (0, 0), float(smooth), borderType=cv2.BORDER_REPLICATE) for c in v])
    return np.ascontiguousarray(v, dtype=np.float32)
