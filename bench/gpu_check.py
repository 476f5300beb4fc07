"""Every GPU measurement and test in one command, one table: ``make gpu-check`` (at most 8 minutes).

    python3 -m bench.gpu_check                       # on a CUDA machine: the whole check
    python3 -m bench.gpu_check --device cpu --tiny   # dry run of every stage on the CPU, tiny sizes (~1 min)
    python3 -m bench.gpu_check --stages throughput --levers shipped compile --budget 200

Runs in a plain CUDA PyTorch environment (Python, PyTorch, numpy, OpenCV, onnxruntime, safetensors, scipy,
scikit-image, pytest): it imports ``model/`` and bench/speed.py (pure PyTorch/NumPy) and reads ``.npy``
inputs that ``make gpu-inputs`` writes from the real data (bench/gpu_inputs.py) — no GDAL, QGIS, POT,
matplotlib or network.  Without CUDA (and without ``--device cpu``) it says it skipped and exits 0.

Stages, each with its own deadline inside ``--budget`` seconds (unused time passes to the next stage; a
run that would overrun its stage's deadline by more than GRACE_S is cut and says so):
  tests       ``pytest -m cuda tests/test_cuda.py``: bf16 frames against fp32, deterministic mode,
              out-of-memory → the clear error, ONNX export of a GPU-trained model against torch (and
              onnxruntime's CUDA provider where onnxruntime-gpu is installed)
  torchrun    ``torchrun --standalone --nproc_per_node=1`` (NCCL on CUDA) trains with DDP and checks the
              weights in sync
  profile     torch.profiler over 10 iterations of train_pair as shipped (paper mode): wall time against
              the card's computing time, kernel launches, the kernels that take most (profile_paper.txt)
  throughput  preset paper-example-1, 256² patches of the FMI pair: bench/speed.py's plain fp32 eager
              reference against train_pair as shipped, patches/s and the ratio (target ≥ 5×), then the
              levers (--levers) one at a time on top of the shipped recipe
  training    accurate and paper mode (paper-example-1) on the FMI pair, frames 0 and 12 with the 11
              between held out: seconds, final loss, MAE, RMSE, bias, CSI@10/20/30, SSIM, ratio of the
              domain mean and of the 99th percentile to the truth (and linear / optical-flow rows for
              scale); paper-example-2 and -3 on the Sentinel-1 pair with a frame montage and a field plot
              (PNG, OpenCV).  Iterations: the preset's schedule, capped by what fits the stage's time at
              the measured speed (the table says how many ran).
Writes ``--out`` (default gpu-check-output/): gpu_check.json, table.md and the PNGs.
"""
import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

BUDGET_S = 450   # + start-up, the last run's frames and at most GRACE_S of overrun: within 8 minutes
GRACE_S = 15
STAGES = ("tests", "torchrun", "profile", "throughput", "training")
SHARES = {"tests": 0.14, "torchrun": 0.07, "profile": 0.07, "throughput": 0.32, "training": 0.40}
PROFILE_ACTIVE = 10   # iterations profiled, after as many to warm up
FMI_PRESET = "paper-example-1"
S1_PRESETS = ("paper-example-2", "paper-example-3")
THRESHOLDS = (10.0, 20.0, 30.0)
SSIM_RANGE = 70.0
TARGET_RATIO = 5.0
# levers, each on top of the shipped recipe: (name, train_pair arguments, config overrides, cudnn.benchmark)
LEVERS = {
    "fused": ({"fused": True}, {}, False),
    "compile": ({"fused": True, "compile": "default"}, {}, False),
    "cudagraphs": ({"fused": True, "compile": "reduce-overhead"}, {}, False),
    "compile-contiguous": ({"fused": True, "compile": "default", "channels_last": False}, {}, False),
    "cudnn-benchmark": ({}, {}, True),
    "batch32": ({"fused": True}, {"batch_size": 32}, True),
    "fp32": ({"precision": "fp32"}, {}, False),
    "no-channels-last": ({"channels_last": False}, {}, False),
}
LEVER_NOTES = {"fused": "fused Adam", "compile": "fused Adam + torch.compile",
               "cudagraphs": "fused Adam + torch.compile(mode='reduce-overhead'), CUDA graphs",
               "compile-contiguous": "fused Adam + torch.compile, without channels-last",
               "cudnn-benchmark": "cudnn.benchmark", "batch32": "fused Adam + cudnn.benchmark + batch 32",
               "fp32": "shipped without bf16", "no-channels-last": "shipped without channels-last"}
