"""Quality benchmark: every method fills in the held-out frames of many cases; one table of scores.

    make bench-quality          (= .venv/bin/python -m bench.quality)
    .venv/bin/python -m bench.quality [--methods linear opticalflow pysteps-lk accurate:iterations=0 accurate]
        [--seeds 0 1 2] [--cases fmi mch syn-floe-split ...] [--quick] [--jobs 2] [--per-case] [--json out.json]

Cases (bench/cases.py): crops of two real radar sequences (FMI 250 m / 500 m / 1 km, gaps of 15-60 min;
MeteoSwiss 1 km) and synthetic cases with a known truth (large displacement of a textured field and of a
binary shape, rotation, a floe splitting into drifting pieces, growth and decay, inflow and outflow).
For each, the first and last frames are the pair and every frame in between is held out as the truth.
Scores (bench/scores.py) per case over the held-out frames: MAE, RMSE, bias, CSI at 10/20/30 dBZ (binary
cases: CSI at 0.5 in the CSI20 column), FSS at 1/4/16 px (20 dBZ; 0.5 binary), the intensity kept (the
worst lead's ratio of domain mean and of 99th percentile to the truth's), SSIM, IoU (binary cases).

Methods: the baselines of model/baselines.py by name, and the latent model by mode with config overrides,
e.g. ``accurate``, ``accurate:iterations=0`` (the untrained start), ``paper``,
``accurate:iterations=100:lambda_cons=1.0`` (preset from ``--preset``, default fast). Learned methods run
once per ``--seeds`` value; their "±seed" row is the spread (standard deviation) over seeds of the mean over
cases. The table gives, per method, the mean over cases and the worst case of each column.
Loaded cases are cached in bench-output/cases.npz.
"""
import argparse
import ast
import fnmatch
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import cases as C  # noqa: E402
from bench.scores import BETTER, worst_over  # noqa: E402

DEFAULT_METHODS = ["linear", "opticalflow", "pysteps-lk", "accurate:iterations=0", "accurate"]
LATENT_MODES = ("accurate", "paper")
COLUMNS = [("mae", "MAE", 2), ("rmse", "RMSE", 2), ("bias", "bias", 2), ("csi10", "CSI10", 3),
           ("csi20", "CSI20", 3), ("csi30", "CSI30", 3), ("fss1", "FSS1", 3), ("fss4", "FSS4", 3),
           ("fss16", "FSS16", 3), ("mean_kept", "mean×", 2), ("p99_kept", "p99×", 2), ("ssim", "SSIM", 3),
           ("iou", "IoU", 3)]


# ------------------------------------------------------------------------------------------- methods
def parse_method(spec):
    """'accurate:iterations=0:lr=0.002' -> ('accurate', {'iterations': 0, 'lr': 0.002})."""
    name, *items = spec.split(":")
    overrides = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"method {spec!r}: override {item!r} is not key=value")
        k, v = item.split("=", 1)
        try:
            overrides[k] = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            overrides[k] = v
    return name, overrides


def is_learned(spec):
    return parse_method(spec)[0] in LATENT_MODES


def check_methods(specs, preset):
    from model.baselines import METHODS

    for spec in specs:
        name, overrides = parse_method(spec)
        if name in LATENT_MODES:
            from model.presets import make_config

            make_config(preset, name, **overrides)  # unknown overrides fail now, not after an hour
        elif name not in METHODS:  # a baseline's :key=value options (e.g. ot:ot_size=64) go to interpolate
            raise SystemExit(f"unknown method {spec!r}: choose from {', '.join(METHODS)}, "
                             f"or a latent mode {LATENT_MODES} with :key=value overrides")


def run_method(spec, x0, x1, steps, valid, seed=0, preset="fast", device="cpu"):
    """Frames (steps+1, C, H, W) of the method ``spec`` for the pair (a latent mode trained and run on
    ``device``)."""
    name, overrides = parse_method(spec)
    if name in LATENT_MODES:
        from model.inference import generate_frames
        from model.presets import make_config
        from model.training import train_pair

        cfg = make_config(preset, name, steps=steps, **overrides)
        result = train_pair(x0, x1, valid, config=cfg, device=device, seed=seed)
        return generate_frames(result.model, x0, x1, valid, device=device)
    from model.baselines import interpolate

    return interpolate(name, x0, x1, steps, valid=valid, **overrides)


# --------------------------------------------------------------------------------------------- tasks
_CASES = {}


def _init_worker(names, data, cache=C.CACHE):
    import warnings

    warnings.filterwarnings("ignore", message="Valid PROJ data directory")  # Debian's pyproj, via pysteps
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    _CASES.update(C.load_cases(names, data=data, cache=cache, log=lambda s: None))


