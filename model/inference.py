"""Tiled, overlap-blended inference: intermediate frames and advection fields.

The pair is normalised with the model's stored per-band range; in accurate mode the initial flow is
recomputed from (x0, x1) on the whole image (the same function training used), then the image is cut into
tiles of ``tile`` pixels overlapping by ``overlap``; each tile's output is weighted by a linear ramp over
the overlap (weight 1 at the image border) and the weighted sum is divided by the summed weights, so
there are no seams and memory stays bounded by the tile size.  Each tile is run with a ``halo`` of extra
context on every side (default: the largest initial displacement + 8 px in accurate mode, ``overlap`` in
paper mode), so that trajectories that start outside the tile see real data; only the core is kept.
In paper mode with ``coord_input`` each tile (with its halo) also gets its pixels' place in the whole
image (patches.image_coords), as the training patches did.

Streaming (``iter_frame_blocks`` / ``iter_field_blocks``): the same tiles, run in row-major order, and
each finished block yielded as soon as no later tile touches it, so a whole scene never sits in memory
(the source reads GDAL windows: processing_provider/raster_io.PairWindows).  The in-memory functions
``generate_frames`` / ``advection_fields`` assemble those blocks, so both paths give the same numbers.
No torch import at module level: with an ONNX runner this module runs without torch.
"""
import numpy as np

from .patches import normalise, denormalise, image_coords
from .device import resolve_device, settings, out_of_memory_as_error
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


# ---------------------------------------------------------------------------------------------
# Runners: one tile of normalised input → normalised frames / pixel fields (numpy in, numpy out).
# The torch runner wraps an InBetweenNet; model/onnx_export.OnnxTileRunner does the same with
# onnxruntime alone.  Both expose: bands, steps, lo, hi, uses_flow, flow_smooth, flow_prior, flow_log_view,
# tail_match, patch_norm, uses_coords,
# uses_border, uses_seen, uses_several, frames(a, b, flow, valid[, coords][, border][, several]) → (N+1, C, h, w)
# and fields(a, b, flow, valid[, coords]) → (N, 2, h, w); ``coords`` (paper mode with ``coord_input``): the
# tile's place in the whole image, patches.image_coords; ``border``, ``several``: the pair's border weight and
# whether its start has several motions (FullFlow); the tile's ``valid`` is the blend's ``seen``.