# the quick ones first: compiling takes a minute or more, and on an H200 (2026-11-27) the CUDA-graph compile
# overran the stage, so the levers after it were not run
DEFAULT_LEVERS = ["shipped", "cudnn-benchmark", "batch32", "fp32", "no-channels-last", "fused", "compile",
                  "cudagraphs", "compile-contiguous"]
TINY = dict(iterations=2, batch_size=2, patch_size=32, stride=(8, 8), encoder_widths=(8, 8), unet_in=8,
            unet_stages=(8, 16), unet_bottleneck=16)
TINY_SIDE = 64


# ---------------------------------------------------------------------------------------------
# The table

def format_table(rows, title=""):
    """Rows of (stage, what, result) as one Markdown table (columns padded, '|' in cells replaced)."""
    cells = [("stage", "what", "result")] + [tuple(str(c).replace("|", "/") for c in r) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(3)]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    out = [line(cells[0]), "| " + " | ".join("-" * w for w in widths) + " |"] + [line(r) for r in cells[1:]]
    return "\n".join(([title] if title else []) + out)


class Rows(list):
    """The table's rows; each is printed and table.md rewritten as it comes, so that a run cut from outside
    (a lease's end, a compile that overruns its stage) keeps what it measured (on an H200 a run cut inside
    the throughput stage lost all of that stage's figures when they were printed at the stage's end)."""

    def __init__(self, title, path):
        super().__init__()
        self.title, self.path = title, path

    def append(self, row):
        super().append(row)
        print(f"gpu-check: {row[0]}: {row[1]}: {row[2]}", flush=True)
        self.path.write_text(format_table(self, self.title) + "\n")


def _err(exc):
    msg = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {msg[:160]}"


def _outcome(exc, failed="FAILED"):
    """A row's text for what stopped a measurement: a cut at the stage's deadline is not a failure (the table
    says what failed; the other stages still run)."""
    from model.training import TrainingCanceled
    return "cut at the stage deadline" if isinstance(exc, TrainingCanceled) else f"{failed} {_err(exc)}"


class Clock:
    """Cumulative stage deadlines inside the budget: stage k ends at start + budget × (shares up to k)."""

    def __init__(self, budget, stages):
        self.t0 = time.perf_counter()
        self.budget = float(budget)
        total = sum(SHARES[s] for s in stages) or 1.0
        acc, self.ends = 0.0, {}
        for s in stages:
            acc += SHARES[s] / total
            self.ends[s] = self.t0 + self.budget * acc

    def elapsed(self):
        return time.perf_counter() - self.t0

    def left(self, stage):
        return self.ends[stage] - time.perf_counter()

    def guard(self, stage):
        """is_canceled for train_pair: True once the stage's deadline plus GRACE_S has passed."""
        end = self.ends[stage] + GRACE_S
        return lambda: time.perf_counter() > end


# ---------------------------------------------------------------------------------------------
# Inputs

