"""The inputs of bench/gpu_check.py as ``.npy`` files, so the check needs no GDAL where it runs.

    .venv/bin/python -m bench.gpu_inputs [--out gpu-inputs]            # make gpu-inputs (real data)
    .venv/bin/python -m bench.gpu_inputs --synthetic --size 96 --out D  # known-truth stand-in (tests)

Written into ``--out`` (about 21 MB, copy the folder along with the checkout):
- ``fmi_frames.npy``  float32 (13, 1, 512, 512): FMI radar 2016-09-28, frames 0..12 (14:45-15:45 UTC,
  5 minutes apart) of bench/quality.py's crop, read and converted exactly as the quality benchmark does
  (dBZ = 0.5 v - 32 floored at -10 dBZ, 250 m block-averaged to 500 m, NaN = no data).  Frames 0 and 12
  are the pair, the 11 between are the held-out truth.
- ``fmi_valid.npy``   bool (512, 512): finite in every frame.
- ``s1_pair.npy``     float32 (2, 1, 900, 900): the Sentinel-1 HH sigma0 sea-ice pair (grey level 0-255),
  2020-03-19 16:01 UTC and 2020-03-20 15:54 UTC.
- ``s1_valid.npy``    bool (900, 900): the PNGs' alpha > 0.
- ``inputs.json``     where each array came from, its units, times and shapes.
Files are written under temporary names and moved into place, so a half-written set is never read.
"""
import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DATA = REPO.parent / "shared" / "data"
S1_DIR = DATA / "sentinel1-sea-ice-2020-03"
S1_FILES = ("Sentinel1_HH_Sigma0_2020-03-19T16_01Z.png", "Sentinel1_HH_Sigma0_2020-03-20T15_54Z.png")
FMI_GAP = 12
FMI_CROP = (1536, 3840, 1024, 1024)  # xoff, yoff, width, height in the FMI files' 250 m pixels: the rain band
FILES = ("fmi_frames.npy", "fmi_valid.npy", "s1_pair.npy", "s1_valid.npy", "inputs.json")


def fmi_inputs():
    """(frames (13, 1, 512, 512) float32 dBZ, valid (512, 512), description dict) from the FMI GeoTIFFs."""
    from bench.cases import FLOOR_DBZ, read_sequence

    seq, names, valid = read_sequence("fmi", 0, FMI_GAP + 1, FMI_CROP[1], FMI_CROP[0], FMI_CROP[3], FMI_CROP[2],
                                      block=2)
    return seq, valid, {"source": "fmi-radar-2016-09-28", "files": names, "crop_xoff_yoff_w_h": list(FMI_CROP),
                        "block": 2, "pixel_m": 500, "units": "dBZ", "floor_dbz": FLOOR_DBZ,
                        "minutes_between_frames": 5, "pair": [0, FMI_GAP], "held_out": list(range(1, FMI_GAP))}


def s1_inputs():
    """(pair (2, 1, 900, 900) float32 grey levels, valid, description) from the two sea-ice PNGs (GDAL)."""
    from osgeo import gdal

    arrays, masks = [], []
    for name in S1_FILES:
        ds = gdal.Open(str(S1_DIR / name))
        if ds is None:
            raise FileNotFoundError(f"cannot read {S1_DIR / name}")
        rgba = ds.ReadAsArray()                     # (4, H, W): grey in R = G = B, alpha
        ds = None
        arrays.append(rgba[0].astype(np.float32))
        masks.append(rgba[3] > 0 if rgba.shape[0] == 4 else np.ones(rgba.shape[1:], bool))
    pair = np.stack(arrays)[:, None]
    return pair, masks[0] & masks[1], {"source": "sentinel1-sea-ice-2020-03", "files": list(S1_FILES),
                                       "units": "grey level 0-255 (HH sigma0)", "georeferenced": False,
                                       "times": ["2020-03-19T16:01:00+00:00", "2020-03-20T15:54:00+00:00"]}