class TorchTileRunner:
    def __init__(self, model, device="auto", precision="auto"):
        self.model = model
        self.precision = precision
        cfg = model.cfg
        self.bands = int(model.bands)
        self.steps = int(cfg.steps)
        self.lo = model.norm_lo.detach().cpu().numpy().astype(np.float32)
        self.hi = model.norm_hi.detach().cpu().numpy().astype(np.float32)
        self.uses_flow = bool(cfg.mode != "paper" and cfg.flow_init)
        self.flow_smooth = cfg.flow_smooth
        self.flow_prior = cfg.flow_prior
        self.flow_log_view = bool(getattr(cfg, "flow_log_view", False))
        self.rigid_steps = bool(getattr(cfg, "rigid_steps", False))
        self.tail_match = float(getattr(cfg, "tail_match", 0.0))
        self.patch_norm = bool(cfg.patch_norm)
        self.uses_coords = bool(getattr(model, "uses_coords", False))
        self.uses_border = bool(getattr(model, "uses_border", False))
        self.uses_seen = bool(getattr(model, "uses_seen", False))
        self.uses_several = bool(getattr(model, "uses_several", False))
        self.device_name = device
        self.dev = None
        self.run_on = None
        self.decoder_is_zero = decoder_is_zero(model)
        self.each_step = None   # set by iter_blocks: the cancel check within a tile

    def __enter__(self):
        self.dev = resolve_device(self.device_name)
        self.run_on = settings(self.dev, self.precision)
        self.model.eval()
        self.model.to(self.dev)
        return self

    def __exit__(self, *exc):
        self.model.to("cpu")
        return False

    def _run(self, what, a, b, fl, valid, coords=None, border=1.0, several=0.0, steps=None):
        import torch
        from .patches import patch_scale, patch_unscale

        dev = self.dev
        with out_of_memory_as_error("inference", dev):
            with torch.inference_mode():
                ta = torch.from_numpy(np.ascontiguousarray(a))[None].to(dev)
                tb = torch.from_numpy(np.ascontiguousarray(b))[None].to(dev)
                tf = torch.from_numpy(np.ascontiguousarray(fl))[None].to(dev) if fl is not None else None
                tc = torch.from_numpy(np.ascontiguousarray(coords))[None].to(dev) if coords is not None else None
                ts = torch.from_numpy(np.ascontiguousarray(steps))[None].to(dev) if steps is not None else None
                seen = (torch.from_numpy(valid.astype(np.float32))[None, None].to(dev)   # None: no gaps in the tile
                        if self.uses_seen and valid is not None and not valid.all() else None)
                scale = None
                if self.patch_norm:
                    m = torch.from_numpy(valid.astype(np.float32))[None, None].to(dev)
                    ta, tb, scale = patch_scale(ta, tb, m)
                with self.run_on.autocast():
                    if what == "frames":
                        if self.decoder_is_zero:
                            res = blended_frames(self.model, ta, tb, tf, border, seen, several, self.each_step, ts)
                        else:
                            frames, _ = self.model.frames(ta, tb, tf, tc, border, seen, several, ts)
                            res = torch.cat(frames, 0).float()      # (N+1, C, h, w)
                        if scale is not None:
                            res = patch_unscale(res, scale[0][:1], scale[1][:1])
                        res = res.clamp(-1.0, 1.0)
                    else:
                        disp, _ = self.model.fields(ta, tb, tf, tc, ts)
                        res = disp[0].float()                       # (N, 2, h, w)
                return res.float().cpu().numpy()

    def frames(self, a, b, fl, valid, coords=None, border=1.0, several=0.0, steps=None):
        return self._run("frames", a, b, fl, valid, coords, border, several, steps)

    def fields(self, a, b, fl, valid, coords=None, steps=None):
        return self._run("fields", a, b, fl, valid, coords, steps=steps)


def decoder_is_zero(model):
    """True when ψ adds exactly nothing: accurate mode, bidirectional, residual decoder whose output
    convolution is all zeros (``train_decoder=False``, the accurate-mode default, leaves it at its zero
    initialisation).  Then every intermediate frame is ``base + 0`` = the time-weighted blend of both
    ends advected along the fields, and neither the encoder's latent nor the decoder changes a frame:
    ``blended_frames`` skips them (on a 976² tile with 12 steps, preset fast: 15.4 s → ~2 s on 2 CPU
    cores; the decoder alone was 9.9 s).  The weights are checked, not the config flag, so a model with a
    trained decoder always takes the full path."""
    cfg = model.cfg
    if cfg.mode == "paper" or not cfg.bidirectional or not cfg.residual_decoder:
        return False
    out = getattr(model.decoder, "out", None)
    if out is None:
        return False
    return bool((out.weight == 0).all()) and (out.bias is None or bool((out.bias == 0).all()))


