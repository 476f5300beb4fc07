"""Quality benchmark on real radar: every method fills in held-out frames between two endpoints.

    .venv/bin/python -m bench.quality [--gap 12 6] [--start 0] [--crop XOFF YOFF W H] [--block 2]
                                      [--methods linear opticalflow ot imageadvection latent] [--json out.json]

Data: FMI radar composite of 2016-09-28 (``<repo>/../shared/data/fmi-radar-2016-09-28/*.tif``, 5-minute
GeoTIFFs, 250 m, uint8 with dBZ = 0.5 v - 32, 0 = no echo, 255 = nodata). Values are converted to dBZ with
a floor: "no echo" and anything below -10 dBZ become -10 dBZ; nodata becomes NaN. A crop (full-resolution
pixel window, read with GDAL at full resolution because the files' overviews are broken) is block-averaged
``--block`` times (2 -> 500 m pixels; a block touching nodata becomes NaN).

For each gap G (default 12 = 1 hour and 6 = 30 minutes) the frames ``start`` and ``start + G`` are the
endpoints and the G - 1 frames between are held out; every method makes G + 1 frames and is scored on
the held-out ones (mean over frames): MAE in dBZ, CSI at 20 dBZ, SSIM (data range 70 dB), and the
wall time of the method (training included for ``latent``). ``latent`` uses the core's API
(model.presets / model.training / model.inference) with the ``fast`` preset, and is skipped with a
message when that cannot be imported.
"""
import argparse
import glob
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "fmi-radar-2016-09-28"
FLOOR_DBZ = -10.0
THRESHOLD_DBZ = 20.0
SSIM_RANGE = 70.0
# A 256 km x 256 km window over the band of rain crossing south-central Finland that afternoon.
DEFAULT_CROP = (1536, 3840, 1024, 1024)
BASELINES = ["linear", "opticalflow", "ot", "imageadvection"]
ALL_METHODS = BASELINES + ["latent", "latent-paper"]
DEFAULT_METHODS = BASELINES + ["latent"]

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def list_frames(data_dir=DATA):
    return sorted(glob.glob(str(Path(data_dir) / "*.tif")))


def to_dbz(raw):
    """uint8 radar values -> float32 dBZ with the -10 dBZ floor, NaN for nodata."""
    raw = np.asarray(raw)
    dbz = np.maximum(0.5 * raw.astype(np.float32) - 32.0, FLOOR_DBZ)
    dbz[raw == 0] = FLOOR_DBZ
    dbz[raw == 255] = np.nan
    return dbz


