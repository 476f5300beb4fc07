"""The model file: one safetensors file (weights) whose metadata holds one JSON header.

Loading uses ``safetensors`` only (no pickle), so no code from the file is ever executed.
Header (metadata key ``inbetween``): format "inbetween-model", format_version, preset, mode, config,
steps, bands, normalisation, training figures, and ``extra`` (the caller's dict, verbatim: times, CRS,
geotransform, band names ...).
"""
import json
import os

FORMAT_NAME = "inbetween-model"
FORMAT_VERSION = 1
META_KEY = "inbetween"


class ModelFileError(Exception):
    """The file is not a readable In-between model file."""


def save_model(path, result, extra_header=None):
    from safetensors.torch import save_file

    model = result.model
    cfg = result.config
    header = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "preset": cfg.preset,
        "mode": cfg.mode,
        "steps": cfg.steps,
        "bands": int(result.bands),
        "config": cfg.to_dict(),
        "normalisation": result.normalisation,
        "training": {"seconds": float(result.seconds), "device": str(result.device),
                     "iterations": cfg.iterations,
                     "final_losses": result.history[-1] if result.history else None,
                     **(result.figures or {})},
        "extra": extra_header or {},
    }
    try:
        text = json.dumps(header)
    except (TypeError, ValueError) as e:
        raise ValueError(f"extra_header must be JSON-serialisable: {e}") from e
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    tmp = str(path) + ".tmp"
    save_file(tensors, tmp, metadata={META_KEY: text})
    os.replace(tmp, path)


def header_from_metadata(meta, path, kind):
    """The JSON header under the ``inbetween`` key of a file's metadata map (safetensors or ONNX, ``kind``
    names it in errors) as a dict; raises ModelFileError when it is missing or not a JSON object."""
    if META_KEY not in meta:
        raise ModelFileError(f"{path} is {kind} but not an In-between model (no header)")
    try:
        header = json.loads(meta[META_KEY])
    except ValueError as e:
        raise ModelFileError(f"{path}: the model header is not valid JSON: {e}") from e
    if not isinstance(header, dict):
        raise ModelFileError(f"{path}: the model header is not a JSON object")
    return header


def read_header(path):
    """Header dict of a model file, validated; raises ModelFileError."""
    from safetensors import safe_open

    if not os.path.isfile(path):
        raise ModelFileError(f"model file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as e:
        raise ModelFileError(f"{path} is not an In-between model file (not a readable safetensors "
                             f"file, perhaps truncated or of another kind): {e}") from e
    header = header_from_metadata(meta, path, "a safetensors file")
    if header.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{path} is not an In-between model file (format is {header.get('format')!r})")
    version = header.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise ModelFileError(f"{path}: unsupported model format version {version!r} "
                             f"(this plugin reads up to {FORMAT_VERSION}); update the plugin")
    for key in ("config", "bands", "steps", "normalisation"):
        if key not in header:
            raise ModelFileError(f"{path}: the model header lacks {key!r}")
    return header


def load_model(path, map_location="cpu"):
    """Return (model in eval mode, header dict)."""
    import torch
    from safetensors.torch import load_file
    from .presets import TrainConfig
    from .networks import InBetweenNet

    header = read_header(path)
    try:
        cfg = TrainConfig.from_dict(header["config"])
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"{path}: invalid configuration in the model header: {e}") from e
    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as e:
        raise ModelFileError(f"{path}: the weights cannot be read (truncated file?): {e}") from e
    model = InBetweenNet(cfg, int(header["bands"]))
    model.register_buffer("norm_lo", torch.zeros(int(header["bands"])))
    model.register_buffer("norm_hi", torch.ones(int(header["bands"])))
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        raise ModelFileError(f"{path}: the weights do not match the architecture in the header: {e}") from e
    model.eval()
    model.to(map_location)
    return model, header