def synthetic_inputs(size=96, gap=FMI_GAP, seed=0):
    """A known-truth stand-in with the same layout: a translated rain-like field in place of the radar
    (dBZ-like values, gap+1 frames) and a translated texture in place of the sea ice."""
    from model.synthetic import translation_pair

    _, _, truth, _ = translation_pair(size, size, dx=6.0, dy=-4.0, steps=gap, seed=seed)
    fmi = np.asarray(truth, np.float32)                       # rain_field: dBZ in [-10, 55]
    a, b, _, _ = translation_pair(size, size, dx=-3.0, dy=2.0, steps=1, seed=seed + 1)
    s1 = ((np.stack([a, b]) + 10.0) * (255.0 / 65.0)).astype(np.float32)
    ok = np.ones((size, size), bool)
    return (fmi, ok, {"source": "synthetic translation (model/synthetic.py)", "units": "dBZ-like",
                      "pair": [0, gap], "held_out": list(range(1, gap))},
            s1, ok.copy(), {"source": "synthetic translation (model/synthetic.py)", "units": "grey level"})


def write_inputs(folder, fmi, fmi_valid, fmi_meta, s1, s1_valid, s1_meta):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"fmi_frames.npy": np.asarray(fmi, np.float32), "fmi_valid.npy": np.asarray(fmi_valid, bool),
              "s1_pair.npy": np.asarray(s1, np.float32), "s1_valid.npy": np.asarray(s1_valid, bool)}
    meta = {"fmi": dict(fmi_meta, shape=list(arrays["fmi_frames.npy"].shape)),
            "s1": dict(s1_meta, shape=list(arrays["s1_pair.npy"].shape))}
    try:
        for name, arr in arrays.items():
            with open(folder / (name + ".tmp"), "wb") as f:
                np.save(f, arr)
        (folder / "inputs.json.tmp").write_text(json.dumps(meta, indent=1))
        for name in FILES:
            os.replace(folder / (name + ".tmp"), folder / name)
    finally:
        for name in FILES:
            (folder / (name + ".tmp")).unlink(missing_ok=True)
    return {name: (folder / name).stat().st_size for name in FILES}


def read_inputs(folder):
    """The arrays and description written by write_inputs (numpy only); FileNotFoundError names the
    command that makes them."""
    folder = Path(folder)
    missing = [n for n in FILES if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} lacks {', '.join(missing)}: run `make gpu-inputs` (on a machine with "
                                "the project's .venv and ../shared/data) and copy the folder along")
    load = lambda n: np.load(folder / n, allow_pickle=False)  # noqa: E731
    return {"fmi": load("fmi_frames.npy"), "fmi_valid": load("fmi_valid.npy"), "s1": load("s1_pair.npy"),
            "s1_valid": load("s1_valid.npy"), "meta": json.loads((folder / "inputs.json").read_text())}


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench.gpu_inputs", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(REPO / "gpu-inputs"))
    ap.add_argument("--synthetic", action="store_true", help="known-truth stand-in, no data needed")
    ap.add_argument("--size", type=int, default=96, help="side of the synthetic inputs")
    args = ap.parse_args(argv)
    if args.synthetic:
        sizes = write_inputs(args.out, *synthetic_inputs(args.size))
    else:
        from bench.cases import list_frames

        if not list_frames() or not S1_DIR.is_dir():
            print(f"gpu-inputs: the real data is not at {DATA} (fmi-radar-2016-09-28, sentinel1-sea-ice-2020-03); "
                  "nothing written (--synthetic makes a stand-in)")
            return 1
        fmi, fv, fm = fmi_inputs()
        s1, sv, sm = s1_inputs()
        sizes = write_inputs(args.out, fmi, fv, fm, s1, sv, sm)
    total = sum(sizes.values())
    print(f"gpu-inputs: wrote {len(sizes)} files, {total / 1e6:.1f} MB, to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
