"""Reading what generateframes and exportfield share: the model file, the pair, the frame times."""
from datetime import datetime

from . import params as P


def model_pair_times(alg, parameters, context, feedback):
    """Load MODEL, read FIRST/SECOND; return (model, header, pair, times of the N+1 frames, FIRST's path)."""
    from ..model.modelfile import load_model
    from .raster_io import InputError, read_pair
    from .times import frame_times, resolve_times

    model_path = alg.parameterAsFile(parameters, "MODEL", context)
    model, header = load_model(model_path)
    first = P.layer_path(alg, parameters, "FIRST", context)
    second = P.layer_path(alg, parameters, "SECOND", context)
    pair = read_pair(first, second)
    for warning in pair.warnings:
        feedback.pushWarning(warning)
    extra = header.get("extra", {})
    bands = header.get("bands")
    if bands is not None and bands != pair.x0.shape[0]:
        raise InputError(f"The model was trained on {bands} band(s) but FIRST has {pair.x0.shape[0]}.")
    if (extra.get("width"), extra.get("height")) != (pair.grid.width, pair.grid.height):
        feedback.pushWarning("FIRST's size differs from the pair the model was trained on; "
                             "the learned dynamics are applied as they are.")
    start = P.optional_datetime(alg, parameters, "START_TIME", context)
    end = P.optional_datetime(alg, parameters, "END_TIME", context)
    if start is None and end is None and extra.get("times"):
        t0, t1 = (datetime.fromisoformat(t) for t in extra["times"])
    else:
        t0, t1 = resolve_times(start, end, first, second)
    return model, header, pair, frame_times(t0, t1, int(header["steps"])), first
