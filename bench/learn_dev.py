"""Development harness for issue 10 (training must beat its start): a few hard cases, untrained vs trained.

    OMP_NUM_THREADS=1 .venv/bin/python bench/learn_dev.py --methods accurate:iterations=0 accurate
"""
import argparse
import glob
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import numpy as np  # noqa: E402

DATA = os.path.join(ROOT, "..", "shared", "data")
CACHE = os.path.join(ROOT, "bench-output", "learn_dev_cases.npz")


def _block(a, f):
    if f == 1:
        return a
    h, w = (a.shape[0] // f) * f, (a.shape[1] // f) * f
    d = a[:h, :w].reshape(h // f, f, w // f, f)
    with np.errstate(all="ignore"):
        return np.nanmean(d, axis=(1, 3)).astype(np.float32)


def fmi(r0, c0, size, block, start, gap):
    from osgeo import gdal
    files = sorted(glob.glob(os.path.join(DATA, "fmi-radar-2016-09-28", "*.tif")))[start:start + gap + 1]
    out = []
    for f in files:
        ds = gdal.Open(f)
        a = ds.GetRasterBand(1).ReadAsArray(c0, r0, size, size).astype(np.float32)
        ds = None
        nod = a == 255
        d = np.maximum(0.5 * a - 32.0, 0.0)
        d[nod] = np.nan
        out.append(_block(d, block))
    return np.stack(out)


def mch(r0, c0, size, start, gap):
    from osgeo import gdal
    files = sorted(glob.glob(os.path.join(DATA, "mch-radar-2016-07-11", "*.tif")))[start:start + gap + 1]
    out = []
    for f in files:
        ds = gdal.Open(f)
        a = ds.GetRasterBand(1).ReadAsArray(c0, r0, size, size).astype(np.float32)
        ds = None
        a[a <= -9999] = np.nan
        out.append(np.maximum(a, 0.0))
    return np.stack(out)


def cases():
    if os.path.exists(CACHE):
        z = np.load(CACHE)
        return {k: z[k] for k in z.files}
    cs = {
        "mch-a-60": mch(64, 96, 512, 0, 12),
        "mch-b-60": mch(64, 96, 512, 18, 12),
        "mch-c-30": mch(64, 96, 512, 27, 6),
        "fmi-500m-60": fmi(3904, 1600, 1024, 2, 0, 12),
        "fmi-1km-60": fmi(2432, 1152, 2048, 4, 20, 12),
    }
    os.makedirs(os.path.dirname(CACHE), exist_ok=True)
    np.savez_compressed(CACHE, **cs)
    return cs


def scores(pred, truth, valid):
    rows = []
    for p, t in zip(pred, truth):
        p, t = p[valid], t[valid]
        d = p - t
        r = {"mae": np.abs(d).mean(), "rmse": np.sqrt((d ** 2).mean()), "bias": d.mean(),
             "mean_ratio": p.mean() / max(t.mean(), 1e-6),
             "p99_ratio": np.percentile(p, 99) / max(np.percentile(t, 99), 1e-6)}
        for th in (10, 20, 30):
            P, T = p >= th, t >= th
            h, fa, mi = (P & T).sum(), (P & ~T).sum(), (~P & T).sum()
            r[f"csi{th}"] = h / max(h + fa + mi, 1)
        rows.append(r)
    out = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    out["mean_ratio_worst"] = float(min((r["mean_ratio"] for r in rows), key=lambda v: -abs(v - 1)))
    out["p99_ratio_worst"] = float(min((r["p99_ratio"] for r in rows), key=lambda v: -abs(v - 1)))
    return out


def run(method, seq, seed, iterations):
    x0, x1 = seq[0][None], seq[-1][None]
    n = len(seq) - 1
    valid = np.all(np.isfinite(seq), axis=0)
    name, *kv = method.split(":")
    if name in ("linear", "opticalflow", "ot", "imageadvection"):
        from model.baselines import interpolate
        out = interpolate(name, x0, x1, n, valid)
    else:
        from model.presets import make_config
        from model.training import train_pair
        from model.inference import generate_frames
        extra = {}
        for item in kv:
            k, v = item.split("=")
            extra[k] = v if v.isalpha() and v not in ("True", "False") else eval(v)
        extra.setdefault("iterations", iterations)
        cfg = make_config("fast", name, steps=n, **extra)
        r = train_pair(x0, x1, valid, config=cfg, seed=seed)
        if "residual_kept" in r.figures:
            print(f"  guard: kept={r.figures['residual_kept']} start={r.figures['misfit_start']:.5f} "
                  f"trained={r.figures['misfit_trained']:.5f}", flush=True)
        out = generate_frames(r.model, x0, x1, valid)
    return scores([out[j, 0] for j in range(1, n)], seq[1:-1], valid)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--methods", nargs="+", default=["accurate:iterations=0", "accurate"])
    ap.add_argument("--cases", nargs="*")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--iterations", type=int, default=None)
    args = ap.parse_args()
    cs = cases()
    keys = ["mae", "rmse", "bias", "csi10", "csi20", "csi30", "mean_ratio_worst", "p99_ratio_worst"]
    print("| case | method | " + " | ".join(keys) + " | s |")
    for cname, seq in cs.items():
        if args.cases and cname not in args.cases:
            continue
        for m in args.methods:
            t = time.time()
            s = run(m, seq, args.seed, args.iterations)
            print(f"| {cname} | {m} | " + " | ".join(f"{s[k]:.3f}" for k in keys) + f" | {time.time() - t:.0f} |",
                  flush=True)


if __name__ == "__main__":
    main()
