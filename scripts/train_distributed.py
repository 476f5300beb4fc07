#!/usr/bin/env python3
"""Train one In-between model from the command line, on one device or under torchrun on several.

    .venv/bin/python scripts/train_distributed.py FIRST.tif SECOND.tif --out pair.inbetween [--preset fast]
    .venv/bin/torchrun --nproc_per_node=4 scripts/train_distributed.py FIRST.tif SECOND.tif \\
        --out pair.inbetween --preset paper-example-1
    # several machines: torchrun --nnodes=2 --node_rank=0|1 --nproc_per_node=4 \\
    #     --rdzv_backend=c10d --rdzv_endpoint=HOST:29500 scripts/train_distributed.py ...

The rasters are read as the plugin's ``inbetween:train`` reads them (GDAL only, no QGIS: the second is
warped onto the first's grid when they differ, nodata masked) and the model file carries the same header,
so ``inbetween:generateframes`` and ``inbetween:exportfield`` use it like one trained in QGIS.  Under
torchrun every rank trains with DistributedDataParallel (model/distributed.py); the weights are checked
identical on all ranks at the end and only rank 0 writes the file.
"""
import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def parse(argv=None):
    from model.presets import PRESET_NAMES, MODE_NAMES

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("first")
    ap.add_argument("second")
    ap.add_argument("--out", required=True, help="model file to write (.inbetween)")
    ap.add_argument("--preset", default="fast", choices=PRESET_NAMES)
    ap.add_argument("--mode", default="accurate", choices=MODE_NAMES)
    ap.add_argument("--steps", type=int, default=10, help="advection steps N (frames 0..N)")
    ap.add_argument("--iterations", type=int, help="default: from the preset")
    ap.add_argument("--batch-size", type=int, help="patches per iteration and rank; default: from the preset")
    ap.add_argument("--patch-size", type=int, help="default: from the preset")
    ap.add_argument("--stride", type=int, help="patch stride in px; default: from the preset")
    ap.add_argument("--start-time", help="ISO time of FIRST (default: its metadata or file name)")
    ap.add_argument("--end-time", help="ISO time of SECOND (default: its metadata or file name)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--backend", choices=["nccl", "gloo"], help="default: nccl on GPUs, gloo on CPU")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--every", type=int, default=0, help="print the losses every N iterations (0: 20 times)")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse(argv)
    from model import distributed as D
    from model.modelfile import save_model
    from model.presets import make_config
    from model.training import train_pair
    from processing_provider.raster_io import read_pair
    from processing_provider.times import resolve_times

    info = D.init(args.device, args.backend)
    main_rank = info.rank == 0
    say = (lambda msg: print(msg, flush=True)) if main_rank else (lambda msg: None)
    try:
        t0, t1 = resolve_times(args.start_time, args.end_time, args.first, args.second)
        pair = read_pair(args.first, args.second)
        for warning in pair.warnings:
            say(f"warning: {warning}")
        cfg = make_config(args.preset, mode=args.mode, steps=args.steps, iterations=args.iterations,
                          batch_size=args.batch_size, patch_size=args.patch_size, stride=args.stride)
        every = args.every or max(1, cfg.iterations // 20)
        say(f"Training {cfg.preset} ({cfg.mode} mode) on {pair.grid.width}x{pair.grid.height} px, "
            f"{pair.x0.shape[0]} band(s), {t0.isoformat()} -> {t1.isoformat()}, "
            f"{info.world_size} process(es)")

        def progress(it, total, losses):
            if it % every == 0 or it == total:
                terms = ", ".join(f"{k} {v:.4g}" for k, v in losses.items() if isinstance(v, float))
                say(f"iteration {it}/{total}: {terms}")

        t_start = time.time()
        result = train_pair(pair.x0, pair.x1, pair.valid, config=cfg, device=info.device, seed=args.seed,
                            progress=progress, log=say)
        digests = D.check_in_sync(result.model)
        say(f"weights identical on all {len(digests)} rank(s): sha256 {digests[0]}")
        if main_rank:
            header = {"times": [t0.isoformat(), t1.isoformat()], "crs_wkt": pair.grid.crs_wkt,
                      "geotransform": list(pair.grid.geotransform) if pair.grid.geotransform else None,
                      "width": pair.grid.width, "height": pair.grid.height,
                      "band_count": int(pair.x0.shape[0]), "band_names": list(pair.grid.band_names),
                      "georeferenced": pair.grid.georeferenced,
                      "sources": [os.path.abspath(args.first), os.path.abspath(args.second)],
                      "world_size": info.world_size}
            result.figures["world_size"] = info.world_size
            result.figures["patches_per_iteration"] = info.world_size * cfg.batch_size
            save_model(args.out, result, header)
            say(f"Saved {args.out} ({time.time() - t_start:.1f} s)")
    finally:
        D.finish()
    return 0


if __name__ == "__main__":
    code = main()
    # The model is saved and the process group destroyed: leave without the interpreter's teardown, where
    # gloo's worker threads can still abort the process ("terminate called without an active exception",
    # seen once on rank 1 after a successful save under load; pytorch/pytorch#179291 describes the same
    # finalisation crash), which made torchrun report a failed run whose output was complete.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