def run_task(task):
    case_name, spec, seed, preset, units, device = task
    from bench.scores import case_scores

    case = _CASES[case_name]
    seq, valid = case["seq"], case["valid"]
    given, back = C.UNITS[units] if case["kind"] == "radar" else (None, None)
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        if given is None:
            frames = run_method(spec, seq[0], seq[-1], len(seq) - 1, valid, seed=seed, preset=preset,
                                device=device)
        else:  # the method sees the pair in other units; its frames are scored back in dBZ
            frames = back(run_method(spec, given(seq[0]), given(seq[-1]), len(seq) - 1, valid, seed=seed,
                                     preset=preset, device=device))
        scores = case_scores(frames, seq, valid, case["kind"])
        error = None
    except Exception as exc:  # one failing method or case must not lose the others
        scores, error = {}, f"{type(exc).__name__}: {exc}"
    return {"case": case_name, "method": spec, "seed": seed, "seconds": time.perf_counter() - t0,
            "cpu_seconds": time.process_time() - c0, "error": error, **scores}


def _cost(task):
    name, overrides = parse_method(task[1])
    if name in LATENT_MODES:
        return 3 if overrides.get("iterations", 1) != 0 else 2
    return 1 if name in ("linear", "opticalflow") else 2


def run_all(case_names, methods, seeds, preset, jobs, data, cache=C.CACHE, log=print, partial=None, units="dBZ",
            device="cpu"):
    """Every (case, method, seed) result; ``partial``: a file that gets the results so far after each one;
    ``units``: how the radar cases are given to the methods (bench/cases.py UNITS); ``device``: where the
    latent modes train and run."""
    tasks = [(c, m, s, preset, units, device) for c in case_names for m in methods
             for s in (seeds if is_learned(m) else seeds[:1])]
    # case by case (an interrupted run has whole cases), the long methods first within each
    tasks.sort(key=lambda t: (case_names.index(t[0]), -_cost(t)))
    results = []
    t0 = time.perf_counter()

    def done(r):
        results.append(r)
        if partial:
            Path(partial).write_text(json.dumps(results, default=float))
        what = f"error {r['error']}" if r["error"] else f"MAE {r['mae']:.2f} CSI20 {r['csi20']:.3f}"
        log(f"[{len(results)}/{len(tasks)} {time.perf_counter() - t0:6.0f} s] {r['case']} {r['method']} "
            f"seed {r['seed']}: {what} ({r['seconds']:.1f} s, CPU {r['cpu_seconds']:.1f} s)")

    if jobs <= 1:
        _init_worker(case_names, data, cache)
        for t in tasks:
            done(run_task(t))
    else:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(jobs, initializer=_init_worker, initargs=(case_names, data, cache)) as pool:
            for r in pool.imap_unordered(run_task, tasks):
                done(r)
    return results, time.perf_counter() - t0


# ------------------------------------------------------------------------------------------- summary
def summarise(results, methods, case_names):
    """Per method: per-case scores (mean over seeds), mean over cases, seed spread, worst case per column."""
    out = {}
    for m in methods:
        mine = [r for r in results if r["method"] == m and not r["error"]]
        seeds = sorted({r["seed"] for r in mine})
        per_case = {}
        for c in case_names:
            rows = [r for r in mine if r["case"] == c]
            if rows:
                per_case[c] = {k: float(np.nanmean([r.get(k, np.nan) for r in rows])) if any(
                    np.isfinite(r.get(k, np.nan)) for r in rows) else float("nan") for k, *_ in COLUMNS}
                for k in ("mae", "csi20", "fss4"):  # seed noise per case, for the comparisons
                    per_case[c][k + "_sd"] = float(np.nanstd([r.get(k, np.nan) for r in rows])) if len(rows) > 1 else 0.0
                per_case[c]["seconds"] = float(np.mean([r["seconds"] for r in rows]))
                per_case[c]["cpu_seconds"] = float(np.mean([r["cpu_seconds"] for r in rows]))
        names = list(per_case)
        mean = {k: _nanmean([per_case[c][k] for c in names]) for k, *_ in COLUMNS + [("seconds",), ("cpu_seconds",)]}
        worst, worst_case = {}, {}
        for k, *_ in COLUMNS:
            v, i = worst_over([per_case[c][k] for c in names], k)
            worst[k], worst_case[k] = v, (names[i] if i is not None else None)
        spread = {}
        if len(seeds) > 1:
            full = {c for c in names if {r["seed"] for r in mine if r["case"] == c} == set(seeds)}
            for k, *_ in COLUMNS:  # over the cases every seed has (a partial run may lack some)
                by_seed = [_nanmean([r.get(k, np.nan) for r in mine if r["seed"] == s and r["case"] in full])
                           for s in seeds]
                spread[k] = float(np.nanstd(by_seed)) if np.isfinite(by_seed).any() else float("nan")
        errors = [f"{r['case']} seed {r['seed']}: {r['error']}" for r in results if r["method"] == m and r["error"]]
        out[m] = {"cases": len(names), "seeds": seeds, "mean": mean, "spread": spread, "worst": worst,
                  "worst_case": worst_case, "per_case": per_case, "errors": errors}
    return out


