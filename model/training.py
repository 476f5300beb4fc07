"""Training loop: one model per image pair."""
import time
from dataclasses import dataclass, field, replace

import numpy as np

from .presets import make_config, MIN_PATCH
from .patches import normalise, PatchSampler, cut, patch_scale, image_coords
from .device import resolve_device, settings, out_of_memory_as_error, deterministic_algorithms
from .distributed import is_active, training_run


class TrainingCanceled(Exception):
    """Raised when ``is_canceled()`` returns True during training."""


@dataclass
class TrainResult:
    model: object
    config: object
    history: list
    seconds: float
    device: str
    normalisation: dict
    bands: int = 1
    figures: dict = field(default_factory=dict)


def check_pair(x0, x1, valid=None):
    """Validate a pair; returns float32 (C, H, W) arrays and the bool (H, W) valid mask."""
    x0 = np.asarray(x0, dtype=np.float32)
    x1 = np.asarray(x1, dtype=np.float32)
    if x0.ndim == 2:
        x0 = x0[None]
    if x1.ndim == 2:
        x1 = x1[None]
    if x0.ndim != 3 or x1.ndim != 3:
        raise ValueError(f"images must be (bands, rows, cols) arrays, got shapes {x0.shape} and {x1.shape}")
    if x0.shape[0] != x1.shape[0]:
        raise ValueError(f"the two images have different band counts ({x0.shape[0]} and {x1.shape[0]})")
    if x0.shape != x1.shape:
        raise ValueError(f"the two images must have the same size, got {x0.shape[1:]} and {x1.shape[1:]}")
    finite = np.isfinite(x0).all(axis=0) & np.isfinite(x1).all(axis=0)
    if valid is None:
        valid = finite
    else:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != x0.shape[1:]:
            raise ValueError(f"valid mask shape {valid.shape} does not match the images {x0.shape[1:]}")
        valid = valid & finite
    return x0, x1, valid


def normalisation_of(x0, x1, valid):
    lo, hi = [], []
    for c in range(x0.shape[0]):
        vals = np.concatenate([x0[c][valid], x1[c][valid]])
        if vals.size == 0:
            raise ValueError("the images have no valid pixel in common")
        lo.append(float(vals.min()))
        hi.append(float(vals.max()))
    if all(h <= l for l, h in zip(lo, hi)):
        raise ValueError("both images are constant: there is nothing to learn")
    hi = [h if h > l else l + 1.0 for l, h in zip(lo, hi)]
    return {"kind": "minmax-per-band", "lo": lo, "hi": hi}


def _drain(pending, history):
    """Move the pending iterations' loss parts into ``history`` as floats (values that are still device
    tensors are read back in one transfer); returns the first iteration whose loss is not finite, or None."""
    import torch

    cells = [(p, k) for p in pending for k, v in p.items() if torch.is_tensor(v)]
    if cells:
        values = torch.stack([p[k].detach().float().reshape(()) for p, k in cells]).tolist()
        for (p, k), v in zip(cells, values):
            p[k] = v
    bad = None
    for p in pending:
        if bad is None and not np.isfinite(p["loss"]):
            bad = p["iteration"]
        history.append(p)
    pending.clear()
    return bad


GUARD_PATCHES = 24     # patches on which the trained residual is compared with the start
# The residual must lower the misfit by at least this fraction.  Where training helped (the rotation: MAE
# 1.27 -> 1.15) it lowered the two ends' disagreement by 35 %; where it made the frames worse it lowered it
# by 1-2 % (growth/decay 1.1 %: MAE 0.54 -> 0.56-0.59 over seeds 0-2; MeteoSwiss line 30 min 1.0 %), so
# 1 % let those through and 5 % does not.
GUARD_MARGIN = 0.05
# "consistency": the two ends disagree at the intermediate times (what the frames are made of); the
# endpoint misfit ("dynamics") is lowered by any field flexible enough to map each end's echoes onto some
# echo of the other, also a wrong one (measured: a floe split's wrong start fitted the endpoints better
# than the right one, and a residual that lowered mch-east's endpoint misfit by 26 % made its frames worse)
GUARD_MISFIT = "consistency"
# ... and, with that measure, the endpoint misfit must not grow: a residual that made the ends agree 19 %
# better in between while fitting the ends themselves 19 % worse made mch-east's frames worse (seed 2,
# MAE 1.77 -> 1.86); where training helped (the rotation) both fell.


