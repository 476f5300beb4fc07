"""Reading what the algorithms share: the pair and its times, the model file (torch or ONNX), the frame times."""
import os

from . import params as P


def chosen_bands(alg, parameters, context):
    """The 1-based bands of BANDS (all when empty or when the algorithm has no BANDS)."""
    if alg.parameterDefinition("BANDS") is None or parameters.get("BANDS") in (None, "", []):
        return None
    return sorted(set(int(b) for b in alg.parameterAsInts(parameters, "BANDS", context))) or None


def pair_paths(alg, parameters, context, recorded=None):
    """FIRST's and SECOND's paths (where left empty: ``recorded``, the training pair a model file names);
    InputError when they are the same file (nothing moves between them)."""
    from .raster_io import InputError

    recorded = list(recorded or [None, None])
    first = P.layer_path(alg, parameters, "FIRST", context, recorded[0])
    second = P.layer_path(alg, parameters, "SECOND", context, recorded[1])
    if first == second or (os.path.exists(first) and os.path.exists(second) and os.path.samefile(first, second)):
        raise InputError(f"FIRST and SECOND are the same file ({first}); give the images taken at t0 and t1.")
    return first, second


def pair_and_times(alg, parameters, context, feedback):
    """FIRST and SECOND read onto FIRST's grid, and their times: (pair, t0, t1, FIRST's path, SECOND's)."""
    from .raster_io import read_pair
    from .times import resolve_times

    first, second = pair_paths(alg, parameters, context)
    t0, t1 = resolve_times(P.optional_datetime(alg, parameters, "START_TIME", context),
                           P.optional_datetime(alg, parameters, "END_TIME", context), first, second)
    pair = read_pair(first, second, bands=chosen_bands(alg, parameters, context))
    for warning in pair.warnings:
        feedback.pushWarning(warning)
    return pair, t0, t1, first, second


ONNX_PACKAGES = ("numpy", "onnxruntime", "cv2")


def is_onnx(path):
    """True for an ONNX export, judged by the content (by the name only while the file cannot be read)."""
    from ..model.modelfile import ModelFileError, model_kind

    try:
        return model_kind(str(path or "")) == "onnx"
    except ModelFileError:
        return str(path or "").lower().endswith(".onnx")


def model_packages(alg, parameters, context, default):
    """The packages a run needs: an .onnx model runs with onnxruntime alone (no torch)."""
    model_path = alg.parameterAsFile(parameters, "MODEL", context)
    return ONNX_PACKAGES if is_onnx(model_path) else default


def recorded_sources(alg, parameters, context):
    """The training pair MODEL names (FIRST/SECOND's fallbacks when left empty), or None when it names none
    or cannot be read (loading MODEL later says what is wrong with it)."""
    from ..model.modelfile import ModelFileError, model_kind, read_header

    path = alg.parameterAsFile(parameters, "MODEL", context)
    try:
        if model_kind(path) == "onnx":
            from ..model.onnx_export import read_onnx_header as read_header  # noqa: F811
        return read_header(path).get("extra", {}).get("sources")
    except (ModelFileError, ImportError, OSError):
        return None


def load_runner(model_path, device):
    """(runner, header) for a model file (torch) or its ONNX export (onnxruntime only), told apart by content;
    a file that is neither, or damaged, raises ModelFileError naming MODEL."""
    from ..model.modelfile import ModelFileError, model_kind

    try:
        if model_kind(model_path) == "onnx":
            from ..model.onnx_export import OnnxTileRunner

            runner = OnnxTileRunner(model_path, device)
            return runner, runner.header
        from ..model.modelfile import load_model
        from ..model.inference import TorchTileRunner

        model, header = load_model(model_path)
    except ModelFileError as e:
        raise ModelFileError(f"MODEL: {e}") from e
    return TorchTileRunner(model, device), header