def compare(summary, base, keys=("mae", "csi20", "fss4")):
    """Lines: for every method, on how many cases it beats ``base`` / loses to it beyond seed noise
    (twice the larger per-case seed spread, at least 0.01 dBZ or 0.005)."""
    if base not in summary:
        return []
    lines = []
    for m, s in summary.items():
        if m == base:
            continue
        parts = []
        for k in keys:
            better = worse = same = 0
            for c, row in s["per_case"].items():
                ref = summary[base]["per_case"].get(c)
                if ref is None or not (np.isfinite(row[k]) and np.isfinite(ref[k])):
                    continue
                tol = max(2 * max(row[k + "_sd"], ref[k + "_sd"]), 0.01 if k == "mae" else 0.005)
                gain = (ref[k] - row[k]) if BETTER[k] == "low" else (row[k] - ref[k])
                better += gain > tol
                worse += gain < -tol
                same += abs(gain) <= tol
            parts.append(f"{k.upper()} {better}/{worse}/{same}")
        lines.append(f"{m} vs {base}: cases better/worse/same beyond seed noise: " + ", ".join(parts))
    return lines


def _nanmean(values):
    v = np.asarray(values, dtype=np.float64)
    return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")


def _fmt(v, digits):
    return "—" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"


def format_table(summary):
    width = max([len(m) for m in summary] + [24]) + 8
    head = f"{'method':<{width}}{'cases':>6}" + "".join(f"{label:>8}" for _, label, _ in COLUMNS) + f"{'s/case':>8}{'CPU s':>7}"
    lines = [head, "-" * len(head)]
    for m, s in summary.items():
        lines.append(f"{m + ' mean':<{width}}{s['cases']:>6}"
                     + "".join(f"{_fmt(s['mean'][k], d):>8}" for k, _, d in COLUMNS)
                     + f"{_fmt(s['mean']['seconds'], 1):>8}{_fmt(s['mean']['cpu_seconds'], 1):>7}")
        if s["spread"]:
            lines.append(f"{m + ' ±seed (' + str(len(s['seeds'])) + ')':<{width}}{'':>6}"
                         + "".join(f"{_fmt(s['spread'][k], d):>8}" for k, _, d in COLUMNS))
        lines.append(f"{m + ' worst':<{width}}{'':>6}" + "".join(f"{_fmt(s['worst'][k], d):>8}" for k, _, d in COLUMNS)
                     + f"  {s['worst_case'].get('csi20') or ''}")
    lines.append("mean: over cases (seed-mean for learned methods); ±seed: std over seeds of that mean; worst: "
                 "the worst case per column (name: worst CSI20). mean×, p99×: worst lead's ratio to the truth.\n"
                 "s/case, CPU s: wall and CPU seconds per case and seed (training included; CPU s is what a "
                 "shared machine does not inflate).")
    return "\n".join(lines)


def format_per_case(summary, case_names, keys=("mae", "csi20", "fss4", "mean_kept", "p99_kept", "iou")):
    lines = []
    labels = {k: lab for k, lab, _ in COLUMNS}
    digits = {k: d for k, _, d in COLUMNS}
    head = f"{'case':<24}{'method':<32}" + "".join(f"{labels[k]:>8}" for k in keys)
    lines += [head, "-" * len(head)]
    for c in case_names:
        for m, s in summary.items():
            row = s["per_case"].get(c)
            if row:
                lines.append(f"{c:<24}{m:<32}" + "".join(f"{_fmt(row[k], digits[k]):>8}" for k in keys))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- main
def select_cases(patterns, quick, heldout=False):
    names = list(C.HELDOUT if heldout else C.QUICK if quick else C.ALL)
    if patterns:
        pool = (C.ALL + C.HELDOUT + list(C.FLOES) + list(C.WHOLE) + C.MORE_SYNTHETIC + list(C.LARGE_MOTION)
                + list(C.RANDOM))
        names = [n for n in pool if any(fnmatch.fnmatch(n, p) or n.startswith(p) for p in patterns)]
        if not names:
            raise SystemExit(f"no case matches {patterns}; cases: {', '.join(pool)}")
    return names


