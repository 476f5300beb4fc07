"""Patch sampling on the fly from the whole pair held on the device.

Candidate corners lie on a lattice with the configured stride (rows, cols), the last row/column of the
lattice snapped to the image edge; each batch draws corners at random (seeded numpy generator) and
slices the patches out of the device tensors.  No array of patches is ever materialised: only the
lattice size is kept, and a summed-area table of the valid mask lets patches with too little valid
data be re-drawn.
"""
import numpy as np


def normalise(x, valid, lo, hi):
    """Global scaling of (C, H, W) to [-1, 1] per band; invalid pixels filled with -1 (the low end)."""
    lo = np.asarray(lo, dtype=np.float32).reshape(-1, 1, 1)
    hi = np.asarray(hi, dtype=np.float32).reshape(-1, 1, 1)
    out = 2.0 * (x.astype(np.float32) - lo) / (hi - lo) - 1.0
    out = np.where(valid[None] & np.isfinite(out), out, -1.0)
    return out.astype(np.float32)


def denormalise(xn, lo, hi):
    lo = np.asarray(lo, dtype=np.float32).reshape(-1, 1, 1)
    hi = np.asarray(hi, dtype=np.float32).reshape(-1, 1, 1)
    return ((xn + 1.0) * 0.5 * (hi - lo) + lo).astype(np.float32)


def image_coords(height, width, r0=0, r1=None, q0=0, q1=None):
    """Paper mode's position channels (``coord_input``): (2, r1 − r0, q1 − q0) float32, the column (x) and
    row (y) of each pixel of the window [r0, r1) × [q0, q1) in the *whole* image of ``height`` × ``width``,
    pixel centres scaled to (−1, 1) over the whole image.  The same pixel has the same coordinates in every
    training patch and every inference tile that contains it, so a field that depends on where it is (a
    rotation: v = ω × (x − centre)) means the same on a patch, a tile and the whole image."""
    r1 = height if r1 is None else r1
    q1 = width if q1 is None else q1
    x = (2.0 * np.arange(q0, q1, dtype=np.float64) + 1.0) / width - 1.0
    y = (2.0 * np.arange(r0, r1, dtype=np.float64) + 1.0) / height - 1.0
    return np.stack([np.broadcast_to(x[None, :], (r1 - r0, q1 - q0)),
                     np.broadcast_to(y[:, None], (r1 - r0, q1 - q0))]).astype(np.float32)


def patch_scale(x0, x1, valid):
    """Per-patch scaling (paper): the pair's valid range in the patch → [-1, 1] (torch, batched).

    x0, x1: (B, C, P, P); valid (B, 1, P, P) float. Returns scaled x0, x1 and (offset, scale)."""
    import torch

    big = torch.finfo(torch.float32).max
    both = torch.cat([x0, x1], dim=1)
    m = torch.cat([valid] * both.shape[1], dim=1) > 0.5
    lo = torch.where(m, both, torch.full_like(both, big)).amin(dim=(1, 2, 3), keepdim=True)
    hi = torch.where(m, both, torch.full_like(both, -big)).amax(dim=(1, 2, 3), keepdim=True)
    empty = lo > hi
    lo = torch.where(empty, torch.full_like(lo, -1.0), lo)
    hi = torch.where(empty, torch.full_like(hi, 1.0), hi)
    span = torch.clamp(hi - lo, min=1e-3)
    f = lambda x: 2.0 * (x - lo) / span - 1.0
    return f(x0), f(x1), (lo, span)


def patch_unscale(x, lo, span):
    return (x + 1.0) * 0.5 * span + lo


class PatchSampler:
    def __init__(self, height, width, patch, stride, valid=None, min_valid_fraction=0.5, seed=0):
        self.h, self.w, self.p = height, width, patch
        sr, sc = stride
        self.nr = (height - patch) // sr + 1 + (1 if (height - patch) % sr else 0)
        self.nc = (width - patch) // sc + 1 + (1 if (width - patch) % sc else 0)
        self.sr, self.sc = sr, sc
        self.rng = np.random.default_rng(seed)
        self.min_valid = min_valid_fraction
        self.sat = None
        if valid is not None and not valid.all():
            sat = np.zeros((height + 1, width + 1), dtype=np.int64)
            sat[1:, 1:] = np.cumsum(np.cumsum(valid.astype(np.int64), 0), 1)
            self.sat = sat

    def _corner(self, i, j):
        return min(i * self.sr, self.h - self.p), min(j * self.sc, self.w - self.p)

    def _valid_fraction(self, r, c):
        if self.sat is None:
            return 1.0
        p, s = self.p, self.sat
        return (s[r + p, c + p] - s[r, c + p] - s[r + p, c] + s[r, c]) / float(p * p)

    def corners(self, batch):
        out = []
        for _ in range(batch):
            best, best_f = None, -1.0
            for _try in range(20):
                r, c = self._corner(int(self.rng.integers(self.nr)), int(self.rng.integers(self.nc)))
                f = self._valid_fraction(r, c)
                if f > best_f:
                    best, best_f = (r, c), f
                if f >= self.min_valid:
                    break
            out.append(best)
        return out


def cut(tensor, corners, p):
    """tensor (..., H, W) on device → (B, ..., p, p) stacked slices."""
    import torch

    return torch.stack([tensor[..., r:r + p, c:c + p] for r, c in corners])
