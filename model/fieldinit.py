"""Initial velocity field for the accurate mode, from classical optical flow (model/flow.py, DIS).

The flow is computed on the whole pair (both directions, f = flow(X0→X1), g = flow(X1→X0)) and averaged
into one Eulerian displacement over the whole interval, v ≈ (f − g) / 2, then smoothed.  The model's
fields are v / N per step plus a learned residual.  Training and inference both call this function on
the pair they are given, so the model file does not need to store the flow: inference recomputes it
from x0 and x1 (DIS is deterministic for the same input).

Large displacements (``prior="shift"``): radar echoes travel 100-150 px in an hour at 500 m (measured on
the FMI bench from the 5-minute frames: ~(53, −112) and ~(27, −146) px), far beyond what DIS recovers
(it returned ~45 px).  So a global displacement is first found by an exhaustive search over shifts of
the blurred, downsampled pair (mean absolute difference over the valid overlap, the longest side
brought to ~128 px, shifts up to 40 % of the shorter side), the two images are shifted half-way towards
each other, DIS measures the residual both ways, and v = shift + smoothed residual.  On the bench this
took the held-out MAE from 3.65 to 3.11 dBZ (crop 1) and from 3.26 to 2.57 dBZ (crop 2) at 60 minutes.
"""
import numpy as np

from .rigid_pieces import GOOD_FIT, mask_pair, rigid_motion