def report(path, per_case=False, versus=None):
    data = json.loads(Path(path).read_text())
    results = data["results"] if isinstance(data, dict) else data
    methods = list(dict.fromkeys(r["method"] for r in results))
    methods = data["methods"] if isinstance(data, dict) else sorted(methods, key=is_learned)
    seeds = {r["seed"] for r in results if is_learned(r["method"])} or {0}
    want = {(m, s) for m in methods for s in (seeds if is_learned(m) else [min(seeds)])}
    complete = [c for c in dict.fromkeys(r["case"] for r in results)
                if {(r["method"], r["seed"]) for r in results if r["case"] == c} >= want]
    if len(complete) < len({r["case"] for r in results}):
        print(f"(a partial run: the {len(complete)} case(s) that every method and seed has finished)")
    results = [r for r in results if r["case"] in complete]
    names = list(dict.fromkeys(r["case"] for r in results))
    summary = summarise(results, methods, names)
    if per_case:
        print(format_per_case(summary, names) + "\n")
    print(format_table(summary))
    print("\n".join(compare(summary, versus)))
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench.quality", description=__doc__.split("\n\n")[0])
    ap.add_argument("--methods", nargs="+", default=DEFAULT_METHODS)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the learned methods")
    ap.add_argument("--cases", nargs="+", help="case names, prefixes or glob patterns (default: all)")
    ap.add_argument("--quick", action="store_true", help=f"only {', '.join(C.QUICK)}")
    ap.add_argument("--heldout", action="store_true", help="only the held-out radar crops (bench/cases.py "
                    "HELDOUT: to check a change on data it was not tuned to, never to choose one)")
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="processes (one thread each)")
    ap.add_argument("--per-case", action="store_true", help="also a table of key scores per case")
    ap.add_argument("--json", help="write every result and the summary to this file")
    ap.add_argument("--data", default=str(C.DATA), help="folder holding the radar data folders")
    ap.add_argument("--cache", default=str(C.CACHE), help="the cases' cache file (.npz)")
    ap.add_argument("--versus", default="accurate:iterations=0",
                    help="the method every other one is compared with case by case (default: the untrained start)")
    ap.add_argument("--units", default="dBZ", choices=list(C.UNITS),
                    help="the radar cases given to every method as dBZ (default), as rain rate (mm/h, "
                         "Marshall-Palmer), or with no echo as -32 dBZ; frames are scored back in dBZ")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                    help="where the latent modes train and run (cuda: every job on the one card)")
    ap.add_argument("--report", metavar="JSON", help="only print the table of an earlier run's --json file "
                    "(or of its .part file, written while a run goes on)")
    args = ap.parse_args(argv)
    if args.report:
        return report(args.report, args.per_case, args.versus)

    check_methods(args.methods, args.preset)
    if args.device == "cuda" and any(map(is_learned, args.methods)):
        from model.device import resolve_device

        try:
            resolve_device("cuda")   # no card: said now, not once per task after the cases load
        except ValueError as exc:
            raise SystemExit(f"--device cuda: {exc}")
    names = select_cases(args.cases, args.quick, args.heldout)
    cases = C.load_cases(names, data=args.data, cache=args.cache)  # builds the cache once, before the workers read it
    names = [n for n in names if n in cases]
    if not names:
        print("bench.quality: no case could be loaded.")
        return 1
    print(f"{len(names)} cases, methods {' '.join(args.methods)}, seeds {args.seeds}, preset {args.preset}, "
          f"{args.jobs} job(s), radar given as {args.units}, latent modes on {args.device}", flush=True)
    partial = args.json + ".part" if args.json else None
    results, wall = run_all(names, args.methods, args.seeds, args.preset, args.jobs, args.data, args.cache,
                            log=lambda s: print(s, flush=True), partial=partial, units=args.units,
                            device=args.device)
    summary = summarise(results, args.methods, names)
    print()
    if args.per_case:
        print(format_per_case(summary, names) + "\n")
    print(format_table(summary))
    print("\n".join(compare(summary, args.versus)))
    for m, s in summary.items():
        for e in s["errors"]:
            print(f"{m} failed on {e}")
    print(f"wall time {wall:.0f} s with {args.jobs} job(s); {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({
            "command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()),
            "wall_seconds": wall, "device": args.device, "units": args.units, "preset": args.preset,
            "seeds": args.seeds, "methods": args.methods,
            "cases": {n: {"kind": cases[n]["kind"], "about": cases[n]["about"], "frames": len(cases[n]["seq"]),
                          "shape": list(cases[n]["seq"].shape[-2:])} for n in names},
            "summary": summary, "results": results}, indent=1, default=float))
        Path(partial).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
