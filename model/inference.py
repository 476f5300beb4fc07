"""Tiled, overlap-blended inference: intermediate frames and advection fields.

The pair is normalised with the model's stored per-band range; in accurate mode the initial flow is
recomputed from (x0, x1) on the whole image (the same function training used), then the image is cut into
tiles of ``tile`` pixels overlapping by ``overlap``; each tile's output is weighted by a linear ramp over
the overlap (weight 1 at the image border) and the weighted sum is divided by the summed weights, so
there are no seams and memory stays bounded by the tile size.  Each tile is run with a ``halo`` of extra
context on every side (default: the largest initial displacement + 8 px in accurate mode, ``overlap`` in
paper mode), so that trajectories that start outside the tile see real data; only the core is kept.
"""
import numpy as np

from .patches import normalise, denormalise
from .device import resolve_device, autocast, oom_message
from .training import check_pair, TrainingCanceled


def _starts(n, tile, overlap):
    if n <= tile:
        return [0]
    step = max(tile - overlap, 1)
    s = list(range(0, n - tile, step))
    s.append(n - tile)
    return sorted(set(s))


def _ramp(length, lead, trail, overlap):
    w = np.ones(length, dtype=np.float32)
    if overlap > 0:
        r = (np.arange(length, dtype=np.float32) + 0.5) / overlap
        if lead:
            w = np.minimum(w, np.clip(r, 0, 1))
        if trail:
            w = np.minimum(w, np.clip(r[::-1], 0, 1))
    return np.maximum(w, 1e-4)


def _run_tiles(model, x0, x1, valid, device, tile, overlap, what, progress=None, is_canceled=None,
               halo=None):
    import torch
    from .patches import patch_scale, patch_unscale
    from .fieldinit import initial_flow

    cfg = model.cfg
    x0, x1, valid = check_pair(x0, x1, valid)
    c, h, w = x0.shape
    if c != model.bands:
        raise ValueError(f"the model was trained on {model.bands} band(s), the images have {c}")
    lo = model.norm_lo.cpu().numpy()
    hi = model.norm_hi.cpu().numpy()
    x0n = normalise(x0, valid, lo, hi)
    x1n = normalise(x1, valid, lo, hi)
    flow = initial_flow(x0, x1, valid, cfg.flow_smooth) if (cfg.mode != "paper" and cfg.flow_init) else None
    n = cfg.steps
    tile = int(max(tile, 16))
    overlap = int(min(max(overlap, 0), tile // 2))
    th, tw = min(tile, h), min(tile, w)
    rs, cs = _starts(h, th, overlap), _starts(w, tw, overlap)
    if halo is None:
        # context around each tile: trajectories of up to the largest initial displacement start
        # outside the tile, so the network sees that much more on every side (then the core is kept)
        halo = int(np.ceil(np.abs(flow).max())) + 8 if flow is not None else overlap
    halo = max(int(halo), 0)
    out_ch = c if what == "frames" else 2
    acc = np.zeros((n + 1 if what == "frames" else n, out_ch, h, w), dtype=np.float32)
    wsum = np.zeros((h, w), dtype=np.float32)
    dev = resolve_device(device)
    model.eval()
    model.to(dev)
    total = len(rs) * len(cs)
    done = 0
    try:
        with torch.no_grad():
            for r in rs:
                for q in cs:
                    if is_canceled is not None and is_canceled():
                        raise TrainingCanceled("inference canceled")
                    r0, r1 = max(r - halo, 0), min(r + th + halo, h)
                    q0, q1 = max(q - halo, 0), min(q + tw + halo, w)
                    sl = (slice(None), slice(r0, r1), slice(q0, q1))
                    a = torch.from_numpy(np.ascontiguousarray(x0n[sl]))[None].to(dev)
                    b = torch.from_numpy(np.ascontiguousarray(x1n[sl]))[None].to(dev)
                    fl = torch.from_numpy(np.ascontiguousarray(flow[sl]))[None].to(dev) if flow is not None else None
                    scale = None
                    if cfg.patch_norm:
                        m = torch.from_numpy(valid[r0:r1, q0:q1].astype(np.float32))[None, None].to(dev)
                        a, b, scale = patch_scale(a, b, m)
                    with autocast(dev):
                        if what == "frames":
                            frames, _ = model.frames(a, b, fl)
                            res = torch.cat(frames, 0).float()          # (N+1, C, th, tw)
                            if scale is not None:
                                res = patch_unscale(res, scale[0][:1], scale[1][:1])
                            res = res.clamp(-1.0, 1.0)
                        else:
                            disp, _ = model.fields(a, b, fl)
                            res = disp[0].float()                       # (N, 2, th, tw)
                    res = res.cpu().numpy()[:, :, r - r0:r - r0 + th, q - q0:q - q0 + tw]
                    wr = _ramp(th, r > 0, r + th < h, overlap)
                    wc = _ramp(tw, q > 0, q + tw < w, overlap)
                    wt = wr[:, None] * wc[None, :]
                    acc[:, :, r:r + th, q:q + tw] += res * wt
                    wsum[r:r + th, q:q + tw] += wt
                    done += 1
                    if progress is not None:
                        progress(done, total)
    except Exception as e:
        if dev.type == "cuda" and isinstance(e, torch.cuda.OutOfMemoryError):
            raise RuntimeError(oom_message("inference")) from e
        raise
    finally:
        model.to("cpu")
    acc /= wsum
    return acc, x0, x1, valid, lo, hi


def generate_frames(model, x0, x1, valid=None, device="auto", tile=512, overlap=64, progress=None,
                    is_canceled=None, halo=None):
    """Frames 0..N as float32 (N+1, C, H, W): frame 0 is x0 and frame N is x1 exactly, intermediate
    frames clipped to the training data range, NaN where a pixel is invalid in either image."""
    acc, x0, x1, valid, lo, hi = _run_tiles(model, x0, x1, valid, device, tile, overlap, "frames",
                                            progress, is_canceled, halo)
    out = np.empty_like(acc)
    for j in range(acc.shape[0]):
        out[j] = denormalise(acc[j], lo, hi)
    out[:, :, ~valid] = np.nan
    out[0] = x0
    out[-1] = x1
    return out


def advection_fields(model, x0, x1, valid=None, device="auto", tile=512, overlap=64, progress=None,
                     is_canceled=None, halo=None):
    """Per-step displacement of the content, float32 (N, 2, H, W) in pixels: channel 0 = +x (columns,
    right), channel 1 = +y (rows, down); the content at x at step j+1 came from x − d_j(x)."""
    acc, *_ = _run_tiles(model, x0, x1, valid, device, tile, overlap, "fields", progress, is_canceled, halo)
    return acc