def _centre(a, side):
    h, w = a.shape[-2:]
    r, c = max((h - side) // 2, 0), max((w - side) // 2, 0)
    return a[..., r:r + side, c:c + side]


def load(args):
    from bench.gpu_inputs import read_inputs

    d = read_inputs(args.inputs)
    if args.tiny:
        for k in ("fmi", "fmi_valid", "s1", "s1_valid"):
            d[k] = np.ascontiguousarray(_centre(d[k], TINY_SIDE))
    return d


def _config(preset, mode, args, **kw):
    from model.presets import make_config

    over = dict(TINY) if args.tiny else {}
    over.update(kw)
    return make_config(preset, mode=mode, **over)


# ---------------------------------------------------------------------------------------------
# Stage: the CUDA tests

def _child_env():
    """This environment with the checkout first on PYTHONPATH (kept: what the caller put there)."""
    rest = os.environ.get("PYTHONPATH")
    return dict(os.environ, PYTHONPATH=str(REPO) + (os.pathsep + rest if rest else ""))


def stage_tests(args, clock, rows, report):
    timeout = max(clock.left("tests"), 20)
    env = dict(_child_env(), PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")   # no pytest-qgis etc.: plain tests
    cmd = [sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider", "tests/test_cuda.py"]
    t = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=str(REPO), env=env, capture_output=True, text=True, timeout=timeout)
        out, rc = p.stdout + p.stderr, p.returncode
    except subprocess.TimeoutExpired as e:
        out, rc = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or ""), None
    secs = time.perf_counter() - t
    counts = dict((k, int(n)) for n, k in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected)", out))
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", out, re.M)
    skipped = re.findall(r"^SKIPPED \[\d+\] [^:]+:\d+: (.*)$", out, re.M)
    (Path(args.out) / "pytest_cuda.txt").write_text(out)
    if rc is None:
        verdict = f"cut after {secs:.0f} s (stage deadline)"
    else:
        verdict = ", ".join(f"{n} {k}" for k, n in counts.items()) or f"exit {rc}"
        verdict += f" in {secs:.0f} s"
        if rc not in (0, 5):   # 5: nothing collected (every test deselected)
            verdict = f"FAILED (exit {rc}): {verdict}; see pytest_cuda.txt"
    rows.append(("cuda tests", "pytest -m cuda tests/test_cuda.py", verdict))
    for name in failed:
        rows.append(("cuda tests", "  failed", name))
    for why in sorted(set(skipped)):
        rows.append(("cuda tests", "  skipped", why))
    report["tests"] = {"returncode": rc, "counts": counts, "failed": failed, "skipped": skipped, "seconds": secs}


# ---------------------------------------------------------------------------------------------
# Stage: torchrun with one process

def ddp_worker(args):
    """Run by torchrun: DDP training of a small model on the FMI pair; rank 0 prints one JSON line."""
    import torch
    from model import distributed as D
    from model.training import train_pair

    d = load(args)
    info = D.init(args.device)
    try:
        seq, valid = d["fmi"], d["fmi_valid"]
        # keep_if_better off: the start may make train_pair skip training, and this exercises DDP training
        cfg = _config("fast", "accurate", args, steps=len(seq) - 1, keep_if_better=False,
                      **({} if args.tiny else {"iterations": args.ddp_iterations, "patch_size": 128}))
        t = time.perf_counter()
        r = train_pair(seq[0], seq[-1], valid, config=cfg, device=info.device, seed=0, distributed=True)
        secs = time.perf_counter() - t
        digests = D.check_in_sync(r.model)
        if info.rank == 0:
            losses = [h["loss"] for h in r.history]
            print("DDP-RESULT " + json.dumps({
                "backend": info.backend, "world_size": info.world_size, "device": info.device,
                "iterations": cfg.iterations, "seconds": secs, "first_loss": losses[0], "final_loss": losses[-1],
                "finite": bool(np.all(np.isfinite(losses))), "digest": digests[0],
                "nccl": bool(torch.distributed.is_nccl_available())}), flush=True)
    finally:
        D.finish()
    return 0


def stage_torchrun(args, clock, rows, report):
    timeout = max(clock.left("torchrun"), 20)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
           str(REPO / "bench" / "gpu_check.py"), "--ddp-worker", "--inputs", str(args.inputs),
           "--device", args.device] + (["--tiny"] if args.tiny else [])
    env = _child_env()
    t = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=str(REPO), env=env, capture_output=True, text=True, timeout=timeout)
        out, rc = p.stdout + p.stderr, p.returncode
    except subprocess.TimeoutExpired:
        out, rc = "", None
    secs = time.perf_counter() - t
    (Path(args.out) / "torchrun.txt").write_text(out)
    m = re.search(r"^DDP-RESULT (.*)$", out, re.M)
    what = "torchrun --standalone --nproc_per_node=1, DDP"
    if rc is None:
        rows.append(("torchrun", what, f"cut after {secs:.0f} s (stage deadline)"))
    elif rc != 0 or not m:
        tail = " ".join(out.strip().splitlines()[-1:]) if out.strip() else ""
        rows.append(("torchrun", what, f"FAILED (exit {rc}): {tail[:160]}"))
    else:
        r = json.loads(m.group(1))
        ok = r["finite"] and r["world_size"] == 1
        rows.append(("torchrun", what,
                     f"{'ok' if ok else 'FAILED'}: backend {r['backend']} on {r['device']}, world size "
                     f"{r['world_size']}, {r['iterations']} it in {r['seconds']:.1f} s, loss {r['first_loss']:.4g}"
                     f" -> {r['final_loss']:.4g}, weights in sync ({secs:.0f} s with start-up)"))
        report["torchrun"] = r
    report.setdefault("torchrun", {})["returncode"] = rc


# ---------------------------------------------------------------------------------------------
# Stage: where an iteration's time goes

