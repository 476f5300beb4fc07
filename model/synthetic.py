"""Synthetic image pairs with a known motion, for tests and the demo (pure NumPy/SciPy).

Every generator returns float32 arrays (C, H, W) and the exact truth: the frames at intermediate times
and the velocity in pixels per unit time (x right, y down).
"""
import numpy as np


def rain_field(height, width, seed=0, smooth=6.0, cells=None):
    """A radar-like field in dBZ: smooth random echoes in [-10, 55], mostly 'no rain' background."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    noise = gaussian_filter(rng.standard_normal((height, width)), smooth, mode="wrap")
    noise = (noise - noise.mean()) / (noise.std() + 1e-12)
    fine = gaussian_filter(rng.standard_normal((height, width)), smooth / 3, mode="wrap")
    fine = fine / (fine.std() + 1e-12)
    field = np.clip(noise + 0.25 * fine, -0.5, None)
    return (-10.0 + 65.0 * (field + 0.5) / (field.max() + 0.5)).astype(np.float32)


def shift_image(image, dx, dy):
    """Content moved by (dx, dy) pixels (x right, y down); periodic, so nothing leaves the domain."""
    from scipy.ndimage import shift

    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        return shift(image, (dy, dx), order=3, mode="grid-wrap").astype(np.float32)
    return np.stack([shift_image(c, dx, dy) for c in image])


def rotate_image(image, degrees, centre=None):
    """Content rotated counter-clockwise on screen (y down) by ``degrees`` about ``centre`` (x, y)."""
    from scipy.ndimage import map_coordinates

    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3:
        return np.stack([rotate_image(c, degrees, centre) for c in image])
    h, w = image.shape
    cx, cy = centre if centre is not None else ((w - 1) / 2, (h - 1) / 2)
    a = np.deg2rad(degrees)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    # inverse map: where did the content at (x, y) come from
    xs = cx + np.cos(a) * (x - cx) - np.sin(a) * (y - cy)
    ys = cy + np.sin(a) * (x - cx) + np.cos(a) * (y - cy)
    return map_coordinates(image, [ys, xs], order=3, mode="nearest").astype(np.float32)


def translation_pair(height=128, width=128, dx=6.0, dy=-4.0, steps=4, bands=1, seed=0):
    """(x0, x1, truth frames (steps+1, C, H, W), velocity (dx, dy) per unit time from 0 to 1)."""
    base = np.stack([rain_field(height, width, seed + b) for b in range(bands)])
    truth = np.stack([shift_image(base, dx * j / steps, dy * j / steps) for j in range(steps + 1)])
    return truth[0], truth[-1], truth, (dx, dy)