def earns_its_place(key, trained, start, ends_trained, ends_start):
    """The guard's verdict from its measures (trained vs start): the misfit ``key`` lowered by GUARD_MARGIN
    and, when that is the two ends' disagreement, the endpoint misfit not raised."""
    return trained < (1.0 - GUARD_MARGIN) * start and (key == "dynamics" or ends_trained <= ends_start)


def _residual_guard(model, images, vmask, flow_t, patch, cfg, valid, seed, run_on):
    """Keep the learned residual fields only where they earn it: the misfit between the two ends carried
    to the intermediate times (X0 forward, X1 backward: GUARD_MISFIT) on a fixed set of patches, with the
    trained residual and with the residual set to zero (the untrained start: the initial motion alone).
    When training does not lower it by GUARD_MARGIN, or raises the endpoint misfit, the residual is zeroed
    and the model *is* its start.  Returns the figures."""
    import torch
    from .losses import total_loss

    h, w = valid.shape
    corners = PatchSampler(h, w, patch, cfg.stride, valid, cfg.min_valid_fraction, seed + 7919).corners(GUARD_PATCHES)
    out = model.field_net.out
    key = GUARD_MISFIT if cfg.lambda_cons > 0 else "dynamics"   # without λ_cons the loss has no such term

    def misfit():
        total = np.zeros(2)
        with torch.no_grad():
            for i in range(0, len(corners), cfg.batch_size):
                cs = corners[i:i + cfg.batch_size]
                pair = cut(images, cs, patch)
                a, b = run_on.memory_format(pair[:, 0]), run_on.memory_format(pair[:, 1])
                m = cut(vmask, cs, patch)
                fl = cut(flow_t, cs, patch) if flow_t is not None else None
                with run_on.autocast():
                    terms = model.training_terms(a, b, fl)
                _, parts = total_loss(terms, a, b, m, m, cfg)
                total += np.array([float(parts[key]), float(parts["dynamics"])]) * len(cs)
        return total / len(corners)

    (trained, ends_trained) = misfit()
    saved = [p.detach().clone() for p in (out.weight, out.bias)]
    with torch.no_grad():
        out.weight.zero_()
        out.bias.zero_()
    (start, ends_start) = misfit()
    keep = earns_its_place(key, trained, start, ends_trained, ends_start)
    if is_active():   # under torchrun: rank 0's verdict, so the ranks' weights stay identical
        flag = torch.tensor([1.0 if keep else 0.0], device=out.weight.device)
        torch.distributed.broadcast(flag, 0)
        keep = bool(flag.item() > 0.5)
    if keep:
        with torch.no_grad():
            out.weight.copy_(saved[0])
            out.bias.copy_(saved[1])
    what = "the two ends' disagreement in between" if key == "consistency" else "endpoint misfit"
    return {"misfit_start": round(start, 6), "misfit_trained": round(trained, 6), "residual_kept": bool(keep),
            "misfit": what, "endpoint_misfit_start": round(ends_start, 6),
            "endpoint_misfit_trained": round(ends_trained, 6)}


def _seed_everything(seed):
    import torch
    import random
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


