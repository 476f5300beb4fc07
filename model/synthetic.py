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


# Known-truth sequences for the paper mode's tests (tests/test_paper_mode.py): each returns the exact
# frames (steps+1, 1, H, W) and the total displacement over the interval (2, H, W) in pixels (x, y).

def inflow_translation(size=64, dx=6.0, dy=-4.0, steps=4, seed=0):
    """A window moving over a larger rain field: content leaves through one side and new content enters
    through the other (inflow/outflow), unlike translation_pair's periodic shift."""
    from scipy.ndimage import map_coordinates

    m = int(np.ceil(max(abs(dx), abs(dy)))) + 8
    big = rain_field(size + 2 * m, size + 2 * m, seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    frames = [map_coordinates(big, [y + m - dy * j / steps, x + m - dx * j / steps], order=3)
              for j in range(steps + 1)]
    field = np.stack([np.full((size, size), dx), np.full((size, size), dy)])
    return np.stack(frames)[:, None].astype(np.float32), field.astype(np.float32)


def rotation_sequence(size=64, degrees=20.0, steps=4, seed=1):
    """A rain field turning counter-clockwise on screen about the image centre (corners: inflow)."""
    base = rain_field(size, size, seed)
    frames = np.stack([rotate_image(base, degrees * j / steps) for j in range(steps + 1)])
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    c, om = (size - 1) / 2, np.deg2rad(degrees)
    field = np.stack([om * (y - c), -om * (x - c)])          # small-angle tangential displacement
    return frames[:, None].astype(np.float32), field.astype(np.float32)


def appearing_sequence(size=64, dx=5.0, dy=3.0, steps=4, seed=2, peak=45.0):
    """inflow_translation plus a new cell that grows in place (linearly in time to ``peak`` dBZ)."""
    frames, field = inflow_translation(size, dx, dy, steps, seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    cell = peak * np.exp(-((x - 0.7 * size) ** 2 + (y - 0.3 * size) ** 2) / (2 * (size / 20) ** 2))
    for j in range(steps + 1):
        frames[j, 0] = np.maximum(frames[j, 0], cell * j / steps)
    return frames, field
