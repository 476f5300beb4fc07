"""Reading, matching and scoring frames for inbetween:evaluate; the table and the plot."""
import csv
import os

import numpy as np

COLUMNS = ["method", "frame", "time", "reference", "mae", "rmse", "bias", "ssim", "pod", "far", "csi",
           "fss_1", "fss_4", "fss_16"]
FSS_SCALES = (1, 4, 16)  # neighbourhoods in pixels of the fractions skill score (with a THRESHOLD)


def _match(generated, references, match):
    """Pairs (generated path, reference path, time) matched by time stamp or by order."""
    from .raster_io import InputError
    from .times import read_time

    if match == "order":
        if len(generated) != len(references):
            raise InputError(f"Matching by order needs as many reference frames ({len(references)}) "
                             f"as generated frames ({len(generated)}).")
        return [(g, r, read_time(g)) for g, r in zip(generated, references)]
    ref_times = {}
    for r in references:
        t = read_time(r)
        if t is None:
            raise InputError(f"Reference {r} has no time in its metadata or name; match by order instead.")
        ref_times[t] = r
    pairs = []
    for g in generated:
        t = read_time(g)
        if t in ref_times:
            pairs.append((g, ref_times[t], t))
    if not pairs:
        raise InputError("No generated frame has the time of a reference frame; match by order instead.")
    return pairs


def evaluate_methods(methods, references, match="time", threshold=None, progress=None, log=None):
    """methods: {name: [frame paths]} → one row per (method, matched frame)."""
    from ..model.metrics import frame_scores, fss
    from .raster_io import InputError, read_raster

    matched = {name: _match(paths, references, match) for name, paths in methods.items()}
    total = sum(len(p) for p in matched.values())
    rows, done = [], 0
    for name, pairs in matched.items():
        if log:
            log(f"{name}: {len(pairs)} frame(s) matched with references")
        for j, (gen, ref, when) in enumerate(pairs):
            pred, pred_grid = read_raster(gen)
            truth, ref_grid = read_raster(ref, onto=pred_grid)
            if pred.shape != truth.shape:
                raise InputError(f"{gen} has {pred.shape[0]} band(s), {ref} has {truth.shape[0]}.")
            both = np.isfinite(pred).all(axis=0) & np.isfinite(truth).all(axis=0)
            if not both.any():
                raise InputError(f"{os.path.basename(gen)} and the reference {os.path.basename(ref)} share no valid "
                                 f"pixel (they do not overlap or one is all nodata), so they cannot be scored; "
                                 f"check that REFERENCE covers the generated frames' area.")
            scores = frame_scores(pred, truth, threshold=threshold)
            if threshold is not None:  # FSS of the exceedance, averaged over the bands
                for scale in FSS_SCALES:
                    scores[f"fss_{scale}"] = sum(fss(p, r, threshold, scale) for p, r in zip(pred, truth)) / len(pred)
            rows.append({"method": name, "frame": j, "time": when.isoformat() if when else "",
                         "reference": os.path.basename(ref),
                         **{k: scores.get(k) for k in COLUMNS[4:]}})
            done += 1
            if progress:
                progress(done, total)
    return rows


def write_table(rows, path):
    """CSV, or a GeoPackage attribute table (no geometry) when the path ends in .gpkg; complete or nothing."""
    partial = path + ".part"
    try:
        if path.lower().endswith(".gpkg"):
            from osgeo import ogr

            ds = ogr.GetDriverByName("GPKG").CreateDataSource(partial)
            layer = ds.CreateLayer("scores", geom_type=ogr.wkbNone)
            for col in COLUMNS:
                kind = ogr.OFTString if col in ("method", "time", "reference") else (
                    ogr.OFTInteger if col == "frame" else ogr.OFTReal)
                layer.CreateField(ogr.FieldDefn(col, kind))
            for row in rows:
                feature = ogr.Feature(layer.GetLayerDefn())
                for col in COLUMNS:
                    if row.get(col) is not None:
                        feature.SetField(col, row[col])
                layer.CreateFeature(feature)
            ds = None
        else:
            with open(partial, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=COLUMNS)
                writer.writeheader()
                for row in rows:
                    writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in COLUMNS})
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return path


def plot_scores(rows, path, metric="mae"):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        ax.plot([r["frame"] for r in mine], [r[metric] for r in mine], marker="o", ms=3, label=method)
    ax.set_xlabel("frame")
    ax.set_ylabel(metric.upper())
    ax.set_title(f"{metric.upper()} per frame against the references")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    partial = path + ".part.png"
    try:
        fig.savefig(partial, format="png")
        os.replace(partial, path)
    finally:
        plt.close(fig)
        if os.path.exists(partial):
            os.remove(partial)
    return path
