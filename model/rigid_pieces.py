"""A motion field for ice-floe masks: each floe a rigid body that drifts and turns on its own.

A floe that breaks up turns and parts: its pieces keep their shape.  The optimal-transport start
(model/transport_motion.py) matches mass, not shapes: its maps are curl-free (an optimal map for a squared
distance is the gradient of a convex function), so it cannot turn a piece, and it blurs the motion across
the cracks.  On a mask (two values: ice and water, as floe-segmentation products give) the pieces are
visible as connected regions of the end where the floe has broken further, so each can be fitted as a rigid
body: its turn and shift that carry it back into the other end, fitted jointly (the union of all pieces
carried back should be the other end's ice), from the start's motion.  Pieces that still touch (a crack
open at one end only, pieces that drifted against each other) form one region that no rigid map fits;
where the regions fit badly, the fit is tried again with each region cut at its necks (``split``).

Each piece's rigid map becomes the stationary field whose trajectories reproduce it (as the linear candidate
of model/fieldinit.py: v(x) = L (x, 1) with exp(L) the map, so its steps follow the arc), held where the
piece is at mid-interval; between the pieces their fields weighted by inverse distance.  That one field is
the start's field (the network's input, the motion a file without per-step fields plays).

The frames move by per-step fields (``Pieces.step_fields``): the pieces move as free bodies, turning at a
constant rate about the whole floe's centre (where the pieces' mass was at the start) while drifting at a
constant velocity, each its own way; each step's fields are each piece's displacement over that step, one
for each rollout (forward, held where the piece arrives; backward, where it starts), each exact.  One stationary field cannot be right for pieces that
move through each other's places over the interval, and a turn about a fixed point far away (what a
stationary field makes of a drift with a turn) swings a drifting piece out of line.
"""
import numpy as np

MAX_SIDE = 256      # the fit runs on masks brought to at most this many pixels a side
MIN_SHARE = 0.005   # pieces smaller than this share of the ice are left out of the fit (speckle)
MAX_PIECES = 24     # more pieces than this: not a breakup this fit is for (a field of brash ice)
GOOD_FIT = 0.98     # a fit this good ends the search (the starts left would change the frames little)
ROUNDS = 3          # of the search on each piece: turns about the start, plain, the neighbours' turns
# the per-step fields between the pieces weighted by inverse distance to this power (bench/cases.py's seven
# breakups, 2026-11-27: cubes 0.969 IoU on the split, squares 0.977; the others within 0.005)
STEP_POWER = 2
# ``split``: a region is cut at its necks, the watershed of its distance to the water from the maxima that stand
# at least this high (px at 128 px a side) above the saddle between them, so a neck narrower than the pieces
# on both sides by this much cuts (random breakups turning 20-60° whose pieces touch: 1 px, fit 0.61-0.89 ->
# 0.93-0.96; 2 px left a piece joined in one of five, 3.5 px in two)
NECK = 1.0


def mask_pair(a, b, valid=None):
    """The pair as two boolean masks (True = the higher of the pair's two values) when it is a mask: one
    band, exactly two distinct values over the valid pixels (both present); else None."""
    if a.shape[0] != 1:
        return None
    m = np.ones(a.shape[-2:], bool) if valid is None else valid
    if not m.any():
        return None
    # the pair's lowest and highest values, and nothing else (no sort: the start asks this of every pair)
    lo = min(float(a[0][m].min()), float(b[0][m].min()))
    hi = max(float(a[0][m].max()), float(b[0][m].max()))
    if hi == lo or not all(((x[0] == lo) | (x[0] == hi))[m].all() for x in (a, b)):
        return None
    return (a[0] == hi) & m, (b[0] == hi) & m


def _pieces(mask, split=False):
    """Connected regions (8-connected) of ``mask`` large enough to fit, as a list of boolean arrays; with
    ``split`` each cut at its necks (_necks)."""
    from scipy import ndimage
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if n == 0:
        return []
    sizes = np.bincount(labels.ravel())[1:]
    smallest = max(8, MIN_SHARE * sizes.sum())
    regions = [labels == k + 1 for k in range(n) if sizes[k] >= smallest]
    if not split:
        return regions
    unit = max(mask.shape) / 128.0
    return [piece for region in regions for piece in _necks(region, NECK * unit, smallest)]