def blended_frames(model, x0, x1, flow=None, border=1.0, seen=None, several=0.0, each_step=None, steps=None):
    """InBetweenNet.frames for a model with ``decoder_is_zero``: the same frames (N+1, C, h, w), float32,
    with the images alone advected (no latent channel, no encoder, no decoder).  ``each_step()``, optional,
    is called at every step of the rollouts and the blend (a cancel check: hundreds of steps on one tile
    take tens of seconds); ``steps``, optional, the start's per-step fields (InBetweenNet.fields)."""
    import torch
    from .advection import backward_fields, blend_inputs, data_mask, ends_kept, rollouts, time_blend

    cfg = model.cfg
    n = cfg.steps
    disp, _ = model.fields(x0, x1, flow, steps=steps)
    back = backward_fields(disp, steps)
    occ = getattr(cfg, "occlusion_blend", False)
    stretch = getattr(cfg, "stretch_blend", False)
    mask = data_mask(seen) if getattr(model, "uses_seen", False) and seen is not None else None
    x0c, x1c = blend_inputs(x0, x1, occ, stretch)  # the same blend as InBetweenNet.frames, images only
    forward, backward = rollouts(getattr(cfg, "sample_once", False))
    fwd = forward(x0c, disp, each_step)
    bwd = backward(x1c, back, each_step)
    with_ends = getattr(model, "uses_several", False) and (torch.is_tensor(several) or several)  # 0: no change
    ends = ends_kept(fwd, bwd) if with_ends else None
    out = [x0.float()]
    for j in range(1, n):
        if each_step is not None:
            each_step()
        out.append(time_blend(fwd[j], bwd[j], j / n, occ, stretch, border, mask, ends, several,
                              getattr(cfg, "ends_squared", False)).float())
    out.append(x1.float())
    return torch.cat(out, 0)


def as_runner(model, device="auto"):
    """A runner for ``model``: an InBetweenNet (torch) or an already built runner (e.g. ONNX)."""
    return model if hasattr(model, "frames") and hasattr(model, "uses_flow") else TorchTileRunner(model, device)


# ---------------------------------------------------------------------------------------------
# Sources: where the tiles' input comes from (arrays in memory, or GDAL windows: raster_io.PairWindows).

class ArrayPair:
    """The in-memory source: (C, H, W) arrays and the valid mask, read by window."""

    def __init__(self, x0, x1, valid=None):
        self.x0, self.x1, self.valid = check_pair(x0, x1, valid)
        self.bands, self.height, self.width = self.x0.shape

    def window(self, r0, r1, q0, q1):
        return self.x0[:, r0:r1, q0:q1], self.x1[:, r0:r1, q0:q1], self.valid[r0:r1, q0:q1]

    def decimated(self, h, w):
        """Nearest-neighbour reduction to (h, w) (NaN/invalid stay invalid)."""
        ri = np.minimum(((np.arange(h) + 0.5) * self.height / h).astype(int), self.height - 1)
        ci = np.minimum(((np.arange(w) + 0.5) * self.width / w).astype(int), self.width - 1)
        return self.x0[:, ri][:, :, ci], self.x1[:, ri][:, :, ci], self.valid[ri][:, ci]


class FullFlow:
    """A flow held at full resolution (2, H, W), with the pair's ``border`` weight (fieldinit.border_weight)
    and ``several``: 1.0 when it has several motions (fieldinit.SEVERAL_MOTIONS), else 0.0."""

    def __init__(self, flow, border=1.0, several=0.0):
        self.flow = flow
        self.border = float(border)
        self.several = float(several)
        self.max_abs = float(np.abs(flow).max()) if flow.size else 0.0
        self.steps = None   # a StepFlow where the frames move by per-step fields (rigid pieces)

    def window(self, r0, r1, q0, q1):
        return self.flow[:, r0:r1, q0:q1]


class LowResFlow:
    """A flow computed on a reduced image (2, h, w), upsampled bilinearly per window to (H, W) pixels:
    coordinates map pixel centres to pixel centres and the displacements scale by H/h and W/w.
    ``border``, ``several``: as FullFlow's."""

    def __init__(self, flow_lo, height, width, border=1.0, several=0.0):
        self.flow = flow_lo
        self.border = float(border)
        self.several = float(several)
        self.height, self.width = height, width
        self.fy = height / flow_lo.shape[1]
        self.fx = width / flow_lo.shape[2]
        self.max_abs = float(max(np.abs(flow_lo[0]).max() * self.fx, np.abs(flow_lo[1]).max() * self.fy))
        self.steps = None   # as FullFlow's

    def window(self, r0, r1, q0, q1):
        return _upsampled(self.flow[None], self.fx, self.fy, r0, r1, q0, q1)[0]


