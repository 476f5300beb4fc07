"""Reading what the algorithms share: the pair and its times, the model file (torch or ONNX), the frame times."""
from datetime import datetime

from . import params as P


def pair_and_times(alg, parameters, context, feedback):
    """FIRST and SECOND read onto FIRST's grid, and their times: (pair, t0, t1, FIRST's path, SECOND's)."""
    from .raster_io import read_pair
    from .times import resolve_times

    first = P.layer_path(alg, parameters, "FIRST", context)
    second = P.layer_path(alg, parameters, "SECOND", context)
    t0, t1 = resolve_times(P.optional_datetime(alg, parameters, "START_TIME", context),
                           P.optional_datetime(alg, parameters, "END_TIME", context), first, second)
    pair = read_pair(first, second)
    for warning in pair.warnings:
        feedback.pushWarning(warning)
    return pair, t0, t1, first, second


ONNX_PACKAGES = ("numpy", "onnxruntime", "cv2")


def is_onnx(path):
    return str(path or "").lower().endswith(".onnx")


def model_packages(alg, parameters, context, default):
    """The packages a run needs: an .onnx model runs with onnxruntime alone (no torch)."""
    model_path = alg.parameterAsFile(parameters, "MODEL", context)
    return ONNX_PACKAGES if is_onnx(model_path) else default


def load_runner(model_path, device):
    """(runner, header) for a model file (.inbetween: torch) or its ONNX export (.onnx: onnxruntime only)."""
    if is_onnx(model_path):
        from ..model.onnx_export import OnnxTileRunner

        runner = OnnxTileRunner(model_path, device)
        return runner, runner.header
    from ..model.modelfile import load_model
    from ..model.inference import TorchTileRunner

    model, header = load_model(model_path)
    return TorchTileRunner(model, device), header


def model_source_times(alg, parameters, context, feedback, device):
    """Load MODEL and open FIRST/SECOND for streaming: (runner, header, source, times of the N+1 frames,
    FIRST's path); source is a raster_io.PairWindows (GDAL windows; in memory only when SECOND must be
    warped onto FIRST's grid)."""
    from .raster_io import InputError, open_pair_windows
    from .times import frame_times, resolve_times

    model_path = alg.parameterAsFile(parameters, "MODEL", context)
    runner, header = load_runner(model_path, device)
    if is_onnx(model_path):
        feedback.pushInfo(f"ONNX model, onnxruntime providers: {', '.join(runner.providers)}")
    extra = header.get("extra", {})
    recorded = list(extra.get("sources") or [None, None])  # FIRST/SECOND left empty: the training pair
    first = P.layer_path(alg, parameters, "FIRST", context, recorded[0])
    second = P.layer_path(alg, parameters, "SECOND", context, recorded[1])
    source = open_pair_windows(first, second)
    for warning in source.warnings:
        feedback.pushWarning(warning)
    bands = header.get("bands")
    if bands is not None and bands != source.bands:
        raise InputError(f"The model was trained on {bands} band(s) but FIRST has {source.bands}.")
    if (extra.get("width"), extra.get("height")) != (source.grid.width, source.grid.height):
        feedback.pushWarning("FIRST's size differs from the pair the model was trained on; "
                             "the learned dynamics are applied as they are.")
    start = P.optional_datetime(alg, parameters, "START_TIME", context)
    end = P.optional_datetime(alg, parameters, "END_TIME", context)
    if start is None and end is None and extra.get("times"):
        t0, t1 = (datetime.fromisoformat(t) for t in extra["times"])
    else:
        t0, t1 = resolve_times(start, end, first, second)
    return runner, header, source, frame_times(t0, t1, int(header["steps"])), first