def train_pair(x0, x1, valid=None, config=None, device="auto", seed=0, progress=None, is_canceled=None,
               log=None, distributed=None, precision="auto", channels_last=None, sync_every=None, fused=None,
               compile=None, deterministic=False, motion_progress=None):
    """Train a model that goes from ``x0`` to ``x1``; see the module docs of networks/presets.

    ``distributed``: None = DistributedDataParallel when a torch.distributed process group is initialised
    (under torchrun, see model/distributed.py), False = never, True = required.  ``precision``,
    ``channels_last``, ``sync_every``: see model/device.settings (by default bf16 autocast and channels-last
    on CUDA, and the losses read back to the host — history, divergence check, ``progress`` — every
    CUDA_SYNC_EVERY iterations there so the loop does not wait for the GPU; fp32 and every iteration on CPU).
    ``fused`` (Adam's fused kernel) and ``compile`` (a torch.compile mode for the loss terms) are off unless
    asked for; ``deterministic``: see model/device.deterministic_algorithms.
    Running out of memory raises RuntimeError with a message that says what to reduce.
    ``motion_progress(fraction, what)`` follows the initial motion estimate of the accurate mode."""
    import torch
    from .networks import InBetweenNet
    from .losses import total_loss
    from .fieldinit import (LINEAR_MOTION, RIGID, SEARCH_FRACTION, SEVERAL_MOTIONS, SHIFT_MARGIN, content_motion,
                            pair_start)
    from .rigid_pieces import mask_pair
    from .compiling import compiled_terms

    cfg = config if config is not None else make_config()
    x0, x1, valid = check_pair(x0, x1, valid)
    c, h, w = x0.shape
    if min(h, w) < MIN_PATCH:
        raise ValueError(f"images of {h}x{w} pixels are smaller than the smallest usable patch "
                         f"({MIN_PATCH}x{MIN_PATCH})")
    if valid.sum() < MIN_PATCH * MIN_PATCH:
        raise ValueError("too few valid pixels to train on")
    norm = normalisation_of(x0, x1, valid)
    patch = min(cfg.patch_size, h, w)
    if patch != cfg.patch_size and log:
        log(f"Patch size reduced from {cfg.patch_size} to {patch} to fit the {h}x{w} image")

    dev = resolve_device(device, log)
    run_on = settings(dev, precision, channels_last, sync_every, fused, compile)
    _seed_everything(seed)
    t_start = time.time()
    x0n = normalise(x0, valid, norm["lo"], norm["hi"])
    x1n = normalise(x1, valid, norm["lo"], norm["hi"])
    flow, kind, total, motion, pieces, rival = None, None, cfg.iterations, None, None, None
    if cfg.mode != "paper" and cfg.flow_init:
        start = pair_start(x0, x1, valid, cfg.flow_smooth, cfg.flow_prior, getattr(cfg, "flow_log_view", False),
                           progress=motion_progress)
        flow, kind, pieces = start.flow, start.kind, start.pieces
        if start.rival is not None:
            rival = [[float(c) for c in start.shift], [float(c) for c in start.rival]]
        motion = content_motion(flow, x0, x1, valid)
        mag = np.hypot(flow[0], flow[1])[valid]
        mean_px = float(mag.mean()) if mag.size else 0.0
        if log:
            log(f"Initial flow: mean displacement {mean_px:.2f} px, max {mag.max():.2f} px over the interval")
            if start.at_reach:
                dx, dy = (float(c) for c in start.shift)
                log(f"Warning: the overall shift found, ({dx:.0f}, {dy:.0f}) px, lies at the edge of what the search "
                    f"covers (±{start.reach} px, {SEARCH_FRACTION:.0%} of the image's shorter side): the motion may "
                    "be larger, the two images may share little content, and the frames and the field may be "
                    "wrong. Check them; a shorter interval or a larger area helps")
            if rival is not None:
                (dx, dy), (rx, ry) = rival
                log(f"Warning: the motion is ambiguous: after the overall shift ({dx:.0f}, {dy:.0f}) px and after "
                    f"another the search found, ({rx:.0f}, {ry:.0f}) px (x to the right, y down, over the interval), "
                    f"the two images carried half-way agree about as well (their mismatches within "
                    f"{1 - SHIFT_MARGIN:.0%} of each other), as where a pattern repeats along a band. The frames and "
                    "the field follow the first and may be wrong; a shorter interval or a larger area tells them "
                    "apart")
            if start.log_scaled:
                log("The motion was measured on a log scale: the values are heavy-tailed (as rain rates in mm/h "
                    "are); the frames keep the values' own scale")
        if kind == SEVERAL_MOTIONS and getattr(cfg, "keep_if_better", False) and total > 0:
            # With keep_if_better, a start of several motions (the optimal-transport candidate: pieces
            # drifting apart) is not trained on.  On bench/quality.py's floe split, the one case of 17 with
            # this start, the trained residual lowered the two ends' disagreement by 33-61 % yet made the
            # frames worse at every smoothing tried (IoU 0.892 untrained; trained 0.874 / 0.867 / 0.872 at
            # sigma 2 / 6 / 24 px, seed 0; 0.878 +- 0.004 over seeds 0-2 at 24 px), so the guard cannot
            # catch it: one smooth correction spans the gaps and moves neighbouring pieces together.
            # (Under torchrun every rank computes the same deterministic start, so all skip alike.)
            total = 0
            if log:
                log(f"Not trained ({cfg.iterations} iterations asked): the initial motion has several motions "
                    "(pieces moving apart), which a smooth learned correction merges; the model is that motion")
        elif (getattr(cfg, "flow_prior", None) in RIGID and getattr(cfg, "keep_if_better", False)
              and total > 0 and mask_pair(x0, x1, valid) is not None):
            # Nor a mask (ice and water; "multi-rigid" onwards, files from before trained as they did): on
            # bench/cases.py's field of six small floes, whose start was one motion (floes that touch fit no
            # rigid pieces before "multi-split" cut them apart), 200 iterations passed the guard and merged
            # the floes: IoU 0.905 -> 0.742 (seeds 0-2, 2026-11-27); on the other floe breakups the start was
            # kept or not trained on anyway.
            total = 0
            if log:
                log(f"Not trained ({cfg.iterations} iterations asked): the pair is a mask (two values, such as ice "
                    "and water), whose floes a smooth learned correction merges; the model is its motion estimate")
        elif kind == LINEAR_MOTION and getattr(cfg, "keep_if_better", False) and total > 0:
            # Nor is one linear motion of the whole scene (a turn, a shear): taken only where it makes the ends
            # agree clearly better, it leaves a smooth correction nothing to fix, and on bench/quality.py's
            # rotation 200 iterations made the frames worse (MAE 0.14 -> 0.15, CSI20 0.946 -> 0.936, seeds 0-2).
            total = 0
            if log:
                log(f"Not trained ({cfg.iterations} iterations asked): the initial motion is one linear motion of "
                    "the whole scene (a turn, shear or stretch), which a learned correction does not improve; "
                    "the model is that motion")

    if pieces is not None and total > 0 and getattr(cfg, "rigid_steps", False):
        # trained all the same (keep_if_better off): the residual learns on flow / N each step, which the
        # pieces' per-step fields would replace at inference, so this model moves them by that one field
        cfg = replace(cfg, rigid_steps=False)
    model = InBetweenNet(cfg, c)
    model.register_buffer("norm_lo", torch.tensor(norm["lo"], dtype=torch.float32))
    model.register_buffer("norm_hi", torch.tensor(norm["hi"], dtype=torch.float32))
    model.to(dev)
    if run_on.channels_last:
        model.to(memory_format=torch.channels_last)
    params = [p for n_, p in model.named_parameters()
              if cfg.train_decoder or cfg.mode == "paper" or not n_.startswith(("decoder.", "encoder."))]
    opt = torch.optim.Adam(params, lr=cfg.lr, betas=(0.9, 0.999), **({"fused": True} if run_on.fused else {}))
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.decay_every, gamma=cfg.gamma)
    run = training_run(model, params, seed, distributed, log)  # DDP under torchrun, else model.training_terms
    terms_of = compiled_terms(run.terms, model, run_on.compile) if run_on.compile else run.terms

    with out_of_memory_as_error("training", dev), deterministic_algorithms(deterministic):
        images = torch.from_numpy(np.stack([x0n, x1n])).to(dev)          # (2, C, H, W)
        vmask = torch.from_numpy(valid.astype(np.float32))[None].to(dev)  # (1, H, W)
        flow_t = torch.from_numpy(flow).to(dev) if flow is not None else None
        # paper mode's position channels: each patch is cut from the whole image's coordinates
        coords_t = torch.from_numpy(image_coords(h, w)).to(dev) if model.uses_coords else None
        sampler = PatchSampler(h, w, patch, cfg.stride, valid, cfg.min_valid_fraction, run.seed)
        history, pending = [], []
        sync_every = run_on.sync_every
        report_every = sync_every * -(-max(cfg.log_every, 1) // sync_every)
        model.train()
        for it in range(1, total + 1):
            if is_canceled is not None and is_canceled():
                raise TrainingCanceled("training canceled")
            if run_on.compile == "reduce-overhead":   # CUDA graphs: a new training step begins
                torch.compiler.cudagraph_mark_step_begin()
            corners = sampler.corners(cfg.batch_size)
            pair = cut(images, corners, patch)           # (B, 2, C, P, P)
            a, b = pair[:, 0], pair[:, 1]
            m = cut(vmask, corners, patch)                # (B, 1, P, P)
            fl = cut(flow_t, corners, patch) if flow_t is not None else None
            cc = run_on.memory_format(cut(coords_t, corners, patch)) if coords_t is not None else None
            if cfg.patch_norm:
                a, b, _ = patch_scale(a, b, m)
            a, b = run_on.memory_format(a), run_on.memory_format(b)
            with run_on.autocast():
                terms = terms_of(a, b, fl) if cc is None else terms_of(a, b, fl, cc)
            loss, parts = total_loss(terms, a, b, m, m, cfg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            parts["iteration"] = it
            pending.append(parts)
            if it % sync_every == 0 or it == total:
                bad = _drain(pending, history)
                if bad is not None:
                    raise RuntimeError(f"training diverged at iteration {bad} (loss is not finite); "
                                       "try a smaller learning rate")
            if progress is not None and (it % report_every == 0 or it == total):
                progress(it, total, history[-1])
    model.eval()
    guard = None
    if getattr(cfg, "keep_if_better", False) and cfg.mode != "paper" and total > 0:
        with out_of_memory_as_error("training", dev):
            # the caller's seed, not the rank's sampling seed: every rank judges the same patches
            guard = _residual_guard(model, images, vmask, flow_t, patch, cfg, valid, seed, run_on)
        if log:
            verdict = ("kept" if guard["residual_kept"] else
                       "dropped: it does not fit the pair clearly better than the initial motion alone, which "
                       "is kept as the model")
            log(f"Learned correction {verdict} ({guard['misfit']} {guard['misfit_start']:.4f} untrained, "
                f"{guard['misfit_trained']:.4f} trained; endpoint misfit {guard['endpoint_misfit_start']:.4f}, "
                f"{guard['endpoint_misfit_trained']:.4f})")
    seconds = time.time() - t_start
    model.to("cpu")
    if run_on.channels_last:
        model.to(memory_format=torch.contiguous_format)
    if log:
        recipe = ", ".join(["bf16 autocast" if run_on.bf16 else "fp32"] + ["channels-last"] * run_on.channels_last
                           + ["fused Adam"] * run_on.fused + [f"compiled ({run_on.compile})"] * bool(run_on.compile)
                           + ["deterministic"] * bool(deterministic))
        if total:
            log(f"Trained {total} iterations in {seconds:.1f} s on {dev} ({recipe})")
            if flow is not None and history and all(hh["loss"] == 0 for hh in history):
                # the losses leave out every pixel whose path under the initial motion leaves its patch; when
                # the motion is larger than the patches, none is left (FMI 60 min: 120 px, 64 px patches)
                log(f"Warning: training had nothing to compare: the initial motion ({mean_px:.0f} px on average) "
                    f"carries every pixel out of the {patch} px patches, so every loss was zero and the model is "
                    "its motion estimate; a PATCH_SIZE well above the motion lets it learn")
        elif not cfg.iterations:
            log(f"No training iterations (ITERATIONS=0, the accurate mode's default): the model is its motion "
                f"estimate ({seconds:.1f} s)")
        else:
            log(f"The model is its motion estimate, {kind} ({seconds:.1f} s)")
    figures = {"iterations": total, "seconds": round(seconds, 3),
               "final_loss": history[-1]["loss"] if history else None, "seed": seed,
               "patch_size_used": patch, "height": h, "width": w,
               "precision": "bf16" if run_on.bf16 else "fp32", "channels_last": run_on.channels_last,
               "fused": run_on.fused, "compile": run_on.compile, "deterministic": bool(deterministic),
               "initial_motion": kind,
               # the start's net displacement of the content (+x columns, +y rows) and its mean length, px
               "content_motion_px": None if motion is None else [round(m, 3) for m in motion],
               # the shift taken and another the pair cannot tell from it (x, y px over the interval), or None
               "ambiguous_shifts_px": rival}
    if guard is not None:
        figures.update(guard)
    return TrainResult(model=model, config=cfg, history=history, seconds=seconds, device=str(dev),
                       normalisation=norm, bands=c, figures=figures)