def stage_profile(args, clock, rows, report, dev):
    """torch.profiler over PROFILE_ACTIVE iterations of train_pair as shipped (paper mode, the preset's
    patches): wall time against the time the card computes (kernels), kernel launches, and the kernels that
    take most of it.  The losses are read back once per PROFILE_ACTIVE iterations (shipped: every 50), so
    the host waits on the card once in the profiled span, as in the shipped loop; one profiler step covers
    the warm-up iterations, the next the profiled ones.  A card that computes for a small part of the wall
    time waits on the host: fewer, fused kernels (torch.compile, CUDA graphs) or larger batches are then the
    levers, not arithmetic precision (the profiler's own tracing slows the host somewhat too; the throughput
    stage gives the unprofiled rate).  The whole table: profile_<mode>.txt."""
    import dataclasses
    from torch.profiler import ProfilerActivity, profile, schedule
    from model.training import train_pair

    seq, valid = report["_data"]["fmi"], report["_data"]["fmi_valid"]
    cuda = dev.type == "cuda"
    warm = active = 2 if args.tiny else PROFILE_ACTIVE     # one profiler step each (sync_every = active)
    out = report.setdefault("profile", {})
    for mode in args.lever_modes:
        cfg = _config(FMI_PRESET, mode, args)
        cfg = dataclasses.replace(cfg, iterations=warm + active, log_every=1, keep_if_better=False)
        what = f"{FMI_PRESET} {mode}, {cfg.patch_size}² x {cfg.batch_size}"
        marks = []
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        try:
            with profile(activities=acts, schedule=schedule(wait=0, warmup=1, active=1, repeat=1)) as prof:
                def progress(it, total, losses):
                    marks.append((it, time.perf_counter()))
                    prof.step()
                train_pair(seq[0], seq[-1], valid, config=cfg, device=str(dev), seed=0, progress=progress,
                           sync_every=active, is_canceled=clock.guard("profile"))
        except Exception as e:  # noqa: BLE001
            rows.append(("profile", what, _outcome(e)))
            continue
        finally:
            _free(dev)
        t0 = dict(marks)[warm]
        wall = (marks[-1][1] - t0) / active * 1e3
        ka = prof.key_averages()
        # the ranges the profiler and the optimiser mark (ProfilerStep*, Optimizer.step#Adam.step) carry the
        # card's time of everything inside them: left out, or the card counts as busy twice (151 % on the H200)
        marked = [e for e in ka if e.key.startswith("ProfilerStep") or "#" in e.key
                  or getattr(e, "is_user_annotation", False)]
        if cuda:   # the card's own events (kernels, copies), each counted once
            from torch.autograd import DeviceType

            key = "self_device_time_total"
            ops = [e for e in ka if getattr(e, "device_type", None) == DeviceType.CUDA and e not in marked]
        else:
            key = "self_cpu_time_total"
            ops = [e for e in ka if e not in marked]
        ops.sort(key=lambda e: -getattr(e, key, 0))
        busy = sum(getattr(e, key, 0) for e in ops) / 1e3 / active
        launches = sum(e.count for e in ka if "LaunchKernel" in e.key) / active
        (Path(args.out) / f"profile_{mode}.txt").write_text(ka.table(sort_by=key, row_limit=40))
        where = "card computing" if cuda else "CPU in operators"
        rows.append(("profile", f"{what}: per iteration (over {active})",
                     f"wall {wall:.1f} ms, {where} {busy:.1f} ms ({100 * busy / max(wall, 1e-9):.0f} %)"
                     + (f", {launches:.0f} kernel launches" if cuda else "")))
        for e in ops[:5]:
            t = getattr(e, key, 0) / 1e3 / active
            rows.append(("profile", f"  {e.key[:60]}", f"{t:.2f} ms/it ({100 * t / max(busy, 1e-9):.0f} %), "
                                                       f"{e.count / active:.0f} calls/it"))
        out[mode] = {"wall_ms": wall, "busy_ms": busy, "launches": launches,
                     "top": [(e.key, getattr(e, key, 0) / 1e3 / active) for e in ops[:15]]}


# ---------------------------------------------------------------------------------------------
# Stage: training throughput

def _free(dev):
    import gc
    import torch

    gc.collect()
    if dev.type == "cuda":
        torch.cuda.empty_cache()


