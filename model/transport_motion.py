"""A motion field from optimal transport: many motions at once, for pairs that one shift cannot explain.

The shift search of model/fieldinit.py finds *one* displacement for the whole pair; where parts of the
scene move apart (a floe breaking into pieces that drift in different directions, two storms on
different tracks) it locks onto one part and DIS cannot recover the others (their offsets are beyond its
pyramid).  Optimal transport matches every part of one image with the nearest mass of the other,
whatever the number of motions, so its map is a start that DIS can refine.

Method: both images (band mean, shifted to be non-negative) are reduced to a grid of at most ``side``
cells on the longer side; POT's unbalanced entropic Sinkhorn (``ot.unbalanced.sinkhorn_unbalanced``,
mass may appear or vanish at a KL cost instead of being dragged across the image) gives the plan P.  Its
barycentric maps give each cell of X0 the displacement to where its mass goes, and each cell of X1 where
its mass came from; each is placed at the midpoint of its path (the fields of the accurate mode are
Eulerian at mid-interval), spread by normalised convolution to the cells without mass, upsampled, and
refined by DIS on the pair warped half-way towards each other along it.
"""
import warnings

import numpy as np

SIDE = 32           # cells on the longer side of the transport grid (1024 cells: a 1024² plan, ~1 s)
BLUR_CELLS = 1.0    # entropic blur of the plan, in cells
REACH = 0.4         # fraction of the longer side over which moving mass is cheaper than creating it


def _reduce(img, sw, sh):
    import cv2
    return cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA).astype(np.float64)


def _spread(points, values, weights, sh, sw, sigma):
    """Normalised convolution: values (K, 2) with weights (K,) at fractional cells points (K, 2; x, y)
    splatted bilinearly onto an sh × sw grid and blurred by sigma cells; cells without mass nearby take
    the broad (sigma × 4) average, so the field is defined everywhere."""
    import cv2
    acc = np.zeros((3, sh, sw))
    x = np.clip(points[:, 0], 0, sw - 1)
    y = np.clip(points[:, 1], 0, sh - 1)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    x1, y1 = np.minimum(x0 + 1, sw - 1), np.minimum(y0 + 1, sh - 1)
    fx, fy = x - x0, y - y0
    for xi, yi, wt in ((x0, y0, (1 - fx) * (1 - fy)), (x1, y0, fx * (1 - fy)), (x0, y1, (1 - fx) * fy),
                       (x1, y1, fx * fy)):
        w = wt * weights
        np.add.at(acc[0], (yi, xi), w)
        np.add.at(acc[1], (yi, xi), w * values[:, 0])
        np.add.at(acc[2], (yi, xi), w * values[:, 1])
    fine, broad = (np.stack([cv2.GaussianBlur(c, (0, 0), s, borderType=cv2.BORDER_REPLICATE) for c in acc])
                   for s in (sigma, 4 * sigma))
    eps = 1e-12 + 1e-6 * acc[0].sum() / acc[0].size
    alpha = np.clip(fine[0] / (fine[0] + eps), 0, 1)
    field = [alpha * fine[k] / (fine[0] + eps) + (1 - alpha) * broad[k] / (broad[0] + eps) for k in (1, 2)]
    return np.stack(field)


def transport_motion(a, b, side=SIDE, stabilized=False):
    """a, b: (C, H, W) finite, invalid pixels already filled; returns the displacement (2, H, W) in pixels
    over the interval (Eulerian at mid-interval, a(p − v/2) ≈ b(p + v/2)), before any DIS refinement,
    or None when either image has no mass to transport, or when POT is not installed (the plain CUDA
    node of the GPU check has none: the start is then the single-motion one)."""
    import cv2
    try:
        import ot
    except ImportError:
        return None

    h, w = a.shape[-2:]
    ga, gb = a.mean(axis=0).astype(np.float32), b.mean(axis=0).astype(np.float32)
    lo = float(min(ga.min(), gb.min()))
    f = max(h, w) / float(side)
    sw, sh = max(2, int(round(w / f))), max(2, int(round(h / f)))
    ma, mb = _reduce(ga - lo, sw, sh), _reduce(gb - lo, sw, sh)
    total = 0.5 * (ma.sum() + mb.sum())
    if ma.sum() <= 0 or mb.sum() <= 0:
        return None
    floor = 1e-9 / ma.size  # no exact zeros: the iterations divide by the masses (the stabilised ones take their log)
    ma, mb = ma.ravel() / total + floor, mb.ravel() / total + floor
    yy, xx = np.mgrid[0:sh, 0:sw]
    cells = np.stack([xx.ravel(), yy.ravel()], 1).astype(np.float64)
    n = float(max(sh, sw))
    cost = ot.dist(cells / n, cells / n)                          # squared distance, longer side = 1
    reg = 2.0 * (BLUR_CELLS / n) ** 2                              # Gibbs kernel exp(−d²/reg): σ = BLUR_CELLS
    with warnings.catch_warnings():   # a start refined by DIS needs no 1e-7 convergence: no warning to users
        warnings.simplefilter("ignore")
        # the translation-invariant iterations: "sinkhorn_stabilized" (``stabilized``: flow prior "multi",
        # files from before) at this blur returns a plan that has dropped almost all mass (0.1 % left on a
        # blob moved (30, 8) px: the map it gives is (6, 2))
        method = "sinkhorn_stabilized" if stabilized else "sinkhorn_translation_invariant"
        plan = ot.unbalanced.sinkhorn_unbalanced(ma, mb, cost, reg, REACH ** 2, method=method,
                                                 numItermax=2000, stopThr=1e-7)
    plan = np.nan_to_num(plan)
    out_mass, in_mass = plan.sum(1), plan.sum(0)
    keep0, keep1 = out_mass > 1e-9 * out_mass.max(), in_mass > 1e-9 * in_mass.max()
    to = plan[keep0] @ cells / out_mass[keep0, None] - cells[keep0]        # where X0's mass goes
    came = cells[keep1] - plan[:, keep1].T @ cells / in_mass[keep1, None]  # where X1's mass came from
    points = np.concatenate([cells[keep0] + to / 2, cells[keep1] - came / 2])
    values = np.concatenate([to, came])
    weights = np.concatenate([out_mass[keep0], in_mass[keep1]])
    small = _spread(points, values, weights, sh, sw, sigma=1.0)
    v = np.stack([cv2.resize(small[k].astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR) for k in (0, 1)])
    v[0] *= w / float(sw)
    v[1] *= h / float(sh)
    return v.astype(np.float32)
