"""Streamed inference benchmark: seconds and peak RSS at 1×, 4×, 16× the pixel count, torch and ONNX.

16× is a whole 4963 × 7316 FMI composite pair (201609281445 → 201609281545, ../shared/data), 4× a
1/2 × 1/2 crop and 1× a 1/4 × 1/4 crop (crops are VRTs: windowed reads all the way).  A model is trained
quickly on a 512 × 512 crop (preset fast, ITERATIONS small), exported to ONNX, then each size runs in its
own subprocess (``ru_maxrss`` of that child = its peak RSS) through the same path as
``inbetween:generateframes``: raster_io.open_pair_windows → inference.iter_blocks → raster_io.FrameWriter.
GDAL's block cache is capped (GDAL_CACHEMAX=64 MB) so it does not hide in the figures.

    .venv/bin/python bench/inference.py [--steps 12] [--iterations 30] [--sizes 1,4,16] [--engines torch,onnx]

Skips (exit 0, with a message) when the FMI data is absent.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "fmi-radar-2016-09-28"
PAIR = ("201609281445_FINUTM.tif", "201609281545_FINUTM.tif")


def child(args):
    os.environ["GDAL_CACHEMAX"] = "64"
    sys.path[:0] = [str(ROOT.parent), str(ROOT / ".qgis-profile" / "python" / "plugins")]
    from inbetween.processing_provider.raster_io import FrameWriter, open_pair_windows
    from inbetween.model.inference import iter_blocks, TorchTileRunner

    t = time.time()
    if args.model.endswith(".onnx"):
        from inbetween.model.onnx_export import OnnxTileRunner
        runner = OnnxTileRunner(args.model, "auto")
    else:
        import torch
        from inbetween.model.modelfile import load_model
        torch.set_num_threads(os.cpu_count() or 1)
        runner = TorchTileRunner(load_model(args.model)[0], "auto")
    src = open_pair_windows(args.first, args.second)
    with FrameWriter(args.out, src.grid, None, runner.steps + 1) as w:
        for r, q, block in iter_blocks(runner, src, "frames"):
            w.write(r, q, block)
        w.commit()
    secs = time.time() - t
    print(json.dumps({"seconds": secs, "pixels": src.height * src.width,
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}))


def crop_vrt(src, path, frac):
    from osgeo import gdal

    ds = gdal.Open(src)
    w, h = int(ds.RasterXSize * frac), int(ds.RasterYSize * frac)
    x0, y0 = (ds.RasterXSize - w) // 2, (ds.RasterYSize - h) // 2
    gdal.Translate(path, ds, format="VRT", srcWin=[x0, y0, w, h])
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--model"), ap.add_argument("--first"), ap.add_argument("--second"), ap.add_argument("--out")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--sizes", default="1,4,16")
    ap.add_argument("--engines", default="torch,onnx")
    args = ap.parse_args()
    if args.child:
        return child(args)
    if not all((DATA / p).is_file() for p in PAIR):
        print(f"SKIP: FMI data absent ({DATA})")
        return
    sys.path[:0] = [str(ROOT)]
    import numpy as np
    from model.presets import make_config
    from model.training import train_pair
    from model.modelfile import save_model
    from model.onnx_export import export_onnx
    sys.path[:0] = [str(ROOT.parent), str(ROOT / ".qgis-profile" / "python" / "plugins")]
    from inbetween.processing_provider.raster_io import read_pair

    tmp = Path(tempfile.mkdtemp(prefix="bench-inference-"))
    first, second = (str(DATA / p) for p in PAIR)
    train = [crop_vrt(p, str(tmp / f"train{i}.vrt"), 512 / 4963) for i, p in enumerate((first, second))]
    pair = read_pair(*train)
    t = time.time()
    cfg = make_config("fast", "accurate", steps=args.steps, iterations=args.iterations)
    save_model(str(tmp / "m.inbetween"), train_pair(pair.x0, pair.x1, pair.valid, config=cfg, seed=0))
    diff = export_onnx(str(tmp / "m.inbetween"), str(tmp / "m.onnx"))
    print(f"trained {args.iterations} it on 512² crop + ONNX export in {time.time() - t:.0f} s; "
          f"ONNX vs torch max abs diff (normalised frames / px fields): {diff['frames']:.1e} / {diff['fields']:.1e}")
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        frac = {1: 0.25, 4: 0.5, 16: 1.0}[size]
        a, b = ((crop_vrt(p, str(tmp / f"s{size}_{i}.vrt"), frac) if frac < 1 else p)
                for i, p in enumerate((first, second)))
        for engine in args.engines.split(","):
            model = str(tmp / ("m.onnx" if engine == "onnx" else "m.inbetween"))
            res = subprocess.run([sys.executable, __file__, "--child", "--model", model, "--first", a,
                                  "--second", b, "--out", str(tmp / f"out{size}{engine}")],
                                 capture_output=True, text=True)
            if res.returncode:
                print(res.stderr[-2000:])
                continue
            r = json.loads(res.stdout.strip().splitlines()[-1])
            rows.append((f"{size}x", engine, r["pixels"], r["seconds"], r["rss_mb"]))
            print(f"{size:>3}x {engine:6s} {r['pixels']:>10d} px {r['seconds']:8.1f} s "
                  f"{r['rss_mb']:8.0f} MB peak RSS  ({r['seconds'] / r['pixels'] * 1e6:.2f} s/Mpx)", flush=True)
    print("\n| size | engine | pixels | seconds | peak RSS MB |\n|---|---|---|---|---|")
    for s, e, p, sec, rss in rows:
        print(f"| {s} | {e} | {p} | {sec:.1f} | {rss:.0f} |")


if __name__ == "__main__":
    main()
