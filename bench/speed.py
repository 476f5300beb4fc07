"""Speed benchmark: GPU training throughput against a plain reference, and the CPU ``fast`` preset.

    .venv/bin/python -m bench.speed                  # both parts (``make bench``)
    .venv/bin/python -m bench.speed --skip-cpu       # GPU part only
    .venv/bin/python -m bench.speed --skip-gpu --threads 2
    .venv/bin/python -m bench.speed --gpu-device cpu --gpu-preset fast --gpu-iterations 4 --skip-cpu
                                                     # smoke run of part (a)'s code on the CPU

(a) GPU training throughput, patches per second, preset ``paper-example-1`` (256 × 256 patches, batch 8),
    both modes.  ``reference``: the same network and loss trained by a plain loop written the obvious way:
    patches cut on the host with NumPy, ``torch.from_numpy(...).to(cuda)`` every batch, fp32, default
    memory format, ``loss.item()`` every iteration.  ``ours``: ``model.training.train_pair`` as the
    plugin runs it (pair held on the GPU and patches sliced there, bf16 autocast, channels-last, history
    and progress drained every 50 iterations, ``model.losses.total_loss`` returning device tensors, so no
    host sync per iteration).  Both use the same Adam.  Both run in this process on the same card, after a
    warm-up, with the same data, trainable weights and configuration; the card's name and the ratio are
    printed.  Without CUDA this part says it was skipped.
(b) CPU: preset ``fast`` (accurate mode) trains a 512 × 512 pair to its default iteration count; the pair is
    FMI radar (a 256 km crop at 500 m pixels, bench/cases.py) frames 0 and 12 of 2016-09-28 with the 11 frames
    between held out, or, without the data, a synthetic translation with the exact truth.  Prints the
    training and frame-generation seconds, patches per second, and the held-out MAE of the model's frames
    and of linear interpolation.  The machine's load average is printed with it (shared machines).
"""
import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _load():
    try:
        return os.getloadavg()
    except OSError:
        return (float("nan"),) * 3


def _pair(gap=12):
    """(sequence (gap+1, 1, H, W), valid, description): FMI 512 x 512 when present, else synthetic."""
    from bench.cases import list_frames, read_sequence

    if list_frames("fmi"):
        seq, names, valid = read_sequence("fmi", 0, gap + 1, 3840, 1536, 1024, 1024, block=2)
        return seq, valid, f"FMI radar {names[0]} -> {names[-1]}, {seq.shape[-1]}x{seq.shape[-2]} px (500 m)"
    from model.synthetic import translation_pair

    x0, x1, truth, _ = translation_pair(512, 512, dx=12.0, dy=-8.0, steps=gap, seed=0)
    seq = np.asarray(truth, dtype=np.float32)
    return seq, np.ones(seq.shape[-2:], bool), "synthetic translation 512x512 px (no FMI data found)"


def _trainables(model, cfg):
    """The weights train_pair's optimiser trains (the same rule), the others frozen."""
    params = [p for n, p in model.named_parameters()
              if cfg.train_decoder or cfg.mode == "paper" or not n.startswith(("decoder.", "encoder."))]
    keep = {id(p) for p in params}
    for p in model.parameters():
        if id(p) not in keep:
            p.requires_grad_(False)
    return params