class StepFlow:
    """Per-step fields (n, 4, h, w) on a small grid covering the whole image (rigid_pieces.Pieces.step_fields:
    the forward rollout's (x, y), then the backward rollout's), brought to (H, W) pixels per window as
    LowResFlow's; ``max_total``: the longest a trajectory can be over the interval (the tiles' halo)."""

    def __init__(self, steps_lo, height, width):
        self.steps = steps_lo
        self.fy = height / steps_lo.shape[2]
        self.fx = width / steps_lo.shape[3]
        self.max_total = float(max(sum(max(np.abs(d[c]).max() * self.fx, np.abs(d[c + 1]).max() * self.fy)
                                       for d in steps_lo) for c in range(0, steps_lo.shape[1], 2)))

    def window(self, r0, r1, q0, q1):
        """(n, 4, r1 − r0, q1 − q0) float32 pixels per step."""
        return _upsampled(self.steps, self.fx, self.fy, r0, r1, q0, q1)


def _upsampled(fields, fx, fy, r0, r1, q0, q1):
    """(K, 2m, h, w) displacements ((x, y) pairs) on a grid fx × fy times coarser, bilinearly at the window's
    pixel centres (pixel centres map to pixel centres), scaled to its pixels: (K, 2m, r1 − r0, q1 − q0)
    float32."""
    import cv2

    ys = ((np.arange(r0, r1, dtype=np.float32) + 0.5) / fy - 0.5)
    xs = ((np.arange(q0, q1, dtype=np.float32) + 0.5) / fx - 0.5)
    my = np.repeat(ys[:, None], len(xs), 1)
    mx = np.repeat(xs[None, :], len(ys), 0)
    out = np.empty((len(fields), fields.shape[1], r1 - r0, q1 - q0), np.float32)   # written in place
    for i, d in enumerate(fields):
        for k in range(fields.shape[1]):
            out[i, k] = cv2.remap(np.ascontiguousarray(d[k], np.float32), mx, my, cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE)
            out[i, k] *= np.float32(fx if k % 2 == 0 else fy)
    return out


def bounded_initial_flow(source, smooth, max_side=2048, prior="auto", border=False, log_view=False, steps=None):
    """The accurate mode's initial flow for ``source`` with memory bounded by ``max_side``.

    Up to ``max_side`` pixels on the longer side: the same whole-image DIS flow as training
    (fieldinit.initial_flow), exactly.  Larger images (a whole 4963 × 7316 FMI composite): the pair is
    reduced by nearest neighbour to at most ``max_side`` on its longer side, the flow is computed there
    (smoothing sigma scaled down alike) and upsampled bilinearly per tile, displacements scaled up.
    The flow is a smooth large-scale initialisation (the network learns the residual), so the reduced
    estimate changes frames by little (tests/test_streaming.py measures it); memory stays ~max_side².
    ``border``: also the pair's border weight; ``log_view``: the motion's scale (fieldinit.pair_start);
    ``steps``: the model's number of steps, for the per-step fields of a start of rigid pieces (the flow's
    ``steps``, a StepFlow; None for every other start)."""
    from .fieldinit import SEVERAL_MOTIONS, pair_start

    h, w = source.height, source.width
    if max(h, w) <= max_side:
        s = pair_start(*source.window(0, h, 0, w), smooth, prior, log_view, border)
        flow = FullFlow(s.flow, s.border, s.kind == SEVERAL_MOTIONS)
    else:
        f = max(h, w) / float(max_side)
        hl, wl = max(int(round(h / f)), 16), max(int(round(w / f)), 16)
        s = pair_start(*source.decimated(hl, wl), (smooth or 0) / f, prior, log_view, border)
        flow = LowResFlow(s.flow, h, w, s.border, s.kind == SEVERAL_MOTIONS)
    if s.pieces is not None and steps:
        flow.steps = StepFlow(s.pieces.step_fields(int(steps)), h, w)
    return flow


# ---------------------------------------------------------------------------------------------
# The streaming core.