def _necks(region, height, smallest):
    """``region`` cut at its necks: the watershed of its distance to the water, from the maxima of that
    distance that stand at least ``height`` px above the saddle to a higher one; a basin smaller than
    ``smallest`` px goes to its neighbours (no ice is left out).  Uncut without scikit-image (an install with
    onnxruntime alone): the cut is a refinement."""
    from scipy import ndimage
    try:
        from skimage.morphology import h_maxima
        from skimage.segmentation import watershed
    except ImportError:
        return [region]
    eight = np.ones((3, 3), bool)
    d = ndimage.distance_transform_edt(region)
    markers, n = ndimage.label(h_maxima(d, height).astype(bool) & region, structure=eight)
    while n > 1:
        basins = watershed(-d, markers, mask=region)
        # the watershed floods 4-connected; a part of the (8-connected) region joined at a corner only goes
        # to the nearest basin (flooding 8-connected instead moved the cuts: the field of six 0.933 -> 0.912)
        lost = region & (basins == 0)
        if lost.any():
            near = ndimage.distance_transform_edt(basins == 0, return_indices=True)[1]
            basins[lost] = basins[near[0][lost], near[1][lost]]
        big = np.flatnonzero(np.bincount(basins.ravel(), minlength=n + 1)[1:] >= smallest) + 1
        if len(big) == n:
            return [basins == k for k in range(1, n + 1)]
        # again without the markers whose basins were too small (their ice goes to the neighbours)
        markers, n = ndimage.label(np.isin(markers, big), structure=eight)
    return [region]


def _centre(mask):
    """The centre (x, y) of a mask's True pixels."""
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()])


def _rigid(theta, shift, centre):
    """(2, 3) map: a turn by theta (radians, as cv2's y-down image axes: positive turns x towards y) about
    ``centre`` followed by ``shift``."""
    c, s = np.cos(theta), np.sin(theta)
    r = np.array([[c, -s], [s, c]])
    return np.concatenate([r, (centre - r @ centre + shift)[:, None]], axis=1)