def _sync(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reference_throughput(x0, x1, valid, cfg, device, iterations, warmup, seed=0):
    """Patches/s of the plain fp32 eager loop (see the module docs); also its peak GPU memory."""
    import torch
    from model.fieldinit import pair_start
    from model.losses import total_loss
    from model.networks import InBetweenNet
    from model.patches import PatchSampler, normalise, patch_scale, image_coords
    from model.training import check_pair, normalisation_of

    x0, x1, valid = check_pair(x0, x1, valid)
    norm = normalisation_of(x0, x1, valid)
    x0n = normalise(x0, valid, norm["lo"], norm["hi"])
    x1n = normalise(x1, valid, norm["lo"], norm["hi"])
    vm = valid.astype(np.float32)[None]
    flow = pair_start(x0, x1, valid, cfg.flow_smooth, cfg.flow_prior, cfg.flow_log_view).flow if (cfg.mode != "paper" and cfg.flow_init) else None
    c, h, w = x0.shape
    p = min(cfg.patch_size, h, w)
    torch.manual_seed(seed)
    model = InBetweenNet(cfg, c).to(device)
    coords = image_coords(h, w) if model.uses_coords else None   # paper mode: as train_pair, the whole image's
    opt = torch.optim.Adam(_trainables(model, cfg), lr=cfg.lr, betas=(0.9, 0.999))
    sampler = PatchSampler(h, w, p, cfg.stride, valid, cfg.min_valid_fraction, seed)
    model.train()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    losses, t0 = [], None
    for it in range(warmup + iterations):
        if it == warmup:
            _sync(device)
            t0 = time.perf_counter()
        corners = sampler.corners(cfg.batch_size)
        a = np.stack([x0n[:, r:r + p, q:q + p] for r, q in corners])
        b = np.stack([x1n[:, r:r + p, q:q + p] for r, q in corners])
        m = np.stack([vm[:, r:r + p, q:q + p] for r, q in corners])
        a, b, m = (torch.from_numpy(np.ascontiguousarray(v)).to(device) for v in (a, b, m))
        fl = None
        if flow is not None:
            fl = torch.from_numpy(np.stack([flow[:, r:r + p, q:q + p] for r, q in corners])).to(device)
        cc = None
        if coords is not None:
            cc = torch.from_numpy(np.stack([coords[:, r:r + p, q:q + p] for r, q in corners])).to(device)
        if cfg.patch_norm:
            a, b, _ = patch_scale(a, b, m)
        terms = model.training_terms(a, b, fl, cc)
        loss, _parts = total_loss(terms, a, b, m, m, cfg)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    _sync(device)
    seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated(device) / 2 ** 20 if device.type == "cuda" else None
    del model, opt
    return {"patches_per_s": iterations * cfg.batch_size / seconds, "seconds": seconds,
            "iterations": iterations, "peak_mib": peak, "final_loss": losses[-1]}


def ours_throughput(x0, x1, valid, cfg, device, iterations, warmup, seed=0, train_kw=None):
    """Patches/s of train_pair, timed between its progress reports after ``warmup`` iterations (on CUDA
    train_pair reports every CUDA_SYNC_EVERY iterations; the callback synchronises before reading the
    clock, so the set-up — normalisation, flow initialisation, upload — is not counted).  ``train_kw``:
    more train_pair arguments (bench/gpu_check.py's levers: fused, compile, ...; is_canceled)."""
    import torch
    from model.device import CUDA_SYNC_EVERY
    from model.training import train_pair

    step = CUDA_SYNC_EVERY if device.type == "cuda" else 1
    warmup = max(step, -(-warmup // step) * step)
    iterations = max(step, -(-iterations // step) * step)
    marks = []

    def progress(it, total, losses):
        _sync(device)
        marks.append((it, time.perf_counter()))

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    # keep_if_better off: the pair's start can make train_pair skip training (several motions, a mask, one
    # linear motion); this measures the training loop itself
    run_cfg = dataclasses.replace(cfg, iterations=warmup + iterations, log_every=1, keep_if_better=False)
    r = train_pair(x0, x1, valid, config=run_cfg, device=str(device), seed=seed, progress=progress,
                   **(train_kw or {}))
    (i0, t0), = [m for m in marks if m[0] == warmup]
    i1, t1 = marks[-1]
    peak = torch.cuda.max_memory_allocated(device) / 2 ** 20 if device.type == "cuda" else None
    return {"patches_per_s": (i1 - i0) * cfg.batch_size / (t1 - t0), "seconds": t1 - t0, "iterations": i1 - i0,
            "peak_mib": peak, "final_loss": r.history[-1]["loss"]}


def gpu_part(seq, valid, args, rows):
    import torch
    from model.presets import make_config

    if args.gpu_device == "cuda" and not torch.cuda.is_available():
        print("(a) GPU training throughput: skipped, CUDA is not available on this machine "
              f"(torch {torch.__version__}).")
        return
    device = torch.device(args.gpu_device)
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({platform.processor() or 'cpu'})"
    print(f"\n(a) training throughput on {card}, preset {args.gpu_preset}, torch {torch.__version__}")
    print(f"{'mode':<10}{'implementation':<16}{'patches/s':>11}{'iters':>7}{'peak MiB':>10}{'ratio':>8}")
    x0, x1 = seq[0], seq[-1]
    for mode in args.modes:
        cfg = make_config(args.gpu_preset, mode=mode)
        ref = reference_throughput(x0, x1, valid, cfg, device, args.ref_iterations, args.ref_warmup)
        if device.type == "cuda":
            torch.cuda.empty_cache()
        ours = ours_throughput(x0, x1, valid, cfg, device, args.gpu_iterations, args.gpu_warmup)
        if device.type == "cuda":
            torch.cuda.empty_cache()
        ratio = ours["patches_per_s"] / ref["patches_per_s"]
        for name, r, rt in (("reference", ref, ""), ("ours", ours, f"{ratio:.2f}x")):
            peak = f"{r['peak_mib']:.0f}" if r["peak_mib"] is not None else "-"
            print(f"{mode:<10}{name:<16}{r['patches_per_s']:>11.2f}{r['iterations']:>7}{peak:>10}{rt:>8}",
                  flush=True)
        rows.append({"part": "gpu", "device": card, "preset": args.gpu_preset, "mode": mode,
                     "patch_size": cfg.patch_size, "batch_size": cfg.batch_size,
                     "reference": ref, "ours": ours, "ratio": ratio})


def cpu_part(seq, valid, desc, args, rows):
    import torch
    from bench.quality import run_method
    from bench.scores import case_scores
    from model.inference import generate_frames
    from model.presets import make_config
    from model.training import train_pair

    torch.set_num_threads(args.threads)
    gap = len(seq) - 1
    x0, x1 = seq[0], seq[-1]
    cfg = make_config("fast", steps=gap)
    before = _load()
    t = time.perf_counter()
    result = train_pair(x0, x1, valid, config=cfg, device="cpu", seed=args.seed)
    t_train = time.perf_counter() - t
    t = time.perf_counter()
    frames = generate_frames(result.model, x0, x1, valid, device="cpu")
    t_gen = time.perf_counter() - t
    after = _load()
    s_model = case_scores(frames, seq, valid, "radar")
    t = time.perf_counter()
    lin = run_method("linear", x0, x1, gap, valid)
    t_lin = time.perf_counter() - t
    s_lin = case_scores(lin, seq, valid, "radar")
    print(f"\n(b) CPU, preset fast ({cfg.mode} mode), {cfg.iterations} iterations x {cfg.batch_size} patches of "
          f"{cfg.patch_size} px, {args.threads} torch thread(s), {os.cpu_count()} CPU(s)")
    print(f"    {desc}; frames 0 and {gap}, {gap - 1} held out")
    print(f"    load average before {before[0]:.2f}, after {after[0]:.2f} (1 min; shared machine)")
    print(f"{'method':<22}{'train s':>9}{'frames s':>10}{'patches/s':>11}{'MAE':>8}{'CSI@20':>8}{'SSIM':>7}")
    pps = cfg.iterations * cfg.batch_size / result.seconds
    print(f"{'latent (fast)':<22}{t_train:>9.1f}{t_gen:>10.1f}{pps:>11.1f}{s_model['mae']:>8.3f}"
          f"{s_model['csi20']:>8.3f}{s_model['ssim']:>7.3f}")
    print(f"{'linear interpolation':<22}{'-':>9}{t_lin:>10.1f}{'-':>11}{s_lin['mae']:>8.3f}"
          f"{s_lin['csi20']:>8.3f}{s_lin['ssim']:>7.3f}")
    verdict = "beats" if s_model["mae"] < s_lin["mae"] else "does NOT beat"
    print(f"    target: training <= 180 s ({'met' if t_train <= 180 else 'NOT met'}); "
          f"the model {verdict} linear interpolation on held-out MAE", flush=True)
    rows.append({"part": "cpu", "data": desc, "threads": args.threads, "iterations": cfg.iterations,
                 "train_seconds": t_train, "frames_seconds": t_gen, "patches_per_s": pps,
                 "load_before": before, "load_after": after,
                 "mae": s_model["mae"], "csi": s_model["csi20"], "ssim": s_model["ssim"],
                 "linear_mae": s_lin["mae"], "linear_csi": s_lin["csi20"], "linear_ssim": s_lin["ssim"]})


def main(argv=None):
    from model.presets import PRESET_NAMES, MODE_NAMES

    ap = argparse.ArgumentParser(prog="python -m bench.speed", description=__doc__.split("\n\n")[0])
    ap.add_argument("--skip-gpu", action="store_true")
    ap.add_argument("--skip-cpu", action="store_true")
    ap.add_argument("--gpu-device", default="cuda", help="device of part (a); 'cpu' only to smoke-test the code")
    ap.add_argument("--gpu-preset", default="paper-example-1", choices=PRESET_NAMES)
    ap.add_argument("--modes", nargs="+", default=["accurate", "paper"], choices=MODE_NAMES)
    ap.add_argument("--gpu-iterations", type=int, default=200, help="timed iterations of ours")
    ap.add_argument("--gpu-warmup", type=int, default=50)
    ap.add_argument("--ref-iterations", type=int, default=40, help="timed iterations of the reference")
    ap.add_argument("--ref-warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2, help="torch threads of part (b)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args(argv)
    if args.gpu_device == "cpu":
        args.gpu_iterations, args.gpu_warmup = min(args.gpu_iterations, 4), min(args.gpu_warmup, 1)
        args.ref_iterations, args.ref_warmup = min(args.ref_iterations, 4), min(args.ref_warmup, 1)

    seq, valid, desc = _pair()
    print(f"bench.speed: {desc}; load average {' '.join(f'{v:.2f}' for v in _load())}")
    rows = []
    if not args.skip_gpu:
        gpu_part(seq, valid, args, rows)
    if not args.skip_cpu:
        cpu_part(seq, valid, desc, args, rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