def stage_throughput(args, clock, rows, report, dev):
    import torch
    from bench.speed import ours_throughput, reference_throughput

    seq, valid = report["_data"]["fmi"], report["_data"]["fmi_valid"]
    x0, x1 = seq[0], seq[-1]
    cuda = dev.type == "cuda"
    ref_it, ref_warm = (2, 1) if args.tiny else (args.ref_iterations, 5)
    our_it, our_warm = (2, 1) if args.tiny else (args.iterations, 50)
    out = report.setdefault("throughput", {})
    guard = clock.guard("throughput")
    levers = [lv for lv in args.levers if lv != "shipped"]
    for mode in args.modes:
        cfg = _config(FMI_PRESET, mode, args)
        what = f"{FMI_PRESET} {mode}, {cfg.patch_size}² x {cfg.batch_size}"
        try:
            ref = reference_throughput(x0, x1, valid, cfg, dev, ref_it, ref_warm)
            _free(dev)
            ours = ours_throughput(x0, x1, valid, cfg, dev, our_it, our_warm, train_kw={"is_canceled": guard})
            _free(dev)
        except Exception as e:  # noqa: BLE001
            rows.append(("throughput", what, _outcome(e)))
            continue
        ratio = ours["patches_per_s"] / ref["patches_per_s"]
        mem = lambda r: f", peak {r['peak_mib']:.0f} MiB" if r["peak_mib"] is not None else ""  # noqa: E731
        rows.append(("throughput", f"{what}: reference, fp32 eager", f"{ref['patches_per_s']:.1f} patches/s{mem(ref)}"))
        rows.append(("throughput", f"{what}: train_pair as shipped",
                     f"{ours['patches_per_s']:.1f} patches/s{mem(ours)}, {ratio:.2f}x the reference "
                     f"(target >= {TARGET_RATIO:g}x: {'met' if ratio >= TARGET_RATIO else 'NOT met'})"))
        out[mode] = {"reference": ref, "shipped": ours, "ratio": ratio,
                     "iterations_per_s": ours["iterations"] / ours["seconds"]}
    for lever in levers:
        train_kw, cfg_kw, bench_flag = LEVERS[lever]
        for mode in args.lever_modes:
            cfg = _config(FMI_PRESET, mode, args, **({} if args.tiny else cfg_kw))
            what = f"{FMI_PRESET} {mode}: + {LEVER_NOTES[lever]}"
            if "compile" in train_kw and not cuda and not args.compile_on_cpu:
                rows.append(("throughput", what, "not tried on the CPU (compiling takes minutes there; "
                                                 "--compile-on-cpu)"))
                continue
            if clock.left("throughput") < 5:
                rows.append(("throughput", what, "not run: stage budget spent"))
                continue
            before = torch.backends.cudnn.benchmark
            torch.backends.cudnn.benchmark = bench_flag or before
            try:
                r = ours_throughput(x0, x1, valid, cfg, dev, our_it, our_warm,
                                    train_kw=dict(train_kw, is_canceled=guard))
                base = out.get(mode, {}).get("reference")
                ratio = f", {r['patches_per_s'] / base['patches_per_s']:.2f}x the reference" if base else ""
                rows.append(("throughput", what, f"{r['patches_per_s']:.1f} patches/s{ratio}"))
                out.setdefault("levers", {}).setdefault(lever, {})[mode] = r
            except Exception as e:  # noqa: BLE001 (a lever that fails or runs out of memory is a finding)
                rows.append(("throughput", what, _outcome(e, "error (lever not usable here):")))
            finally:
                torch.backends.cudnn.benchmark = before
                if "compile" in train_kw:
                    import torch._dynamo

                    torch._dynamo.reset()
                _free(dev)


# ---------------------------------------------------------------------------------------------
# Stage: training to the preset schedules on the real pairs

def heldout_scores(frames, seq, valid):
    """Means over the held-out frames 1..G-1 of model/metrics.frame_scores (MAE, RMSE, bias, SSIM,
    CSI at THRESHOLDS) and the ratios of the domain mean and the 99th percentile to the truth."""
    from model.metrics import frame_scores

    per = []
    for j in range(1, len(seq) - 1):
        p, t = frames[j], seq[j]
        s = frame_scores(p, t, valid=valid, threshold=THRESHOLDS[0], data_range=SSIM_RANGE)
        row = {k: s[k] for k in ("mae", "rmse", "bias", "ssim")}
        row["csi10"] = s["csi"]
        for th in THRESHOLDS[1:]:
            row[f"csi{th:g}"] = frame_scores(p, t, valid=valid, threshold=th)["csi"]
        ok = valid & np.isfinite(p[0]) & np.isfinite(t[0])
        pv, tv = p[0][ok], t[0][ok]
        row["mean_ratio"] = float(pv.mean() / tv.mean()) if tv.size and tv.mean() != 0 else float("nan")
        t99 = float(np.percentile(tv, 99)) if tv.size else float("nan")
        row["p99_ratio"] = float(np.percentile(pv, 99) / t99) if tv.size and t99 != 0 else float("nan")
        per.append(row)
    return {k: float(np.nanmean([r[k] for r in per])) for k in per[0]}