def auto_tile(halo):
    """The default tile side for a halo: 512, or 1024 when the halo exceeds 128 px.  Each tile runs on
    (tile + 2·halo)² pixels to keep (tile − overlap)²: with the ~230 px halo of real radar at 250 m,
    512 computes 4.7× the pixels it keeps, 1024 2.4× (half the work); the per-tile memory grows with
    (tile + 2·halo)², 972² → 1484² (2.3×), still bounded and independent of the raster size."""
    return 1024 if halo > 128 else 512


def iter_blocks(runner, source, what="frames", tile=None, overlap=64, halo=None, flow=None,
                flow_max_side=2048, progress=None, is_canceled=None):
    """Yield (row, col, block) with the finished output of the rectangle starting at (row, col) (_iter_tiles),
    frames with their peaks kept (model/intensity.py) where the runner's ``tail_match`` asks for it: the
    tiles then run twice, once to learn each frame's distribution and once to yield the matched blocks
    (progress counts both)."""
    _check_bands(runner, source)
    flow = _pair_flow(runner, source, flow, flow_max_side)
    tails = _peaks_kept(runner, what)
    if tails is None:
        yield from _iter_tiles(runner, source, what, tile, overlap, halo, flow, progress, is_canceled)
        return

    def half(first):
        if progress is None:
            return None
        return lambda done, total: progress(done if first else total + done, 2 * total)
    for _r, _g, block in _iter_tiles(runner, source, what, tile, overlap, halo, flow, half(True), is_canceled):
        tails.add(block)
    for r, g, block in _iter_tiles(runner, source, what, tile, overlap, halo, flow, half(False), is_canceled):
        yield r, g, tails.apply(block)


def _check_bands(runner, source):
    if runner.bands != source.bands:
        raise ValueError(f"the model was trained on {runner.bands} band(s), the images have {source.bands}")


def _peaks_kept(runner, what):
    """An empty intensity.TailMatch for the runner's frames where its ``tail_match`` asks for one, else None."""
    share = float(getattr(runner, "tail_match", 0.0)) if what == "frames" else 0.0
    if share <= 0.0:
        return None
    from .intensity import TailMatch

    return TailMatch(runner.steps + 1, runner.lo, runner.hi, share, runner.bands)


def _pair_flow(runner, source, flow, flow_max_side):
    """The start's flow for the whole pair (bounded_initial_flow), unless given or the model has none."""
    if not runner.uses_flow:
        return None
    if flow is None:
        flow = bounded_initial_flow(source, runner.flow_smooth, flow_max_side, runner.flow_prior,
                                    getattr(runner, "uses_border", False), getattr(runner, "flow_log_view", False),
                                    runner.steps if getattr(runner, "rigid_steps", False) else None)
    return flow