def _warp_affine(img, m, inverse=False):
    """Each band of img (C, H, W) carried by the affine map m (2 × 3, pixels: content at x goes to m x;
    ``inverse``: content at m x comes to x), bilinear, borders replicated."""
    import cv2
    h, w = img.shape[-2:]
    flags = cv2.INTER_LINEAR | (cv2.WARP_INVERSE_MAP if inverse else 0)
    m = np.asarray(m, dtype=np.float32)
    return np.stack([cv2.warpAffine(c, m, (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE) for c in img])


def _shift_image(img, d):
    """Content moved by +d (pixels, (x, y)), borders replicated."""
    return _warp_affine(img, [[1, 0, d[0]], [0, 1, d[1]]])


def _coarse_factor(h0, w0, target):
    """_coarse's factor: a longest side of about ``target`` px, the shortest kept at 8 px or more (a long thin
    strip, 16 x 5000 px, was brought to no row at all and the resize failed)."""
    return max(1, min(int(round(max(h0, w0) / float(target))), min(h0, w0) // 8))


def _coarse(a, b, valid, target):
    """The pair's band means blurred and brought to a longest side of about ``target`` px, the pixels valid
    there, and the factor f (low-resolution pixel i covers full-resolution pixels f i .. f i + f − 1)."""
    import cv2
    a = np.asarray(a, dtype=np.float32).mean(axis=0)
    b = np.asarray(b, dtype=np.float32).mean(axis=0)
    h0, w0 = a.shape
    f = _coarse_factor(h0, w0, target)
    vm = np.ones((h0, w0), np.float32) if valid is None else np.asarray(valid, np.float32)
    if f > 1:
        a = cv2.resize(cv2.GaussianBlur(a, (0, 0), f), None, fx=1 / f, fy=1 / f, interpolation=cv2.INTER_AREA)
        b = cv2.resize(cv2.GaussianBlur(b, (0, 0), f), None, fx=1 / f, fy=1 / f, interpolation=cv2.INTER_AREA)
        vm = cv2.resize(vm, (a.shape[1], a.shape[0]), interpolation=cv2.INTER_AREA)
    return a, b, vm > 0.99, f


SEARCH_TARGET, SEARCH_FRACTION = 128, 0.4   # global_shift's resolution (longest side, px) and reach


def search_reach(shape, target=SEARCH_TARGET, max_fraction=SEARCH_FRACTION):
    """The largest shift (px, per axis) global_shift looks at on an image of ``shape`` (.., H, W)."""
    h0, w0 = shape[-2:]
    f = _coarse_factor(h0, w0, target)
    h, w = (round(h0 * (1 / f)), round(w0 * (1 / f))) if f > 1 else (h0, w0)   # _coarse's size (cv2's rounding)
    return int(max_fraction * min(h, w)) * f


def global_shift(a, b, valid=None, target=SEARCH_TARGET, max_fraction=SEARCH_FRACTION, min_overlap=0.3,
                 progress=None, with_others=False):
    """Displacement d (x, y) in pixels with a(p) ≈ b(p + d), by exhaustive search at low resolution.

    a, b: (C, H, W) finite arrays; ``progress(fraction)`` is called once per searched row of shifts.
    Returns float32 (2,); with ``with_others`` also the search's next local minima (_other_minima)."""
    reach = search_reach(np.shape(a), target, max_fraction)
    a, b, v, f = _coarse(a, b, valid, target)
    h, w = a.shape
    r = reach // f
    errors = np.full((2 * r + 1, 2 * r + 1), np.nan)
    best = (np.inf, 0, 0)
    for dy in range(-r, r + 1):
        if progress is not None:
            progress((dy + r) / (2 * r + 1))
        ya, yb = slice(max(0, -dy), min(h, h - dy)), slice(max(0, dy), min(h, h + dy))
        for dx in range(-r, r + 1):
            xa, xb = slice(max(0, -dx), min(w, w - dx)), slice(max(0, dx), min(w, w + dx))
            m = v[ya, xa] & v[yb, xb]
            cnt = int(m.sum())
            if cnt < min_overlap * h * w or cnt == 0:
                continue
            e = float(np.abs(a[ya, xa] - b[yb, xb])[m].mean())
            errors[dy + r, dx + r] = e
            if e < best[0] - 1e-9 or (abs(e - best[0]) <= 1e-9 and dx * dx + dy * dy < best[1] ** 2 + best[2] ** 2):
                best = (e, dx, dy)
    d = np.array([best[1] * f, best[2] * f], dtype=np.float32)
    return (d, _other_minima(errors, r, f, (best[1], best[2]))) if with_others else d


# "multi-shifts" weighs the shift search's next local minima (at least this far apart, px; at most
# OTHER_SHIFTS of them, the lowest errors first) against the best match
MINIMA_APART, OTHER_SHIFTS = 8, 2


def _other_minima(errors, r, f, best):
    """The local minima of global_shift's errors other than ``best`` (coarse dx, dy), lowest error first, each
    at least MINIMA_APART px from the best and from those before it (a flat stretch or a tie counts once;
    flat ground, where nothing around is higher, not at all), at most OTHER_SHIFTS, as full-resolution
    shifts (x, y) of at least LARGE_SHIFT px (a smaller one is plain DIS's to find)."""
    from scipy import ndimage
    if not np.isfinite(errors).any():
        return []
    apart = max(1, -(-MINIMA_APART // f))             # coarse px, rounded up
    size = 2 * apart + 1
    filled = np.where(np.isfinite(errors), errors, np.nanmax(errors))
    low = ((filled == ndimage.minimum_filter(filled, size=size)) & (filled < ndimage.maximum_filter(filled, size=size))
           & np.isfinite(errors))
    kept, others = [tuple(best)], []
    for _, dx, dy in sorted((errors[y, x], x - r, y - r) for y, x in zip(*np.nonzero(low))):
        if len(others) == OTHER_SHIFTS:
            break
        if min(max(abs(dx - kx), abs(dy - ky)) for kx, ky in kept) < apart:
            continue
        kept.append((dx, dy))
        if np.hypot(dx * f, dy * f) >= LARGE_SHIFT:
            others.append(np.array([dx * f, dy * f], np.float32))
    return others


def _dis_pair(a, b, valid, smooth, alpha=None):
    """DIS both ways averaged into one displacement over the interval, Gaussian-smoothed by ``smooth`` px;
    ``alpha``: DIS's smoothness weight (flow.estimate_flow; None: DIS's default)."""
    from .flow import estimate_flow
    import cv2
    v = 0.5 * (estimate_flow(a, b, valid, alpha=alpha) - estimate_flow(b, a, valid, alpha=alpha))
    if smooth and smooth > 0:
        v = np.stack([cv2.GaussianBlur(c, (0, 0), float(smooth), borderType=cv2.BORDER_REPLICATE) for c in v])
    return v


def _endpoint_error(a, b, v, valid):
    """How well the displacement v over the interval carries a onto b and b back onto a (mean |.|)."""
    from .flow import warp
    m = np.ones(a.shape[-2:], bool) if valid is None else valid
    if not m.any():
        return 0.0
    e1 = np.abs(warp(b, v) - a).mean(axis=0)[m].mean()
    e0 = np.abs(warp(a, -v) - b).mean(axis=0)[m].mean()
    return float(e0 + e1)


LARGE_SHIFT = 16.0  # px: below this DIS alone copes (its pyramid), and "auto" keeps plain DIS


def _midpoint_misfit(a, b, v, valid):
    """How far apart the two ends are when each is carried half-way along v (mean |.| over valid pixels):
    the disagreement of the frames at mid-interval, which no flexible warp can hide the way it hides an
    endpoint misfit (a wrong field still maps every floe pixel of one end onto *some* floe pixel of the
    other)."""
    m = np.ones(a.shape[-2:], bool) if valid is None else valid
    if not m.any():
        return 0.0
    p, q = _half_way(a, b, v)
    return float(np.abs(p - q).mean(axis=0)[m].mean())


def _half_way(a, b, v):
    """Each end carried half-way along v towards the other (the frames at mid-interval)."""
    from .flow import warp
    return warp(a, -v / 2), warp(b, v / 2)


def _midpoint_distance(a, b, v, valid):
    """The two ends carried half-way along v, p and q (values from the pair's minimum), compared as a
    weighted Jaccard distance Σ|p − q| / Σ max(p, q) over valid pixels (1 − IoU for binary masks): the
    disagreement relative to the content there is at mid-interval.  _midpoint_misfit's mean over the
    image falls with every bit of content a motion carries out of it (it is then compared with the empty
    border): a wrong shift of 48 px on bench/cases.py's floe split, locked onto one piece, disagrees nearly
    as little as the transport candidate (0.134 vs 0.122; 0.91-0.97 x at transport grids of 20-48 cells,
    and the wrong way round with the solver before); relative to what stays, 0.53 vs 0.37."""
    m = np.ones(a.shape[-2:], bool) if valid is None else valid
    lo = float(min(a[:, m].min(), b[:, m].min())) if m.any() else 0.0
    p, q = _half_way(a - lo, b - lo, v)
    there = float(np.maximum(p, q).mean(axis=0)[m].sum())
    return float(np.abs(p - q).mean(axis=0)[m].sum()) / there if there > 0 else 0.0


def _pattern_misfits(a, b, v, valid):
    """The two ends carried half-way along v compared by pattern, blind to how bright they are: 1 − the
    correlation coefficient of the two images, and the summed |differences| of their gradients' components
    relative to the gradients' summed lengths, over valid pixels (band means).  From "multi-patterns" on, ties of
    _midpoint_distance are broken with them: where rain bands grow or fade within the hour, two shifts can leave the ends
    alike in amount but not in where the edges lie."""
    m = np.ones(a.shape[-2:], bool) if valid is None else valid
    p, q = (x.mean(axis=0) for x in _half_way(a, b, v))
    ps, qs = p[m] - p[m].mean(), q[m] - q[m].mean()
    scale = float(np.sqrt((ps ** 2).sum() * (qs ** 2).sum()))
    corr = 1.0 - float((ps * qs).sum()) / scale if scale > 0 else 1.0
    (py, px), (qy, qx) = np.gradient(p), np.gradient(q)
    length = float((np.hypot(px, py) + np.hypot(qx, qy))[m].sum())
    edges = float((np.abs(px - qx) + np.abs(py - qy))[m].sum()) / length if length > 0 else 0.0
    return corr, edges


# "multi-jaccard" takes the transport candidate when its _midpoint_distance is below this share of the
# one-motion candidate's: the one motion is the simpler explanation, kept unless clearly worse.  Measured
# (2026-11-26): the radar pair nearest to the line, fmi-north-1km-60min given as rain rate, at 0.95 (its
# transport frames worse: 3.34 vs 3.16 dBZ on the dBZ pair, at 0.99); every other radar crop of the bench
# and the held-out ones, in dBZ and in mm/h, 0.99-2.1; pieces drifting apart 0.29-0.70 (bench/cases.py
# FLOES and the floe split; not the floe whose small piece drifts far, 0.99: one motion is kept there,
# its frames IoU 0.82 where OT's are 0.86); the rotation 0.94 and the field of six small floes 0.93, both left to the one
# motion (the field's frames are better so, IoU 0.905 vs 0.863; the rotation's transport frames had a
# lower MAE, 1.17 vs 1.27, but their domain mean 1.11 x the truth's, 1.03 with the one motion).
TRANSPORT_MARGIN = 0.9


# How far the blend trusts the other end where one end's trajectory began outside the image (inflow,
# outflow), from how much of the pair's change the motion explains: r = the two ends' disagreement when
# carried half-way along the motion / their disagreement standing still.  At r <= BORDER_FULL the end
# that saw the content alone is used there, at r >= BORDER_NONE both are blended (the border value read
# again by the other end counts as much as in the interior), linearly in between.  Measured on the 17
# bench cases (make bench-quality): trusting the other end fully lowered the MAE where the motion explains
# the pair (r 0.15-0.39: synthetic inflow 0.92 -> 0.29, drifting texture 1.12 -> 0.48, growth/decay
# 0.69 -> 0.58, MeteoSwiss line 60 min 2.72 -> 2.52 dBZ) and raised it where it explains less (r
# 0.39-0.76, every FMI crop: band 60 min 3.36 -> 3.60): there the motion near the border is less sure, and
# the entering content carried by a wrong motion is worse than the blend.
BORDER_FULL, BORDER_NONE = 0.35, 0.55


def content_motion(flow, x0, x1, valid=None):
    """How what the pair shows moves, in pixels over the interval: the net displacement (dx, dy) and the
    mean length of the displacements, both weighted by the content (each pixel's larger value of the two
    ends above the pair's lowest, so echoes count by their strength and empty sky not at all: there the
    field is only filled in); plain means over the valid pixels when the pair is flat.  A turn or pieces
    parting have a small net displacement and a large mean length."""
    a, b = _as_pair(x0, x1)
    m = np.ones(a.shape[-2:], bool) if valid is None else np.asarray(valid, bool)
    m = m & np.isfinite(a).all(axis=0) & np.isfinite(b).all(axis=0) & np.isfinite(flow).all(axis=0)
    if not m.any():
        return 0.0, 0.0, 0.0
    top = np.maximum(a, b).max(axis=0)
    w = np.where(m, top - float(np.minimum(a, b).min(axis=0)[m].min()), 0.0)
    if not w.sum() > 0:
        w = m.astype(np.float64)
    v = np.where(m, flow, 0.0)
    return tuple(float((c * w).sum() / w.sum()) for c in (v[0], v[1], np.hypot(v[0], v[1])))


def border_weight(x0, x1, v, valid=None):
    """The blend's weight (0..1) of an end whose trajectory began outside the image, for the pair and its
    initial motion ``v`` (see BORDER_FULL): 0 where the motion explains the change well, 1 where not."""
    a, b = _as_pair(x0, x1)
    af, bf = _filled(a, b, valid)
    still = _midpoint_misfit(af, bf, np.zeros_like(v), valid)
    if still <= 0:
        return 1.0
    r = _midpoint_misfit(af, bf, v, valid) / still
    return float(np.clip((r - BORDER_FULL) / (BORDER_NONE - BORDER_FULL), 0.0, 1.0))


# Motion on a logarithmic scale where the values are a heavy-tailed quantity.  A rain rate in mm/h (or a
# linear backscatter) spans three orders of magnitude: on its linear scale the few intense cores fill the
# range, the widespread light rain that carries the motion is a flat floor, and the shift search and DIS
# lock onto the cores.  The bench's radar given as rain rate (Marshall-Palmer, scored back in dBZ):
# MeteoSwiss line 60 min MAE 2.52 dBZ -> 11.07, held-out centre 2.17 -> 10.69 on the linear scale;
# 2.96 / 2.24 measured on log(R + p99 / 100) (pysteps estimates motion on dBR for the same reason).
# Such data are recognised by their values: none negative (beyond a resampling's undershoot), and the 99th
# percentile of the positive ones more than SKEWED times their median (the bench's dBZ crops: 1.4-2.9; as
# rain rate 3.2-28, where the linear scale did as well as the log below 5; binary ice masks 1; Sentinel-1
# grey levels 1.7).
SKEWED = 5.0
LOG_OFFSET = 0.01   # log(x + LOG_OFFSET * p99): values 20 dB below the strong ones count as none


def _as_pair(x0, x1):
    a = np.nan_to_num(np.asarray(x0, dtype=np.float32))
    b = np.nan_to_num(np.asarray(x1, dtype=np.float32))
    return (a[None], b[None]) if a.ndim == 2 else (a, b)


def log_offsets(x0, x1, valid=None):
    """Per band, the offset of motion_view's log scale, or None where the band keeps its own scale."""
    a, b = _as_pair(x0, x1)
    m = np.ones(a.shape[-2:], bool) if valid is None else np.asarray(valid, bool)
    out = []
    for c in range(a.shape[0]):
        pool = np.concatenate([a[c][m], b[c][m]])
        positive = pool[pool > 0]
        p50, p99 = np.percentile(positive, [50, 99]) if positive.size >= 16 else (0.0, 0.0)
        # negative values mean another kind of scale (dB), except a resampling's small undershoot
        heavy = positive.size >= 16 and p99 > SKEWED * p50 and pool.min() >= -LOG_OFFSET * p99
        out.append(np.float32(LOG_OFFSET * p99) if heavy else None)
    return out


def motion_view(x0, x1, valid=None, offsets=None):
    """The pair (C, H, W) as the motion estimate sees it, finite: NaN as 0, and each band on a
    logarithmic scale where its values are heavy-tailed (``offsets``, default log_offsets), the pair's
    valid pixels pooled so both ends share one scale.  The frames are made from the values themselves."""
    a, b = _as_pair(x0, x1)
    out_a, out_b = a.copy(), b.copy()
    for c, offset in enumerate(log_offsets(a, b, valid) if offsets is None else offsets):
        if offset is not None:
            out_a[c] = np.log(np.maximum(a[c], 0) + offset)
            out_b[c] = np.log(np.maximum(b[c], 0) + offset)
    return out_a, out_b


def _filled(a, b, valid):
    """Invalid pixels set to the pair's lowest valid value (no echo), so the searches see no edges there."""
    if valid is None:
        return a, b
    fill = [float(np.concatenate([a[c][valid], b[c][valid]]).min()) if valid.any() else 0.0
            for c in range(a.shape[0])]
    return (np.stack([np.where(valid, a[c], fill[c]) for c in range(a.shape[0])]),
            np.stack([np.where(valid, b[c], fill[c]) for c in range(b.shape[0])]))


def _transport_candidate(af, bf, smooth, stabilized=False, alpha=None):
    """The optimal-transport start (model/transport_motion.py) refined by DIS on the pair warped half-way
    towards each other along it; None when there is nothing to transport, or without POT (a plain CUDA
    node for the GPU check has none: there the start is the single-motion one)."""
    from .transport_motion import transport_motion
    v = transport_motion(af, bf, stabilized=stabilized)
    if v is None:
        return None
    return np.ascontiguousarray(v + _dis_pair(*_half_way(af, bf, v), None, smooth, alpha), dtype=np.float32)


def _ecc(a, b, mask, starts, motion):
    """OpenCV's ECC maximisation (a correlation coefficient, so blind to an overall change of intensity) of
    b(W x) ≈ a(x) from each of ``starts`` ((2, 3) float32), the best correlation kept; None where none
    converges."""
    import cv2
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 200, 1e-6)
    best, found = -np.inf, None
    for w in starts:
        try:
            cc, w = cv2.findTransformECC(a, b, w, motion, criteria, mask, 5)
        except cv2.error:  # no convergence from this start (flat images, no overlap)
            continue
        if np.all(np.isfinite(w)) and cc > best:
            best, found = cc, w
    return found


def _at_full_resolution(w, f):
    """A map W found at _coarse's resolution, in full-resolution pixels (low pixel i sits at f i + o)."""
    m, o = w[:, :2].astype(np.float64), np.full(2, (f - 1) / 2.0)
    return np.concatenate([m, (f * w[:, 2] + o - m @ o)[:, None]], axis=1)


def _turn_starts(a, shift, f):
    """ECC finds the nearest optimum: start from turns every 30° about the centre, each with no shift and
    with the shift search's (which a large turn sends astray: on Sentinel-1 texture turned 45° it found
    (90, 102) px, and ECC from there did not converge)."""
    centre = np.array([(a.shape[1] - 1) / 2.0, (a.shape[0] - 1) / 2.0])
    shifts = [(0.0, 0.0)] + ([(float(shift[0]), float(shift[1]))] if np.any(np.asarray(shift) != 0) else [])
    for d in shifts:
        for degrees in range(-150, 181, 30):
            th = np.radians(degrees)
            rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
            yield np.concatenate([rot, (centre - rot @ centre + np.array(d) / f)[:, None]], axis=1).astype(np.float32)


def global_linear(a, b, valid=None, shift=(0.0, 0.0), target=128):
    """The linear motion (a turn, a shear, a stretch and a shift: an affine map) that best carries a onto b:
    the (2, 3) matrix W, in pixels, with b(W x) ≈ a(x), by ECC at the shift search's resolution: first as a
    turn and a shift from turns every 30° (_turn_starts), then as an affine map from that turn and from
    ``shift`` alone; None where it does not converge.  a, b: (C, H, W) finite arrays; ``valid``: (H, W)
    bool or None."""
    import cv2
    ac, bc, v, f = _coarse(a, b, valid, target)
    mask = v.astype(np.uint8)
    starts = [np.float32([[1, 0, shift[0] / f], [0, 1, shift[1] / f]])]
    rigid = _ecc(ac, bc, mask, _turn_starts(ac, shift, f), cv2.MOTION_EUCLIDEAN)
    w = _ecc(ac, bc, mask, ([rigid] if rigid is not None else []) + starts, cv2.MOTION_AFFINE)
    return None if w is None else _at_full_resolution(w, f)


def linear_field(w, height, width):
    """The stationary field (2, H, W) whose trajectories over the interval carry each pixel x to W x, and its
    generator L (3 × 3): v(x) = L (x, 1), with exp(L) = W (a turn by θ about a point c is v = θ J (x − c), J a
    quarter turn), so the model's steps follow the arc where the symmetric average of DIS both ways gives
    the chord and misses most of a large turn.  None where W has no real logarithm (a reflection, a turn
    of 180°)."""
    from scipy.linalg import logm
    m = np.eye(3)
    m[:2] = w
    gen = logm(m)
    if not np.all(np.isfinite(gen)) or np.abs(np.imag(gen)).max() > 1e-6:
        return None
    gen = np.real(gen)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    v = np.stack([gen[0, 0] * x + gen[0, 1] * y + gen[0, 2], gen[1, 0] * x + gen[1, 1] * y + gen[1, 2]])
    return v.astype(np.float32), gen


def describe_linear(gen):
    """The linear motion of generator ``gen`` in words: its turn (counter-clockwise on screen, y down) and its
    stretches, from the polar decomposition of the map over the interval."""
    from scipy.linalg import expm
    u, s, vt = np.linalg.svd(expm(gen)[:2, :2])
    r = u @ vt
    ccw = -np.degrees(np.arctan2(r[1, 0], r[0, 0]))
    way = "counter-clockwise" if ccw >= 0 else "clockwise"
    return f"turning {abs(ccw):.1f}° {way}, stretched × {s[0]:.2f} and × {s[1]:.2f}"


def _linear_half(a, b, gen):
    """a carried half-way along the linear motion and b carried back half-way, exactly (exp(L / 2); a
    field's linear half step shortens a large turn)."""
    from scipy.linalg import expm
    m = expm(gen / 2)[:2]
    return _warp_affine(a, m), _warp_affine(b, m, inverse=True)


def _linear_candidate(af, bf, valid, smooth, shift, alpha=None):
    """The linear motion (global_linear) as a field, refined by DIS on the pair carried half-way towards each
    other along it (as the shift search's start), and its generator; None without one."""
    w = global_linear(af, bf, valid, (0.0, 0.0) if shift is None else shift)
    field = None if w is None else linear_field(w, *af.shape[-2:])
    if field is None:
        return None
    v, gen = field
    return np.ascontiguousarray(v + _dis_pair(*_linear_half(af, bf, gen), None, smooth, alpha), dtype=np.float32), gen


# "multi-linear" takes the linear-motion candidate (_linear_candidate) instead of the start chosen before
# (one motion, none, or the transport candidate's several) when the two ends carried half-way along it
# disagree less than this share of that start's _midpoint_distance: the start stays unless clearly worse, as
# with TRANSPORT_MARGIN.  Measured (2026-11-26, 36 bench cases: the 17, the 7 held-out, shear, convergence,
# 5 floe breakups, 5 whole composites, untrained): the rotation by 40° 0.35 x (frames MAE 1.27 -> 0.14 dBZ),
# the shear 0.20 x against the transport start (1.42 -> 0.09), mch-cells 0.89 x (0.464 -> 0.455); the other
# radar cases 0.91-1.05 x (below 0.95 whole-fmi-2km-60min-a, 0.93 x, where an earlier turn-only candidate's
# frames were worse, 1.50 vs 1.45 dBZ), the floe breakups 0.94-2.3 x, the convergence (a wrong map) 4.1 x.
LINEAR_MARGIN = 0.9


# "multi-shifts" takes another local minimum of the shift search (_other_minima) when its one motion's
# _midpoint_distance is below this share of the best match's.  Measured (2026-11-27, untrained): of 48 radar
# pairs (the 11 bench crops, 7 held-out, 3 large-motion, 3 whole MeteoSwiss composites and the first 24 of
# bench/cases.py RANDOM, crops at 1 km an hour apart drawn at random) it changes three MeteoSwiss crops whose
# best match lay at the search's edge, pairing empty areas, (102, -74), (102, 66) and (-46, 102) px, where the
# 5-minute frames chained say about (48, -24): MAE 3.85 -> 1.81, 3.43 -> 2.20, 1.20 -> 0.89 dBZ; of the 44
# drawn after it was chosen (RANDOM's rest) four, 1.81 -> 1.12, 2.67 -> 2.13, 0.64 -> 0.58 and one alike
# (0.581 -> 0.576, RMSE 2.47 -> 2.54); no other.  Refused nearest
# the margin: fmi-band-500m-60min's next minimum at 0.93 x (its frames 3.36 -> 3.26), a random FMI crop's at
# 0.90 x, the large-motion FMI edge's at 0.95 x (its frames worse, 4.03 -> 6.85).  No shift under LARGE_SHIFT
# is weighed: plain DIS agrees half-way better than it moves (a random FMI crop's (0, 0) at 0.88 x, frames
# 2.65 -> 3.79).
SHIFT_MARGIN = 0.9
# "multi-patterns" then breaks the ties within that margin either way (Start.rival) by _pattern_misfits: the
# rival is taken when both its correlation and its edge misfit are lower.  Chosen (2026-11-27, untrained) on
# the 17 radar pairs with a rival among the 68 random crops, the 18 bench and held-out and the 3 large-motion
# ones (each measure alone picked the shift with the better frames on 12 of the 15 that differ by > 0.05 dBZ,
# the Jaccard distance itself on 10): it changes six, better on four (MAE 4.43 -> 3.88, 4.76 -> 3.17,
# 3.61 -> 1.63, 2.85 -> 2.69 dBZ), alike on fmi-band-500m-60min, worse on the held-out 250 m hour whose
# motion leaves the crop (4.40 -> 4.78, both shifts wrong).  Checked on 72 crops drawn afresh (seeds 21-23,
# not in the repository; 60 and 45 minutes): 15 with a rival, three changed, all better (5.06 -> 2.57,
# 3.03 -> 1.58, 1.55 -> 1.21), two left where the rival's frames were better (1.83 vs 1.41, 2.23 vs 2.08).
# Then (after seeing the held-out hour worse) no tie is broken where the shift taken lies at the search's edge:
# the held-out hour and fmi-band-500m-60min keep theirs (and the first its warning), nothing else changes.
# "multi-regular" then measures every optical flow of the start (plain, after a shift, the transport and
# linear candidates' refinements) with DIS's variational smoothness weighted by this instead of its default,
# 20.  DIS is made for video, frames a few ms apart; an hour apart, echoes grow and decay, and the rougher
# field explains some of that change as motion.  Measured (2026-11-27, untrained, the whole start; README):
# on dBZ, RMSE 1.7-3.4 % lower on every group of radar crops and on the whole composites (on rain rates and with
# no echo as -32 dBZ, even: README); MAE better by over 0.02 dBZ
# on 34 of the repository's 86 radar crops (the 11, the 7 held-out, the 68 random) and on 28 of 60 drawn
# afresh (seeds 31-33, not in the repository), worse on 5 and 4 (by at most 0.09 dBZ, but one random FMI
# hour whose smoother one motion let the transport candidate pass its margin, 0.96); the synthetic shear,
# growth/decay, inflow/outflow and drifting texture better (0.087 -> 0.067, 0.54 -> 0.49, 0.25 -> 0.18,
# 0.40 -> 0.34), the convergence worse (0.18 -> 0.20), the floes within 0.001 IoU (the field of six 0.933 ->
# 0.940); the 99th percentile kept a little lower (by 0.005 on average).  200 was as good on average but
# flipped another pair's start on the fresh crops (+0.77 dBZ); 50 gained half as much.
REGULAR_ALPHA = 100.0


# "multi-rigid" takes the rigid-pieces candidate (model/rigid_pieces.py, masks only) when the pieces carried
# back into the other end cover it with an IoU of at least this.  The two ends' half-way agreement cannot
# judge it: every smooth field leaves the unbroken end's ice in the cracks that open by mid-interval, which
# dominates the distance on every candidate (0.35-0.39 on the bench floe split whichever start).  Measured
# (2026-11-27, untrained, bench/cases.py's floe split, binary shift and FLOES): the fit 0.96-1.00 on every
# breakup whose frames it made better (IoU 0.919 -> 0.969 on the split, the turn by 30° 0.786 -> 0.927, the
# pack turning 60° 0.516 -> 0.783; OT 0.909 / 0.811 / 0.505), 0.75 on the field of six small floes, where
# floes that touch form one region (left to the one motion under "multi-rigid"; "multi-split" cuts them: 0.92).
RIGID_FIT = 0.9
# ... and when the pieces leave at most this share of the misfit the two ends have standing still (1 − their
# IoU): an IoU is lenient where one region fills most of the image (pack ice with a few leads, unchanged but
# for them, has 0.9 standing still).  On the bench's breakups standing still leaves 0.63-1.00, the pieces
# 0.00-0.04.
RIGID_SHARE = 0.5


# The accurate mode's starts in the order they were added, each one its predecessors' and one more step; a
# model file keeps the one it was trained with (model/presets.py FLOW_PRIORS lists the same names).
SERIES = ("multi", "multi-jaccard", "multi-linear", "multi-rigid", "multi-split", "multi-shifts", "multi-patterns",
          "multi-regular")


def _since(name):
    """The starts from ``name`` on (SERIES)."""
    return SERIES[SERIES.index(name):]


PRIORS = ("auto",) + SERIES + ("shift", "none")
MULTI = SERIES                       # + transport
JACCARD = _since("multi-jaccard")    # candidates judged by _midpoint_distance
LINEAR = _since("multi-linear")      # + one linear motion of the whole scene
RIGID = _since("multi-rigid")        # + rigid pieces on masks
SPLIT = _since("multi-split")        # pieces cut at their necks, the edge left out
SHIFTS = _since("multi-shifts")      # the search's other minima weighed
PATTERNS = _since("multi-patterns")  # their ties broken by pattern and edges
REGULAR = _since("multi-regular")    # DIS with REGULAR_ALPHA


# What initial_flow(..., with_kind=True) says it found: no motion (the time blend), one motion field
# (DIS, after the shift search), or several motions at once (the optimal-transport candidate).
STILL, ONE_MOTION, SEVERAL_MOTIONS = "still", "one motion", "several motions"
# one linear motion of the whole scene (the linear candidate of "multi-linear"): one motion too
LINEAR_MOTION = "one linear motion"


def initial_flow(x0, x1, valid=None, smooth=2.0, prior="auto", progress=None, with_kind=False, with_pieces=False,
                 with_shift=False):
    """x0, x1: (C, H, W) float arrays (NaN allowed); returns (2, H, W) float32 pixels over the interval,
    and with ``with_kind`` also which of STILL, ONE_MOTION, LINEAR_MOTION, SEVERAL_MOTIONS it is, with
    ``with_pieces`` also the rigid pieces (model/rigid_pieces.Pieces: their per-step fields) or None, with
    ``with_shift`` also the shift the one motion was built on (global_shift's best match, or another of its
    minima under "multi-shifts" onwards; None when not searched) and its rival (from "multi-shifts" on, a shift
    set aside that the two ends carried half-way agree along within SHIFT_MARGIN of it, either way; else None),
    in that order.

    ``prior``: ``"none"`` plain DIS both ways; ``"shift"`` the global-shift search first (see the module
    docs); ``"auto"`` (models saved before ``"multi"`` existed: inference calls this with the stored
    prior) uses plain DIS when the global shift is under ``LARGE_SHIFT`` px (on small
    sparse scenes the search can lock onto one blob), the shift + DIS residual otherwise.  Choosing by
    endpoint mismatch instead was measured worse: plain DIS fits the endpoints better (it explains
    growth/decay as motion) but gave 2.45 / 2.13 dBZ vs 2.39 / 1.83 at 30 minutes on the bench.
    With ``"auto"``, a motion that carries each end onto the other *worse* than no motion at all is
    dropped (zero flow: the frames start as the time blend), the fallback for pairs whose change is
    not motion (growth/decay in place, or a shift search locked onto the wrong echoes).
    ``"multi"`` (files from before ``"multi-jaccard"``): ``"auto"``'s motion, or the optimal-transport
    motion (several motions at once: pieces drifting apart, see model/transport_motion.py) when that one
    makes the two ends agree better at mid-interval (_midpoint_misfit); the endpoint misfit ranked the
    candidates wrongly on four of the 17 bench cases.  ``"multi-jaccard"``
    compares them by _midpoint_distance, relative to the content, with TRANSPORT_MARGIN (one motion on
    every radar crop; several, clearly, on most pieces drifting apart: the bench floe 0.70 ×), and the
    transport solver that keeps the mass (model/transport_motion.py; "multi" keeps the one before).
    ``"multi-linear"`` (the accurate mode's default before "multi-rigid"; files from before it keep
    ``"multi-jaccard"``) then
    weighs one linear motion of the whole scene (a turn, shear, stretch and shift, _linear_candidate)
    against the start chosen, with LINEAR_MARGIN.
    ``"multi-rigid"`` (the accurate mode's default after it; files from before keep theirs) then, on a mask
    (two values: ice and water), fits each piece as a rigid body (model/rigid_pieces.py) and takes that
    field where the fit is good (RIGID_FIT, RIGID_SHARE).  ``"multi-split"`` (the default since; files from
    before keep theirs): where the regions fit badly, fits again with each region cut at its necks
    (pieces that still touch); the fit leaves out what the pieces bring from beyond the image's edge, and
    where the pieces are taken the border weight is 0 (pair_start).  ``"multi-shifts"`` (the default since;
    files from before keep theirs) also weighs the shift search's next local minima (_other_minima) against
    its best match by _midpoint_distance, with SHIFT_MARGIN: an hour apart the best match can pair
    unrelated echoes, or empty areas at the edge of the search.  ``"multi-patterns"`` (the default since;
    files from before keep theirs): where a shift set aside is within that margin of the one taken either way
    (the rival), takes the rival when the two ends carried half-way along it agree better both in pattern and
    in edges (_pattern_misfits).  ``"multi-regular"`` (the default since; files from before keep theirs)
    measures every optical flow of the start with DIS weighted towards smooth fields (REGULAR_ALPHA).
    ``progress(fraction, what)``, optional, is told how far the estimate is (it takes seconds on large
    images).  pair_start measures it on motion_view's scale (the accurate mode's ``flow_log_view``)."""
    def report(fraction, what):
        if progress is not None:
            progress(fraction, what)

    if prior not in PRIORS + (None,):
        raise ValueError(f"unknown flow prior {prior!r}")
    a, b = _as_pair(x0, x1)
    af, bf = _filled(a, b, valid)
    auto = prior in ("auto",) + MULTI
    alpha = REGULAR_ALPHA if prior in REGULAR else None
    v, d, other, rival = _estimate(a, b, af, bf, valid, smooth, prior, report, alpha)
    kind, done = ONE_MOTION, "done" if other is None else f"done, {other}"
    still = _endpoint_error(a, b, np.zeros_like(v), valid) if auto else None
    if auto and _endpoint_error(a, b, v, valid) >= still:
        # the motion does not explain the change (each end carried along it matches the other end worse
        # than not moving at all): no motion, so the frames start as the time blend of the two ends
        v, kind, done = np.zeros_like(v), STILL, "done"
    # the chosen start's half-way distance, which each later candidate must clearly beat
    jaccard = prior in JACCARD
    chosen = None   # the rigid pieces, where taken
    apart = _midpoint_distance(af, bf, v, valid) if jaccard else None
    vt = None
    if prior in MULTI:
        report(0.9, "optimal transport for several motions")
        vt = _transport_candidate(af, bf, smooth, stabilized=prior == "multi", alpha=alpha)
        if vt is None:
            better = False
        elif prior == "multi":
            better = _midpoint_misfit(af, bf, vt, valid) < _midpoint_misfit(af, bf, v, valid)
        else:
            apart_t = _midpoint_distance(af, bf, vt, valid)
            better = apart_t < TRANSPORT_MARGIN * apart
        if better:
            # said, so a user knows which start
            v, kind, done = vt, SEVERAL_MOTIONS, "done, several motions (optimal transport)"
            if prior != "multi":
                apart = apart_t
    if prior in LINEAR:
        # weighed last, against whichever start was chosen (weighed before the transport candidate, a turn-only
        # version found a turn on the shear, beat the one motion and kept the transport start out: 1.42 -> 1.69)
        report(0.95, "a turn, shear and stretch of the whole scene as another candidate")
        cand = _linear_candidate(af, bf, valid, smooth, d, alpha)
        if cand is not None:
            vl, gen = cand
            if (_midpoint_distance(af, bf, vl, valid) < LINEAR_MARGIN * apart
                    and _endpoint_error(a, b, vl, valid) < still):
                # said, so a user knows the scene moves as one (counter-clockwise on screen, y down)
                v, kind, done = vl, LINEAR_MOTION, f"done, one linear motion ({describe_linear(gen)})"
    if prior in RIGID:
        masks = mask_pair(a, b, valid)
        if masks is not None:
            m0, m1 = masks
            standing = float((m0 & m1).sum() / max((m0 | m1).sum(), 1))   # the two ends' IoU, no motion

            def good(p):
                return p is not None and p.fit >= RIGID_FIT and 1 - p.fit <= RIGID_SHARE * (1 - standing)

            # each piece's shift starts from the chosen start and from the transport candidate, the better
            # fit kept (bench/cases.py's floe in four pieces: 0.83 from the one motion, 0.98 from transport);
            # with "multi-split", where the regions fit badly, again with the regions cut at their necks
            # "multi-split" also leaves out of the fit what the pieces bring from beyond the image's edge
            split_prior = prior in SPLIT
            starts, found = [v] if vt is None or vt is v else [v, vt], None
            for split in (False, True) if split_prior else (False,):
                if good(found):
                    break
                what = ("each piece of ice as a rigid body" if not split else
                        "each piece of ice as a rigid body, pieces that touch cut apart")
                report(0.97, what)
                for k, start in enumerate(starts):
                    pieces = rigid_motion(*masks, start, lambda f, k=k: report(0.97 + 0.03 * (k + f) / len(starts),
                                                                               what), split, split_prior)
                    if pieces is not None and (found is None or pieces.fit > found.fit):
                        found = pieces
                    if found is not None and found.fit >= GOOD_FIT:
                        break
            if good(found):
                # said, so a user knows the floes' own turns and drifts
                kind = SEVERAL_MOTIONS if len(found.maps) > 1 else LINEAR_MOTION
                v, done, chosen = found.field, f"done, {found.describe()}", found
    report(1.0, done)
    if with_pieces or with_shift:
        return (v, kind) + ((chosen,) if with_pieces else ()) + ((d, rival) if with_shift else ())
    return (v, kind) if with_kind else v


class Start:
    """pair_start's answer: the initial ``flow`` (2, H, W) and its ``kind`` (initial_flow), the pair's
    ``border`` weight (border_weight; 1.0 when not asked), ``log_scaled``: whether a band was viewed on
    a log scale (motion_view), and ``pieces``: the rigid pieces whose per-step fields move the frames
    (rigid_pieces.Pieces.step_fields), or None.  ``shift``: the shift the one motion was built on (x, y px,
    or None), ``reach``: the largest the search looks at (search_reach); ``at_reach``: one motion built on a shift at
    that bound, where the true motion may be larger, the two ends may share little content and the frames
    may be poor (bench/cases.py LARGE_MOTION; the held-out 250 m hour: the shift (96, 102) px on the bound,
    the truth about (30, -260)).  ``rival``: from "multi-shifts" on, another of the search's minima along which
    the two ends carried half-way agree within SHIFT_MARGIN of the shift taken, either way (x, y px, or None;
    only where the start is that one motion): the pair cannot tell the two motions apart, as in wide bands of
    rain an hour apart whose echoes match again further along the band."""

    def __init__(self, flow, kind, border, log_scaled, pieces=None, shift=None, reach=None, rival=None):
        self.flow, self.kind, self.border, self.log_scaled = flow, kind, border, log_scaled
        self.pieces, self.shift, self.reach = pieces, shift, reach
        # another shift the pair cannot tell from the one taken, where the start is that one motion
        self.rival = rival if kind == ONE_MOTION and shift is not None else None
        # a reach under LARGE_SHIFT (images under ~40 px) leaves the motion to plain DIS, not to the shift
        self.at_reach = bool(kind == ONE_MOTION and shift is not None and reach is not None
                             and reach >= LARGE_SHIFT and float(np.abs(shift).max()) >= reach)


def pair_start(x0, x1, valid=None, smooth=2.0, prior="auto", log_view=False, border=False, progress=None):
    """The accurate mode's start for a pair, the view computed once for the motion and the border weight:
    with ``log_view`` (the accurate mode's default; False: files from before) both are measured on
    motion_view's scale, else on the values as given."""
    offsets = log_offsets(x0, x1, valid) if log_view else []
    a, b = motion_view(x0, x1, valid, offsets) if log_view else (x0, x1)
    v, kind, pieces, shift, rival = initial_flow(a, b, valid, smooth, prior, progress, with_pieces=True,
                                                 with_shift=True)
    if border and pieces is not None and prior in SPLIT:
        # the rigid pieces were taken because they explain the pair (RIGID_FIT, RIGID_SHARE), which the
        # half-way misfit of border_weight cannot see (the cracks dominate it): the end that saw what enters
        # or leaves the image is trusted there (bench/cases.py's floe at the edge: its ice 1.10 -> 1.06 x the
        # truth's at the worst lead, grey edge streaks gone where one end saw the piece; the far-drifting
        # piece IoU 0.950 -> 0.961; the other breakups within 0.002)
        weight = 0.0
    else:
        weight = border_weight(a, b, v, valid) if border else 1.0
    return Start(v, kind, weight, any(o is not None for o in offsets), pieces, shift, search_reach(v.shape), rival)


def _estimate(a, b, af, bf, valid, smooth, prior, report, alpha=None):
    """The one motion, the shift it was built on (the search's best match, or from "multi-shifts" on another of
    its minima; None when not searched), what a user is told where another was taken (else None), and the
    rival: a shift set aside within SHIFT_MARGIN of the one taken, either way (from "multi-shifts" on; else
    None)."""
    plain = None
    if prior in ("auto", "none", None) + MULTI:
        report(0.0, "optical flow both ways")
        plain = _dis_pair(a, b, valid, smooth, alpha)
        if prior not in ("auto",) + MULTI:
            return np.ascontiguousarray(plain, dtype=np.float32), None, None, None
    # only "multi-shifts" onwards weighs the search's other minima; the priors before it keep to its best match
    found = global_shift(af, bf, valid, progress=lambda f: report(0.3 + 0.5 * f, "search for the overall shift"),
                         with_others=prior in SHIFTS)
    d, others = found if prior in SHIFTS else (found, [])
    if plain is not None and float(np.hypot(d[0], d[1])) < LARGE_SHIFT:
        v = plain
    else:
        report(0.8, "optical flow after the shift")
        v = _after_shift(af, bf, d, smooth, alpha)
    said, rival = None, None
    if prior in SHIFTS and others:
        # the best match an hour apart can pair unrelated echoes (or empty areas at the search's edge): the
        # next local minima of the search weighed by the half-way agreement, one taken only where clearly better
        report(0.85, "other shifts the search found")
        best, apart = d, _midpoint_distance(af, bf, v, valid)
        weighed = [(d, apart, v)]
        for o in others:
            vo = _after_shift(af, bf, o, smooth, alpha)
            apart_o = _midpoint_distance(af, bf, vo, valid)
            weighed.append((o, apart_o, vo))
            if apart_o < SHIFT_MARGIN * apart:
                v, d, apart = vo, o, apart_o
                said = (f"after the shift ({d[0]:.0f}, {d[1]:.0f}) px, the search's next best match: the two images "
                        f"agree better half-way along it than after its best, ({best[0]:.0f}, {best[1]:.0f}) px")
        # a shift set aside that the half-way agreement cannot tell from the one taken (within the margin either
        # way): the pair is ambiguous, said to the user (Start.rival)
        close = min(((a_o, k) for k, (o, a_o, _) in enumerate(weighed) if o is not d and a_o * SHIFT_MARGIN < apart),
                    default=None)
        if close is not None:
            o, _, vo = weighed[close[1]]
            rival = o
            inside = max(float(np.abs(d).max()), float(np.abs(o).max())) < search_reach(np.shape(af))
            if prior in PATTERNS and inside and all(np.less(_pattern_misfits(af, bf, vo, valid),
                                                                    _pattern_misfits(af, bf, v, valid))):
                # the tie broken by what the intensity-based distance is blind to: the rival's half-way images
                # agree better both in pattern (correlation) and in edges (gradients).  Not where either shift
                # lies at the search's edge: the motion may lie beyond what was searched, which the log says
                # (Start.at_reach), and no minimum found is to be trusted more
                v, d, rival = vo, o, d
                said = (f"after the shift ({d[0]:.0f}, {d[1]:.0f}) px: the two images agree about as well half-way "
                        f"along it as after ({rival[0]:.0f}, {rival[1]:.0f}) px, and better in pattern and edges")
    return np.ascontiguousarray(v, dtype=np.float32), d, said, rival


def _after_shift(af, bf, d, smooth, alpha=None):
    """The one motion found after a shift d: the two ends shifted half-way towards each other, DIS between
    them both ways, plus d."""
    return _dis_pair(_shift_image(af, d / 2), _shift_image(bf, -d / 2), None, smooth, alpha) + d[:, None, None]
