"""Classical dense optical flow (OpenCV DIS), shared by the optical-flow baseline and by the
latent model's field initialisation.

Convention everywhere in ``model/``: a flow is a float32 array (2, H, W) of pixel displacements,
channel 0 along columns (x, to the right), channel 1 along rows (y, down).
``flow = estimate_flow(a, b)`` means a(p) ≈ b(p + flow(p)), i.e. the motion from a to b.
"""
import numpy as np


def _to_uint8(images, valid):
    """Scale images (C, H, W) to one uint8 channel with a range shared by the pair."""
    grey = [im.mean(axis=0) for im in images]
    values = np.concatenate([g[valid] for g in grey]) if valid is not None else np.concatenate([g.ravel() for g in grey])
    values = values[np.isfinite(values)]
    lo, hi = (np.percentile(values, [0.5, 99.5]) if values.size else (0.0, 1.0))
    if hi <= lo:
        hi = lo + 1.0
    out = []
    for g in grey:
        g = np.where(np.isfinite(g), g, lo)
        if valid is not None:
            g = np.where(valid, g, lo)
        out.append(np.clip((g - lo) / (hi - lo) * 255.0, 0, 255).astype(np.uint8))
    return out


def estimate_flow(a, b, valid=None, preset="medium", alpha=None):
    """Dense flow from image ``a`` to image ``b`` (each (C, H, W) or (H, W)); returns (2, H, W).
    ``alpha``: the weight of smoothness in DIS's variational refinement (None: DIS's default, 20)."""
    import cv2

    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    if a.ndim == 2:
        a, b = a[None], b[None]
    ua, ub = _to_uint8([a, b], valid)
    presets = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
               "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
               "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
    dis = cv2.DISOpticalFlow_create(presets[preset])
    if alpha is not None:
        dis.setVariationalRefinementAlpha(float(alpha))
    flow = dis.calc(ua, ub, None)  # (H, W, 2) with a(p) ≈ b(p + flow)
    return np.ascontiguousarray(flow.transpose(2, 0, 1), dtype=np.float32)


def warp(image, flow):
    """Backward warp: out(p) = image(p + flow(p)), bilinear, borders replicated.

    ``image`` (C, H, W) or (H, W); ``flow`` (2, H, W) in pixels.
    """
    import cv2

    image = np.asarray(image, dtype=np.float32)
    squeeze = image.ndim == 2
    if squeeze:
        image = image[None]
    h, w = image.shape[-2:]
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    mx, my = gx + flow[0], gy + flow[1]
    out = np.stack([cv2.remap(c, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) for c in image])
    return out[0] if squeeze else out