def _carry(mask, m):
    import cv2
    h, w = mask.shape
    return cv2.warpAffine(mask.astype(np.float32), np.asarray(m, np.float32), (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)


def _iou(u, target):
    return float(np.minimum(u, target).sum() / max(np.maximum(u, target).sum(), 1e-9))


def _start(piece, flow, towards):
    """A piece's shift towards the other end from the start's field (Eulerian at mid-interval): the mean of
    the field where the piece is half-way, iterated."""
    ys, xs = np.nonzero(piece)
    h, w = piece.shape
    d = np.zeros(2)
    for _ in range(3):
        px = np.clip(np.round(xs + towards * d[0] / 2).astype(int), 0, w - 1)
        py = np.clip(np.round(ys + towards * d[1] / 2).astype(int), 0, h - 1)
        d = np.array([flow[0, py, px].mean(), flow[1, py, px].mean()])
    return towards * d


def _windowed_score(piece, centre, others, target):
    """score(q): the soft IoU of ``others`` with the piece carried by (theta, shift) ``q`` added, and
    ``target``, computed only in the window the carried piece covers (the sums over the rest are those of
    ``others`` alone): the search evaluates it thousands of times, and a piece is a small part of the image."""
    import cv2
    h, w = target.shape
    ys, xs = np.nonzero(piece)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    crop = piece[y0:y1, x0:x1].astype(np.float32)
    corners = np.array([[x0 - 1, y0 - 1], [x1, y0 - 1], [x0 - 1, y1], [x1, y1]], np.float64)
    inter0, union0 = float(np.minimum(others, target).sum()), float(np.maximum(others, target).sum())

    def score(q):
        m = _rigid(q[0], q[1:], centre)
        moved = corners @ m[:, :2].T + m[:, 2]
        wx0, wy0 = (max(0, int(np.floor(v)) - 1) for v in moved.min(axis=0))
        wx1, wy1 = min(w, int(np.ceil(moved[:, 0].max())) + 2), min(h, int(np.ceil(moved[:, 1].max())) + 2)
        if wx1 <= wx0 or wy1 <= wy0:
            return inter0 / max(union0, 1e-9)
        # crop-local -> window-local: x_win = A (x_crop + (x0, y0)) + t - (wx0, wy0)
        local = np.concatenate([m[:, :2], (m[:, :2] @ [x0, y0] + m[:, 2] - [wx0, wy0])[:, None]], axis=1)
        mine = cv2.warpAffine(crop, local.astype(np.float32), (wx1 - wx0, wy1 - wy0), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
        o, t = others[wy0:wy1, wx0:wx1], target[wy0:wy1, wx0:wx1]
        u = np.maximum(o, mine)
        inter = inter0 - np.minimum(o, t).sum() + np.minimum(u, t).sum()
        union = union0 - np.maximum(o, t).sum() + np.maximum(u, t).sum()
        return float(inter / max(union, 1e-9))
    return score


def _pattern_search(score, q, steps):
    """Compass search of score over (theta, x shift, y shift) from q, each step size (px; the turn's in
    degrees, at most 2°) until no move improves; returns (q, score)."""
    best = score(q)
    for step in steps:
        moved = True
        while moved:
            moved = False
            for axis, size in ((0, np.radians(min(step, 2.0))), (1, step), (2, step)):
                for sign in (1, -1):
                    cand = q.copy()
                    cand[axis] += sign * size
                    s = score(cand)
                    if s > best + 1e-6:
                        q, best, moved = cand, s, True
    return q, best


def _fit(pieces, target, starts, progress=None):
    """Each piece's (theta, shift) carrying it into ``target``, jointly: the soft IoU of all pieces carried and
    ``target``.  A pattern search on each piece in turn, the others held, from three starts, the best kept:
    no turn, one turn for all (every 10° within ±90°, the start's shifts) and the whole turned about its
    centre (every 10°); in ROUNDS rounds: the first also from turns within ±30° of the start's, the last
    also from its neighbours' turns and the others' median, placed where the target is left bare."""
    centres = [_centre(p) for p in pieces]
    tgt = target.astype(np.float32)
    unit = max(target.shape) / 128.0
    steps = [s * unit for s in (4, 2, 1, 0.5, 0.25)]

    def carry(k, q):
        return _carry(pieces[k], _rigid(q[0], q[1:], centres[k]))

    def refine(params):
        carried = [carry(k, q) for k, q in enumerate(params)]

        for rnd in range(ROUNDS):
            for k in range(len(pieces)):
                if progress is not None:   # a cancel check too (tens of pieces take seconds)
                    progress((len(results) + (rnd * len(pieces) + k) / (ROUNDS * len(pieces))) / 8)
                others = (np.maximum.reduce(carried[:k] + carried[k + 1:]) if len(pieces) > 1
                          else np.zeros_like(tgt))
                score = _windowed_score(pieces[k], centres[k], others, tgt)

                q = params[k]
                best = score(q)
                if rnd == 0:   # turns about the start's
                    tries = [np.array([q[0] + th, q[1], q[2]]) for th in np.radians(np.arange(-30, 31, 10))]
                elif rnd == ROUNDS - 1 and len(pieces) > 1:
                    # the two nearest pieces' turns and all others' median, placed where the target is left bare:
                    # a piece that settled in another's place at a wrong turn (pieces of one floe look alike)
                    # can move to its own
                    bare = np.clip(tgt - others, 0, None)
                    gap = ([np.array([(bare.sum(0) * np.arange(bare.shape[1])).sum(),
                                      (bare.sum(1) * np.arange(bare.shape[0])).sum()]) / bare.sum() - centres[k]]
                           if bare.sum() > 0 else [])
                    rest = [j for j in range(len(pieces)) if j != k]
                    near = sorted(rest, key=lambda j: np.hypot(*(centres[j] - centres[k])))[:2]
                    turns = {round(float(params[j][0]), 3) for j in near}
                    turns.add(round(float(np.median([params[j][0] for j in rest])), 3))
                    tries = [np.array([turn, *sh]) for turn in sorted(turns) for sh in [q[1:]] + gap]
                else:
                    tries = [q]
                for cand in tries:
                    cand, sc = _pattern_search(score, cand, steps)
                    if sc > best:
                        q, best = cand, sc
                params[k] = q
                carried[k] = carry(k, q)
        return params, _iou(np.maximum.reduce(carried), tgt)

    def common(theta):
        """every piece turned by theta about its own centre, shifted as the start says"""
        return [np.array([theta, s[0], s[1]]) for s in starts]

    areas = np.array([p.sum() for p in pieces], np.float64)
    at = (np.stack(centres) * areas[:, None]).sum(axis=0) / areas.sum()
    to = _centre(target)

    spread = np.stack(starts) - (np.stack(starts) * areas[:, None]).sum(axis=0) / areas.sum()

    def whole(theta, apart=False):
        """all pieces turned by theta together, about their joint centre, which goes to the target's (with
        ``apart``, each also drifting from the others as the start's shifts say)"""
        r = _rigid(theta, np.zeros(2), np.zeros(2))[:, :2]
        return [np.concatenate([[theta], r @ (c - at) + to - c + (d if apart else 0.0)])
                for c, d in zip(centres, spread)]

    def union_score(params):
        return _iou(np.maximum.reduce([carry(k, q) for k, q in enumerate(params)]), tgt)

    # starts for the search: no turn; the best common turn within ±90° with the start's shifts; the best turn
    # of the whole (a floe turning as it parts: its pieces' shifts come from the turn, which the start's
    # motion, a mass match, gets wrong beyond ~60°)
    best_common = max((common(th) for th in np.radians(np.arange(-90, 91, 10))), key=union_score)
    # the pieces of one floe look alike, so turns a third or a half turn apart can score alike: the whole's
    # three best turns at least 30° apart, each searched (a floe in three pieces turned 60° at 160-256 px
    # settled near 180° from the best alone); fewer for many pieces (a field of floes), whose search is longer
    turns = np.radians(np.arange(-180, 180, 10))
    wholes = []
    for apart in (False, True):
        ranked = sorted(turns, key=lambda th: -union_score(whole(th, apart)))
        chosen = []
        for th in ranked:
            if all(abs((th - c + np.pi) % (2 * np.pi) - np.pi) >= np.radians(30) for c in chosen):
                chosen.append(th)
            if len(chosen) == (3 if len(pieces) <= 6 else 1):
                break
        wholes += [whole(th, apart) for th in chosen]
    results = []
    for params in [common(0.0), best_common] + wholes:
        results.append(refine(params))

        if results[-1][1] >= GOOD_FIT:   # the rest cannot do much better: spare their seconds
            break

    params, fit = max(results, key=lambda r: r[1])
    return [_rigid(q[0], q[1:], c) for q, c in zip(params, centres)], fit


def _seen_fit(pieces, maps, target, fit):
    """The fit counted only where the broken end could show what the pieces bring: the other end's ice that
    the pieces leave bare where the maps bring points from outside the broken end's image (each point
    outside going with its nearest piece) is left out, since it may be a part of a piece that the image's
    edge cuts off or one that has left the image (random breakups near the edge: fits of 0.76-0.86 whose
    pieces were right).  ``fit`` itself where the maps bring nothing from outside, or where that would leave
    out most of the other end's ice (too little left to judge)."""
    import cv2
    from scipy import ndimage
    h, w = target.shape
    pad = max(h, w) // 2
    labels = np.zeros((h + 2 * pad, w + 2 * pad), np.int32)
    for k, p in enumerate(pieces):
        labels[pad:pad + h, pad:pad + w][p] = k + 1
    near = ndimage.distance_transform_edt(labels == 0, return_indices=True)[1]
    nearest = labels[near[0], near[1]]
    nearest[pad:pad + h, pad:pad + w] = 0                    # inside the image: seen
    from_canvas = np.array([[1.0, 0.0, -pad], [0.0, 1.0, -pad], [0.0, 0.0, 1.0]])
    unseen = np.zeros((h, w), bool)
    for k, m in enumerate(maps):
        outside = (nearest == k + 1).astype(np.float32)
        to = (np.vstack([m, [0.0, 0.0, 1.0]]) @ from_canvas)[:2]
        unseen |= cv2.warpAffine(outside, to.astype(np.float32), (w, h), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=0.0) > 0
    ice = target.astype(bool)
    if not unseen.any() or (ice & unseen).sum() > 0.5 * ice.sum():
        return fit
    carried = np.maximum.reduce([_carry(p, m) for p, m in zip(pieces, maps)])
    # only the ice there that the pieces leave bare: ice they carry onto water counts as a misfit still
    seen = ~(unseen & ice & (carried < 0.5))
    return _iou(carried[seen], target.astype(np.float32)[seen])


class Pieces:
    """rigid_motion's answer: the ``field`` (2, H, W), each piece's map from X0 to X1 (``maps``, (2, 3)
    pixels), its ``turns`` (degrees, counter-clockwise on screen) and ``drifts`` (its centre's displacement,
    (dx, dy) px), and the ``fit`` (IoU of the pieces carried back into the other end)."""

    def __init__(self, field, maps, centres, fit, paths=None):
        self.field, self.maps, self.fit = field, maps, fit
        self.turns = [-float(np.degrees(np.arctan2(m[1, 0], m[0, 0]))) for m in maps]
        self.drifts = [m[:, :2] @ c + m[:, 2] - c for m, c in zip(maps, centres)]
        self._paths = paths

    def step_fields(self, n):
        """The displacement over each of ``n`` equal steps for each rollout, (n, 4, h, w) float32 pixels of
        the fit's grid (MAX_SIDE at most: a caller brings it to its own grid, as inference.StepFlow does):
        channels 0-1 the forward rollout's (the content at x at the step's end came from x − d(x)), 2-3 the
        backward rollout's (the content at x at the step's start goes to x + d(x)).  Piece k, whose map is a
        turn by θ_k about the whole's centre C and a drift e_k, is at time t at R(θ_k t)(x − C) + C + t e_k;
        with B the step's map from where a piece arrives to where it began, its forward field is I − B, held
        where the piece arrives, and its backward field B⁻¹ − I, held where it starts: each exact for its
        rollout (no one field is exact both ways for a turn, and a field held mid-step gave a piece's leading
        edge its neighbour's field where pieces turn together: a 90° turn while the floe splits IoU 0.896 with
        one centred field held mid-step, 0.960 so).  Between the pieces their fields are weighted by inverse
        distance (STEP_POWER) to where each piece is then."""
        from scipy import ndimage

        pieces, gs, forward, centre = self._paths
        h, w = pieces[0].shape
        y, x = np.mgrid[0:h, 0:w].astype(np.float64)

        def at(g, t):
            """X0 → the piece's place at time t (3 × 3)"""
            th = np.arctan2(g[1, 0], g[0, 0]) * t
            r = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
            e = (g @ np.append(centre, 1.0))[:2] - centre
            m = np.eye(3)
            m[:2, :2], m[:2, 2] = r, centre + t * e - r @ centre
            return m

        # each piece's inverse-distance weight at each time t_k = k / n, once (a step's forward field is held
        # where the pieces are at its end, the backward one where they are at its start: the same places)
        starts = [np.eye(3) if forward else np.linalg.inv(g) for g in gs]     # the piece's own end -> X0
        weights = []
        for k in range(n + 1):
            there = {}
            for i, (p, g, s0) in enumerate(zip(pieces, gs, starts)):
                where = _carry(p, (at(g, k / n) @ s0)[:2]) > 0.5
                if where.any():                                  # else out of the image then
                    there[i] = 1.0 / np.maximum(ndimage.distance_transform_edt(~where), 1e-3) ** STEP_POWER
            weights.append(there)
        out = np.zeros((n, 4, h, w), np.float32)
        for j in range(n):
            backs = [at(g, j / n) @ np.linalg.inv(at(g, (j + 1) / n)) for g in gs]   # arrival -> departure
            for rollout, there in ((0, weights[j + 1]), (1, weights[j])):
                if not there:
                    continue
                fields = []
                for i in there:
                    d = np.eye(3) - backs[i] if rollout == 0 else np.linalg.inv(backs[i]) - np.eye(3)
                    fields.append(np.stack([d[0, 0] * x + d[0, 1] * y + d[0, 2], d[1, 0] * x + d[1, 1] * y + d[1, 2]]))
                wts = np.stack(list(there.values()))
                out[j, 2 * rollout:2 * rollout + 2] = (wts[:, None] * np.stack(fields)).sum(axis=0) / wts.sum(axis=0)[None]
        return out

    def describe(self):
        """In words, for the log: how many pieces, their turns and drifts."""
        def turn(deg):
            return f"{abs(deg):.1f}° {'counter-clockwise' if deg >= 0 else 'clockwise'}"
        turns, drifts = sorted(self.turns), sorted(np.hypot(*np.array(self.drifts).T))
        if len(turns) == 1:
            return f"one rigid piece, turning {turn(turns[0])} and drifting {drifts[0]:.1f} px"
        return (f"{len(turns)} rigid pieces, turning from {turn(turns[0])} to {turn(turns[-1])} and drifting "
                f"{drifts[0]:.1f} to {drifts[-1]:.1f} px")


def rigid_motion(m0, m1, flow, progress=None, split=False, seen=False):
    """m0, m1: (H, W) boolean masks; ``flow``: (2, H, W) the start's field (pixels over the interval,
    Eulerian at mid-interval), whence each piece's shift starts; ``split``: each region cut at its necks
    (_pieces); ``seen``: the fit leaves out what the pieces bring from beyond the image's edge (_seen_fit).
    Returns Pieces, or None where the pair has no ice or too many pieces."""
    import cv2
    from scipy import ndimage
    from scipy.linalg import expm

    from .fieldinit import _at_full_resolution, linear_field
    h, w = m0.shape
    if not m0.any() or not m1.any():
        return None
    f = max(1.0, max(h, w) / float(MAX_SIDE))
    sh, sw = max(2, int(round(h / f))), max(2, int(round(w / f)))
    small = [cv2.resize(m.astype(np.float32), (sw, sh), interpolation=cv2.INTER_AREA) > 0.5 for m in (m0, m1)]
    fl = np.stack([cv2.resize(flow[k], (sw, sh), interpolation=cv2.INTER_AREA) for k in (0, 1)]) / f
    cut = [_pieces(m, split) for m in small]
    # the pieces of the end where the ice is broken further, carried into the other end
    forward = len(cut[0]) > len(cut[1])
    pieces = cut[0] if forward else cut[1]
    if not pieces or len(pieces) > MAX_PIECES:
        return None
    target = small[1] if forward else small[0]
    starts = [_start(p, fl, 1.0 if forward else -1.0) for p in pieces]
    maps, fit = _fit(pieces, target, starts, progress)
    if seen:
        fit = _seen_fit(pieces, maps, target, fit)
    # each piece's field where it is at mid-interval, at the fit's resolution; between the pieces their
    # fields weighted by inverse distance cubed: continuous, so that an end's content pulled across an
    # opening crack is stretched there and the blend trusts the other end (the nearest piece's field
    # instead left stripes of the unbroken end's ice in the cracks: bench floe split IoU 0.950 vs 0.969,
    # its ice 1.08 vs 1.03 x the truth's at the worst lead; squares 0.964 / 0.96 x, fourth powers 0.969 / 1.03 x)
    fields, mids, centres, full = [], [], [], []
    o = np.full(2, (f - 1) / 2.0)   # low pixel i sits at f i + o
    for m, p in zip(maps, pieces):
        g = np.vstack([m, [0.0, 0.0, 1.0]])
        g = g if forward else np.linalg.inv(g)              # X0 -> X1
        lf = linear_field(g[:2], sh, sw)
        if lf is None:
            return None
        v, gen = lf
        half = expm(gen / 2) if forward else np.linalg.inv(expm(gen / 2))
        mid = _carry(p, half[:2]) > 0.5
        if not mid.any():                                   # carried out of the image
            continue
        fields.append(v)
        mids.append(mid)
        c = _centre(p)
        centres.append(f * (c if forward else (np.linalg.inv(g) @ np.append(c, 1.0))[:2]) + o)
        full.append(_at_full_resolution(g[:2], f))
    if not fields:
        return None
    # the per-step fields' paths (Pieces.step_fields): each piece's map X0 -> X1 on the fit's grid, turning
    # about where the pieces' mass was at the start (a rigid map carries a piece's centre with it)
    gs = [np.vstack([m, [0.0, 0.0, 1.0]]) for m in maps]
    gs = gs if forward else [np.linalg.inv(g) for g in gs]
    at0 = [_centre(p) if forward else (np.linalg.inv(g) @ np.append(_centre(p), 1.0))[:2] for p, g in zip(pieces, gs)]
    areas = np.array([p.sum() for p in pieces], np.float64)
    centre = (np.stack(at0) * areas[:, None]).sum(axis=0) / areas.sum()
    dist = np.stack([ndimage.distance_transform_edt(~mk) for mk in mids])
    weights = 1.0 / np.maximum(dist, 1e-3) ** 3
    small_field = (weights[:, None] * np.stack(fields)).sum(axis=0) / weights.sum(axis=0)[None]
    field = np.stack([cv2.resize(small_field[k].astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
                      for k in (0, 1)]) * f
    return Pieces(field.astype(np.float32), full, centres, fit, (pieces, gs, forward, centre))