def model_source_times(alg, parameters, context, feedback, device):
    """Load MODEL and open FIRST/SECOND for streaming: (runner, header, source, times of the N+1 frames,
    FIRST's path); source is a raster_io.PairWindows (GDAL windows; in memory only when SECOND must be
    warped onto FIRST's grid).  The pair's own times (parameters, metadata, file names) win; the model's
    stored times are only a fallback, with a warning."""
    from .raster_io import InputError, open_pair_windows
    from .times import frame_times, resolve_times

    model_path = alg.parameterAsFile(parameters, "MODEL", context)
    runner, header = load_runner(model_path, device)
    if is_onnx(model_path):
        feedback.pushInfo(f"ONNX model, onnxruntime providers: {', '.join(runner.providers)}")
    if is_onnx(model_path) and not runner.verified:
        feedback.pushWarning("MODEL (ONNX) could not be checked for damage: it has no checksum (an older export) or "
                             "the onnx package is missing (pip install onnx).")
    elif "checksum" not in header:
        feedback.pushWarning("MODEL was written by an older version without a checksum, so damage to it cannot "
                             "be detected; train it again to get one.")
    extra = header.get("extra", {})
    first, second = pair_paths(alg, parameters, context, extra.get("sources"))
    bands = chosen_bands(alg, parameters, context)
    trained_bands = extra.get("band_indices")
    if bands is None and trained_bands and trained_bands != list(range(1, len(trained_bands) + 1)):
        bands = trained_bands
        feedback.pushInfo(f"BANDS is empty: using bands {', '.join(map(str, bands))}, the ones the model was "
                          f"trained on.")
    source = open_pair_windows(first, second, bands=bands)
    for warning in source.warnings:
        feedback.pushWarning(warning)
    if header.get("bands") is not None and header["bands"] != source.bands:
        raise InputError(f"The model was trained on {header['bands']} band(s) but FIRST has {source.bands}; "
                         f"choose {header['bands']} band(s) with BANDS or use a model trained on these.")
    for warning in grid_differences(extra, source.grid):
        feedback.pushWarning(warning)
    model_times = extra.get("times")
    notes = []
    start = P.optional_datetime(alg, parameters, "START_TIME", context)
    end = P.optional_datetime(alg, parameters, "END_TIME", context)
    if model_times and start is None and end is None and _same_files((first, second), extra.get("sources")):
        # the very pair the model was trained on: the times it was trained with (which START_TIME and END_TIME
        # may have corrected there), so that frames and speeds agree with the training's
        from .times import read_time, to_datetime

        t0, t1 = (to_datetime(t) for t in model_times)
        own = (read_time(first), read_time(second))
        if None not in own and own != (t0, t1):
            feedback.pushInfo(f"FIRST and SECOND are the pair the model was trained on: the times it was trained "
                              f"with are used ({t0.isoformat()} → {t1.isoformat()}), not their metadata's "
                              f"({own[0].isoformat()} → {own[1].isoformat()}); set START_TIME and END_TIME for "
                              f"others.")
        return runner, header, source, frame_times(t0, t1, int(header["steps"])), first
    t0, t1 = resolve_times(start, end, first, second, fallback=model_times, warnings=notes)
    for note in notes:
        feedback.pushWarning(note)
    if model_times and not notes:
        from .times import to_datetime

        m0, m1 = (to_datetime(t) for t in model_times)
        if abs((t1 - t0) - (m1 - m0)).total_seconds() > 1:
            feedback.pushInfo(f"The pair spans {t1 - t0} and the model was trained on {m1 - m0}: frames and "
                              f"speeds use the pair's times ({t0.isoformat()} → {t1.isoformat()}).")
    return runner, header, source, frame_times(t0, t1, int(header["steps"])), first


def _same_files(paths, recorded):
    """Whether ``paths`` are the files ``recorded`` (a model's training pair), both existing."""
    if not recorded or len(recorded) != len(paths):
        return False
    return all(a and b and os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)
               for a, b in zip(paths, recorded))


def grid_differences(extra, grid):
    """Warnings saying how FIRST's grid differs from the one the model was trained on, and what it implies:
    the model learned motions in pixels, so another pixel size or CRS means other speeds in the same
    pattern."""
    from .raster_io import Grid, _same_crs

    out = []
    size = (extra.get("width"), extra.get("height"))
    if None not in size and size != (grid.width, grid.height):
        out.append(f"FIRST is {grid.width} × {grid.height} px and the model was trained on {size[0]} × {size[1]} "
                   f"px; the learned dynamics are applied as they are.")
    wkt = extra.get("crs_wkt")
    if wkt is not None and not _same_crs(wkt, grid.crs_wkt):
        trained = Grid(crs_wkt=wkt).srs()
        now = grid.srs()
        out.append(f"FIRST's CRS ({now.GetName() if now else 'none'}) differs from the model's "
                   f"({trained.GetName() if trained else 'none'}); the model was trained on another map, so "
                   f"its motions may not fit this one.")
    gt = extra.get("geotransform")
    if gt and grid.geotransform:
        was, now = abs(gt[1]), abs(grid.geotransform[1])
        if now > 0 and was > 0 and not 0.67 <= now / was <= 1.5:
            out.append(f"FIRST's pixels are {now:g} map units wide and the model's were {was:g} ({now / was:.3g}×): "
                       f"the model moves things by as many pixels as it learned, so motions come out "
                       f"{now / was:.3g}× as fast in map units as at training; use a model trained at this "
                       f"resolution.")
    return out