def _score_text(s):
    return (f"MAE {s['mae']:.2f}, RMSE {s['rmse']:.2f}, bias {s['bias']:+.2f} dBZ, CSI@10/20/30 "
            f"{s['csi10']:.3f}/{s['csi20']:.3f}/{s['csi30']:.3f}, SSIM {s['ssim']:.3f}, mean x{s['mean_ratio']:.2f}, "
            f"p99 x{s['p99_ratio']:.2f}")


def _to_u8(frames, valid, lo=None, hi=None):
    vals = np.concatenate([f[0][valid & np.isfinite(f[0])] for f in frames])
    if lo is None:
        lo, hi = (np.percentile(vals, [1, 99]) if vals.size else (0.0, 1.0))
    hi = hi if hi > lo else lo + 1.0
    return [np.clip((np.nan_to_num(f[0], nan=lo) - lo) / (hi - lo) * 255, 0, 255).astype(np.uint8) for f in frames]


def _imwrite(path, img):
    import cv2

    tmp = str(path) + ".tmp.png"
    if not cv2.imwrite(tmp, img):
        raise OSError(f"OpenCV could not write {path}")
    os.replace(tmp, path)


def write_montage(path, frames, valid, label, side=300):
    """Frames 0, N/4, N/2, 3N/4, N side by side (one grey scale for all), each labelled."""
    import cv2

    n = len(frames) - 1
    picks = sorted(set(int(round(n * q)) for q in (0, 0.25, 0.5, 0.75, 1)))
    tiles = []
    for j, im in zip(picks, _to_u8([frames[j] for j in picks], valid)):
        im = cv2.resize(im, (side, side * im.shape[0] // im.shape[1]), interpolation=cv2.INTER_AREA)
        im = cv2.cvtColor(im, cv2.COLOR_GRAY2BGR)
        cv2.putText(im, f"{j}/{n}", (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 255, 255), 1, cv2.LINE_AA)
        tiles.append(im)
    gap = np.full((tiles[0].shape[0], 4, 3), 255, np.uint8)
    row = np.concatenate(sum([[t, gap] for t in tiles], [])[:-1], axis=1)
    head = np.full((26, row.shape[1], 3), 255, np.uint8)
    cv2.putText(head, label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    _imwrite(path, np.concatenate([head, row], axis=0))


def write_field_plot(path, x0, fields, valid, label, spacing=None, side=600):
    """x0 in grey with arrows of the whole interval's displacement (sum of the steps), scaled so that the
    95th percentile arrow is one grid spacing long; the scale is written on the plot."""
    import cv2

    h, w = x0.shape[-2:]
    total = fields.sum(axis=0)                                   # (2, H, W) pixels over the interval
    f = side / max(h, w)
    img = cv2.resize(_to_u8([x0], valid)[0], (int(w * f), int(h * f)), interpolation=cv2.INTER_AREA)
    img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    spacing = spacing or max(8, max(h, w) // 24)
    ys, xs = np.mgrid[spacing // 2:h:spacing, spacing // 2:w:spacing]
    keep = valid[ys, xs]
    u, v = total[0][ys, xs][keep], total[1][ys, xs][keep]
    ys, xs = ys[keep], xs[keep]
    mag = np.hypot(u, v)
    p95 = float(np.percentile(mag, 95)) if mag.size else 0.0
    k = spacing / p95 if p95 > 0 else 1.0
    for x, y, du, dv in zip(xs, ys, u, v):
        a = (int(x * f), int(y * f))
        b = (int((x + du * k) * f), int((y + dv * k) * f))
        cv2.arrowedLine(img, a, b, (0, 0, 255), 1, cv2.LINE_AA, tipLength=0.3)
    head = np.full((26, img.shape[1], 3), 255, np.uint8)
    cv2.putText(head, f"{label}; arrows x{k:.2f} (p95 {p95:.1f} px)", (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                (0, 0, 0), 1, cv2.LINE_AA)
    _imwrite(path, np.concatenate([head, img], axis=0))
    return float(mag.mean()) if mag.size else float("nan")


def _plan_iterations(cfg, rate, seconds, args):
    """The preset's schedule, capped by what ``seconds`` hold at ``rate`` iterations/s (multiples of 50 on
    CUDA, where the losses are read back every 50); tiny: the tiny count."""
    if args.tiny:
        return cfg.iterations
    if rate is None:
        rate = 5.0
    fit = int(max(seconds, 0) * rate * 0.85) // 50 * 50
    return int(min(cfg.iterations, max(fit, 50)))


def stage_training(args, clock, rows, report, dev):
    import dataclasses
    from model.baselines import interpolate
    from model.inference import advection_fields, generate_frames
    from model.training import train_pair

    data = report["_data"]
    seq, valid = data["fmi"], data["fmi_valid"]
    gap = len(seq) - 1
    x0, x1 = seq[0], seq[-1]
    out = report.setdefault("training", {})
    rates = {m: report.get("throughput", {}).get(m, {}).get("iterations_per_s") for m in ("accurate", "paper")}
    guard = clock.guard("training")
    runs = [("fmi", FMI_PRESET, m) for m in args.modes] + [("s1", p, "paper") for p in S1_PRESETS]
    for name in ("linear", "opticalflow"):
        t = time.perf_counter()
        s = heldout_scores(interpolate(name, x0, x1, gap, valid=valid), seq, valid)
        rows.append(("training", f"FMI baseline {name} (CPU, {time.perf_counter() - t:.1f} s)", _score_text(s)))
        out[f"fmi {name}"] = s
    for k, (pair, preset, mode) in enumerate(runs):
        what = f"{'FMI' if pair == 'fmi' else 'Sentinel-1'} {preset} {mode}"
        left = clock.left("training")
        if left < 10:
            rows.append(("training", what, "not run: stage budget spent"))
            continue
        if pair == "fmi":
            a, b, ok, steps = x0, x1, valid, gap
        else:
            a, b, ok, steps = data["s1"][0], data["s1"][1], data["s1_valid"], None
        cfg = _config(preset, mode, args, steps=steps)
        planned = _plan_iterations(cfg, rates.get(mode), left / (len(runs) - k) - 8, args)
        cfg = dataclasses.replace(cfg, iterations=planned)
        sched = _config(preset, mode, args).iterations
        said = []
        try:
            r = train_pair(a, b, ok, config=cfg, device=str(dev), seed=0, is_canceled=guard, log=said.append)
            if r.history:
                rate = cfg.iterations / max(r.seconds, 1e-6)
                rates[mode] = rate if rates.get(mode) is None else min(rates[mode], rate)
            t = time.perf_counter()
            frames = generate_frames(r.model, a, b, ok, device=str(dev))
            fields = advection_fields(r.model, a, b, ok, device=str(dev))
            t_inf = time.perf_counter() - t
        except Exception as e:  # noqa: BLE001
            rows.append(("training", what, _outcome(e)))
            continue
        losses = [h["loss"] for h in r.history]
        if losses:
            head = (f"{cfg.iterations}/{sched} it in {r.seconds:.1f} s (+{t_inf:.1f} s frames, fields), loss "
                    f"{losses[0]:.4g} -> {losses[-1]:.4g}")
            dropped = [t for t in said if t.startswith("Learned correction dropped")]
            if dropped:
                head += " (correction dropped: no better than the start)"
        else:   # the preset's guard kept the start untrained (train_pair says why)
            why = next((t for t in said if t.startswith("Not trained")), "not trained")
            head = f"0/{sched} it, {why.split(': ', 1)[-1]} ({r.seconds:.1f} s, +{t_inf:.1f} s frames)"
        entry = {"iterations": len(losses) and cfg.iterations, "schedule": sched, "seconds": r.seconds,
                 "inference_seconds": t_inf, "first_loss": losses[0] if losses else None,
                 "final_loss": losses[-1] if losses else None, "figures": r.figures, "log": said}
        slug = f"{pair}_{preset}_{mode}"
        mean_px = write_field_plot(Path(args.out) / f"{slug}_field.png", a, fields, ok, what)
        write_montage(Path(args.out) / f"{slug}_frames.png", frames, ok, what)
        entry["mean_displacement_px"] = mean_px
        if pair == "fmi":
            s = heldout_scores(frames, seq, ok)
            entry["scores"] = s
            rows.append(("training", what, f"{head}; {_score_text(s)}"))
        else:
            rows.append(("training", what, f"{head}; mean displacement {mean_px:.1f} px; {slug}_frames.png, "
                                           f"{slug}_field.png"))
        out[what] = entry
        _free(dev)


# ---------------------------------------------------------------------------------------------

def probe(args):
    """(torch module or None, device or None, why skipped or None)."""
    try:
        import torch
    except ImportError as e:
        return None, None, f"PyTorch is not installed for {sys.executable} ({e})"
    if args.device == "cpu":
        return torch, torch.device("cpu"), None
    if not torch.cuda.is_available():
        return torch, None, f"CUDA is not available (torch {torch.__version__}, {sys.executable})"
    return torch, torch.device("cuda"), None


def describe(torch, dev):
    import numpy

    if dev.type == "cuda":
        p = torch.cuda.get_device_properties(dev)
        card = f"{torch.cuda.get_device_name(dev)} ({p.total_memory / 2 ** 30:.0f} GiB), CUDA {torch.version.cuda}"
    else:
        card = f"CPU dry run ({platform.processor() or platform.machine()}, {os.cpu_count()} CPUs)"
    return (f"{card}; torch {torch.__version__}, Python {platform.python_version()}, numpy {numpy.__version__}")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"],
                    help="cuda (skips without CUDA) or cpu (a dry run of the code paths)")
    ap.add_argument("--tiny", action="store_true", help="tiny sizes and iteration counts (the dry run)")
    ap.add_argument("--inputs", default=str(REPO / "gpu-inputs"), help="folder written by make gpu-inputs")
    ap.add_argument("--out", default=str(REPO / "gpu-check-output"))
    ap.add_argument("--budget", type=float, default=BUDGET_S, help="seconds for all stages together")
    ap.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    ap.add_argument("--modes", nargs="+", default=["accurate", "paper"], choices=["accurate", "paper"])
    ap.add_argument("--levers", nargs="+", default=DEFAULT_LEVERS, choices=["shipped"] + list(LEVERS))
    ap.add_argument("--lever-modes", nargs="+", default=["paper"], choices=["accurate", "paper"],
                    help="modes the levers are tried on (paper: the whole network trains)")
    ap.add_argument("--iterations", type=int, default=100, help="timed iterations of train_pair (multiple of 50)")
    ap.add_argument("--ref-iterations", type=int, default=30, help="timed iterations of the reference")
    ap.add_argument("--ddp-iterations", type=int, default=200)
    ap.add_argument("--compile-on-cpu", action="store_true", help="try the torch.compile levers on a CPU too")
    ap.add_argument("--ddp-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.ddp_worker:
        return ddp_worker(args)

    torch, dev, why = probe(args)
    if why:
        print(f"gpu-check: skipped: {why}. Nothing was measured (run it on a CUDA machine, or "
              f"--device cpu --tiny for a dry run).", flush=True)
        return 0
    clock = Clock(args.budget, [s for s in STAGES if s in args.stages])
    Path(args.out).mkdir(parents=True, exist_ok=True)
    started = datetime.now(timezone.utc)
    title = (f"gpu-check {started:%Y-%m-%d %H:%M} UTC on {describe(torch, dev)}; "
             f"command: python -m bench.gpu_check {' '.join(argv if argv is not None else sys.argv[1:])}".rstrip())
    print(title, flush=True)
    try:
        data = load(args)
    except FileNotFoundError as e:
        print(f"gpu-check: {e}", flush=True)
        return 2
    report = {"title": title, "_data": data, "inputs": data["meta"]}
    rows = Rows(title, Path(args.out, "table.md"))
    for stage in STAGES:
        if stage not in args.stages:
            continue
        t = time.perf_counter()
        try:
            if stage == "tests":
                stage_tests(args, clock, rows, report)
            elif stage == "torchrun":
                stage_torchrun(args, clock, rows, report)
            elif stage == "profile":
                stage_profile(args, clock, rows, report, dev)
            elif stage == "throughput":
                stage_throughput(args, clock, rows, report, dev)
            else:
                stage_training(args, clock, rows, report, dev)
        except Exception as e:  # noqa: BLE001 (one stage failing must not hide the others)
            rows.append((stage, "stage", f"FAILED {_err(e)}"))
        print(f"gpu-check: {stage} done in {time.perf_counter() - t:.0f} s", flush=True)
    rows.append(("total", "wall time", f"{clock.elapsed():.0f} s (budget {args.budget:.0f} s)"))
    table = format_table(rows, title)
    print("\n" + table, flush=True)
    report.pop("_data")
    report["rows"] = rows
    Path(args.out, "table.md").write_text(table + "\n")
    Path(args.out, "gpu_check.json").write_text(json.dumps(report, indent=1, default=str))
    failed = any("FAILED" in r[2] for r in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