def _iter_tiles(runner, source, what, tile, overlap, halo, flow, progress, is_canceled):
    """Yield (row, col, block) with the finished, blended output of the rectangle starting at (row, col):
    frames: (N+1, C, h, w) float32 in data units (frame 0 = x0, frame N = x1, NaN where invalid);
    fields: (N, 2, h, w) pixels per step.  Blocks tile the image exactly once, in row-major order.
    ``tile`` None: ``auto_tile(halo)``.

    Tiles run in row-major order; a tile's weighted output goes into a window of the current tile row
    and, for the rows the next tile row overlaps, into a carry buffer (overlap rows × width).  Peak
    memory: one tile with its halo, the window (≤ 2 tiles), the carry (≈ overlap × width × outputs) and
    the flow (``flow_max_side``²), and where the start is rigid pieces their per-step fields for the tile (N
    fields of the tile with its halo); it does not grow with the number of rows.  A ``flow`` given (None:
    computed by iter_blocks) moves rigid pieces by its own ``steps``, if any."""
    lo, hi = runner.lo, runner.hi
    h, w, c = source.height, source.width, source.bands
    n = runner.steps
    steps = getattr(flow, "steps", None)
    if halo is None:
        reach = max(flow.max_abs, steps.max_total if steps is not None else 0.0) if flow is not None else None
        halo = int(np.ceil(reach)) + 8 if flow is not None else overlap
    halo = max(int(halo), 0)
    tile = int(max(auto_tile(halo) if tile is None else tile, 16))
    overlap = int(min(max(overlap, 0), tile // 2))
    th, tw = min(tile, h), min(tile, w)
    rs, cs = _starts(h, th, overlap), _starts(w, tw, overlap)
    k_out, ch = (n + 1, c) if what == "frames" else (n, 2)
    uses_coords = bool(getattr(runner, "uses_coords", False))
    extra = {}
    if what == "frames" and getattr(runner, "uses_border", False):
        extra["border"] = getattr(flow, "border", 1.0)   # one weight for the whole pair, every tile
    if what == "frames" and getattr(runner, "uses_several", False):
        extra["several"] = getattr(flow, "several", 0.0)
    carry_acc = np.zeros((k_out, ch, 0, w), np.float32)
    carry_w = np.zeros((0, w), np.float32)
    total, done = len(rs) * len(cs), 0
    within = [0]   # steps run in the current tile

    def each_step():
        # a tile of hundreds of steps runs for tens of seconds: progress within it, and the cancel check
        # (qgis_process sets the cancel flag from SIGINT when the progress is reported)
        within[0] += 1
        if progress is not None:
            progress(done + min(within[0] / (3.0 * n), 0.99), total)
        if is_canceled is not None and is_canceled():
            raise TrainingCanceled("inference canceled")
    if hasattr(runner, "each_step"):   # set on every call: a runner used again keeps no earlier run's hook
        runner.each_step = each_step if (is_canceled is not None or progress is not None) else None
    with runner:
        for i, r in enumerate(rs):
            f_end = rs[i + 1] if i + 1 < len(rs) else h    # rows [r, f_end) are final after this tile row
            fh = f_end - r
            new_acc = np.zeros((k_out, ch, th - fh, w), np.float32)
            new_w = np.zeros((th - fh, w), np.float32)
            g = 0
            win_acc = np.zeros((k_out, ch, th, 0), np.float32)
            win_w = np.zeros((th, 0), np.float32)
            for k, q in enumerate(cs):
                if is_canceled is not None and is_canceled():
                    raise TrainingCanceled("inference canceled")
                end = g + win_acc.shape[3]
                if q + tw > end:   # extend the window, seeded with what earlier tile rows left there
                    add_acc = np.zeros((k_out, ch, th, q + tw - end), np.float32)
                    add_w = np.zeros((th, q + tw - end), np.float32)
                    ck = carry_acc.shape[2]
                    add_acc[:, :, :ck] = carry_acc[:, :, :, end:q + tw]
                    add_w[:ck] = carry_w[:, end:q + tw]
                    win_acc = np.concatenate([win_acc, add_acc], 3)
                    win_w = np.concatenate([win_w, add_w], 1)
                r0, r1 = max(r - halo, 0), min(r + th + halo, h)
                q0, q1 = max(q - halo, 0), min(q + tw + halo, w)
                x0, x1, valid = source.window(r0, r1, q0, q1)
                a = normalise(x0, valid, lo, hi)
                b = normalise(x1, valid, lo, hi)
                fl = flow.window(r0, r1, q0, q1) if flow is not None else None
                run_tile = runner.frames if what == "frames" else runner.fields
                if uses_coords:   # the tile (with its halo) where it lies in the whole image
                    res = run_tile(a, b, fl, valid, coords=image_coords(h, w, r0, r1, q0, q1))
                elif steps is not None:
                    res = run_tile(a, b, fl, valid, steps=steps.window(r0, r1, q0, q1), **extra)
                else:
                    res = run_tile(a, b, fl, valid, **extra)
                res = res[:, :, r - r0:r - r0 + th, q - q0:q - q0 + tw]
                wt = _ramp(th, r > 0, r + th < h, overlap)[:, None] * _ramp(tw, q > 0, q + tw < w, overlap)[None, :]
                win_acc[:, :, :, q - g:q - g + tw] += res * wt
                win_w[:, q - g:q - g + tw] += wt
                done += 1
                within[0] = 0
                if progress is not None:
                    progress(done, total)
                c_end = cs[k + 1] if k + 1 < len(cs) else w   # columns [g, c_end) are final now
                cw = c_end - g
                new_acc[:, :, :, g:c_end] = win_acc[:, :, fh:, :cw]
                new_w[:, g:c_end] = win_w[fh:, :cw]
                block = win_acc[:, :, :fh, :cw] / win_w[:fh, :cw]
                yield r, g, _finish(block, what, source, r, g, lo, hi)
                win_acc = win_acc[:, :, :, cw:]
                win_w = win_w[:, cw:]
                g = c_end
            carry_acc, carry_w = new_acc, new_w


def _finish(block, what, source, r, g, lo, hi):
    if what != "frames":
        return block
    bh, bw = block.shape[-2:]
    x0, x1, valid = source.window(r, r + bh, g, g + bw)
    out = np.empty_like(block)
    for j in range(block.shape[0]):
        out[j] = denormalise(block[j], lo, hi)
    out[:, :, ~valid] = np.nan
    out[0] = x0
    out[-1] = x1
    return out


def iter_frame_blocks(model, source, device="auto", tile=None, overlap=64, halo=None, flow_max_side=2048,
                      progress=None, is_canceled=None):
    """Stream the frames: yields (row, col, (N+1, C, h, w) float32) blocks covering the image once.

    ``model``: an InBetweenNet or a runner (model/onnx_export.OnnxTileRunner); ``source``: an
    ArrayPair or a raster_io.PairWindows (GDAL windows), anything with bands/height/width, window()
    and decimated()."""
    return iter_blocks(as_runner(model, device), source, "frames", tile, overlap, halo, None, flow_max_side,
                       progress, is_canceled)


def iter_field_blocks(model, source, device="auto", tile=None, overlap=64, halo=None, flow_max_side=2048,
                      progress=None, is_canceled=None):
    """Stream the fields: yields (row, col, (N, 2, h, w) float32) pixel displacements per step."""
    return iter_blocks(as_runner(model, device), source, "fields", tile, overlap, halo, None, flow_max_side,
                       progress, is_canceled)


def _assemble(model, x0, x1, valid, device, tile, overlap, progress, is_canceled, halo, what):
    runner = as_runner(model, device)
    source = ArrayPair(x0, x1, valid)
    _check_bands(runner, source)
    # the in-memory path: the whole-image flow, as training computed it
    flow = _pair_flow(runner, source, None, max(source.height, source.width))
    k = runner.steps + 1 if what == "frames" else runner.steps
    out = np.empty((k, source.bands if what == "frames" else 2, source.height, source.width), np.float32)
    for r, q, block in _iter_tiles(runner, source, what, tile, overlap, halo, flow, progress, is_canceled):
        out[:, :, r:r + block.shape[2], q:q + block.shape[3]] = block
    tails = _peaks_kept(runner, what)
    if tails is not None:   # as iter_blocks matches the streamed blocks, from the same histograms, in one pass
        tails.add(out)
        tails.apply(out, in_place=True)
    return out


def generate_frames(model, x0, x1, valid=None, device="auto", tile=None, overlap=64, progress=None,
                    is_canceled=None, halo=None):
    """Frames 0..N as float32 (N+1, C, H, W): frame 0 is x0 and frame N is x1 exactly, intermediate
    frames clipped to the training data range, NaN where a pixel is invalid in either image.
    ``model``: an InBetweenNet or a runner (e.g. model/onnx_export.OnnxTileRunner)."""
    return _assemble(model, x0, x1, valid, device, tile, overlap, progress, is_canceled, halo, "frames")


def advection_fields(model, x0, x1, valid=None, device="auto", tile=None, overlap=64, progress=None,
                     is_canceled=None, halo=None):
    """Per-step displacement of the content, float32 (N, 2, H, W) in pixels: channel 0 = +x (columns,
    right), channel 1 = +y (rows, down); the content at x at step j+1 came from x − d_j(x)."""
    return _assemble(model, x0, x1, valid, device, tile, overlap, progress, is_canceled, halo, "fields")