def block_mean(a, block):
    if block <= 1:
        return a
    h, w = a.shape[0] // block * block, a.shape[1] // block * block
    return a[:h, :w].reshape(h // block, block, w // block, block).mean(axis=(1, 3))  # NaN propagates


def load_fmi_sequence(start=0, count=13, crop=DEFAULT_CROP, block=2, data_dir=DATA):
    """Frames ``start .. start+count-1`` as float32 dBZ (T, 1, H, W), their file names, and valid (H, W)."""
    from osgeo import gdal

    files = list_frames(data_dir)
    if len(files) < start + count:
        raise ValueError(f"need {start + count} frames in {data_dir}, found {len(files)}")
    xoff, yoff, w, h = crop
    frames = []
    for f in files[start:start + count]:
        ds = gdal.Open(f)
        raw = ds.GetRasterBand(1).ReadAsArray(int(xoff), int(yoff), int(w), int(h))
        ds = None
        frames.append(block_mean(to_dbz(raw), block))
    seq = np.stack(frames)[:, None].astype(np.float32)
    valid = np.isfinite(seq).all(axis=(0, 1))
    return seq, [Path(f).name for f in files[start:start + count]], valid


def run_method(name, x0, x1, steps, valid, seed=0, log=print):
    """Frames (steps+1, C, H, W) from ``name``: a baseline of model.baselines, ``latent`` (accurate mode) or
    ``latent-paper`` (the paper-faithful mode) of the core, trained on the pair with the fast preset."""
    if name in BASELINES:
        from model.baselines import interpolate

        return interpolate(name, x0, x1, steps, valid=valid)
    if name in ("latent", "latent-paper"):
        from model.presets import make_config
        from model.training import train_pair
        from model.inference import generate_frames

        mode = "paper" if name == "latent-paper" else "accurate"
        cfg = make_config("fast", mode=mode, steps=steps)
        result = train_pair(x0, x1, valid, config=cfg, device="cpu", seed=seed)
        return generate_frames(result.model, x0, x1, valid, device="cpu")
    raise ValueError(f"unknown method {name!r}; choose one of {', '.join(ALL_METHODS)}")


def latent_available():
    try:
        from model.presets import make_config  # noqa: F401
        from model.training import train_pair  # noqa: F401
        from model.inference import generate_frames  # noqa: F401
    except Exception as exc:  # missing module or broken import: skip, say why
        return f"{type(exc).__name__}: {exc}"
    return None


def score(frames, seq, valid):
    from model.metrics import frame_scores

    rows = [frame_scores(frames[j], seq[j], valid=valid, threshold=THRESHOLD_DBZ, data_range=SSIM_RANGE)
            for j in range(1, len(seq) - 1)]
    mean = lambda k: float(np.nanmean([r[k] for r in rows]))  # noqa: E731
    return {"mae": mean("mae"), "rmse": mean("rmse"), "bias": mean("bias"), "csi": mean("csi"),
            "pod": mean("pod"), "far": mean("far"), "ssim": mean("ssim"),
            "per_frame": [{k: r[k] for k in ("mae", "csi", "ssim")} for r in rows]}


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench.quality", description=__doc__.split("\n\n")[0])
    ap.add_argument("--gap", type=int, nargs="+", default=[12, 6], help="frames between endpoints (5 min each)")
    ap.add_argument("--start", type=int, default=0, help="index of the first endpoint in the sorted files")
    ap.add_argument("--crop", type=int, nargs=4, default=list(DEFAULT_CROP), metavar=("XOFF", "YOFF", "W", "H"),
                    help="full-resolution pixel window")
    ap.add_argument("--block", type=int, default=2, help="block averaging factor (2: 250 m -> 500 m)")
    ap.add_argument("--methods", nargs="+", default=DEFAULT_METHODS, choices=ALL_METHODS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write the results to this file")
    ap.add_argument("--data", default=str(DATA), help="folder of the radar GeoTIFFs")
    args = ap.parse_args(argv)

    if not list_frames(args.data):
        print(f"bench.quality: no radar data at {args.data}; skipping.")
        return 0
    methods = list(args.methods)
    if any(m.startswith("latent") for m in methods):
        why = latent_available()
        if why:
            print(f"bench.quality: latent model not importable ({why}); skipping it.")
            methods = [m for m in methods if not m.startswith("latent")]

    seq_all, names, valid_all = load_fmi_sequence(args.start, max(args.gap) + 1, tuple(args.crop), args.block,
                                                  args.data)
    results = []
    for gap in args.gap:
        seq = seq_all[:gap + 1]
        valid = np.isfinite(seq).all(axis=(0, 1))
        x0, x1 = seq[0], seq[-1]
        print(f"\n{names[0]} -> {names[gap]}: gap {gap * 5} min, {gap - 1} held-out frames, "
              f"{x0.shape[-2]}x{x0.shape[-1]} px at {250 * args.block} m, "
              f"{100 * np.mean(x0[0][valid] >= THRESHOLD_DBZ):.0f}% of pixels >= {THRESHOLD_DBZ:g} dBZ")
        print(f"{'method':<15}{'MAE dBZ':>9}{'CSI@20':>9}{'SSIM':>8}{'seconds':>9}")
        for m in methods:
            t0 = time.perf_counter()
            try:
                frames = run_method(m, x0, x1, gap, valid, seed=args.seed)
            except Exception as exc:
                print(f"{m:<15} failed: {type(exc).__name__}: {exc}")
                results.append({"gap": gap, "method": m, "error": f"{type(exc).__name__}: {exc}"})
                continue
            secs = time.perf_counter() - t0
            s = score(frames, seq, valid)
            print(f"{m:<15}{s['mae']:>9.2f}{s['csi']:>9.3f}{s['ssim']:>8.3f}{secs:>9.1f}", flush=True)
            results.append({"gap": gap, "minutes": gap * 5, "method": m, "seconds": secs,
                            "first": names[0], "last": names[gap], **s})
    if args.json:
        Path(args.json).write_text(json.dumps({"crop": args.crop, "block": args.block, "start": args.start,
                                               "floor_dbz": FLOOR_DBZ, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
